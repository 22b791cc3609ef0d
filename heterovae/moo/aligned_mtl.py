"""Aligned-MTL: align the task gradients into an orthogonal, equal-norm system.

Senushkin et al., "Independent Component Alignment for Multi-Task Learning",
CVPR 2023.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._gradients import TaskGradients
from .base import DirectionMethod, check_gradient_matrix, check_hyperparameter

__all__ = ["AlignedMTL"]


class AlignedMTL(DirectionMethod):
    """Aligned-MTL combined gradient (direction method, deterministic).

    With the SVD ``G = U S V^T``, the aligned matrix ``G_hat = s_min U V^T``
    has orthogonal rows of equal norm (the condition number of the task
    system becomes 1), and the output is its row sum ``G_hat^T 1``. We
    compute it from the K x K Gram matrix ``G G^T = U S^2 U^T``:
    ``G_hat = B G`` with ``B = s_min U S^-1 U^T``, so no n-sized SVD is
    needed. Directions with singular values below ``rtol * s_max`` are
    treated as absent (rank-deficient ``G``), and ``s_min`` is the smallest
    singular value kept. Although the output is a combination of the rows of
    ``G`` its weights rotate the task gradients, so it is a direction method.
    Scales linearly with ``G``; invariant to the order of the tasks.

    Parameters
    ----------
    rtol : float in [0, 1), default=1e-6
        Relative singular-value cut-off (raised to ``sqrt(K eps)`` of the
        dtype when larger, the accuracy of singular values from the Gram
        matrix: about 1e-3 in float32).
    """

    name = "aligned-mtl"

    def __init__(self, rtol: float = 1e-6):
        super().__init__()
        check_hyperparameter("rtol", rtol, low=0, high=1, high_open=True, method=self.name)
        self.rtol = rtol

    def alignment(self, G: Tensor) -> Tensor:
        """The K x K matrix ``B`` with ``G_hat = B @ G``.

        Parameters
        ----------
        G : Tensor of shape [K, n]
            Per-task gradients (one row per task), not modified.

        Returns
        -------
        Tensor of shape [K, K]
            ``B = s_min U S^-1 U^T`` (zero on the directions cut off by
            ``rtol``); same dtype and device as ``G``, no autograd history.
        """
        G = check_gradient_matrix(G).detach()
        with torch.no_grad():
            return self._alignment(TaskGradients(G))

    def _alignment(self, T) -> Tensor:
        evals, evecs = torch.linalg.eigh(T.gram)
        evals = evals.clamp_min(0)
        # the Gram matrix squares the condition number: below sqrt(K eps) the
        # singular values it yields are roundoff, whatever rtol asks for
        rel = max(self.rtol**2, T.K * torch.finfo(T.dtype).eps)
        keep = evals > rel * evals.max()
        sv = evals.sqrt()
        safe_sv = torch.where(keep, sv, torch.ones_like(sv))
        s_min = torch.where(keep, sv, torch.full_like(sv, float("inf"))).min()
        scale = torch.where(keep, s_min / safe_sv, torch.zeros_like(sv))
        return (evecs * scale) @ evecs.T

    def _combine(self, T) -> Tensor:
        return T.combine(self._alignment(T).sum(0))
