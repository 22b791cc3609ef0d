"""Smoke runs of the MT-SGD example and benchmark scripts with tiny settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each run is a fresh interpreter (torch import, first optimizer step): tens of
# seconds on the loaded CI machine, so these sit behind the slow marker.
pytestmark = pytest.mark.slow


def run_script(path, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, str(ROOT / path), *map(str, args)],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    ).stdout


@pytest.mark.parametrize(
    "script, args",
    [
        ("examples/mtsgd_toy_gaussians.py", ["--steps", 3, "--particles", 6]),
        ("examples/mtsgd_zdt3.py", ["--steps", 3, "--particles", 6, "--dim", 5]),
    ],
)
def test_example_runs_and_saves_a_plot(tmp_path, script, args):
    out = tmp_path / "plot.png"
    stdout = run_script(script, *args, "--out", out)
    assert out.stat().st_size > 1000
    assert "MT-SGD" in stdout and "MOO-SVGD" in stdout


def test_benchmark_prints_a_table():
    stdout = run_script(
        "benchmarks/mtsgd_sampler_scaling.py", "--particles", 3, "--repeats", 2,
        "--warmup", 1,
    )
    assert "| 3 |" in stdout and "Command:" in stdout
