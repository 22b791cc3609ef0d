"""Pictures of feature overlooking: per-column training curves and imputation errors.

A heterogeneous VAE minimises the *sum* of its columns' negative
log-likelihoods. When the columns' gradients conflict, or some are much
larger than others, the sum can improve while a few columns are hardly fitted
at all ("feature overlooking"). Two views show it:

* :func:`plot_column_history`: each column's training loss per epoch, on the training
  batches and (when the imputer was fitted with ``validation_fraction``) on
  the held-out rows, one panel per column, one line per imputer. An
  overlooked column stays flat under plain training while it decreases under
  a multi-objective method.
* :func:`plot_column_errors`: each column's imputation error on held-out
  masked cells, one bar per imputer (see :func:`column_imputation_errors`).
  Overlooked columns are those whose error is much worse under plain
  training.

matplotlib is imported only when a plot is drawn, so the package does not
depend on it.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from .metrics import imputation_error

__all__ = [
    "column_nll_history",
    "column_imputation_errors",
    "plot_column_history",
    "plot_column_errors",
]

_SPLITS = ("train", "valid")


def _spec_label(spec) -> str:
    if spec is None:
        return "vanilla"
    if isinstance(spec, str):
        return "vanilla" if spec.lower() == "none" else spec
    parts = [p for p in spec if p is not None and str(p).lower() != "none"]
    return "+".join(parts) if parts else "vanilla"


def _labelled(imputers, labels=None) -> dict:
    """``{label: imputer}`` from a mapping, a sequence or a single imputer."""
    if isinstance(imputers, Mapping):
        if labels is not None:
            raise ValueError("labels: give labels only with a sequence of imputers; a mapping already has them")
        out = dict(imputers)
    else:
        seq = list(imputers) if isinstance(imputers, (list, tuple)) else [imputers]
        if labels is None:
            labels = [_spec_label(getattr(imp, "moo", None)) for imp in seq]
        labels = list(labels)
        if len(labels) != len(seq):
            raise ValueError(f"labels: got {len(labels)} labels for {len(seq)} imputers")
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels must be distinct, got {labels}; pass labels= (or a dict) to name the imputers")
        out = dict(zip(labels, seq))
    if not out:
        raise ValueError("imputers: need at least one fitted imputer")
    for label, imp in out.items():
        check_is_fitted(imp, "net_")
    return out


def _column_names(imputer) -> list:
    return [str(c) for c in imputer.get_feature_names_out()]


def column_nll_history(imputer, split: str = "train") -> pd.DataFrame:
    """Per-column training loss per epoch of a fitted imputer.

    Each column's term of the objective per row: its negative
    log-likelihood as the training loss weighs it (cells the encoder saw
    count ``visible_weight`` times; beta-NLL weights with ``nll_beta > 0``),
    the plain NLL with ``visible_weight=1`` and ``nll_beta=0``.

    Parameters
    ----------
    imputer : HeterogeneousVAEImputer
        Fitted.
    split : {"train", "valid"}
        ``"train"``: mean over the epoch's training batches (history key
        ``train_column_nll``); ``"valid"``: on the validation rows after the
        epoch (``valid_column_nll``, recorded only when the imputer was
        fitted with ``validation_fraction > 0``).

    Returns
    -------
    DataFrame of shape (n_epochs, n_columns)
        Indexed by epoch (1-based), one column per feature.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    check_is_fitted(imputer, "net_")
    key = f"{split}_column_nll"
    history = imputer.history_
    if len(history) == 0 or key not in history[-1]:
        hint = " (fit with validation_fraction > 0 to record it)" if split == "valid" else ""
        raise ValueError(f"the imputer's history has no {key!r}{hint}")
    values = np.array(history[:, key], dtype=float)
    return pd.DataFrame(values, columns=_column_names(imputer),
                        index=pd.RangeIndex(1, len(values) + 1, name="epoch"))


def plot_column_history(imputers, *, labels: Optional[Sequence[str]] = None, splits="auto",
                        columns: Optional[Sequence] = None, n_cols: int = 4, panel_size=(2.8, 2.0),
                        title: Optional[str] = None):
    """Plot each column's training loss (weighted NLL) per epoch, one panel per column, one colour per imputer.

    Parameters
    ----------
    imputers : HeterogeneousVAEImputer, sequence of them, or dict ``{label: imputer}``
        Fitted on tables with the same columns (e.g. the same data with
        ``moo=None`` and ``moo=("imtlg", "pcgrad")``).
    labels : sequence of str, optional
        Legend labels for a sequence of imputers; default: ``"vanilla"`` or
        the ``moo`` spec joined by ``+``.
    splits : "auto", "train", "valid" or a sequence of them
        ``"auto"``: training curves (solid) and, for imputers that recorded
        them, validation curves (dashed).
    columns : sequence, optional
        The columns to draw (names as in ``get_feature_names_out()``);
        default all.
    n_cols : int
        Panels per row.
    panel_size : (float, float)
        Width and height of one panel in inches.
    title : str, optional
        Figure title, above the legend.

    Returns
    -------
    matplotlib.figure.Figure
        Panels share the epoch axis, not the NLL axis: each column's NLL is
        in its own units (densities of continuous columns, masses of
        discrete ones).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    imps = _labelled(imputers, labels)
    names = None
    for label, imp in imps.items():
        cols = _column_names(imp)
        if names is None:
            names = cols
        elif cols != names:
            raise ValueError(f"imputers: {label!r} was fitted on columns {cols}, the first one on {names}")
    if columns is None:
        columns = names
    else:
        columns = [str(c) for c in columns]
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise ValueError(f"columns: {unknown} are not columns of the imputers ({names})")
        if not columns:
            raise ValueError("columns is empty: name at least one column, or pass None for all")
    if splits == "auto":
        splits, explicit = _SPLITS, False
    else:
        splits, explicit = ((splits,) if isinstance(splits, str) else tuple(splits)), True
        bad = [s for s in splits if s not in _SPLITS]
        if bad:
            raise ValueError(f"splits: {bad} not in {_SPLITS}")
    if not isinstance(n_cols, int) or n_cols < 1:
        raise ValueError(f"n_cols must be a positive int, got {n_cols!r}")

    curves = {}  # (label, split) -> DataFrame
    for label, imp in imps.items():
        for split in splits:
            try:
                curves[label, split] = column_nll_history(imp, split)
            except ValueError:
                if explicit:
                    raise
    if not curves:
        raise ValueError("the imputers have no per-column history to plot (were they fitted with max_epochs=0?)")

    n_rows = -(-len(columns) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, sharex=True,
                             figsize=(panel_size[0] * n_cols, panel_size[1] * n_rows))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = {"train": "-", "valid": "--"}
    for i, column in enumerate(columns):
        ax = axes.flat[i]
        for j, label in enumerate(imps):
            for split in splits:
                if (label, split) in curves:
                    frame = curves[label, split]
                    ax.plot(frame.index, frame[column], styles[split], color=colours[j % len(colours)],
                            label=f"{label} ({split})", linewidth=1.2)
        ax.set_title(column, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    for ax in axes.flat[len(columns):]:
        ax.set_visible(False)
    for i in range(max(0, len(columns) - n_cols), len(columns)):
        # the lowest visible panel of each grid column carries the epoch axis
        axes.flat[i].xaxis.set_tick_params(labelbottom=True)
        axes.flat[i].set_xlabel("epoch", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("loss per row", fontsize=8)
    height = fig.get_figheight()
    title_space = 0.25 if title else 0.0  # inches
    if title:
        fig.suptitle(title, y=1 - 0.06 / height, va="top", fontsize=10)
    handles, legend_labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, legend_labels, loc="upper center", bbox_to_anchor=(0.5, 1 - title_space / height),
               ncol=min(4, len(handles)), fontsize=8, frameon=False)
    # tight_layout already keeps the suptitle clear; leave room for the legend row below it
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / height))
    return fig


def column_imputation_errors(imputers, X_true, X_masked, mask, specs=None, *,
                             labels: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Each column's imputation error on the hidden cells, for each imputer.

    Parameters
    ----------
    imputers : HeterogeneousVAEImputer, sequence of them, or dict ``{label: imputer}``
        Fitted (on other rows, for an honest held-out score); anything with
        ``transform`` works in a dict.
    X_true : DataFrame
        The complete rows.
    X_masked : DataFrame
        The same rows with the hidden cells missing; what the imputers fill.
    mask : DataFrame or array of bool
        True where a cell was hidden: the cells that are scored.
    specs : list of ColumnSpec, optional
        Column kinds for the scores (NRMSE for numeric, error rate for
        discrete columns); default: the first imputer's ``specs_``.
    labels : sequence of str, optional
        As in :func:`plot_column_history`.

    Returns
    -------
    DataFrame of shape (n_columns, n_imputers)
        :func:`heterovae.metrics.imputation_error` of each imputer, one
        column per imputer label.
    """
    if isinstance(imputers, Mapping):
        if labels is not None:
            raise ValueError("labels: give labels only with a sequence of imputers; a mapping already has them")
        imps = dict(imputers)
        if not imps:
            raise ValueError("imputers: need at least one fitted imputer")
    else:
        imps = _labelled(imputers, labels)
    if specs is None:
        specs = getattr(next(iter(imps.values())), "specs_", None)
    return pd.DataFrame({label: imputation_error(X_true, imp.transform(X_masked), mask, specs)
                         for label, imp in imps.items()})


def plot_column_errors(errors, *, sort: Optional[str] = "ratio", kinds=None, ax=None, title=None):
    """Bar chart of each column's imputation error, one bar per imputer.

    Parameters
    ----------
    errors : DataFrame or sequence of DataFrames
        From :func:`column_imputation_errors`: rows = columns, columns =
        imputers. A sequence (repeated runs, e.g. seeds) is drawn as the mean
        with the runs' standard deviation as error bars.
    sort : {"ratio", None}
        ``"ratio"``: order the columns by the first imputer's error divided
        by the last one's, largest first, so the columns that the first
        (e.g. vanilla) imputer overlooks come first. ``None``: data order.
    kinds : mapping or sequence, optional
        Column kinds (or ColumnSpec) shown under the names, since numeric
        columns are scored by normalised RMSE and discrete ones by error
        rate.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    runs = [errors] if isinstance(errors, pd.DataFrame) else list(errors)
    if not runs or not all(isinstance(r, pd.DataFrame) for r in runs):
        raise ValueError("errors must be a DataFrame or a non-empty sequence of DataFrames")
    first = runs[0]
    for r in runs[1:]:
        if list(r.index) != list(first.index) or list(r.columns) != list(first.columns):
            raise ValueError("errors: every run must have the same columns (rows) and imputers (columns)")
    stacked = np.stack([r.to_numpy(dtype=float) for r in runs])
    mean = pd.DataFrame(stacked.mean(0), index=first.index, columns=first.columns)
    spread = pd.DataFrame(stacked.std(0, ddof=1) if len(runs) > 1 else np.zeros_like(stacked[0]),
                          index=first.index, columns=first.columns)
    if sort == "ratio":
        ratio = mean.iloc[:, 0] / mean.iloc[:, -1]
        order = ratio.sort_values(ascending=False, na_position="last", kind="stable").index
        mean, spread = mean.loc[order], spread.loc[order]
    elif sort is not None:
        raise ValueError(f"sort must be 'ratio' or None, got {sort!r}")

    names = [str(c) for c in mean.index]
    if kinds is not None:
        if isinstance(kinds, Mapping):
            lookup = {str(k): v for k, v in kinds.items()}
        else:
            kinds = list(kinds)
            if len(kinds) != len(first.index):
                raise ValueError(f"kinds: got {len(kinds)} for {len(first.index)} columns")
            lookup = {str(c): k for c, k in zip(first.index, kinds)}
        lookup = {c: getattr(k, "kind", k) for c, k in lookup.items()}
        names = [f"{n}\n({lookup.get(n, '?')})" for n in names]

    own_figure = ax is None
    if own_figure:
        _, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(mean) * max(2, mean.shape[1])), 3.6))
    n = mean.shape[1]
    width = 0.8 / n
    x = np.arange(len(mean))
    for j, label in enumerate(mean.columns):
        ax.bar(x + (j - (n - 1) / 2) * width, mean[label], width,
               yerr=spread[label] if len(runs) > 1 else None, capsize=2, label=str(label))
    ax.set_xticks(x)
    ax.set_xticklabels(names, fontsize=8, rotation=0 if kinds is None and len(x) < 12 else 60,
                       ha="center" if kinds is None and len(x) < 12 else "right")
    ax.set_ylabel("imputation error\n(NRMSE or error rate)", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    if own_figure:  # a caller's figure keeps its own layout
        ax.figure.tight_layout()
    return ax
