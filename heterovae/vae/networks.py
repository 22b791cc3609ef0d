"""Encoder and decoder networks of the heterogeneous VAE (paper appendix A.4.1)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn


def mlp(in_features: int, hidden: int, n_layers: int, activation: type) -> nn.Sequential:
    """``n_layers`` x [Linear(hidden), activation]."""
    layers, width = [], in_features
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """q(z | x_obs, mask): [BatchNorm] n x [Linear-h][Tanh] [Linear-2d].

    The input is the concatenated column encodings (zero at missing cells)
    and the observation mask, so the encoder knows a zero from a gap.
    BatchNorm uses running statistics in evaluation, never the statistics of
    the batch being imputed.
    """

    def __init__(self, in_features: int, latent_dim: int, hidden_dim: int, n_layers: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(in_features)
        self.body = mlp(in_features, hidden_dim, n_layers, nn.Tanh)
        self.out = nn.Linear(hidden_dim if n_layers else in_features, 2 * latent_dim)

    def forward(self, inputs: torch.Tensor):
        loc, pre_scale = self.out(self.body(self.norm(inputs))).chunk(2, dim=-1)
        return loc, nn.functional.softplus(pre_scale) + 1e-4


class Decoder(nn.Module):
    """z -> y, the last shared feature: n x [Linear-h][ReLU]."""

    def __init__(self, latent_dim: int, hidden_dim: int, n_layers: int):
        super().__init__()
        self.body = mlp(latent_dim, hidden_dim, n_layers, nn.ReLU)
        self.out_features = hidden_dim if n_layers else latent_dim

    def forward(self, z: torch.Tensor, shift: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The last shared feature; ``shift`` (broadcast to the first layer's output) is added
        to the first layer's pre-activation."""
        if shift is None:
            return self.body(z)
        first, rest = self.body[0], self.body[1:]
        return rest(first(z) + shift)
