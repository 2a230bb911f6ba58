import gzip
import struct

import numpy as np
import pytest
import torch

from learning_diagrams.examples import datasets


def write_idx(path, array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(">u1").tobytes())


def tiny_fashion(folder, n_train=5, n_test=3):
    rng = np.random.default_rng(0)
    parts = {}
    for split, n in (("train", n_train), ("test", n_test)):
        parts[split] = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8))
        write_idx(folder / datasets.FASHION_MNIST_FILES[(split, "images")], parts[split][0])
        write_idx(folder / datasets.FASHION_MNIST_FILES[(split, "labels")], parts[split][1])
    return parts


def test_digits_are_in_unit_range_with_the_shapes_asked_for():
    train, test = datasets.digits()
    assert train.tensors[0].shape == (1437, 1, 8, 8) and test.tensors[0].shape == (360, 1, 8, 8)
    assert train.tensors[0].min() == 0.0 and train.tensors[0].max() == 1.0
    assert train.tensors[1].dtype == torch.int64 and set(train.tensors[1].tolist()) == set(range(10))


def test_digits_in_mnist_layout_are_28_by_28_with_a_blank_border():
    train, _ = datasets.digits(size=20, pad=4, limit=50, test_limit=5)
    images = train.tensors[0]
    assert images.shape == (50, 1, 28, 28)
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.5
    assert images[..., :4, :].abs().sum() == 0 and images[..., :, -4:].abs().sum() == 0
    assert torch.isclose(images[..., 4:24, 4:24].sum(), images.sum())


def test_read_idx_reads_header_shape_and_bytes(tmp_path):
    array = np.arange(1, 2 * 3 * 4 + 1, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte.gz", array)
    read = datasets.read_idx(tmp_path / "a-idx3-ubyte.gz")
    assert read.shape == (2, 3, 4) and (read == array).all()
    # Images start at byte 16 and labels at byte 8 after gunzip.
    with gzip.open(tmp_path / "a-idx3-ubyte.gz") as f:
        assert list(f.read()[16:19]) == [1, 2, 3]
    labels = np.array([7, 1, 3], dtype=np.uint8)
    write_idx(tmp_path / "l-idx1-ubyte.gz", labels)
    with gzip.open(tmp_path / "l-idx1-ubyte.gz") as f:
        assert list(f.read()[8:]) == [7, 1, 3]
    assert datasets.read_idx(tmp_path / "l-idx1-ubyte.gz").tolist() == [7, 1, 3]


def test_read_idx_refuses_a_file_that_is_not_idx_or_is_truncated(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x1f\x8bnot idx")
    with pytest.raises(ValueError, match="is not an idx file"):
        datasets.read_idx(tmp_path / "bad")
    header = bytes([0, 0, 8, 1]) + struct.pack(">I", 5)
    (tmp_path / "short").write_bytes(header + b"\x01\x02")
    with pytest.raises(ValueError, match=r"shape \(5,\).*but 2 bytes follow"):
        datasets.read_idx(tmp_path / "short")


def test_fashion_mnist_reads_a_copy_given_by_root(tmp_path):
    parts = tiny_fashion(tmp_path)
    train, test = datasets.fashion_mnist(root=tmp_path)
    assert train.tensors[0].shape == (5, 1, 28, 28) and test.tensors[0].shape == (3, 1, 28, 28)
    assert torch.allclose(train.tensors[0][:, 0], torch.from_numpy(parts["train"][0] / 255.0).float())
    assert train.tensors[1].tolist() == parts["train"][1].tolist()
    assert test.tensors[1].dtype == torch.int64 and test.tensors[1].tolist() == parts["test"][1].tolist()
    small, small_test = datasets.fashion_mnist(root=tmp_path, limit=2, test_limit=1)
    assert len(small) == 2 and len(small_test) == 1


def test_fashion_mnist_reads_uncompressed_idx_files_too(tmp_path):
    tiny_fashion(tmp_path)
    for gz in tmp_path.glob("*.gz"):
        with gzip.open(gz) as f:
            gz.with_suffix("").write_bytes(f.read())
        gz.unlink()
    train, test = datasets.fashion_mnist(root=tmp_path)
    assert len(train) == 5 and len(test) == 3


def test_missing_fashion_mnist_says_what_to_install_and_how_to_pass_root(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        datasets.fashion_mnist(root=tmp_path)
    message = str(caught.value)
    assert isinstance(caught.value, datasets.DataMissingError)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "root=" in message and "train-images-idx3-ubyte.gz" in message
    assert str(tmp_path) in message and "nothing is downloaded" in message


def test_fashion_mnist_names_only_the_files_that_are_missing(tmp_path):
    tiny_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(datasets.DataMissingError, match=r"\(missing: t10k-labels-idx1-ubyte.gz\)"):
        datasets.fashion_mnist(root=tmp_path)
