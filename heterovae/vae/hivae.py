"""HI-VAE: the heterogeneous-incomplete VAE of Nazabal, Olmos, Ghahramani & Valera (2020).

The generative model has a categorical latent ``s`` (a mixture component)
and a Gaussian latent ``z`` whose prior mean depends on ``s``:

- ``p(s) = Categorical(1/d_s, ..., 1/d_s)``;
- ``p(z | s) = N(mu_0(s), I)`` with ``mu_0`` linear in the one-hot ``s``;
- ``y = W z + b``, one slice ``y_d`` per column (the column's own units of
  a shared linear layer);
- ``p(x_d | z, s)`` with parameters ``h_d(y_d, s)``: the location-like
  parameter (the Gaussian mean, the Poisson rate, the Bernoulli logit, the
  categorical logits, the ordinal location) is linear in ``(y_d, s)``; the
  remaining ones (Gaussian scale, ordinal thresholds) are linear in ``s``
  alone, as in the paper, so they are shared by the rows of a mixture
  component.

Inference: ``q(s | x) = Categorical(softmax(A x~))`` and
``q(z | x, s) = N(mu_q(x~, s), sigma_q(x~, s)^2)``, both linear in the
normalised, zero-filled input ``x~`` (and ``s``). Training maximises the
masked ELBO ``sum_d m_d log p(x_d | z, s) - KL(q(z|x,s) || p(z|s)) -
KL(q(s|x) || p(s))`` with both KL terms in closed form, a Gumbel-softmax
sample of ``s`` whose temperature anneals per epoch
(``max(1e-3, 1 - 0.01 * epoch)``, the schedule of the reference code), and a
reparameterised ``z``. Evaluation uses the mode of ``q(s | x)`` and the mean
of ``q(z | x, s)``.

Normalisation: the paper's input/output normalisation layers are the
likelihoods' own scaling (standardised reals, standardised ``log(1 + x)``
for positive and count columns), fitted once on the training data and kept
fixed, so a row's imputation never depends on the batch it arrives in. (The
reference code normalised each batch by its own statistics, at evaluation
too.)

Multi-objective training
------------------------
Two features are shared by all columns: ``z`` (through the shared layer
``W``; the slices ``y_d`` themselves are per column, so per-column gradients
at ``y`` would never conflict) and ``s`` (read by every head). Each feeds
the heads through :func:`heterovae.moo.moo_expand` with its own aggregator:
the expansion makes each column's head read its own copy, so one ordinary
backward pass leaves the per-column gradients at ``z`` and at ``s`` in two
``[D, ...]`` tensors. The KL terms reach ``z``'s and ``s``'s encoders
directly, outside the aggregation.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..moo import moo_expand
from .model import MixedTableModel, gradnorm_losses, point_estimate

__all__ = ["HIVAE", "gumbel_softmax_temperature", "categorical_kl_uniform", "gaussian_kl_unit_scale_prior"]

_LOG_2PI = math.log(2 * math.pi)
# log-scale clip of q(z | x, s), as in the reference code (its log-variance in [-15, 15])
_LOG_SCALE_RANGE = 7.5

#: kinds whose every parameter is a function of (y_d, s): the categorical
#: logits. Every other kind's first parameter is; the rest (Gaussian scales,
#: ordinal thresholds) depend on s alone.
_ALL_PARAMS_FROM_Y = {"cat"}


def gumbel_softmax_temperature(epoch: int, start: float = 1.0, rate: float = 0.01, minimum: float = 1e-3) -> float:
    """The annealed Gumbel-softmax temperature ``max(minimum, start - rate * epoch)``."""
    return max(float(minimum), float(start) - float(rate) * int(epoch))


def categorical_kl_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(Categorical(softmax(logits)) || Uniform) over the last dimension."""
    log_p = torch.log_softmax(logits, dim=-1)
    return (log_p.exp() * log_p).sum(-1) + math.log(logits.shape[-1])


def gaussian_kl_unit_scale_prior(loc: torch.Tensor, scale: torch.Tensor, prior_loc: torch.Tensor) -> torch.Tensor:
    """KL(N(loc, scale^2) || N(prior_loc, I)) summed over the last dimension."""
    return 0.5 * (scale**2 + (loc - prior_loc) ** 2 - 1.0 - 2.0 * torch.log(scale)).sum(-1)


def _lognormal_mode(lik, raw: torch.Tensor) -> torch.Tensor:
    return lik.mode(raw)


#: HI-VAE's ``impute_with="auto"`` overrides: positive columns take the
#: LogNormal mode ``exp(mu - sigma^2) - 1``, as the reference implementation
#: imputes. Its scales are per mixture component (functions of ``s`` alone),
#: wide on zero-inflated columns, and a location error of a few log units is
#: a factor of 20-100 in the original units: on credit (2000 rows) the
#: median's numeric NRMSE was 3.06, the mode's 0.085.
HIVAE_AUTO_POINT = {"pos": _lognormal_mode}


def _uniform_(t: torch.Tensor, fan_in: int) -> torch.Tensor:
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return nn.init.uniform_(t, -bound, bound)


class HIVAE(MixedTableModel):
    """HI-VAE over a mixed-type table.

    Parameters
    ----------
    kinds : sequence of str
        Likelihood kind of each column.
    n_classes : sequence of int or None
        Number of categories of each column (``None`` for numeric kinds).
    latent_dim : int, default=10
        ``d_z``, size of the Gaussian latent.
    hidden_dim : int or None, default=None
        Width of ``y``; each column gets ``max(1, hidden_dim // D)`` units.
        ``None``: ``5 D`` (five units per column).
    s_dim : int, default=10
        ``d_s``, number of mixture components.
    cell_dropout : float, default=0.0
        Probability of hiding an observed cell from the encoder in training
        (it is still reconstructed).
    aggregator_factory : callable or None
        Returns a new multi-objective aggregator (or ``None``); called twice,
        for ``z`` and for ``s``.
    temperature_start, temperature_rate, temperature_min : float
        Gumbel-softmax schedule ``max(min, start - rate * epoch)``.
    """

    def __init__(self, kinds: Sequence[str], n_classes: Sequence[Optional[int]], latent_dim: int = 10,
                 hidden_dim: Optional[int] = None, s_dim: int = 10, cell_dropout: float = 0.0,
                 aggregator_factory=None, temperature_start: float = 1.0, temperature_rate: float = 0.01,
                 temperature_min: float = 1e-3):
        super().__init__(kinds, n_classes)
        for name, value in (("latent_dim", latent_dim), ("s_dim", s_dim)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        D = self.n_columns
        hidden_dim = 5 * D if hidden_dim is None else int(hidden_dim)
        self.y_dim = max(1, hidden_dim // D)
        self.s_dim = int(s_dim)
        self.latent_dim = int(latent_dim)
        self.cell_dropout = float(cell_dropout)
        self.temperature_start, self.temperature_rate, self.temperature_min = (
            float(temperature_start), float(temperature_rate), float(temperature_min))
        self.temperature = self.temperature_start

        enc_in = sum(lik.encoding_dim for lik in self.likelihoods)
        self.encoder_s = nn.Linear(enc_in, self.s_dim)
        self.encoder_z = nn.Linear(enc_in + self.s_dim, 2 * self.latent_dim)
        self.prior_z_loc = nn.Linear(self.s_dim, self.latent_dim)

        # y = W z + b, as one [D, y_dim, d_z] weight so that column d reads its own copy of z
        self.y_weight = nn.Parameter(_uniform_(torch.empty(D, self.y_dim, self.latent_dim), self.latent_dim))
        self.y_bias = nn.Parameter(_uniform_(torch.empty(D, self.y_dim), self.latent_dim))
        # heads h_d(y_d, s), padded to the widest column; units a column does not use stay zero
        n_params = [0] * D
        reads_y = [0] * D
        for lik, cols in zip(self.likelihoods, self.group_columns):
            for d in cols:
                n_params[d] = lik.n_params
                reads_y[d] = lik.n_params if lik.kind in _ALL_PARAMS_FROM_Y else 1
        self.max_params = max(n_params)
        units = torch.arange(self.max_params)
        used = units[None, :] < torch.tensor(n_params)[:, None]
        from_y = units[None, :] < torch.tensor(reads_y)[:, None]
        self.register_buffer("head_y_mask", from_y[..., None].float(), persistent=False)  # [D, P, 1]
        self.register_buffer("head_s_mask", used[..., None].float(), persistent=False)
        self.head_y = nn.Parameter(_uniform_(torch.empty(D, self.max_params, self.y_dim), self.y_dim + self.s_dim))
        self.head_s = nn.Parameter(_uniform_(torch.empty(D, self.max_params, self.s_dim), self.y_dim + self.s_dim))

        self.aggregator_z = aggregator_factory() if aggregator_factory is not None else None
        self.aggregator_s = aggregator_factory() if aggregator_factory is not None else None

    @staticmethod
    def default_sizes(n_columns: int) -> Dict[str, float]:
        """The paper's sizes, ``d_z = 10`` and ``y`` of width ``5 D``; batches of 128 at lr 3e-3.

        The paper's batches of 1000 at lr 1e-3 take few steps in 100 epochs
        (200 on 1,600 training rows) and left HI-VAE undertrained: batches
        of 128 at lr 3e-3 lowered its error on all five benchmark tables, at
        2,000 rows (credit 0.323 to 0.187) and at 8,000 (credit 0.191 to
        0.173), in 1.4-6x the time (docs/models.rst).
        """
        return {"latent_dim": 10, "hidden_dim": 5 * n_columns, "batch_size": 128, "lr": 3e-3}

    def set_epoch(self, epoch: int) -> None:
        """Anneal the Gumbel-softmax temperature (called at the start of each epoch)."""
        self.temperature = gumbel_softmax_temperature(epoch, self.temperature_start, self.temperature_rate,
                                                      self.temperature_min)

    # ------------------------------------------------------------ networks
    def encode_s(self, x: torch.Tensor, observed: torch.Tensor, encoded: Optional[torch.Tensor] = None):
        """Normalised encoder input and the logits of ``q(s | x)``."""
        inputs = self.column_encodings(x, observed, encoded)
        return inputs, self.encoder_s(inputs)

    def encode_z(self, inputs: torch.Tensor, s: torch.Tensor):
        """Mean and scale of ``q(z | x, s)``."""
        loc, log_scale = self.encoder_z(torch.cat([inputs, s], dim=-1)).chunk(2, dim=-1)
        return loc, torch.exp(log_scale.clamp(-_LOG_SCALE_RANGE, _LOG_SCALE_RANGE))

    def _expand(self, t: torch.Tensor, aggregator, losses):
        if aggregator is None or not torch.is_grad_enabled():
            return t.expand(self.n_columns, *t.shape)
        return moo_expand(t, aggregator, losses, self.n_columns)

    def decode(self, z: torch.Tensor, s: torch.Tensor, losses: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Padded raw head outputs ``[D, ..., N, P_max]`` of every column.

        ``losses`` ([D], filled in place before backward) feed loss-based
        aggregators such as GradNorm.
        """
        z_d = self._expand(z, self.aggregator_z, losses)  # [D, ..., N, d_z]
        s_d = self._expand(s, self.aggregator_s, losses)
        lead = z_d.shape[1:-1]
        z_flat = z_d.reshape(self.n_columns, -1, self.latent_dim)
        s_flat = s_d.expand(self.n_columns, *lead, self.s_dim).reshape(self.n_columns, -1, self.s_dim)
        y = torch.baddbmm(self.y_bias[:, None, :], z_flat, self.y_weight.transpose(1, 2))  # [D, M, y_dim]
        raw = (torch.bmm(y, (self.head_y * self.head_y_mask).transpose(1, 2))
               + torch.bmm(s_flat, (self.head_s * self.head_s_mask).transpose(1, 2)))
        return raw.reshape(self.n_columns, *lead, self.max_params)

    def _split_raw(self, raw: torch.Tensor):
        """Per-group raw parameters ``[..., N, n, n_params]`` from the padded ``[D, ..., N, P_max]``."""
        return [raw[cols, ..., :lik.n_params].movedim(0, -2) for lik, cols in zip(self.likelihoods, self.group_columns)]

    def log_likelihood(self, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-cell log-likelihood ``[..., N, D]`` in original units (unmasked)."""
        parts = [lik.log_prob(r, xg) for lik, r, xg in zip(self.likelihoods, self._split_raw(raw), self._by_group(x))]
        return self._to_columns(parts)

    def _point(self, raw: torch.Tensor, how: str) -> torch.Tensor:
        return self._to_columns([point_estimate(lik, r, how, HIVAE_AUTO_POINT) for lik, r in zip(self.likelihoods, self._split_raw(raw))])

    # ------------------------------------------------------------ objective
    def forward(self, x: torch.Tensor, observed: torch.Tensor, seen: Optional[torch.Tensor] = None,
                encoded: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Minus the masked ELBO per row, averaged over the batch.

        ``seen`` and ``encoded`` as in :meth:`HeterogeneousVAE.forward`.

        Returns ``loss``, ``column_nll`` (per column, detached), ``kl`` (both
        KL terms) and, separately, ``kl_z`` and ``kl_s``. In evaluation mode
        ``s`` is the mode of ``q(s | x)`` rather than a relaxed sample.
        """
        x = self.prepare(x, observed)
        inputs, s_logits = self.encode_s(x, self._encoder_mask(observed, seen), encoded)
        if self.training:
            s = F.gumbel_softmax(s_logits, tau=self.temperature, hard=False)
        else:
            s = F.one_hot(s_logits.argmax(-1), self.s_dim).to(s_logits.dtype)
        loc, scale = self.encode_z(inputs, s)
        z = loc + scale * torch.randn_like(loc)
        losses = torch.zeros(self.n_columns, device=x.device, dtype=x.dtype)
        log_lik = self.log_likelihood(self.decode(z, s, losses), x) * observed
        column_nll = -log_lik.sum(0) / x.shape[0]
        losses.copy_(gradnorm_losses(column_nll))
        kl_z = gaussian_kl_unit_scale_prior(loc, scale, self.prior_z_loc(s)).mean()
        kl_s = categorical_kl_uniform(s_logits).mean()
        kl = kl_z + kl_s
        return {"loss": column_nll.sum() + kl, "column_nll": column_nll.detach(), "kl": kl.detach(),
                "kl_z": kl_z.detach(), "kl_s": kl_s.detach()}

    # ------------------------------------------------------------ evaluation
    def _mode_of_s(self, s_logits):
        return F.one_hot(s_logits.argmax(-1), self.s_dim).to(s_logits.dtype)

    @torch.no_grad()
    def impute(self, x: torch.Tensor, observed: torch.Tensor, how: str = "auto") -> torch.Tensor:
        """Point estimate ``[N, D]`` at the mode of ``q(s | x)`` and the mean of ``q(z | x, s)``.

        ``how`` as in :meth:`HeterogeneousVAE.impute`. Row by row: no
        statistic of the batch enters.
        """
        x = self.prepare(x, observed)
        inputs, s_logits = self.encode_s(x, observed)
        s = self._mode_of_s(s_logits)
        loc, _ = self.encode_z(inputs, s)
        return self._point(self.decode(loc, s), how)

    def _posterior_draws(self, x, observed, n, generator):
        inputs, s_logits = self.encode_s(x, observed)
        probs = torch.softmax(s_logits, dim=-1)
        codes = torch.multinomial(probs, n, replacement=True, generator=generator).T  # [n, N]
        s = F.one_hot(codes, self.s_dim).to(x.dtype)
        loc, scale = self.encode_z(inputs.expand(n, *inputs.shape), s)
        eps = torch.randn(loc.shape, generator=generator, device=loc.device, dtype=loc.dtype)
        return s, s_logits, loc, scale, eps

    @torch.no_grad()
    def sample(self, x: torch.Tensor, observed: torch.Tensor, n_draws: int = 1,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draws ``[n_draws, N, D]``: ``s ~ q(s|x)``, ``z ~ q(z|x,s)``, every cell from its likelihood."""
        x = self.prepare(x, observed)
        s, _, loc, scale, eps = self._posterior_draws(x, observed, n_draws, generator)
        raw = self.decode(loc + scale * eps, s)
        return self._to_columns([lik.sample(r, generator) for lik, r in zip(self.likelihoods, self._split_raw(raw))])

    @torch.no_grad()
    def log_marginal_bound(self, x: torch.Tensor, observed: torch.Tensor, n_samples: int = 10,
                           generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Importance-weighted lower bound on ``log p(x_obs)`` per row, ``[N]``.

        Proposal ``q(s | x) q(z | x, s)`` with ``s`` drawn exactly (no
        relaxation), so the bound is valid for the discrete model.
        """
        x = self.prepare(x, observed)
        s, s_logits, loc, scale, eps = self._posterior_draws(x, observed, n_samples, generator)
        z = loc + scale * eps
        log_px = (self.log_likelihood(self.decode(z, s), x) * observed).sum(-1)
        log_pz = (-0.5 * (z - self.prior_z_loc(s)) ** 2 - 0.5 * _LOG_2PI).sum(-1)
        log_qz = (-0.5 * eps**2 - torch.log(scale) - 0.5 * _LOG_2PI).sum(-1)
        log_qs = (s * torch.log_softmax(s_logits, dim=-1)).sum(-1)
        log_ps = -math.log(self.s_dim)
        log_w = log_px + log_pz + log_ps - log_qz - log_qs
        return torch.logsumexp(log_w, dim=0) - math.log(n_samples)
