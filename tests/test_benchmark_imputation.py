"""Tests of the imputation benchmark harness and its sklearn baselines."""

import sys
import types

import numpy as np
import pandas as pd
import pytest

from benchmarks import imputation as bench
from heterovae.baselines import BASELINES, EncodedImputer, MeanModeImputer
from heterovae.columns import ColumnSpec

SPECS = [ColumnSpec("r", "real"), ColumnSpec("p", "pos"), ColumnSpec("n", "count"),
         ColumnSpec("b", "binary", (1, 2)), ColumnSpec("c", "cat", ("x", "y", "z")),
         ColumnSpec("o", "ordinal", (-1, 0, 1, 2))]


def _frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "r": rng.normal(size=n) * 3 - 1,
        "p": rng.lognormal(size=n),
        "n": rng.poisson(3, size=n),
        "b": pd.Categorical(rng.choice([1, 2], size=n), categories=[1, 2]),
        "c": pd.Categorical(rng.choice(list("xyz"), size=n), categories=list("xyz")),
        "o": pd.Categorical(rng.choice([-1, 0, 1, 2], size=n), categories=[-1, 0, 1, 2],
                            ordered=True),
    })
    mask = rng.random(df.shape) < 0.25
    masked = df.copy()
    for j, col in enumerate(df.columns):
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            masked.loc[mask[:, j], col] = np.nan
        else:
            masked[col] = df[col].astype(float).mask(mask[:, j])
    return df, masked, mask


@pytest.mark.filterwarnings("ignore:.*Early stopping criterion")
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_fill_every_cell_with_a_valid_value(name, monkeypatch):
    from heterovae import baselines

    monkeypatch.setattr(baselines, "MISSFOREST_TREES", 10)  # as valid with fewer trees, and faster
    _, masked, mask = _frame()
    before = masked.copy()
    imputer = BASELINES[name](SPECS, 0).fit(masked.iloc[:40])
    out = imputer.transform(masked.iloc[40:])
    pd.testing.assert_frame_equal(masked, before)  # input not mutated
    assert not out.isna().any().any()
    observed = ~mask[40:]
    for j, spec in enumerate(SPECS):
        col = out[spec.name]
        orig = masked[spec.name].iloc[40:]
        if spec.categories:
            assert tuple(col.cat.categories) == spec.categories
            assert col.cat.ordered == (spec.kind == "ordinal")
            assert (col[observed[:, j]].astype(object).to_numpy()
                    == orig[observed[:, j]].astype(object).to_numpy()).all()
        else:
            assert np.allclose(col[observed[:, j]], orig[observed[:, j]].astype(float))
    assert (out["p"] >= 0).all() and (out["n"] >= 0).all()


def test_mean_mode_imputer_against_hand_values():
    Z = np.array([[1.0, 0.0], [np.nan, 2.0], [3.0, 2.0], [5.0, np.nan]])
    out = MeanModeImputer([False, True]).fit(Z).transform(Z)
    assert out[1, 0] == pytest.approx(3.0)
    assert out[3, 1] == 2.0


def test_codes_are_rounded_and_clipped_and_numbers_clipped_to_the_training_range():
    class Constant:
        def __init__(self, value):
            self.value = value

        def fit(self, Z):
            return self

        def transform(self, Z):
            return np.where(np.isnan(Z), self.value, Z)

    specs = [ColumnSpec("c", "cat", ("x", "y", "z")), ColumnSpec("n", "count")]
    X = pd.DataFrame({"c": pd.Categorical(["x", None, "y"], categories=list("xyz")),
                      "n": [1.0, np.nan, 9.0]})
    inside = EncodedImputer(specs, lambda d: Constant(7.6)).fit(X).transform(X)
    # a count keeps its estimate (as heterovae's mean in a float column)
    assert inside.loc[1, "c"] == "z" and inside.loc[1, "n"] == pytest.approx(7.6)
    # beyond the training range [1, 9]: clipped, as heterovae clips its own
    high = EncodedImputer(specs, lambda d: Constant(12.0)).fit(X).transform(X)
    assert high.loc[1, "n"] == 9.0
    low = EncodedImputer(specs, lambda d: Constant(-3.2)).fit(X).transform(X)
    assert low.loc[1, "c"] == "x" and low.loc[1, "n"] == 1.0
    with pytest.raises(ValueError, match="column 'c' has values outside"):
        EncodedImputer(specs, lambda d: Constant(0)).fit(X.assign(c=["w", None, "x"]))


def test_mixed_encoding_one_hot_encodes_only_unordered_categories():
    specs = [ColumnSpec("c", "cat", ("x", "y", "z")), ColumnSpec("b", "binary", ("n", "y")),
             ColumnSpec("o", "ordinal", ("lo", "mid", "hi")), ColumnSpec("r", "real")]
    X = pd.DataFrame({"c": pd.Categorical(["z", None, "x"], categories=list("xyz")),
                      "b": pd.Categorical(["y", "n", None], categories=["n", "y"]),
                      "o": pd.Categorical(["hi", None, "lo"], categories=["lo", "mid", "hi"], ordered=True),
                      "r": [0.5, 1.5, np.nan]})
    enc = EncodedImputer(specs, MeanModeImputer, encoding="mixed")
    Z = enc._encode(X)
    assert Z.shape == (3, 3 + 1 + 1 + 1)
    np.testing.assert_array_equal(Z[0], [0, 0, 1, 1, 2, 0.5])
    assert np.isnan(Z[1, :3]).all() and np.isnan(Z[2, 3])
    assert enc._discrete_mask().tolist() == [True] * 5 + [False]
    out = enc.fit(X).transform(X)
    assert out.notna().all().all() and out.loc[0, "c"] == "z"


def test_the_iterative_baseline_uses_the_mixed_encoding():
    from heterovae.baselines import BASELINES

    specs = [ColumnSpec("c", "cat", ("x", "y", "z")), ColumnSpec("r", "real")]
    assert BASELINES["iterative"](specs, 0).encoding == "mixed"
    assert BASELINES["iterative-codes"](specs, 0).encoding == "codes"


def test_one_hot_takes_the_largest_score():
    class Fixed:
        def fit(self, Z):
            return self

        def transform(self, Z):
            out = np.nan_to_num(Z, nan=0.0)
            out[1, :3] = [0.2, 0.7, 0.1]
            return out

    specs = [ColumnSpec("c", "cat", ("x", "y", "z")), ColumnSpec("r", "real")]
    X = pd.DataFrame({"c": pd.Categorical(["z", None], categories=list("xyz")),
                      "r": [1.0, 2.0]})
    enc = EncodedImputer(specs, lambda d: Fixed(), encoding="onehot")
    assert enc.fit(X).transform(X)["c"].tolist() == ["z", "y"]


def _toy_folder(tmp_path, with_mask):
    df, _, _ = _frame(n=50, seed=1)
    folder = tmp_path / ("toy" if with_mask else "toy2")
    folder.mkdir()
    raw = df.copy()
    for col in ("b", "c", "o"):
        raw[col] = df[col].cat.codes + (1 if col == "b" else 0)
    raw.to_csv(folder / "data.csv", header=False, index=False)
    (folder / "data_types.csv").write_text(
        "type,dim,nclass\nreal,1,\npos,1,\ncount,1,\ncat,2,2\ncat,3,3\nordinal,4,4\n")
    if with_mask:
        rng = np.random.default_rng(0)
        cells = {(int(r), int(c)) for r, c in zip(rng.integers(1, 51, 80),
                                                  rng.integers(1, 7, 80))}
        (folder / "Missing20_1.csv").write_text(
            "\n".join(f"{r},{c}" for r, c in sorted(cells)))
    return folder


def test_harness_end_to_end(tmp_path, capsys):
    _toy_folder(tmp_path, True)
    _toy_folder(tmp_path, False)
    out = tmp_path / "report.md"
    argv = ["--datasets", "toy,toy2", "--imputers", "mean,knn", "--root", str(tmp_path),
            "--max-rows", "40", "--per-column", "--out", str(out)]
    report = bench.main(argv)
    assert out.read_text() == report
    assert "python benchmarks/imputation.py --datasets toy,toy2" in report
    assert "| toy | mean | 32 | 8 |" in report
    assert "toy: Missing20_1.csv" in report
    assert "toy2: make_missing(0.2, random_state=0)" in report
    assert "### toy2" in report
    # same seed, same numbers (all but the timing column)
    def numbers(text):
        return [line.rsplit("|", 2)[0] for line in text.splitlines() if line.startswith("| toy")]

    assert numbers(bench.main(argv)) == numbers(report)


def test_split_rows_is_seeded_and_disjoint():
    train, test = bench.split_rows(103, seed=3, max_rows=50)
    assert len(train) == 40 and len(test) == 10
    assert not set(train) & set(test)
    again = bench.split_rows(103, seed=3, max_rows=50)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])


def test_heterovae_is_plugged_in_lazily(tmp_path, monkeypatch):
    seen = {}

    class FakeVAEImputer:
        def __init__(self, likelihoods=None, random_state=None, epochs=1):
            seen.update(likelihoods=likelihoods, random_state=random_state, epochs=epochs)

        def fit(self, X):
            self.fill_ = {c: X[c].mode().iloc[0] for c in X.columns}
            return self

        def transform(self, X):
            return X.fillna(self.fill_)

    module = types.ModuleType("heterovae.imputer")
    module.HeterogeneousVAEImputer = FakeVAEImputer
    monkeypatch.setitem(sys.modules, "heterovae.imputer", module)
    _toy_folder(tmp_path, True)
    report = bench.main(["--datasets", "toy", "--imputers", "heterovae", "--root",
                         str(tmp_path), "--vae-params", '{"epochs": 3}', "--seed", "5"])
    assert "| toy | heterovae |" in report
    kinds = {f"c{j}": s.kind for j, s in enumerate(SPECS)}
    assert seen == {"likelihoods": kinds, "random_state": 5, "epochs": 3}


def test_missing_heterovae_is_skipped_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "heterovae.imputer", None)  # import fails
    _toy_folder(tmp_path, True)
    report = bench.main(["--datasets", "toy", "--imputers", "mean,heterovae",
                         "--root", str(tmp_path)])
    assert "skipped heterovae" in report
    assert "| toy | mean |" in report
