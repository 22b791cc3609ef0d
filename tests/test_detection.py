"""Tests of LikelihoodDetector: detection rules, overrides, errors, sklearn API."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from heterovae.columns import ColumnSpec
from heterovae.detection import (
    ConstantColumnWarning,
    LikelihoodDetector,
    column_spec,
    detect_column,
)

NAN = np.nan

# (series, expected kind, expected categories or None)
CASES = [
    ("bool", pd.Series([True, False, True]), "binary", (False, True)),
    ("nullable bool", pd.Series([True, None, False], dtype="boolean"), "binary",
     (False, True)),
    ("object bools", pd.Series([True, None, False], dtype=object), "binary",
     (False, True)),
    ("category", pd.Series(pd.Categorical(["b", "a", "c"])), "cat", ("a", "b", "c")),
    ("category 2", pd.Series(pd.Categorical(["y", "n", "y"])), "binary", ("n", "y")),
    ("ordered", pd.Series(pd.Categorical(["lo", "hi", "mid"],
                                         categories=["lo", "mid", "hi"], ordered=True)),
     "ordinal", ("lo", "mid", "hi")),
    ("ordered 2", pd.Series(pd.Categorical(["lo", "hi"], ordered=True)), "ordinal",
     ("hi", "lo")),
    ("unobserved category", pd.Series(pd.Categorical(["a", "a", "b"],
                                                     categories=["a", "b", "c"])),
     "cat", ("a", "b", "c")),
    ("strings", pd.Series(["x", "z", "y", None, "x"]), "cat", ("x", "y", "z")),
    ("object strings", pd.Series(["x", "y", NAN], dtype=object), "binary", ("x", "y")),
    ("ints 0/1", pd.Series([0, 1, 1, 0]), "binary", (0, 1)),
    ("ints 3/7", pd.Series([3, 7, 7]), "binary", (3, 7)),
    ("float codes 0..4", pd.Series([0.0, 1.0, 2.0, 3.0, 4.0, NAN]), "cat",
     (0, 1, 2, 3, 4)),
    ("codes 1..5", pd.Series([1, 2, 3, 4, 5, 5]), "cat", (1, 2, 3, 4, 5)),
    ("gapped ints", pd.Series([0, 1, 2, 5]), "count", None),
    ("ints from 2", pd.Series([2, 3, 4, 5]), "count", None),
    ("many ints", pd.Series(np.arange(30)), "count", None),
    ("nullable Int64", pd.Series([0, 3, None, 12], dtype="Int64"), "count", None),
    ("negative ints", pd.Series([-1, 0, 4, 2]), "real", None),
    ("positive floats", pd.Series([0.5, 2.25, 0.0, NAN]), "pos", None),
    ("negative floats", pd.Series([-0.5, 2.25, 0.1]), "real", None),
    ("float32", pd.Series(np.array([0.5, 1.5, 2.7], dtype=np.float32)), "pos", None),
    ("numbers in object", pd.Series([1.5, 2, None], dtype=object), "pos", None),
]


@pytest.mark.parametrize("label, series, kind, categories", CASES,
                         ids=[c[0] for c in CASES])
def test_detection_table(label, series, kind, categories):
    spec = detect_column(series, name="col")
    assert spec == ColumnSpec("col", kind, categories)


def test_max_categories_threshold():
    codes = pd.Series(np.arange(12) % 12)
    assert detect_column(codes, "c", max_categories=12).kind == "cat"
    assert detect_column(codes, "c", max_categories=11).kind == "count"
    assert detect_column(codes, "c", max_categories=None).kind == "count"
    with pytest.raises(ValueError, match="max_categories"):
        LikelihoodDetector(max_categories=1).fit(pd.DataFrame({"a": [1.0, 2.0]}))


def test_fit_on_dataframe_and_array():
    X = pd.DataFrame({"age": [23, 41, 35, 52], "w": [0.1, 2.0, 0.3, 1.0],
                      "city": ["a", "b", "c", "a"], "m": [True, False, True, True]})
    det = LikelihoodDetector().fit(X)
    assert [(s.name, s.kind) for s in det.specs_] == [
        ("age", "count"), ("w", "pos"), ("city", "cat"), ("m", "binary")]
    assert det.n_features_in_ == 4
    assert list(det.feature_names_in_) == ["age", "w", "city", "m"]
    assert list(det.get_feature_names_out()) == ["age", "w", "city", "m"]
    out = det.transform(X)
    pd.testing.assert_frame_equal(out, X)
    assert out is not X  # a shallow copy: set_output may relabel it

    arr = np.array([[1.5, -2.0, 0], [0.5, 1.0, 1], [2.5, 3.0, 1]])
    det = LikelihoodDetector().fit(arr)
    assert [(s.name, s.kind) for s in det.specs_] == [
        (0, "pos"), (1, "real"), (2, "binary")]
    assert not hasattr(det, "feature_names_in_")
    assert list(det.get_feature_names_out()) == ["x0", "x1", "x2"]


def test_overrides_by_name_position_list_and_none():
    X = pd.DataFrame({"age": [23, 41, 35], "code": [0, 2, 1], "v": [0.5, 1.5, 2.0]})
    det = LikelihoodDetector(likelihoods={"age": "real", 1: "ordinal"}).fit(X)
    assert [s.kind for s in det.specs_] == ["real", "ordinal", "pos"]
    assert det.specs_[1].categories == (0, 1, 2)
    det = LikelihoodDetector(likelihoods=[None, "count", "real"]).fit(X)
    assert [s.kind for s in det.specs_] == ["count", "count", "real"]
    # an integer column label wins over the position
    Y = pd.DataFrame({1: [0.5, 0.7], 0: [1, 2]})
    det = LikelihoodDetector(likelihoods={1: "real", 0: "cat"}).fit(Y)
    assert [(s.name, s.kind) for s in det.specs_] == [(1, "real"), (0, "cat")]


def test_override_from_data_types_file(tmp_path):
    path = tmp_path / "data_types.csv"
    path.write_bytes(b"type,dim,nclass\r\nreal,1,\r\ncat,3,3\r\nordinal,4,4\r\n")
    X = pd.DataFrame({"a": [1.0, 2.0, 5.0], "b": [1, 2, 2], "c": [0, 1, 3]})
    det = LikelihoodDetector(likelihoods=str(path)).fit(X)
    assert det.specs_ == [ColumnSpec("a", "real"), ColumnSpec("b", "cat", (1, 2, 3)),
                          ColumnSpec("c", "ordinal", (0, 1, 2, 3))]
    with pytest.raises(ValueError, match="describes 3 columns but X has 2"):
        LikelihoodDetector(likelihoods=path).fit(X[["a", "b"]])


@pytest.mark.parametrize(
    "likelihoods, match",
    [
        ({"nope": "real"}, "column 'nope'"),
        ({7: "real"}, "column 7"),
        ({"neg": "pos"}, "column 'neg' cannot be pos: it has negative"),
        ({"frac": "count"}, "column 'frac' cannot be count: it has non-integer"),
        ({"neg": "count"}, "column 'neg' cannot be count: it has negative"),
        ({"text": "real"}, "column 'text' cannot be real: it holds non-numeric"),
        ({"flag": "count"}, "column 'flag' cannot be count: it holds booleans"),
        ({"text": "binary"}, "column 'text' cannot be binary: it has 3 categories"),
        ({"frac": "gauss"}, "column 'frac': unknown likelihood 'gauss'"),
        ({"frac": "real", 1: "pos"}, "names column 'frac' twice"),
        (["real"], "1 entries but X has 4 columns"),
    ],
)
def test_bad_overrides(likelihoods, match):
    X = pd.DataFrame({"neg": [-1.0, 2.0, 3.0], "frac": [0.5, 1.0, 2.0],
                      "text": ["a", "b", "c"], "flag": [True, False, True]})
    with pytest.raises(ValueError, match=match):
        LikelihoodDetector(likelihoods=likelihoods).fit(X)


def test_override_a_categorical_with_numeric_codes_to_count():
    X = pd.DataFrame({"q": pd.Categorical([3, 5, 4])})
    det = LikelihoodDetector(likelihoods={"q": "count"}).fit(X)
    assert det.specs_[0] == ColumnSpec("q", "count")
    assert column_spec(X["q"], "ordinal").categories == (3, 4, 5)


@pytest.mark.parametrize(
    "column, match, error",
    [
        (pd.Series([NAN, NAN, NAN]), "column 'bad' has no observed value", ValueError),
        (pd.Series([None, None, None], dtype=object), "no observed value", ValueError),
        (pd.Series(["a", 1, "b"], dtype=object), "column 'bad' mixes numeric and text",
         ValueError),
        (pd.Series([1.0, np.inf, 2.0]), "column 'bad' has infinite", ValueError),
        (pd.Series([1.0, -np.inf, 2.0], dtype=object), "column 'bad' has infinite",
         ValueError),
        (pd.Series(["a", "a", None]), "column 'bad' holds the single value 'a'",
         ValueError),
        (pd.Series(pd.Categorical(["a", "a", "a"])), "column 'bad' is categorical with a single",
         ValueError),
        (pd.Series(pd.to_datetime(["2020-01-01"] * 3)), "column 'bad' has the unsupported",
         ValueError),
        (pd.Series([{"a": 1}, 2, 3], dtype=object), "column 'bad': argument must be",
         TypeError),
        (pd.Series([1 + 1j, 2j, 3], dtype=object), "column 'bad': argument must be .* got complex",
         TypeError),
    ],
)
def test_unusual_columns(column, match, error):
    X = pd.DataFrame({"ok": [0.5, 1.5, 2.5], "bad": column})
    with pytest.raises(error, match=match):
        LikelihoodDetector().fit(X)


@pytest.mark.parametrize("values, kind", [([3, 3, 3], "count"), ([-2.0, -2.0], "real"),
                                          ([0.25, 0.25], "pos")])
def test_constant_numeric_column_warns(values, kind):
    with pytest.warns(ConstantColumnWarning, match="column 'k' holds a single value"):
        spec = detect_column(pd.Series(values), "k")
    assert spec.kind == kind


def test_duplicate_column_names():
    X = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], columns=["a", "a"])
    with pytest.raises(ValueError, match=r"duplicate column names: \['a'\]"):
        LikelihoodDetector().fit(X)


def test_fit_does_not_mutate_and_transform_checks_columns():
    X = pd.DataFrame({"a": [1.0, 2.0, NAN], "b": ["x", "y", "x"]})
    before = X.copy()
    det = LikelihoodDetector(likelihoods={"a": "real"}).fit(X)
    pd.testing.assert_frame_equal(X, before)
    with pytest.raises(ValueError, match="feature names"):
        det.transform(X.rename(columns={"a": "z"}))
    with pytest.warns(UserWarning, match="valid feature names"), \
            pytest.raises(ValueError, match="X has 1 features"):
        det.transform(X[["a"]].to_numpy())


def test_pipeline_clone_pickle_gridsearch():
    X = pd.DataFrame({"a": [0.5, 1.5, 2.5, 3.5], "c": pd.Categorical(list("xyxy"))})
    pipe = make_pipeline(LikelihoodDetector(likelihoods={"a": "real"}),
                         FunctionTransformer(lambda Z: Z))
    pipe.fit(X)
    assert pipe[0].specs_[0] == ColumnSpec("a", "real")
    pd.testing.assert_frame_equal(pipe.transform(X), X)
    twin = clone(pipe[0])
    assert twin.get_params() == {"likelihoods": {"a": "real"}, "max_categories": 10}
    assert not hasattr(twin, "specs_")
    restored = pickle.loads(pickle.dumps(pipe[0]))
    assert restored.specs_ == pipe[0].specs_
    out = LikelihoodDetector().set_output(transform="pandas").fit_transform(X)
    assert list(out.columns) == ["a", "c"]
    ct = ColumnTransformer([("det", LikelihoodDetector(), ["a"])])
    assert ct.fit_transform(X).shape == (4, 1)
    assert ct.named_transformers_["det"].specs_ == [ColumnSpec("a", "pos")]
    grid = GridSearchCV(LikelihoodDetector(), {"max_categories": [2, 10]}, cv=2,
                        scoring=lambda est, X, y=None: 0.0)
    grid.fit(X)
    assert grid.best_params_["max_categories"] in (2, 10)


@parametrize_with_checks([LikelihoodDetector()])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantColumnWarning)
        check(estimator)


def test_agrees_with_the_benchmark_files_on_discrete_columns():
    from heterovae.datasets import dataset_root, load_hivae

    if not (dataset_root() / "wine" / "data.csv").exists():
        pytest.skip("benchmark datasets not found")
    for name in ("wine", "diamonds"):
        ds = load_hivae(name, mask=None)
        specs = LikelihoodDetector().fit(ds.data).specs_
        for found, declared in zip(specs, ds.specs):
            if declared.kind in ("binary", "cat", "ordinal"):
                assert found == declared
            else:
                assert found.kind in ("real", "pos", "count")
        # with the file as override every spec is the declared one
        det = LikelihoodDetector(likelihoods=ds.path / "data_types.csv")
        assert det.fit(ds.data).specs_ == ds.specs


def test_ordinal_text_says_its_order_is_alphabetical():
    frame = pd.DataFrame({"level": ["lo", "mid", "hi", "lo", None]})
    with pytest.warns(UserWarning, match=r"'level' is ordinal text: .* \('hi' < 'lo' < 'mid'\)"):
        spec, = LikelihoodDetector(likelihoods={"level": "ordinal"}).fit(frame).specs_
    assert spec.categories == ("hi", "lo", "mid")
    ordered = frame.astype(pd.CategoricalDtype(["lo", "mid", "hi"], ordered=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec, = LikelihoodDetector(likelihoods={"level": "ordinal"}).fit(ordered).specs_
    assert spec.categories == ("lo", "mid", "hi")


def test_decimal_values_are_numbers():
    import decimal

    X = pd.DataFrame({"d": pd.Series([decimal.Decimal("1.10"), decimal.Decimal("2.25"), None,
                                      decimal.Decimal("3.5")], dtype=object)})
    assert LikelihoodDetector().fit(X).specs_[0].kind == "pos"


@pytest.mark.parametrize("likelihoods, error, match", [
    ("real", ValueError, "likelihoods='real' is a kind, not a data types file"),
    ("no/such/data_types.csv", FileNotFoundError, "likelihoods='no/such/data_types.csv': no such data types file"),
])
def test_a_string_likelihoods_is_a_file_and_a_kind_is_explained(likelihoods, error, match):
    X = pd.DataFrame({"a": [0.5, 1.5, 2.5]})
    with pytest.raises(error, match=match):
        LikelihoodDetector(likelihoods=likelihoods).fit(X)


def test_pandas_output_leaves_the_callers_frame_alone():
    """sklearn's pandas wrapper relabels the returned frame's columns in place."""
    from sklearn import config_context

    X = pd.DataFrame({0: [0.5, 1.5, 2.5], 1: ["a", "b", "a"]})
    det = LikelihoodDetector().set_output(transform="pandas").fit(X)
    det.transform(X)
    assert list(X.columns) == [0, 1]
    multi = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], columns=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)]))
    with config_context(transform_output="pandas"):
        LikelihoodDetector().fit_transform(multi)
    assert list(multi.columns) == [("a", 1), ("b", 2)]


def test_rows_of_numbers_and_text_pass_through_as_objects():
    rows = [[1.5, "a"], [NAN, "b"], [2.5, "b"], [0.5, "a"]]
    out = LikelihoodDetector().fit(rows).transform(rows)
    assert out.dtype == object and out[0, 0] == 1.5 and np.isnan(out[1, 0])
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert LikelihoodDetector().fit(X).transform(X) is X


def test_a_two_valued_integer_column_is_binary_even_with_a_negative_value():
    # D04: the k = 2 rule must come before the "some value < 0 -> real" rule (module docstring's table)
    spec = detect_column(pd.Series([-1, 1, 1, -1, 1]), "sign")
    assert spec.kind == "binary" and spec.categories == (-1, 1)
