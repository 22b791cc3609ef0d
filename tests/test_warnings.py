"""Warnings raised deep in the package point at the caller's line."""

import warnings

import numpy as np
import pandas as pd

from heterovae import HeterogeneousVAEImputer
from heterovae.detection import LikelihoodDetector


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if "column" in str(w.message)]


def test_a_warning_from_inside_fit_points_at_the_callers_line():
    """fit goes through scikit-learn's _fit_context; a fixed stacklevel pointed into sklearn/base.py."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"big": 1e9 + 20 * rng.normal(size=60), "other": rng.normal(size=60)})
    imputer = HeterogeneousVAEImputer(likelihoods={"big": "pos"}, max_epochs=1, random_state=0)
    caught = _caught(lambda: imputer.fit(X))
    assert caught and all(w.filename == __file__ for w in caught), [(w.filename, w.lineno) for w in caught]


def test_a_detection_warning_points_at_the_callers_line():
    X = pd.DataFrame({"constant": [1.0] * 10, "x": np.arange(10.0)})
    caught = _caught(lambda: LikelihoodDetector().fit(X))
    assert caught and all(w.filename == __file__ for w in caught)
