"""Random missingness masks."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

__all__ = ["make_missing"]


def make_missing(X, fraction: float = 0.2, random_state=0):
    """A MCAR mask that hides a fraction of the cells of a table.

    The masked table has no empty row or column that ``X`` did not have:
    every row keeps one cell and every column keeps one row, drawn at random
    among the cells ``X`` observes and never hidden; then
    ``round(fraction * n_rows * n_columns)`` of the remaining cells are
    drawn uniformly without replacement. The choice does not look at the
    values (missing completely at random). Cells that are already missing
    in ``X`` may be drawn too (they stay missing either way). Whether a
    fraction can be hidden depends only on the table's shape: when the
    kept cells drawn first leave too few to hide, they are drawn again as
    few as possible (``max(n_rows, n_columns)``, a row and a column each;
    this second draw does not look at which cells ``X`` observes).

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_rows, n_columns)
        Only the shape, which cells are missing and, for a DataFrame, the
        labels are used.
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
    k = int(round(fraction * n * d))
    if k > n * d - max(n, d):
        raise ValueError(
            f"fraction={fraction} would hide {k} cells but at most {n * d - max(n, d)} "
            f"of a {n} x {d} table can be hidden without emptying a row or a column"
        )
    rng = check_random_state(random_state)
    observed = ~np.asarray(pd.isna(X.to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=object)))
    keep_column = _observed_choice(rng.randint(d, size=n), observed, rng)
    keep_row = _observed_choice(rng.randint(n, size=d), observed.T, rng)
    keep = np.zeros((n, d), dtype=bool)
    keep[np.arange(n), keep_column] = True
    keep[keep_row, np.arange(d)] = True
    if k > n * d - keep.sum():
        # the draws overlapped too little: a row and a column per kept cell
        small, large = sorted((n, d))
        pairs = rng.permutation(np.concatenate([np.arange(small), rng.randint(small, size=large - small)]))
        keep = np.zeros((n, d), dtype=bool)
        keep[(np.arange(large), pairs) if n >= d else (pairs, np.arange(large))] = True
    candidates = np.flatnonzero(~keep)
    mask = np.zeros(n * d, dtype=bool)
    mask[rng.choice(candidates, size=k, replace=False)] = True
    mask = mask.reshape(n, d)
    if isinstance(X, pd.DataFrame):
        return pd.DataFrame(mask, index=X.index, columns=X.columns)
    return mask


def _observed_choice(picks, observed, rng):
    """``picks[i]`` (a column of row ``i``), or where that cell is missing a random observed one of the row.

    Redrawn only where a pick is missing, so a complete table keeps the masks of the plain draw.
    """
    picks = picks.copy()
    for i in np.flatnonzero(~observed[np.arange(len(picks)), picks]):
        if observed[i].any():
            picks[i] = rng.choice(np.flatnonzero(observed[i]))
    return picks
