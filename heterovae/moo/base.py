"""Abstract interfaces of the multi-objective gradient methods.

A method sees the task-gradient matrix ``G`` of shape ``[K, n]``: row ``k`` is
the gradient of task (column) ``k``'s loss with respect to the last shared
feature, flattened over the whole batch. Two families exist:

* :class:`MagnitudeMethod` -- returns one weight per task (``weights(G)``);
  the rows are rescaled, not rotated.
* :class:`DirectionMethod` -- returns one combined vector of shape ``[n]``
  (``combine(G)``) that replaces ``G.sum(0)``; it may change the direction of
  the individual gradients (projection, sign dropping, ...).

:class:`~heterovae.moo.aggregator.Aggregator` composes one of each.

Subclasses implement ``_weights`` / ``_combine``; the public methods validate
the input first, so every method fails the same way on bad input.
"""

from __future__ import annotations

import abc
import inspect
import math
import numbers
from typing import ClassVar, Optional

import torch
from torch import Tensor, nn

from ._gradients import TaskGradients

__all__ = ["MagnitudeMethod", "DirectionMethod", "check_gradient_matrix", "check_losses"]


def check_gradient_matrix(G) -> Tensor:
    """Check that ``G`` is a floating ``[K, n]`` tensor with ``K >= 1``.

    Raises
    ------
    TypeError, ValueError
        Naming the argument ``G`` and what is wrong with it.
    """
    if not isinstance(G, Tensor):
        raise TypeError(f"G must be a torch.Tensor of shape [K, n], got {type(G).__name__}")
    if G.ndim != 2:
        raise ValueError(f"G must have shape [K, n] (2 dimensions), got shape {tuple(G.shape)}")
    if G.shape[0] < 1:
        raise ValueError("G must have at least one row (one task), got K=0")
    if not G.is_floating_point():
        raise TypeError(f"G must have a floating dtype, got {G.dtype}")
    return G


def check_losses(losses, G: Tensor, required: bool, method: str) -> Optional[Tensor]:
    """Check the optional per-task losses against ``G``; return them detached in ``G``'s dtype."""
    if losses is None:
        if required:
            raise ValueError(
                f"{method} needs the per-task losses: pass losses=<tensor of shape [K]> "
                f"(K={G.shape[0]})"
            )
        return None
    losses = torch.as_tensor(losses).detach()
    if losses.shape != (G.shape[0],):
        raise ValueError(
            f"losses must have shape [K]=[{G.shape[0]}] (one loss per row of G), "
            f"got shape {tuple(losses.shape)}"
        )
    return losses.to(dtype=G.dtype, device=G.device)


def check_hyperparameter(name: str, value, *, kind=numbers.Real, low=None, high=None,
                         low_open=False, high_open=False, method: str = ""):
    """Validate one scalar hyperparameter; raise ``ValueError`` naming it."""
    where = f"{method}: " if method else ""
    if isinstance(value, bool) or not isinstance(value, kind):
        what = {numbers.Integral: "an integer", numbers.Real: "a real number"}.get(kind, kind.__name__)
        raise ValueError(f"{where}{name} must be {what}, got {value!r}")
    if not math.isfinite(value):  # NaN slips through every comparison below
        raise ValueError(f"{where}{name} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{where}{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{where}{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


def tiny(dtype: torch.dtype) -> float:
    """The smallest positive normal number of ``dtype``: our zero-norm threshold."""
    return torch.finfo(dtype).tiny


class _MethodBase(nn.Module, abc.ABC):
    #: Registry name of the method.
    name: ClassVar[str] = ""
    #: Whether two calls on the same input return the same output (no sampling).
    deterministic: ClassVar[bool] = True
    #: Whether the constructor takes ``n_tasks`` (state sized by the number of tasks).
    needs_n_tasks: ClassVar[bool] = False

    def check_n_tasks(self, n_tasks: int) -> None:
        """Raise ``ValueError`` if the hyperparameters do not fit ``n_tasks`` tasks (checked at build)."""

    def extra_repr(self) -> str:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return ", ".join(f"{p}={getattr(self, p)!r}" for p in names if hasattr(self, p))


class MagnitudeMethod(_MethodBase):
    """A method that rescales the task gradients: it returns task weights ``w``.

    The combined gradient is ``w @ G`` (or a direction method applied to
    ``w[:, None] * G``). Weights are non-negative for every magnitude method
    here except IMTL-G, whose closed form can give negative weights (see
    :class:`~heterovae.moo.imtlg.IMTLG`).
    """

    #: Whether :meth:`weights` requires the per-task ``losses``.
    needs_losses: ClassVar[bool] = False

    def weights(self, G: Tensor, losses: Optional[Tensor] = None) -> Tensor:
        """Task weights.

        Parameters
        ----------
        G : Tensor of shape [K, n]
            Per-task gradients (one row per task), not modified.
        losses : Tensor of shape [K], optional
            Current per-task losses (detached); required by methods with
            ``needs_losses = True``.

        Returns
        -------
        Tensor of shape [K]
            Same dtype and device as ``G``; no autograd history.
        """
        G = check_gradient_matrix(G)
        losses = check_losses(losses, G, self.needs_losses, self.name)
        with torch.no_grad():
            return self._weights(TaskGradients(G.detach()), losses)

    def forward(self, G: Tensor, losses: Optional[Tensor] = None) -> Tensor:
        return self.weights(G, losses)

    @abc.abstractmethod
    def _weights(self, T: TaskGradients, losses: Optional[Tensor]) -> Tensor:
        """Compute the weights of validated, detached gradients (see ``_gradients.py``)."""


class DirectionMethod(_MethodBase):
    """A method that returns the combined gradient vector directly."""

    def combine(self, G: Tensor) -> Tensor:
        """Combined gradient replacing ``G.sum(0)``.

        Parameters
        ----------
        G : Tensor of shape [K, n]
            Per-task gradients (possibly already weighted by a magnitude
            method), not modified.

        Returns
        -------
        Tensor of shape [n]
            Same dtype and device as ``G``; no autograd history.
        """
        G = check_gradient_matrix(G)
        with torch.no_grad():
            return self._combine(TaskGradients(G.detach()))

    def forward(self, G: Tensor) -> Tensor:
        return self.combine(G)

    @abc.abstractmethod
    def _combine(self, T: TaskGradients) -> Tensor:
        """Combine validated, detached gradients (see ``_gradients.py``)."""
