"""The task-gradient matrix with the quantities methods share, computed once.

Most methods only touch ``G`` through its K x K Gram matrix and one final
combination ``v @ G``. Wrapping ``G`` in :class:`TaskGradients` lets a
magnitude method and a direction method share one Gram matrix (the only
O(K^2 n) work) and lets the direction method see the reweighted rows
``w[:, None] * G`` without materialising them: their Gram matrix is
``w w^T * M`` and ``v @ (w[:, None] * G) = (v * w) @ G``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


class TaskGradients:
    """``diag(scale) @ base`` with a lazily computed, cached Gram matrix.

    Parameters
    ----------
    base : Tensor [K, n]
        Validated, detached gradients.
    scale : Tensor [K], optional
        Row weights applied lazily.
    base_gram : Tensor [K, K], optional
        ``base @ base.T`` if already known.
    """

    def __init__(self, base: Tensor, scale: Optional[Tensor] = None, base_gram: Optional[Tensor] = None):
        self.base = base
        self.scale = scale
        self._base_gram = base_gram
        self._G = base if scale is None else None
        self._gram = None

    @property
    def shape(self):
        return self.base.shape

    @property
    def dtype(self):
        return self.base.dtype

    @property
    def device(self):
        return self.base.device

    @property
    def K(self) -> int:
        return self.base.shape[0]

    @property
    def G(self) -> Tensor:
        """The (scaled) matrix itself, materialised on first use."""
        if self._G is None:
            self._G = self.scale[:, None] * self.base
        return self._G

    @property
    def base_gram(self) -> Tensor:
        if self._base_gram is None:
            self._base_gram = self.base @ self.base.T
        return self._base_gram

    @property
    def gram(self) -> Tensor:
        """``G @ G.T`` of the scaled matrix (symmetrised)."""
        if self._gram is None:
            M = self.base_gram
            if self.scale is not None:
                M = self.scale[:, None] * M * self.scale[None, :]
            self._gram = 0.5 * (M + M.T)
        return self._gram

    def row_norms(self) -> Tensor:
        if self._gram is not None or self._base_gram is not None:
            return self.gram.diagonal().clamp_min(0).sqrt()
        return torch.linalg.vector_norm(self.G, dim=1)

    def combine(self, v: Tensor) -> Tensor:
        """``v @ G`` without materialising a scaled ``G``."""
        if self.scale is not None and self._G is None:
            v = v * self.scale
            return v @ self.base
        return v @ self.G

    def scaled(self, w: Tensor) -> "TaskGradients":
        """The rows reweighted by ``w``, sharing this object's Gram matrix."""
        scale = w if self.scale is None else w * self.scale
        return TaskGradients(self.base, scale, self._base_gram)
