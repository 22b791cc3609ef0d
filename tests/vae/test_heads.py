"""The fused column heads: per-column gradients from one backward pass."""

import pytest
import torch
from torch import nn

from heterovae.moo import build
from heterovae.vae.heads import ColumnHeads, column_gradients

K, B, H = 4, 6, 5
PARAMS = [2, 3, 1, 2]


def _heads(aggregator=None):
    torch.manual_seed(0)
    return ColumnHeads(H, PARAMS, [2, 0, 3, 1], K, aggregator).double()


def _column_losses(raw, heads):
    # an arbitrary smooth loss per column over that column's own units
    owner = heads.owner
    return torch.stack([(torch.sin(raw[..., owner == k]) * (k + 1)).sum() for k in range(K)])


def test_single_backward_equals_one_autograd_call_per_column():
    heads = _heads()
    y = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    raw = heads(y)
    losses = _column_losses(raw, heads)
    reference = torch.stack([torch.autograd.grad(losses[k], y, retain_graph=True)[0] for k in range(K)])
    grad_raw = torch.autograd.grad(losses.sum(), raw, retain_graph=True)[0]
    got = column_gradients(grad_raw, heads.units, heads.linear.weight)
    torch.testing.assert_close(got, reference)


def test_plain_sum_aggregator_reproduces_ordinary_autograd():
    class Sum(nn.Module):
        def forward(self, G, losses=None):
            return G.sum(0)

    plain, hooked = _heads(), _heads(Sum())
    y1 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    y2 = y1.detach().clone().requires_grad_()
    _column_losses(plain(y1), plain).sum().backward()
    _column_losses(hooked(y2), hooked).sum().backward()
    torch.testing.assert_close(y1.grad, y2.grad)
    torch.testing.assert_close(plain.linear.weight.grad, hooked.linear.weight.grad)
    torch.testing.assert_close(plain.linear.bias.grad, hooked.linear.bias.grad)


@pytest.mark.parametrize("spec", ["pcgrad", ("imtlg", "pcgrad"), "mgda-ub", ("gradnorm", "graddrop")])
def test_aggregator_sees_the_per_column_gradients_and_changes_only_the_shared_gradient(spec):
    seen = {}
    aggregator = build(spec, n_tasks=K)

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = aggregator

        def forward(self, G, losses=None):
            seen["G"] = G.clone()
            seen["out"] = self.inner(G, losses)
            return seen["out"]

    plain, hooked = _heads(), _heads(Spy())
    y1 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    y2 = y1.detach().clone().requires_grad_()
    raw1 = plain(y1)
    l1 = _column_losses(raw1, plain)
    reference = torch.stack([torch.autograd.grad(l1[k], y1, retain_graph=True)[0] for k in range(K)])
    l1.sum().backward()
    losses = _column_losses(hooked(y2), hooked)
    hooked.state.losses = losses.detach()
    losses.sum().backward()
    torch.testing.assert_close(seen["G"], reference.reshape(K, -1))
    # head parameters keep their ordinary gradients
    torch.testing.assert_close(plain.linear.weight.grad, hooked.linear.weight.grad)
    # the shared gradient is the aggregator's output for those per-column gradients
    torch.testing.assert_close(y2.grad, seen["out"].reshape(B, H))
    assert torch.all(torch.isfinite(y2.grad))


def test_leading_sample_dimensions_are_flattened_per_column():
    heads = _heads()
    y = torch.randn(3, B, H, dtype=torch.float64, requires_grad=True)
    raw = heads(y)
    losses = _column_losses(raw, heads)
    reference = torch.stack([torch.autograd.grad(losses[k], y, retain_graph=True)[0] for k in range(K)])
    grad_raw = torch.autograd.grad(losses.sum(), raw)[0]
    torch.testing.assert_close(column_gradients(grad_raw, heads.units, heads.linear.weight), reference)


def test_no_hook_without_grad():
    heads = _heads(build("pcgrad", n_tasks=K))
    with torch.no_grad():
        out = heads(torch.randn(B, H, dtype=torch.float64))
    assert out.shape == (B, sum(PARAMS))
