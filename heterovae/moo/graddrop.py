"""GradDrop: gradient sign dropout.

Chen et al., "Just Pick a Sign: Optimizing Deep Multitask Models with Gradient
Sign Dropout", NeurIPS 2020.
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from ._random import SeededMixin
from .base import DirectionMethod, tiny

__all__ = ["GradDrop"]


class GradDrop(SeededMixin, DirectionMethod):
    """GradDrop combined gradient (direction method, stochastic).

    Per coordinate ``j`` of the flattened gradient, the positive sign purity
    ``P_j = (1 + sum_k g_kj / sum_k |g_kj|) / 2`` is the probability of keeping
    the positive components there; otherwise the negative ones are kept. One
    uniform draw per coordinate is shared by all tasks, so the surviving
    components of a coordinate all have the same sign. Task ``k``'s gradient
    becomes ``l_k g_k + (1 - l_k) mask_k * g_k`` with leakage ``l_k``; the
    combined gradient is their sum. A single task is kept whole (P is 0 or 1).

    This is the combination step of the paper's Algorithm 1 applied to the
    matrix ``G``, whose coordinates are batch element times feature (as
    torchjd's GradDrop aggregator does). The paper's layer-level version also
    multiplies the gradients by the sign of the layer's activations and sums
    them over the batch before computing ``P`` (one purity per feature); ``G``
    does not carry the activations, so here each sample's coordinate has its
    own purity and draw.

    Parameters
    ----------
    leakage : float or sequence of K floats in [0, 1], default=0.0
        Fraction of each task's gradient that bypasses the dropping. ``0`` is
        pure GradDrop, ``1`` gives the plain sum ``G.sum(0)``. A sequence sets
        one leakage per task (the paper leaks source tasks in transfer
        learning).
    seed : int or None, default=None
        ``None`` draws from torch's global RNG; an int gives the method its
        own generator.
    """

    name = "graddrop"
    deterministic = False

    def __init__(self, leakage: Union[float, Sequence[float]] = 0.0, seed: Optional[int] = None):
        super().__init__()
        values = [leakage] if isinstance(leakage, numbers.Real) else list(leakage)
        if not values or any(
            isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v <= 1 for v in values
        ):
            raise ValueError(f"graddrop: leakage must be a float or a sequence of floats in [0, 1], got {leakage!r}")
        self.leakage = leakage
        self._init_seed(seed)

    def check_n_tasks(self, n_tasks: int) -> None:
        if not isinstance(self.leakage, numbers.Real) and len(self.leakage) != n_tasks:
            raise ValueError(f"graddrop: leakage has {len(self.leakage)} values but there are {n_tasks} tasks")

    def _combine(self, T) -> Tensor:
        G = T.G
        K, n = G.shape
        self.check_n_tasks(K)
        if K == 1:  # one task is kept whole: no draw, so the RNG stream is plain training's
            return G[0].clone()
        # Per coordinate, everything follows from the positive and negative masses:
        # sum |g| = pos - neg and P = (1 + (pos + neg) / (pos - neg)) / 2 = pos / (pos - neg).
        # So one clamp and reductions over K replace per-task masks of size K x n.
        positive = G.clamp(min=0)
        pos = positive.sum(0)
        total = G.sum(0)
        neg = total - pos
        mass = pos - neg
        ok = mass > tiny(G.dtype)
        purity = torch.where(ok, pos / torch.where(ok, mass, torch.ones_like(mass)), 0.5)
        u = torch.rand(n, dtype=G.dtype, device=G.device, generator=self._generator(G.device))
        keep_positive = u < purity  # P = 1: always; P = 0: never
        if isinstance(self.leakage, numbers.Real):
            dropped = torch.where(keep_positive, pos, neg)
            if self.leakage == 0:
                return dropped
            return self.leakage * total + (1 - self.leakage) * dropped
        leak = torch.as_tensor(self.leakage, dtype=G.dtype, device=G.device)
        kept_pos = (1 - leak) @ positive
        kept_neg = (1 - leak) @ G - kept_pos
        return leak @ G + torch.where(keep_positive, kept_pos, kept_neg)
