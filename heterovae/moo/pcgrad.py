"""PCGrad: project conflicting gradients.

Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ._random import SeededMixin
from ._gradients import TaskGradients
from .base import DirectionMethod, check_gradient_matrix, tiny

__all__ = ["PCGrad", "projection_coefficients", "random_orders"]

#: Run the K-1 projection steps in numpy for CPU tensors (zero-copy views).
#: The torch path, used on other devices, is tested on the CPU by turning this off.
NUMPY_ON_CPU = True


def random_orders(K: int, device, generator: Optional[torch.Generator] = None) -> Tensor:
    """For every task, a uniformly random order of the other ``K-1`` tasks: ``[K, K-1]``."""
    keys = torch.rand(K, K, device=device, generator=generator)
    keys.fill_diagonal_(2.0)  # rand < 1, so each task sorts itself last and is dropped
    return keys.argsort(dim=1)[:, : K - 1]


def projection_coefficients(M: Tensor, orders: Tensor) -> Tensor:
    """PCGrad in the coordinates of the task gradients.

    Every projected gradient ``g_i^PC`` is a combination of the original
    gradients, ``g_i^PC = C[i] @ G``, and all inner products it needs are
    entries of ``C @ M`` with ``M = G G^T``. So PCGrad runs on K x K matrices:
    K-1 steps, each projecting all K tasks at once (task ``i`` against
    ``g_{orders[i, s]}``), with no host synchronisation and no n-sized work
    besides the Gram matrix and the final ``C.sum(0) @ G``. On the CPU the
    K-1 tiny steps run in numpy (on the same memory), whose per-operation
    overhead on K x K arrays is smaller than torch's.

    Parameters
    ----------
    M : Tensor [K, K]
        Gram matrix of the task gradients.
    orders : LongTensor [K, K-1]
        ``orders[i]`` is the order in which task ``i`` is projected.

    Returns
    -------
    C : Tensor [K, K]
        ``C @ G`` are the per-task projected gradients.
    """
    diag = M.diagonal()
    ok = diag > tiny(M.dtype)
    inv_sq_norm = torch.where(ok, 1 / torch.where(ok, diag, torch.ones_like(diag)), 0)
    # Gather once, before the sequential loop, the Gram rows and inverse squared
    # norms each step needs: step s projects task i against g_{orders[i, s]}.
    if NUMPY_ON_CPU and M.device.type == "cpu":
        Mn, steps = M.numpy(), orders.numpy().T
        with np.errstate(all="ignore"):  # like torch: non-finite input gives non-finite output
            C = _project_steps(Mn[steps], inv_sq_norm.numpy()[steps], steps,
                               np.eye(len(Mn), dtype=Mn.dtype), np.arange(len(Mn)), np.minimum)
        return torch.from_numpy(C)
    steps = orders.T
    K = M.shape[0]
    return _project_steps(M[steps], inv_sq_norm[steps], steps, torch.eye(K, dtype=M.dtype, device=M.device),
                          torch.arange(K, device=M.device), torch.clamp_max)


def _project_steps(M_rows, inv_sq_norms, steps, C, rows, minimum):
    """The K-1 projection steps; written once for numpy arrays and torch tensors.

    ``M_rows[s, i] = M[orders[i, s]]``, ``inv_sq_norms[s, i] = 1 / ||g_{orders[i, s]}||^2``.
    """
    for s in range(steps.shape[0]):
        dots = (C * M_rows[s]).sum(1)  # <g_i^PC, g_j> = (C M)[i, j], M symmetric
        C[rows, steps[s]] -= minimum(dots, 0) * inv_sq_norms[s]  # (row, j) pairs are distinct
    return C


class PCGrad(SeededMixin, DirectionMethod):
    """PCGrad combined gradient (direction method, stochastic).

    For each task ``i``, in a random order of the other tasks ``j``: if the
    current ``g_i`` conflicts with ``g_j`` (negative inner product), remove
    its component along ``g_j``. The combined gradient is the sum of the
    projected gradients. Inputs without conflicts come back as ``G.sum(0)``.
    Positive scaling of ``G`` scales the output (for the same random orders).

    Parameters
    ----------
    seed : int or None, default=None
        ``None`` draws the orders from torch's global RNG; an int gives the
        method its own generator.
    """

    name = "pcgrad"
    deterministic = False

    def __init__(self, seed: Optional[int] = None):
        super().__init__()
        self._init_seed(seed)

    def project(self, G: Tensor, orders: Optional[Tensor] = None) -> Tensor:
        """The per-task projected gradients ``[K, n]`` (their sum is :meth:`combine`).

        ``orders`` ([K, K-1]) fixes the projection orders; by default they are drawn.

        Parameters
        ----------
        G : Tensor of shape [K, n]
            Per-task gradients (one row per task), not modified.
        orders : LongTensor of shape [K, K-1] or None, default=None
            ``orders[i]`` is the order in which task ``i`` is projected onto
            the other tasks (see :func:`projection_coefficients`); ``None``
            draws the orders at random (:func:`random_orders`; see
            ``seed``).

        Returns
        -------
        Tensor of shape [K, n]
            Row ``i`` is task ``i``'s projected gradient; same dtype and
            device as ``G``, no autograd history.
        """
        G = check_gradient_matrix(G).detach()
        with torch.no_grad():
            return self._coefficients(TaskGradients(G), orders) @ G

    def _coefficients(self, T, orders: Optional[Tensor]) -> Tensor:
        K = T.K
        if orders is None:
            orders = random_orders(K, T.device, self._generator(T.device))
        elif orders.shape != (K, K - 1):
            raise ValueError(f"orders must have shape [K, K-1]=[{K}, {K - 1}], got {tuple(orders.shape)}")
        return projection_coefficients(T.gram, orders.to(T.device))

    def _combine(self, T) -> Tensor:
        if T.K == 1:
            return T.combine(torch.ones(1, dtype=T.dtype, device=T.device))
        return T.combine(self._coefficients(T, None).sum(0))
