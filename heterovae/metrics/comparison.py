"""Comparing two methods over repeated train/test splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["CorrectedTTestResult", "corrected_paired_ttest"]


@dataclass(frozen=True)
class CorrectedTTestResult:
    statistic: float
    pvalue: float
    mean_difference: float
    df: int


def corrected_paired_ttest(a, b, n_train: int, n_test: int, alternative: str = "two-sided") -> CorrectedTTestResult:
    """Corrected resampled paired t-test (Nadeau & Bengio, 2003).

    Scores from ``J`` runs on overlapping training sets are correlated, which
    makes the ordinary paired t-test overconfident. The correction inflates
    the variance of the mean difference from ``var/J`` to
    ``(1/J + n_test/n_train) * var``.

    Parameters
    ----------
    a, b : array-like of shape (J,)
        The two methods' scores (errors, say) on the same ``J`` runs.
    n_train, n_test : int
        Rows used for training and testing in each run.
    alternative : {"two-sided", "less", "greater"}
        Alternative hypothesis about ``mean(a - b)``.

    Returns
    -------
    CorrectedTTestResult
        ``statistic`` (t), ``pvalue``, ``mean_difference`` and ``df = J - 1``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold the same pairs: shapes {a.shape} and {b.shape} differ")
    d = a - b
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(f"need at least two paired scores, got shape {d.shape}")
    if n_train <= 0 or n_test < 0:
        raise ValueError(f"n_train must be positive and n_test non-negative, got {n_train} and {n_test}")
    j = len(d)
    variance = d.var(ddof=1)
    mean = d.mean()
    if variance == 0:
        t = 0.0 if mean == 0 else np.copysign(np.inf, mean)
    else:
        t = mean / np.sqrt((1.0 / j + n_test / n_train) * variance)
    dist = stats.t(df=j - 1)
    if alternative == "two-sided":
        p = 2 * dist.sf(abs(t))
    elif alternative == "less":
        p = dist.cdf(t)
    elif alternative == "greater":
        p = dist.sf(t)
    else:
        raise ValueError(f"alternative must be 'two-sided', 'less' or 'greater', got {alternative!r}")
    return CorrectedTTestResult(float(t), float(p), float(mean), j - 1)
