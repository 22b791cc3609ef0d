"""Task-gradient matrices shared by the property tests, and method factories."""

from __future__ import annotations

import torch

from heterovae.moo import DIRECTION_METHODS, MAGNITUDE_METHODS

ALL_METHODS = {**MAGNITUDE_METHODS, **DIRECTION_METHODS}


def make_method(name: str, n_tasks: int, **params):
    """A fresh method instance; stochastic methods get a fixed seed."""
    cls = ALL_METHODS[name]
    if not cls.deterministic:
        params.setdefault("seed", 0)
    if cls.needs_n_tasks:
        params["n_tasks"] = n_tasks
    return cls(**params)


def apply(method, G, losses=None):
    """Weights for a magnitude method, combined vector for a direction method."""
    if name_of(method) in MAGNITUDE_METHODS:
        if losses is None and method.needs_losses:
            losses = torch.linspace(1.0, 2.0, G.shape[0], dtype=G.dtype)
        return method.weights(G, losses)
    return method.combine(G)


def name_of(method):
    return type(method).name


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def random_matrix(K=5, n=30, seed=0, dtype=torch.float64):
    return torch.randn(K, n, generator=_gen(seed), dtype=dtype)


def conflicting_matrix(K=6, n=12, seed=1, dtype=torch.float64):
    """Rows with a common component plus strong noise: many pairwise conflicts."""
    g = torch.randn(K, n, generator=_gen(seed), dtype=dtype)
    return g + 0.3 * torch.randn(1, n, generator=_gen(seed + 1), dtype=dtype)


def zero_row_matrix(dtype=torch.float64):
    G = random_matrix(5, 20, 2, dtype)
    G[1] = 0
    G[3] = 0
    return G


def duplicated_rows(dtype=torch.float64):
    G = random_matrix(4, 20, 3, dtype)
    return torch.cat([G, G[:2]])


def opposite_rows(dtype=torch.float64):
    G = random_matrix(3, 20, 4, dtype)
    return torch.cat([G, -G[:1]])


def extreme_scales(dtype=torch.float64):
    G = random_matrix(4, 20, 5, dtype)
    scales = torch.tensor([1e-8, 1e8, 1.0, 1e-8], dtype=dtype)
    return G * scales[:, None]


def more_tasks_than_dims(dtype=torch.float64):
    return random_matrix(8, 3, 6, dtype)


def single_task(dtype=torch.float64):
    return random_matrix(1, 20, 7, dtype)


#: name -> function(dtype) -> G
MATRICES = {
    "random": lambda dtype: random_matrix(dtype=dtype),
    "conflicting": lambda dtype: conflicting_matrix(dtype=dtype),
    "zero_rows": zero_row_matrix,
    "zero": lambda dtype: torch.zeros(4, 10, dtype=dtype),
    "duplicated_rows": duplicated_rows,
    "opposite_rows": opposite_rows,
    "extreme_scales": extreme_scales,
    "more_tasks_than_dims": more_tasks_than_dims,
    "single_task": single_task,
}
