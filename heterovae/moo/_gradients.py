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

    def __init__(self, base: Optional[Tensor], scale: Optional[Tensor] = None, base_gram: Optional[Tensor] = None):
        self._base = base
        self.scale = scale
        self._base_gram = base_gram
        self._G = base if scale is None else None
        self._gram = None
        self._row_norms = None

    @property
    def base(self) -> Tensor:
        return self._base

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
            self._G = self.base if self.scale is None else self.scale[:, None] * self.base
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
        # cached: a magnitude method (GradNorm) and the aggregator's rounding
        # clean-up both read them in one step
        if self._row_norms is None:
            if self._gram is not None or self._base_gram is not None:
                self._row_norms = self.gram.diagonal().clamp_min(0).sqrt()
            else:
                self._row_norms = torch.linalg.vector_norm(self.G, dim=1)
        return self._row_norms

    def combine(self, v: Tensor) -> Tensor:
        """``v @ G`` without materialising a scaled ``G``."""
        if self._G is None:
            return self._combine_base(v if self.scale is None else v * self.scale)
        return v @ self._G

    def _combine_base(self, v: Tensor) -> Tensor:
        return v @ self.base

    def total(self) -> Tensor:
        """``base.sum(0)``, the plain sum of the unscaled task gradients."""
        return self.base.sum(0)

    def scaled(self, w: Tensor) -> "TaskGradients":
        """The rows reweighted by ``w``, sharing this object's Gram matrix."""
        scale = w if self.scale is None else w * self.scale
        return TaskGradients(self.base, scale, self._base_gram)


class HeadGradients(TaskGradients):
    """Task gradients of a shared feature read by one fused linear head, in factored form.

    With head outputs ``eta = y @ W.T + b`` and each output unit owned by one
    task, task ``k``'s gradient w.r.t. ``y`` is ``G_k = g[:, U_k] @ W[U_k]``
    (``g`` = the loss gradient w.r.t. ``eta``, ``U_k`` = the units of task
    ``k``). Everything the weight-based methods need follows from the small
    factors without forming the ``[K, n, h]`` tensor:

    * Gram: ``<G_j, G_k> = sum over u in U_j, v in U_k of (g^T g)[u, v] (W W^T)[u, v]``,
      i.e. ``A^T ((g^T g) * (W W^T)) A`` with ``A`` the one-hot ``[P, K]`` owner matrix,
      which costs ``n P^2 + P^2 h`` instead of ``K^2 n h``;
    * combination: ``v @ G = (g * v[owner]) @ W``, one matrix product like the plain backward.

    ``base`` (the explicit ``[K, n h]`` matrix) is formed only for methods that
    work per coordinate (GradDrop).

    Parameters
    ----------
    grad_out : Tensor [n, P]
        Gradient of the total loss w.r.t. the head outputs (rows = samples).
    weight : Tensor [P, h]
        The fused head's weight.
    owner : LongTensor [P]
        Task of every output unit.
    units : LongTensor [K, U]
        Each task's units, padded with ``P`` (see :func:`heterovae.vae.heads.column_gradients`).
    scale, base_gram :
        As in :class:`TaskGradients`.
    """

    def __init__(self, grad_out: Tensor, weight: Tensor, owner: Tensor, units: Tensor,
                 scale: Optional[Tensor] = None, base_gram: Optional[Tensor] = None):
        super().__init__(None, scale, base_gram)
        self.grad_out, self.weight, self.owner, self.units = grad_out, weight, owner, units
        self._shape = (units.shape[0], grad_out.shape[0] * weight.shape[1])

    @property
    def base(self) -> Tensor:
        if self._base is None:
            per_task = column_gradients(self.grad_out, self.units, self.weight)
            self._base = per_task.reshape(self._shape)
        return self._base

    @property
    def shape(self):
        return torch.Size(self._shape)

    @property
    def dtype(self):
        return self.grad_out.dtype

    @property
    def device(self):
        return self.grad_out.device

    @property
    def K(self) -> int:
        return self._shape[0]

    @property
    def base_gram(self) -> Tensor:
        if self._base_gram is None:
            g, W = self.grad_out, self.weight
            products = (g.T @ g) * (W @ W.T)                                    # [P, P]
            owner = torch.nn.functional.one_hot(self.owner, self.K).to(products.dtype)
            self._base_gram = owner.T @ products @ owner
        return self._base_gram

    def _combine_base(self, v: Tensor) -> Tensor:
        if self._base is not None:
            return v @ self._base
        return ((self.grad_out * v[self.owner]) @ self.weight).reshape(-1)

    def total(self) -> Tensor:
        return (self.grad_out @ self.weight).reshape(-1)

    def row_norms(self) -> Tensor:
        return self.gram.diagonal().clamp_min(0).sqrt()

    def scaled(self, w: Tensor) -> "HeadGradients":
        scale = w if self.scale is None else w * self.scale
        out = HeadGradients(self.grad_out, self.weight, self.owner, self.units, scale, self._base_gram)
        out._base = self._base
        return out


def column_gradients(grad_out: Tensor, units: Tensor, weight: Tensor) -> Tensor:
    """Per-task gradients w.r.t. the shared feature of a fused head, ``[K, ..., h]``.

    ``G[k] = grad_out[..., units of task k] @ weight[units of task k]``.
    ``units`` is ``[K, max units per task]``, the head output indices of
    each task padded with ``P`` (the number of outputs), which points to
    an appended zero row. One batched matrix product over the tasks costs
    ``n * max_units * h`` per task, where a dense one-hot contraction
    would cost ``n * P * h`` (6.6x slower measured at 24 columns).
    """
    lead = grad_out.shape[:-1]
    flat = grad_out.reshape(-1, grad_out.shape[-1])
    padded_w = torch.cat([weight, weight.new_zeros(1, weight.shape[1])])[units]        # [K, U, h]
    padded_g = torch.cat([flat, flat.new_zeros(flat.shape[0], 1)], dim=1)[:, units]    # [n, K, U]
    per_task = torch.bmm(padded_g.transpose(0, 1), padded_w)                           # [K, n, h]
    return per_task.reshape(units.shape[0], *lead, weight.shape[1])
