"""The "mt-sgd-features" rule against brute-force references.

The rule chooses the simplex weights ``w`` from feature-space scores (an
approximation) and then builds the shared update from one backbone backward
pass (exact). The references rebuild every particle as a separate float64
module, take each particle's gradients with its own backward pass, write the
kernel and the SVGD directions as loops over particle pairs and solve the
simplex QPs with scipy's SLSQP: nothing is shared with the vectorised code
but the network definition. The ensemble itself also runs in float64 so that
the tolerances can be tight.
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from torch import nn

from ._references import one_thread, rbf_loop, svgd_loop, task_losses  # noqa: F401 (one_thread: fixture)
from heterovae.mtsgd.ensemble import MultiHeadNetwork, ParticleEnsemble
from heterovae.mtsgd.estimators import MTSGDClassifier, MTSGDRegressor
from heterovae.mtsgd.kernels import RBFKernel
from heterovae.mtsgd.methods import METHODS, StepContext

METHOD = "mt-sgd-features"
D, H = 3, 5
N, TEMPERATURE = 200, 50.0  # scores are scaled by N / temperature
SCALE = N / TEMPERATURE
TIGHT = dict(rtol=1e-9, atol=1e-12)


pytestmark = pytest.mark.usefixtures("one_thread")


class ParameterFeatures(nn.Module):
    """A backbone whose features are its own parameters (Jacobian = identity
    for a batch of one row)."""

    def __init__(self, width):
        super().__init__()
        self.theta = nn.Parameter(torch.empty(width))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.normal_(self.theta)

    def forward(self, x):
        return self.theta.expand(x.shape[0], -1)


def _mlp():
    return nn.Sequential(nn.Linear(D, H), nn.Tanh())


def _setup(m, classes, batch, backbone=_mlp, width=H, seed=0):
    """A float64 ensemble, a batch and the separate float64 copies of its particles."""
    torch.manual_seed(seed)
    nets = [MultiHeadNetwork(backbone(), width, classes).double() for _ in range(m)]
    ens = ParticleEnsemble(nets, torch.device("cpu"))
    particles = []
    for i in range(m):
        net = copy.deepcopy(ens.template).double()
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(ens.params[name][i])
        particles.append(net)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, D, generator=g, dtype=torch.float64)
    y = torch.stack([torch.randint(0, c, (batch,), generator=g) for c in classes], 1)
    return ens, particles, x, y


def _run(method, ens, x, y, weight_decay, kernel_space="params"):
    features, outputs = ens.forward(x)
    ctx = StepContext(
        ensemble=ens, features=features, outputs=outputs, losses=task_losses(outputs, y),
        scale=SCALE, weight_decay=weight_decay, kernel=RBFKernel(), kernel_space=kernel_space,
    )
    w = METHODS[method](ctx)
    m = ens.n_particles
    shared = torch.cat([ens.params[k].grad.reshape(m, -1) for k in ens.shared_names], 1)
    heads = [torch.cat([ens.params[k].grad.reshape(m, -1) for k in names], 1) for names in ens.head_names]
    return w, shared, heads


# ------------------------------------------------------------ references
def _flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def _group(net, prefix):
    return [p for n, p in net.named_parameters() if n.startswith(prefix)]


def _brute_force(particles, x, y):
    """Per particle and task: parameter gradients (shared, head) and the
    gradient w.r.t. the flattened features, each by its own backward pass."""
    n_tasks = y.shape[1]
    G = [[None] * len(particles) for _ in range(n_tasks)]
    GH = [[None] * len(particles) for _ in range(n_tasks)]
    GZ = [[None] * len(particles) for _ in range(n_tasks)]
    for i, net in enumerate(particles):
        shared = _group(net, "backbone.")
        for k in range(n_tasks):
            head = _group(net, f"heads.{k}.")
            loss = F.cross_entropy(net(x)[1 + k], y[:, k])
            grads = torch.autograd.grad(loss, shared + head)
            G[k][i] = _flat(grads[: len(shared)])
            GH[k][i] = _flat(grads[len(shared) :])
            z = net.features(x).detach().requires_grad_(True)
            GZ[k][i] = torch.autograd.grad(F.cross_entropy(net.heads[k](z), y[:, k]), z)[0].reshape(-1)
    stack = lambda rows: torch.stack([torch.stack(r) for r in rows])  # noqa: E731
    alpha = torch.stack([_flat(_group(n, "backbone.")).detach() for n in particles])
    betas = [
        torch.stack([_flat(_group(n, f"heads.{k}.")).detach() for n in particles])
        for k in range(n_tasks)
    ]
    return alpha, betas, stack(G), [torch.stack(r) for r in GH], stack(GZ)


def _smoothed_gram_loop(k, V):
    """``A[l, m] = sum_ab k(x_a, x_b) V[l, a] . V[m, b]`` as a loop."""
    n_tasks, n_particles = V.shape[:2]
    A = torch.zeros(n_tasks, n_tasks, dtype=torch.float64)
    for l in range(n_tasks):
        for m in range(n_tasks):
            A[l, m] = sum(
                k[a, b] * V[l, a] @ V[m, b] for a in range(n_particles) for b in range(n_particles)
            )
    return A


def _slsqp_simplex(A):
    """min w^T A w on the simplex by a generic solver."""
    A = np.asarray(A) / np.abs(A).max()
    n = A.shape[0]
    res = minimize(
        lambda w: w @ A @ w, np.full(n, 1.0 / n), jac=lambda w: 2 * A @ w,
        bounds=[(0, 1)] * n, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
        method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000},
    )
    return res.x


def _svgd_reference(theta, scores):
    k, dk = rbf_loop(theta)
    return svgd_loop(k, dk, scores)


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("classes", [(3, 2), (3, 2, 4)])
def test_shared_and_head_updates_are_exact_given_w(classes):
    ens, particles, x, y = _setup(4, classes, batch=10)
    wd = 0.01
    w, got_shared, got_heads = _run(METHOD, ens, x, y, weight_decay=wd)
    alpha, betas, G, GH, _ = _brute_force(particles, x, y)
    scores = -SCALE * (G + wd * alpha)  # [K, M, P] exact parameter-space scores
    phis = torch.stack([_svgd_reference(alpha, s) for s in scores])
    want = -torch.einsum("k,kmp->mp", w.double(), phis) / SCALE
    torch.testing.assert_close(got_shared, want, **TIGHT)
    for t in range(len(classes)):
        head = _svgd_reference(betas[t], -SCALE * (GH[t] + wd * betas[t]))
        torch.testing.assert_close(got_heads[t], -head / SCALE, **TIGHT)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weights_solve_their_feature_space_qp(seed):
    # Three tasks, so that the QP is not the closed-form two-task case.
    ens, particles, x, y = _setup(4, (3, 2, 4), batch=9, seed=seed)
    w, _, _ = _run(METHOD, ens, x, y, weight_decay=0.01)
    alpha, _, _, _, GZ = _brute_force(particles, x, y)
    k, _ = rbf_loop(alpha)
    A = _smoothed_gram_loop(k, GZ)
    w = w.double()
    assert (w >= 0).all() and float(w.sum()) == pytest.approx(1.0, abs=1e-12)
    # KKT of min w^T A w on the simplex: (A w)_k equals the multiplier
    # w^T A w where w_k > 0 and is not below it where w_k = 0.
    grad, lam = A @ w, w @ A @ w
    tol = 1e-8 * A.abs().max()
    active = w > 1e-9
    torch.testing.assert_close(grad[active], lam.expand(int(active.sum())), rtol=0, atol=tol)
    assert (grad[~active] >= lam - tol).all()
    ref = _slsqp_simplex(A.numpy())
    assert float(w @ A @ w) <= float(ref @ A.numpy() @ ref) * (1 + 1e-8)
    np.testing.assert_allclose(w.numpy(), ref, atol=1e-5)


def test_weights_equal_exact_weights_when_features_are_parameters():
    # One row and features = backbone parameters: J_a J_b^T = I for every
    # pair, so the feature-space Gram equals the data part of the exact
    # Stein Gram matrix A (nothing but the task-independent repulsion and
    # prior terms is left out).
    ens, particles, x, y = _setup(4, (3, 2, 4), batch=1, backbone=lambda: ParameterFeatures(6), width=6)
    w, _, _ = _run(METHOD, ens, x, y, weight_decay=0.0)
    alpha, _, G, _, _ = _brute_force(particles, x, y)
    k, _ = rbf_loop(alpha)
    A = _smoothed_gram_loop(k, -SCALE * G)  # from exact parameter-space scores
    np.testing.assert_allclose(w.numpy(), _slsqp_simplex(A.numpy()), atol=1e-5)


@pytest.mark.parametrize("kernel_space", ["params", "outputs"])
def test_one_particle_with_identity_features_is_exact_mtsgd(kernel_space):
    # With one particle there is no repulsion; without a prior the dropped
    # task-independent part is zero, so the whole step equals "mt-sgd".
    args = dict(m=1, classes=(3, 2, 4), batch=1, backbone=lambda: ParameterFeatures(6), width=6)
    ens, _, x, y = _setup(**args)
    w, shared, heads = _run(METHOD, ens, x, y, weight_decay=0.0, kernel_space=kernel_space)
    ens, _, x, y = _setup(**args)
    w_exact, shared_exact, heads_exact = _run(
        "mt-sgd", ens, x, y, weight_decay=0.0, kernel_space=kernel_space
    )
    assert not torch.allclose(w, torch.full_like(w, 1 / 3))  # a non-trivial balance
    torch.testing.assert_close(w, w_exact, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(shared, shared_exact, **TIGHT)
    for a, b in zip(heads, heads_exact):
        torch.testing.assert_close(a, b, **TIGHT)


def test_outputs_kernel_space_direction_is_exact_given_w():
    # The output-space kernel's repulsion goes through the backbone too; the
    # mixing of the scores must not disturb it: compare with "mt-sgd"'s
    # direction at the same w by linearity (sum_k w_k phi_k).
    ens, particles, x, y = _setup(3, (3, 2), batch=6)
    w, shared, _ = _run(METHOD, ens, x, y, weight_decay=0.01, kernel_space="outputs")
    alpha, _, G, _, _ = _brute_force(particles, x, y)
    scores = -SCALE * (G + 0.01 * alpha)
    # Output-space kernel on the float64 reference features.
    f = torch.stack([net.features(x).reshape(-1).detach() for net in particles])
    d = torch.cdist(f, f) ** 2
    pairs = [torch.dist(f[i], f[j]).item() for i in range(3) for j in range(i + 1, 3)]
    h = np.median(pairs) ** 2 / np.log(4.0)
    kmat = torch.exp(-d / h)
    rep = []
    for i, net in enumerate(particles):
        fi = net.features(x).reshape(-1)
        total = sum(torch.exp(-((fi - f[j]) ** 2).sum() / h) for j in range(3))
        rep.append(-_flat(torch.autograd.grad(total, _group(net, "backbone."))) / 3)
    mixed = torch.einsum("k,kmp->mp", w.double(), scores)
    want = kmat.T @ mixed / 3 + torch.stack(rep)
    torch.testing.assert_close(shared, -want / SCALE, **TIGHT)


# ------------------------------------------------------------- estimator
@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 4)).astype(np.float32)
    Y = np.stack([X[:, 0] + X[:, 1] > 0, np.digitize(X[:, 2], [-0.5, 0.5])], axis=1).astype(int)
    return X, Y


FAST = dict(n_particles=3, hidden_sizes=(16,), max_epochs=6, lr=1e-2, batch_size=32)


def test_estimator_reproducible_and_weights_on_simplex(data):
    X, Y = data
    a = MTSGDClassifier(method=METHOD, random_state=0, **FAST).fit(X, Y)
    b = MTSGDClassifier(method=METHOD, random_state=0, **FAST).fit(X, Y)
    c = MTSGDClassifier(method=METHOD, random_state=1, **FAST).fit(X, Y)
    for k in range(2):
        np.testing.assert_array_equal(a.predict_proba(X)[k], b.predict_proba(X)[k])
    assert not np.allclose(a.predict_proba(X)[0], c.predict_proba(X)[0])
    assert a.score(X, Y) > 0.7
    assert (a.task_weights_ >= 0).all()
    np.testing.assert_allclose(a.task_weights_.sum(1), 1.0, rtol=1e-6)
    reg = MTSGDRegressor(method=METHOD, random_state=0, **FAST).fit(X, X[:, :2] @ [[1, 0], [2, -1]])
    assert reg.predict(X).shape == (90, 2)


def test_estimator_clone_and_grid_search(data):
    X, Y = data
    est = MTSGDClassifier(method=METHOD, random_state=0, **FAST)
    assert clone(est).get_params()["method"] == METHOD
    grid = GridSearchCV(
        MTSGDClassifier(random_state=0, **FAST),
        {"method": [METHOD, "mt-sgd"], "kernel_space": ["params", "outputs"]},
        cv=2, error_score="raise",
    ).fit(X, Y)
    assert grid.best_params_["method"] in {METHOD, "mt-sgd"}
    assert grid.predict(X).shape == Y.shape


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_estimator_on_cuda_agrees_with_cpu(data):
    X, Y = data
    gpu = MTSGDClassifier(method=METHOD, device="cuda", random_state=0, **FAST).fit(X, Y)
    cpu = MTSGDClassifier(method=METHOD, device="cpu", random_state=0, **FAST).fit(X, Y)
    assert gpu.device_.startswith("cuda")
    assert np.mean(gpu.predict(X) == cpu.predict(X)) > 0.9
