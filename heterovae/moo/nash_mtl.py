"""Nash-MTL: task weights from the Nash bargaining solution.

Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import Tensor

from ._qp import gram_to_numpy
from .base import MagnitudeMethod, check_hyperparameter

__all__ = ["NashMTL", "nash_weights"]


def nash_weights(M: np.ndarray, ridge: float = 1e-10, tol: float = 1e-18, max_iter: int = 100) -> np.ndarray:
    """Positive ``alpha`` with ``(M alpha)_k = 1 / alpha_k`` for every task ``k``.

    These are the stationarity conditions of the strictly convex problem
    ``min_alpha 1/2 alpha^T M alpha - sum_k log alpha_k``. With unit-row
    coordinates ``beta = D alpha`` (``D`` the gradient norms) the problem keeps
    its form with the correlation matrix ``C = D^-1 M D^-1``, which is
    indifferent to the gradients' scales; a ridge on ``C`` keeps it bounded
    when a positive combination of gradients vanishes (e.g. opposite
    gradients). Newton's method with backtracking converges from any
    positive start (the objective is strictly convex and self-concordant),
    quadratically near the solution; we stop when the squared Newton
    decrement (the predicted decrease, twice) falls below ``tol``.

    Zero gradients get ``alpha = 0``: they take no part in the bargaining.
    """
    M = 0.5 * (M + M.T)
    if not np.all(np.isfinite(M)):
        raise ValueError("the task-gradient Gram matrix is not finite (G contains inf or NaN, or its squared norms overflow)")
    norms = np.sqrt(np.maximum(np.diag(M), 0.0))
    live = norms > np.finfo(np.float64).tiny
    alpha = np.zeros(M.shape[0])
    if not live.any():
        return alpha
    d = norms[live]
    C = M[np.ix_(live, live)] / np.outer(d, d) + ridge * np.eye(int(live.sum()))
    beta = np.ones(len(d))

    def objective(b):
        return 0.5 * b @ C @ b - np.log(b).sum()

    for _ in range(max_iter):
        grad = C @ beta - 1.0 / beta
        hess = C + np.diag(1.0 / beta**2)
        step = np.linalg.solve(hess, grad)
        decrement_sq = float(grad @ step)
        if decrement_sq <= tol:
            break
        # backtracking (Armijo) from the full Newton step, which the log
        # barrier usually accepts: far from the solution it doubles the
        # weights along directions the ridge alone bounds
        t, f0 = 1.0, objective(beta)
        while t > 1e-12:
            trial = beta - t * step
            if np.all(trial > 0) and objective(trial) <= f0 - 0.25 * t * decrement_sq:
                break
            t *= 0.5
        beta = trial
    alpha[live] = beta / d
    return alpha


class NashMTL(MagnitudeMethod):
    """Nash-MTL task weights (magnitude method, deterministic).

    The weights ``alpha > 0`` solve ``G G^T alpha = 1 / alpha``: with
    ``d = G^T alpha``, every task gets ``g_k . d = 1 / alpha_k > 0``, the
    Nash bargaining solution in which each task's utility ``log(g_k . d)``
    is balanced against the others'. Small gradients get large weights,
    large ones small weights; the weights are invariant to the order of the
    tasks, and scaling ``G`` by ``c`` divides them by ``c``.

    The paper solves the conditions by a sequence of convex programs
    (cvxpy); we solve their equivalent convex problem exactly by damped
    Newton on the K x K correlation matrix, on the host in float64 (one
    K*K device-to-host copy per call), see :func:`nash_weights`. The paper
    also updates the weights only every few steps to save time; here they
    are solved at every call (tens of microseconds for K of tables).

    Parameters
    ----------
    ridge : float, default=1e-10
        Added to the unit-diagonal correlation matrix; bounds the weights
        when a positive combination of gradients vanishes (e.g. ``g`` and
        ``-g``), where no exact solution exists. At least ``K eps`` of
        ``G``'s dtype (about 1e-6 in float32).
    max_iter : int, default=100
        Newton iterations (convergence usually takes fewer than 15).
    """

    name = "nash-mtl"

    def __init__(self, ridge: float = 1e-10, max_iter: int = 100):
        super().__init__()
        check_hyperparameter("ridge", ridge, low=0, low_open=True, method=self.name)
        check_hyperparameter("max_iter", max_iter, kind=numbers.Integral, low=1, method=self.name)
        self.ridge = ridge
        self.max_iter = int(max_iter)

    def _weights(self, T, losses) -> Tensor:
        # a Gram matrix computed in float32 is only accurate to ~K eps: below
        # that a ridge cannot keep rounding from making it indefinite
        ridge = max(self.ridge, T.K * torch.finfo(T.dtype).eps)
        alpha = nash_weights(gram_to_numpy(T.gram), ridge, max_iter=self.max_iter)
        return torch.as_tensor(alpha, dtype=T.dtype).to(T.device)
