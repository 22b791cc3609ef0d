"""GradNorm: learned task weights that balance gradient norms and training rates.

Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing in
Deep Multitask Networks", ICML 2018.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor, nn

from .base import MagnitudeMethod, check_hyperparameter

__all__ = ["GradNorm"]


class GradNorm(MagnitudeMethod):
    """GradNorm task weights (magnitude method, stateful).

    The weights ``w`` are an :class:`torch.nn.Parameter` of the module, so they
    are saved and restored with the model's ``state_dict`` and stepped by the
    model's optimizer together with the network. Each call of :meth:`weights`

    1. projects ``w`` back to the feasible set -- positive (at least
       ``min_weight``) and summing to ``K`` -- which is the paper's
       renormalisation after every optimizer step;
    2. records the first losses it sees as the initial losses ``L_k(0)``;
    3. accumulates into ``w.grad`` the gradient of the GradNorm loss
       ``sum_k |w_k ||g_k|| - mean_j(w_j ||g_j||) * r_k^alpha|`` with the
       target treated as a constant (as in the paper), where
       ``r_k = (L_k / L_k(0)) / mean_j(L_j / L_j(0))`` is the relative inverse
       training rate: ``d/dw_k = sign(w_k ||g_k|| - target_k) ||g_k||``;
    4. returns the (projected) weights.

    Everything stays on ``G``'s device with no host synchronisation.

    Losses must be positive (they are ratios against their initial values);
    they are clamped at ``1e-12`` so a zero loss cannot produce NaN. A
    non-finite loss contributes no gradient and is not recorded as an
    initial loss (the :class:`~heterovae.moo.Aggregator` raises on it).

    Parameters
    ----------
    n_tasks : int
        Number of tasks K (the size of the weight vector).
    alpha : float, default=1.5
        Asymmetry: how strongly tasks that train slower are pushed up
        (``0`` only equalises gradient norms). The paper uses 0.12 to 3.
    min_weight : float, default=1e-3
        Lower bound that keeps every weight positive.
    """

    name = "gradnorm"
    needs_losses = True
    needs_n_tasks = True

    def __init__(self, n_tasks: int, alpha: float = 1.5, min_weight: float = 1e-3):
        super().__init__()
        check_hyperparameter("n_tasks", n_tasks, kind=numbers.Integral, low=1, method=self.name)
        check_hyperparameter("alpha", alpha, low=0, method=self.name)
        check_hyperparameter("min_weight", min_weight, low=0, high=1, low_open=True, high_open=True,
                             method=self.name)
        self.n_tasks = int(n_tasks)
        self.alpha = alpha
        self.min_weight = min_weight
        self.weight = nn.Parameter(torch.ones(self.n_tasks))
        # NaN marks "not seen yet"; filled in without a host-side branch
        self.register_buffer("initial_losses", torch.full((self.n_tasks,), float("nan")))

    def reset(self) -> None:
        """Forget the initial losses and restart from uniform weights."""
        with torch.no_grad():
            self.weight.fill_(1.0)
            self.initial_losses.fill_(float("nan"))

    def _weights(self, T, losses: Tensor) -> Tensor:
        K = T.K
        if K != self.n_tasks:
            raise ValueError(f"gradnorm was built for n_tasks={self.n_tasks} but G has {K} rows")
        w = self.weight
        w.clamp_(min=self.min_weight)
        w.mul_(K / w.sum())

        losses = losses.clamp_min(1e-12)
        init = self.initial_losses
        init.copy_(torch.where(torch.isnan(init) & torch.isfinite(losses), losses.to(init.dtype), init))

        wg = w.to(T.dtype)
        norms = T.row_norms()
        weighted = wg * norms
        ratio = losses / init.to(T.dtype)
        rate = ratio / ratio.mean()
        target = weighted.mean() * rate**self.alpha
        grad = (torch.sign(weighted - target) * norms).to(w.dtype)
        # a non-finite loss (or a not yet recorded initial loss) must not poison
        # the parameter; the aggregator reports non-finite losses as errors
        grad = torch.where(torch.isfinite(grad), grad, torch.zeros_like(grad))
        if w.grad is None:
            w.grad = grad
        else:
            w.grad.add_(grad)
        return wg.clone()
