"""Multi-MNIST: two MNIST digits on one 36x36 canvas, one task per digit.

The benchmark of multi-task learning papers (Sener & Koltun 2018; Lin et al.
2019; Phan et al. 2022): the first digit sits in the top-left corner and the
second in the bottom-right corner, each shifted by up to ``max_shift``
pixels, so that the two digits overlap in the middle. Task 1 is the
top-left digit, task 2 the bottom-right one.

The images are built on the fly from the four standard gzip IDX files of
MNIST; train pairs use train digits only and test pairs test digits only.
"""

import gzip
import os
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["load_multimnist", "read_idx", "default_mnist_root"]

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# IDX type byte -> numpy dtype (big-endian where it matters).
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
CANVAS = 36
DIGIT = 28


def default_mnist_root():
    """Folder that holds the MNIST IDX files when ``root`` is not given.

    ``$HETEROVAE_DATASETS/mnist`` when the environment variable
    ``HETEROVAE_DATASETS`` is set (it names the shared datasets folder),
    otherwise ``<repository>/../shared/datasets/mnist``.
    """
    env = os.environ.get("HETEROVAE_DATASETS")
    if env:
        return Path(env) / "mnist"
    return Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "mnist"


def read_idx(path):
    """Read one (optionally gzip-compressed) IDX file into a numpy array.

    The IDX header is two zero bytes, a type byte, the number of
    dimensions, then one big-endian int32 per dimension.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number).")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type byte 0x{type_code:02x}.")
    shape = tuple(np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise ValueError(
            f"{path}: header announces shape {shape} ({expected} bytes) but the "
            f"file holds {len(data) - offset} bytes of data."
        )
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)


def _load_split(root, split):
    images_name, labels_name = _FILES[split]
    images = read_idx(root / images_name)
    labels = read_idx(root / labels_name)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (DIGIT, DIGIT):
        raise ValueError(
            f"{root}: {split} images {images.shape} and labels {labels.shape} "
            "do not form an MNIST split."
        )
    return images, labels.astype(np.int64)


def _compose(images, labels, n, max_shift, rng):
    # digits are drawn with replacement: a digit may appear in several pairs
    first = rng.randint(0, images.shape[0], size=n)
    second = rng.randint(0, images.shape[0], size=n)
    # Top-left digit starts at (0..max_shift); bottom-right digit ends at the
    # canvas edge minus (0..max_shift).
    shift_tl = rng.randint(0, max_shift + 1, size=(n, 2))
    shift_br = (CANVAS - DIGIT) - rng.randint(0, max_shift + 1, size=(n, 2))
    X = np.zeros((n, 1, CANVAS, CANVAS), dtype=np.uint8)
    for i in range(n):
        r, c = shift_tl[i]
        X[i, 0, r : r + DIGIT, c : c + DIGIT] = images[first[i]]
        r, c = shift_br[i]
        # Overlapping strokes: keep the larger value (MNIST ink is bright on
        # black) rather than adding, so values stay in [0, 255].
        np.maximum(
            X[i, 0, r : r + DIGIT, c : c + DIGIT],
            images[second[i]],
            out=X[i, 0, r : r + DIGIT, c : c + DIGIT],
        )
    Y = np.stack([labels[first], labels[second]], axis=1)
    return (X.astype(np.float32) / np.float32(255.0)), Y


def load_multimnist(
    n_train=60000, n_test=10000, *, root=None, max_shift=4, random_state=0
):
    """Build the Multi-MNIST two-task data set from the MNIST IDX files.

    Parameters
    ----------
    n_train, n_test : int, default=60000, 10000
        Number of composed images in each split. Small values give a quick
        version for tests and examples; the full sizes take about 370 MB as
        float32. Each image pairs two digits drawn with replacement from
        the split's MNIST digits, so a digit may appear in several images.
    root : str or path-like, default=None
        Folder holding ``train-images-idx3-ubyte.gz``,
        ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
        ``t10k-labels-idx1-ubyte.gz``. Default: :func:`default_mnist_root`.
    max_shift : int, default=4
        Each digit is shifted inward from its corner by 0..``max_shift``
        pixels along each axis (uniform, independently).
    random_state : int, RandomState instance or None, default=0
        Seeds the choice of digit pairs and shifts. The training pairs are
        drawn first from the same stream, so the test pairs depend on
        ``n_train`` too: compare runs of different training sizes on the
        same test set by drawing it once, e.g. with the largest ``n_train``.

    Returns
    -------
    X_train : ndarray of shape (n_train, 1, 36, 36), float32 in [0, 1]
    X_test : ndarray of shape (n_test, 1, 36, 36), float32 in [0, 1]
    Y_train : ndarray of shape (n_train, 2), int64
        Column 0 is the top-left digit, column 1 the bottom-right digit.
    Y_test : ndarray of shape (n_test, 2), int64

    Raises
    ------
    FileNotFoundError
        If an IDX file is missing from ``root``.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}.")
    if not isinstance(max_shift, (int, np.integer)) or not 0 <= max_shift <= CANVAS - DIGIT:
        raise ValueError(
            f"max_shift must be an int in [0, {CANVAS - DIGIT}], got {max_shift!r}."
        )
    root = default_mnist_root() if root is None else Path(root)
    missing = [n for pair in _FILES.values() for n in pair if not (root / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"MNIST IDX files {missing} not found in {root}; pass root= or set "
            "HETEROVAE_DATASETS to the folder that contains mnist/."
        )
    rng = check_random_state(random_state)
    X_train, Y_train = _compose(*_load_split(root, "train"), n_train, max_shift, rng)
    X_test, Y_test = _compose(*_load_split(root, "test"), n_test, max_shift, rng)
    return X_train, X_test, Y_train, Y_test
