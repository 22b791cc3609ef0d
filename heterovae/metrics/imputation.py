"""Imputation error per column: normalised RMSE and error rate.

The scores of the HI-VAE line of work (Nazabal et al., 2020) and of
"Boosting heterogeneous VAEs via multi-objective optimization": numeric
columns (real, pos, count) get the root mean squared error over the scored
cells divided by the range of the column; discrete columns (binary, cat,
ordinal) get the fraction of scored cells imputed wrongly.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import pandas as pd

from .._warnings import warn
from ..columns import KINDS, ColumnSpec

__all__ = [
    "ERROR_OF_KIND",
    "error_rate",
    "imputation_error",
    "mean_imputation_error",
    "normalized_rmse",
]


def normalized_rmse(true: np.ndarray, imputed: np.ndarray, value_range: float) -> float:
    """RMSE of ``imputed`` against ``true`` divided by ``value_range``.

    Parameters
    ----------
    true : array-like of shape (n_cells,)
        The true values of the scored cells.
    imputed : array-like of shape (n_cells,)
        Their imputed values.
    value_range : float
        The normaliser, usually ``max - min`` of the column's observed
        true values (see :func:`imputation_error`).

    Returns
    -------
    float
        ``sqrt(mean((true - imputed)^2)) / value_range``.
    """
    true = np.asarray(true, dtype=float)
    imputed = np.asarray(imputed, dtype=float)
    return float(np.sqrt(np.mean((true - imputed) ** 2)) / value_range)


def error_rate(true: np.ndarray, imputed: np.ndarray) -> float:
    """Fraction of cells where ``imputed`` differs from ``true`` (as labels).

    Parameters
    ----------
    true : array-like of shape (n_cells,)
        The true labels of the scored cells.
    imputed : array-like of shape (n_cells,)
        Their imputed labels, compared with ``true`` by ``!=`` as Python
        objects (so a label and a numeric code of equal value agree).

    Returns
    -------
    float in [0, 1]
    """
    true = np.asarray(true, dtype=object)
    imputed = np.asarray(imputed, dtype=object)
    return float(np.mean(true != imputed))


#: The score of each column kind: ``"nrmse"`` or ``"error_rate"``.
ERROR_OF_KIND: Dict[str, str] = {
    "real": "nrmse",
    "pos": "nrmse",
    "count": "nrmse",
    "binary": "error_rate",
    "cat": "error_rate",
    "ordinal": "error_rate",
}
assert set(ERROR_OF_KIND) == set(KINDS)


def _as_frame(X, name: str, columns=None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X, dtype=object if not isinstance(X, np.ndarray) else None)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional, got shape {arr.shape}")
    # a list holding numbers and labels goes through object dtype; each column
    # then gets its own dtype back, so that numbers are scored as numbers
    return pd.DataFrame(arr, columns=columns).infer_objects()


def _rows_as_in(frame: pd.DataFrame, true: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s rows in ``true``'s order when both carry the same row labels
    (e.g. one of them shuffled or reversed); otherwise rows match by position."""
    if frame.index.equals(true.index) or not frame.index.is_unique or not true.index.is_unique:
        return frame
    if len(frame.index) == len(true.index) and frame.index.isin(true.index).all():
        return frame.loc[true.index]
    return frame


def _mask_array(mask) -> np.ndarray:
    """The mask as a numpy bool array; pandas' nullable ``boolean`` too, when nothing is NA."""
    if isinstance(mask, pd.DataFrame):
        if all(pd.api.types.is_bool_dtype(d) for d in mask.dtypes) and not mask.isna().any().any():
            return mask.to_numpy(dtype=bool)
        return mask.to_numpy()
    return np.asarray(mask)


def _is_discrete_dtype(series: pd.Series) -> bool:
    dtype = series.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _check_inputs(X_true, X_imputed, mask, specs):
    true = _as_frame(X_true, "X_true")
    imputed = _as_frame(X_imputed, "X_imputed", columns=true.columns
                        if not isinstance(X_imputed, pd.DataFrame) else None)
    if imputed.shape != true.shape:
        raise ValueError(
            f"X_imputed has shape {imputed.shape} but X_true has shape {true.shape}"
        )
    if isinstance(X_imputed, pd.DataFrame) and isinstance(X_true, pd.DataFrame):
        if set(imputed.columns) != set(true.columns):
            missing = [c for c in true.columns if c not in imputed.columns]
            raise ValueError(
                f"X_imputed lacks the columns {missing} of X_true"
                if missing else "X_imputed has columns that X_true lacks"
            )
        imputed = imputed[list(true.columns)]
        imputed = _rows_as_in(imputed, true)
    if isinstance(mask, pd.DataFrame) and isinstance(X_true, pd.DataFrame):
        if set(mask.columns) == set(true.columns):
            mask = mask[list(true.columns)]
        mask = _rows_as_in(mask, true)
    mask_arr = _mask_array(mask)
    if mask_arr.shape != true.shape:
        raise ValueError(
            f"mask has shape {mask_arr.shape} but X_true has shape {true.shape}"
        )
    if mask_arr.dtype != bool:
        raise ValueError(
            "mask must be boolean, True where a cell was hidden and is scored; "
            f"got dtype {mask_arr.dtype} (note: HI-VAE's own files use 1 = observed)"
        )
    if specs is None:
        kinds = ["cat" if _is_discrete_dtype(true[c]) else "real" for c in true.columns]
    else:
        specs = list(specs)
        if len(specs) != true.shape[1]:
            raise ValueError(
                f"{len(specs)} specs for {true.shape[1]} columns of X_true"
            )
        if isinstance(X_true, pd.DataFrame):
            for spec, col in zip(specs, true.columns):
                if spec.name != col:
                    raise ValueError(
                        f"specs are in a different order than the columns: spec "
                        f"{spec.name!r} at the position of column {col!r}"
                    )
        kinds = [spec.kind for spec in specs]
    return true, imputed, mask_arr, kinds


def imputation_error(X_true, X_imputed, mask, specs: Optional[Sequence[ColumnSpec]] = None
                     ) -> pd.Series:
    """Imputation error of each column on the hidden cells.

    Parameters
    ----------
    X_true : DataFrame or array-like of shape (n_rows, n_columns)
        The complete table. Cells that are missing here (NaN) are not scored
        (adult's own missing values, say).
    X_imputed : DataFrame or array-like of the same shape
        The imputed table. DataFrame columns are matched by name, and rows
        by label when both DataFrames carry the same row labels (else by
        position); the same goes for a DataFrame ``mask``.
    mask : DataFrame or array-like of bool, same shape
        True where a cell was hidden from the imputer; those cells are scored.
    specs : list of ColumnSpec, optional
        One per column, in column order; only ``kind`` is used. Default:
        categorical, boolean, object and string columns of ``X_true`` are
        discrete (error rate), all others numeric (NRMSE).

    Returns
    -------
    pandas.Series
        Indexed by column label (positions for arrays), with ``attrs["metric"]``
        a Series saying which score each column got. NaN for a column without
        a scored cell.

    Notes
    -----
    For ``real``, ``pos`` and ``count`` columns the normalised RMSE

    .. math:: \\mathrm{NRMSE}_d = \\frac{\\sqrt{\\frac{1}{|M_d|}
              \\sum_{n \\in M_d} (x_{nd} - \\hat x_{nd})^2}}
              {\\max_n x_{nd} - \\min_n x_{nd}}

    where :math:`M_d` are the scored cells of column :math:`d` and the range
    is taken over all observed true values of the column in ``X_true``
    (hidden or not), as in HI-VAE's evaluation code. For ``binary``, ``cat``
    and ``ordinal`` columns the error rate
    :math:`\\frac{1}{|M_d|}\\sum_{n \\in M_d} [x_{nd} \\neq \\hat x_{nd}]`,
    comparing labels (so categorical labels and numeric codes of equal value
    agree). A numeric column whose true values are all equal has no range;
    it gets NaN and a warning.
    """
    true, imputed, mask_arr, kinds = _check_inputs(X_true, X_imputed, mask, specs)
    errors, metrics = {}, {}
    for j, (col, kind) in enumerate(zip(true.columns, kinds)):
        metric = ERROR_OF_KIND[kind]
        metrics[col] = metric
        t = true.iloc[:, j]
        observed = t.notna().to_numpy()
        cells = mask_arr[:, j] & observed
        if not cells.any():
            errors[col] = np.nan
            continue
        imp = imputed.iloc[:, j].to_numpy(dtype=object)[cells]
        if pd.isna(imp).any():
            raise ValueError(
                f"column {col!r}: X_imputed has {int(pd.isna(imp).sum())} missing "
                "values in cells that should have been imputed"
            )
        if metric == "nrmse":
            try:
                tv = t.to_numpy(dtype=float, na_value=np.nan)
                imp = imp.astype(float)
            except (TypeError, ValueError):
                raise ValueError(
                    f"column {col!r} is scored by NRMSE ({kind}) but holds "
                    "non-numeric values; pass specs or a categorical dtype"
                ) from None
            value_range = np.nanmax(tv) - np.nanmin(tv)
            if value_range == 0:
                warn(
                    f"column {col!r}: all true values are equal, so the "
                    "normalised RMSE is undefined; it is reported as NaN",
                    RuntimeWarning,
                )
                errors[col] = np.nan
                continue
            errors[col] = normalized_rmse(tv[cells], imp, value_range)
        else:
            errors[col] = error_rate(t.to_numpy(dtype=object)[cells], imp)
    out = pd.Series(errors, dtype=float)
    out.index = true.columns
    out.attrs["metric"] = pd.Series(metrics).to_dict()
    return out


def mean_imputation_error(X_true, X_imputed, mask,
                          specs: Optional[Sequence[ColumnSpec]] = None) -> float:
    """Mean of :func:`imputation_error` over the columns that have a score.

    Each column counts once, whatever its number of scored cells (the
    average that HI-VAE and the "boosting heterogeneous VAEs" paper report).

    Parameters
    ----------
    X_true, X_imputed, mask
        As in :func:`imputation_error`.
    specs : list of ColumnSpec or None, default=None
        As in :func:`imputation_error`.

    Returns
    -------
    float
        The mean of the columns' errors, NaN ones (no scored cell, no
        range) left out; lower is better.
    """
    errors = imputation_error(X_true, X_imputed, mask, specs)
    if errors.isna().all():
        raise ValueError("no column has a scored cell: the mask hides no observed cell")
    return float(errors.mean(skipna=True))
