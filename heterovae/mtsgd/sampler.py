"""A particle sampler for several unnormalised target densities at once."""

from __future__ import annotations

import inspect
import numbers
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from .._device import resolve_device
from .directions import get_direction
from .kernels import RadialKernel, get_kernel

__all__ = ["MultiTargetSampler"]

LogProb = Callable[[torch.Tensor], torch.Tensor]


class MultiTargetSampler(nn.Module):
    """Move a set of particles towards the joint high-density region of K targets.

    The particles live in an :class:`torch.nn.Parameter` of shape (M, P).
    :meth:`set_grad` computes the scores ``grad log p_k`` by autograd, turns
    them into an update direction with the chosen ``method`` and stores
    *minus* that direction in ``particles.grad``, so that the ``step()`` of any
    torch optimizer moves the particles along it. :meth:`step` and
    :meth:`run` do this with the optimizer built from ``optimizer`` and
    ``lr``.

    Parameters
    ----------
    log_probs : sequence of callables
        ``log_probs[k](x)`` maps particles ``x`` of shape (M, P) to the
        unnormalised log-densities of target ``k``, shape (M,), differentiably.
    particles : Tensor or array-like of shape (M, P)
        Initial particles. Copied; the caller's array is never modified. A
        non-floating input is cast to torch's default dtype.
    method : {"mt-sgd", "svgd", "moo-svgd"}, default="mt-sgd"
        Update rule, a key of :data:`~heterovae.mtsgd.directions.DIRECTIONS`:
        MT-SGD (Phan et al., 2022), SVGD on ``prod_k p_k^(1/K)``, or MOO-SVGD
        (Liu et al., 2021).
    kernel : str or RadialKernel, default="rbf"
        Kernel name (``"rbf"``, ``"imq"``) or instance, median bandwidth by
        default.
    optimizer : type of torch.optim.Optimizer or None, default=torch.optim.Adam
        Built as ``optimizer(self.parameters(), lr=lr, **optimizer_kwargs)``;
        any first-order optimizer (SGD, Adam, RMSprop, ...). Optimizers whose
        ``step`` needs a closure that re-evaluates a loss (LBFGS) are
        refused: the update is a direction, not the gradient of a loss.
        ``None`` builds none: drive the particles with your own optimizer via
        :meth:`set_grad`.
    lr : float, default=1e-2
    optimizer_kwargs : dict or None, default=None
    method_options : dict or None, default=None
        Extra keyword arguments of the update rule: ``ridge`` for
        ``"mt-sgd"`` and ``"moo-svgd"``, ``alpha`` (repulsion weight) for
        ``"moo-svgd"``.
    device : str, torch.device or None, default=None
        Where the particles live; by default where ``particles`` already are.

    Attributes
    ----------
    particles : torch.nn.Parameter of shape (M, P)
    optimizer : torch.optim.Optimizer or None
    weights_history : list of Tensor
        The weights returned by the update rule at every :meth:`set_grad`:
        shape (K,) for ``"mt-sgd"`` and ``"svgd"``, (M, K) for ``"moo-svgd"``.
    n_steps_ : int
        Number of :meth:`set_grad` calls so far.

    Examples
    --------
    >>> import torch
    >>> targets = [lambda x: -((x - 1.0) ** 2).sum(1), lambda x: -((x + 1.0) ** 2).sum(1)]
    >>> sampler = MultiTargetSampler(targets, torch.randn(20, 2), lr=0.05)
    >>> sampler.run(200).particles.shape
    torch.Size([20, 2])
    """

    def __init__(
        self,
        log_probs: Sequence[LogProb],
        particles,
        *,
        method: str = "mt-sgd",
        kernel: Union[str, RadialKernel] = "rbf",
        optimizer: Optional[type] = torch.optim.Adam,
        lr: float = 1e-2,
        optimizer_kwargs: Optional[Dict] = None,
        method_options: Optional[Dict] = None,
        device=None,
    ):
        super().__init__()
        if callable(log_probs) or not isinstance(log_probs, Sequence):
            raise TypeError(
                "log_probs must be a sequence of callables (one per target), got "
                f"{type(log_probs).__name__}"
            )
        if len(log_probs) < 1:
            raise ValueError("log_probs must hold at least one target")
        for k, f in enumerate(log_probs):
            if not callable(f):
                raise TypeError(f"log_probs[{k}] is not callable: {f!r}")
        self.log_probs = list(log_probs)
        self.method = method
        self._rule = get_direction(method)
        self.kernel = get_kernel(kernel)
        self.method_options = dict(method_options or {})
        try:
            inspect.signature(self._rule).bind(None, None, **self.method_options)
        except TypeError:
            raise ValueError(
                f"method_options {sorted(self.method_options)} are not all options "
                f"of method {method!r}"
            ) from None

        x = torch.as_tensor(
            particles.detach() if isinstance(particles, torch.Tensor)
            else np.array(particles)  # a copy: a DataFrame's values may be read-only
        )
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(
                f"particles must have shape (M, P) with M, P >= 1, got "
                f"{tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise ValueError("particles contain NaN or infinite values")
        if device is not None:
            x = x.to(resolve_device(device))
        self.particles = nn.Parameter(x.clone())

        if isinstance(lr, bool) or not (isinstance(lr, numbers.Real) and lr > 0):
            raise ValueError(f"lr must be a positive float, got {lr!r}")
        self.lr = float(lr)
        if optimizer is None:
            self.optimizer = None
        else:
            _check_closure_free(optimizer)
            self.optimizer = optimizer(
                self.parameters(), lr=lr, **(optimizer_kwargs or {})
            )
        self.weights_history: List[torch.Tensor] = []
        self.n_steps_ = 0

    @property
    def n_targets(self) -> int:
        return len(self.log_probs)

    def log_prob(self, x: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Log-densities of every target at ``x`` (default: the particles), shape (K, M).

        Parameters
        ----------
        x : Tensor of shape (N, P) or None, default=None
            Points at which to evaluate the targets; ``None`` takes the
            current particles (``N = M``).

        Returns
        -------
        Tensor of shape (K, N)
            ``log_probs[k](x)`` in row ``k``, computed without autograd.
        """
        x = self.particles.detach() if x is None else x
        with torch.no_grad():
            return torch.stack([self._call_target(k, x) for k in range(self.n_targets)])

    def _call_target(self, k: int, x: torch.Tensor) -> torch.Tensor:
        out = self.log_probs[k](x)
        if not isinstance(out, torch.Tensor) or out.shape != (x.shape[0],):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"log_probs[{k}] must return a tensor of shape (M,) = "
                f"({x.shape[0]},), got {shape}"
            )
        return out

    def scores(self) -> torch.Tensor:
        """``grad log p_k`` at every particle by autograd, shape (K, M, P)."""
        if torch.is_inference_mode_enabled():
            raise RuntimeError("the scores need autograd, which torch.inference_mode() disables; "
                               "step the sampler outside it")
        x = self.particles.detach().requires_grad_(True)
        grads = []
        for k in range(self.n_targets):
            with torch.enable_grad():
                lp = self._call_target(k, x)
                if not lp.requires_grad:
                    raise ValueError(
                        f"log_probs[{k}] is not differentiable in the particles "
                        "(its output does not require grad)"
                    )
                (g,) = torch.autograd.grad(lp.sum(), x, allow_unused=True)
            if g is None:
                raise ValueError(f"log_probs[{k}] does not depend on the particles (it ignores its input x)")
            if not torch.isfinite(lp).all():
                # a NaN density with finite gradients would move the particles
                # to where the target is undefined, without a word
                raise ValueError(f"log_probs[{k}] returned NaN or infinite values at the particles")
            if not torch.isfinite(g).all():
                raise ValueError(
                    f"the score of log_probs[{k}] has NaN or infinite entries"
                )
            grads.append(g)
        return torch.stack(grads)

    def direction(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The update direction at the current particles and the rule's weights."""
        scores = self.scores()
        terms = self.kernel(self.particles.detach())
        return self._rule(terms, scores, **self.method_options)

    def set_grad(self) -> torch.Tensor:
        """Store minus the update direction in ``particles.grad``; return the weights.

        Any torch optimizer's ``step()`` then moves the particles along the
        direction (a gradient-descent step on ``-direction``).
        """
        direction, weights = self.direction()
        self.particles.grad = -direction.detach()
        self.weights_history.append(weights.detach().cpu())
        self.n_steps_ += 1
        return weights

    def step(self) -> torch.Tensor:
        """One optimizer step along the update direction; returns the weights."""
        if self.optimizer is None:
            raise RuntimeError(
                "this sampler was built with optimizer=None; call set_grad() and "
                "step your own optimizer"
            )
        self.optimizer.zero_grad(set_to_none=True)
        weights = self.set_grad()
        self.optimizer.step()
        return weights

    def run(self, n_steps: int, callback: Optional[Callable] = None):
        """Take ``n_steps`` steps; ``callback(self, i)`` after each. Returns ``self``.

        Parameters
        ----------
        n_steps : int
            Number of :meth:`step` calls (0 or more).
        callback : callable or None, default=None
            Called as ``callback(self, i)`` after step ``i`` (counted from
            0), e.g. to record the particles.

        Returns
        -------
        self
        """
        if isinstance(n_steps, bool) or not isinstance(n_steps, numbers.Integral) or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}")
        for i in range(int(n_steps)):
            self.step()
            if callback is not None:
                callback(self, i)
        return self

    def extra_repr(self) -> str:
        m, p = self.particles.shape
        return (
            f"n_targets={self.n_targets}, n_particles={m}, dim={p}, "
            f"method={self.method!r}, kernel={self.kernel!r}"
        )


def _check_closure_free(optimizer: type) -> None:
    """Refuse optimizers whose ``step`` requires a closure (LBFGS): there is no loss to re-evaluate."""
    closure = inspect.signature(optimizer.step).parameters.get("closure")
    if closure is not None and closure.default is inspect.Parameter.empty:
        raise TypeError(
            f"optimizer {getattr(optimizer, '__name__', optimizer)!r} needs a closure that re-evaluates a "
            "loss in step(); the sampler's update is a direction with no loss behind it: use a "
            "first-order optimizer such as torch.optim.SGD or torch.optim.Adam"
        )
