"""Between the caller's table and the model's float array of codes.

:class:`TableCodec` turns a DataFrame or array with missing cells into a
float array (category labels -> integer codes, NaN where missing) and turns
the model's completed array back into the caller's container, column names,
category labels and dtypes. It is where bad input is caught, with errors
that name the column.
"""

from __future__ import annotations

import decimal
from typing import List, Sequence

import numpy as np
import pandas as pd

from ._warnings import warn
from .columns import DISCRETE_KINDS, ColumnSpec


def _as_array(X) -> np.ndarray:
    """``X`` as an ndarray whose cells keep their types: rows mixing numbers and
    text become ``object``, not text (``np.asarray`` alone would turn 1.5 into '1.5')."""
    arr = np.asarray(X)
    return arr if isinstance(X, np.ndarray) or arr.dtype.kind not in "US" else np.asarray(X, dtype=object)


def _with_categories(col: pd.Series, new: list, spec: ColumnSpec) -> pd.Series:
    """``col`` with the categories ``new`` added; an ordered column keeps the
    order learnt at fit (``lo < mid < hi``, not ``lo < hi < mid``)."""
    known = list(col.cat.categories)
    if not col.cat.ordered:
        return col.cat.add_categories(new)
    fit_order = list(spec.categories)
    if all(c in fit_order for c in known):
        keep = set(known) | set(new)
        return col.cat.set_categories([c for c in fit_order if c in keep], ordered=True)
    unseen = [c for c in known if c not in fit_order]
    warn(f"column {spec.name!r} is ordered with categories unseen at fit ({unseen[:5]}); the imputed labels "
         f"{new[:5]} are added after them, at the end of the order", UserWarning)
    return col.cat.add_categories(new)


def _as_frame(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X, dtype=object if np.asarray(X).dtype.kind in "OUS" else None)
    if arr.ndim != 2:
        raise ValueError(f"Expected a 2D table, got an array of shape {arr.shape}; reshape a single column with "
                         "X.reshape(-1, 1)")
    return pd.DataFrame(arr)


def _is_missing(values: pd.Series) -> np.ndarray:
    return pd.isna(values).to_numpy()


class TableCodec:
    """Encode a mixed-type table to float codes and back.

    Parameters
    ----------
    specs : list of ColumnSpec
        One per column, in column order.
    """

    def __init__(self, specs: Sequence[ColumnSpec]):
        self.specs: List[ColumnSpec] = list(specs)

    def fit(self, X) -> "TableCodec":
        frame = _as_frame(X)
        self.is_frame_ = isinstance(X, pd.DataFrame)
        self.columns_ = list(frame.columns)
        self.dtypes_ = list(frame.dtypes)
        self.lookup_ = [
            None if s.kind not in DISCRETE_KINDS else {label: code for code, label in enumerate(s.categories)}
            for s in self.specs
        ]
        return self

    # ---------------------------------------------------------------- encode
    def encode(self, X, *, fitting: bool = False) -> np.ndarray:
        """``[N, D]`` float64 array: numbers, category codes, NaN for missing.

        Raises ``ValueError`` naming the column for infinities, text in a
        numeric column, a column of the wrong count, or (when ``fitting``) a
        column with no observed value. Unseen categories become missing with
        a warning.
        """
        frame = _as_frame(X)
        if frame.shape[1] != len(self.specs):
            raise ValueError(f"X has {frame.shape[1]} columns, but the imputer was fitted with "
                             f"{len(self.specs)} columns")
        if self.is_frame_ and isinstance(X, pd.DataFrame) and list(frame.columns) != self.columns_:
            missing = [c for c in self.columns_ if c not in set(frame.columns)]
            if not missing:
                raise ValueError(f"X has the columns seen at fit in another order: expected "
                                 f"{self.columns_[:10]}, got {list(frame.columns)[:10]}")
            raise ValueError(f"X's columns differ from those seen at fit; missing: {missing[:5]}, "
                             f"got: {list(frame.columns)[:10]}")
        out = np.empty(frame.shape, dtype=np.float64)
        for j, spec in enumerate(self.specs):
            out[:, j] = self._encode_column(frame.iloc[:, j], spec, self.lookup_[j])
        if fitting:
            empty = [self.specs[j].name for j in np.flatnonzero(np.isnan(out).all(axis=0))]
            if empty:
                raise ValueError(f"column {empty[0]!r} is entirely missing; it cannot be modelled "
                                 "(drop it before imputing)")
        return out

    @staticmethod
    def _encode_column(values: pd.Series, spec: ColumnSpec, lookup) -> np.ndarray:
        missing = _is_missing(values)
        if lookup is not None:
            if isinstance(values.dtype, pd.CategoricalDtype):
                values = values.astype(object)
            raw = values.to_numpy(dtype=object)
            codes = np.full(len(raw), np.nan)
            unseen = set()
            for i in np.flatnonzero(~missing):
                code = lookup.get(raw[i])  # 1.0 finds the category 1: equal numbers hash alike
                if code is None:
                    unseen.add(raw[i])
                else:
                    codes[i] = code
            if unseen:
                shown = sorted(map(repr, unseen))[:5]
                warn(f"column {spec.name!r}: categories not seen at fit treated as missing: "
                     f"{', '.join(shown)}", UserWarning)
            return codes
        try:
            numeric = pd.to_numeric(values.astype(object).where(~missing, np.nan), errors="raise")
        except (ValueError, TypeError) as exc:
            bad = next((v for v in values[~missing] if not _is_number(v)), None)
            raise ValueError(f"column {spec.name!r} is {spec.kind} but holds a non-numeric value "
                             f"{bad!r}") from exc
        numeric = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(numeric).any():
            raise ValueError(f"column {spec.name!r} contains infinity; replace it with NaN to have it imputed")
        if spec.kind in ("count", "pos"):
            negative = numeric < 0
            if negative.any():
                # Observed cells come back unchanged; only the model's view of them is clipped.
                warn(f"column {spec.name!r} is {spec.kind} but has {int(negative.sum())} negative "
                     "values; the model sees them as 0 (they are returned unchanged)", UserWarning)
                numeric = np.where(negative, 0.0, numeric)
        if spec.kind == "count":
            numeric = np.round(numeric)
        return numeric

    # ---------------------------------------------------------------- decode
    def decode(self, X, completed: np.ndarray, missing: np.ndarray):
        """Fill the ``missing`` cells of ``X`` from ``completed`` ([N, D] codes).

        ``missing`` is what :meth:`encode` saw as missing (NaN), which
        includes unseen categories. Other cells are returned unchanged; the result has the caller's
        container, column names, category labels and, where the column had
        an integer or boolean dtype at fit, that dtype.
        """
        frame = _as_frame(X)
        result = frame.copy()
        for j, spec in enumerate(self.specs):
            col = frame.iloc[:, j]
            if not missing[:, j].any():
                continue
            values = completed[missing[:, j], j]
            if spec.kind in DISCRETE_KINDS:
                filled = np.asarray(spec.categories, dtype=object)[values.astype(int)]
            else:
                filled = values
            result.isetitem(j, self._fill(col, missing[:, j], filled, self.dtypes_[j], spec))
        if isinstance(X, pd.DataFrame):
            return result
        return self._to_array(X, result)

    def as_returned(self, j: int, values: np.ndarray) -> np.ndarray:
        """Numeric estimates for column ``j`` as :meth:`decode` returns them in a column
        of its fit dtype: rounded where that dtype is an integer one."""
        if _rounds_estimates(self.dtypes_[j], self.dtypes_[j], self.specs[j]):
            return np.round(values)
        return values

    @staticmethod
    def _fill(col: pd.Series, missing: np.ndarray, filled, fit_dtype, spec) -> pd.Series:
        """``col`` with its ``missing`` cells set to ``filled``; the observed cells are
        copied as they are (never through floats, which would round integers above 2**53)."""
        if isinstance(col.dtype, pd.CategoricalDtype):
            if spec.kind in DISCRETE_KINDS:
                # the caller's categories may lack a label seen at fit (a test
                # set converted with its own astype("category"))
                new = [c for c in pd.unique(np.asarray(filled, dtype=object)) if c not in col.cat.categories]
                out = _with_categories(col, new, spec) if new else col.copy()
                out[missing] = filled
                return out
            # a category column modelled as numbers (a likelihood override) is returned as numbers
            col = pd.Series(col.astype(object).to_numpy(), index=col.index, name=col.name).infer_objects()
        dtype = col.dtype
        target = _returned_dtype(fit_dtype, dtype)
        values = col.astype(object).to_numpy(copy=True)
        if _rounds_estimates(fit_dtype, dtype, spec):
            # as floats only to test integrality (a huge int stays integral); the cells keep their objects
            observed = values[~missing].astype(np.float64)
            if not np.all(observed == np.round(observed)):
                warn(f"column {spec.name!r} was integer at fit but has non-integer values; it is "
                     "returned as floats so that they stay as they are", UserWarning)
                target = np.float64
            else:
                # draws (impute_with="sample", sample()) are not clipped to the training range
                filled = np.clip(np.round(np.asarray(filled, dtype=np.float64)), *_float_bounds(target))
        observed_cells = values[~missing]
        if observed_cells.size and all(isinstance(v, decimal.Decimal) for v in observed_cells):
            # a column of Decimals (SQL NUMERIC) gets Decimals, not floats among them
            filled = [decimal.Decimal(repr(float(v))) for v in np.ravel(filled)]
        values[missing] = filled
        try:
            return pd.Series(values, index=col.index, name=col.name).astype(target)
        except (TypeError, ValueError):
            return pd.Series(values, index=col.index, name=col.name).infer_objects()

    @staticmethod
    def _to_array(X, result: pd.DataFrame) -> np.ndarray:
        original = np.asarray(X)
        if original.dtype.kind in "fc":
            return result.to_numpy(dtype=original.dtype)
        return result.to_numpy()


def _float_bounds(dtype):
    """The extreme floats that an integer ``dtype`` (numpy or pandas nullable) holds."""
    info = np.iinfo(getattr(pd.api.types.pandas_dtype(dtype), "numpy_dtype", dtype))
    # float(2**63 - 1) rounds up to 2**63, which overflows int64
    return float(info.min), float(np.nextafter(np.float64(info.max), -np.inf)) if info.bits == 64 else float(info.max)


def _returned_dtype(fit_dtype, dtype):
    """The dtype a filled column is returned in: an integer or boolean dtype seen at
    fit is restored (a missing cell turns such a column into floats or objects)."""
    if pd.api.types.is_integer_dtype(fit_dtype) or pd.api.types.is_bool_dtype(fit_dtype):
        return fit_dtype
    return dtype


def _rounds_estimates(fit_dtype, dtype, spec: ColumnSpec) -> bool:
    """Whether a numeric column's estimates are rounded: only when it is returned as integers."""
    return pd.api.types.is_integer_dtype(_returned_dtype(fit_dtype, dtype)) and spec.kind not in DISCRETE_KINDS


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
