"""The corrected resampled t-test against scipy's paired t-test."""

import numpy as np
import pytest
from scipy import stats

from heterovae.metrics import corrected_paired_ttest

RNG = np.random.default_rng(0)
A, B = RNG.normal(1.0, 0.3, 8), RNG.normal(1.2, 0.3, 8)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_without_overlap_it_is_the_paired_t_test(alternative):
    ours = corrected_paired_ttest(A, B, n_train=100, n_test=0, alternative=alternative)
    ref = stats.ttest_rel(A, B, alternative=alternative)
    assert ours.statistic == pytest.approx(ref.statistic)
    assert ours.pvalue == pytest.approx(ref.pvalue)
    assert ours.df == len(A) - 1


def test_correction_shrinks_t_by_the_closed_form_factor():
    plain = corrected_paired_ttest(A, B, n_train=80, n_test=0)
    corrected = corrected_paired_ttest(A, B, n_train=80, n_test=20)
    j = len(A)
    assert corrected.statistic == pytest.approx(plain.statistic * np.sqrt((1 / j) / (1 / j + 20 / 80)))
    assert corrected.pvalue > plain.pvalue


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="two paired"):
        corrected_paired_ttest([1.0], [2.0], 10, 2)
    # a column vector against a vector broadcast to (J, J); a length-1 b to an unpaired test
    for a, b in [(np.asarray(A)[:, None], B), (A, [0.5]), (A, np.asarray(B)[:-1])]:
        with pytest.raises(ValueError, match="same pairs"):
            corrected_paired_ttest(a, b, 10, 2)
    with pytest.raises(ValueError, match="alternative"):
        corrected_paired_ttest(A, B, 10, 2, alternative="bigger")
