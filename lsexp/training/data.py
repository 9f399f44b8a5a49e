"""Datasets: where they live, whether they are complete, and tensors ready for training.

A sweep loads its dataset once, as whole tensors (train / val / test), because every
dataset here fits in memory and per-sample transforms would cost more than the small
models they feed. Nothing here downloads unless asked to by `fetch_dataset`: a sweep
calls `require_dataset` first and fails with a message that says how to get the data
(`lsexp data fetch NAME`, or `lsexp data import NAME SOURCE` for a local copy).

Folders have torchvision's layout, so a folder that works here works with torchvision
and the other way round. CIFAR batches are read by torchvision's own dataset classes with
`download=False`; MNIST-type IDX files by `_read_idx` (the same arrays, tested against
torchvision, without the 1 s of importing it). `check_dataset` looks a little further
than torchvision does: MNIST-type files must be as long as their IDX header says (a
truncated copy is found before loading, not as an assert deep inside torchvision), and
CIFAR batches must match torchvision's md5 list.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import shlex
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from lsexp.errors import DataError
from lsexp.fsutil import atomic_copy
from lsexp.registry import by_name

if TYPE_CHECKING:  # torch costs seconds to import; `lsexp data check` does not need it
    import torch


_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
# Fine label names, in label order, as in the `meta` file of cifar-100-python.
_CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a report need to know about a dataset, without loading it."""

    name: str
    channels: int
    image_size: int
    classes: tuple[str, ...]  # class names in label order
    train_size: int  # images in the official training split (val is carved from it)
    bundled: bool = False  # shipped inside lsexp: nothing to fetch or import

    @property
    def num_classes(self) -> int:
        return len(self.classes)


_DIGITS = tuple(str(digit) for digit in range(10))

# One row per dataset; what else a new dataset needs: docs/architecture.md, "To add".
DATASETS: dict[str, DatasetInfo] = by_name(
    #           name                  channels  size  classes            train_size
    DatasetInfo("fashion_mnist_mini", 1,        28,   _FASHION_CLASSES,  5000, bundled=True),
    DatasetInfo("mnist",              1,        28,   _DIGITS,           60000),
    DatasetInfo("fashion_mnist",      1,        28,   _FASHION_CLASSES,  60000),
    DatasetInfo("cifar10",            3,        32,   _CIFAR10_CLASSES,  50000),
    DatasetInfo("cifar100",           3,        32,   _CIFAR100_CLASSES, 50000),
)  # fmt: skip
DATASET_NAMES = tuple(DATASETS)  # the one list of names: config, CLI and help use it
GRAYSCALE = frozenset(name for name, info in DATASETS.items() if info.channels == 1)
FETCHABLE = tuple(name for name, info in DATASETS.items() if not info.bundled)

# torchvision class names (its folder names under the root), looked up lazily because
# importing torchvision costs seconds that `lsexp --help` should not pay.
_IDX_CLASS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_CIFAR_CLASS = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}
# torchvision's CIFAR folder and file names (its `base_folder`, `train_list`, `test_list`,
# `meta`), so that a missing copy is found without importing torchvision; md5s are then
# checked with torchvision's own list (tests/test_data.py pins that the two agree).
CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", (*(f"data_batch_{i}" for i in range(1, 6)),
                                         "test_batch", "batches.meta")),
    "cifar100": ("cifar-100-python", ("train", "test", "meta")),
}  # fmt: skip
# The raw file names torchvision's MNIST classes read (their `resources`, minus ".gz").
_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dims (N, rows, cols)
_IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dim (N,)
_DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_BUNDLED_MINI = Path(__file__).resolve().parent.parent / "bundled" / "fashion_mnist_mini.npz"


def default_root() -> Path:
    """`$LSEXP_DATA` if set, else `${XDG_CACHE_HOME:-~/.cache}/lsexp/data`.

    A cache folder, not the working directory, so every sweep on a machine shares one copy.
    """
    env = os.environ.get("LSEXP_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(cache).expanduser() / "lsexp" / "data"


def _resolve_root(root: Path | str | None) -> Path:
    """The data root, refused with a message naming the setting if it is not a folder."""
    path = default_root() if root is None else Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise DataError(f"{_root_setting(root, path)} points at {path}, which is not a folder; "
                        "point it at a folder (it is created when data is imported)")  # fmt: skip
    return path


def _root_setting(root: Path | str | None, path: Path) -> str:
    """Which setting chose the data root, in the words a user would search for."""
    if root is not None:
        return "the data root (--root or data.root)"
    if os.environ.get("LSEXP_DATA"):
        return "$LSEXP_DATA"
    return "the default data root"


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")
    return DATASETS[name]


def _fix_hint(name: str, root: Path) -> str:
    """How to get dataset `name` into `root`: the end of every problem message.

    The commands read the root from `$LSEXP_DATA`, so when `root` is not the default
    the hint sets it; a user can paste the command as it is.
    """
    env = "" if _same_path(root, default_root()) else f"LSEXP_DATA={shlex.quote(str(root))} "
    fetch = f"`{env}lsexp data fetch {name}`"
    if name == "fashion_mnist" and _DEBIAN_FASHION_MNIST.is_dir():
        return f"run `{env}lsexp data import {name} {_DEBIAN_FASHION_MNIST}` or {fetch}"
    return (
        f"run {fetch} (needs internet) or `{env}lsexp data import {name} SOURCE` "
        f"with SOURCE {_import_source_help(name)}"
    )


def _import_source_help(name: str) -> str:
    """What `lsexp data import NAME SOURCE` accepts as SOURCE, in a few words."""
    if name in _IDX_CLASS:
        return "a folder holding the four *-ubyte.gz (or *-ubyte) files"
    tar = "cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz"
    return f"the official {tar} or the folder extracted from it"


def _describe(err: BaseException) -> str:
    """`Type: message` on one line, whatever newlines the message had."""
    return f"{type(err).__name__}: {' '.join(str(err).split()) or 'no detail'}"


def _same_path(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


# ---------------------------------------------------------------------------------------
# Checking: is a dataset complete? (never raises for a missing or broken dataset)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetStatus:
    """Whether a dataset is ready, and if not, one line saying what is wrong and the fix.

    `path` is where the dataset's files live: `<root>/<Class>/raw` for MNIST-type sets,
    `<root>/cifar-10-batches-py` or `<root>/cifar-100-python` for CIFAR, and the bundled
    .npz file for `fashion_mnist_mini` (which ignores the root).
    """

    name: str
    root: Path
    path: Path
    complete: bool
    problem: str | None
    state: str = "complete"  # complete | missing (no files) | corrupt (files, but broken)
    train_size: int | None = None  # images in the training split, when known without loading

    def require(self) -> None:
        if not self.complete:
            raise DataError(self.problem)


def check_dataset(name: str, root: Path | None = None) -> DatasetStatus:
    """Check that dataset `name` is complete under `root` (default: `default_root()`).

    Reads headers and checksums only, so it is cheap enough to run before every sweep.
    Raises `DataError` only for an unknown name.
    """
    info = _info(name)
    given = root
    root = _resolve_root(root)
    train_size: int | None = info.train_size
    if name == "fashion_mnist_mini":
        path, problem = _BUNDLED_MINI, None
        if not path.is_file():
            problem = (
                f"{name}: the bundled file {path} is missing; reinstall lsexp or rebuild it "
                "with `python scripts/build_mini_dataset.py`"
            )
    elif name in _IDX_CLASS:
        path = root / _IDX_CLASS[name] / "raw"
        problem = _check_idx(name, root, path)
        if problem is None:  # the header holds the count: cheap, and right for any copy
            train_size = _read_idx_header(path / _IDX_FILES[0])[1][0]
    else:
        path, problem = _check_cifar(name, root)
    if problem is None:
        return DatasetStatus(name, root, path, True, None, "complete", train_size)
    if given is None and os.environ.get("LSEXP_DATA"):
        problem += f" (the data root {root} comes from $LSEXP_DATA)"
    state = "missing" if not _has_files(path) else "corrupt"
    return DatasetStatus(name, root, path, False, problem, state, None)


def _has_files(path: Path) -> bool:
    if path.is_file():
        return True
    try:
        return path.is_dir() and any(p.is_file() for p in path.iterdir())
    except OSError:
        return False


def require_dataset(name: str, root: Path | None = None) -> None:
    """Raise `DataError` with the one-line problem and fix unless `name` is complete."""
    check_dataset(name, root).require()


def _read_idx_header(path: Path) -> tuple[int, tuple[int, ...]]:
    """The magic number and dims of an IDX file (LeCun's format: big-endian int32s).

    Raises ValueError when the file is too short to hold the header it announces.
    """
    with path.open("rb") as f:
        head = f.read(4)
        if len(head) < 4:
            raise ValueError("shorter than an IDX header")
        magic = int.from_bytes(head, "big")
        ndim = magic & 0xFF
        raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError("shorter than an IDX header")
    dims = tuple(int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    return magic, dims


def _check_idx(
    name: str,
    root: Path,
    raw: Path,
    fix: str | None = None,
    shown: Callable[[Path], Path] | None = None,
) -> str | None:
    """The first problem with the four IDX files in `raw`, or None if they are complete.

    A file's IDX header gives its exact length (4 + 4*ndim + prod(dims) bytes), so a
    size check finds truncated and padded copies without torchvision's md5 list, which
    cannot match Debian's recompressed .gz files anyway.
    """
    fix = fix or _fix_hint(name, root)
    shown = shown or (lambda path: path)  # an import names its source files, not staged ones
    missing = [f for f in _IDX_FILES if not (raw / f).is_file()]
    if problem := _missing_problem(name, raw, missing, len(_IDX_FILES), fix):
        return problem

    counts: dict[str, int] = {}
    for file in _IDX_FILES:
        path = raw / file
        images = "images" in file
        expected_magic = _IDX_IMAGES_MAGIC if images else _IDX_LABELS_MAGIC
        try:
            magic, dims = _read_idx_header(path)
        except (OSError, ValueError) as err:
            return f"{name}: {shown(path)} is unreadable or truncated ({err}); {fix}"
        if magic != expected_magic:
            return (
                f"{name}: {shown(path)} is not an IDX {'image' if images else 'label'} file "
                f"(magic {magic:#010x}, expected {expected_magic:#010x}); {fix}"
            )
        expected_size = 4 + 4 * len(dims) + math.prod(dims)
        size = path.stat().st_size
        if size != expected_size:
            return (
                f"{name}: {shown(path)} is truncated or corrupt ({size:,} bytes, its IDX header "
                f"implies {expected_size:,}); {fix}"
            )
        if images and dims[1:] != (28, 28):
            return f"{name}: {shown(path)} holds {dims[1]}x{dims[2]} images, expected 28x28; {fix}"
        counts[file] = dims[0]

    for split in ("train", "t10k"):
        n_images = counts[f"{split}-images-idx3-ubyte"]
        n_labels = counts[f"{split}-labels-idx1-ubyte"]
        if n_images != n_labels:
            return (
                f"{name}: {shown(raw / f'{split}-images-idx3-ubyte')} holds {n_images} images but "
                f"{split}-labels-idx1-ubyte holds {n_labels} labels; {fix}"
            )
    return None


def _missing_problem(
    name: str, folder: Path, missing: list[str], n_files: int, fix: str
) -> str | None:
    """One line for missing files: the file itself if one, the folder if all."""
    if not missing:
        return None
    if len(missing) == 1:
        return f"{name}: {folder / missing[0]} is missing; {fix}"
    if len(missing) == n_files:
        return f"{name}: not found (no dataset files in {folder}); {fix}"
    return f"{name}: {folder} lacks {', '.join(missing)}; {fix}"


def _check_cifar(
    name: str, root: Path, fix: str | None = None, shown: Path | None = None
) -> tuple[Path, str | None]:
    """CIFAR folder and its first problem: a missing file or an md5 mismatch.

    Uses torchvision's own file list and md5s, and calls `check_integrity` through the
    `torchvision.datasets.cifar` module so tests can patch it for fake batches.
    """
    base, names = CIFAR_FILES[name]
    folder = root / base
    fix = fix or _fix_hint(name, root)
    named = shown or folder  # an import names its source, not the staging folder
    missing = [file for file in names if not (folder / file).is_file()]
    if problem := _missing_problem(name, named, missing, len(names), fix):
        return folder, problem
    from torchvision.datasets import cifar  # only now: importing torchvision takes seconds

    cls = getattr(cifar, _CIFAR_CLASS[name])
    files = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
    for file, md5 in files:
        if not cifar.check_integrity(str(folder / file), md5):
            return folder, (
                f"{name}: {named / file} does not match torchvision's md5 {md5} "
                f"(corrupt or truncated); {fix}"
            )
    return folder, None


# ---------------------------------------------------------------------------------------
# Loading: whole splits as normalized tensors
# ---------------------------------------------------------------------------------------


@dataclass
class Splits:
    """Train / val / test tensors for one dataset, normalized and on one device.

    `val` is carved from the official training split by a seeded permutation, so every
    alpha and seed of a sweep sees the same split; `test` is the official test split.
    Images are float32 (N, C, H, W), normalized per channel with `mean` / `std` of the
    train part (after carving val, so val carries no information into training); labels
    are int64.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    info: DatasetInfo
    mean: tuple[float, ...]
    std: tuple[float, ...]


def load_splits(
    name: str,
    root: Path | None,
    val_size: int,
    split_seed: int = 0,
    device: str | torch.device = "cpu",
) -> Splits:
    """Load dataset `name` from `root` and split it into train / val / test tensors.

    `val_size` examples of the official training split become the validation set
    (0 <= val_size < training size), chosen by `torch.randperm` with a generator seeded
    with `split_seed`. Raises `DataError` for a missing or unreadable dataset.
    """
    import torch

    info = _info(name)
    root = _resolve_root(root)
    require_dataset(name, root)
    train_u8, train_y, test_x_u8, test_y = _load_uint8(name, root)

    n_train = train_u8.shape[0]
    if not isinstance(val_size, (int, np.integer)) or isinstance(val_size, bool):
        raise DataError(f"{name}: val_size must be an integer, got {val_size!r}")
    if not 0 <= val_size < n_train:
        raise DataError(
            f"{name}: val_size={val_size} does not fit its training split of {n_train} "
            f"examples; set data.val_size to an integer from 0 to {n_train - 1}"
        )
    val_size = int(val_size)
    generator = torch.Generator().manual_seed(split_seed)
    perm = torch.randperm(n_train, generator=generator)
    # Sorted, so each part keeps the official order and only the engine's seed decides
    # the order in which training sees examples.
    val_idx = perm[:val_size].sort().values
    train_idx = perm[val_size:].sort().values

    train_part = train_u8[train_idx]
    mean, std = _channel_stats(train_part, name)
    device = torch.device(device)

    def prepare(x_u8: torch.Tensor) -> torch.Tensor:
        # uint8 travels to the device (4x fewer bytes than float32). IEEE float32 sub and
        # div are correctly rounded, so normalizing there gives the same bits as on CPU.
        x = x_u8.to(device).to(torch.float32)
        m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        return x.sub_(m).div_(s)

    return Splits(
        train_x=prepare(train_part),
        train_y=train_y[train_idx].to(device),
        val_x=prepare(train_u8[val_idx]),
        val_y=train_y[val_idx].to(device),
        test_x=prepare(test_x_u8),
        test_y=test_y.to(device),
        info=info,
        mean=mean,
        std=std,
    )


def _channel_stats(x_u8: torch.Tensor, name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of uint8 images (N, C, H, W).

    Sums and sums of squares are exact integers (at most 255**2 * 50000 * 1024 < 2**63),
    so the variance n*sum(x^2) - sum(x)^2 has no cancellation error and needs no float64
    copy of the images (1.2 GB for CIFAR).
    """
    import torch

    means: list[float] = []
    stds: list[float] = []
    n = x_u8.shape[0] * x_u8.shape[2] * x_u8.shape[3]
    for c in range(x_u8.shape[1]):
        s = sq = 0
        for chunk in x_u8[:, c].split(4096):
            flat = chunk.reshape(-1).to(torch.int64)
            s += int(flat.sum())
            sq += int((flat * flat).sum())
        var = (n * sq - s * s) / (n * n)
        if var <= 0:
            raise DataError(
                f"{name}: every training pixel of channel {c} has the same value, so the "
                "data cannot be normalized; the files are corrupt: re-import or re-fetch them"
            )
        means.append(s / n)
        stds.append(math.sqrt(var))
    return tuple(means), tuple(stds)


_T = TypeVar("_T")


def _read_or_raise(what: str, fix: str, read: Callable[[], _T]) -> _T:
    """Run `read`, turning whatever torchvision or numpy raise on a bad file into DataError.

    torchvision signals corrupt files with asserts, pickle and value errors whose text
    does not name the file; `what` ("name: cannot read FILE") does, and `fix` ends it.
    """
    try:
        return read()
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure here means an unreadable file
        raise DataError(f"{what} ({_describe(err)}); {fix}") from err


def _load_uint8(
    name: str, root: Path
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Official train and test splits as uint8 (N, C, H, W) images and int64 labels."""
    import torch

    if name == "fashion_mnist_mini":
        return _load_mini()

    fix = _fix_hint(name, root)
    out: list[torch.Tensor] = []
    if name in _IDX_CLASS:
        raw = root / _IDX_CLASS[name] / "raw"
        for prefix in ("train", "t10k"):
            what = (
                f"{name}: cannot read {raw / f'{prefix}-images-idx3-ubyte'} or "
                f"{prefix}-labels-idx1-ubyte"
            )
            images, labels = _read_or_raise(what, fix, lambda p=prefix: _read_idx_pair(raw, p))
            out += [images.unsqueeze(1).contiguous(), labels]
        return out[0], out[1], out[2], out[3]
    import torchvision.datasets as tvd

    cls = getattr(tvd, _CIFAR_CLASS[name])
    folder = root / cls.base_folder
    for train, files in ((True, cls.train_list), (False, cls.test_list)):
        files_read = ", ".join([*(f for f, _ in files), cls.meta["filename"]])
        what = f"{name}: cannot read {folder} (one of {files_read})"
        ds = _read_or_raise(what, fix, lambda t=train: cls(str(root), train=t, download=False))
        # torchvision keeps CIFAR as (N, H, W, C) numpy; models want (N, C, H, W).
        x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2)
        out += [x.contiguous(), torch.as_tensor(ds.targets, dtype=torch.int64)]
    train_x, train_y, test_x, test_y = out
    return train_x, train_y, test_x, test_y


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """An unsigned-byte IDX file as a uint8 array of its header's shape.

    What torchvision's MNIST classes read from the same file (tests check it), without
    importing torchvision, which costs a sweep about 1 s of start-up. `check_dataset` has
    already checked the magic, the dims and the length; they are checked again here.
    """
    buf = path.read_bytes()
    found = int.from_bytes(buf[:4], "big")
    if found != magic:
        raise ValueError(f"magic {found:#010x}, expected {magic:#010x}")
    dims = [int.from_bytes(buf[4 + 4 * i : 8 + 4 * i], "big") for i in range(magic & 0xFF)]
    start = 4 + 4 * len(dims)
    if len(buf) != start + math.prod(dims):
        raise ValueError(f"{len(buf):,} bytes, its IDX header implies {start + math.prod(dims):,}")
    return np.frombuffer(buf, dtype=np.uint8, offset=start).reshape(dims)


def _read_idx_pair(raw: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of an MNIST-type dataset: (N, 28, 28) uint8 images and int64 labels."""
    import torch

    images = _read_idx(raw / f"{prefix}-images-idx3-ubyte", _IDX_IMAGES_MAGIC)
    labels = _read_idx(raw / f"{prefix}-labels-idx1-ubyte", _IDX_LABELS_MAGIC)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def _load_mini() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The bundled subset, from the arrays `scripts/build_mini_dataset.py` wrote."""
    import torch

    path = _BUNDLED_MINI
    what = f"fashion_mnist_mini: cannot read the bundled {path}"
    fix = "reinstall lsexp or rebuild it with `python scripts/build_mini_dataset.py`"

    def read() -> tuple[torch.Tensor, ...]:
        with np.load(path, allow_pickle=False) as npz:
            arrays = [
                npz[k] for k in ("train_images", "train_labels", "test_images", "test_labels")
            ]
        for images, labels in (arrays[:2], arrays[2:]):
            if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
                raise ValueError(f"images are {images.dtype} {images.shape}, not uint8 (N,28,28)")
            if labels.shape != images.shape[:1]:
                raise ValueError(f"{labels.shape[0]} labels for {images.shape[0]} images")
        return tuple(torch.from_numpy(a) for a in arrays)

    train_x, train_y, test_x, test_y = _read_or_raise(what, fix, read)
    return (
        train_x.unsqueeze(1).contiguous(),
        train_y.to(torch.int64),
        test_x.unsqueeze(1).contiguous(),
        test_y.to(torch.int64),
    )


# ---------------------------------------------------------------------------------------
# Getting data: download (fetch) or copy a local copy (import)
# ---------------------------------------------------------------------------------------


def fetch_dataset(name: str, root: Path | None = None) -> Path:
    """Download dataset `name` into `root` with torchvision, check it, return its folder.

    For users with internet; sweeps never call it. `fashion_mnist_mini` is bundled, so
    fetching it only returns the bundled file.
    """
    _info(name)
    root = _resolve_root(root)
    if name != "fashion_mnist_mini":
        import torchvision.datasets as tvd

        cls = getattr(tvd, {**_IDX_CLASS, **_CIFAR_CLASS}[name])
        folder = _IDX_CLASS[name] if name in _IDX_CLASS else CIFAR_FILES[name][0]
        # Download into a staging folder and move the dataset in only when it is whole:
        # a failed download (no network) leaves the root as it was.
        with _created_root(root), _staging_dir(root) as staging:
            for train in (True, False):
                try:
                    cls(str(staging), train=train, download=True)
                except Exception as err:  # noqa: BLE001 - network, disk and md5 errors alike
                    raise DataError(
                        f"{name}: download failed ({_describe(err)}); nothing was written to "
                        f"{root}. Check the network, or get the files another way and run "
                        f"`lsexp data import {name} SOURCE` with SOURCE "
                        f"{_import_source_help(name)}"
                    ) from err
            _swap_in(staging / folder, root / folder, staging)
    return _checked(name, root)


def import_dataset(name: str, source: Path, root: Path | None = None) -> Path:
    """Copy a local copy of dataset `name` from `source` into `root`; check; return its folder.

    MNIST-type: `source` is a folder with the four IDX files, gzipped (`*-ubyte.gz`, as
    in Debian's /usr/share/datasets/fashion-mnist) or not; they land uncompressed in
    `<root>/<Class>/raw/`, because torchvision would verify .gz files against md5s that
    recompressed copies cannot match. CIFAR: `source` is the official tar.gz, the folder
    extracted from it, or a folder containing either. Every file appears atomically, so
    an interrupted import leaves the old copy or the new one, never half a file.
    """
    _info(name)
    if name == "fashion_mnist_mini":
        raise DataError(
            "fashion_mnist_mini is bundled with lsexp and needs no import; use it as it is "
            "(to import the full set, use `lsexp data import fashion_mnist DIR`)"
        )
    root = _resolve_root(root)
    source = Path(source).expanduser()
    if not source.exists():
        raise DataError(
            f"{name}: import source {source} does not exist; give {_import_source_help(name)}"
        )
    with _created_root(root):
        if name in _IDX_CLASS:
            _import_idx(name, source, root)
        else:
            _import_cifar(name, source, root)
    return _checked(name, root)


def _checked(name: str, root: Path) -> Path:
    status = check_dataset(name, root)
    if not status.complete:
        raise DataError(status.problem)
    return status.path


def _import_idx(name: str, source: Path, root: Path) -> None:
    if not source.is_dir():
        raise DataError(
            f"{name}: import source {source} is not a folder; give {_import_source_help(name)}"
        )
    cls_name = _IDX_CLASS[name]
    # Also accept a torchvision root or raw folder, so an existing copy can be moved in.
    candidates = [source, source / "raw", source / cls_name / "raw"]
    dest_dir = root / cls_name / "raw"
    plan: list[tuple[Path, Path]] = []
    for file in _IDX_FILES:
        found = next(
            (
                folder / f
                for folder in candidates
                for f in (file, file + ".gz")
                if (folder / f).is_file()
            ),
            None,
        )
        if found is None:
            raise DataError(
                f"{name}: {source} has neither {file} nor {file}.gz; give the folder that "
                f"holds the four IDX files (e.g. Debian's {_DEBIAN_FASHION_MNIST})"
            )
        plan.append((found, dest_dir / file))

    if all(dest.exists() and os.path.samefile(src, dest) for src, dest in plan):
        return  # importing a root onto itself: nothing to copy
    # Decompress into a staging folder in the root and check the copies there; only a
    # complete, valid set replaces what the root held, so garbage never lands in it.
    with _staging_dir(root) as staging:
        source_of = {staging / dest.name: src for src, dest in plan}
        for src, dest in plan:
            gzipped = src.suffix == ".gz"
            try:
                opener = gzip.open if gzipped else open
                with opener(src, "rb") as f:
                    atomic_copy(f, staging / dest.name)
            except (OSError, EOFError, zlib.error) as err:
                raise DataError(
                    f"{name}: cannot {'gunzip' if gzipped else 'copy'} {src} "
                    f"({_describe(err)}); nothing was imported. Check the source file (a "
                    "partial download?) and the space left in the root"
                ) from err
        fix = f"nothing was imported; give a complete copy of the four IDX files ({source})"
        problem = _check_idx(name, root, staging, fix, lambda p: source_of.get(p, p))
        if problem is not None:
            raise DataError(problem)
        dest_dir.mkdir(parents=True, exist_ok=True)
        for _, dest in plan:
            os.replace(staging / dest.name, dest)


def _import_cifar(name: str, source: Path, root: Path) -> None:
    from torchvision.datasets import cifar

    cls = getattr(cifar, _CIFAR_CLASS[name])
    base, archive = cls.base_folder, cls.filename
    if source.is_file():
        kind, src = "tar", source
    elif source.name == base:
        kind, src = "dir", source
    elif (source / base).is_dir():
        kind, src = "dir", source / base
    elif (source / archive).is_file():
        kind, src = "tar", source / archive
    else:
        raise DataError(
            f"{name}: {source} is neither {archive}, a {base} folder, nor a folder holding "
            f"one of them; give the official {archive} or the folder extracted from it"
        )
    dest = root / base
    if kind == "dir" and dest.exists() and os.path.samefile(src, dest):
        return  # importing the root's own copy: nothing to copy

    with _staging_dir(root) as staging:
        if kind == "tar":
            _extract_tar(name, src, staging, base)
        else:
            shutil.copytree(src, staging / base)
        # Check the staged copy against torchvision's md5s before it replaces anything.
        fix = f"nothing was imported; give the official {archive} or its extracted folder"
        _, problem = _check_cifar(name, staging, fix, shown=src if kind == "dir" else src / base)
        if problem is not None:
            raise DataError(problem)
        _swap_in(staging / base, dest, staging)


@contextlib.contextmanager
def _created_root(root: Path) -> Iterator[None]:
    """Create `root` if needed; if what follows fails, remove the folders made here."""
    made = [p for p in (root, *root.parents) if not p.exists()]
    root.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for p in made:  # deepest first; only folders that are still empty
            with contextlib.suppress(OSError):
                p.rmdir()
        raise


@contextlib.contextmanager
def _staging_dir(root: Path) -> Iterator[Path]:
    """A temp folder inside `root`, so moving its contents into `root` is a rename."""
    staging = Path(tempfile.mkdtemp(prefix=".lsexp-import-", dir=root))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_tar(name: str, archive: Path, staging: Path, base: str) -> None:
    """Extract the `base/` folder of a CIFAR tarball into `staging`."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            # Only plain files and folders under base/: no links, devices or "..", so a
            # hostile archive cannot write outside the staging folder.
            members = [
                m
                for m in tar.getmembers()
                if (m.isfile() or m.isdir())
                and Path(m.name).parts[:1] == (base,)
                and ".." not in Path(m.name).parts
            ]
            if not any(m.isfile() for m in members):
                raise DataError(
                    f"{name}: {archive} has no {base}/ folder; give the official "
                    f"{'cifar-10' if name == 'cifar10' else 'cifar-100'}-python.tar.gz"
                )
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                tar.extractall(staging, members=members, filter="data")
            else:
                tar.extractall(staging, members=members)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{name}: cannot extract {archive} ({_describe(err)}); the archive is corrupt "
            "or truncated (download it again), or the root has no space left"
        ) from err


def _swap_in(new: Path, dest: Path, staging: Path) -> None:
    """Replace folder `dest` with `new` by renames, so `dest` is never half-written.

    A folder cannot be replaced by `os.replace` while it has contents, so the old one is
    first renamed into the staging folder (deleted with it); between the two renames
    `dest` is briefly absent, which a reader sees as "missing", never as corrupt.
    """
    if dest.exists():
        os.replace(dest, staging / (dest.name + ".old"))
    os.replace(new, dest)


__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DatasetInfo",
    "DatasetStatus",
    "Splits",
    "check_dataset",
    "default_root",
    "fetch_dataset",
    "import_dataset",
    "load_splits",
    "require_dataset",
]
