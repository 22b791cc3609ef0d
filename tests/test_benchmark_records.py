"""Benchmark reports rebuilt from recorded runs state the settings the runs had."""

import argparse

import pytest

from benchmarks.mtsgd_multimnist import check_record_settings, run_settings

EXPECTED = {"n_train": 2000, "n_test": 1000, "particles": 5, "epochs": 6, "batch_size": 64, "lr": 3e-3,
            "temperature": 1.0, "threads": 1}


def test_records_with_the_commands_settings_are_reported_without_a_note():
    args = argparse.Namespace(particles=5, epochs=6, batch_size=64, lr=3e-3, temperature=1.0)
    settings = run_settings(args, 2000, 1000)
    assert set(settings) == set(EXPECTED)
    records = [{"seed": 0, "settings": dict(EXPECTED)}, {"seed": 1, "settings": dict(EXPECTED)}]
    assert check_record_settings(records, EXPECTED) == ""


def test_records_trained_otherwise_are_refused_naming_the_setting():
    records = [{"seed": 0, "settings": dict(EXPECTED, epochs=1, particles=2)}]
    with pytest.raises(SystemExit, match=r"epochs: \[1\] \(command: 6\); particles: \[2\] \(command: 5\)"):
        check_record_settings(records, EXPECTED)


def test_records_without_settings_get_a_note_not_a_claim():
    records = [{"seed": 0}, {"seed": 1, "settings": dict(EXPECTED)}]
    note = check_record_settings(records, EXPECTED)
    assert "1 of the 2 records predate recorded settings" in note


def test_code_version_names_the_commit_and_a_dirty_tree(tmp_path):
    import re
    import subprocess

    from benchmarks.provenance import REPO, code_version

    assert code_version(tmp_path) == "unknown"  # not a git checkout
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the project is not a git checkout here")
    assert re.fullmatch(re.escape(head) + r"(\+dirty)?", code_version())
