"""heterovae: heterogeneous VAEs and MT-SGD ensembles as scikit-learn estimators.

- :class:`HeterogeneousVAEImputer` imputes mixed-type tables with a VAE whose
  likelihood is chosen per column, optionally trained with multi-objective
  gradient methods (:mod:`heterovae.moo`).
- :class:`LikelihoodDetector` infers each column's likelihood.
- :class:`MTSGDClassifier` / :class:`MTSGDRegressor`: multi-output ensembles
  of particle networks trained by MT-SGD (:mod:`heterovae.mtsgd`).
"""

__version__ = "0.1.0"

from . import moo, plotting
from .columns import KINDS, ColumnSpec
from .detection import LikelihoodDetector
from .imputer import HeterogeneousVAEImputer
from .mtsgd import MTSGDClassifier, MTSGDRegressor, MultiTargetSampler

__all__ = ["moo", "plotting", "ColumnSpec", "KINDS", "HeterogeneousVAEImputer", "LikelihoodDetector", "MTSGDClassifier",
           "MTSGDRegressor", "MultiTargetSampler", "__version__"]
