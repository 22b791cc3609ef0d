"""Compose a magnitude method and a direction method into one gradient aggregator."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor, nn

from ._gradients import TaskGradients
from .base import DirectionMethod, MagnitudeMethod, check_gradient_matrix, check_losses, tiny

__all__ = ["Aggregator"]


class Aggregator(nn.Module):
    """Turn the task-gradient matrix ``G [K, n]`` into one gradient ``[n]``.

    ``forward`` computes

    1. ``w = magnitude.weights(G, losses)`` (ones without a magnitude method);
    2. ``d = direction.combine(w[:, None] * G)`` (``(w[:, None] * G).sum(0)``
       without a direction method);
    3. with ``rescale=True``, ``d * ||G.sum(0)|| / ||d||``.

    Rescaling keeps the step length of plain training (the norm of the plain
    sum of task gradients), so a method only changes the *direction* of the
    update and the optimizer's learning rate keeps its meaning: MGDA's
    min-norm point, for instance, is usually much shorter than the sum, and
    IMTL-G's weights sum to one rather than K. If ``d`` is zero (e.g. a
    Pareto-stationary point) the output is zero; if the plain sum is zero
    (exactly cancelling gradients) the output is zero too, as the plain step
    would be.

    Parameters
    ----------
    magnitude : MagnitudeMethod or None
    direction : DirectionMethod or None
    rescale : bool, default=True
    check_finite : bool, default=True
        Never return a non-finite gradient: raise a ``ValueError`` naming the
        offending tasks when ``G`` (or the losses) contain NaN or inf, or
        saying that the gradients overflow when they are finite but their
        Gram matrix is not. Costs one check of the output, which on CUDA is
        one host synchronisation per call; turn it off for
        synchronisation-free steps.

    Notes
    -----
    Stateful methods (GradNorm's weights) are submodules, so they follow the
    owning model's ``.to(device)``, ``state_dict`` and optimizer.
    """

    def __init__(self, magnitude: Optional[MagnitudeMethod] = None,
                 direction: Optional[DirectionMethod] = None, rescale: bool = True,
                 check_finite: bool = True):
        super().__init__()
        if magnitude is not None and not isinstance(magnitude, MagnitudeMethod):
            raise TypeError(f"magnitude must be a MagnitudeMethod or None, got {type(magnitude).__name__}")
        if direction is not None and not isinstance(direction, DirectionMethod):
            raise TypeError(f"direction must be a DirectionMethod or None, got {type(direction).__name__}")
        if not isinstance(rescale, bool):
            raise TypeError(f"rescale must be a bool, got {rescale!r}")
        if not isinstance(check_finite, bool):
            raise TypeError(f"check_finite must be a bool, got {check_finite!r}")
        self.magnitude = magnitude
        self.direction = direction
        self.rescale = rescale
        self.check_finite = check_finite

    @property
    def spec(self):
        """The canonical ``(magnitude, direction)`` name pair."""
        return (self.magnitude.name if self.magnitude is not None else "none",
                self.direction.name if self.direction is not None else "none")

    @property
    def needs_losses(self) -> bool:
        return self.magnitude is not None and self.magnitude.needs_losses

    def extra_repr(self) -> str:
        return f"rescale={self.rescale}, check_finite={self.check_finite}"

    #: ``forward`` also takes a ``heterovae.moo._gradients.TaskGradients``
    #: (e.g. the factored gradients of a fused head) in place of ``G``.
    accepts_task_gradients = True

    def forward(self, G, losses: Optional[Tensor] = None) -> Tensor:
        """Aggregate ``G`` ([K, n]); ``losses`` ([K], detached) feed GradNorm.

        ``G`` may also be a ``TaskGradients`` object, which supplies the Gram
        matrix and combinations ``v @ G`` without the explicit matrix (see
        ``heterovae.moo._gradients.HeadGradients``).

        Returns a tensor of shape [n] with ``G``'s dtype and device and no
        autograd history; ``G`` is not modified.

        Parameters
        ----------
        G : Tensor of shape [K, n] or TaskGradients
            Per-task gradients, one row per task.
        losses : Tensor of shape [K] or None, default=None
            Current per-task losses (detached); required when the magnitude
            method has ``needs_losses = True`` (GradNorm).

        Returns
        -------
        Tensor of shape [n]
            The aggregated gradient (zero when the combination or, with
            ``rescale``, the plain sum is zero).
        """
        if isinstance(G, TaskGradients):
            T = G
        else:
            T = TaskGradients(check_gradient_matrix(G).detach())
        losses = check_losses(losses, T, self.needs_losses, "aggregator")
        with torch.no_grad():
            try:
                d = self._aggregate(T, losses)
            except (torch.linalg.LinAlgError, ValueError) as error:  # numpy's LinAlgError is a ValueError
                if self.check_finite:
                    _check_finite_input(T.base, losses)
                if isinstance(error, (torch.linalg.LinAlgError, np.linalg.LinAlgError)):
                    raise ValueError(f"{self.spec}: {_OVERFLOW_HINT}") from error
                raise
            # one check of the output (a single host sync); inputs are only
            # inspected when it fails, to name the tasks at fault
            if self.check_finite and not bool(torch.isfinite(_checksum(d, losses, self.needs_losses))):
                _check_finite_input(T.base, losses)
                if not bool(torch.isfinite(d).all()):
                    raise ValueError(f"{self.spec}: {_OVERFLOW_HINT}")
            return d

    def _aggregate(self, T: TaskGradients, losses: Optional[Tensor]) -> Tensor:
        plain = T
        if self.magnitude is not None:
            # call the method's core directly (G is validated) so that it shares
            # the Gram matrix with the direction method
            T = T.scaled(_drop_rounding_noise(self.magnitude._weights(T, losses), T.row_norms()))
        if self.direction is not None:
            d = self.direction._combine(T)
        else:
            d = T.combine(torch.ones(T.K, dtype=T.dtype, device=T.device))
        if not self.rescale:
            return d
        norm_d = _scaled_norm(d)
        ok = norm_d > tiny(d.dtype)
        target = _scaled_norm(plain.total())
        return d * torch.where(ok, target / torch.where(ok, norm_d, torch.ones_like(norm_d)), 0)


def _scaled_norm(x: Tensor) -> Tensor:
    """``||x||`` computed as ``max|x| * ||x / max|x|| ||``.

    A float32 step with entries near 1e19 is finite while its plain norm
    overflows to inf, which would rescale it to zero; the ratio is exact.
    """
    largest = x.abs().amax()
    safe = torch.where(largest > 0, largest, torch.ones_like(largest))
    return safe * torch.linalg.vector_norm(x / safe)


def _drop_rounding_noise(w: Tensor, norms: Tensor) -> Tensor:
    """Set to zero the weights whose contribution ``|w_k| ||g_k||`` is below rounding level of the largest.

    A QP solver returns, e.g., ``3.8e-19`` for a task it excludes, and the
    next float may round to ``0``. A direction method reads the scaled rows
    through their directions (PCGrad projects onto any row with a non-zero
    norm), so it would treat such a task as a full constraint or not at all
    depending on that rounding. The test is on contributions, not weights:
    IMTL-G and Nash-MTL give weights near ``1 / ||g_k||``, so with gradient
    norms spanning more than ``1 / eps`` the largest task's weight is tiny
    next to the others' while its share of the step is theirs.
    """
    share = w.abs() * norms
    largest = share.max()
    # False for NaN (it stays visible) and when the norms overflow (the finite checks report it)
    negligible = (share <= torch.finfo(w.dtype).eps * largest) & torch.isfinite(largest)
    return torch.where(negligible, torch.zeros_like(w), w)


def _checksum(d: Tensor, losses: Optional[Tensor], use_losses: bool) -> Tensor:
    """A scalar that is non-finite if ``d`` (or the losses a method reads) is: NaN and inf survive sums."""
    total = d.sum()
    return total + losses.sum() if use_losses and losses is not None else total


_OVERFLOW_HINT = (
    "the combined gradient is not finite although every task gradient is: their "
    "squared norms overflow the dtype (the methods work on the Gram matrix G G^T); "
    "the gradients are exploding -- lower the learning rate or use float64"
)


def _check_finite_input(G: Tensor, losses: Optional[Tensor]) -> None:
    bad_rows = ~torch.isfinite(G).all(dim=1)
    if losses is not None:
        bad_rows = bad_rows | ~torch.isfinite(losses)
    tasks = bad_rows.nonzero().flatten().tolist()
    if tasks:
        raise ValueError(
            f"the task gradients (or losses) of task(s) {tasks} contain NaN or inf; "
            "the per-task losses are not finite (check the data and the learning rate)"
        )
