"""Update rules of the particle ensemble against slow per-particle references.

Every reference rebuilds the M particles as separate ordinary modules, gets
each particle's task gradients with its own backward pass and writes the
kernel, the Stein directions and the task weights as explicit loops over
particle pairs, in float64: no code is shared with the vectorised
implementation beyond the network definition.
"""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ._references import rbf_loop, svgd_loop, task_losses
from heterovae.mtsgd.ensemble import MultiHeadNetwork, ParticleEnsemble
from heterovae.mtsgd.kernels import RBFKernel
from heterovae.mtsgd.methods import METHODS, StepContext, preference_vectors

M, B, D, H = 4, 12, 3, 5
CLASSES = (3, 2)
N = 200  # pretend data size: the scores are scaled by N / temperature
TEMPERATURE = 50.0
WD = 0.01


def _ensemble(seed=0):
    torch.manual_seed(seed)
    nets = [
        MultiHeadNetwork(nn.Sequential(nn.Linear(D, H), nn.Tanh()), H, CLASSES)
        for _ in range(M)
    ]
    return ParticleEnsemble(nets, torch.device("cpu"))


def _batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, D, generator=g)
    y = torch.stack([torch.randint(0, c, (B,), generator=g) for c in CLASSES], 1)
    return x, y


def _run_rule(method, kernel_space="params", progress=0.5):
    ens = _ensemble()
    x, y = _batch()
    features, outputs = ens.forward(x)
    ctx = StepContext(
        ensemble=ens,
        features=features,
        outputs=outputs,
        losses=task_losses(outputs, y),
        scale=N / TEMPERATURE,
        weight_decay=WD,
        kernel=RBFKernel(),
        kernel_space=kernel_space,
        progress=progress,
    )
    METHODS[method](ctx)
    shared = torch.cat([ens.params[k].grad.reshape(M, -1) for k in ens.shared_names], 1)
    heads = [
        torch.cat([ens.params[k].grad.reshape(M, -1) for k in names], 1) for names in ens.head_names
    ]
    return shared.double(), [h.double() for h in heads]


# ------------------------------------------------------------- references
def _particles():
    """The ensemble's particles as M separate float64 modules."""
    ens = _ensemble()
    nets = []
    for m in range(M):
        net = copy.deepcopy(ens.template).double()
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(ens.params[name][m].double())
        nets.append(net)
    return nets


def _shared(net):
    return [p for n, p in net.named_parameters() if n.startswith("backbone.")]


def _head(net, k):
    return [p for n, p in net.named_parameters() if n.startswith(f"heads.{k}.")]


def _flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def _reference_gradients():
    """Per particle: task gradients of the shared part and of each head."""
    x, y = _batch()
    nets = _particles()
    g_shared = np.zeros((len(CLASSES), M), dtype=object)
    g_heads = [[None] * M for _ in CLASSES]
    loss_vec = np.zeros((M, len(CLASSES)))
    for m, net in enumerate(nets):
        out = net(x.double())
        for k in range(len(CLASSES)):
            loss = F.cross_entropy(out[1 + k], y[:, k])
            loss_vec[m, k] = loss.item()
            gs = torch.autograd.grad(loss, _shared(net) + _head(net, k), retain_graph=True)
            g_shared[k, m] = _flat(gs[: len(_shared(net))])
            g_heads[k][m] = _flat(gs[len(_shared(net)) :])
    alpha = torch.stack([_flat(_shared(n)).detach() for n in nets])
    betas = [torch.stack([_flat(_head(n, k)).detach() for n in nets]) for k in range(len(CLASSES))]
    G = torch.stack([torch.stack(list(g_shared[k])) for k in range(len(CLASSES))])  # [K, M, P]
    GH = [torch.stack(g) for g in g_heads]
    return nets, alpha, betas, G, GH, loss_vec


def _scores(G, theta):
    return -(N / TEMPERATURE) * (G + WD * theta)


def _two_task_weights(U):
    # min_t of [t, 1-t] U [t, 1-t]^T on [0, 1]
    t = (U[1, 1] - U[0, 1]) / (U[0, 0] + U[1, 1] - 2 * U[0, 1])
    t = float(min(max(t, 0.0), 1.0))
    return torch.tensor([t, 1.0 - t], dtype=torch.float64)


def _stein_gram_loop(k, dk, S):
    """U up to an additive constant (the trace term), by the RKHS formula."""
    K = S.shape[0]
    U = torch.zeros(K, K, dtype=torch.float64)
    for a in range(K):
        for b in range(K):
            tot = 0.0
            for i in range(M):
                for j in range(M):
                    # <k(x_i,.) s_a(x_i) + grad_i k(x_i,.), k(x_j,.) s_b(x_j) + grad_j k(x_j,.)>
                    tot += k[i, j] * S[a, i] @ S[b, j]
                    tot += S[a, i] @ dk[j, i]  # s_a(x_i) . grad_{x_j} k(x_i, x_j)
                    tot += S[b, j] @ dk[i, j]  # s_b(x_j) . grad_{x_i} k(x_i, x_j)
            U[a, b] = tot / M**2
    return U


# ------------------------------------------------------------------ tests
def test_mtsgd_params_space_matches_loop_reference():
    _, alpha, betas, G, GH, _ = _reference_gradients()
    S = _scores(G, alpha)
    k, dk = rbf_loop(alpha)
    phis = torch.stack([svgd_loop(k, dk, S[t]) for t in range(len(CLASSES))])
    w = _two_task_weights(_stein_gram_loop(k, dk, S))
    want_shared = -(w[0] * phis[0] + w[1] * phis[1]) / (N / TEMPERATURE)
    got_shared, got_heads = _run_rule("mt-sgd")
    torch.testing.assert_close(got_shared, want_shared, rtol=2e-3, atol=1e-5)
    for t in range(len(CLASSES)):
        kh, dkh = rbf_loop(betas[t])
        want = -svgd_loop(kh, dkh, _scores(GH[t], betas[t])) / (N / TEMPERATURE)
        torch.testing.assert_close(got_heads[t], want, rtol=2e-3, atol=1e-5)


def test_mtsgd_outputs_space_matches_loop_reference():
    x, _ = _batch()
    nets, alpha, betas, G, GH, _ = _reference_gradients()
    S = _scores(G, alpha)

    def function_space(values_of, params_of):
        f = [values_of(net).reshape(-1) for net in nets]
        fixed = torch.stack([v.detach() for v in f])
        d = [torch.dist(fixed[i], fixed[j]).item() for i in range(M) for j in range(i + 1, M)]
        h = np.median(d) ** 2 / math.log(M + 1)
        k = torch.exp(-torch.cdist(fixed, fixed) ** 2 / h)
        rep = []
        for i, net in enumerate(nets):
            total = sum(torch.exp(-((f[i] - fixed[j]) ** 2).sum() / h) for j in range(M))
            rep.append(-_flat(torch.autograd.grad(total, params_of(net), retain_graph=True)) / M)
        return k, torch.stack(rep)

    k, rep = function_space(lambda n: n(x.double())[0], _shared)
    drive = [torch.stack([sum(k[j, i] * S[t, j] for j in range(M)) / M for i in range(M)]) for t in range(2)]
    phis = [d + rep for d in drive]
    # U with the same pieces, as sums over particle pairs (trace term omitted)
    U = torch.zeros(2, 2, dtype=torch.float64)
    for a in range(2):
        for b in range(2):
            U[a, b] = sum(k[i, j] * S[a, i] @ S[b, j] for i in range(M) for j in range(M)) / M**2
            U[a, b] += sum(S[a, i] @ rep[i] + S[b, i] @ rep[i] for i in range(M)) / M
    w = _two_task_weights(U)
    want_shared = -(w[0] * phis[0] + w[1] * phis[1]) / (N / TEMPERATURE)
    got_shared, got_heads = _run_rule("mt-sgd", kernel_space="outputs")
    torch.testing.assert_close(got_shared, want_shared, rtol=2e-3, atol=1e-5)
    for t in range(2):
        kh, reph = function_space(lambda n: n(x.double())[1 + t], lambda n: _head(n, t))
        sh = _scores(GH[t], betas[t])
        want = torch.stack([sum(kh[j, i] * sh[j] for j in range(M)) / M for i in range(M)]) + reph
        torch.testing.assert_close(got_heads[t], -want / (N / TEMPERATURE), rtol=2e-3, atol=1e-5)


def _mgda_pair(a, b):
    t = float(((b - a) @ b) / ((a - b) @ (a - b)))
    t = min(max(t, 0.0), 1.0)
    return torch.tensor([t, 1 - t], dtype=torch.float64)


def test_mgda_matches_closed_form_per_particle():
    _, alpha, betas, G, GH, _ = _reference_gradients()
    S = _scores(G, alpha)
    want = torch.stack([(_mgda_pair(S[0, m], S[1, m]) @ S[:, m]) for m in range(M)])
    got_shared, got_heads = _run_rule("mgda")
    torch.testing.assert_close(got_shared, -want / (N / TEMPERATURE), rtol=2e-3, atol=1e-5)
    for t in range(2):
        torch.testing.assert_close(got_heads[t], GH[t] + WD * betas[t], rtol=2e-3, atol=1e-6)


def test_moo_svgd_matches_loop_reference():
    _, alpha, betas, G, GH, _ = _reference_gradients()
    S = _scores(G, alpha)
    d = torch.stack([(_mgda_pair(S[0, m], S[1, m]) @ S[:, m]) for m in range(M)])
    k, dk = rbf_loop(alpha)
    want = svgd_loop(k, dk, d)
    got_shared, _ = _run_rule("moo-svgd")
    torch.testing.assert_close(got_shared, -want / (N / TEMPERATURE), rtol=2e-3, atol=1e-5)


def test_linear_is_independent_descent_on_summed_loss():
    _, alpha, betas, G, GH, _ = _reference_gradients()
    got_shared, got_heads = _run_rule("linear")
    torch.testing.assert_close(got_shared, G.sum(0) + WD * alpha, rtol=1e-4, atol=1e-6)
    for t in range(2):
        torch.testing.assert_close(got_heads[t], GH[t] + WD * betas[t], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("progress", [0.0, 0.5])
def test_pareto_mtl_matches_reference(progress):
    from scipy.optimize import minimize

    _, alpha, _, G, _, loss_vec = _reference_gradients()
    S = _scores(G, alpha)
    prefs = preference_vectors(M, 2)
    want = []
    for m in range(M):
        u = np.delete(prefs, m, axis=0) - prefs[m]
        active = u[(u @ loss_vec[m]) / np.linalg.norm(loss_vec[m]) > 0]
        rows = active if (progress < 0.1 and len(active)) else np.vstack([np.eye(2), active])
        vecs = torch.as_tensor(rows) @ S[:, m]  # candidate directions
        gram = (vecs @ vecs.T).numpy() / (vecs @ vecs.T).abs().max().item()
        n = len(rows)
        res = minimize(
            lambda lam: lam @ gram @ lam,
            np.full(n, 1.0 / n),
            jac=lambda lam: 2 * gram @ lam,
            bounds=[(0, 1)] * n,
            constraints=[{"type": "eq", "fun": lambda lam: lam.sum() - 1}],
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 500},
        )
        w = res.x @ rows
        w = w / np.abs(w).sum()
        want.append(torch.as_tensor(w) @ S[:, m])
    want = torch.stack(want)
    got_shared, _ = _run_rule("pareto-mtl", progress=progress)
    torch.testing.assert_close(got_shared, -want / (N / TEMPERATURE), rtol=5e-3, atol=1e-4)


def test_preference_vectors_are_unit_and_spread():
    u = preference_vectors(5, 2)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0)
    angles = np.arctan2(u[:, 1], u[:, 0])
    np.testing.assert_allclose(angles, np.linspace(0, np.pi / 2, 5))
    u3 = preference_vectors(4, 3, random_state=0)
    assert (u3 > 0).all() and np.allclose(np.linalg.norm(u3, axis=1), 1)


def test_vmapped_forward_matches_separate_networks():
    ens = _ensemble()
    x, _ = _batch()
    features, outputs = ens.forward(x)
    for m, net in enumerate(_particles()):
        out = net(x.double())
        torch.testing.assert_close(features[m].double(), out[0], rtol=1e-5, atol=1e-6)
        for t in range(2):
            torch.testing.assert_close(outputs[t][m].double(), out[1 + t], rtol=1e-5, atol=1e-6)


def test_flatten_roundtrip_and_groups():
    ens = _ensemble()
    flat = ens.flat("shared")
    assert flat.shape == (M, ens.n_parameters("shared")) == (M, D * H + H)
    for t, c in enumerate(CLASSES):
        assert ens.n_parameters(t) == H * c + c
    back = ens.unflatten("shared", flat)
    for name, t in zip(ens.shared_names, back):
        torch.testing.assert_close(t, ens.params[name].detach())


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("space", ["params", "outputs"])
def test_one_particle_one_task_is_plain_gradient_descent(method, space):
    # Every rule collapses to the gradient of loss + prior when there is
    # nothing to balance (one task) and nothing to repel (one particle).
    torch.manual_seed(3)
    net = MultiHeadNetwork(nn.Sequential(nn.Linear(D, H), nn.Tanh()), H, (3,))
    reference = copy.deepcopy(net)
    ens = ParticleEnsemble([net], torch.device("cpu"))
    x, y = _batch()
    features, outputs = ens.forward(x)
    ctx = StepContext(
        ensemble=ens, features=features, outputs=outputs, losses=task_losses(outputs, y[:, :1]),
        scale=N / TEMPERATURE, weight_decay=WD, kernel=RBFKernel(), kernel_space=space,
    )
    METHODS[method](ctx)
    loss = F.cross_entropy(reference(x)[1], y[:, 0])
    names = [n for n, _ in reference.named_parameters()]
    grads = torch.autograd.grad(loss, list(reference.parameters()))
    for name, p, g in zip(names, reference.parameters(), grads):
        torch.testing.assert_close(ens.params[name].grad[0], g + WD * p.detach(), rtol=1e-4, atol=1e-6)
