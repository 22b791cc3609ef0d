"""Aligned-MTL against an SVD reference."""

import pytest
import torch

from heterovae.moo import AlignedMTL

from ._inputs import MATRICES, conflicting_matrix


@pytest.mark.parametrize("seed", range(4))
def test_matches_svd_reference(seed):
    G = conflicting_matrix(K=5, n=12, seed=seed)
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    aligned = S.min() * U @ Vh
    torch.testing.assert_close(AlignedMTL().combine(G), aligned.sum(0))
    torch.testing.assert_close(AlignedMTL().alignment(G) @ G, aligned)


def test_aligned_rows_are_orthogonal_with_equal_norms():
    G = MATRICES["extreme_scales"](torch.float64)[:3]  # scales 1e-8, 1e8, 1 (condition ~1e16)
    G = G / G.norm(dim=1, keepdim=True) * torch.tensor([1e-2, 1e2, 1.0], dtype=G.dtype)[:, None]
    Gh = AlignedMTL().alignment(G) @ G
    gram = Gh @ Gh.T
    torch.testing.assert_close(gram / gram[0, 0], torch.eye(3, dtype=G.dtype), atol=1e-6, rtol=0)


def test_rank_deficient_uses_the_kept_directions():
    G = MATRICES["duplicated_rows"](torch.float64)
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    r = int((S > 1e-6 * S.max()).sum())
    assert r == 4
    aligned = S[r - 1] * U[:, :r] @ Vh[:r]
    torch.testing.assert_close(AlignedMTL().combine(G), aligned.sum(0))
