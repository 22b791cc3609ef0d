"""IMTL-G: equal projections, weights summing to one, the paper's closed form."""

import pytest
import torch

from heterovae.moo import IMTLG

from ._inputs import MATRICES, conflicting_matrix, random_matrix


def _paper_closed_form(G):
    """Liu et al. (2021), Eq. of Theorem 1, anchored on task 1 (needs independent rows)."""
    u = G / G.norm(dim=1, keepdim=True)
    D = G[:1] - G[1:]  # rows g_1 - g_t
    U = u[:1] - u[1:]
    alpha_rest = G[0] @ U.T @ torch.linalg.inv(D @ U.T)
    return torch.cat([1 - alpha_rest.sum(0, keepdim=True), alpha_rest])


def _projections(G, w):
    g = w @ G
    return (G / G.norm(dim=1, keepdim=True)) @ g


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(5))
def test_equal_projections_and_unit_sum(seed, dtype):
    G = conflicting_matrix(K=6, n=20, seed=seed, dtype=dtype)
    w = IMTLG().weights(G)
    p = _projections(G.double(), w.double())
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(p, p.mean().expand_as(p), rtol=tol, atol=tol * p.abs().max().item())
    assert p.mean().item() > 0  # a descent direction for every task
    assert w.sum().item() == pytest.approx(1.0, abs=tol)


@pytest.mark.parametrize("seed", range(5))
def test_matches_paper_closed_form(seed):
    G = conflicting_matrix(K=5, n=12, seed=seed)
    torch.testing.assert_close(IMTLG().weights(G), _paper_closed_form(G), rtol=1e-8, atol=1e-10)


def test_extreme_scales_keep_equal_projections():
    G = MATRICES["extreme_scales"](torch.float64)
    w = IMTLG().weights(G)
    p = _projections(G, w)
    torch.testing.assert_close(p, p.mean().expand_as(p), rtol=1e-6, atol=0)


def test_duplicated_rows_get_equal_weights_and_projections():
    G = MATRICES["duplicated_rows"](torch.float64)  # rows 4, 5 duplicate rows 0, 1
    w = IMTLG().weights(G)
    torch.testing.assert_close(w[4], w[0])
    torch.testing.assert_close(w[5], w[1])
    p = _projections(G, w)
    torch.testing.assert_close(p, p.mean().expand_as(p), rtol=1e-8, atol=0)


def test_zero_rows_get_zero_weight_and_others_equal_projections():
    G = MATRICES["zero_rows"](torch.float64)
    w = IMTLG().weights(G)
    assert w[1] == 0 and w[3] == 0
    keep = torch.tensor([0, 2, 4])
    p = _projections(G[keep], w[keep])
    torch.testing.assert_close(p, p.mean().expand_as(p), rtol=1e-8, atol=0)
    assert w.sum().item() == pytest.approx(1.0)


def test_scale_of_rows_does_not_matter_for_the_direction():
    """Equal projections on *unit* gradients: rescaling one task leaves the combined direction."""
    G = random_matrix(4, 15, seed=9)
    d = IMTLG().weights(G) @ G
    G2 = G * torch.tensor([1.0, 10.0, 0.1, 3.0], dtype=G.dtype)[:, None]
    d2 = IMTLG().weights(G2) @ G2
    torch.testing.assert_close(d2 / d2.norm(), d / d.norm())


def test_negative_weight_sum_keeps_a_descent_direction():
    """When the paper's weights sum to a negative number, normalising to sum 1 would flip
    the combined gradient against every task; we keep the common projection positive."""
    g = torch.Generator().manual_seed(0)
    flipped = 0
    for _ in range(200):
        G = torch.randn(3, 3, generator=g, dtype=torch.float64)
        G = G * torch.logspace(-2, 2, 3, dtype=torch.float64)[torch.randperm(3, generator=g)][:, None]
        paper = _paper_closed_form(G)
        w = IMTLG().weights(G)
        p = _projections(G, w)
        assert (p > 0).all()
        torch.testing.assert_close(p, p.mean().expand_as(p))
        if (_projections(G, paper) < 0).all():  # the paper's normalisation points uphill
            flipped += 1
            torch.testing.assert_close(w, -paper)
            assert w.sum().item() == pytest.approx(-1.0)
    assert flipped > 0  # the case occurs in this sample, so the branch is exercised


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("matrix", sorted(MATRICES))
def test_numpy_and_torch_paths_agree(matrix, dtype, monkeypatch):
    G = MATRICES[matrix](dtype)
    via_numpy = IMTLG().weights(G)
    monkeypatch.setattr("heterovae.moo.imtlg.NUMPY_ON_CPU", False)
    via_torch = IMTLG().weights(G)
    assert via_numpy.dtype == via_torch.dtype == dtype
    torch.testing.assert_close(via_numpy, via_torch)


def test_imtlg_pseudo_inverse_cut_off_is_rtol_times_k():
    import numpy as np

    theta = 2e-3  # rows 0 and 1 nearly parallel: eigenvalue 1 - cos(theta) = 2e-6 of U U^T, in (rtol, rtol K)
    U = torch.zeros(3, 5, dtype=torch.float64)
    U[0, 0] = 1.0
    U[1, 0], U[1, 1] = np.cos(theta), np.sin(theta)
    U[2, 2], U[2, 0] = 0.8, 0.6
    norms = torch.tensor([2.0, 0.5, 3.0], dtype=torch.float64)
    G = U * norms[:, None]
    w = IMTLG(rtol=1e-6).weights(G)
    # reference: least-squares (SVD) minimum-norm solution of (U U^T) beta = 1 with the same absolute cut-off
    A = (U @ U.T).numpy()
    s_max = np.linalg.eigvalsh(A).max()
    beta = np.linalg.lstsq(A, np.ones(3), rcond=1e-6 * 3 / s_max)[0]
    ref = beta / norms.numpy()
    ref = ref / abs(ref.sum())
    np.testing.assert_allclose(w.numpy(), ref, rtol=1e-8, atol=1e-12)
