"""Data layer: checks, loading and splits, import, the bundled mini set. No network."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import lsexp
from lsexp.errors import DataError
from lsexp.training import data
from lsexp.training.data import (
    DATASET_NAMES,
    DATASETS,
    check_dataset,
    fetch_dataset,
    import_dataset,
    load_splits,
    require_dataset,
)
from tests.fakedata import (
    IDX_FILES,
    decode_index,
    fake_label,
    write_fake_cifar,
    write_fake_cifar_tarball,
    write_fake_mnist,
)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
MINI_TRAIN_PER_CLASS = 500  # as built by scripts/build_mini_dataset.py
MINI_TEST_PER_CLASS = 200


@pytest.fixture
def patched_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept fake CIFAR batches, whose md5s cannot match torchvision's list."""
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)


def denormalized_pixels(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]):
    """The first two uint8 pixels of channel 0 of each normalized image (the fake index)."""
    flat = x[:, 0].reshape(len(x), -1)[:, :2].double() * std[0] + mean[0]
    return flat.round().to(torch.uint8).numpy()


def assert_one_line(message: str) -> None:
    assert message and "\n" not in message


# ---------------------------------------------------------------------------------------
# Registry and roots
# ---------------------------------------------------------------------------------------


def test_registry_matches_names() -> None:
    assert tuple(DATASETS) == DATASET_NAMES
    for name, info in DATASETS.items():
        assert info.name == name
        assert len(info.classes) == info.num_classes == len(set(info.classes))
    assert DATASETS["cifar100"].num_classes == 100
    assert DATASETS["fashion_mnist_mini"].classes == DATASETS["fashion_mnist"].classes


def test_default_root_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LSEXP_DATA", str(tmp_path / "d"))
    assert data.default_root() == tmp_path / "d"
    monkeypatch.delenv("LSEXP_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.default_root() == tmp_path / "cache" / "lsexp" / "data"


def test_unknown_name_lists_valid_names(tmp_path: Path) -> None:
    for call in (
        lambda: check_dataset("svhn", tmp_path),
        lambda: load_splits("svhn", tmp_path, val_size=1),
        lambda: import_dataset("svhn", tmp_path, tmp_path),
    ):
        with pytest.raises(DataError) as err:
            call()
        assert "svhn" in str(err.value)
        assert all(name in str(err.value) for name in DATASET_NAMES)


# ---------------------------------------------------------------------------------------
# MNIST-type datasets
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "cls"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_fake_mnist_load_splits(tmp_path: Path, name: str, cls: str) -> None:
    write_fake_mnist(tmp_path, cls, n_train=60, n_test=20)
    assert check_dataset(name, tmp_path).complete
    s = load_splits(name, tmp_path, val_size=12, split_seed=0)

    assert s.train_x.shape == (48, 1, 28, 28) and s.train_x.dtype == torch.float32
    assert s.val_x.shape == (12, 1, 28, 28) and s.test_x.shape == (20, 1, 28, 28)
    for y in (s.train_y, s.val_y, s.test_y):
        assert y.dtype == torch.int64
    assert s.info is DATASETS[name] and len(s.mean) == len(s.std) == 1
    # Normalized with statistics of the train part.
    assert abs(s.train_x.double().mean().item()) < 1e-5
    assert s.train_x.double().std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)

    # Train and val partition the official training split, images stay with their labels,
    # and each part keeps the official order.
    train_idx = decode_index(denormalized_pixels(s.train_x, s.mean, s.std))
    val_idx = decode_index(denormalized_pixels(s.val_x, s.mean, s.std))
    assert sorted([*train_idx, *val_idx]) == list(range(60))
    assert list(train_idx) == sorted(train_idx) and list(val_idx) == sorted(val_idx)
    assert s.train_y.tolist() == list(fake_label(train_idx))
    assert s.val_y.tolist() == list(fake_label(val_idx))
    test_idx = decode_index(denormalized_pixels(s.test_x, s.mean, s.std))
    assert list(test_idx) == list(range(20))


def test_split_is_deterministic_and_seeded(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path, "MNIST", n_train=60, n_test=20)
    a = load_splits("mnist", tmp_path, val_size=10, split_seed=0)
    b = load_splits("mnist", tmp_path, val_size=10, split_seed=0)
    c = load_splits("mnist", tmp_path, val_size=10, split_seed=1)
    for field in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert a.mean == b.mean and a.std == b.std
    val_a = decode_index(denormalized_pixels(a.val_x, a.mean, a.std))
    val_c = decode_index(denormalized_pixels(c.val_x, c.mean, c.std))
    assert set(val_a) != set(val_c)
    assert torch.equal(a.test_y, c.test_y)  # the test split never depends on the seed


def test_val_size_zero_and_bounds(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path, "MNIST", n_train=30, n_test=10)
    s = load_splits("mnist", tmp_path, val_size=0)
    assert s.val_x.shape == (0, 1, 28, 28) and s.train_x.shape[0] == 30
    for bad in (30, 31, -1):
        with pytest.raises(DataError) as err:
            load_splits("mnist", tmp_path, val_size=bad)
        assert_one_line(str(err.value))
        assert "val_size" in str(err.value) and "30" in str(err.value)


def test_missing_file_names_file_and_fix(tmp_path: Path) -> None:
    raw = write_fake_mnist(tmp_path, "FashionMNIST")
    (raw / "t10k-labels-idx1-ubyte").unlink()
    status = check_dataset("fashion_mnist", tmp_path)  # reports, never raises
    assert not status.complete and status.path == raw
    assert str(raw / "t10k-labels-idx1-ubyte") in status.problem
    assert "lsexp data import fashion_mnist" in status.problem
    assert "lsexp data fetch fashion_mnist" in status.problem
    assert_one_line(status.problem)
    with pytest.raises(DataError) as err:
        load_splits("fashion_mnist", tmp_path, val_size=5)
    assert str(err.value) == status.problem


def test_absent_dataset_is_reported_not_raised(tmp_path: Path) -> None:
    for name in ("mnist", "fashion_mnist", "cifar10", "cifar100"):
        status = check_dataset(name, tmp_path)
        assert not status.complete and status.root == tmp_path
        assert f"lsexp data fetch {name}" in status.problem
        assert_one_line(status.problem)
        with pytest.raises(DataError):
            require_dataset(name, tmp_path)


def test_truncated_idx_file(tmp_path: Path) -> None:
    raw = write_fake_mnist(tmp_path, "MNIST")
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError) as err:
        require_dataset("mnist", tmp_path)
    assert str(path) in str(err.value) and "truncated" in str(err.value)
    assert_one_line(str(err.value))


def test_wrong_magic_and_count_mismatch(tmp_path: Path) -> None:
    raw = write_fake_mnist(tmp_path, "MNIST", n_train=60)
    labels = raw / "train-labels-idx1-ubyte"
    good = labels.read_bytes()
    labels.write_bytes(b"\x00\x00\x08\x03" + good[4:])  # an image magic on a label file
    assert "magic" in check_dataset("mnist", tmp_path).problem
    # A well-formed label file that holds one label fewer than there are images.
    labels.write_bytes(b"\x00\x00\x08\x01" + (59).to_bytes(4, "big") + good[8:-1])
    problem = check_dataset("mnist", tmp_path).problem
    assert "60 images" in problem and "59 labels" in problem


# ---------------------------------------------------------------------------------------
# CIFAR
# ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("patched_md5")
@pytest.mark.parametrize(("name", "n_per_batch"), [("cifar10", 20), ("cifar100", 300)])
def test_fake_cifar_load_splits(tmp_path: Path, name: str, n_per_batch: int) -> None:
    write_fake_cifar(tmp_path, name, n_per_batch=n_per_batch)
    n_train = n_per_batch * (5 if name == "cifar10" else 1)
    s = load_splits(name, tmp_path, val_size=10)
    assert s.train_x.shape == (n_train - 10, 3, 32, 32) and s.train_x.dtype == torch.float32
    assert s.val_x.shape == (10, 3, 32, 32) and s.test_x.shape == (n_per_batch, 3, 32, 32)
    assert s.train_y.dtype == torch.int64 and len(s.mean) == len(s.std) == 3
    channel_means = s.train_x.double().mean(dim=(0, 2, 3))
    assert torch.allclose(channel_means, torch.zeros(3, dtype=torch.float64), atol=1e-5)
    assert s.info.num_classes == (10 if name == "cifar10" else 100)
    # (N, H, W, C) -> (N, C, H, W) happened: channel 0, row 0 holds the index code.
    train_idx = decode_index(denormalized_pixels(s.train_x, s.mean, s.std))
    val_idx = decode_index(denormalized_pixels(s.val_x, s.mean, s.std))
    assert sorted([*train_idx, *val_idx]) == list(range(n_train))
    assert s.train_y.tolist() == list(fake_label(train_idx, num_classes=s.info.num_classes))
    if name == "cifar100":
        assert set(torch.cat([s.train_y, s.val_y]).tolist()) == set(range(100))


def test_cifar_md5_failure_names_file(tmp_path: Path) -> None:
    folder = write_fake_cifar(tmp_path, "cifar10")  # check_integrity not patched
    status = check_dataset("cifar10", tmp_path)
    assert not status.complete and status.path == folder
    assert str(folder / "data_batch_1") in status.problem and "md5" in status.problem
    assert "lsexp data fetch cifar10" in status.problem
    with pytest.raises(DataError) as err:
        load_splits("cifar10", tmp_path, val_size=10)
    assert "data_batch_1" in str(err.value)
    assert_one_line(str(err.value))


def test_cifar_missing_batch(tmp_path: Path, patched_md5: None) -> None:
    folder = write_fake_cifar(tmp_path, "cifar100")
    (folder / "test").unlink()
    problem = check_dataset("cifar100", tmp_path).problem
    assert str(folder / "test") in problem and "lsexp data import cifar100" in problem


def test_corrupt_cifar_batch_becomes_data_error(tmp_path: Path, patched_md5: None) -> None:
    folder = write_fake_cifar(tmp_path, "cifar10")
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError) as err:
        load_splits("cifar10", tmp_path, val_size=10)
    assert str(folder) in str(err.value) and "data_batch_3" in str(err.value)
    assert_one_line(str(err.value))


# ---------------------------------------------------------------------------------------
# Import and fetch
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [True, False])
def test_import_idx_folder(tmp_path: Path, gzipped: bool) -> None:
    source = tmp_path / "source"
    raw = write_fake_mnist(tmp_path / "made", "FashionMNIST", gz_dir=source if gzipped else None)
    if not gzipped:
        shutil.copytree(raw, source)
    root = tmp_path / "root"
    path = import_dataset("fashion_mnist", source, root)
    assert path == root / "FashionMNIST" / "raw"
    for file in IDX_FILES:
        assert (path / file).read_bytes() == (raw / file).read_bytes()
    assert not [p for p in path.iterdir() if p.name.startswith(".")]  # no temp files left
    assert load_splits("fashion_mnist", root, val_size=10).test_x.shape == (20, 1, 28, 28)
    # Importing again over a complete copy replaces it in place.
    assert import_dataset("fashion_mnist", source, root) == path


def test_import_idx_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        import_dataset("mnist", tmp_path / "nowhere", tmp_path / "root")
    source = tmp_path / "gz"
    write_fake_mnist(tmp_path / "made", "MNIST", gz_dir=source)
    (source / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        import_dataset("mnist", source, tmp_path / "root")
    # A truncated .gz (an interrupted download) is refused, naming the file.
    write_fake_mnist(tmp_path / "made", "MNIST", gz_dir=source)
    bad = source / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(DataError) as err:
        import_dataset("mnist", source, tmp_path / "root")
    assert str(bad) in str(err.value)
    assert_one_line(str(err.value))
    with pytest.raises(DataError, match="bundled"):
        import_dataset("fashion_mnist_mini", source, tmp_path / "root")


@pytest.mark.usefixtures("patched_md5")
@pytest.mark.parametrize("form", ["tarball", "extracted", "parent", "folder_with_tarball"])
@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_import_cifar(tmp_path: Path, name: str, form: str) -> None:
    tar_name = "cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz"
    base = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    if form in ("tarball", "folder_with_tarball"):
        write_fake_cifar_tarball(downloads / tar_name, name, n_per_batch=20)
        source = downloads / tar_name if form == "tarball" else downloads
    else:
        write_fake_cifar(downloads, name, n_per_batch=20)
        source = downloads / base if form == "extracted" else downloads
    root = tmp_path / "root"
    for _ in range(2):  # a second import replaces the first copy
        path = import_dataset(name, source, root)
        assert path == root / base
        assert sorted(p.name for p in root.iterdir()) == [base]  # no staging left behind
    n_train = 100 if name == "cifar10" else 20
    s = load_splits(name, root, val_size=5)
    assert s.train_x.shape == (n_train - 5, 3, 32, 32) and s.test_x.shape == (20, 3, 32, 32)


def test_import_cifar_refuses_bad_sources(tmp_path: Path, patched_md5: None) -> None:
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        import_dataset("cifar10", tmp_path, tmp_path / "root")  # empty folder
    bogus = tmp_path / "cifar-10-python.tar.gz"
    bogus.write_bytes(gzip.compress(b"not a tar"))
    with pytest.raises(DataError, match="cannot extract"):
        import_dataset("cifar10", bogus, tmp_path / "root")
    # An archive whose member tries to escape the root is refused, and nothing escapes.
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload"
    payload.write_bytes(b"x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="cifar-10-batches-py/../../escaped")
    with pytest.raises(DataError):
        import_dataset("cifar10", evil, tmp_path / "root")
    assert not (tmp_path / "escaped").exists()


def test_fetch_failure_is_data_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Offline:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise OSError("Name or service not known")

    monkeypatch.setattr("torchvision.datasets.MNIST", Offline)
    with pytest.raises(DataError) as err:
        fetch_dataset("mnist", tmp_path)
    assert "download" in str(err.value) and "lsexp data import mnist" in str(err.value)
    bundled = Path(lsexp.__file__).resolve().parent / "bundled" / "fashion_mnist_mini.npz"
    assert fetch_dataset("fashion_mnist_mini", tmp_path) == bundled  # shipped, never fetched


# ---------------------------------------------------------------------------------------
# Bundled mini set
# ---------------------------------------------------------------------------------------


def test_bundled_mini_set(tmp_path: Path) -> None:
    status = check_dataset("fashion_mnist_mini", tmp_path / "ignored")
    assert status.complete and status.path.is_file()
    assert status.path.stat().st_size < 4_000_000
    s = load_splits("fashion_mnist_mini", None, val_size=1000)
    assert s.info.num_classes == 10 and s.train_x.shape[1:] == (1, 28, 28)
    assert s.train_x.shape[0] == 10 * MINI_TRAIN_PER_CLASS - 1000 and s.val_x.shape[0] == 1000
    train_counts = torch.cat([s.train_y, s.val_y]).bincount(minlength=10)
    assert train_counts.tolist() == [MINI_TRAIN_PER_CLASS] * 10
    assert s.test_y.bincount(minlength=10).tolist() == [MINI_TEST_PER_CLASS] * 10
    # Real images, not noise: Fashion-MNIST's mean pixel is about 0.286 * 255.
    assert 60 < s.mean[0] < 85 and 75 < s.std[0] < 100


# ---------------------------------------------------------------------------------------
# Real data (Debian's dataset-fashion-mnist)
# ---------------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist absent")
def test_real_fashion_mnist_from_debian(tmp_path: Path) -> None:
    path = import_dataset("fashion_mnist", DEBIAN_FASHION_MNIST, tmp_path)
    sizes = {file: (path / file).stat().st_size for file in IDX_FILES}
    assert sizes == {
        "train-images-idx3-ubyte": 47_040_016,
        "train-labels-idx1-ubyte": 60_008,
        "t10k-images-idx3-ubyte": 7_840_016,
        "t10k-labels-idx1-ubyte": 10_008,
    }
    s = load_splits("fashion_mnist", tmp_path, val_size=5000)
    assert (len(s.train_x), len(s.val_x), len(s.test_x)) == (55_000, 5_000, 10_000)
    assert s.test_y.bincount(minlength=10).tolist() == [1000] * 10
    # The import is a byte-exact gunzip of Debian's file.
    with gzip.open(DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz", "rb") as f:
        expected = hashlib.sha256(f.read()).hexdigest()
    got = hashlib.sha256((path / "t10k-images-idx3-ubyte").read_bytes()).hexdigest()
    assert got == expected
    assert np.isclose(s.mean[0], 0.2860 * 255, atol=0.5)


# ---------------------------------------------------------------------------------------
# lsexp's own IDX reader (no torchvision import on the sweep path)
# ---------------------------------------------------------------------------------------


def test_idx_reader_matches_torchvision(tmp_path):
    import torchvision.datasets as tvd

    write_fake_mnist(tmp_path, "FashionMNIST", n_train=70, n_test=30)
    ours = data._load_uint8("fashion_mnist", tmp_path)
    for i, train in enumerate((True, False)):
        ds = tvd.FashionMNIST(str(tmp_path), train=train, download=False)
        assert torch.equal(ours[2 * i], ds.data.unsqueeze(1))
        assert torch.equal(ours[2 * i + 1], ds.targets.to(torch.int64))
        assert ours[2 * i].dtype == torch.uint8 and ours[2 * i + 1].dtype == torch.int64


def test_loading_a_sweep_does_not_import_torchvision_or_scipy(tmp_path):
    write_fake_mnist(tmp_path, "FashionMNIST", n_train=70, n_test=30)
    code = "\n".join([
        "import sys, pathlib",
        "from lsexp.running import sweep",
        "from lsexp.training.data import load_splits",
        f"load_splits('fashion_mnist', pathlib.Path({str(tmp_path)!r}), 10)",
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torchvision', 'scipy'}))",
    ])  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
