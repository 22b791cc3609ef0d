"""Small quadratic programs on the K x K Gram matrix, solved exactly by quadprog.

Every QP here has the form ``min_v v^T M v`` with ``M = G G^T`` (positive
semi-definite) under linear constraints on ``v``. quadprog (Goldfarb-Idnani,
dual active set) needs a positive *definite* matrix, so we add a ridge; and
since the minimiser is invariant to positive scaling of ``M`` we first divide
``M`` by its largest diagonal entry, which keeps the ridge meaningful whether
the gradients are of size 1e-8 or 1e8.
"""

from __future__ import annotations

import numpy as np
import quadprog
import torch
from torch import Tensor

__all__ = ["gram_to_numpy", "solve_simplex_qp", "solve_lower_bounded_qp"]

#: Ridges tried in turn (relative to the largest diagonal entry of M) when
#: quadprog rejects a numerically singular matrix.
_RIDGES = (1e-10, 1e-8, 1e-6, 1e-4)


def gram_to_numpy(M: Tensor) -> np.ndarray:
    """The K x K Gram matrix as a float64 numpy array (one device-to-host copy of K*K numbers)."""
    return M.detach().to(device="cpu", dtype=torch.float64).numpy()


def _normalise(M: np.ndarray):
    M = 0.5 * (M + M.T)
    scale = float(np.max(np.diag(M))) if M.size else 0.0
    if not np.isfinite(scale):
        raise ValueError("the task-gradient Gram matrix is not finite (G contains inf or NaN, or its squared norms overflow)")
    if scale <= 0.0:
        return None
    return M / scale


def _solve(P: np.ndarray, C: np.ndarray, b: np.ndarray, meq: int) -> np.ndarray:
    K = P.shape[0]
    a = np.zeros(K)
    last_error = None
    for ridge in _RIDGES:
        try:
            return quadprog.solve_qp(P + ridge * np.eye(K), a, C, b, meq)[0]
        except ValueError as error:  # "matrix G is not positive definite" on rounding
            last_error = error
    raise RuntimeError(f"quadprog failed on the task-gradient QP even with ridge {_RIDGES[-1]}") from last_error


def solve_simplex_qp(M: np.ndarray) -> np.ndarray:
    """``argmin_{w in simplex} w^T M w`` (the MGDA min-norm problem).

    Returns non-negative weights summing to one. A zero ``M`` (all gradients
    zero) has every point of the simplex as minimiser; we return the uniform one.
    """
    K = M.shape[0]
    P = _normalise(M)
    if P is None:
        return np.full(K, 1.0 / K)
    C = np.hstack([np.ones((K, 1)), np.eye(K)])
    b = np.concatenate([[1.0], np.zeros(K)])
    w = np.maximum(_solve(P, C, b, meq=1), 0.0)  # drop the solver's -1e-17 roundoff
    return w / w.sum()


def solve_lower_bounded_qp(M: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """``argmin_{v >= lower} v^T M v`` for one or several lower bounds.

    ``G^T v`` is then the projection of ``G^T lower`` onto the dual cone
    ``{x : G x >= 0}`` (the cone of directions that conflict with no task),
    which is how UPGrad and DualProj project without touching ``n``-vectors.

    The cone does not change when the rows of ``G`` are rescaled, so we solve
    in unit-row coordinates: with ``D`` the row norms, ``u = D v`` solves the
    same problem for the correlation matrix ``D^-1 M D^-1`` and bounds
    ``D lower``. A ridge on ``M`` itself would swamp the constraints of tiny
    rows (norm 1e-8 next to 1e8); on the unit-diagonal matrix it does not.
    Zero rows constrain nothing and get ``v = 0``.

    Parameters
    ----------
    M : ndarray [K, K]
    lower : ndarray [K] or [m, K]
        One QP per row.
    """
    lower = np.atleast_2d(np.asarray(lower, dtype=np.float64))
    M = 0.5 * (M + M.T)
    if not np.all(np.isfinite(M)):
        raise ValueError("the task-gradient Gram matrix is not finite (G contains inf or NaN, or its squared norms overflow)")
    norms = np.sqrt(np.maximum(np.diag(M), 0.0))
    live = norms > np.finfo(np.float64).tiny
    out = np.zeros_like(lower)
    if not live.any():  # every gradient is zero: any v >= lower is optimal
        return lower.copy()
    d = norms[live]
    P = M[np.ix_(live, live)] / np.outer(d, d)
    C = np.eye(P.shape[0])
    for i, bound in enumerate(lower[:, live] * d):
        u = np.maximum(_solve(P, C, bound, meq=0), bound)
        out[i, live] = u / d
    return out
