import gzip

import numpy as np
import pytest

from heterovae.datasets import load_multimnist
from heterovae.datasets.multimnist import _compose, default_mnist_root, read_idx

ROOT = default_mnist_root()
needs_mnist = pytest.mark.skipif(
    not (ROOT / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"MNIST IDX files not found in {ROOT}",
)


def _write_idx(path, array, type_byte):
    header = bytes([0, 0, type_byte, array.ndim]) + np.array(
        array.shape, dtype=">i4"
    ).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_read_idx_roundtrip_big_endian(tmp_path):
    ints = np.arange(-6, 6, dtype=">i4").reshape(3, 4)
    _write_idx(tmp_path / "a.gz", ints, 0x0C)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), ints)
    bytes_ = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "b.gz", bytes_, 0x08)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.gz"), bytes_)


def test_read_idx_rejects_truncated_and_bad_magic(tmp_path):
    arr = np.zeros((4, 5), dtype=np.uint8)
    header = bytes([0, 0, 8, 2]) + np.array(arr.shape, dtype=">i4").tobytes()
    with gzip.open(tmp_path / "t.gz", "wb") as f:
        f.write(header + arr.tobytes()[:-3])
    with pytest.raises(ValueError, match="header announces"):
        read_idx(tmp_path / "t.gz")
    with gzip.open(tmp_path / "m.gz", "wb") as f:
        f.write(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "m.gz")


def test_compose_places_digits_in_opposite_corners():
    # Two synthetic "digits": a full block of 10 and a full block of 200.
    images = np.stack([np.full((28, 28), 10, np.uint8), np.full((28, 28), 200, np.uint8)])
    labels = np.array([3, 7])
    X, Y = _compose(images, labels, 50, max_shift=4, rng=np.random.RandomState(1))
    assert X.shape == (50, 1, 36, 36) and X.dtype == np.float32
    for img, (a, b) in zip(X[:, 0], Y):
        val = {3: 10 / 255, 7: 200 / 255}
        # pixels only the top-left digit can reach / only the bottom-right can
        assert np.isclose(img[0:4, 0:4], val[a]).all() or np.isclose(img[0, 0], 0)
        assert np.isclose(img[32:, 32:], val[b]).all() or np.isclose(img[35, 35], 0)
        ink = img > 0
        assert ink[4:28, 4:28].all()  # TL digit covers this whatever the shift
        assert ink[8:32, 8:32].all()  # BR digit covers this whatever the shift
        # corners outside both digits' reach stay empty
        assert not ink[32:, :4].any() and not ink[:4, 32:].any()
        # overlap keeps the max, never the sum
        assert img.max() <= max(val[a], val[b]) + 1e-7


def test_load_multimnist_missing_folder_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="HETEROVAE_DATASETS"):
        load_multimnist(10, 10, root=tmp_path)


def test_load_multimnist_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("HETEROVAE_DATASETS", str(tmp_path))
    assert default_mnist_root() == tmp_path / "mnist"
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_multimnist(10, 10)


@pytest.mark.parametrize("bad", [{"n_train": -1}, {"n_test": 2.5}, {"max_shift": 9}])
def test_load_multimnist_bad_arguments(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        load_multimnist(**{"n_train": 5, "n_test": 5, **bad})


@needs_mnist
def test_load_multimnist_real_data_shapes_and_determinism():
    X_tr, X_te, Y_tr, Y_te = load_multimnist(40, 30, random_state=3)
    assert X_tr.shape == (40, 1, 36, 36) and X_te.shape == (30, 1, 36, 36)
    assert X_tr.dtype == np.float32 and 0 <= X_tr.min() and X_tr.max() <= 1
    assert Y_tr.shape == (40, 2) and Y_te.shape == (30, 2)
    assert set(np.unique(Y_tr)) <= set(range(10))
    again = load_multimnist(40, 30, random_state=3)
    np.testing.assert_array_equal(again[0], X_tr)
    np.testing.assert_array_equal(again[3], Y_te)
    other = load_multimnist(40, 30, random_state=4)
    assert not np.array_equal(other[0], X_tr)


@needs_mnist
def test_test_pairs_come_from_test_digits_with_matching_labels():
    X_tr, X_te, Y_tr, Y_te = load_multimnist(20, 20, max_shift=0, random_state=0)
    splits = {
        "train": (X_tr, Y_tr, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": (X_te, Y_te, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }
    for X, Y, img_file, lab_file in splits.values():
        digits = read_idx(ROOT / img_file).astype(np.float32) / 255
        labels = read_idx(ROOT / lab_file)
        # With no shift, rows 0..7 belong to the top-left digit only and
        # rows 28..35 to the bottom-right digit only.
        for img, (a, b) in zip(X[:, 0], Y):
            tl = np.abs(digits[:, :8, :] - img[None, :8, :28]).max(axis=(1, 2))
            br = np.abs(digits[:, 20:, :] - img[None, 28:, 8:]).max(axis=(1, 2))
            assert a in labels[tl < 1e-6]
            assert b in labels[br < 1e-6]
