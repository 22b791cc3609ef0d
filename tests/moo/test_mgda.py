"""MGDA-UB against independent references: KKT conditions, SLSQP, the K=2 closed form."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from torch.overrides import TorchFunctionMode

from heterovae.moo import MGDAUB, frank_wolfe_min_norm

from ._inputs import MATRICES, conflicting_matrix, random_matrix

SOLVERS = [{"solver": "quadprog"}, {"solver": "frank-wolfe", "max_iter": 400}]


def _slsqp_min_norm(G):
    M = (G @ G.T).numpy()
    K = M.shape[0]
    res = minimize(
        lambda w: w @ M @ w, np.full(K, 1 / K), jac=lambda w: 2 * M @ w, method="SLSQP",
        bounds=[(0, 1)] * K, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    assert res.success
    return res.x


@pytest.mark.parametrize("kwargs", SOLVERS)
@pytest.mark.parametrize("matrix", sorted(MATRICES))
def test_weights_on_simplex_and_kkt(matrix, kwargs):
    G = MATRICES[matrix](torch.float64)
    w = MGDAUB(**kwargs).weights(G)
    assert (w >= 0).all()
    assert w.sum().item() == pytest.approx(1.0, abs=1e-12)
    # KKT of min w^T M w on the simplex of the non-zero rows (a zero row is no
    # task): (M w)_i >= w^T M w for all of them, with equality on the support
    # of w. Normalised by the scale of M.
    M = G @ G.T
    live = M.diagonal() > 0
    assert (w[~live] == 0).all() or not live.any()
    scale = M.diagonal().max().clamp_min(1e-300)
    Mw, wMw = (M @ w) / scale, (w @ M @ w) / scale
    assert (Mw[live] >= wMw - 1e-7).all(), (Mw, wMw)
    support = w > 1e-6
    assert torch.allclose(Mw[support], wMw.expand(int(support.sum())), atol=1e-6)


@pytest.mark.parametrize("kwargs", SOLVERS)
@pytest.mark.parametrize("seed", range(4))
def test_matches_slsqp(seed, kwargs):
    G = conflicting_matrix(K=7, n=15, seed=seed)
    w_ref = _slsqp_min_norm(G)
    w = MGDAUB(**kwargs).weights(G).numpy()
    M = (G @ G.T).numpy()
    assert w @ M @ w <= w_ref @ M @ w_ref * (1 + 1e-7) + 1e-12
    np.testing.assert_allclose(w, w_ref, atol=2e-4)  # unique minimiser: K < n, rows independent


@pytest.mark.parametrize("kwargs", SOLVERS)
@pytest.mark.parametrize("seed", range(5))
def test_two_tasks_closed_form(seed, kwargs):
    G = random_matrix(2, 6, seed=seed)
    g1, g2 = G
    gamma = (torch.dot(g2 - g1, g2) / (g1 - g2).pow(2).sum()).clamp(0, 1)
    w = MGDAUB(**kwargs).weights(G)
    torch.testing.assert_close(w, torch.stack([gamma, 1 - gamma]), atol=1e-9, rtol=0)


def test_regression_small_gradient_gets_all_the_weight():
    """The research code clipped with min(w, 1e-3): every weight became 1e-3, i.e. uniform."""
    G = random_matrix(4, 10, seed=3)
    G[2] *= 1e-3  # the min-norm point is (almost) this row
    w = MGDAUB().weights(G)
    assert w[2].item() > 0.99


@pytest.mark.parametrize("K", [3, 13, 24])
def test_frank_wolfe_matches_exact_solver(K):
    G = conflicting_matrix(K=K, n=60, seed=K)
    exact = MGDAUB(solver="quadprog").weights(G)
    fw = MGDAUB(solver="frank-wolfe", max_iter=1000).weights(G)
    torch.testing.assert_close(fw, exact, atol=1e-6, rtol=0)


class _CountCalls(TorchFunctionMode):
    def __init__(self, name):
        super().__init__()
        self.name, self.calls = name, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") == self.name:
            self.calls += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("max_iter", [0, 1, 7, 50])
def test_frank_wolfe_iteration_cap_is_enforced(max_iter):
    """The research solver never enforced its cap; ours runs exactly max_iter steps."""
    M = (lambda G: G @ G.T)(conflicting_matrix(K=10, n=20))
    with _CountCalls("argmin") as counter:
        w = frank_wolfe_min_norm(M, max_iter)
    assert counter.calls == 1 + max_iter  # one for the pair start, one per iteration
    assert (w >= 0).all() and w.sum().item() == pytest.approx(1.0)


def test_frank_wolfe_float32_close_to_exact():
    G = conflicting_matrix(K=13, n=6400, seed=0, dtype=torch.float32)
    exact = MGDAUB().weights(G.double())
    fw = MGDAUB(solver="frank-wolfe").weights(G)
    assert fw.dtype == torch.float32
    torch.testing.assert_close(fw.double(), exact, atol=1e-3, rtol=0)


@pytest.mark.parametrize("kwargs", SOLVERS)
@pytest.mark.parametrize("seed", range(6))
def test_kkt_holds_for_gradients_of_very_different_sizes(seed, kwargs):
    """Rows of norm 1e-4 next to 1e4: d = w @ G must still have g_k . d >= ||d||^2 for every task.

    A ridge relative to the largest row swamped the small ones: a "common
    descent direction" that raised one task's loss.
    """
    rng = np.random.default_rng(seed)
    K = 3 + seed % 3
    G = torch.tensor(rng.normal(size=(K, 20)) * 10.0 ** rng.uniform(-4, 4, size=K)[:, None])
    w = MGDAUB(**kwargs).weights(G)
    d = w @ G
    norm2 = float(d @ d)
    assert ((G @ d) >= norm2 * (1 - 1e-6)).all(), ((G @ d) / norm2, w)
    support = w > 1e-9
    np.testing.assert_allclose((G @ d)[support].numpy(), norm2, rtol=1e-5)


@pytest.mark.parametrize("kwargs", SOLVERS)
def test_a_zero_row_is_not_a_task(kwargs):
    """A column with no observed cell in the batch has a zero gradient; it must not zero the step."""
    G = conflicting_matrix(K=4, n=15, seed=2)
    reference = MGDAUB(**kwargs).weights(G[:3])
    G[3] = 0
    w = MGDAUB(**kwargs).weights(G)
    assert w[3] == 0
    torch.testing.assert_close(w[:3], reference, atol=1e-6, rtol=0)
    assert float((w @ G).norm()) > 0


@pytest.mark.parametrize("kwargs", SOLVERS)
def test_only_one_non_zero_row_takes_all_the_weight(kwargs):
    G = torch.zeros(3, 5, dtype=torch.float64)
    G[1] = 1.0
    torch.testing.assert_close(MGDAUB(**kwargs).weights(G), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("kwargs", SOLVERS)
def test_zero_matrix_gives_uniform_weights(kwargs):
    torch.testing.assert_close(MGDAUB(**kwargs).weights(torch.zeros(3, 5)), torch.full((3,), 1 / 3))


def test_hyperparameter_errors():
    with pytest.raises(ValueError, match="solver must be one of quadprog, frank-wolfe"):
        MGDAUB(solver="exact")
    with pytest.raises(ValueError, match="max_iter"):
        MGDAUB(max_iter=-1)


@pytest.mark.parametrize("seed", range(5))
def test_frank_wolfe_start_is_the_best_segment_point(seed):
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(5, 7, generator=g, dtype=torch.float64) + 0.3 * torch.randn(1, 7, generator=g, dtype=torch.float64)
    M = G @ G.T
    best = float("inf")
    for i in range(5):  # brute force: closed-form min-norm point of every segment
        for j in range(5):
            a, b = G[i], G[j]
            denom = float((a - b) @ (a - b))
            t = 1.0 if denom == 0 else min(max(float((b - a) @ b) / denom, 0.0), 1.0)
            best = min(best, float((t * a + (1 - t) * b).pow(2).sum()))
    w = frank_wolfe_min_norm(M, max_iter=0)
    assert float(w @ M @ w) == pytest.approx(best, rel=1e-12)
    if seed == 0:  # K = 2: the start is already the exact answer
        a, b = G[0], G[1]
        t = ((b - a) @ b / ((a - b) @ (a - b))).clamp(0, 1)
        torch.testing.assert_close(frank_wolfe_min_norm(M[:2, :2], max_iter=0), torch.stack([t, 1 - t]))
