"""DualProj: project the summed gradient onto the dual cone of the task gradients.

Lopez-Paz & Ranzato's GEM projection ("Gradient Episodic Memory for Continual
Learning", NeurIPS 2017), applied to multi-task gradients as in torchjd
(Quinton & Rey, 2024).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._qp import gram_to_numpy, solve_lower_bounded_qp
from .base import DirectionMethod

__all__ = ["DualProj"]


class DualProj(DirectionMethod):
    """DualProj combined gradient (direction method, deterministic).

    Returns the Euclidean projection of ``G.sum(0)`` onto the dual cone
    ``{x : G x >= 0}``: the closest direction to the plain sum that increases
    no task's loss. Computed as ``G^T v`` with ``v = argmin_{v >= 1} v^T G G^T v``
    (quadprog). When the sum conflicts with no task it is returned unchanged.

    No hyperparameters.
    """

    name = "dualproj"

    def _combine(self, T) -> Tensor:
        v = solve_lower_bounded_qp(gram_to_numpy(T.gram), np.ones(T.K))[0]
        return T.combine(torch.as_tensor(v, dtype=T.dtype).to(T.device))
