"""Tiny datasets in the real on-disk formats, so tests exercise torchvision's own readers.

Every fake image carries its own index in its first two pixels (channel 0, row 0:
index // 256 and index % 256) and its label is `fake_label(index, seed, num_classes)`,
so a test can check, after any split or shuffle, which example it holds and that images
and labels still belong together. The other pixels are seeded noise.
"""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import tarfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def fake_label(index: int | np.ndarray, seed: int = 0, num_classes: int = 10) -> Any:
    """The label of fake example `index`: every class occurs, neighbours differ."""
    return (index * 7 + seed) % num_classes


def fake_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """(n, *shape) uint8 noise with each image's index in its first two pixels."""
    images = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    flat = images.reshape(n, -1)
    index = np.arange(n)
    flat[:, 0] = index // 256
    flat[:, 1] = index % 256
    return images


def decode_index(first_two_pixels: np.ndarray) -> np.ndarray:
    """Inverse of `fake_images`' index code, from the (N, 2) uint8 values."""
    return first_two_pixels[:, 0].astype(np.int64) * 256 + first_two_pixels[:, 1]


# ---------------------------------------------------------------------------------------
# MNIST-type: IDX files (LeCun's format: magic 0x0000080<ndim>, big-endian int32 dims)
# ---------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file holding `array`."""
    assert array.dtype == np.uint8
    header = (0x800 + array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_fake_mnist(
    root: Path,
    cls: Literal["MNIST", "FashionMNIST"] = "MNIST",
    n_train: int = 60,
    n_test: int = 20,
    seed: int = 0,
    gz_dir: Path | None = None,
) -> Path:
    """Write the four raw IDX files to `root/<cls>/raw/` and return that folder.

    With `gz_dir`, also write gzipped copies (`*-ubyte.gz`) there, as Debian ships them,
    for import tests.
    """
    raw = root / cls / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n, split_seed in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        arrays[f"{prefix}-images-idx3-ubyte"] = fake_images(n, (28, 28), split_seed)
        arrays[f"{prefix}-labels-idx1-ubyte"] = fake_label(np.arange(n), seed).astype(np.uint8)
    for file, array in arrays.items():
        data = idx_bytes(array)
        (raw / file).write_bytes(data)
        if gz_dir is not None:
            gz_dir.mkdir(parents=True, exist_ok=True)
            (gz_dir / f"{file}.gz").write_bytes(gzip.compress(data))
    return raw


# ---------------------------------------------------------------------------------------
# CIFAR: pickled batches as the official python version has them
# ---------------------------------------------------------------------------------------


class _Py2Str(bytes):
    """Bytes that pickle as a Python 2 `str`, the type of every key in the real batches.

    The official files were pickled by Python 2: loaded with encoding="bytes" their keys
    are b"data", b"labels"; with encoding="latin1" (torchvision) they are "data",
    "labels". Python 3 `bytes` would stay bytes under latin1 and break torchvision, so
    these are written with the SHORT_BINSTRING opcode Python 2 used.
    """


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler has a per-type dispatch table
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: _Py2Str) -> None:
        assert len(obj) < 256
        self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + bytes(obj))
        self.memoize(obj)

    dispatch[_Py2Str] = save_py2_str


def _py2(value: Any) -> Any:
    """Turn the str keys and names of a batch dict into Python 2 strings, recursively."""
    if isinstance(value, str):
        return _Py2Str(value.encode("latin1"))
    if isinstance(value, dict):
        return {_py2(k): _py2(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_py2(v) for v in value]
    return value


def _pickle_py2(obj: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(_py2(obj))
    return buf.getvalue()


CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
CIFAR100_COARSE_NAMES = [
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
]  # fmt: skip


def write_fake_cifar(
    root: Path,
    which: Literal["cifar10", "cifar100"] = "cifar10",
    n_per_batch: int = 20,
    seed: int = 0,
) -> Path:
    """Write fake CIFAR batches under `root/cifar-10-batches-py` (or `cifar-100-python`).

    CIFAR-10: data_batch_1..5 and test_batch of `n_per_batch` examples each, and
    batches.meta. CIFAR-100: `train` and `test` of `n_per_batch` examples each, and meta.
    Indices (encoded in the images, see the module docstring) run across the training
    batches in order. The md5s do not match torchvision's list, so loading needs
    `torchvision.datasets.cifar.check_integrity` patched.
    """
    cifar10 = which == "cifar10"
    folder = root / ("cifar-10-batches-py" if cifar10 else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)
    num_classes = 10 if cifar10 else 100
    train_files = [f"data_batch_{i}" for i in range(1, 6)] if cifar10 else ["train"]
    test_file = "test_batch" if cifar10 else "test"

    n_train = n_per_batch * len(train_files)
    train_x = fake_images(n_train, (3, 32, 32), seed).reshape(n_train, 3072)
    test_x = fake_images(n_per_batch, (3, 32, 32), seed + 1).reshape(n_per_batch, 3072)
    batches = [
        (file, i * n_per_batch, train_x[i * n_per_batch : (i + 1) * n_per_batch])
        for i, file in enumerate(train_files)
    ] + [(test_file, 0, test_x)]
    for file, start, data in batches:
        labels = [int(fake_label(start + i, seed, num_classes)) for i in range(len(data))]
        batch: dict[str, Any] = {"batch_label": f"fake {file}", "data": data}
        if cifar10:
            batch["labels"] = labels
        else:
            batch["fine_labels"] = labels
            batch["coarse_labels"] = [label % 20 for label in labels]
        batch["filenames"] = [f"fake_{start + i}.png" for i in range(len(data))]
        (folder / file).write_bytes(_pickle_py2(batch))

    if cifar10:
        meta_file = "batches.meta"
        meta = {"num_cases_per_batch": n_per_batch, "label_names": CIFAR10_NAMES, "num_vis": 3072}
    else:
        from lsexp.training.data import DATASETS  # the real fine names, in label order

        meta_file = "meta"
        meta = {
            "fine_label_names": list(DATASETS["cifar100"].classes),
            "coarse_label_names": CIFAR100_COARSE_NAMES,
        }
    (folder / meta_file).write_bytes(_pickle_py2(meta))
    return folder


def write_fake_cifar_tarball(
    path: Path, which: Literal["cifar10", "cifar100"] = "cifar10", n_per_batch: int = 20
) -> Path:
    """Write a fake `cifar-10-python.tar.gz`-style archive at `path` and return `path`."""
    staging = path.parent / f".{path.name}.staging"
    folder = write_fake_cifar(staging, which, n_per_batch)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    shutil.rmtree(staging)
    return path
