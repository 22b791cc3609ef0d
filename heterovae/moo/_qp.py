"""Small quadratic programs on the K x K Gram matrix, solved exactly by quadprog.

Every QP here has the form ``min_v v^T M v`` with ``M = G G^T`` (positive
semi-definite) under linear constraints on ``v``. quadprog (Goldfarb-Idnani,
dual active set) needs a positive *definite* matrix, so a singular one gets a ridge. A
ridge relative to the largest row of ``G`` would swamp the small ones
(gradients of norm 1e-4 next to 1e4 are usual between columns), so both
solvers work in unit-row coordinates, on the correlation matrix
``D^-1 M D^-1`` with ``D`` the row norms, where the ridge is small next to
every row; zero rows drop out.
"""

from __future__ import annotations

import numpy as np
import quadprog
import torch
from torch import Tensor

__all__ = ["gram_to_numpy", "solve_simplex_qp", "solve_lower_bounded_qp"]

#: Ridges tried in turn (on the unit-diagonal correlation matrix): none first,
#: which is exact where the matrix is definite (K independent gradients, the
#: usual case), then growing ones when quadprog rejects a singular matrix.
_RIDGES = (0.0, 1e-10, 1e-8, 1e-6, 1e-4)


def gram_to_numpy(M: Tensor) -> np.ndarray:
    """The K x K Gram matrix as a float64 numpy array (one device-to-host copy of K*K numbers)."""
    return M.detach().to(device="cpu", dtype=torch.float64).numpy()


def _unit_rows(M: np.ndarray):
    """The symmetrised ``M``, its row norms ``sqrt(diag M)`` and which rows are non-zero."""
    M = 0.5 * (M + M.T)
    if not np.all(np.isfinite(M)):
        raise ValueError("the task-gradient Gram matrix is not finite (G contains inf or NaN, or its squared norms overflow)")
    norms = np.sqrt(np.maximum(np.diag(M), 0.0))
    return M, norms, norms > np.finfo(np.float64).tiny


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
    """``argmin_{w in simplex} w^T M w`` (the MGDA min-norm problem) over the non-zero rows.

    Returns non-negative weights summing to one. A zero row (a task with no
    gradient, e.g. a column with no observed cell in the batch) is not a
    task here: it gets weight 0, where the min-norm point of all rows would
    be that zero row and the step would vanish. A zero ``M`` (all gradients
    zero) has every point of the simplex as minimiser; we return the uniform
    one.

    Solved in unit-row coordinates, as :func:`solve_lower_bounded_qp`: with
    ``d`` the row norms and ``w = v / d``, ``v`` minimises ``v^T P v`` for
    the correlation matrix ``P`` under ``sum_k v_k / d_k = 1``, so quadprog's
    ridge is relative to every row rather than to the largest, and rows of
    norm 1e-4 next to 1e4 keep their exact share.
    """
    M, norms, live = _unit_rows(M)
    K = M.shape[0]
    if not live.any():
        return np.full(K, 1.0 / K)
    d = norms[live]
    P = M[np.ix_(live, live)] / np.outer(d, d)
    inverse = d.min() / d  # the constraint row 1 / d, scaled into (0, 1]
    n = len(d)
    C = np.hstack([inverse[:, None], np.eye(n)])
    b = np.concatenate([[1.0], np.zeros(n)])
    v = np.maximum(_solve(P, C, b, meq=1), 0.0)  # drop the solver's -1e-17 roundoff
    w = np.zeros(K)
    w[live] = v * inverse
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
    M, norms, live = _unit_rows(M)
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
