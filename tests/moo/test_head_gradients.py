"""The factored task gradients of a fused head against the explicit matrix from autograd."""

import pytest
import torch

from heterovae.moo import build, cocktail
from heterovae.moo._gradients import HeadGradients, TaskGradients
from heterovae.vae.heads import ColumnHeads

K, H = 4, 5
PARAMS = [2, 3, 1, 2]
SEEDED = {"pcgrad": {"seed": 3}, "graddrop": {"seed": 3}}


def _problem(lead=(6,)):
    """Head factors of a smooth per-column loss and the per-column gradients by autograd."""
    torch.manual_seed(0)
    heads = ColumnHeads(H, PARAMS, [2, 0, 3, 1], K).double()
    y = torch.randn(*lead, H, dtype=torch.float64, requires_grad=True)
    raw = heads(y)
    owner = heads.owner
    losses = torch.stack([(torch.sin(raw[..., owner == k]) * (k + 1)).sum() for k in range(K)])
    explicit = torch.stack([torch.autograd.grad(losses[k], y, retain_graph=True)[0].reshape(-1) for k in range(K)])
    grad_out = torch.autograd.grad(losses.sum(), raw)[0]
    T = HeadGradients(grad_out.reshape(-1, grad_out.shape[-1]), heads.linear.weight.detach(), owner, heads.units)
    return T, explicit, losses.detach()


@pytest.mark.parametrize("lead", [(6,), (3, 6)])
def test_factored_quantities_equal_those_of_the_explicit_matrix(lead):
    T, G, _ = _problem(lead)
    v = torch.randn(K, dtype=torch.float64)
    w = torch.rand(K, dtype=torch.float64) + 0.1
    assert T.shape == G.shape and T.K == K
    torch.testing.assert_close(T.gram, G @ G.T)
    torch.testing.assert_close(T.row_norms(), G.norm(dim=1))
    torch.testing.assert_close(T.total(), G.sum(0))
    torch.testing.assert_close(T.combine(v), v @ G)
    S = T.scaled(w)
    torch.testing.assert_close(S.gram, (w[:, None] * G) @ (w[:, None] * G).T)
    torch.testing.assert_close(S.combine(v), v @ (w[:, None] * G))
    torch.testing.assert_close(S.total(), G.sum(0))  # the plain sum ignores the scaling
    torch.testing.assert_close(S.G, w[:, None] * G)  # materialised on demand
    torch.testing.assert_close(T.base, G)


def test_factored_gradients_are_not_materialised_for_weight_based_methods():
    T, _, losses = _problem()
    build(("imtlg", "pcgrad"), K, SEEDED)(T, losses)
    assert T._base is None


@pytest.mark.parametrize("spec", [s for s in cocktail(include_newer=True) if s is not None])
def test_aggregator_gives_the_same_gradient_from_factored_or_explicit_input(spec):
    T, G, losses = _problem()
    factored = build(spec, K, SEEDED)(T, losses)
    explicit = build(spec, K, SEEDED)(G, losses)
    torch.testing.assert_close(factored, explicit)


def test_explicit_task_gradients_are_accepted_too():
    _, G, losses = _problem()
    torch.testing.assert_close(build("mgda-ub", K)(TaskGradients(G), losses), build("mgda-ub", K)(G, losses))


def test_row_norms_of_scaled_gradients_after_the_gram_is_cached():
    G = torch.randn(4, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w = torch.tensor([0.5, 2.0, 0.0, 3.0], dtype=torch.float64)
    T = TaskGradients(G)
    T.gram  # cache the Gram matrix, shared with the scaled view
    S = T.scaled(w)
    torch.testing.assert_close(S.row_norms(), (w[:, None] * G).norm(dim=1))
