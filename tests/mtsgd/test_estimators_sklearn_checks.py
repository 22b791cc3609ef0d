"""scikit-learn's estimator checks on MTSGDClassifier and MTSGDRegressor.

Both estimators accept 1-D targets (one output: ordinary classifier /
regressor conventions) and 2-D targets (one output per column), so they
declare the ``multi_output`` and ``single_output`` target tags and the
checks exercise them as ordinary estimators plus the multi-output checks.
No check is expected to fail. Small networks and few epochs keep this fast;
the settings still pass the accuracy thresholds of
``check_classifiers_train`` (0.83) and ``check_regressors_train``.
"""

import pytest
import torch
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from ._references import one_thread  # noqa: F401 (fixture)
from heterovae.mtsgd.estimators import MTSGDClassifier, MTSGDRegressor

SMALL = dict(n_particles=2, max_epochs=15, hidden_sizes=(16,), lr=2e-2, random_state=0)


pytestmark = pytest.mark.usefixtures("one_thread")


@parametrize_with_checks([MTSGDClassifier(**SMALL), MTSGDRegressor(**SMALL)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("est", [MTSGDClassifier(), MTSGDRegressor()])
def test_tags(est):
    tags = get_tags(est)
    assert tags.target_tags.multi_output and tags.target_tags.single_output
    assert tags.target_tags.required
    assert not tags.input_tags.allow_nan
