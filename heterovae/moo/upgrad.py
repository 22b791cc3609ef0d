"""UPGrad: unconflicting projection of gradients.

Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024
(torchjd). Each task gradient is projected onto the dual cone of the rows of
``G`` -- the set ``{x : G x >= 0}`` of directions that increase no task's
loss -- and the projections are summed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._qp import gram_to_numpy, solve_lower_bounded_qp
from ._gradients import TaskGradients
from .base import DirectionMethod, check_gradient_matrix

__all__ = ["UPGrad"]


class UPGrad(DirectionMethod):
    """UPGrad combined gradient (direction method, deterministic).

    The projection of ``g_i`` onto the dual cone is ``G^T v_i`` with
    ``v_i = argmin_{v >= e_i} v^T G G^T v`` (a K x K QP, solved exactly by
    quadprog). The output is ``G^T sum_i v_i``: the sum of the K projected
    gradients (torchjd averages them; the sum matches the plain-sum scale
    when nothing conflicts, in which case the output is exactly ``G.sum(0)``).
    It conflicts with no task (``G d >= 0``), is invariant to the order of
    the tasks and scales linearly with ``G``.

    No hyperparameters.
    """

    name = "upgrad"

    def project(self, G: Tensor) -> Tensor:
        """The per-task projected gradients ``[K, n]``.

        Parameters
        ----------
        G : Tensor of shape [K, n]
            Per-task gradients (one row per task), not modified.

        Returns
        -------
        Tensor of shape [K, n]
            Row ``i`` is ``g_i`` projected onto the dual cone of the rows
            of ``G``; same dtype and device as ``G``, no autograd history.
        """
        G = check_gradient_matrix(G).detach()
        with torch.no_grad():
            return self._projection_weights(TaskGradients(G)) @ G

    def _projection_weights(self, T) -> Tensor:
        V = solve_lower_bounded_qp(gram_to_numpy(T.gram), np.eye(T.K))
        return torch.as_tensor(V, dtype=T.dtype).to(T.device)

    def _combine(self, T) -> Tensor:
        return T.combine(self._projection_weights(T).sum(0))
