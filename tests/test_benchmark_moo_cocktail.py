"""benchmarks/moo_cocktail.py: fitting loop, resume, and the comparison table."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmarks import moo_cocktail as bench
from heterovae.moo import cocktail

from .test_benchmark_imputation import _toy_folder

LABELS = [bench.spec_label(s) for s in cocktail()]


def test_spec_labels_are_distinct_and_readable():
    assert LABELS[0] == "vanilla"
    assert "imtlg+pcgrad" in LABELS and "pcgrad" in LABELS and "mgda-ub" in LABELS
    assert len(set(LABELS)) == 12


def test_end_to_end_with_real_fits_and_resume(tmp_path, monkeypatch):
    _toy_folder(tmp_path, True)
    results = tmp_path / "r.jsonl"
    argv = ["--datasets", "toy", "--seeds", "1", "--root", str(tmp_path), "--results", str(results),
            "--vae-params", '{"max_epochs": 1, "hidden_dim": 4}', "--out", str(tmp_path / "r.md")]
    report = bench.main(argv)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 12
    assert {r["moo"] for r in rows} == set(LABELS)
    assert {(r["n_train"], r["n_test"]) for r in rows} == {(40, 10)}
    assert "python benchmarks/moo_cocktail.py --datasets toy" in report
    assert "max_epochs=1" in report and "hidden_dim=4" in report
    assert "| toy | 40/10 | 1 |" in report

    def no_fit(*args, **kwargs):
        raise AssertionError("a finished fit was run again")

    monkeypatch.setattr(bench, "run_one", no_fit)
    assert bench.main(argv).split("## Plain")[1] == report.split("## Plain")[1]


def test_other_settings_are_neither_resumed_nor_reported(tmp_path, monkeypatch):
    _toy_folder(tmp_path, True)
    calls = []

    def fake_run_one(factory, ds, train, test, seed):
        calls.append(seed)
        return pd.Series(0.5, index=ds.data.columns), 0.0

    monkeypatch.setattr(bench, "run_one", fake_run_one)
    base = ["--datasets", "toy", "--seeds", "1", "--root", str(tmp_path), "--results", str(tmp_path / "r.jsonl")]
    bench.main(base)
    bench.main(base + ["--vae-params", '{"max_epochs": 3}'])
    assert len(calls) == 24
    with pytest.raises(SystemExit, match="moo"):
        bench.main(base + ["--vae-params", '{"moo": "pcgrad"}'])
    with pytest.raises(SystemExit, match="epochs"):
        bench.main(base + ["--vae-params", '{"epochs": 3}'])


def test_fits_of_other_code_are_not_resumed_and_the_report_says_whose_fits_it_shows(tmp_path, monkeypatch):
    _toy_folder(tmp_path, True)
    monkeypatch.setattr(bench, "run_one", lambda factory, ds, train, test, seed: (
        pd.Series(0.5, index=ds.data.columns), 0.0))
    results = tmp_path / "r.jsonl"
    argv = ["--datasets", "toy", "--seeds", "1", "--root", str(tmp_path), "--results", str(results)]
    monkeypatch.setattr(bench, "code_version", lambda: "aaa")
    assert "Fits and report by the same code (aaa)." in bench.main(argv)
    assert {json.loads(line)["code"] for line in results.read_text().splitlines()} == {"aaa"}
    monkeypatch.setattr(bench, "code_version", lambda: "bbb")
    with pytest.raises(SystemExit, match=r"made by other code \(aaa; this is bbb\)"):
        bench.main(argv)
    report = bench.main(argv + ["--report-only"])
    assert "Fits made by code aaa; report written by bbb" in report


def test_the_threads_limit_reaches_the_estimator(monkeypatch):
    from benchmarks.imputation import heterovae_factory
    from heterovae.columns import ColumnSpec

    specs = [ColumnSpec("a", "real")]
    assert heterovae_factory({}, threads=2)(specs, 0).n_threads == 2
    assert heterovae_factory({"n_threads": 3}, threads=2)(specs, 0).n_threads == 3
    assert heterovae_factory({})(specs, 0).n_threads == 1  # the estimator's default


def _corrected_p(a, b, n_train, n_test):
    d = np.asarray(a) - np.asarray(b)
    t = d.mean() / np.sqrt((1 / len(d) + n_test / n_train) * d.var(ddof=1))
    return 2 * stats.t.sf(abs(t), len(d) - 1)


def test_table_picks_the_best_combination_and_tests_it(tmp_path):
    rng = np.random.default_rng(0)
    offsets = {label: 0.01 * i for i, label in enumerate(LABELS)}
    offsets["mgda-ub+graddrop"] = -0.03  # the best on average
    rows = []
    for seed in range(5):
        base = 0.3 + 0.05 * rng.normal()
        for label in LABELS:
            # column "x" is 4x worse under vanilla than under the best combination, "y" 2x better
            columns = {"x": 0.4 if label == "vanilla" else 0.1, "y": 0.1 if label == "vanilla" else 0.2, "z": 0.3}
            rows.append(dict(dataset="toy", seed=seed, moo=label, mask="m", n_train=400, n_test=100,
                             error=base + offsets[label] + 0.01 * rng.normal(), cpu_seconds=1.0, columns=columns))
    args = bench.parse_args(["--seeds", "5"])
    report = bench.format_report("cmd", args, {"max_epochs": 100}, rows)
    frame = pd.DataFrame(rows).pivot(index="seed", columns="moo", values="error")
    line = next(x for x in report.splitlines() if x.startswith("| toy | 400/100 | 5 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[4] == "mgda-ub+graddrop"
    best_p = _corrected_p(frame["mgda-ub+graddrop"], frame["vanilla"], 400, 100)
    pre_p = _corrected_p(frame["imtlg+pcgrad"], frame["vanilla"], 400, 100)
    assert cells[7] == bench._p(best_p)
    assert cells[10] == bench._p(pre_p)
    assert float(cells[6]) == pytest.approx((frame["mgda-ub+graddrop"] - frame["vanilla"]).mean(), abs=1e-4)
    assert "selection bias" in report and "J = 5 seeds" in report
    assert ("| toy | mgda-ub+graddrop | x 0.400/0.100 (4.00x), z 0.300/0.300 (1.00x), y 0.100/0.200 (0.50x) | "
            "y 0.100/0.200 (0.50x), z 0.300/0.300 (1.00x), x 0.400/0.100 (4.00x) |") in report
