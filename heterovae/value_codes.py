"""Exact-value codes of numeric columns whose values repeat.

Some numeric columns are lookups in disguise: in the bank marketing table
``euribor3m`` takes 279 values, one per trading day, so its exact value
names the day and with it ``day_of_week`` and ``month``. A smooth encoding
(scaled value, normal scores, even a rank encoding in 16 steps) keeps
neighbouring values together and cannot tell those days apart; a forest
splits on them. :class:`ValueCodes` gives each distinct training value of
such a column an index, which the vae turns into a learned vector added to
its decoder's first layer (a one-hot code times a weight matrix, computed
as a lookup).
"""

from __future__ import annotations

import numbers
from typing import List, Optional, Sequence

import numpy as np
import torch
from torch import nn

#: A column gets codes only when its values repeat at least this often on
#: average; below that a code names a handful of rows and a network can only
#: memorise them.
MIN_REPEATS = 5

#: ``value_codes="auto"``: the most distinct values a column may have.
AUTO_MAX_VALUES = 512
#: ``value_codes="auto"``: the gain, in nats per row, that a column's exact
#: values must bring over its rank in :data:`AUTO_BINS` steps when predicting
#: some discrete column. On the five benchmark tables the gains are 0.70
#: (bank's euribor3m for day_of_week), 0.08-0.23 (bank's other economic
#: indicators for month) and at most 0.031 elsewhere.
AUTO_MIN_GAIN = 0.05
#: steps of the rank that exact values are compared with, as ``numeric_bins``' default
AUTO_BINS = 16


def distinct_values(x: np.ndarray, max_values: int, min_repeats: float = MIN_REPEATS) -> List[Optional[np.ndarray]]:
    """Sorted distinct float32 values of each column of ``x`` that is worth coding.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_columns)
        Training values, NaN where missing.
    max_values : int
        Columns with more distinct values than this get no codes (0: none do).
    min_repeats : float, default=MIN_REPEATS
        Columns whose observed cells per distinct value fall below this get
        no codes.

    Returns
    -------
    list of ndarray or None
        Per column, its distinct observed values (float32, ascending) or
        ``None`` when it gets no codes: fewer than two values, more than
        ``max_values``, or too few repeats.
    """
    if isinstance(max_values, bool) or not isinstance(max_values, numbers.Integral) or max_values < 0:
        raise ValueError(f"max_values must be an integer >= 0, got {max_values!r}")
    x = np.asarray(x, dtype=np.float64)
    out: List[Optional[np.ndarray]] = []
    for column in x.T:
        seen = column[~np.isnan(column)].astype(np.float32)
        values = np.unique(seen)
        worth = 2 <= len(values) <= max_values and len(seen) >= min_repeats * len(values)
        out.append(values if worth else None)
    return out


class ValueCodes(nn.Module):
    """Index of each cell's exact value among its column's training values.

    Parameters
    ----------
    values : sequence of (array-like or None)
        One entry per column of the table: the column's distinct values in
        ascending order (:func:`distinct_values`), or ``None`` for a column
        without codes.

    Attributes
    ----------
    n_codes : int
        Total number of codes, the rows of an embedding table indexed by
        :meth:`forward`.
    """

    def __init__(self, values: Sequence[Optional[np.ndarray]]):
        super().__init__()
        coded = [(d, np.asarray(v, dtype=np.float32)) for d, v in enumerate(values) if v is not None]
        for d, v in coded:
            if v.ndim != 1 or len(v) == 0 or not np.all(np.diff(v) > 0):
                raise ValueError(f"values of column {d} must be a non-empty ascending 1-d array without repeats")
        sizes = [len(v) for _, v in coded]
        width = max(sizes, default=0)
        # padded with +inf so that every column can be searched in one call
        table = np.full((len(coded), width), np.inf, dtype=np.float32)
        for row, (_, v) in enumerate(coded):
            table[row, :len(v)] = v
        self.n_codes = int(sum(sizes))
        self.register_buffer("columns", torch.as_tensor([d for d, _ in coded], dtype=torch.long))
        self.register_buffer("table", torch.as_tensor(table))
        self.register_buffer("sizes", torch.as_tensor(sizes, dtype=torch.long))
        self.register_buffer("starts", torch.as_tensor(np.cumsum([0] + sizes[:-1]), dtype=torch.long))

    def forward(self, x: torch.Tensor, seen: torch.Tensor):
        """``(index, hit)``, both ``[N, C]`` for the ``C`` coded columns.

        ``index`` is the row of the cell's value in a table of
        :attr:`n_codes` rows; ``hit`` is false where the cell is not seen or
        its value was not among the training values (it then has no code).
        """
        cells = x[:, self.columns].to(self.table.dtype).T.contiguous()  # [C, N]
        position = torch.minimum(torch.searchsorted(self.table, cells), (self.sizes - 1)[:, None])
        hit = (self.table.gather(1, position) == cells) & seen[:, self.columns].T
        return (position + self.starts[:, None]).T, hit.T

    def extra_repr(self) -> str:
        return f"columns={self.columns.tolist()}, n_codes={self.n_codes}"


def _loo_log_loss(keys: np.ndarray, target: np.ndarray, n_classes: int) -> float:
    """Leave-one-out log loss of ``target`` given ``keys`` (integer arrays), predicting with
    each key's class counts plus one per class (Dirichlet-smoothed frequencies)."""
    n_keys = int(keys.max()) + 1
    joint = np.bincount(keys * n_classes + target, minlength=n_keys * n_classes)
    per_key = np.bincount(keys, minlength=n_keys)
    own = joint[keys * n_classes + target] - 1  # the row itself left out
    rest = per_key[keys] - 1
    return float(-np.mean(np.log((own + 1.0) / (rest + n_classes))))


def lookup_gain(values: np.ndarray, target: np.ndarray, n_classes: int, bins: int = AUTO_BINS) -> float:
    """How much better a column's exact values predict a discrete column than its rank does.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        The numeric column, NaN where missing.
    target : ndarray of shape (n_samples,)
        The discrete column's codes ``0 .. n_classes - 1``, NaN where missing.
    n_classes : int
        Number of categories of ``target``.
    bins : int, default=AUTO_BINS
        Steps of the rank (equal-frequency bins) to compare with.

    Returns
    -------
    float
        Leave-one-out log loss of ``target`` given the rank bin minus that
        given the exact value, in nats per row, over the rows where both are
        observed (0 with fewer than two such rows). Positive: the exact
        value tells more than its neighbourhood.
    """
    both = ~np.isnan(values) & ~np.isnan(target)
    if both.sum() < 2:
        return 0.0
    v, y = values[both], target[both].astype(np.int64)
    distinct, exact = np.unique(v, return_inverse=True)
    # the bin of each value's mid-rank, so that tied values share a bin
    ordered = np.sort(v)
    below = np.searchsorted(ordered, distinct, side="left")
    above = np.searchsorted(ordered, distinct, side="right")
    rank = (below + above) / (2.0 * len(v))
    coarse = np.minimum((rank * bins).astype(np.int64), bins - 1)[exact]
    return _loo_log_loss(coarse, y, n_classes) - _loo_log_loss(exact.astype(np.int64), y, n_classes)


def auto_values(x: np.ndarray, numeric: Sequence[bool], n_classes: Sequence[Optional[int]],
                max_values: int = AUTO_MAX_VALUES, min_gain: float = AUTO_MIN_GAIN) -> List[Optional[np.ndarray]]:
    """The codes of ``value_codes="auto"``: numeric columns whose exact values name something.

    A numeric column gets codes when it qualifies for :func:`distinct_values`
    (at most ``max_values`` values, repeated) and its exact values predict
    some discrete column at least ``min_gain`` nats per row better than its
    rank does (:func:`lookup_gain`), as a day's interest rate names the
    weekday. A table without discrete columns gets none.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_columns)
        Training values, NaN where missing; discrete columns as codes.
    numeric : sequence of bool
        Whether each column is numeric (real, positive or count).
    n_classes : sequence of int or None
        Number of categories of each discrete column.
    max_values, min_gain : int, float
        See :data:`AUTO_MAX_VALUES` and :data:`AUTO_MIN_GAIN`.

    Returns
    -------
    list of ndarray or None
        As :func:`distinct_values`.
    """
    candidates = distinct_values(x, max_values)
    targets = [j for j, is_numeric in enumerate(numeric) if not is_numeric]
    out: List[Optional[np.ndarray]] = []
    for j, values in enumerate(candidates):
        named = values is not None and numeric[j] and any(
            lookup_gain(x[:, j], x[:, t], n_classes[t]) >= min_gain for t in targets)
        out.append(values if named else None)
    return out
