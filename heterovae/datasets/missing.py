"""Random missingness masks."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

__all__ = ["make_missing"]


def make_missing(X, fraction: float = 0.2, random_state=0):
    """A MCAR mask that hides a fraction of the cells of a table.

    The mask never hides a whole row or a whole column: every row keeps one
    cell and every column keeps one row that are drawn at random and never
    hidden; then ``round(fraction * n_rows * n_columns)`` of the remaining
    cells are drawn uniformly without replacement. The choice does not look
    at the values (missing completely at random). Cells that are already
    missing in ``X`` may be drawn too (they stay missing either way).

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_rows, n_columns)
        Only the shape (and, for a DataFrame, the labels) is used.
    fraction : float in (0, 1), default=0.2
        The fraction of all cells to hide.
    random_state : int, RandomState or None, default=0
        Seed; the same seed gives the same mask.

    Returns
    -------
    mask : DataFrame of bool (if X is a DataFrame) or ndarray of bool
        True where a cell is hidden.
    """
    if isinstance(X, pd.DataFrame):
        shape = X.shape
    else:
        shape = np.shape(X)
        if len(shape) != 2:
            raise ValueError(f"X must be 2-dimensional, got shape {shape}")
    if not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        raise ValueError(f"fraction must be a number in (0, 1), got {fraction!r}")
    n, d = shape
    if n < 2 or d < 2:
        raise ValueError(
            f"X of shape {shape}: a mask that keeps one cell in every row and "
            "every column needs at least 2 rows and 2 columns"
        )
    rng = check_random_state(random_state)
    keep = np.zeros((n, d), dtype=bool)
    keep[np.arange(n), rng.randint(d, size=n)] = True
    keep[rng.randint(n, size=d), np.arange(d)] = True
    candidates = np.flatnonzero(~keep)
    k = int(round(fraction * n * d))
    if k > candidates.size:
        raise ValueError(
            f"fraction={fraction} would hide {k} cells but only {candidates.size} "
            "can be hidden without emptying a row or a column"
        )
    mask = np.zeros(n * d, dtype=bool)
    mask[rng.choice(candidates, size=k, replace=False)] = True
    mask = mask.reshape(n, d)
    if isinstance(X, pd.DataFrame):
        return pd.DataFrame(mask, index=X.index, columns=X.columns)
    return mask
