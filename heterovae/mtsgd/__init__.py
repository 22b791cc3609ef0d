"""MT-SGD: Stochastic Multiple-Target Sampling Gradient Descent (Phan et al., 2022).

Core pieces: kernels (:mod:`.kernels`), the simplex QP (:mod:`.qp`), the Stein
directions and their Gram matrix (:mod:`.directions`) and a particle sampler
for several target densities (:mod:`.sampler`). On top of them, multi-output
ensembles of particle networks as scikit-learn estimators
(:class:`MTSGDClassifier`, :class:`MTSGDRegressor`).
"""

from .directions import (
    DIRECTIONS,
    get_direction,
    mgda_weights,
    moo_svgd_direction,
    moo_svgd_direction_from_terms,
    mtsgd_direction,
    mtsgd_direction_from_terms,
    stein_gram,
    stein_gram_from_terms,
    svgd_direction,
    svgd_direction_from_terms,
)
from .kernels import (
    KERNELS,
    IMQKernel,
    KernelTerms,
    RadialKernel,
    RBFKernel,
    get_kernel,
    median_bandwidth,
    pairwise_sq_distances,
)
from .estimators import MTSGDClassifier, MTSGDRegressor
from .qp import simplex_min_norm
from .sampler import MultiTargetSampler

__all__ = [
    "MTSGDClassifier",
    "MTSGDRegressor",
    "DIRECTIONS",
    "KERNELS",
    "IMQKernel",
    "KernelTerms",
    "MultiTargetSampler",
    "RBFKernel",
    "RadialKernel",
    "get_direction",
    "get_kernel",
    "median_bandwidth",
    "mgda_weights",
    "moo_svgd_direction",
    "moo_svgd_direction_from_terms",
    "mtsgd_direction",
    "mtsgd_direction_from_terms",
    "pairwise_sq_distances",
    "simplex_min_norm",
    "stein_gram",
    "stein_gram_from_terms",
    "svgd_direction",
    "svgd_direction_from_terms",
]
