"""Per-column decoder heads, fused into one linear map, with a MOO hook.

Every column's head is an affine map of the decoder's last shared feature
``y``. Fusing them into one ``[P, h]`` weight keeps a training step to one
matrix product. Because each output unit belongs to exactly one column, the
gradient of the total loss w.r.t. the head output already holds every
column's own gradient; the per-column gradients w.r.t. ``y`` follow
analytically as ``G_d = dL/d(eta_d) @ W_d`` (DESIGN.md), so the
multi-objective methods need no extra backward pass. Column-specific head
parameters keep their ordinary gradients; only the gradient that flows into
the shared layers is replaced by the aggregated one.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..moo._gradients import HeadGradients, column_gradients

__all__ = ["ColumnHeads", "column_gradients"]


class MOOState:
    """Carries the per-column losses from the forward pass to the backward hook.

    GradNorm-like methods need the task losses; they are known only after the
    head's output has gone through the likelihoods, i.e. after the head's
    forward returned, so they travel in this mutable holder.
    """

    __slots__ = ("losses",)

    def __init__(self):
        self.losses = None


class _AggregatedHead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, weight, bias, owner, units, aggregator, state):
        ctx.save_for_backward(y, weight, owner, units)
        ctx.aggregator = aggregator
        ctx.state = state
        return F.linear(y, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        y, weight, owner, units = ctx.saved_tensors
        flat_g = grad_out.reshape(-1, grad_out.shape[-1])
        grad_w = flat_g.T @ y.reshape(-1, y.shape[-1]) if ctx.needs_input_grad[1] else None
        grad_b = flat_g.sum(0) if ctx.needs_input_grad[2] else None
        T = HeadGradients(flat_g, weight, owner, units)
        # our aggregators take the factored gradients (Gram and combinations from
        # the head's factors); any other module gets the explicit [K, n*h] matrix
        G = T if getattr(ctx.aggregator, "accepts_task_gradients", False) else T.base
        combined = ctx.aggregator(G, ctx.state.losses)
        return combined.reshape(y.shape), grad_w, grad_b, None, None, None, None


class ColumnHeads(nn.Module):
    """All column heads as one linear layer.

    Parameters
    ----------
    in_features : int
        Width of the last shared feature ``y``.
    params_per_column : sequence of int
        Output units of each column's head, in output order.
    column_of_head : sequence of int
        The column index (task index) of each head, same order.
    n_columns : int
        Number of columns (tasks) ``K``.
    aggregator : nn.Module or None
        A :class:`heterovae.moo.Aggregator` applied to the per-column
        gradients at ``y``; ``None`` for the plain backward.
    """

    def __init__(self, in_features: int, params_per_column: Sequence[int], column_of_head: Sequence[int],
                 n_columns: int, aggregator: Optional[nn.Module] = None):
        super().__init__()
        n_out = int(sum(params_per_column))
        self.linear = nn.Linear(in_features, n_out)
        owner = torch.repeat_interleave(torch.as_tensor(list(column_of_head)), torch.as_tensor(list(params_per_column)))
        #: the column (task) of every output unit
        self.register_buffer("owner", owner, persistent=False)
        width = int(torch.bincount(owner, minlength=n_columns).max())
        units = torch.full((n_columns, width), n_out, dtype=torch.long)
        for k in range(n_columns):
            mine = torch.nonzero(owner == k).flatten()
            units[k, : len(mine)] = mine
        #: each column's output units, padded with n_out (see column_gradients)
        self.register_buffer("units", units, persistent=False)
        self.aggregator = aggregator
        self.state = MOOState()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if self.aggregator is None or not torch.is_grad_enabled():
            return self.linear(y)
        return _AggregatedHead.apply(y, self.linear.weight, self.linear.bias, self.owner, self.units,
                                     self.aggregator, self.state)

    def frozen(self, y: torch.Tensor, aggregator: Optional[nn.Module] = None,
               state: Optional[MOOState] = None) -> torch.Tensor:
        """The same heads with their parameters held constant: gradients reach ``y`` only.

        For objectives whose loss must not train the heads (DReG's encoder
        term). ``aggregator`` (with its own ``state``) replaces the gradient
        at ``y`` as in :meth:`forward`, independently of :attr:`aggregator`.
        """
        weight, bias = self.linear.weight.detach(), self.linear.bias.detach()
        if aggregator is None or not torch.is_grad_enabled():
            return F.linear(y, weight, bias)
        return _AggregatedHead.apply(y, weight, bias, self.owner, self.units, aggregator, state)
