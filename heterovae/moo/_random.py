"""Per-device random generators for the sampling methods (PCGrad, GradDrop)."""

from __future__ import annotations

import numbers

from typing import Optional

import torch

from .base import check_hyperparameter


class SeededMixin:
    """Gives a method an optional ``seed``: ``None`` draws from torch's global RNG
    (so ``torch.manual_seed`` makes training reproducible); an int gives the
    method its own generator per device, independent of everything else."""

    def _init_seed(self, seed: Optional[int]) -> None:
        if seed is not None:
            check_hyperparameter("seed", seed, kind=numbers.Integral, low=0, high=2**63 - 1, method=self.name)
        self.seed = None if seed is None else int(seed)
        self._generators = {}

    def _generator(self, device: torch.device) -> Optional[torch.Generator]:
        if self.seed is None:
            return None
        gen = self._generators.get(device)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed)
            self._generators[device] = gen
        return gen

    def __getstate__(self):
        # generators do not pickle; a restored method restarts its seeded stream
        state = self.__dict__.copy()
        state["_generators"] = {}
        return state
