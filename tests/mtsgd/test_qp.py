import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from heterovae.mtsgd import simplex_min_norm


def slsqp_min(u):
    """Reference: the same problem handed to a generic NLP solver."""
    k = u.shape[0]
    best = None
    for start in [np.full(k, 1.0 / k)] + [np.eye(k)[i] for i in range(k)]:
        res = minimize(
            lambda w: w @ u @ w,
            start,
            jac=lambda w: 2 * u @ w,
            bounds=[(0.0, 1.0)] * k,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 500},
        )
        if best is None or res.fun < best.fun:
            best = res
    return best.x, best.fun


def random_psd(rng, k, rank, scale=1.0):
    g = rng.normal(size=(k, rank)) * scale
    return g @ g.T


def assert_simplex_kkt(u, w, tol):
    """w is optimal iff it is feasible and (U w)_k >= w^T U w, with equality on the support."""
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-12)
    grad = u @ w
    obj = w @ grad
    scale = max(np.abs(u).max(), 1e-300)
    assert np.all(grad >= obj - tol * scale)
    support = w > 1e-6
    np.testing.assert_allclose(grad[support], obj, atol=tol * scale)


CASES = [(k, r, s) for k in (2, 3, 5, 8) for r in sorted({1, k - 1, k}) if r >= 1
         for s in (0,)] + [(4, 2, 1), (6, 6, 2), (3, 1, 3)]


@pytest.mark.parametrize("k, rank, seed", CASES)
def test_matches_slsqp_and_kkt(k, rank, seed):
    rng = np.random.default_rng(100 * k + 10 * rank + seed)
    u = random_psd(rng, k, rank)
    w = simplex_min_norm(u)
    assert_simplex_kkt(u, w, tol=1e-7)
    _, ref = slsqp_min(u)
    assert w @ u @ w <= ref + 1e-8 * np.abs(u).max()
    assert w @ u @ w == pytest.approx(ref, rel=1e-6, abs=1e-9 * np.abs(u).max())


@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_extreme_scales(scale):
    rng = np.random.default_rng(7)
    u = random_psd(rng, 4, 3)
    w = simplex_min_norm(u)
    np.testing.assert_allclose(simplex_min_norm(u * scale), w, atol=1e-6)


def test_constant_shift_does_not_change_weights():
    # w^T (U + c 1 1^T) w = w^T U w + c on the simplex.
    rng = np.random.default_rng(3)
    u = random_psd(rng, 4, 4)
    w = simplex_min_norm(u)
    np.testing.assert_allclose(simplex_min_norm(u + 5.0), w, atol=1e-7)
    np.testing.assert_allclose(simplex_min_norm(u - 0.5 * u.min()), w, atol=1e-7)


@pytest.mark.parametrize("k, seed", [(2, 0), (4, 3)])
def test_float32_gram_with_a_large_constant(k, seed):
    # A Stein Gram matrix in float32 whose trace term dwarfs the rest: the
    # round-off left after the reduction (seed 3: reduced eigenvalue -6e-4 for
    # a true 0) must not be mistaken for indefiniteness.
    rng = np.random.default_rng(seed)
    u64 = random_psd(rng, k, 2) + 1e4
    w32 = simplex_min_norm(torch.tensor(u64, dtype=torch.float32))
    w64 = simplex_min_norm(u64)
    assert u64 @ w32.double().numpy() @ w32.double().numpy() == pytest.approx(
        w64 @ u64 @ w64, rel=1e-5
    )


def test_two_tasks_closed_form():
    rng = np.random.default_rng(11)
    for _ in range(20):
        g = rng.normal(size=(2, 3))
        a, b = g
        # min-norm point of the segment [a, b]: w_a = clip(<b - a, b> / |a - b|^2)
        wa = np.clip((b - a) @ b / ((a - b) @ (a - b)), 0.0, 1.0)
        np.testing.assert_allclose(simplex_min_norm(g @ g.T), [wa, 1 - wa], atol=1e-8)


def test_single_task_and_zero_matrix():
    np.testing.assert_array_equal(simplex_min_norm(np.array([[3.0]])), [1.0])
    np.testing.assert_allclose(simplex_min_norm(np.zeros((3, 3))), np.full(3, 1 / 3))


def test_problem_linear_on_the_simplex():
    # Indefinite U that is zero on the tangent space: w^T U w = w1 - w2 there.
    u = np.array([[1.0, 0.0], [0.0, -1.0]])
    np.testing.assert_allclose(simplex_min_norm(u), [0.0, 1.0], atol=1e-9)


def test_identical_tasks_give_any_valid_simplex_point():
    g = np.tile(np.array([[1.0, -2.0, 0.5]]), (3, 1))
    u = g @ g.T
    w = simplex_min_norm(u)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    assert w @ u @ w == pytest.approx(u[0, 0])


def test_batched_equals_loop_and_tensor_round_trip():
    rng = np.random.default_rng(5)
    us = np.stack([random_psd(rng, 3, r) for r in (1, 2, 3, 3)])
    batched = simplex_min_norm(us)
    assert batched.shape == (4, 3)
    for ui, wi in zip(us, batched):
        np.testing.assert_allclose(wi, simplex_min_norm(ui))
    t = torch.tensor(us, dtype=torch.float32)
    wt = simplex_min_norm(t)
    assert isinstance(wt, torch.Tensor) and wt.dtype == torch.float32
    np.testing.assert_allclose(wt.numpy(), batched, atol=1e-5)


def test_does_not_mutate_input():
    rng = np.random.default_rng(2)
    u = random_psd(rng, 3, 3)
    u[0, 1] += 0.1  # asymmetric on purpose
    before = u.copy()
    simplex_min_norm(u)
    np.testing.assert_array_equal(u, before)


@pytest.mark.parametrize(
    "u, match",
    [
        (np.ones((2, 3)), "square"),
        (np.ones(3), "square"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), "positive semi-definite"),
    ],
)
def test_bad_input_is_rejected(u, match):
    with pytest.raises(ValueError, match=match):
        simplex_min_norm(u)


@pytest.mark.parametrize("ridge", [0.0, -1e-8, float("inf"), float("nan")])
def test_bad_ridge_is_rejected(ridge):
    """ridge=inf gave NaN weights, which moved the particles to NaN without an error."""
    with pytest.raises(ValueError, match="ridge must be a positive finite float"):
        simplex_min_norm(np.eye(2), ridge=ridge)


@pytest.mark.parametrize("psd_tol", [-1.0, float("inf"), float("nan")])
def test_bad_psd_tol_is_rejected(psd_tol):
    with pytest.raises(ValueError, match="psd_tol"):
        simplex_min_norm(np.eye(2), psd_tol=psd_tol)


def test_numpy_scalar_ridge_is_a_number():
    np.testing.assert_array_equal(simplex_min_norm(np.eye(2), ridge=np.float32(1e-8)),
                                  simplex_min_norm(np.eye(2), ridge=1e-8))
    with pytest.raises(ValueError, match="ridge"):
        simplex_min_norm(np.eye(2), ridge=True)
