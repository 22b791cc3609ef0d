"""MissForestImputer: one pass against scikit-learn's forests, the stopping rule, transduction."""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from heterovae.baselines import MissForestImputer


def _table(n=200, seed=0):
    """Column 0 real, linear in column 1; column 2 a code that is 1 exactly where column 1 > 0."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    Z = np.column_stack([2.0 * x1 + 0.05 * rng.normal(size=n), x1, (x1 > 0).astype(float),
                         rng.normal(size=n)])
    return Z


def _first_seed(random_state):
    return np.random.RandomState(random_state).randint(np.iinfo(np.int32).max)


@pytest.mark.parametrize("column, forest", [(0, RandomForestRegressor), (2, RandomForestClassifier)])
def test_one_pass_is_the_forest_fitted_on_the_observed_rows(column, forest):
    Z = _table()
    Z[:30, column] = np.nan
    imputer = MissForestImputer([False, False, True, False], n_estimators=10, max_iter=1, random_state=3)
    out = imputer.fit_transform(Z)
    # four columns: floor(sqrt(4)) = 2 candidates a split, as R's missForest
    reference = forest(n_estimators=10, max_features=2, random_state=_first_seed(3))
    others = np.delete(Z, column, axis=1)
    reference.fit(others[30:], Z[30:, column])
    np.testing.assert_array_equal(out[:30, column], reference.predict(others[:30]))
    np.testing.assert_array_equal(out[30:], Z[30:])


def test_discrete_columns_get_observed_codes_and_follow_their_predictors():
    Z = _table(n=400)
    truth = Z.copy()
    Z[::5, 2] = np.nan
    Z[1::7, 0] = np.nan
    out = MissForestImputer([False, False, True, False], n_estimators=30, random_state=0).fit_transform(Z)
    assert set(np.unique(out[:, 2])) <= {0.0, 1.0}
    hidden = np.isnan(Z[:, 2])
    # column 2 is a threshold of column 1 and column 0 is linear in it: both recoverable
    assert np.mean(out[hidden, 2] == truth[hidden, 2]) > 0.95
    rows = np.isnan(Z[:, 0])
    mean_rmse = np.sqrt(np.mean((np.nanmean(Z[:, 0]) - truth[rows, 0]) ** 2))
    assert np.sqrt(np.mean((out[rows, 0] - truth[rows, 0]) ** 2)) < 0.2 * mean_rmse


def test_stops_when_every_change_grows_and_returns_the_imputation_before():
    Z = _table(n=120)
    Z[::4, 0] = np.nan
    Z[1::6, 2] = np.nan
    # R's rule: go on while the numeric or the discrete change fell; (0.5, 0.2) -> (0.3, 0.3)
    # fell for the numbers, (0.4, 0.4) fell for neither: stop after the third pass, keep the second
    changes = iter([np.array([0.5, 0.2]), np.array([0.3, 0.3]), np.array([0.4, 0.4])])

    class Scripted(MissForestImputer):
        def _change(self, new, old, missing):
            return next(changes) if new is not old else super()._change(new, old, missing)

    params = dict(discrete=[False, False, True, False], n_estimators=5, random_state=1)
    stopped = Scripted(max_iter=10, **params)
    out = stopped.fit_transform(Z)
    assert stopped.n_iter_ == 2
    two_passes = MissForestImputer(max_iter=2, **params).fit_transform(Z)
    np.testing.assert_array_equal(out, two_passes)


def test_change_measures_of_the_stopping_rule_by_hand():
    imputer = MissForestImputer([False, True])
    old = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 2.0]])
    new = np.array([[1.0, 0.0], [4.0, 2.0], [3.0, 2.0]])
    missing = np.array([[False, True], [True, True], [False, False]])
    numeric, discrete = imputer._change(new, old, missing)
    assert numeric == pytest.approx((4.0 - 2.0) ** 2 / (1 + 16 + 9))
    assert discrete == pytest.approx(1 / 2)


def test_transform_runs_the_kept_forests_over_new_rows_and_leaves_the_training_rows_alone():
    Z = _table(n=300)
    train, test = Z[:250].copy(), Z[250:].copy()
    train[::5, 0] = np.nan
    test[:, 0] = np.nan  # no observed cell of column 0 among the new rows
    before = train.copy()
    imputer = MissForestImputer([False, False, True, False], n_estimators=20, random_state=0).fit(train)
    out = imputer.transform(test)
    np.testing.assert_array_equal(train, before)
    # the start (training mean), then the kept forest of column 0, as many times as training ran passes
    start = test.copy()
    start[:, 0] = np.nanmean(train[:, 0])
    expected = start.copy()
    for _ in range(imputer.n_iter_):
        expected[:, 0] = imputer.forests_[0].predict(np.delete(expected, 0, axis=1))
    assert imputer.n_iter_ >= 1 and list(imputer.forests_) == [0]
    np.testing.assert_array_equal(out, expected)
    rmse = np.sqrt(np.mean((out[:, 0] - Z[250:, 0]) ** 2))
    assert rmse < 0.2 * np.std(Z[250:, 0])


def test_transductive_transform_imputes_the_new_rows_together_with_the_training_rows():
    Z = _table(n=150)
    Z[::4, 0] = np.nan
    Z[1::5, 2] = np.nan
    params = dict(discrete=[False, False, True, False], n_estimators=5, random_state=2)
    out = MissForestImputer(transductive=True, **params).fit(Z[:100]).transform(Z[100:])
    np.testing.assert_array_equal(out, MissForestImputer(**params).fit_transform(Z)[100:])


def test_same_seed_same_imputation_and_a_fully_missing_column_keeps_its_start():
    Z = _table(n=100)
    Z[::3, 0] = np.nan
    Z[:, 3] = np.nan
    first = MissForestImputer([False, False, True, False], n_estimators=5, random_state=7).fit_transform(Z)
    again = MissForestImputer([False, False, True, False], n_estimators=5, random_state=7).fit_transform(Z)
    np.testing.assert_array_equal(first, again)
    assert not np.isnan(first).any()


def test_a_fit_that_runs_every_pass_keeps_the_last_passs_forests():
    Z = _table(n=120)
    Z[::5, 0] = np.nan
    imputer = MissForestImputer([False, False, True, False], n_estimators=5, max_iter=1, random_state=0).fit(Z)
    assert imputer.n_iter_ == 1 and list(imputer.forests_) == [0]
    new = Z[:10].copy()
    new[:, 0] = np.nan
    others = np.delete(new, 0, axis=1)
    np.testing.assert_array_equal(imputer.transform(new)[:, 0], imputer.forests_[0].predict(others))
