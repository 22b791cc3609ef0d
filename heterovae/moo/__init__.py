"""Multi-objective gradient methods for training with one loss per column.

The task-gradient matrix ``G [K, n]`` (per-column gradients of the last
shared feature, flattened over the batch) is turned into one combined
gradient by an :class:`Aggregator` made of an optional magnitude method
(task weights) and an optional direction method (combined vector). Build one
from a spec with :func:`build`; search over methods with :func:`cocktail`.
See docs/moo.rst.
"""

from .aggregator import Aggregator
from .aligned_mtl import AlignedMTL
from .base import DirectionMethod, MagnitudeMethod
from .dualproj import DualProj
from .graddrop import GradDrop
from .gradnorm import GradNorm
from .imtlg import IMTLG
from .layer import MOOExpand, moo_expand
from .mgda import MGDAUB, frank_wolfe_min_norm
from .nash_mtl import NashMTL
from .pcgrad import PCGrad
from .registry import (
    DIRECTION_METHODS,
    MAGNITUDE_METHODS,
    build,
    cocktail,
    method_hyperparameters,
    validate_method_params,
    validate_spec,
)
from .upgrad import UPGrad

__all__ = [
    "Aggregator",
    "MagnitudeMethod",
    "DirectionMethod",
    "GradNorm",
    "MGDAUB",
    "IMTLG",
    "NashMTL",
    "PCGrad",
    "GradDrop",
    "UPGrad",
    "DualProj",
    "AlignedMTL",
    "frank_wolfe_min_norm",
    "moo_expand",
    "MOOExpand",
    "MAGNITUDE_METHODS",
    "DIRECTION_METHODS",
    "build",
    "cocktail",
    "validate_spec",
    "validate_method_params",
    "method_hyperparameters",
]
