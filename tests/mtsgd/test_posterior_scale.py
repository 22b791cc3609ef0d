"""The estimator's MT-SGD step against the tempered full-data posterior.

The target of task ``k`` is written here the way the paper defines it, as
a sum over the ``N`` training rows,

    log p_k(alpha, beta_k) = (1/T) sum_n log p(y_nk | x_n, alpha, beta_k)
                             - (N weight_decay / (2 T)) ||(alpha, beta_k)||^2,

and the whole first step of ``MTSGDClassifier(method="mt-sgd")`` on a full
batch is rebuilt from it in float64 with explicit loops: scores by autograd
of the summed log-likelihood, RBF kernel with the median heuristic, the
SVGD directions, the RKHS inner products ``U`` and the two-task min-norm
weights in closed form. The estimator stores ``-direction * T / N`` as the
gradient. This pins down the relative scale of the driving term
(``N / T`` times a mean-loss gradient) and of the kernel's repulsion
(unscaled): had the scores been mean-loss gradients, the repulsion would be
``N / T`` times too strong relative to the data and the test would fail.
"""


import numpy as np
import pytest
import torch

from ._references import rbf_loop, svgd_loop
from heterovae.mtsgd.estimators import MTSGDClassifier, MTSGDRegressor

N, D, H, M = 24, 3, 4, 3
CLASSES = (3, 2)


class _Recorder(torch.optim.SGD):
    """SGD that keeps the parameters and gradients seen at its first step."""

    seen = []

    def step(self, closure=None):
        if not _Recorder.seen:
            _Recorder.seen.append(
                [(p.detach().clone(), p.grad.detach().clone()) for p in self.param_groups[0]["params"]]
            )
        return super().step(closure)


def _data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(N, D)).astype(np.float32)
    Y = np.stack([np.arange(N) % c for c in CLASSES], axis=1)
    rng.shuffle(Y[:, 0])
    return X, Y


def _log_lik_sum(alpha, beta, k, X, Y):
    """sum_n log p(y_nk | x_n) for one particle, written out by hand."""
    w1, b1 = alpha
    wk, bk = beta
    z = torch.relu(X @ w1.T + b1)
    logits = z @ wk.T + bk
    return torch.log_softmax(logits, dim=1)[torch.arange(N), Y[:, k]].sum()


@pytest.mark.parametrize("temperature, weight_decay", [(1.0, 0.0), (3.0, 0.05)])
def test_first_step_is_svgd_on_the_summed_log_likelihood(temperature, weight_decay):
    X, Y = _data()
    _Recorder.seen = []
    clf = MTSGDClassifier(
        hidden_sizes=(H,), n_particles=M, method="mt-sgd", max_epochs=1, batch_size=N,
        optimizer=_Recorder, lr=1e-3, temperature=temperature, weight_decay=weight_decay,
        random_state=0,
    ).fit(X, Y)
    names = list(clf.ensemble_.params)
    before = {n: p.double() for n, (p, _) in zip(names, _Recorder.seen[0])}
    stored = {n: g.double() for n, (_, g) in zip(names, _Recorder.seen[0])}
    Xt, Yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(Y)

    shared_names = ["backbone.0.weight", "backbone.0.bias"]
    head_names = [[f"heads.{k}.weight", f"heads.{k}.bias"] for k in range(2)]
    flat = lambda ts: torch.cat([t.reshape(-1) for t in ts])  # noqa: E731

    # Scores of the summed, tempered log-posterior, one particle at a time.
    s_shared = torch.zeros(2, M, sum(before[n][0].numel() for n in shared_names), dtype=torch.float64)
    s_heads = [[None] * M for _ in range(2)]
    for m in range(M):
        for k in range(2):
            alpha = [before[n][m].clone().requires_grad_(True) for n in shared_names]
            beta = [before[n][m].clone().requires_grad_(True) for n in head_names[k]]
            prior = sum((t * t).sum() for t in alpha + beta)
            logp = (_log_lik_sum(alpha, beta, k, Xt, Yt) - N * weight_decay / 2 * prior) / temperature
            g = torch.autograd.grad(logp, alpha + beta)
            s_shared[k, m] = flat(g[:2])
            s_heads[k][m] = flat(g[2:])

    scale = N / temperature
    # Shared part: MT-SGD with the closed-form two-task weights on U.
    alpha_flat = torch.stack([flat([before[n][m] for n in shared_names]) for m in range(M)])
    k, dk = rbf_loop(alpha_flat)
    phis = [svgd_loop(k, dk, s_shared[t]) for t in range(2)]
    U = torch.zeros(2, 2, dtype=torch.float64)
    for a in range(2):
        for b in range(2):
            U[a, b] = sum(
                k[i, j] * s_shared[a, i] @ s_shared[b, j]
                + s_shared[a, i] @ dk[j, i] + s_shared[b, j] @ dk[i, j]
                for i in range(M) for j in range(M)
            ) / M**2
    t = min(max(float((U[1, 1] - U[0, 1]) / (U[0, 0] + U[1, 1] - 2 * U[0, 1])), 0.0), 1.0)
    want = -(t * phis[0] + (1 - t) * phis[1]) / scale
    got = torch.stack([flat([stored[n][m] for n in shared_names]) for m in range(M)])
    torch.testing.assert_close(got, want, rtol=2e-3, atol=1e-6)

    # Heads: SVGD on their own task's posterior.
    for t_ in range(2):
        beta_flat = torch.stack([flat([before[n][m] for n in head_names[t_]]) for m in range(M)])
        kh, dkh = rbf_loop(beta_flat)
        want = -svgd_loop(kh, dkh, torch.stack(s_heads[t_])) / scale
        got = torch.stack([flat([stored[n][m] for n in head_names[t_]]) for m in range(M)])
        torch.testing.assert_close(got, want, rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("batch_size", [7, 16, 50])
def test_score_scale_is_training_rows_over_temperature(batch_size, monkeypatch):
    import heterovae.mtsgd.estimators as est

    seen = []
    real = est.get_method

    def spy(name):
        rule = real(name)

        def wrapped(ctx):
            seen.append(ctx.scale)
            return rule(ctx)

        return wrapped

    monkeypatch.setattr(est, "get_method", spy)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 3)).astype(np.float32)
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0], axis=1).astype(int)
    MTSGDClassifier(hidden_sizes=(4,), n_particles=2, max_epochs=1, batch_size=batch_size,
                    temperature=2.5, random_state=0).fit(X, Y)
    assert seen and all(s == pytest.approx(50 / 2.5) for s in seen)


def test_regressor_gradient_is_that_of_half_the_mse_of_standardised_targets():
    rng = np.random.RandomState(0)
    N, D, H = 30, 3, 4
    X = rng.normal(size=(N, D)).astype(np.float32)
    Y = np.stack([3.0 * X[:, 0] + 5.0, X[:, 1] - 2.0 * X[:, 2]], axis=1)
    _Recorder.seen = []
    reg = MTSGDRegressor(hidden_sizes=(H,), n_particles=1, method="linear", max_epochs=1, batch_size=N,
                         optimizer=_Recorder, random_state=0).fit(X, Y)
    names = list(reg.ensemble_.params)
    before = {n: p[0].double() for n, (p, _) in zip(names, _Recorder.seen[0])}
    stored = {n: g[0].double() for n, (_, g) in zip(names, _Recorder.seen[0])}
    Z = torch.as_tensor((Y - Y.mean(0)) / Y.std(0))
    params = {n: t.clone().requires_grad_(True) for n, t in before.items()}
    z = torch.relu(torch.as_tensor(X, dtype=torch.float64) @ params["backbone.0.weight"].T + params["backbone.0.bias"])
    total = 0.0
    for k in range(2):
        f = (z @ params[f"heads.{k}.weight"].T + params[f"heads.{k}.bias"])[:, 0]
        total = total + 0.5 * ((f - Z[:, k]) ** 2).mean()
    grads = torch.autograd.grad(total, list(params.values()))
    for n, g in zip(params, grads):
        torch.testing.assert_close(stored[n], g, rtol=1e-4, atol=1e-6)


# --- E5: the regressor averages the particles' predicted means
