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
    # imputed counts are written as whole numbers, not as float means
    written = pd.read_csv(out, dtype=str)["kids"]
    imputed = frame["kids"].isna().to_numpy()
    assert imputed.any() and all(cell.isdigit() for cell in written[imputed])


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


def _run(tmp_path, text, *options, name="in.csv"):
    path = tmp_path / name
    path.write_text(text)
    out = tmp_path / ("out_" + name)
    code = main(["impute", str(path), str(out), "--epochs", "1", *options])
    return code, (out.read_text() if out.exists() else None)


def test_observed_cells_are_written_back_as_they_were_read(tmp_path):
    """pandas reads integers with blanks as floats: labels came back "2.0", ids lost leading zeros."""
    text = "id,grade,size,price\n0001,1,160,1.50\n0002,2,,2.25\n0003,,171,\n0004,2,155,3.0\n0005,1,180,2.5\n0006,2,165,1.75\n"
    code, out = _run(tmp_path, text, "--type", "grade=cat", "--type", "id=cat")
    assert code == 0
    rows = [line.split(",") for line in out.splitlines()]
    given = [line.split(",") for line in text.splitlines()]
    assert rows[0] == given[0]
    for got, want in zip(rows[1:], given[1:]):
        for g, w in zip(got, want):
            assert g == w or w == ""  # observed cells byte-identical
    assert rows[3][1] in {"1", "2"}  # an imputed label is written like the observed ones
    assert float(rows[2][2]) > 0 and float(rows[3][3]) > 0


def test_a_semicolon_file_read_as_one_column_is_named_and_sep_reads_it(tmp_path, capsys):
    text = "a;b;c\n1.5;2;x\n;3;y\n2.5;;x\n3.5;5;\n4.5;6;y\n"
    assert _run(tmp_path, text)[0] == 2
    assert "pass --sep ';'" in capsys.readouterr().err
    code, out = _run(tmp_path, text, "--sep", ";")
    assert code == 0 and out.splitlines()[0] == "a;b;c"
    assert all(cell != "" for line in out.splitlines() for cell in line.split(";"))


def test_an_index_column_is_copied_not_modelled_and_duplicate_headers_kept(tmp_path):
    code, out = _run(tmp_path, ",a,a,b\n0,1.5,2,x\n1,,3,y\n2,2.5,,x\n3,3.5,5,\n4,4.5,6,y\n")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == ",a,a,b"
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize("options, message", [
    (["--device", "bogus"], "not a device torch knows"),
    (["--type", "a"], "--type expects COLUMN=KIND"),
    (["--type", "a=real", "--type", "0=pos"], "names column 'a' twice"),
    (["--code", "c"], "value_codes names the column 'c'"),
    (["--code", "b"], "value_codes names column 'b', a 'binary' column"),
    (["--code", "a", "--no-codes"], "--code and --no-codes contradict each other"),
])
def test_bad_options_exit_2_with_a_one_line_error(tmp_path, capsys, options, message):
    code, _ = _run(tmp_path, "a,b\n1.5,x\n2.5,\n,y\n4.5,x\n5.5,y\n", *options)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("heterovae: error:") and message in err


def test_a_missing_output_folder_is_reported_before_training(csv, tmp_path, capsys, monkeypatch):
    from heterovae.imputer import HeterogeneousVAEImputer

    monkeypatch.setattr(HeterogeneousVAEImputer, "fit_transform", lambda *a, **k: pytest.fail("trained first"))
    path, _ = csv
    assert main(["impute", str(path), str(tmp_path / "no" / "such" / "out.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("options, expected", [
    (["--code", "age", "--code", "3"], ["age", "kids"]),  # by label and by position (3 is kids)
    ([], "auto"),
    (["--no-codes"], None),
])
def test_code_options_reach_the_imputer(csv, tmp_path, monkeypatch, options, expected):
    from heterovae.imputer import HeterogeneousVAEImputer

    seen = {}
    original = HeterogeneousVAEImputer.fit_transform

    def record(self, X, y=None):
        seen["codes"] = self.value_codes
        return original(self, X)

    monkeypatch.setattr(HeterogeneousVAEImputer, "fit_transform", record)
    path, _ = csv
    assert main(["impute", str(path), str(tmp_path / "o.csv"), "--epochs", "1", *options]) == 0
    assert seen["codes"] == expected


def test_code_gives_the_named_columns_exact_value_codes(csv, tmp_path, monkeypatch):
    from heterovae.imputer import HeterogeneousVAEImputer

    seen = {}
    original = HeterogeneousVAEImputer.fit_transform

    def spy(self, X, y=None):
        out = original(self, X)
        seen["codes"] = self.net_.module_.value_codes.columns.tolist()
        return out

    monkeypatch.setattr(HeterogeneousVAEImputer, "fit_transform", spy)
    path, _ = csv
    assert main(["impute", str(path), str(tmp_path / "o.csv"), "--epochs", "1", "--code", "age", "--code", "3"]) == 0
    assert seen["codes"] == [0, 3]
