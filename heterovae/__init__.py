"""heterovae: heterogeneous VAEs and MT-SGD ensembles as scikit-learn estimators.

- :class:`HeterogeneousVAEImputer` imputes mixed-type tables with a VAE whose
  likelihood is chosen per column, optionally trained with multi-objective
  gradient methods (:mod:`heterovae.moo`).
- :class:`LikelihoodDetector` infers each column's likelihood.
"""

__version__ = "0.1.0"

from . import moo
from .columns import KINDS, ColumnSpec
from .detection import LikelihoodDetector
from .imputer import HeterogeneousVAEImputer

__all__ = ["moo", "ColumnSpec", "KINDS", "HeterogeneousVAEImputer", "LikelihoodDetector", "__version__"]
