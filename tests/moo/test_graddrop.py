"""GradDrop: leakage limits, sign consistency, keep probability equal to sign purity."""

import pytest
import torch

from heterovae.moo import GradDrop

from ._inputs import MATRICES, conflicting_matrix


def test_constructs_without_arguments():
    """The research code required an argument and crashed without it."""
    assert GradDrop().leakage == 0.0


def test_full_leakage_is_the_plain_sum():
    G = conflicting_matrix()
    torch.testing.assert_close(GradDrop(leakage=1.0).combine(G), G.sum(0))
    torch.testing.assert_close(GradDrop(leakage=[1.0] * G.shape[0]).combine(G), G.sum(0))


@pytest.mark.parametrize("matrix", ["random", "conflicting", "zero_rows", "duplicated_rows", "opposite_rows"])
def test_each_coordinate_keeps_one_sign(matrix):
    G = MATRICES[matrix](torch.float64)
    out = GradDrop(seed=3).combine(G)
    positive = G.clamp(min=0).sum(0)
    negative = G.clamp(max=0).sum(0)
    took_positive = torch.isclose(out, positive)
    took_negative = torch.isclose(out, negative)
    assert (took_positive | took_negative).all()


def test_keep_probability_is_the_sign_purity():
    # every coordinate: components +1 and -3, so P = (1 + (-2)/4) / 2 = 0.25
    n = 40000
    G = torch.tensor([[1.0], [-3.0]]).expand(2, n)
    out = GradDrop(seed=0).combine(G)
    assert set(out.unique().tolist()) == {1.0, -3.0}
    frac_positive = (out > 0).double().mean().item()
    assert frac_positive == pytest.approx(0.25, abs=4 * (0.25 * 0.75 / n) ** 0.5)


def test_unanimous_signs_are_kept():
    G = torch.rand(4, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    G[:, 25:] *= -1  # per coordinate all tasks agree
    torch.testing.assert_close(GradDrop().combine(G), G.sum(0))


def test_partial_leakage_mixes_the_two_limits():
    G = conflicting_matrix()
    dropped = GradDrop(seed=5).combine(G)
    leaked = GradDrop(leakage=0.3, seed=5).combine(G)
    torch.testing.assert_close(leaked, 0.3 * G.sum(0) + 0.7 * dropped)
    per_task = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    mixed = GradDrop(leakage=per_task.tolist(), seed=5).combine(G)
    # task 0 passes whole; the others keep exactly what pure GradDrop keeps of them
    keep_positive = (dropped == G.clamp(min=0).sum(0))
    kept = torch.where(keep_positive, G.clamp(min=0), G.clamp(max=0))
    torch.testing.assert_close(mixed, G[0] + kept[1:].sum(0))


def test_seed_reproducibility_and_global_rng():
    G = conflicting_matrix()
    torch.testing.assert_close(GradDrop(seed=1).combine(G), GradDrop(seed=1).combine(G))
    torch.manual_seed(7)
    a = GradDrop().combine(G)
    torch.manual_seed(7)
    torch.testing.assert_close(GradDrop().combine(G), a)


@pytest.mark.parametrize("leakage", [-0.1, 1.5, "x", [0.2, 2.0], True])
def test_bad_leakage(leakage):
    with pytest.raises(ValueError, match="leakage must be"):
        GradDrop(leakage=leakage)


def test_per_task_leakage_length_checked():
    with pytest.raises(ValueError, match="leakage has 2 values but there are 6 tasks"):
        GradDrop(leakage=[0.1, 0.2]).combine(conflicting_matrix())
