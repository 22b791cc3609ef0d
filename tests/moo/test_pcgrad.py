"""PCGrad against a naive per-pair reference loop, and its no-conflict properties."""

import pytest
import torch

from heterovae.moo import PCGrad
from heterovae.moo.pcgrad import random_orders

from ._inputs import MATRICES, conflicting_matrix


def _reference_projection(G, orders):
    """Yu et al.'s Algorithm 1 written plainly: one vector and one pair at a time."""
    out = []
    for i in range(G.shape[0]):
        g = G[i].clone()
        for j in orders[i].tolist():
            dot = torch.dot(g, G[j])
            if dot < 0:
                g = g - dot / G[j].pow(2).sum() * G[j]
        out.append(g)
    return torch.stack(out)


@pytest.mark.parametrize("matrix", ["random", "conflicting", "zero_rows", "duplicated_rows", "opposite_rows",
                                    "extreme_scales", "more_tasks_than_dims"])
def test_matches_reference_loop(matrix):
    G = MATRICES[matrix](torch.float64)
    orders = random_orders(G.shape[0], "cpu", torch.Generator().manual_seed(1))
    projected = PCGrad().project(G, orders)
    scale = G.abs().max()
    torch.testing.assert_close(projected / scale, _reference_projection(G, orders) / scale, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numpy_and_torch_paths_agree(dtype, monkeypatch):
    G = MATRICES["conflicting"](dtype)
    orders = random_orders(G.shape[0], "cpu", torch.Generator().manual_seed(1))
    via_numpy = PCGrad().project(G, orders)
    monkeypatch.setattr("heterovae.moo.pcgrad.NUMPY_ON_CPU", False)
    via_torch = PCGrad().project(G, orders)
    assert via_numpy.dtype == via_torch.dtype == dtype
    torch.testing.assert_close(via_numpy, via_torch)
    assert not torch.equal(via_numpy, G)  # the input has conflicts: something was projected


def test_orders_are_permutations_of_the_other_tasks():
    K = 7
    orders = random_orders(K, "cpu", torch.Generator().manual_seed(0))
    assert orders.shape == (K, K - 1)
    for i in range(K):
        assert sorted(orders[i].tolist()) == [j for j in range(K) if j != i]


@pytest.mark.parametrize("seed", range(5))
def test_no_conflict_with_the_last_gradient_projected_against(seed):
    G = conflicting_matrix(K=6, n=10, seed=seed)
    orders = random_orders(6, "cpu", torch.Generator().manual_seed(seed))
    projected = PCGrad().project(G, orders)
    last = G[orders[:, -1]]
    assert ((projected * last).sum(1) >= -1e-10).all()


@pytest.mark.parametrize("seed", range(5))
def test_two_tasks_no_conflict_both_ways(seed):
    G = conflicting_matrix(K=2, n=5, seed=seed)
    G[1] = -G[0] + 0.5 * torch.randn(5, dtype=G.dtype, generator=torch.Generator().manual_seed(seed))
    assert torch.dot(G[0], G[1]) < 0
    projected = PCGrad(seed=0).project(G)
    assert torch.dot(projected[0], G[1]) >= -1e-12
    assert torch.dot(projected[1], G[0]) >= -1e-12
    torch.testing.assert_close(PCGrad(seed=0).combine(G), projected.sum(0))


def test_conflict_free_input_is_unchanged():
    G = torch.rand(5, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(PCGrad().combine(G), G.sum(0))
    torch.testing.assert_close(PCGrad().project(G), G)


def test_combine_is_the_sum_of_the_projections_for_the_same_draw():
    G = conflicting_matrix()
    torch.testing.assert_close(PCGrad(seed=4).combine(G), PCGrad(seed=4).project(G).sum(0))


def test_equivariant_when_the_orders_are_permuted_with_the_rows():
    G = conflicting_matrix(K=5, n=9)
    orders = random_orders(5, "cpu", torch.Generator().manual_seed(2))
    perm = torch.tensor([3, 0, 4, 1, 2])
    inv = torch.argsort(perm)
    # row r of G[perm] is task perm[r]; its order, in the new indices, is inv[orders[perm[r]]]
    projected = PCGrad().project(G[perm], inv[orders[perm]])
    torch.testing.assert_close(projected, PCGrad().project(G, orders)[perm])


def test_seeded_and_global_rng_reproducibility():
    G = conflicting_matrix()
    torch.testing.assert_close(PCGrad(seed=3).combine(G), PCGrad(seed=3).combine(G))
    torch.manual_seed(11)
    a = PCGrad().combine(G)
    torch.manual_seed(11)
    torch.testing.assert_close(PCGrad().combine(G), a)


def test_bad_orders_shape():
    with pytest.raises(ValueError, match="orders must have shape"):
        PCGrad().project(conflicting_matrix(K=3), torch.zeros(3, 3, dtype=torch.long))


def test_random_orders_are_uniform_and_independent_between_tasks():
    import math

    K, draws = 4, 3000
    gen = torch.Generator().manual_seed(0)
    counts, agree = {}, 0
    for _ in range(draws):
        o = random_orders(K, "cpu", gen).tolist()
        counts[tuple(o[0])] = counts.get(tuple(o[0]), 0) + 1
        # tasks 2 and 3 are in the orders of tasks 0 and 1; independent orders
        # put them the same way round with probability 1/2
        agree += (o[0].index(2) < o[0].index(3)) == (o[1].index(2) < o[1].index(3))
    assert len(counts) == math.factorial(K - 1)  # every permutation of the 3 others occurs
    p = 1 / math.factorial(K - 1)
    for c in counts.values():
        assert abs(c / draws - p) < 5 * math.sqrt(p * (1 - p) / draws)
    assert abs(agree / draws - 0.5) < 5 * math.sqrt(0.25 / draws)
