"""MNIST, FashionMNIST, CIFAR-10 and CIFAR-100 read from a local folder, in their distributed formats.

Nothing is downloaded, ever. Put the official files in one folder, named by the ``PAPERLIB_DATA``
environment variable (or passed as ``data_dir``)::

    $PAPERLIB_DATA/mnist/train-images-idx3-ubyte.gz        (and the other three IDX files)
    $PAPERLIB_DATA/fashion_mnist/train-images-idx3-ubyte.gz (and the other three IDX files)
    $PAPERLIB_DATA/cifar-10-python.tar.gz
    $PAPERLIB_DATA/cifar-100-python.tar.gz

Every file is checked against the MD5 its publisher gives (the same values torchvision checks) before it
is read; CIFAR's pickled batches are only unpickled after that check. A notebook asks
:func:`available` and falls back to its labelled proxy when the answer is no; :func:`load` on missing or
altered files raises :class:`DataMissing` with what to put where.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

ENV = "PAPERLIB_DATA"
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")
OFFICIAL_MD5 = {  # publisher's checksums of the distributed files
    "mnist": dict(zip(IDX_FILES, ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                                  "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))),
    "fashion_mnist": dict(zip(IDX_FILES, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                          "25c81989df183df01b3e8a0aad5dffbe",
                                          "bef4ecab320f06d8554ea6380940ec79",
                                          "bb300cfdad3c16e7a12a480ee83cd310"))),
    "cifar10": {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
    "cifar100": {"cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85"},
}
NAMES = tuple(OFFICIAL_MD5)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataMissing(FileNotFoundError):
    """The data set is not in the data folder, or a file there is not the published one."""


class ImageSet(NamedTuple):
    """One data set as distributed: train and test images with their labels."""

    name: str
    X_train: np.ndarray  # (n, 28, 28) uint8 for (Fashion)MNIST, (n, 32, 32, 3) uint8 for CIFAR
    y_train: np.ndarray  # (n,) int64 class labels (CIFAR-100: the 100 fine labels)
    X_test: np.ndarray
    y_test: np.ndarray


def data_folder(explicit: str | Path | None = None) -> Path | None:
    """The data folder: ``explicit`` if given, else ``$PAPERLIB_DATA``, else None.

    Args:
      explicit: a folder that overrides the environment variable.

    Returns:
      The folder as a Path (not checked to exist), or None.
    """
    chosen = explicit if explicit not in (None, "") else os.environ.get(ENV)
    return Path(chosen).expanduser() if chosen else None


def _files(name: str, folder: Path) -> dict[Path, str]:
    if name not in OFFICIAL_MD5:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(NAMES)}")
    sub = folder / name if name in ("mnist", "fashion_mnist") else folder
    return {sub / f: md5 for f, md5 in OFFICIAL_MD5[name].items()}


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def available(name: str, data_dir: str | Path | None = None) -> bool:
    """Whether every file of ``name`` is present in the data folder (checksums are checked on load).

    Args:
      name: one of :data:`NAMES`.
      data_dir: the data folder; ``$PAPERLIB_DATA`` by default.

    Returns:
      True when all of its files are there.
    """
    folder = data_folder(data_dir)
    return folder is not None and all(p.is_file() for p in _files(name, folder))


def verified_files(name: str, data_dir: str | Path | None = None,
                   checksums: dict[str, str] | None = None) -> list[Path]:
    """The files of ``name``, each checked against its MD5 (``checksums`` maps file name to MD5 and
    replaces the published values, for tests). Raises :class:`DataMissing` with what is wrong.

    Args:
      name: one of :data:`NAMES`.
      data_dir: the data folder; ``$PAPERLIB_DATA`` by default.
      checksums: ``{file name: MD5}`` replacing the published checksums (tests only).

    Returns:
      The verified file paths.
    """
    folder = data_folder(data_dir)
    if folder is None:
        raise DataMissing(f"no data folder: set {ENV} to a folder holding the {name} files "
                          f"({', '.join(OFFICIAL_MD5[name])}); nothing is downloaded")
    files = _files(name, folder)
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise DataMissing(f"{name}: missing {', '.join(missing)} (the publisher's files, unchanged)")
    for path, md5 in files.items():
        want = (checksums or {}).get(path.name, md5)
        if _md5(path) != want:
            raise DataMissing(f"{path}: MD5 {_md5(path)} is not the published {want}; "
                              "replace it with the original file")
    return list(files)


def read_idx(path: str | Path) -> np.ndarray:
    """An array in the IDX format of (Fashion)MNIST (gzip-compressed or not): two zero bytes, a type
    byte, the number of dimensions, each dimension as a big-endian uint32, then the data.

    Args:
      path: the IDX file, ``.gz`` or not.

    Returns:
      The array with the header's shape and dtype (native byte order).
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    data = np.frombuffer(raw, dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, data hold {data.size} values")
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def _cifar_members(archive: Path, wanted: tuple[str, ...]) -> list[dict]:
    with tarfile.open(archive, "r:gz") as tar:
        by_name = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        missing = [w for w in wanted if w not in by_name]
        if missing:
            raise ValueError(f"{archive}: no member(s) {', '.join(missing)}")
        return [pickle.load(io.BytesIO(tar.extractfile(by_name[w]).read()), encoding="bytes")
                for w in wanted]  # safe: the archive's MD5 was checked before


def _cifar_arrays(batches: list[dict], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    X = np.concatenate([np.asarray(b[b"data"], np.uint8) for b in batches])
    y = np.concatenate([np.asarray(b[label_key], np.int64) for b in batches])
    return X.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y  # rows are R, G, B planes of 32 x 32


def load(name: str, data_dir: str | Path | None = None,
         checksums: dict[str, str] | None = None) -> ImageSet:
    """Train and test images and labels of ``name`` (``mnist``, ``fashion_mnist``, ``cifar10``,
    ``cifar100``) from the data folder, after checking every file's MD5.

    Args:
      name: the data set.
      data_dir: the data folder; None reads ``$PAPERLIB_DATA``.
      checksums: file name -> MD5 replacing the published values (tests with tiny files only).

    Returns:
      ``ImageSet`` with uint8 images, (n, 28, 28) or (n, 32, 32, 3), and int64 labels.
    """
    files = verified_files(name, data_dir, checksums)
    if name in ("mnist", "fashion_mnist"):
        X_train, y_train, X_test, y_test = (read_idx(p) for p in files)
        return ImageSet(name, X_train, y_train.astype(np.int64), X_test, y_test.astype(np.int64))
    if name == "cifar10":
        batches = _cifar_members(files[0], tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",))
        return ImageSet(name, *_cifar_arrays(batches[:5], b"labels"), *_cifar_arrays(batches[5:], b"labels"))
    train, test = _cifar_members(files[0], ("train", "test"))
    return ImageSet(name, *_cifar_arrays([train], b"fine_labels"), *_cifar_arrays([test], b"fine_labels"))


def load_if_wanted(name: str, wanted: bool, data_dir: str | Path | None = None) -> ImageSet | None:
    """The real set for a notebook's ``real_data`` knob: ``None`` when not wanted, or (with a printed
    message saying what is missing) when the files are absent, so the notebook keeps its labelled proxy.

    Args:
      name: the data set (``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``).
      wanted: the notebook's ``real_data`` knob (``True`` in ``full``).
      data_dir: the data folder; None reads ``$PAPERLIB_DATA``.

    Returns:
      The checked ``ImageSet``, or ``None`` (use the proxy). Files present but altered still raise
      :class:`DataMissing`: a wrong file is an error, not a reason to fall back.
    """
    if not wanted:
        return None
    if not available(name, data_dir):
        try:
            verified_files(name, data_dir)
        except DataMissing as missing:
            print(f"real data unavailable, using the labelled proxy: {missing}")
        return None
    return load(name, data_dir)
