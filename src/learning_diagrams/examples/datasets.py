"""Offline data for the examples: scikit-learn's digits and Fashion-MNIST, nothing downloaded.

Both loaders return ``(train, test)`` as :class:`~torch.utils.data.TensorDataset`
objects of ``(images, labels)``: images ``float32`` of shape ``(n, 1, H, W)``
with values in ``[0, 1]``, labels ``int64`` class indices.

* :func:`digits`: the 1,797 8×8 digits bundled with scikit-learn (every fresh
  machine with the ``examples`` extra has them), split 80/20 by class;
  ``size=20, pad=4`` lays them out as MNIST does (the glyph scaled to 20×20,
  centred in 28×28), so they can share a backbone with Fashion-MNIST.
* :func:`fashion_mnist`: Zalando's Fashion-MNIST (60,000 training and 10,000
  test images, 28×28, 10 classes), read from the original idx files that the
  Debian package ``dataset-fashion-mnist`` installs in
  ``/usr/share/datasets/fashion-mnist`` (``make data`` installs it where you
  are root), or from your own copy: ``fashion_mnist(root="path/to/folder")``.
* :func:`read_idx`: the idx format itself (gzipped or not), as a NumPy array.

>>> train, test = digits(size=20, pad=4)
>>> train.tensors[0].shape, test.tensors[0].shape, train.tensors[1].dtype
(torch.Size([1437, 1, 28, 28]), torch.Size([360, 1, 28, 28]), torch.int64)
>>> float(train.tensors[0].min()), float(train.tensors[0].max()) <= 1.0
(0.0, True)
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

import learning_diagrams as ld

__all__ = [
    "digits",
    "fashion_mnist",
    "read_idx",
    "FASHION_MNIST_ROOT",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_CLASSES",
    "DataMissingError",
]

#: Where the Debian package ``dataset-fashion-mnist`` puts the idx files.
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"

#: The four files of Fashion-MNIST (and of MNIST), by split and part.
FASHION_MNIST_FILES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}

#: Fashion-MNIST's class names, by label.
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# idx type codes (the third byte of the magic number) and the NumPy types they stand for.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataMissingError(FileNotFoundError):
    """A data set the examples read from disk is not there; the message says how to get it."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one idx file (``.gz`` or not) as a NumPy array of the shape its header gives.

    The idx header is two zero bytes, a type code (``0x08`` for unsigned bytes), the
    number of dimensions ``k``, then ``k`` big-endian 32-bit sizes; the data follow.
    So images (3 dimensions) start at byte 16 and labels (1 dimension) at byte 8.

    Raises
    ------
    FileFormatError
        (``ld.errors.FileFormatError``, a ``ValueError``) when the header is not
        an idx header, or the data are shorter or longer than the sizes it gives.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ld.errors.FileFormatError(
            f"{path} is not an idx file: it starts with {raw[:4].hex() or 'nothing'}, "
            f"expected 0000 then a type code and a number of dimensions"
        )
    ndim = raw[3]
    offset = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ld.errors.FileFormatError(
            f"{path}: the header gives shape {shape} ({expected} bytes of data), "
            f"but {len(raw) - offset} bytes follow it"
        )
    # A copy: frombuffer over bytes is read-only, and torch warns on read-only arrays.
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def _find(root: Path, name: str) -> Path | None:
    for candidate in (root / name, root / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _missing_message(root: Path, missing: list[str]) -> str:
    return (
        f"Fashion-MNIST is not in {root} (missing: {', '.join(missing)}); nothing is downloaded.\n"
        f"Install the Debian package, which puts the files in {FASHION_MNIST_ROOT} "
        f"(needs root; `make data` runs it when you are root):\n"
        f"    apt-get install dataset-fashion-mnist\n"
        f"or pass root= pointing at your own copy of the original idx files "
        f"({', '.join(FASHION_MNIST_FILES.values())}; gzipped or not): "
        f"fashion_mnist(root='path/to/fashion-mnist')"
    )


def fashion_mnist(
    root: str | os.PathLike = FASHION_MNIST_ROOT, *, limit: int | None = None, test_limit: int | None = None
) -> tuple[TensorDataset, TensorDataset]:
    """Fashion-MNIST's training and test sets, read from the original idx files in ``root``.

    Parameters
    ----------
    root : path-like
        A folder holding ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
        ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (or the same
        names without ``.gz``). Default: where the Debian package
        ``dataset-fashion-mnist`` installs them.
    limit, test_limit : int, optional
        Keep only the first ``limit`` training and ``test_limit`` test images (the
        files are in a fixed mixed-class order, so a prefix is about balanced).

    Returns
    -------
    (TensorDataset, TensorDataset)
        ``(images, labels)``: images ``float32`` ``(n, 1, 28, 28)`` in ``[0, 1]``,
        labels ``int64`` in ``0..9`` (names in :data:`FASHION_MNIST_CLASSES`).

    Raises
    ------
    DataMissingError
        (a ``FileNotFoundError``) when a file is missing; the message says
        ``apt-get install dataset-fashion-mnist`` and how to pass ``root=``.
    FileFormatError
        (``ld.errors.FileFormatError``, a ``ValueError``) when a file is not an
        idx file, or images and labels disagree in number.
    """
    root = Path(root)
    found = {key: _find(root, name) for key, name in FASHION_MNIST_FILES.items()}
    missing = [FASHION_MNIST_FILES[key] for key, path in found.items() if path is None]
    if missing:
        raise DataMissingError(_missing_message(root, missing))
    paths = {key: path for key, path in found.items() if path is not None}
    splits = []
    for split, keep in (("train", limit), ("test", test_limit)):
        images = read_idx(paths[(split, "images")])
        labels = read_idx(paths[(split, "labels")])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ld.errors.FileFormatError(
                f"{root}: {split} images of shape {images.shape} do not go with labels of shape {labels.shape}"
            )
        images, labels = images[:keep], labels[:keep]
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        y = torch.from_numpy(labels.astype(np.int64))
        splits.append(TensorDataset(x, y))
    return splits[0], splits[1]


def digits(
    *, size: int = 8, pad: int = 0, seed: int = 0, limit: int | None = None, test_limit: int | None = None
) -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's 1,797 8×8 digits in ``[0, 1]``, split 80/20 by class (1,437 / 360).

    Parameters
    ----------
    size : int
        Side of the glyph after bilinear resizing (8: as bundled).
    pad : int
        Zeros added on every side after resizing: ``size=20, pad=4`` gives 28×28
        images laid out as MNIST's (a 20×20 glyph centred in 28×28).
    seed : int
        Seed of the split.
    limit, test_limit : int, optional
        Keep only the first ``limit`` training and ``test_limit`` test images of the
        (shuffled, stratified) split.

    Returns
    -------
    (TensorDataset, TensorDataset)
        ``(images, labels)``: images ``float32`` ``(n, 1, size + 2 pad, size + 2 pad)``
        in ``[0, 1]``, labels ``int64`` in ``0..9``.

    >>> train, test = digits(limit=10)
    >>> train.tensors[0].shape, len(test)
    (torch.Size([10, 1, 8, 8]), 360)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != images.shape[-1]:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    if pad:
        images = F.pad(images, (pad, pad, pad, pad))
    labels = torch.tensor(data.target, dtype=torch.int64)
    train, test = train_test_split(range(len(labels)), test_size=0.2, stratify=labels, random_state=seed)
    train, test = train[:limit], test[:test_limit]
    return TensorDataset(images[train], labels[train]), TensorDataset(images[test], labels[test])
