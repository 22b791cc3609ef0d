"""The command line entry point."""

import numpy as np
import pandas as pd
import pytest

from heterovae.cli import main


@pytest.fixture
def csv(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=80)
    frame = pd.DataFrame({"age": np.round(40 + 8 * z), "income": np.exp(10 + 0.3 * z),
                          "city": np.where(z > 0, "Paris", "Lyon"), "kids": rng.poisson(1.5, 80)})
    frame = frame.mask(rng.random(frame.shape) < 0.15)
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_impute_writes_a_complete_csv_with_observed_cells_kept(csv, tmp_path):
    path, frame = csv
    out = tmp_path / "out.csv"
    assert main(["impute", str(path), str(out), "--epochs", "2", "--type", "kids=count"]) == 0
    result = pd.read_csv(out)
    assert result.notna().all().all() and list(result.columns) == list(frame.columns)
    observed = frame.notna().to_numpy()
    np.testing.assert_array_equal(result.to_numpy()[observed], frame.to_numpy()[observed])
    assert set(result["city"]) <= {"Paris", "Lyon"}
    # counts are written as whole numbers, not as the float means of a blank-holding column
    assert pd.api.types.is_integer_dtype(result["kids"])
    assert "." not in out.read_text().splitlines()[1].split(",")[3]


def test_detect_prints_one_kind_per_column(csv, capsys):
    path, _ = csv
    assert main(["detect", str(path), "--type", "age=real"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["age", "real"], ["income", "pos"], ["city", "binary"],
                                                    ["kids", "count"]]


def test_bad_type_override_is_a_clear_error(csv, tmp_path, capsys):
    path, _ = csv
    assert main(["impute", str(path), str(tmp_path / "o.csv"), "--type", "kids=gamma"]) == 2
    assert "kids" in capsys.readouterr().err


def test_a_missing_input_file_is_a_clear_error(tmp_path, capsys):
    assert main(["impute", str(tmp_path / "nope.csv"), str(tmp_path / "out.csv")]) == 2
    assert "No such file" in capsys.readouterr().err
