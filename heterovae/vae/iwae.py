"""Importance-weighted autoencoder over a mixed-type table (Burda et al., 2016).

Same encoder, decoder and fused column heads as :class:`HeterogeneousVAE`;
only the objective and the imputation differ:

- training maximises the K-sample importance-weighted bound
  ``log (1/K) sum_k p(x_obs | z_k) p(z_k) / q(z_k | x_obs)``, with the
  likelihood of missing cells masked out, as MIWAE does (Mattei & Frellsen,
  2019);
- imputation estimates the conditional ``p(x_mis | x_obs)`` by
  self-normalised importance sampling with the same proposal: the
  conditional mean of a numeric cell is ``sum_k w_k E[x | z_k]`` and the
  class probabilities of a discrete cell are ``sum_k w_k p(x = c | z_k)``,
  with ``w`` the normalised importance weights. This is the estimator whose
  error MIWAE reports, and a better one than decoding the posterior mean of
  ``z``, because the decoder is non-linear.

The heads already accept a leading sample dimension, so a multi-objective
aggregator at ``y`` sees each column's gradient flattened over the K samples
and the batch; column ``d``'s task is its weighted log-likelihood
``sum_k w_k log p(x_d | z_k)`` (the weights are the bound's own gradient
weights, so the tasks sum to the bound's gradient at ``y``).
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Dict, Optional

import torch

from .model import HeterogeneousVAE, gradnorm_losses

__all__ = ["IWAE", "snis_point"]

_LOG_2PI = math.log(2 * math.pi)


def _check_samples(name, value):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _expected_code(probs: torch.Tensor) -> torch.Tensor:
    codes = torch.arange(probs.shape[-1], device=probs.device, dtype=probs.dtype)
    return torch.round((probs * codes).sum(-1))


#: kind -> point estimate of a discrete column from its class probabilities
#: when ``how="mean"``; kinds not listed use the most probable class (the
#: "mean" of an unordered category is no category).
_DISCRETE_MEAN = {"ordinal": _expected_code}


def _log_space_centre(lik, raw: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``exp(sum_k w_k mu_k) - 1`` for ``log(1 + x) ~ N(mu, sigma)``: the median of the averaged log-location.

    The components' means ``exp(mu_k + sigma_k^2 / 2) - 1`` are hypersensitive
    to the scales the decoder predicts for low-weight proposals, which it was
    never trained to get right; on zero-inflated columns (adult's capital
    gain) their weighted average reached 1e32. Averaging in log space is
    insensitive to ``sigma`` and to single outlying proposals.
    """
    mu = lik.params(raw)["mu"]
    return torch.expm1(torch.clamp((weights[..., None] * mu).sum(0), max=80.0)).clamp_min(0.0)


#: Numbers in one imputation chunk's decodings (see IWAE.impute_rows).
_IMPUTE_ELEMENTS = 2**24

#: kind -> the estimate ``how="auto"`` takes under importance sampling when it
#: is not the likelihood's own ``default_point`` (see :func:`snis_point`).
_SNIS_AUTO = {"pos": _log_space_centre}


def snis_point(lik, raw: torch.Tensor, weights: torch.Tensor, how: str = "auto") -> torch.Tensor:
    """Point estimate of a likelihood group under a weighted mixture of its ``K`` decodings.

    Parameters
    ----------
    lik : Likelihood
        The group's likelihood.
    raw : Tensor of shape [K, N, n, n_params]
        Head outputs for the ``K`` latent samples of each row.
    weights : Tensor of shape [K, N]
        Normalised importance weights (each column sums to one).
    how : {"auto", "mean", "mode"}
        ``"auto"`` is the likelihood's ``default_point``, except for positive
        (LogNormal) columns, where it is the robust log-space centre
        ``exp(sum_k w_k mu_k) - 1`` (a median; the mixture mean overflows on
        zero-inflated columns). Numeric columns:
        ``"mean"`` is the mixture mean; ``"mode"`` the mode of the component
        with the largest weight (the mixture's own mode has no closed form).
        Discrete columns: the most probable class of the mixture, or for
        ``"mean"`` of an ordinal column its rounded expected code.

    Returns
    -------
    Tensor of shape [N, n]
    """
    if how == "auto" and lik.kind in _SNIS_AUTO:
        return _SNIS_AUTO[lik.kind](lik, raw, weights)
    how = lik.default_point if how == "auto" else how
    if how not in ("mean", "mode"):
        raise ValueError(f"how must be 'auto', 'mean' or 'mode', got {how!r}")
    w = weights[..., None]
    if lik.discrete:
        probs = (w[..., None] * lik.log_probs(raw).exp()).sum(0)
        if how == "mean" and lik.kind in _DISCRETE_MEAN:
            return _DISCRETE_MEAN[lik.kind](probs)
        return probs.argmax(-1).to(raw.dtype)
    if how == "mean":
        return (w * lik.mean(raw)).sum(0)
    best = weights.argmax(0)  # [N]
    return lik.mode(raw[best, torch.arange(raw.shape[1], device=raw.device)])


class IWAE(HeterogeneousVAE):
    """Heterogeneous importance-weighted autoencoder.

    Parameters
    ----------
    kinds, n_classes, latent_dim, hidden_dim, n_layers, cell_dropout, aggregator, aggregator_factory
        As in :class:`HeterogeneousVAE`.
    n_importance_samples : int, default=20
        ``K``, latent samples per row in the training bound.
    n_impute_samples : int, default=100
        Latent samples per row for importance-sampled imputation and
        sampling (more samples: a better estimate of ``p(x_mis | x_obs)``,
        at proportional cost).
    """

    def __init__(self, kinds, n_classes, latent_dim, hidden_dim=50, n_layers=3, cell_dropout=0.1,
                 aggregator=None, aggregator_factory=None, n_importance_samples: int = 20,
                 n_impute_samples: int = 100):
        super().__init__(kinds, n_classes, latent_dim, hidden_dim, n_layers, cell_dropout, aggregator,
                         aggregator_factory)
        self.n_importance_samples = _check_samples("n_importance_samples", n_importance_samples)
        self.n_impute_samples = _check_samples("n_impute_samples", n_impute_samples)

    @staticmethod
    def default_sizes(n_columns: int) -> Dict[str, float]:
        """Latent size D (at least 2), width 100, batches of 128, lr 1e-3 (not re-tuned; see docs/models.rst)."""
        return {"latent_dim": max(2, n_columns), "hidden_dim": 100, "batch_size": 128, "lr": 1e-3}

    # ------------------------------------------------------------ pieces
    def _proposal(self, x, encoder_observed, n_samples, generator=None, encoded=None, shared_noise=False):
        """``z [K, N, d]``, ``log p(z)`` and ``log q(z | x)`` ``[K, N]`` for K reparameterised draws.

        ``shared_noise`` gives every row the same K standard-normal draws
        (common random numbers): each row's estimate is then a function of
        that row alone, not of its position in the batch or of the batch size.
        """
        loc, scale = self.encode(x, encoder_observed, encoded)
        shape = (n_samples, 1, loc.shape[-1]) if shared_noise else (n_samples, *loc.shape)
        eps = torch.randn(shape, generator=generator, device=loc.device, dtype=loc.dtype)
        z = loc + scale * eps
        log_pz = (-0.5 * z**2 - 0.5 * _LOG_2PI).sum(-1)
        # (z - loc) / scale == eps, so this is log q(z) with its full dependence on the encoder
        log_qz = (-0.5 * eps**2 - torch.log(scale) - 0.5 * _LOG_2PI).sum(-1)
        return z, log_pz, log_qz

    def importance_weights(self, x: torch.Tensor, observed: torch.Tensor, n_samples: int,
                           generator: Optional[torch.Generator] = None, shared_noise: bool = False):
        """Decodings ``raw [K, N, P]`` and normalised weights ``[K, N]`` for ``x`` (already prepared)."""
        z, log_pz, log_qz = self._proposal(x, observed, n_samples, generator, shared_noise=shared_noise)
        raw = self.decode(z)
        log_w = (self.log_likelihood(raw, x) * observed).sum(-1) + log_pz - log_qz
        return raw, torch.softmax(log_w, dim=0)

    # ------------------------------------------------------------ objective
    def forward(self, x: torch.Tensor, observed: torch.Tensor, seen: Optional[torch.Tensor] = None,
                encoded: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Training objective: minus the masked K-sample bound per row, averaged over the batch.

        ``seen`` and ``encoded`` as in :meth:`HeterogeneousVAE.forward`.

        ``column_nll`` is each column's importance-weighted negative
        log-likelihood ``-sum_k w_k log p(x_d | z_k)`` and ``kl`` the weighted
        ``sum_k w_k (log q(z_k) - log p(z_k))``; with K = 1 they add up to the
        loss (a single-sample ELBO), for K > 1 the loss is lower than their
        sum by the weights' entropy term.
        """
        x = self.prepare(x, observed)
        z, log_pz, log_qz = self._proposal(x, self._encoder_mask(observed, seen), self.n_importance_samples,
                                           encoded=encoded)
        log_lik = self.log_likelihood(self.decode(z), x) * observed  # [K, N, D]
        log_w = log_lik.sum(-1) + log_pz - log_qz
        bound = torch.logsumexp(log_w, dim=0) - math.log(self.n_importance_samples)
        with torch.no_grad():
            w = torch.softmax(log_w, dim=0)
            column_nll = -(w[..., None] * log_lik).sum(0).mean(0)
            kl = (w * (log_qz - log_pz)).sum(0).mean()
        self.heads.state.losses = gradnorm_losses(column_nll)
        return {"loss": -bound.mean(), "column_nll": column_nll, "kl": kl}

    # ------------------------------------------------------------ imputation
    @property
    def impute_rows(self) -> int:
        """Rows per imputation chunk: the ``[K, rows, P]`` decodings stay near 2**24 numbers
        (64 MB in float32) whatever the number of categories."""
        return max(1, _IMPUTE_ELEMENTS // (self.n_impute_samples * self.heads.linear.out_features))

    def _generator(self, generator, device):
        # imputation must not depend on (or move) the global RNG
        return generator if generator is not None else torch.Generator(device=device).manual_seed(0)

    @torch.no_grad()
    def impute(self, x: torch.Tensor, observed: torch.Tensor, how: str = "auto",
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Self-normalised importance-sampling estimate of every cell ``[N, D]``.

        See :func:`snis_point` for ``how``. Uses :attr:`n_impute_samples`
        draws, the same for every row, so a row's estimate does not depend on
        the other rows; without a ``generator`` a fixed seed makes it
        deterministic.
        """
        x = self.prepare(x, observed)
        raw, w = self.importance_weights(x, observed, self.n_impute_samples, self._generator(generator, x.device),
                                         shared_noise=True)
        return self._to_columns([snis_point(lik, r, w, how) for lik, r in zip(self.likelihoods, self._split_raw(raw))])

    @torch.no_grad()
    def sample(self, x: torch.Tensor, observed: torch.Tensor, n_draws: int = 1,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draws from ``p(x | x_obs)`` by sampling importance resampling, ``[n_draws, N, D]``.

        Each draw picks one of :attr:`n_impute_samples` latent proposals with
        probability equal to its normalised weight, then samples every cell.
        """
        x = self.prepare(x, observed)
        generator = self._generator(generator, x.device)
        raw, w = self.importance_weights(x, observed, self.n_impute_samples, generator)
        pick = torch.multinomial(w.T, n_draws, replacement=True, generator=generator).T  # [n_draws, N]
        raw = raw[pick, torch.arange(x.shape[0], device=x.device)]
        return self._to_columns([lik.sample(r, generator) for lik, r in zip(self.likelihoods, self._split_raw(raw))])
