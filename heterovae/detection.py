"""Infer the likelihood of each table column from its dtype and values.

:class:`LikelihoodDetector` turns a DataFrame (or array) into one
:class:`~heterovae.columns.ColumnSpec` per column: the kind (``real``,
``pos``, ``count``, ``binary``, ``cat``, ``ordinal``) and, for discrete
kinds, the categories in code order. Users override any column.

The rules, in order (``k`` = number of distinct observed values):

==========================================  ===================================
column                                      kind
==========================================  ===================================
bool (also object columns of booleans)      binary, categories (False, True)
category dtype, ordered                     ordinal, the dtype's categories
category dtype, unordered, 2 categories     binary, the dtype's categories
category dtype, unordered, > 2 categories   cat, the dtype's categories
text (object/str dtype of strings)          binary if k = 2, else cat; sorted
integer-valued numbers, k = 2               binary, the two values
integer-valued, some value < 0              real
integer-valued, k <= max_categories and     cat, the values (integer codes)
the values are exactly 0..k-1 or 1..k
other integer-valued (all >= 0)             count
non-integer numbers, all >= 0               pos
non-integer numbers, some < 0               real
==========================================  ===================================

"Integer-valued" means an integer dtype or floats that are all whole
numbers (a count column with missing cells is float). Missing values (NaN,
None, pd.NA) are ignored throughout.
"""

from __future__ import annotations

import decimal
import numbers
import os
from dataclasses import dataclass
from numbers import Integral
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ._table_estimator import MixedTableTransformerMixin
from ._warnings import warn
from .columns import DISCRETE_KINDS, KINDS, ColumnSpec, column_position
from .preprocessing import _as_array

__all__ = ["ConstantColumnWarning", "LikelihoodDetector", "column_spec", "detect_column"]


class ConstantColumnWarning(UserWarning):
    """A column holds a single value; it is kept, with a numeric kind."""


@dataclass(frozen=True)
class _Column:
    """What the rules look at in one column.

    family is "bool", "categorical" (pandas category dtype), "text" or
    "numeric". ``values`` are the observed (non-missing) values: floats for
    numeric columns, an object array otherwise. ``categories`` are the
    declared categories of a category dtype or of a bool column.
    """

    name: object
    family: str
    values: np.ndarray
    categories: Optional[Tuple] = None
    ordered: bool = False

    @property
    def distinct(self) -> np.ndarray:
        return np.unique(self.values) if self.family == "numeric" else pd.unique(self.values)

    def numeric_values(self, kind: str) -> np.ndarray:
        """The values as floats, or an error saying why ``kind`` cannot apply."""
        if self.family == "numeric":
            return self.values
        if self.family == "categorical":
            try:
                return np.asarray(self.values, dtype=float)
            except (TypeError, ValueError):
                pass
        raise ValueError(
            f"column {self.name!r} cannot be {kind}: it holds "
            f"{'booleans' if self.family == 'bool' else 'non-numeric labels'}, "
            f"not numbers"
        )


def _python(values) -> tuple:
    """Plain Python scalars (ints for whole numbers) for category tuples."""
    out = []
    for v in values:
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            out.append(int(v))
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v)
    return tuple(out)


def _inspect(series: pd.Series, name) -> _Column:
    """Classify one column; raise for columns no likelihood can model."""
    dtype = series.dtype
    present = series.notna().to_numpy()
    if not present.any():
        raise ValueError(f"column {name!r} has no observed value (all missing)")
    if isinstance(dtype, pd.CategoricalDtype):
        return _Column(name, "categorical", series[present].to_numpy(dtype=object),
                       tuple(dtype.categories), bool(dtype.ordered))
    if pd.api.types.is_bool_dtype(dtype):
        return _Column(name, "bool", series[present].to_numpy(dtype=object),
                       (False, True))
    if pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_complex_dtype(dtype):
            raise ValueError(f"column {name!r}: Complex data not supported")
        values = series.to_numpy(dtype=float, na_value=np.nan)[present]
        return _check_finite(_Column(name, "numeric", values))
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        values = series[present].to_numpy(dtype=object)
        kinds = {_value_family(v, name) for v in values}
        if kinds == {"text"}:
            return _Column(name, "text", values)
        if kinds == {"bool"}:
            return _Column(name, "bool", values, (False, True))
        if kinds == {"numeric"}:
            return _check_finite(_Column(name, "numeric", values.astype(float)))
        raise ValueError(
            f"column {name!r} mixes {' and '.join(sorted(kinds))} values; give it "
            "one type (e.g. convert it with astype(str) or pd.to_numeric)"
        )
    raise ValueError(
        f"column {name!r} has the unsupported dtype {dtype}; convert it to "
        "numbers, strings, booleans or a category dtype"
    )


def _value_family(value, name) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (numbers.Real, decimal.Decimal)):  # Decimal: what SQL drivers give for NUMERIC
        return "numeric"
    # sklearn's convention for an unconvertible cell is a TypeError.
    raise TypeError(
        f"column {name!r}: argument must be a string, a number or a boolean, "
        f"got {type(value).__name__}"
    )


def _check_finite(col: _Column) -> _Column:
    if np.isinf(col.values).any():
        raise ValueError(
            f"column {col.name!r} has infinite values; use NaN for missing cells"
        )
    return col


def _is_integer_valued(values: np.ndarray) -> bool:
    return bool(np.all(values == np.round(values)))


def _discrete_categories(col: _Column) -> tuple:
    if col.categories is not None:
        return col.categories
    if col.family == "text":
        return tuple(sorted(col.distinct))
    return _python(col.distinct)  # np.unique sorts


def _warn_constant(col: _Column, kind: str) -> None:
    warn(
        f"column {col.name!r} holds a single value; it is modelled as {kind} "
        "but carries no information (consider dropping it)",
        ConstantColumnWarning,
    )


# --- one builder per kind: checks the column can have the kind -------------

def _real(col: _Column) -> ColumnSpec:
    col.numeric_values("real")
    return ColumnSpec(col.name, "real")


def _pos(col: _Column) -> ColumnSpec:
    values = col.numeric_values("pos")
    if values.min() < 0:
        raise ValueError(
            f"column {col.name!r} cannot be pos: it has negative values "
            f"(min {values.min():g})"
        )
    return ColumnSpec(col.name, "pos")


def _count(col: _Column) -> ColumnSpec:
    values = col.numeric_values("count")
    if not _is_integer_valued(values):
        bad = values[values != np.round(values)][0]
        raise ValueError(
            f"column {col.name!r} cannot be count: it has non-integer values "
            f"(e.g. {bad:g})"
        )
    if values.min() < 0:
        raise ValueError(
            f"column {col.name!r} cannot be count: it has negative values "
            f"(min {values.min():g})"
        )
    return ColumnSpec(col.name, "count")


def _discrete(kind: str) -> Callable[[_Column], ColumnSpec]:
    def build(col: _Column) -> ColumnSpec:
        categories = _discrete_categories(col)
        if len(categories) < 2:
            raise ValueError(
                f"column {col.name!r} cannot be {kind}: it has a single "
                f"category {categories[0]!r}; a category dtype can declare the others"
            )
        if kind == "binary" and len(categories) != 2:
            raise ValueError(
                f"column {col.name!r} cannot be binary: it has "
                f"{len(categories)} categories"
            )
        if kind == "ordinal" and col.family == "text" and col.categories is None:
            # text has no order of its own; the alphabetical one is rarely meant
            shown = " < ".join(map(repr, categories[:5])) + (" < ..." if len(categories) > 5 else "")
            warn(
                f"column {col.name!r} is ordinal text: its levels are taken in alphabetical order "
                f"({shown}); give it an ordered category dtype to set the order",
                UserWarning,
            )
        return ColumnSpec(col.name, kind, categories)

    return build


#: How to build (and check) a spec of each kind from a column.
SPEC_BUILDERS: Dict[str, Callable[[_Column], ColumnSpec]] = {
    "real": _real,
    "pos": _pos,
    "count": _count,
    "binary": _discrete("binary"),
    "cat": _discrete("cat"),
    "ordinal": _discrete("ordinal"),
}
assert set(SPEC_BUILDERS) == set(KINDS)


def _auto_kind(col: _Column, max_categories: Optional[int]) -> str:
    if col.family == "bool":
        return "binary"
    if col.family == "categorical":
        if len(col.categories) < 2:
            raise ValueError(
                f"column {col.name!r} is categorical with a single category "
                f"{col.categories[0]!r}; drop it or declare its other categories"
            )
        if col.ordered:
            return "ordinal"
        return "binary" if len(col.categories) == 2 else "cat"
    distinct = col.distinct
    k = len(distinct)
    if col.family == "text":
        if k == 1:
            raise ValueError(
                f"column {col.name!r} holds the single value {distinct[0]!r}; a "
                "categorical column needs two categories: drop it or give it a "
                "category dtype that declares the others"
            )
        return "binary" if k == 2 else "cat"
    values = col.values
    nonneg = values.min() >= 0
    if _is_integer_valued(values):
        if k == 1:
            kind = "count" if nonneg else "real"
            _warn_constant(col, kind)
            return kind
        if k == 2:
            return "binary"
        if not nonneg:
            return "real"
        lo = int(distinct[0])
        if (max_categories is not None and k <= max_categories and lo in (0, 1)
                and int(distinct[-1]) == lo + k - 1):
            return "cat"
        return "count"
    kind = "pos" if nonneg else "real"
    if k == 1:
        _warn_constant(col, kind)
    return kind


def detect_column(series: pd.Series, name=None, max_categories: Optional[int] = 10
                  ) -> ColumnSpec:
    """The :class:`ColumnSpec` that the detection rules give one column.

    See :mod:`heterovae.detection` for the rules and
    :class:`LikelihoodDetector` for the parameters.

    Parameters
    ----------
    series : pandas.Series
        The column; missing values (NaN, None, pd.NA) are ignored.
    name : object, default=None
        The name given to the spec (and used in error messages); ``None``
        takes ``series.name``.
    max_categories : int or None, default=10
        As in :class:`LikelihoodDetector`: non-negative integer columns
        whose values are exactly ``0..k-1`` or ``1..k`` with
        ``k <= max_categories`` become ``cat``; ``None``: never.

    Returns
    -------
    ColumnSpec
        The detected kind and, for discrete kinds, the categories.
    """
    name = series.name if name is None else name
    col = _inspect(series, name)
    return SPEC_BUILDERS[_auto_kind(col, max_categories)](col)


def column_spec(series: pd.Series, kind: str, name=None,
                n_classes: Optional[int] = None) -> ColumnSpec:
    """The spec of one column with a kind chosen by the user.

    Raises a ValueError naming the column when the values rule the kind out
    (``pos`` with negative values, ``count`` with non-integers, ``binary``
    with other than two categories, a numeric kind on text).
    ``n_classes`` (from a HI-VAE ``data_types.csv``) fixes the number of
    consecutive integer codes of a numeric discrete column.

    Parameters
    ----------
    series : pandas.Series
        The column; missing values (NaN, None, pd.NA) are ignored.
    kind : {"real", "pos", "count", "binary", "cat", "ordinal"}
        The likelihood chosen for the column.
    name : object, default=None
        The name given to the spec (and used in error messages); ``None``
        takes ``series.name``.
    n_classes : int or None, default=None
        Number of classes declared for a discrete kind: the categories of
        a numeric column become that many consecutive integer codes, and
        a column whose categories number otherwise is a ValueError.
        Ignored by the numeric kinds. ``None`` takes the categories from
        the values (or the category dtype).

    Returns
    -------
    ColumnSpec
        The spec with the given kind and, for discrete kinds, the
        categories in code order.
    """
    name = series.name if name is None else name
    if kind not in KINDS:
        raise ValueError(
            f"column {name!r}: unknown likelihood {kind!r}; valid kinds are "
            f"{', '.join(KINDS)}"
        )
    col = _inspect(series, name)
    if n_classes is not None and kind in DISCRETE_KINDS and col.family == "numeric":
        from .datasets.hivae import _code_categories

        col = _Column(name, col.family, col.values,
                      _code_categories(col.values, n_classes, f"column {name!r}"))
    spec = SPEC_BUILDERS[kind](col)
    if n_classes is not None and spec.n_classes not in (None, n_classes):
        raise ValueError(
            f"column {name!r}: the data types file declares {n_classes} classes "
            f"but the column has {spec.n_classes} categories"
        )
    return spec


def _as_frame(X) -> pd.DataFrame:
    """X as a DataFrame without copying its dtypes away; check it is a table."""
    if isinstance(X, pd.DataFrame):
        frame = X
    elif hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError("LikelihoodDetector does not accept sparse input")
    else:
        # Lists keep per-column Python types; anything else goes via numpy.
        data = X if isinstance(X, list) else np.asarray(X)
        if np.ndim(data) != 2:
            raise ValueError(
                f"Expected a 2D table, got {np.ndim(data)}D input. Reshape your "
                "data with array.reshape(-1, 1) for a single column or "
                "array.reshape(1, -1) for a single row."
            )
        frame = pd.DataFrame(data)
    n_rows, n_cols = frame.shape
    if n_cols == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={frame.shape}) while a "
            "minimum of 1 is required."
        )
    if n_rows == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={frame.shape}) while a "
            "minimum of 1 is required."
        )
    return frame


class LikelihoodDetector(MixedTableTransformerMixin, TransformerMixin, BaseEstimator):
    """Choose the likelihood of each column from its dtype and values.

    A pass-through transformer: :meth:`fit` learns one
    :class:`~heterovae.columns.ColumnSpec` per column (``specs_``) and
    :meth:`transform` returns its input unchanged (after checking that it has
    the fitted columns; non-DataFrame input comes back as an ndarray). It can head a :class:`~sklearn.pipeline.Pipeline`
    so that later steps or the user read ``pipeline[0].specs_``; the imputer
    uses it internally.

    Parameters
    ----------
    likelihoods : dict, list, str, path-like or None, default=None
        Per-column choices that replace the detected kind:

        * dict ``{column: kind}``, with columns named by label or, for
          integers that are not labels, by position (``{"age": "count",
          3: "cat"}``);
        * list of one kind (or None = detect) per column;
        * the path of a HI-VAE ``data_types.csv`` file (its ``nclass`` fixes
          the number of integer codes of discrete columns).

        A kind that the values rule out (``pos`` with negative values,
        ``count`` with non-integers, ``binary`` with other than two
        categories, a numeric kind on text) is an error naming the column.
    max_categories : int >= 2 or None, default=10
        Non-negative integer columns whose values are exactly ``0..k-1`` or
        ``1..k`` with ``k <= max_categories`` look like category codes and
        become ``cat``; other non-negative integer columns are ``count``.
        None: integer columns are never ``cat`` (give such columns a category
        dtype or an override).

    Attributes
    ----------
    specs_ : list of ColumnSpec
        One per column, named by column label (position for arrays).
    n_features_in_ : int
        Number of columns seen in :meth:`fit`.
    feature_names_in_ : ndarray of str
        Column names seen in :meth:`fit`, if they are all strings.

    Notes
    -----
    Unusual columns: a column with no observed value, infinite values, or
    strings mixed with numbers is a ValueError naming it. A column with a
    single observed value is kept as ``count``/``pos``/``real`` with a
    :class:`ConstantColumnWarning` if numeric (it may be a constant fold of a
    cross-validation split) and is an error if it is text with no declared
    categories (a categorical likelihood needs two categories).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"age": [23, 41, 35], "income": [1520.5, 2100.0, 930.25],
    ...                   "city": ["a", "b", "c"], "member": [True, False, True]})
    >>> det = LikelihoodDetector().fit(X)
    >>> [(s.name, s.kind) for s in det.specs_]
    [('age', 'count'), ('income', 'pos'), ('city', 'cat'), ('member', 'binary')]
    """

    _parameter_constraints: dict = {
        "likelihoods": [dict, list, tuple, str, os.PathLike, None],
        "max_categories": [Interval(Integral, 2, None, closed="left"), None],
    }

    def __init__(self, likelihoods=None, max_categories=10):
        self.likelihoods = likelihoods
        self.max_categories = max_categories

    def fit(self, X, y=None):
        """Detect the kind of every column of X.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The table; missing cells (NaN/None) are allowed.
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        frame = _as_frame(X)
        duplicated = frame.columns[frame.columns.duplicated()]
        if len(duplicated):
            raise ValueError(
                f"X has duplicate column names: {list(dict.fromkeys(duplicated))}"
            )
        validate_data(self, frame, reset=True, skip_check_array=True)
        overrides = self._overrides(frame)
        specs = []
        for j, label in enumerate(frame.columns):
            name = label if isinstance(X, pd.DataFrame) else j
            series = frame.iloc[:, j]
            kind, n_classes = overrides.get(j, (None, None))
            if kind is None:
                specs.append(detect_column(series, name, self.max_categories))
            else:
                specs.append(column_spec(series, kind, name, n_classes))
        self.specs_ = specs
        return self

    def _overrides(self, frame: pd.DataFrame) -> Dict[int, tuple]:
        """Map column position -> (kind, n_classes or None)."""
        lik = self.likelihoods
        n = frame.shape[1]
        if lik is None:
            return {}
        if isinstance(lik, (str, os.PathLike)):
            from .datasets.hivae import read_data_types

            if isinstance(lik, str) and lik in KINDS:
                raise ValueError(
                    f"likelihoods={lik!r} is a kind, not a data types file: give the kinds per column, as a "
                    f"dict ({{column: {lik!r}}}), as a list with one kind (or None) per column, or as the path "
                    "of a HI-VAE data_types.csv file"
                )
            if not os.path.isfile(lik):
                raise FileNotFoundError(
                    f"likelihoods={os.fspath(lik)!r}: no such data types file (a str is read as the path of a "
                    f"HI-VAE data_types.csv; kinds are {', '.join(KINDS)}, given per column in a dict or list)"
                )
            file_specs = read_data_types(lik)
            if len(file_specs) != n:
                raise ValueError(
                    f"likelihoods file {os.fspath(lik)!r} describes "
                    f"{len(file_specs)} columns but X has {n}"
                )
            return {j: (s.kind, s.n_classes) for j, s in enumerate(file_specs)}
        if isinstance(lik, (list, tuple)):
            if len(lik) != n:
                raise ValueError(
                    f"likelihoods has {len(lik)} entries but X has {n} columns"
                )
            return {j: (_check_kind(k, frame.columns[j]), None)
                    for j, k in enumerate(lik) if k is not None}
        columns = list(frame.columns)
        out = {}
        for key, kind in lik.items():
            j = column_position(key, columns, "likelihoods")
            if j in out:
                raise ValueError(
                    f"likelihoods names column {columns[j]!r} twice (by label and "
                    "by position)"
                )
            if kind is not None:
                out[j] = (_check_kind(kind, columns[j]), None)
        return out

    def transform(self, X):
        """Return X's values unchanged, after checking that it has the fitted columns.

        A DataFrame comes back as a shallow copy (the same data, so no cost;
        ``set_output`` may then relabel its columns without touching the
        caller's frame); an ndarray as itself; other input (lists of rows)
        as an ndarray, ``object`` where the rows mix numbers and text.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            A table with the columns seen in :meth:`fit`.

        Returns
        -------
        DataFrame or ndarray of shape (n_samples, n_features)
            ``X``'s values, unchanged.
        """
        check_is_fitted(self, "specs_")
        validate_data(self, _as_frame(X), reset=False, skip_check_array=True)
        return X.copy(deep=False) if isinstance(X, pd.DataFrame) else _as_array(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _check_kind(kind, column) -> str:
    if kind not in KINDS:
        raise ValueError(
            f"column {column!r}: unknown likelihood {kind!r}; valid kinds are "
            f"{', '.join(KINDS)}"
        )
    return kind
