"""IWAE trained with doubly reparameterised gradients (DReG; Tucker, Lawson, Gu & Maddison, 2019).

The objective is the IWAE bound; only its gradient estimator changes. With
``log w_k = log p(x_obs, z_k) - log q(z_k | x_obs)``, ``z_k = mu + sigma eps_k``
and normalised weights ``w~_k``:

- decoder (and heads): ``sum_k w~_k grad_theta log p(x_obs, z_k)``, the
  ordinary IWAE gradient (``z_k`` does not depend on theta);
- encoder: ``sum_k w~_k^2 (d log w_k / d z_k) (d z_k / d phi)``, where
  ``log q`` is evaluated with its parameters held constant so that phi
  reaches the bound only through ``z``. The score-function term that makes
  the IWAE encoder gradient's signal-to-noise ratio vanish as K grows is
  gone (Rainforth et al., 2018), and the estimator stays unbiased.

The weights are constants in both. The two estimators are surrogate losses
on two passes through the decoder: one with ``z`` detached (trains theta,
weights ``w~``) and one with the decoder and heads held constant (trains phi
through ``z``, weights ``w~^2``). The second decoder pass is what DReG costs
over IWAE.

Multi-objective training
------------------------
Two losses, two independent aggregators, both at the decoder's last shared
feature ``y``, where per-column gradients come analytically from the fused
heads at no extra backward pass:

- the decoder's loss: column ``d``'s task is ``-sum_k w~_k log p(x_d | z_k)``
  (as in IWAE), aggregated by the heads' own aggregator and applied to the
  decoder's parameters;
- the encoder's loss: column ``d``'s task is ``-sum_k w~_k^2 log p(x_d | z_k)``;
  its per-column gradients at ``y`` (the last feature every column shares on
  the encoder's path ``phi -> z -> y -> heads``) go to a second aggregator,
  whose output travels back through the constant decoder to ``z`` and the
  encoder. Taking them at ``y`` rather than at ``z`` keeps them analytic; at
  ``z`` they would need one vector-Jacobian product through the decoder per
  column. The prior/proposal term ``w~^2 d(log p(z) - log q(z))/dz`` is no
  column's and is added to the encoder's gradient unaggregated, like the KL
  gradient of the VAE.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import torch
from torch.func import functional_call

from .heads import MOOState
from .iwae import IWAE
from .model import gradnorm_losses

__all__ = ["DReG"]

_LOG_2PI = math.log(2 * math.pi)


class DReG(IWAE):
    """Heterogeneous IWAE with the doubly reparameterised gradient estimator.

    Parameters are those of :class:`IWAE`. With an ``aggregator_factory`` the
    model builds two independent aggregators (decoder loss, encoder loss);
    a single ``aggregator`` instance is used for the decoder loss only.
    """

    def __init__(self, kinds, n_classes, latent_dim, hidden_dim=50, n_layers=3, cell_dropout=0.1,
                 aggregator=None, aggregator_factory=None, n_importance_samples: int = 20,
                 n_impute_samples: int = 100):
        super().__init__(kinds, n_classes, latent_dim, hidden_dim, n_layers, cell_dropout, aggregator,
                         aggregator_factory, n_importance_samples, n_impute_samples)
        self.encoder_aggregator = aggregator_factory() if aggregator_factory is not None else None
        self.encoder_state = MOOState()

    def _constant_decoder(self, z: torch.Tensor) -> torch.Tensor:
        params = {name: p.detach() for name, p in self.decoder.named_parameters()}
        return functional_call(self.decoder, params, (z,))

    def forward(self, x: torch.Tensor, observed: torch.Tensor, seen: Optional[torch.Tensor] = None,
                encoded: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """The IWAE loss value, with the DReG gradient.

        ``loss`` has the value of minus the K-sample bound (as
        :class:`IWAE`'s) but backpropagates the DReG surrogates; the
        ``column_nll`` and ``kl`` diagnostics are IWAE's.
        """
        x = self.prepare(x, observed)
        loc, scale = self.encode(x, self._encoder_mask(observed, seen), encoded)
        eps = torch.randn((self.n_importance_samples, *loc.shape), device=loc.device, dtype=loc.dtype)
        z = loc + scale * eps

        # decoder path: z constant
        log_lik_dec = self.log_likelihood(self.decode(z.detach()), x) * observed  # [K, N, D]
        # encoder path: decoder, heads and q's parameters constant; phi acts through z only
        raw_enc = self.heads.frozen(self._constant_decoder(z), self.encoder_aggregator, self.encoder_state)
        log_lik_enc = self.log_likelihood(raw_enc, x) * observed
        log_pz = (-0.5 * z**2 - 0.5 * _LOG_2PI).sum(-1)
        loc_c, scale_c = loc.detach(), scale.detach()
        log_qz = (-0.5 * ((z - loc_c) / scale_c) ** 2 - torch.log(scale_c) - 0.5 * _LOG_2PI).sum(-1)
        log_w = log_lik_enc.sum(-1) + log_pz - log_qz  # [K, N]; the value of IWAE's log-weights

        with torch.no_grad():
            w = torch.softmax(log_w, dim=0)
            bound = torch.logsumexp(log_w, dim=0) - math.log(self.n_importance_samples)
            column_nll = -(w[..., None] * log_lik_dec).sum(0).mean(0)
            self.encoder_state.losses = gradnorm_losses(-(w[..., None] ** 2 * log_lik_enc).sum(0).mean(0))
            kl = (w * (log_qz - log_pz)).sum(0).mean()
        decoder_surrogate = -(w[..., None] * log_lik_dec).sum((0, 2)).mean()
        encoder_surrogate = -(w**2 * log_w).sum(0).mean()
        surrogate = decoder_surrogate + encoder_surrogate
        self.heads.state.losses = gradnorm_losses(column_nll)
        loss = -bound.mean() + (surrogate - surrogate.detach())
        return {"loss": loss, "column_nll": column_nll, "kl": kl}
