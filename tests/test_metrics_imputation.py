"""Tests of the imputation error metrics against hand and sklearn computations."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_squared_error

from heterovae.columns import ColumnSpec
from heterovae.metrics import (
    ERROR_OF_KIND,
    imputation_error,
    mean_imputation_error,
)


def _table():
    true = pd.DataFrame({
        "x": [0.0, 1.0, 2.0, 3.0, 10.0],
        "n": [1, 2, 3, 4, 5],
        "c": pd.Categorical(["a", "b", "a", "c", "b"]),
    })
    imputed = pd.DataFrame({
        "x": [0.0, 3.0, 2.0, 0.0, 10.0],
        "n": [1, 2, 5, 4, 5],
        "c": pd.Categorical(["a", "a", "a", "c", "c"]),
    })
    mask = pd.DataFrame({
        "x": [False, True, False, True, False],
        "n": [False, False, True, True, False],
        "c": [True, True, False, True, True],
    })
    return true, imputed, mask


def test_hand_computed():
    true, imputed, mask = _table()
    err = imputation_error(true, imputed, mask)
    # x: cells 1 and 3, errors 2 and 3 -> sqrt(13/2), range 10
    assert err["x"] == pytest.approx(np.sqrt(6.5) / 10)
    # n: cells 2 and 3, errors 2 and 0 -> sqrt(2), range 4
    assert err["n"] == pytest.approx(np.sqrt(2) / 4)
    # c: cells 0, 1, 3, 4 -> wrong at 1 and 4
    assert err["c"] == pytest.approx(0.5)
    assert err.attrs["metric"] == {"x": "nrmse", "n": "nrmse", "c": "error_rate"}
    assert mean_imputation_error(true, imputed, mask) == pytest.approx(err.mean())


def test_against_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(200, 4)) * [1, 10, 100, 0.1]
    imputed = true + rng.normal(size=true.shape)
    mask = rng.random(true.shape) < 0.3
    err = imputation_error(true, imputed, mask)
    for j in range(4):
        m = mask[:, j]
        rmse = np.sqrt(mean_squared_error(true[m, j], imputed[m, j]))
        assert err[j] == pytest.approx(rmse / np.ptp(true[:, j]))
    assert list(err.index) == [0, 1, 2, 3]


def test_specs_choose_the_metric():
    true = np.array([[1, 0], [2, 1], [3, 1], [1, 0]], dtype=float)
    imputed = np.array([[2, 1], [2, 1], [1, 1], [1, 1]], dtype=float)
    mask = np.ones_like(true, dtype=bool)
    specs = [ColumnSpec(0, "cat", (1, 2, 3)), ColumnSpec(1, "binary", (0, 1))]
    err = imputation_error(true, imputed, mask, specs)
    assert err.tolist() == [0.5, 0.5]
    as_numbers = imputation_error(true, imputed, mask)
    assert as_numbers[0] == pytest.approx(np.sqrt((1 + 0 + 4 + 0) / 4) / 2)


def test_every_kind_has_a_metric():
    for kind in ("real", "pos", "count"):
        assert ERROR_OF_KIND[kind] == "nrmse"
    for kind in ("binary", "cat", "ordinal"):
        assert ERROR_OF_KIND[kind] == "error_rate"


def test_labels_and_codes_compare_by_value():
    true = pd.DataFrame({"c": pd.Categorical([1, 2, 3, 1])})
    imputed = pd.DataFrame({"c": [1.0, 2.0, 1.0, 1.0]})  # numeric codes
    mask = np.ones((4, 1), dtype=bool)
    assert imputation_error(true, imputed, mask)["c"] == pytest.approx(0.25)


def test_true_missing_cells_are_not_scored_and_ranges_use_all_rows():
    true = pd.DataFrame({"x": [0.0, np.nan, 4.0, 8.0],
                         "c": pd.Categorical(["a", None, "b", "a"])})
    imputed = pd.DataFrame({"x": [1.0, 5.0, 4.0, 8.0],
                            "c": pd.Categorical(["b", "b", "b", "a"])})
    mask = np.array([[True, True], [True, True], [False, False], [False, False]])
    err = imputation_error(true, imputed, mask)
    assert err["x"] == pytest.approx(1.0 / 8.0)  # only row 0; range 0..8
    assert err["c"] == pytest.approx(1.0)


def test_column_order_and_no_scored_cells():
    true, imputed, mask = _table()
    shuffled = imputed[["c", "x", "n"]]
    pd.testing.assert_series_equal(
        imputation_error(true, shuffled, mask), imputation_error(true, imputed, mask))
    mask2 = mask.copy()
    mask2["x"] = False
    err = imputation_error(true, imputed, mask2)
    assert np.isnan(err["x"])
    assert mean_imputation_error(true, imputed, mask2) == pytest.approx(
        err[["n", "c"]].mean())
    with pytest.raises(ValueError, match="no column has a scored cell"):
        mean_imputation_error(true, imputed, np.zeros(true.shape, dtype=bool))


def test_inputs_are_not_mutated():
    true, imputed, mask = _table()
    copies = true.copy(), imputed.copy(), mask.copy()
    imputation_error(true, imputed, mask)
    for a, b in zip((true, imputed, mask), copies):
        pd.testing.assert_frame_equal(a, b)


def test_errors():
    true, imputed, mask = _table()
    with pytest.raises(ValueError, match="mask must be boolean"):
        imputation_error(true, imputed, mask.astype(int))
    with pytest.raises(ValueError, match="shape"):
        imputation_error(true, imputed.iloc[:3], mask)
    with pytest.raises(ValueError, match="lacks the columns"):
        imputation_error(true, imputed.rename(columns={"x": "y"}), mask)
    bad = imputed.copy()
    bad.loc[1, "x"] = np.nan
    with pytest.raises(ValueError, match="column 'x'.*missing values"):
        imputation_error(true, bad, mask)
    with pytest.raises(ValueError, match="3 columns"):
        imputation_error(true, imputed, mask, specs=[ColumnSpec("x", "real")])
    specs = [ColumnSpec("n", "count"), ColumnSpec("x", "real"),
             ColumnSpec("c", "cat", ("a", "b", "c"))]
    with pytest.raises(ValueError, match="different order"):
        imputation_error(true, imputed, mask, specs=specs)
    with pytest.raises(ValueError, match="column 'c' is scored by NRMSE"):
        imputation_error(true, imputed, mask, specs=[
            ColumnSpec("x", "real"), ColumnSpec("n", "count"), ColumnSpec("c", "real")])


def test_constant_column_warns():
    true = pd.DataFrame({"x": [2.0, 2.0, 2.0]})
    with pytest.warns(RuntimeWarning, match="column 'x'"):
        err = imputation_error(true, true + 1, np.ones((3, 1), dtype=bool))
    assert np.isnan(err["x"])


def test_nested_lists_are_scored_by_their_values():
    """A list goes through object dtype; numbers must still get the NRMSE."""
    errors = imputation_error([[1.0, "a"], [3.0, "b"], [5.0, "a"]], [[1.5, "b"], [3.0, "b"], [5.0, "a"]],
                              [[True, True], [False, False], [False, False]])
    assert errors.attrs["metric"] == {0: "nrmse", 1: "error_rate"}
    np.testing.assert_allclose(errors.to_numpy(), [0.5 / 4.0, 1.0])


def test_rows_with_the_same_labels_match_by_label():
    rng = np.random.default_rng(0)
    true = pd.DataFrame({"r": rng.normal(size=20), "c": rng.choice(list("ab"), 20)})
    mask = pd.DataFrame(rng.random((20, 2)) < 0.4, columns=true.columns)
    imputed = true.copy()
    imputed.loc[mask["r"], "r"] += 0.5
    expected = imputation_error(true, imputed, mask)
    pd.testing.assert_series_equal(imputation_error(true, imputed.iloc[::-1], mask.sample(frac=1, random_state=0)),
                                   expected)
    pd.testing.assert_series_equal(imputation_error(true, imputed, mask.astype("boolean")), expected)
    # other labels: by position, as for arrays
    pd.testing.assert_series_equal(imputation_error(true, imputed.reset_index(drop=True).set_axis(range(100, 120)),
                                                    mask), expected)


def test_a_dataframe_mask_is_matched_to_the_columns_by_name():
    # M06: a DataFrame mask with its columns in another order was read by position
    true = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [10.0, 20.0, 30.0, 40.0]})
    imputed = true + pd.DataFrame({"a": [1.0, 0.0, 0.0, 0.0], "b": [0.0, 0.0, 0.0, 5.0]})
    mask = pd.DataFrame({"a": [True, False, False, False], "b": [False, False, False, True]})
    errors = imputation_error(true, imputed, mask[["b", "a"]])
    # hand-computed: a: RMSE 1 over the range 3; b: RMSE 5 over the range 30
    np.testing.assert_allclose(errors[["a", "b"]].to_numpy(), [1 / 3, 5 / 30])


def test_boolean_columns_are_scored_by_error_rate_by_default():
    # M07: bool columns scored by NRMSE when no specs are given
    true = pd.DataFrame({"flag": [True, False, True, True], "x": [0.0, 1.0, 2.0, 3.0]})
    imputed = pd.DataFrame({"flag": [False, False, False, True], "x": [0.0, 1.0, 2.0, 3.0]})
    errors = imputation_error(true, imputed, np.ones(true.shape, dtype=bool))
    assert errors.attrs["metric"]["flag"] == "error_rate"
    assert errors["flag"] == pytest.approx(2 / 4)
