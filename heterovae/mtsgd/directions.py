"""Stein update directions: SVGD, MT-SGD and MOO-SVGD.

Notation: ``M`` particles ``x_1..x_M`` in ``R^P``, ``K`` targets with scores
``s_k = grad log p_k``, a kernel ``k``. The SVGD direction for target ``k`` is

    phi_k(x) = (1/M) sum_j [ k(x_j, x) s_k(x_j) + grad_{x_j} k(x_j, x) ].

MT-SGD (Phan et al., 2022) moves the particles along ``sum_k w_k phi_k`` with
``w`` minimising ``w^T U w`` on the simplex, ``U_ij = <phi_i, phi_j>`` in
``H^P``. By the (derivative) reproducing property

    U_ij = (1/M^2) sum_{a,b} [ k(x_a, x_b) s_i(x_a)^T s_j(x_b)
                              + s_i(x_a)^T grad_{x_b} k(x_a, x_b)
                              + s_j(x_b)^T grad_{x_a} k(x_a, x_b)
                              + tr(grad_{x_a} grad_{x_b} k(x_a, x_b)) ].

For a symmetric kernel the second term summed over ``b`` is ``M s_i(x_a)^T
r(x_a)`` with ``r`` the SVGD repulsion ``(1/M) sum_b grad_{x_b} k(x_b, x_a)``,
and likewise for the third, so

    U = (1/M^2) A + (1/M) (v 1^T + 1 v^T) + T 1 1^T,
    A_ij = sum_{a,b} K_ab s_i(x_a)^T s_j(x_b),   v_i = sum_a s_i(x_a)^T r(x_a),

``T`` the mean trace term (:class:`~heterovae.mtsgd.kernels.KernelTerms`).
Every piece is a matrix product: no loop over particle pairs or tasks.

MOO-SVGD (Liu, Tong & Liu, 2021) instead solves MGDA at every particle on its
``K`` scores, ``d(x_j) = sum_k w_k(x_j) s_k(x_j)``, and moves along
``(1/M) sum_j k(x_j, x) d(x_j) + alpha r(x)``.

Each rule comes twice: a ``*_from_terms`` function that takes the kernel
pieces (Gram matrix ``gram[M, M]``, ``repulsion[M, P]``, ``trace``) so that
callers can supply them precomputed (e.g. a kernel on network outputs), and a
convenience wrapper taking ``(particles, scores, kernel)``.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple, Union

import torch

from ._errors import NonFiniteError
from .kernels import RadialKernel, get_kernel
from .qp import simplex_min_norm

__all__ = [
    "svgd_direction",
    "svgd_direction_from_terms",
    "stein_gram",
    "stein_gram_from_terms",
    "mtsgd_direction",
    "mtsgd_direction_from_terms",
    "moo_svgd_direction",
    "moo_svgd_direction_from_terms",
    "mgda_weights",
    "DIRECTIONS",
    "get_direction",
]

KernelLike = Union[str, RadialKernel]


def _check_terms(gram, repulsion, scores, multi: bool):
    for name, t in (("gram", gram), ("repulsion", repulsion), ("scores", scores)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if len({gram.dtype, repulsion.dtype, scores.dtype}) > 1:
        raise TypeError(
            "gram, repulsion and scores must share one dtype, got "
            f"{gram.dtype}, {repulsion.dtype} and {scores.dtype}: compute the kernel terms "
            "on particles of the scores' dtype"
        )
    if repulsion.ndim != 2:
        raise ValueError(
            f"repulsion must have shape (M, P), got shape {tuple(repulsion.shape)}"
        )
    m, p = repulsion.shape
    if gram.shape != (m, m):
        raise ValueError(
            f"gram must have shape (M, M) = ({m}, {m}) to match repulsion, got "
            f"{tuple(gram.shape)}"
        )
    want = "(K, M, P)" if multi else "(M, P)"
    ndim = 3 if multi else 2
    if scores.ndim != ndim or tuple(scores.shape[-2:]) != (m, p):
        raise ValueError(
            f"scores must have shape {want} with M={m}, P={p}, got "
            f"{tuple(scores.shape)}"
        )
    if multi and scores.shape[0] < 1:
        raise ValueError("scores must hold at least one target (K >= 1)")
    if not torch.isfinite(scores).all():
        raise NonFiniteError("scores contain NaN or infinite values")


def _kernel_terms(particles, kernel: KernelLike):
    return get_kernel(kernel)(particles)


# --------------------------------------------------------------------- SVGD
def svgd_direction_from_terms(gram, repulsion, scores) -> torch.Tensor:
    """SVGD direction from precomputed kernel terms.

    Parameters
    ----------
    gram : Tensor of shape (M, M)
        ``gram[a, b] = k(x_a, x_b)``.
    repulsion : Tensor of shape (M, P)
        ``(1/M) sum_j grad_{x_j} k(x_j, x_i)`` at each particle ``i``.
    scores : Tensor of shape (M, P)
        ``grad log p`` at each particle.

    Returns
    -------
    Tensor of shape (M, P)
        ``phi(x_i) = (1/M) sum_j k(x_j, x_i) s(x_j) + repulsion[i]``.
    """
    _check_terms(gram, repulsion, scores, multi=False)
    return gram.T @ scores / gram.shape[0] + repulsion


def svgd_direction(particles, scores, kernel: KernelLike = "rbf") -> torch.Tensor:
    """SVGD direction (Liu & Wang, 2016) for one target.

    Parameters
    ----------
    particles : Tensor of shape (M, P)
    scores : Tensor of shape (M, P)
        ``grad log p`` at each particle.
    kernel : str or RadialKernel, default="rbf"

    Returns
    -------
    Tensor of shape (M, P)
    """
    terms = _kernel_terms(particles, kernel)
    return svgd_direction_from_terms(terms.gram, terms.repulsion, scores)


# ------------------------------------------------------------- Stein Gram U
def stein_gram_from_terms(gram, repulsion, scores, trace=0.0) -> torch.Tensor:
    """The matrix ``U_ij = <phi_i, phi_j>_{H^P}`` from precomputed kernel terms.

    Parameters
    ----------
    gram : Tensor of shape (M, M)
    repulsion : Tensor of shape (M, P)
    scores : Tensor of shape (K, M, P)
        ``scores[k, m] = grad log p_k(x_m)``.
    trace : float or 0-d Tensor, default=0.0
        ``(1/M^2) sum_{a,b} tr(grad_{x_a} grad_{x_b} k(x_a, x_b))``. It adds
        the same constant to every entry of ``U``, which leaves the MT-SGD
        weights unchanged (``w^T 1 1^T w = 1`` on the simplex) but is needed
        for ``U`` to be the true inner-product matrix.

    Returns
    -------
    Tensor of shape (K, K)
    """
    _check_terms(gram, repulsion, scores, multi=True)
    m = gram.shape[0]
    smoothed = torch.matmul(gram, scores)  # [K, M, P]: sum_b K_ab s_j(x_b)
    a = torch.einsum("imp,jmp->ij", scores, smoothed)
    v = torch.einsum("kmp,mp->k", scores, repulsion)
    u = a / (m * m) + (v[:, None] + v[None, :]) / m + trace
    return 0.5 * (u + u.T)


def stein_gram(particles, scores, kernel: KernelLike = "rbf") -> torch.Tensor:
    """``U_ij = <phi_i, phi_j>_{H^P}`` for the SVGD directions of ``K`` targets.

    Parameters
    ----------
    particles : Tensor of shape (M, P)
    scores : Tensor of shape (K, M, P)
    kernel : str or RadialKernel, default="rbf"

    Returns
    -------
    Tensor of shape (K, K)
        Symmetric positive semi-definite (up to round-off).
    """
    terms = _kernel_terms(particles, kernel)
    return stein_gram_from_terms(terms.gram, terms.repulsion, scores, terms.trace)


# ------------------------------------------------------------------- MT-SGD
def mtsgd_direction_from_terms(
    gram, repulsion, scores, trace=0.0, *, ridge: float = 1e-10
) -> Tuple[torch.Tensor, torch.Tensor]:
    """MT-SGD direction from precomputed kernel terms.

    Parameters
    ----------
    gram, repulsion, scores, trace
        As in :func:`stein_gram_from_terms`.
    ridge : float, default=1e-10
        Passed to :func:`~heterovae.mtsgd.qp.simplex_min_norm`.

    Returns
    -------
    direction : Tensor of shape (M, P)
        ``sum_k w_k phi_k(x_i)`` at each particle.
    weights : Tensor of shape (K,)
        The simplex weights ``w``.
    """
    u = stein_gram_from_terms(gram, repulsion, scores, trace)
    w = simplex_min_norm(u, ridge=ridge)
    # sum_k w_k phi_k = (1/M) K^T (sum_k w_k s_k) + r, as the weights sum to one.
    mixed = torch.einsum("k,kmp->mp", w, scores)
    return gram.T @ mixed / gram.shape[0] + repulsion, w


def mtsgd_direction(
    particles, scores, kernel: KernelLike = "rbf", *, ridge: float = 1e-10
) -> Tuple[torch.Tensor, torch.Tensor]:
    """MT-SGD direction (Phan et al., 2022) for ``K`` targets.

    Parameters
    ----------
    particles : Tensor of shape (M, P)
    scores : Tensor of shape (K, M, P)
    kernel : str or RadialKernel, default="rbf"
    ridge : float, default=1e-10

    Returns
    -------
    direction : Tensor of shape (M, P)
    weights : Tensor of shape (K,)
    """
    terms = _kernel_terms(particles, kernel)
    return mtsgd_direction_from_terms(
        terms.gram, terms.repulsion, scores, terms.trace, ridge=ridge
    )


# ----------------------------------------------------------------- MOO-SVGD
def mgda_weights(scores, *, ridge: float = 1e-10) -> torch.Tensor:
    """Per-particle MGDA weights: the min-norm point of each particle's scores.

    Parameters
    ----------
    scores : Tensor of shape (K, M, P)
        ``scores[k, m] = grad log p_k(x_m)``.
    ridge : float, default=1e-10
        Relative ridge of the min-norm problems, passed to
        :func:`~heterovae.mtsgd.qp.simplex_min_norm`.

    Returns
    -------
    Tensor of shape (M, K)
        ``w[m]`` minimises ``||sum_k w_k scores[k, m]||^2`` on the simplex.
    """
    if not isinstance(scores, torch.Tensor) or scores.ndim != 3:
        raise ValueError("scores must be a tensor of shape (K, M, P)")
    grams = torch.einsum("kmp,lmp->mkl", scores, scores)
    return simplex_min_norm(grams, ridge=ridge)


def moo_svgd_direction_from_terms(
    gram, repulsion, scores, *, alpha: float = 1.0, ridge: float = 1e-10
) -> Tuple[torch.Tensor, torch.Tensor]:
    """MOO-SVGD direction from precomputed kernel terms.

    Parameters
    ----------
    gram, repulsion : Tensors of shapes (M, M) and (M, P)
    scores : Tensor of shape (K, M, P)
    alpha : float, default=1.0
        Weight of the repulsive term.
    ridge : float, default=1e-10

    Returns
    -------
    direction : Tensor of shape (M, P)
        ``(1/M) sum_j k(x_j, x_i) d(x_j) + alpha r(x_i)``, with ``d(x_j)``
        the MGDA (min-norm) combination of the scores at ``x_j``.
    weights : Tensor of shape (M, K)
        The per-particle MGDA weights.
    """
    _check_terms(gram, repulsion, scores, multi=True)
    w = mgda_weights(scores, ridge=ridge)
    d = torch.einsum("mk,kmp->mp", w, scores)
    return gram.T @ d / gram.shape[0] + alpha * repulsion, w


def moo_svgd_direction(
    particles, scores, kernel: KernelLike = "rbf", *, alpha: float = 1.0,
    ridge: float = 1e-10,
) -> torch.Tensor:
    """MOO-SVGD direction (Liu, Tong & Liu, 2021).

    Parameters
    ----------
    particles : Tensor of shape (M, P)
    scores : Tensor of shape (K, M, P)
    kernel : str or RadialKernel, default="rbf"
    alpha : float, default=1.0
        Weight of the repulsive term.
    ridge : float, default=1e-10
        Passed to :func:`mgda_weights` (see
        :func:`~heterovae.mtsgd.qp.simplex_min_norm`).

    Returns
    -------
    Tensor of shape (M, P)
    """
    terms = _kernel_terms(particles, kernel)
    return moo_svgd_direction_from_terms(
        terms.gram, terms.repulsion, scores, alpha=alpha, ridge=ridge
    )[0]


# ----------------------------------------------------------------- registry
def _mtsgd_rule(terms, scores, *, ridge=1e-10):
    return mtsgd_direction_from_terms(
        terms.gram, terms.repulsion, scores, terms.trace, ridge=ridge
    )


def _moo_svgd_rule(terms, scores, *, alpha=1.0, ridge=1e-10):
    return moo_svgd_direction_from_terms(
        terms.gram, terms.repulsion, scores, alpha=alpha, ridge=ridge
    )


def _svgd_rule(terms, scores):
    # Linear scalarisation with uniform weights: SVGD on prod_k p_k^(1/K).
    k = scores.shape[0]
    w = torch.full((k,), 1.0 / k, dtype=scores.dtype, device=scores.device)
    mean_score = scores.mean(dim=0)
    return svgd_direction_from_terms(terms.gram, terms.repulsion, mean_score), w


#: Update rules by name: ``rule(terms: KernelTerms, scores[K, M, P],
#: **options) -> (direction[M, P], weights)``; ``weights`` is (K,) for
#: ``"mt-sgd"`` and ``"svgd"`` (uniform) and (M, K) for ``"moo-svgd"`` (one
#: MGDA per particle). Options: ``ridge`` (``"mt-sgd"``, ``"moo-svgd"``) and
#: ``alpha`` (``"moo-svgd"``).
DIRECTIONS: Dict[str, Callable] = {
    "mt-sgd": _mtsgd_rule,
    "svgd": _svgd_rule,
    "moo-svgd": _moo_svgd_rule,
}


def get_direction(method: str) -> Callable:
    """Look up an update rule of :data:`DIRECTIONS` by name.

    Parameters
    ----------
    method : {"mt-sgd", "svgd", "moo-svgd"}
        A key of :data:`DIRECTIONS`; any other value is a ValueError.

    Returns
    -------
    callable
        ``rule(terms, scores, **options) -> (direction, weights)``, as
        described at :data:`DIRECTIONS`.
    """
    try:
        return DIRECTIONS[method]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown method {method!r}; valid methods are {', '.join(DIRECTIONS)}"
        ) from None
