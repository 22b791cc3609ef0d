"""Reader for the HI-VAE dataset folder format.

A dataset folder holds ``data.csv`` (the complete table, categorical values as
integer codes), ``data_types.csv`` (one ``type,dim,nclass`` row per column)
and optionally ``Missing20_K.csv`` files, each listing the 1-based
``row,column`` pairs of one fixed MCAR mask. This is the format of the
HI-VAE line of work (Nazabal et al., 2020) and of the benchmark folders in
``shared/datasets``.
"""

from __future__ import annotations

import csv
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from ..columns import DISCRETE_KINDS, ColumnSpec

__all__ = [
    "HIVAEDataset",
    "dataset_root",
    "list_masks",
    "load_hivae",
    "read_data_types",
]

#: Environment variable that overrides the default datasets folder.
ENV_VAR = "HETEROVAE_DATASETS"

#: The ``type`` values of ``data_types.csv``; ``cat`` with two classes becomes
#: the ``binary`` kind of :mod:`heterovae.columns`.
FILE_TYPES = ("real", "pos", "count", "cat", "ordinal")

#: Column names of the headerless benchmark files, in file order. Only used
#: when the folder name matches and the column count agrees.
KNOWN_COLUMNS = {
    "adult": (
        "age", "workclass", "fnlwgt", "education_num", "marital_status",
        "occupation", "relationship", "race", "sex", "capital_gain",
        "capital_loss", "hours_per_week",
    ),
    "credit": (
        "limit_bal", "sex", "education", "marriage", "age",
        "pay_0", "pay_2", "pay_3", "pay_4", "pay_5", "pay_6",
        "bill_amt1", "bill_amt2", "bill_amt3", "bill_amt4", "bill_amt5",
        "bill_amt6", "pay_amt1", "pay_amt2", "pay_amt3", "pay_amt4",
        "pay_amt5", "pay_amt6", "default",
    ),
    "wine": (
        "fixed_acidity", "volatile_acidity", "citric_acid", "residual_sugar",
        "chlorides", "free_sulfur_dioxide", "total_sulfur_dioxide", "density",
        "ph", "sulphates", "alcohol", "quality", "type",
    ),
}

_MASK_FILE = re.compile(r"^Missing(\d+)_(\d+)\.csv$")


@dataclass
class HIVAEDataset:
    """A dataset read by :func:`load_hivae`.

    Attributes
    ----------
    name : str
        Folder name.
    data : pandas.DataFrame
        The table with pandas dtypes that say what each column is:
        ``float64`` for real/pos, ``int64`` for count (nullable ``Int64``
        if the file has missing counts), ``category`` for binary/cat and
        ordered ``category`` for ordinal columns. Cells that are missing in
        ``data.csv`` itself (``NaN``; adult has some) stay missing.
    mask : pandas.DataFrame of bool or None
        True where the chosen ``Missing20_K.csv`` hides a cell; None when no
        mask was requested.
    specs : list of ColumnSpec
        One per column, with the categories as they appear in ``data``.
    path : pathlib.Path
        The folder that was read.
    """

    name: str
    data: pd.DataFrame
    mask: Optional[pd.DataFrame]
    specs: List[ColumnSpec]
    path: Path = field(repr=False, default=None)

    def masked(self) -> pd.DataFrame:
        """A copy of :attr:`data` with the masked cells set missing.

        Numeric columns with a masked cell become ``float64`` (``NaN``
        marks a missing cell), the others keep their dtype, as categorical
        columns do.
        """
        if self.mask is None:
            raise ValueError(
                f"dataset {self.name!r} was loaded without a mask (mask=None)"
            )
        out = self.data.copy()
        for col in out.columns:
            hide = self.mask[col].to_numpy()
            if not hide.any():
                continue
            if isinstance(out[col].dtype, pd.CategoricalDtype):
                out.loc[hide, col] = np.nan
            else:
                values = out[col].to_numpy(dtype=float, na_value=np.nan, copy=True)
                values[hide] = np.nan
                out[col] = values
        return out


def dataset_root(root=None) -> Path:
    """The folder that holds the dataset folders.

    ``root`` if given, else the environment variable ``HETEROVAE_DATASETS``,
    else ``<repository root>/../shared/datasets`` where the repository root is
    the parent of the ``heterovae`` package folder.

    Parameters
    ----------
    root : str, path-like or None, default=None
        An explicit datasets folder; ``None`` looks it up as above.

    Returns
    -------
    pathlib.Path
        The folder (not checked to exist).
    """
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "datasets"


def _resolve_folder(name_or_path, root) -> Path:
    candidate = Path(name_or_path)
    # a bare name is looked up in the datasets folder first, so that a folder of
    # that name in the working directory does not replace the one root= names
    bare = isinstance(name_or_path, str) and not candidate.is_absolute() and len(candidate.parts) == 1
    folder = dataset_root(root) / str(name_or_path)
    if bare and (folder / "data.csv").exists():
        return folder
    if candidate.is_dir() and (candidate / "data.csv").exists():
        return candidate
    if not (folder / "data.csv").exists():
        base = dataset_root(root)
        known = (
            sorted(p.name for p in base.iterdir() if (p / "data.csv").exists())
            if base.is_dir()
            else []
        )
        raise FileNotFoundError(
            f"no HI-VAE dataset {str(name_or_path)!r}: {folder / 'data.csv'} "
            f"does not exist (datasets folder {base}; available: "
            f"{', '.join(known) or 'none'}; set root= or ${ENV_VAR})"
        )
    return folder


def read_data_types(path, names: Optional[Sequence] = None) -> List[ColumnSpec]:
    """Read a HI-VAE ``data_types.csv`` file.

    Parameters
    ----------
    path : str or path-like
        The file. ``\\n``, ``\\r`` and ``\\r\\n`` line endings are accepted,
        and blank lines are skipped.
    names : sequence, optional
        Column names; default: the positions ``0..D-1``.

    Returns
    -------
    list of ColumnSpec
        ``cat`` with ``nclass == 2`` becomes kind ``binary``. The file only
        says how many classes a discrete column has, not their codes, so its
        categories are the placeholder codes ``0..nclass-1``;
        :func:`load_hivae` replaces them by the codes found in the data.
    """
    path = Path(path)
    # Text mode with universal newlines maps "\r" and "\r\n" to "\n".
    with open(path, newline=None, encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if any(cell.strip() for cell in r)]
    if not rows:
        raise ValueError(f"{path}: empty data types file")
    header = [c.strip().lower() for c in rows[0]]
    if header[:3] != ["type", "dim", "nclass"]:
        raise ValueError(
            f"{path}: expected the header 'type,dim,nclass', got {','.join(rows[0])!r}"
        )
    rows = rows[1:]
    if names is not None and len(names) != len(rows):
        raise ValueError(
            f"{path} describes {len(rows)} columns but the data has {len(names)}"
        )
    specs = []
    for i, row in enumerate(rows):
        line = i + 2
        name = i if names is None else names[i]
        row = [c.strip() for c in row] + [""] * (3 - len(row))
        kind, dim, nclass = row[:3]
        if kind not in FILE_TYPES:
            raise ValueError(
                f"{path}, line {line} (column {name!r}): unknown type {kind!r}; "
                f"expected one of {', '.join(FILE_TYPES)}"
            )
        try:
            dim = int(dim)
        except ValueError:
            raise ValueError(
                f"{path}, line {line} (column {name!r}): dim {dim!r} is not an integer"
            ) from None
        if kind in ("cat", "ordinal"):
            try:
                n_classes = float(nclass)
                if n_classes != int(n_classes):
                    raise ValueError
                n_classes = int(n_classes)
            except (ValueError, OverflowError):
                raise ValueError(
                    f"{path}, line {line} (column {name!r}): a {kind} column needs "
                    f"an integer nclass, got {nclass!r}"
                ) from None
            if n_classes < 2:
                raise ValueError(
                    f"{path}, line {line} (column {name!r}): nclass must be >= 2, "
                    f"got {n_classes}"
                )
            if dim != n_classes:
                raise ValueError(
                    f"{path}, line {line} (column {name!r}): a {kind} column has "
                    f"dim == nclass, got dim={dim}, nclass={n_classes}"
                )
            spec_kind = "binary" if kind == "cat" and n_classes == 2 else kind
            specs.append(ColumnSpec(name, spec_kind, tuple(range(n_classes))))
        else:
            if dim != 1:
                raise ValueError(
                    f"{path}, line {line} (column {name!r}): a {kind} column has "
                    f"dim 1, got {dim}"
                )
            specs.append(ColumnSpec(name, kind))
    return specs


def list_masks(name_or_path, root=None) -> List[int]:
    """The mask numbers ``K`` of the ``Missing<p>_K.csv`` files of a dataset.

    Parameters
    ----------
    name_or_path : str or path-like
        A folder name under the datasets root or the path of a dataset
        folder, as in :func:`load_hivae`.
    root : str, path-like or None, default=None
        The datasets root (see :func:`dataset_root`).

    Returns
    -------
    list of int
        The distinct mask numbers, sorted; empty when the folder has no
        mask file.
    """
    folder = _resolve_folder(name_or_path, root)
    found = []
    for p in folder.iterdir():
        m = _MASK_FILE.match(p.name)
        if m:
            found.append(int(m.group(2)))
    return sorted(set(found))


def _mask_file(folder: Path, k) -> Path:
    hits = []
    for p in folder.iterdir():
        m = _MASK_FILE.match(p.name)
        if m and int(m.group(2)) == int(k):
            hits.append(p)
    if not hits:
        available = list_masks(folder)
        raise FileNotFoundError(
            f"dataset {folder.name!r} has no mask {k} (no Missing*_{k}.csv in "
            f"{folder}); "
            + (
                f"available masks: {', '.join(map(str, available))}"
                if available
                else "it has no mask files at all: use mask=None and, for "
                "example, heterovae.datasets.make_missing"
            )
        )
    if len(hits) > 1:
        raise ValueError(
            f"dataset {folder.name!r}: several files for mask {k}: "
            f"{', '.join(p.name for p in sorted(hits))}"
        )
    return hits[0]


def _read_mask(path: Path, n_rows: int, columns) -> pd.DataFrame:
    n_cols = len(columns)
    try:
        raw = pd.read_csv(path, header=None, dtype=str, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        # no 'row,column' pair: nothing is hidden
        return pd.DataFrame(np.zeros((n_rows, n_cols), dtype=bool), columns=columns)
    if raw.shape[1] != 2:
        raise ValueError(
            f"{path}: expected 'row,column' pairs, got {raw.shape[1]} fields per line"
        )
    try:
        pairs = raw.apply(pd.to_numeric, errors="raise").to_numpy()
    except (ValueError, TypeError):
        raise ValueError(f"{path}: non-numeric row/column index") from None
    if np.any(pairs != np.round(pairs)):
        raise ValueError(f"{path}: row/column indices must be integers")
    pairs = pairs.astype(np.int64)
    rows, cols = pairs[:, 0], pairs[:, 1]
    bad = (rows < 1) | (rows > n_rows) | (cols < 1) | (cols > n_cols)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{path}, line {i + 1}: cell ({rows[i]}, {cols[i]}) is outside the "
            f"1-based range rows 1..{n_rows}, columns 1..{n_cols}"
        )
    mask = np.zeros((n_rows, n_cols), dtype=bool)
    mask[rows - 1, cols - 1] = True  # the files are 1-based
    return pd.DataFrame(mask, columns=columns)


def _has_header(path: Path) -> bool:
    """A header row has no numeric field (an empty index name is allowed)."""
    with open(path, newline=None, encoding="utf-8-sig") as fh:
        first = [c.strip() for c in next(csv.reader(fh), [])]
    fields = [c for c in first if c != ""]
    if not fields:
        return False
    for cell in fields:
        try:
            float(cell)
        except ValueError:
            continue
        return False
    return True


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if not _has_header(path):
            return pd.read_csv(path, header=None, encoding="utf-8-sig")
        df = pd.read_csv(path, header=0, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty") from None
    first = str(df.columns[0])
    if first == "" or first.startswith("Unnamed"):
        # bank and diamonds carry a row index that is not a feature.
        df = df.drop(columns=df.columns[0])
    return df.reset_index(drop=True)


def _code_categories(values: np.ndarray, n_classes: int, column: str) -> tuple:
    """The ``n_classes`` consecutive integer codes a discrete column uses.

    ``column`` names the file and column in errors.

    The files store categories as integer codes, 0-based in some files,
    1-based in others, and starting below 0 in a few (credit's payment
    status, -2..8). The codes start at the smallest code when that is 0 or
    negative, at 1 when all codes fit into ``1..n_classes``, else at the
    smallest code.
    """
    observed = values[~np.isnan(values)]
    if observed.size == 0:
        return tuple(range(n_classes))
    if np.any(observed != np.round(observed)):
        raise ValueError(
            f"{column}: categorical codes must be integers, got "
            f"{observed[observed != np.round(observed)][0]!r}"
        )
    lo, hi = int(observed.min()), int(observed.max())
    if lo <= 0:
        start = lo
    elif hi <= n_classes:
        start = 1
    else:
        start = lo
    if hi >= start + n_classes:
        codes = np.unique(observed).astype(int)
        raise ValueError(
            f"{column}: data_types.csv declares {n_classes} classes but "
            f"the codes {codes.tolist()} span {hi - lo + 1} values"
        )
    return tuple(range(start, start + n_classes))


def _typed_column(series: pd.Series, spec: ColumnSpec, path: Path):
    """Cast one raw column to the dtype of its kind; return (series, spec)."""
    name = spec.name
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(values) & series.notna().to_numpy()
    if bad.any():
        raise ValueError(
            f"{path}: column {name!r} has a non-numeric value "
            f"{series[bad].iloc[0]!r}"
        )
    if np.isinf(values).any():
        raise ValueError(f"{path}: column {name!r} has an infinite value")
    observed = values[~np.isnan(values)]
    if spec.kind in DISCRETE_KINDS:
        categories = _code_categories(values, spec.n_classes, f"{path}: column {name!r}")
        codes = np.full(values.shape, -1, dtype=np.int64)
        ok = ~np.isnan(values)
        codes[ok] = values[ok].astype(np.int64) - categories[0]
        out = pd.Categorical.from_codes(
            codes, categories=list(categories), ordered=spec.kind == "ordinal"
        )
        return (
            pd.Series(out, index=series.index, name=name),
            ColumnSpec(name, spec.kind, categories),
        )
    if spec.kind == "count":
        if np.any(observed != np.round(observed)) or np.any(observed < 0):
            raise ValueError(
                f"{path}: column {name!r} is declared count but has values that "
                "are not non-negative integers"
            )
        dtype = "Int64" if np.isnan(values).any() else "int64"
        out = pd.Series(values, index=series.index, name=name)
        return out.round().astype(dtype), spec
    if spec.kind == "pos" and np.any(observed < 0):
        raise ValueError(
            f"{path}: column {name!r} is declared pos but has negative values "
            f"(min {observed.min()!r})"
        )
    return pd.Series(values, index=series.index, name=name), spec


def load_hivae(name_or_path: Union[str, os.PathLike], mask: Optional[int] = 1,
               root=None) -> HIVAEDataset:
    """Read a dataset in the HI-VAE folder format.

    Parameters
    ----------
    name_or_path : str or path-like
        A folder name under the datasets root (``"adult"``, ``"credit"``,
        ``"wine"``, ``"bank"``, ``"diamonds"``) or the path of a folder that
        holds ``data.csv`` and ``data_types.csv``. A bare name is looked up
        under the root first, then in the working directory.
    mask : int or None, default=1
        Which ``Missing20_K.csv`` mask to read (``K``); None reads none.
        Asking for a mask that the folder does not have is an error.
    root : str or path-like, optional
        The datasets root; default ``$HETEROVAE_DATASETS`` or
        ``<repository root>/../shared/datasets``.

    Returns
    -------
    HIVAEDataset
        ``data`` with dtypes per kind, ``mask`` (True = hidden cell),
        ``specs`` and ``name``.

    Notes
    -----
    ``data.csv`` has no header (adult, credit, wine; columns get known names
    for these three, else ``c0..c{D-1}``) or a header plus a leading unnamed
    row-index column that is dropped (bank, diamonds). Discrete columns become
    pandas categoricals whose categories are the integer codes of the file,
    ``nclass`` consecutive codes (see ``_code_categories``); a ``cat`` column
    with ``nclass=2`` is a ``binary`` column. Mask files list 1-based
    ``row,column`` pairs.
    """
    if mask is not None and (isinstance(mask, bool) or not isinstance(mask, numbers.Integral)):
        raise TypeError(f"mask must be a mask number K (an int) or None, got {mask!r}")
    folder = _resolve_folder(name_or_path, root)
    name = folder.name
    raw = _read_table(folder / "data.csv")
    if isinstance(raw.columns, pd.RangeIndex) or all(
        isinstance(c, (int, np.integer)) for c in raw.columns
    ):
        known = KNOWN_COLUMNS.get(name)
        columns = (
            list(known) if known and len(known) == raw.shape[1]
            else [f"c{i}" for i in range(raw.shape[1])]
        )
        raw.columns = columns
    else:
        columns = [str(c) for c in raw.columns]
        raw.columns = columns
    specs = read_data_types(folder / "data_types.csv", names=columns)
    if len(specs) != raw.shape[1]:
        raise ValueError(
            f"{folder}: data.csv has {raw.shape[1]} columns but data_types.csv "
            f"describes {len(specs)}"
        )
    typed, final_specs = {}, []
    for col, spec in zip(columns, specs):
        spec = ColumnSpec(col, spec.kind, spec.categories)
        typed[col], spec = _typed_column(raw[col], spec, folder / "data.csv")
        final_specs.append(spec)
    data = pd.DataFrame(typed, index=raw.index)
    mask_df = None
    if mask is not None:
        mask_df = _read_mask(_mask_file(folder, mask), len(data), columns)
    return HIVAEDataset(name=name, data=data, mask=mask_df, specs=final_specs,
                        path=folder)
