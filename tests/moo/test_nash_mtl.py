"""Nash-MTL: the bargaining conditions, against a generic convex solver."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from heterovae.moo import NashMTL

from ._inputs import MATRICES, conflicting_matrix


def _scipy_nash(G):
    """argmin 1/2 a^T M a - sum log a over a > 0, by L-BFGS-B (no ridge)."""
    M = (G @ G.T).numpy()
    K = M.shape[0]
    res = minimize(lambda a: 0.5 * a @ M @ a - np.log(a).sum(), np.ones(K),
                   jac=lambda a: M @ a - 1 / a, method="L-BFGS-B", bounds=[(1e-12, None)] * K,
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000})
    assert res.success, res.message
    return torch.from_numpy(res.x)


@pytest.mark.parametrize("seed", range(4))
def test_matches_a_generic_convex_solver(seed):
    G = conflicting_matrix(K=5, n=12, seed=seed)
    torch.testing.assert_close(NashMTL().weights(G), _scipy_nash(G), rtol=1e-4, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("matrix", ["random", "conflicting", "duplicated_rows", "extreme_scales", "single_task"])
def test_bargaining_conditions(matrix, dtype):
    """alpha_k (g_k . d) = 1 for every task: each task's gradient has a positive share.

    (A solution exists when no positive combination of the gradients
    vanishes; these matrices have independent or duplicated rows.)"""
    G = MATRICES[matrix](dtype)
    w = NashMTL().weights(G).double()
    assert (w > 0).all()
    G = G.double()
    shares = w * (G @ (w @ G))
    torch.testing.assert_close(shares, torch.ones_like(shares), rtol=1e-4 if dtype == torch.float32 else 1e-6, atol=0)


def test_zero_rows_take_no_part():
    G = MATRICES["zero_rows"](torch.float64)
    w = NashMTL().weights(G)
    assert w[1] == 0 and w[3] == 0
    live = torch.tensor([0, 2, 4])
    torch.testing.assert_close(w[live], NashMTL().weights(G[live]))


@pytest.mark.parametrize("c", [1e-3, 7.0])
def test_weights_scale_inversely_with_the_gradients(c):
    G = conflicting_matrix()
    torch.testing.assert_close(NashMTL().weights(c * G), NashMTL().weights(G) / c, rtol=1e-7, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("matrix", ["opposite_rows", "more_tasks_than_dims"])
def test_vanishing_positive_combination_stays_finite(matrix, dtype):
    """g and -g (or 8 gradients around 0 in 3-D): no exact solution, the ridge bounds it."""
    G = MATRICES[matrix](dtype)
    w = NashMTL().weights(G)
    assert torch.isfinite(w).all() and (w > 0).all()


def test_hyperparameter_errors():
    with pytest.raises(ValueError, match="ridge must be > 0"):
        NashMTL(ridge=0.0)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        NashMTL(max_iter=0)


@pytest.mark.parametrize("matrix", ["random", "conflicting", "extreme_scales"])
def test_nash_newton_converges_in_ten_iterations(matrix):
    from heterovae.moo.nash_mtl import nash_weights

    G = MATRICES[matrix](torch.float64)
    M = (G @ G.T).numpy()
    a = nash_weights(M, max_iter=10)
    shares = a * (M @ a)  # the bargaining conditions alpha_k (M alpha)_k = 1
    assert abs(shares - 1).max() < 1e-8, shares
