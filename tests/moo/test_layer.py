"""moo_expand: one backward pass gives what K separate autograd.grad calls give."""

import pytest
import torch
from torch import nn

from heterovae.moo import MOOExpand, build, moo_expand

K, B, H, D = 4, 8, 5, 3


def _model(seed=0):
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(D, H), nn.Tanh()).double()
    heads = nn.ModuleList(nn.Linear(H, 1) for _ in range(K)).double()
    return trunk, heads


def _data(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, D, generator=g, dtype=torch.float64)
    t = torch.randn(K, B, 1, generator=g, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.2, 2.0]).view(K, 1, 1)
    return x, t


def _losses(heads, ys, t):
    return torch.stack([((heads[k](ys[k]) - t[k]) ** 2).mean() for k in range(K)])


def _reference_grads(spec, params=None):
    """K separate autograd.grad calls for G, then the aggregator, then the trunk's chain rule."""
    trunk, heads = _model()
    x, t = _data()
    y = trunk(x)
    losses = _losses(heads, [y] * K, t)
    G = torch.stack([torch.autograd.grad(losses[k], y, retain_graph=True)[0].reshape(-1) for k in range(K)])
    agg = build(spec, K, params)
    d = G.sum(0) if agg is None else agg(G, losses.detach())
    trunk_grads = torch.autograd.grad(y, list(trunk.parameters()), grad_outputs=d.view_as(y), retain_graph=True)
    head_grads = torch.autograd.grad(losses.sum(), list(heads.parameters()))
    return trunk_grads, head_grads, agg


def _layer_grads(spec, params=None):
    trunk, heads = _model()
    x, t = _data()
    agg = build(spec, K, params)
    calls = []
    if agg is not None:
        agg.register_forward_hook(lambda *a: calls.append(1))
    y = trunk(x)
    buffer = torch.empty(K, dtype=torch.float64)  # losses become known after the heads run
    ys = moo_expand(y, agg, losses=buffer if agg is not None and agg.needs_losses else None, n_tasks=K)
    assert ys.shape == (K, B, H)
    assert ys.data_ptr() == y.data_ptr() and ys.stride(0) == 0  # zero-copy view
    losses = _losses(heads, ys, t)
    buffer.copy_(losses.detach())
    losses.sum().backward()
    assert len(calls) == (0 if agg is None else 1)  # one aggregation, one backward pass
    return [p.grad for p in trunk.parameters()], [p.grad for p in heads.parameters()], agg


@pytest.mark.parametrize("spec", [None, "imtlg", ("mgda-ub", "upgrad"), "aligned-mtl", "dualproj",
                                  ("imtlg", "pcgrad"), ("gradnorm", "graddrop")])
def test_single_backward_equals_separate_grads(spec):
    params = {"pcgrad": {"seed": 0}, "graddrop": {"seed": 0}}
    ref_trunk, ref_heads, ref_agg = _reference_grads(spec, params)
    trunk, heads, agg = _layer_grads(spec, params)
    for a, b in zip(trunk, ref_trunk):
        torch.testing.assert_close(a, b)
    for a, b in zip(heads, ref_heads):
        torch.testing.assert_close(a, b)
    if spec == ("gradnorm", "graddrop"):
        torch.testing.assert_close(agg.magnitude.weight.grad, ref_agg.magnitude.weight.grad)


def test_sum_aggregator_equals_ordinary_autograd():
    trunk, heads = _model()
    x, t = _data()
    _losses(heads, [trunk(x)] * K, t).sum().backward()
    plain = [p.grad.clone() for p in trunk.parameters()]
    trunk_grads, _, _ = _layer_grads(None)
    for a, b in zip(trunk_grads, plain):
        torch.testing.assert_close(a, b)


def test_aggregator_changes_the_trunk_gradient():
    """Guard against a layer that silently ignores its aggregator."""
    plain, _, _ = _layer_grads(None)
    mgda, _, _ = _layer_grads("mgda-ub")
    assert not torch.allclose(plain[0], mgda[0])


def test_module_form_and_errors():
    layer = MOOExpand(build("imtlg", K), K)
    y = torch.randn(B, H, requires_grad=True)
    out = layer(y)
    assert out.shape == (K, B, H)
    out.sum().backward()
    assert y.grad.shape == y.shape
    with pytest.raises(ValueError, match="needs per-task losses"):
        moo_expand(y, build("gradnorm", K), n_tasks=K)
    with pytest.raises(ValueError, match="n_tasks must be a positive int"):
        moo_expand(y, None)
    with pytest.raises(ValueError, match=r"losses must have shape \[n_tasks\]"):
        moo_expand(y, build("gradnorm", K), losses=torch.ones(K + 1), n_tasks=K)


def test_gradnorm_trains_through_the_layer_with_the_model_optimizer():
    trunk, heads = _model()
    x, t = _data()
    layer = MOOExpand(build(("gradnorm", "pcgrad"), K, {"pcgrad": {"seed": 0}}), K).double()
    model = nn.ModuleList([trunk, heads, layer])
    gradnorm = layer.aggregator.magnitude
    assert any(p is gradnorm.weight for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    buffer = torch.empty(K, dtype=torch.float64)
    for _ in range(15):
        opt.zero_grad()
        ys = layer(trunk(x), losses=buffer)
        losses = _losses(heads, ys, t)
        buffer.copy_(losses.detach())
        losses.sum().backward()
        opt.step()
    w = gradnorm.weights(torch.randn(K, 3, dtype=torch.float64), buffer)  # projects onto the feasible set
    assert torch.isfinite(w).all() and (w > 0).all()
    assert w.sum().item() == pytest.approx(K)
    assert not torch.allclose(w, torch.ones(K, dtype=torch.float64))  # the optimizer moved them
    assert "2.aggregator.magnitude.weight" in model.state_dict()
