"""heterovae.plotting: per-column histories and imputation-error bars."""

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from heterovae import HeterogeneousVAEImputer  # noqa: E402
from heterovae.metrics import imputation_error  # noqa: E402
from heterovae.plotting import (  # noqa: E402
    column_imputation_errors,
    column_nll_history,
    plot_column_errors,
    plot_column_history,
)

FAST = dict(max_epochs=3, hidden_dim=8, batch_size=32, random_state=0)


def _table(n=120, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    full = pd.DataFrame({
        "a": z + 0.1 * rng.normal(size=n),
        "b": np.exp(0.3 * z + 0.1 * rng.normal(size=n)),
        "c": pd.Categorical(np.where(z > 0, "hi", "lo")),
    })
    mask = pd.DataFrame(rng.random(full.shape) < 0.25, columns=full.columns)
    return full, full.mask(mask), mask


@pytest.fixture(scope="module")
def pair():
    full, masked, mask = _table()
    vanilla = HeterogeneousVAEImputer(**FAST).fit(masked)
    moo = HeterogeneousVAEImputer(moo=("imtlg", "pcgrad"), validation_fraction=0.25, **FAST).fit(masked)
    return vanilla, moo, full, masked, mask


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_column_nll_history_is_the_recorded_history(pair):
    vanilla, moo, *_ = pair
    frame = column_nll_history(vanilla)
    assert list(frame.columns) == ["a", "b", "c"]
    assert list(frame.index) == [1, 2, 3]
    np.testing.assert_array_equal(frame.to_numpy(), np.array(vanilla.history_[:, "train_column_nll"]))
    np.testing.assert_array_equal(column_nll_history(moo, "valid").to_numpy(),
                                  np.array(moo.history_[:, "valid_column_nll"]))


def test_column_nll_history_says_how_to_get_validation(pair):
    vanilla, *_ = pair
    with pytest.raises(ValueError, match="validation_fraction"):
        column_nll_history(vanilla, "valid")
    with pytest.raises(ValueError, match="split must be one of"):
        column_nll_history(vanilla, "test")


def test_history_plot_has_a_panel_per_column_and_the_recorded_curves(pair):
    vanilla, moo, *_ = pair
    fig = plot_column_history([vanilla, moo], n_cols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["a", "b", "c"]
    lines = {line.get_label(): line for line in visible[1].get_lines()}
    # vanilla has no validation split, so it has no dashed curve
    assert set(lines) == {"vanilla (train)", "imtlg+pcgrad (train)", "imtlg+pcgrad (valid)"}
    np.testing.assert_allclose(lines["vanilla (train)"].get_ydata(),
                               np.array(vanilla.history_[:, "train_column_nll"])[:, 1])
    np.testing.assert_allclose(lines["imtlg+pcgrad (valid)"].get_ydata(),
                               np.array(moo.history_[:, "valid_column_nll"])[:, 1])
    assert lines["imtlg+pcgrad (valid)"].get_linestyle() == "--"


def test_history_plot_selects_columns_and_rejects_bad_arguments(pair):
    vanilla, moo, full, masked, _ = pair
    fig = plot_column_history({"plain": vanilla}, columns=["c"])
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["c"]
    with pytest.raises(ValueError, match=r"\['zz'\] are not columns"):
        plot_column_history(vanilla, columns=["zz"])
    open_before = plt.get_fignums()
    with pytest.raises(ValueError, match="columns is empty"):
        plot_column_history(vanilla, columns=[])
    assert plt.get_fignums() == open_before  # no figure left behind the error
    with pytest.raises(ValueError, match="valid_column_nll"):
        plot_column_history(vanilla, splits="valid")
    with pytest.raises(ValueError, match="labels must be distinct"):
        plot_column_history([vanilla, vanilla])
    other = HeterogeneousVAEImputer(**FAST).fit(masked.rename(columns={"a": "x"}))
    with pytest.raises(ValueError, match="fitted on columns"):
        plot_column_history([vanilla, other], labels=["one", "two"])


def test_history_plot_refuses_unfitted_imputers():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        plot_column_history(HeterogeneousVAEImputer())


def test_column_errors_are_the_metric_of_each_imputers_output(pair):
    vanilla, moo, full, masked, mask = pair
    errors = column_imputation_errors([vanilla, moo], full, masked, mask)
    assert list(errors.columns) == ["vanilla", "imtlg+pcgrad"]
    for label, imp in (("vanilla", vanilla), ("imtlg+pcgrad", moo)):
        expected = imputation_error(full, imp.transform(masked), mask, imp.specs_)
        pd.testing.assert_series_equal(errors[label], expected, check_names=False)


def test_error_bars_are_means_sorted_by_ratio():
    runs = [pd.DataFrame({"vanilla": [0.1, 0.4, 0.2], "moo": [0.1, 0.1, 0.4]}, index=["a", "b", "c"]),
            pd.DataFrame({"vanilla": [0.3, 0.6, 0.2], "moo": [0.1, 0.3, 0.2]}, index=["a", "b", "c"])]
    ax = plot_column_errors(runs, kinds={"a": "real", "b": "pos", "c": "cat"})
    # mean ratios vanilla/moo: a 2.0, b 2.5, c 0.667 -> order b, a, c
    assert [t.get_text() for t in ax.get_xticklabels()] == ["b\n(pos)", "a\n(real)", "c\n(cat)"]
    heights = [[p.get_height() for p in c] for c in ax.containers if hasattr(c, "patches")]
    np.testing.assert_allclose(heights[0], [0.5, 0.2, 0.2])
    np.testing.assert_allclose(heights[1], [0.2, 0.1, 0.3])


def test_error_bars_keep_data_order_and_check_runs():
    errors = pd.DataFrame({"x": [0.3, 0.1], "y": [0.1, 0.3]}, index=["p", "q"])
    ax = plot_column_errors(errors, sort=None)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["p", "q"]
    with pytest.raises(ValueError, match="same columns"):
        plot_column_errors([errors, errors.iloc[::-1]])
    with pytest.raises(ValueError, match="sort must be"):
        plot_column_errors(errors, sort="name")
    with pytest.raises(ValueError, match="kinds: got 1"):
        plot_column_errors(errors, kinds=["real"])


def test_matplotlib_is_imported_only_inside_the_plot_functions():
    import heterovae.plotting as module

    tree = ast.parse(Path(module.__file__).read_text())
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top_level for a in n.names] + [n.module or "" for n in top_level
                                                           if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n.startswith("matplotlib")]


def test_history_plot_epoch_ticks_are_whole_numbers(pair):
    vanilla = pair[0]
    fig = plot_column_history(vanilla)
    for ax in fig.axes:
        if ax.get_visible():
            ticks = ax.get_xticks()
            assert np.allclose(ticks, np.round(ticks))
    plt.close(fig)


def test_error_bars_on_a_callers_axes_leave_the_figure_layout_alone():
    import warnings

    errors = pd.DataFrame({"x": [0.3, 0.1], "y": [0.1, 0.3]}, index=["p", "q"])
    fig, (left, _) = plt.subplots(1, 2, layout="constrained")
    engine = type(fig.get_layout_engine())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plot_column_errors(errors, ax=left) is left
    assert type(fig.get_layout_engine()) is engine
