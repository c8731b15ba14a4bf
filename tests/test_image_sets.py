"""paperlib.image_sets on tiny files written here in the distributed formats (IDX, CIFAR pickles in a
tar.gz): read back exactly, checksums enforced, clear messages when data are absent."""

import gzip
import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest

from paperlib import image_sets


def _idx_bytes(array: np.ndarray) -> bytes:
    """IDX written independently of the reader: magic, dims as big-endian uint32, data."""
    code = {np.dtype(np.uint8): 0x08}[array.dtype]
    head = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return head + array.tobytes()


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _write_mnist_like(folder, rng):
    folder.mkdir(parents=True)
    arrays = (rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 10, 5, dtype=np.uint8),
              rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), rng.integers(0, 10, 3, dtype=np.uint8))
    for name, array in zip(image_sets.IDX_FILES, arrays):
        (folder / name).write_bytes(gzip.compress(_idx_bytes(array)))
    return arrays, {p.name: _md5(p) for p in folder.iterdir()}


def _add(tar, name, obj):
    blob = pickle.dumps(obj)
    info = tarfile.TarInfo(name)
    info.size = len(blob)
    tar.addfile(info, io.BytesIO(blob))


def test_mnist_and_fashion_mnist_read_back_exactly(tmp_path, rng):
    for name in ("mnist", "fashion_mnist"):
        arrays, sums = _write_mnist_like(tmp_path / name, rng)
        data = image_sets.load(name, tmp_path, checksums=sums)
        for got, want in zip(data[1:], arrays):
            np.testing.assert_array_equal(got, want)
        assert data.X_train.shape == (5, 28, 28) and data.y_test.dtype == np.int64


def test_cifar10_and_cifar100_read_back_in_image_layout(tmp_path, rng):
    images = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    rows = images.transpose(0, 3, 1, 2).reshape(12, 3072)  # the distributed layout: R, G, B planes
    labels = list(rng.integers(0, 10, 12))
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        for i in range(6):
            name = f"data_batch_{i + 1}" if i < 5 else "test_batch"
            _add(tar, f"cifar-10-batches-py/{name}", {b"data": rows[2 * i:2 * i + 2], b"labels": labels[2 * i:2 * i + 2]})
    with tarfile.open(tmp_path / "cifar-100-python.tar.gz", "w:gz") as tar:
        _add(tar, "cifar-100-python/train", {b"data": rows[:8], b"fine_labels": labels[:8], b"coarse_labels": [0] * 8})
        _add(tar, "cifar-100-python/test", {b"data": rows[8:], b"fine_labels": labels[8:], b"coarse_labels": [0] * 4})
    sums = {p.name: _md5(p) for p in tmp_path.glob("*.tar.gz")}
    c10 = image_sets.load("cifar10", tmp_path, checksums=sums)
    np.testing.assert_array_equal(c10.X_train, images[:10])
    np.testing.assert_array_equal(c10.X_test, images[10:])
    assert list(c10.y_train) == labels[:10]
    c100 = image_sets.load("cifar100", tmp_path, checksums=sums)
    np.testing.assert_array_equal(c100.X_train, images[:8])
    assert list(c100.y_test) == labels[8:] and c100.X_test.shape == (4, 32, 32, 3)


def test_published_checksums_are_enforced_and_absence_is_explained(tmp_path, rng, monkeypatch):
    monkeypatch.delenv(image_sets.ENV, raising=False)
    assert not image_sets.available("mnist")
    with pytest.raises(image_sets.DataMissing, match="set PAPERLIB_DATA"):
        image_sets.load("mnist")
    with pytest.raises(image_sets.DataMissing, match="missing .*train-images-idx3-ubyte.gz"):
        image_sets.load("mnist", tmp_path)
    _write_mnist_like(tmp_path / "mnist", rng)
    monkeypatch.setenv(image_sets.ENV, str(tmp_path))
    assert image_sets.available("mnist") and not image_sets.available("cifar10")
    with pytest.raises(image_sets.DataMissing, match="is not the published f68b3c2d"):
        image_sets.load("mnist")  # our tiny files are not the published ones
    with pytest.raises(ValueError, match="unknown data set"):
        image_sets.load("svhn", tmp_path)


def test_read_idx_rejects_what_is_not_idx(tmp_path):
    (tmp_path / "x").write_bytes(b"\x01\x02\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="not an IDX file"):
        image_sets.read_idx(tmp_path / "x")
    (tmp_path / "y").write_bytes(b"\x00\x00\x08\x01" + (4).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="header says"):
        image_sets.read_idx(tmp_path / "y")


def test_load_if_wanted_falls_back_to_the_proxy_only_when_files_are_absent(tmp_path, rng, monkeypatch,
                                                                           capsys):
    monkeypatch.setenv(image_sets.ENV, str(tmp_path))
    assert image_sets.load_if_wanted("mnist", False) is None
    assert image_sets.load_if_wanted("mnist", True) is None
    assert "using the labelled proxy" in capsys.readouterr().out
    _write_mnist_like(tmp_path / "mnist", rng)
    with pytest.raises(image_sets.DataMissing, match="is not the published"):
        image_sets.load_if_wanted("mnist", True)  # present but altered: an error, no silent fallback
