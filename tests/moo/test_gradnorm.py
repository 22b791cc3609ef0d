"""GradNorm: feasibility of the weights, its gradient against autograd, convergence, state."""

import io

import pytest
import torch

from heterovae.moo import GradNorm, build

from ._inputs import random_matrix


def _rows_with_norms(norms, n=20, seed=0):
    G = random_matrix(len(norms), n, seed=seed)
    return G / G.norm(dim=1, keepdim=True) * torch.tensor(norms, dtype=G.dtype)[:, None]


def test_gradient_matches_autograd_of_the_gradnorm_loss():
    G = _rows_with_norms([1.0, 2.0, 5.0, 0.5])
    losses0 = torch.tensor([2.0, 1.0, 3.0, 0.5], dtype=G.dtype)
    losses = torch.tensor([1.0, 0.9, 1.5, 0.45], dtype=G.dtype)
    method = GradNorm(4, alpha=0.7).double()
    method.weights(G, losses0)  # records the initial losses
    method.weight.grad = None
    with torch.no_grad():
        method.weight.copy_(torch.tensor([0.5, 1.5, 0.8, 1.2], dtype=G.dtype))
    w_used = method.weights(G, losses)

    # reference: the paper's loss, target held constant, differentiated by autograd
    w = torch.tensor([0.5, 1.5, 0.8, 1.2], dtype=G.dtype, requires_grad=True)
    gw = w * G.norm(dim=1)
    ratio = losses / losses0
    target = (gw.mean() * (ratio / ratio.mean()) ** 0.7).detach()
    (gw - target).abs().sum().backward()
    torch.testing.assert_close(method.weight.grad, w.grad)
    torch.testing.assert_close(w_used, w.detach())


def test_gradient_accumulates_like_autograd():
    G = _rows_with_norms([1.0, 3.0])
    method = GradNorm(2).double()
    losses = torch.ones(2, dtype=G.dtype)
    method.weights(G, losses)
    first = method.weight.grad.clone()
    method.weights(G, losses)
    torch.testing.assert_close(method.weight.grad, 2 * first)


def test_weights_stay_positive_sum_to_k_and_equalise_gradient_norms():
    norms = torch.tensor([1.0, 3.0, 9.0, 0.2], dtype=torch.float64)
    G = _rows_with_norms(norms.tolist())
    method = GradNorm(4, alpha=1.5).double()
    # the L1 GradNorm loss has gradients of size ||g_k||: SGD oscillates on the
    # large-norm tasks unless its rate is tiny, Adam (step ~lr) settles
    opt = torch.optim.Adam(method.parameters(), lr=0.02)
    losses = torch.ones(4, dtype=torch.float64)  # equal training rates: only norms matter
    spread = []
    for _ in range(200):
        opt.zero_grad()
        w = method.weights(G, losses)
        assert (w > 0).all()
        assert w.sum().item() == pytest.approx(4.0)
        wn = w * norms
        spread.append((wn.max() / wn.min()).item())
        opt.step()
    assert spread[0] == pytest.approx(45.0)
    assert spread[-1] < 1.1, spread[-1]
    # the equilibrium: w_k proportional to 1 / ||g_k||, summing to K
    expected = 4 / norms / (1 / norms).sum()
    torch.testing.assert_close(w, expected, rtol=0.05, atol=0)


def test_slower_task_gets_more_weight():
    G = _rows_with_norms([1.0, 1.0, 1.0])
    method = GradNorm(3, alpha=1.0).double()
    opt = torch.optim.SGD(method.parameters(), lr=0.01)
    method.weights(G, torch.ones(3, dtype=G.dtype))
    for _ in range(50):
        opt.zero_grad()
        # task 0 has not improved, the others halved their losses
        method.weights(G, torch.tensor([1.0, 0.5, 0.5], dtype=G.dtype))
        opt.step()
    w = method.weights(G, torch.tensor([1.0, 0.5, 0.5], dtype=G.dtype))
    assert w[0] > 1.2 and w[1] < 1 and w[2] < 1


def test_state_dict_round_trip():
    G = _rows_with_norms([1.0, 4.0, 2.0])
    losses = torch.tensor([3.0, 2.0, 1.0], dtype=G.dtype)
    agg = build("gradnorm", 3, {"gradnorm": {"alpha": 0.5}}).double()
    opt = torch.optim.Adam(agg.parameters(), lr=0.05)
    for _ in range(10):
        opt.zero_grad()
        agg(G, losses)
        opt.step()
    buffer = io.BytesIO()
    torch.save(agg.state_dict(), buffer)
    buffer.seek(0)
    restored = build("gradnorm", 3, {"gradnorm": {"alpha": 0.5}}).double()
    restored.load_state_dict(torch.load(buffer))
    assert set(agg.state_dict()) == {"magnitude.weight", "magnitude.initial_losses"}
    torch.testing.assert_close(restored.magnitude.initial_losses, losses)
    torch.testing.assert_close(restored.magnitude.weight, agg.magnitude.weight)
    torch.testing.assert_close(restored(G, losses * 0.5), agg(G, losses * 0.5))


def test_weights_are_model_parameters():
    model = torch.nn.Module()
    model.agg = build("gradnorm", 5)
    assert any(p is model.agg.magnitude.weight for p in model.parameters())


def test_reset_and_errors():
    G = _rows_with_norms([1.0, 2.0])
    method = GradNorm(2).double()
    method.weights(G, torch.tensor([2.0, 2.0], dtype=G.dtype))
    method.reset()
    assert torch.isnan(method.initial_losses).all() and (method.weight == 1).all()
    with pytest.raises(ValueError, match="gradnorm needs the per-task losses"):
        method.weights(G)
    with pytest.raises(ValueError, match="losses must have shape"):
        method.weights(G, torch.ones(3))
    with pytest.raises(ValueError, match="n_tasks=2 but G has 3 rows"):
        method.weights(random_matrix(3, 4), torch.ones(3))
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        GradNorm(2, alpha=-1.0)


def test_zero_losses_do_not_produce_nan():
    G = _rows_with_norms([1.0, 2.0])
    method = GradNorm(2).double()
    method.weights(G, torch.zeros(2, dtype=G.dtype))
    w = method.weights(G, torch.zeros(2, dtype=G.dtype))
    assert torch.isfinite(w).all() and torch.isfinite(method.weight.grad).all()


def test_non_finite_losses_do_not_poison_the_weights():
    G = _rows_with_norms([1.0, 2.0, 3.0])
    method = GradNorm(3).double()
    method.weights(G, torch.tensor([float("nan"), 1.0, 2.0], dtype=G.dtype))
    assert torch.isfinite(method.weight.grad).all()
    assert torch.isnan(method.initial_losses[0]) and method.initial_losses[1] == 1.0
    method.weights(G, torch.tensor([3.0, 1.0, 2.0], dtype=G.dtype))
    assert method.initial_losses[0] == 3.0  # recorded once a finite value arrives


@pytest.mark.parametrize("alpha", [0.0, 0.5, 3.0])
def test_gradnorm_gradient_matches_autograd_for_several_alphas(alpha):
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        K = 4
        G = torch.randn(K, 10, generator=g, dtype=torch.float64)
        losses0 = torch.rand(K, generator=g, dtype=torch.float64) + 0.5
        losses = losses0 * (torch.rand(K, generator=g, dtype=torch.float64) + 0.2)
        w0 = torch.rand(K, generator=g, dtype=torch.float64) + 0.5
        w0 = w0 * K / w0.sum()  # already feasible: the projection leaves it alone
        method = GradNorm(K, alpha=alpha).double()
        method.weights(G, losses0)  # records L(0)
        method.weight.grad = None
        with torch.no_grad():
            method.weight.copy_(w0)
        method.weights(G, losses)
        # reference: Chen et al.'s L1 loss, target held constant, by autograd
        w = w0.clone().requires_grad_(True)
        gw = w * G.norm(dim=1)
        ratio = losses / losses0
        target = (gw.mean() * (ratio / ratio.mean()) ** alpha).detach()
        (gw - target).abs().sum().backward()
        torch.testing.assert_close(method.weight.grad, w.grad)


def test_gradnorm_projects_a_negative_weight_back_to_the_feasible_set():
    G = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    method = GradNorm(3, min_weight=0.01).double()
    with torch.no_grad():
        method.weight.copy_(torch.tensor([-1.0, 2.0, 1.0], dtype=torch.float64))
    w = method.weights(G, torch.ones(3, dtype=torch.float64))
    clamped = torch.tensor([0.01, 2.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(w, clamped * 3 / clamped.sum())
    assert (w > 0).all()
