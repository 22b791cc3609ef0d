"""Smoke runs of the Multi-MNIST example and benchmark scripts, tiny settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from heterovae.datasets.multimnist import default_mnist_root

ROOT = Path(__file__).resolve().parents[2]

# Fresh interpreters and LeNets: tens of seconds on a loaded machine.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (default_mnist_root() / "t10k-images-idx3-ubyte.gz").is_file(),
        reason="MNIST IDX files not found",
    ),
]


def _run(path, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, str(ROOT / path), *map(str, args)],
        capture_output=True, text=True, env=env, timeout=300, check=True, cwd=ROOT,
    ).stdout


def test_example_saves_reliability_diagrams(tmp_path):
    out = tmp_path / "rel.png"
    stdout = _run(
        "examples/mtsgd_multimnist_classification.py",
        "--n-train", 64, "--n-test", 32, "--epochs", 1, "--out", out,
    )
    assert out.stat().st_size > 1000
    assert "mt-sgd" in stdout and "linear" in stdout and "ECE" in stdout


def test_benchmark_writes_a_table(tmp_path):
    out = tmp_path / "table.md"
    _run(
        "benchmarks/mtsgd_multimnist.py",
        "--n-train", 64, "--n-test", 32, "--epochs", 1, "--particles", 2, "--out", out,
    )
    table = out.read_text()
    for label in (
        "linear", "mgda", "pareto-mtl", "moo-svgd (params)", "mt-sgd (params)",
        "mt-sgd-features (params)",
    ):
        assert f"| {label} |" in table


def test_a_rebuild_refuses_records_trained_with_other_settings(tmp_path):
    results = tmp_path / "runs.jsonl"
    small = ["--n-train", 64, "--n-test", 32, "--particles", 2, "--only", "linear"]
    _run("benchmarks/mtsgd_multimnist.py", *small, "--epochs", 1, "--results", results)
    rebuilt = _run("benchmarks/mtsgd_multimnist.py", *small, "--epochs", 1, "--from-results", results)
    assert "M = 2 particles, 1 epochs" in rebuilt
    with pytest.raises(subprocess.CalledProcessError) as failed:
        _run("benchmarks/mtsgd_multimnist.py", *small, "--epochs", 6, "--from-results", results)
    assert "epochs: [1] (command: 6)" in failed.value.stderr


def test_weights_gap_benchmark_writes_a_table(tmp_path):
    out = tmp_path / "gap.md"
    _run(
        "benchmarks/mtsgd_multimnist_weights_gap.py",
        "--n-train", 64, "--epochs", 1, "--particles", 2, "--temperatures", 1, 50, "--out", out,
    )
    rows = [line for line in out.read_text().splitlines() if line.startswith(("| 1 |", "| 50 |"))]
    assert len(rows) == 2 and all(row.count("|") == 13 for row in rows)
