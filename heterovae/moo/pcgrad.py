"""PCGrad: project conflicting gradients.

Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ._random import SeededMixin
from .base import DirectionMethod, check_gradient_matrix, tiny

__all__ = ["PCGrad", "projection_coefficients", "random_orders"]


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
    besides the Gram matrix and the final ``C.sum(0) @ G``.

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
    K = M.shape[0]
    C = torch.eye(K, dtype=M.dtype, device=M.device)
    diag = M.diagonal()
    ok = diag > tiny(M.dtype)
    inv_sq_norm = torch.where(ok, 1 / torch.where(ok, diag, torch.ones_like(diag)), 0)
    rows = torch.arange(K, device=M.device)
    for s in range(K - 1):
        j = orders[:, s]
        dots = (C * M[j]).sum(1)  # <g_i^PC, g_j> = (C M)[i, j], M symmetric
        coef = dots.clamp(max=0) * inv_sq_norm[j]
        C.index_put_((rows, j), -coef, accumulate=True)
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
        """The per-task projected gradients ``[K, n]`` (their sum is :meth:`combine`)."""
        G = check_gradient_matrix(G).detach()
        with torch.no_grad():
            return self._coefficients(G, orders) @ G

    def _coefficients(self, G: Tensor, orders: Optional[Tensor]) -> Tensor:
        K = G.shape[0]
        if orders is None:
            orders = random_orders(K, G.device, self._generator(G.device))
        elif orders.shape != (K, K - 1):
            raise ValueError(f"orders must have shape [K, K-1]=[{K}, {K - 1}], got {tuple(orders.shape)}")
        return projection_coefficients(G @ G.T, orders.to(G.device))

    def _combine(self, G: Tensor) -> Tensor:
        if G.shape[0] == 1:
            return G[0].clone()
        return self._coefficients(G, None).sum(0) @ G
