"""UPGrad and DualProj: projections onto the dual cone, checked against SLSQP."""

import pytest
import torch
from scipy.optimize import minimize

from heterovae.moo import DualProj, UPGrad

from ._inputs import MATRICES, conflicting_matrix


def _slsqp_project(x, G):
    """argmin ||z - x||^2 subject to G z >= 0, by a generic NLP solver."""
    x, G = x.numpy(), G.numpy()
    res = minimize(
        lambda z: ((z - x) ** 2).sum(), x.copy(), jac=lambda z: 2 * (z - x), method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda z: G @ z, "jac": lambda z: G}],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert res.success, res.message
    return torch.from_numpy(res.x)


@pytest.mark.parametrize("seed", range(4))
def test_dualproj_is_the_projection_of_the_sum(seed):
    G = conflicting_matrix(K=4, n=6, seed=seed)
    expected = _slsqp_project(G.sum(0), G)
    torch.testing.assert_close(DualProj().combine(G), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_upgrad_projects_every_gradient(seed):
    G = conflicting_matrix(K=4, n=6, seed=seed)
    projected = UPGrad().project(G)
    for i in range(4):
        torch.testing.assert_close(projected[i], _slsqp_project(G[i], G), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(UPGrad().combine(G), projected.sum(0))


@pytest.mark.parametrize("method", [UPGrad, DualProj])
@pytest.mark.parametrize("matrix", ["random", "conflicting", "zero_rows", "duplicated_rows", "opposite_rows",
                                    "extreme_scales", "more_tasks_than_dims"])
def test_output_conflicts_with_no_task(method, matrix):
    G = MATRICES[matrix](torch.float64)
    d = method().combine(G)
    norms = G.norm(dim=1)
    assert ((G @ d) >= -1e-6 * norms * d.norm()).all()


@pytest.mark.parametrize("method", [UPGrad, DualProj])
def test_conflict_free_input_is_the_plain_sum(method):
    G = torch.rand(5, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(method().combine(G), G.sum(0), rtol=1e-7, atol=1e-9)
