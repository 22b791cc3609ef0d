"""An autograd layer that hands the per-task gradients of a shared feature to an aggregator.

For models whose task heads are separate modules reading one shared feature
``y``: feed head ``k`` the slice ``k`` of ``moo_expand(y, aggregator)``. The
forward is a zero-copy ``expand``; in the single ordinary backward pass the
K heads' gradients land in one ``[K, *y.shape]`` tensor, which is exactly the
task-gradient matrix ``G`` (flattened to ``[K, n]``). The aggregator's output
replaces the plain sum as the gradient of ``y``. There is never one backward
pass per task.
"""

from __future__ import annotations

import numbers

from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["moo_expand", "MOOExpand"]


class _MOOExpand(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, aggregator, losses, n_tasks):
        ctx.aggregator = aggregator
        ctx.losses = losses
        ctx.y_shape = y.shape
        return y.expand(n_tasks, *y.shape)

    @staticmethod
    def backward(ctx, grad):
        G = grad.reshape(grad.shape[0], -1)
        if ctx.aggregator is None:
            combined = G.sum(0)
        else:
            combined = ctx.aggregator(G, ctx.losses)
        return combined.reshape(ctx.y_shape), None, None, None


def moo_expand(y: Tensor, aggregator: Optional[nn.Module], losses: Optional[Tensor] = None,
               n_tasks: Optional[int] = None) -> Tensor:
    """Expand ``y`` to ``[K, *y.shape]`` so that its backward aggregates per-task gradients.

    Parameters
    ----------
    y : Tensor
        The last shared feature (any shape, e.g. ``[B, h]``).
    aggregator : Aggregator or None
        Called in backward as ``aggregator(G, losses)`` with ``G`` of shape
        ``[K, y.numel()]``; ``None`` sums the gradients (ordinary autograd).
    losses : Tensor of shape [K], optional
        Per-task losses for methods that need them (GradNorm). Detached here:
        they are information for the aggregator, not part of the graph.
        Since the forward runs before the losses exist, pass a tensor that
        you fill in place before ``backward`` (e.g. ``buf.copy_(losses)``), or
        use the losses of the previous step.
    n_tasks : int
        K, the number of task heads.

    Returns
    -------
    Tensor of shape ``[K, *y.shape]``
        A zero-copy view; slice ``k`` feeds head ``k``. Do not modify it in place.
    """
    if not isinstance(y, Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, numbers.Integral) or n_tasks < 1:
        raise ValueError(f"n_tasks must be a positive int, got {n_tasks!r}")
    n_tasks = int(n_tasks)
    if losses is not None:
        losses = torch.as_tensor(losses).detach()
        if losses.shape != (n_tasks,):
            raise ValueError(f"losses must have shape [n_tasks]=[{n_tasks}], got {tuple(losses.shape)}")
    if aggregator is not None and getattr(aggregator, "needs_losses", False) and losses is None:
        raise ValueError(f"the aggregator {aggregator.spec} needs per-task losses: pass losses=")
    return _MOOExpand.apply(y, aggregator, losses, n_tasks)


class MOOExpand(nn.Module):
    """Module form of :func:`moo_expand`; owns the aggregator (and so its state).

    Parameters
    ----------
    aggregator : Aggregator or None
    n_tasks : int
    """

    def __init__(self, aggregator: Optional[nn.Module], n_tasks: int):
        super().__init__()
        self.aggregator = aggregator
        self.n_tasks = n_tasks

    def extra_repr(self) -> str:
        return f"n_tasks={self.n_tasks}"

    def forward(self, y: Tensor, losses: Optional[Tensor] = None) -> Tensor:
        return moo_expand(y, self.aggregator, losses, self.n_tasks)
