"""Build lsexp/bundled/fashion_mnist_mini.npz, the small real dataset behind the quickstart.

    python scripts/build_mini_dataset.py [SOURCE_DIR]

SOURCE_DIR holds Fashion-MNIST's four `*-ubyte.gz` files (default: Debian's
dataset-fashion-mnist at /usr/share/datasets/fashion-mnist). The subset is stratified and
seeded, so rebuilding from the same files gives the same arrays: TRAIN_PER_CLASS images
of each class from the official training split and TEST_PER_CLASS from the official test
split, kept in their official order. The counts are the largest round numbers that keep
the compressed file under MAX_BYTES, so the package stays small.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np

DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
OUTPUT = Path(__file__).resolve().parent.parent / "lsexp" / "bundled" / "fashion_mnist_mini.npz"
TRAIN_PER_CLASS = 500
TEST_PER_CLASS = 200
SEED = 0
NUM_CLASSES = 10
MAX_BYTES = 4_000_000


def read_idx_gz(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzipped), checking its header against its length.

    Format (LeCun's MNIST page): magic 0x00000800 + ndim, then ndim big-endian int32
    sizes, then the bytes.
    """
    raw = gzip.decompress(path.read_bytes())
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x800 + ndim:
        raise SystemExit(f"{path}: IDX magic {magic:#010x}, expected {0x800 + ndim:#010x}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) != offset + int(np.prod(dims)):
        raise SystemExit(
            f"{path}: {len(raw)} bytes, header {dims} implies {offset + np.prod(dims)}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def stratified_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """`per_class` indices of each class drawn without replacement, returned sorted."""
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False)
        for c in range(NUM_CLASSES)
    ]
    return np.sort(np.concatenate(chosen))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(SEED)
    arrays: dict[str, np.ndarray] = {}
    for split, prefix, per_class in (
        ("train", "train", TRAIN_PER_CLASS),
        ("test", "t10k", TEST_PER_CLASS),
    ):
        images = read_idx_gz(args.source / f"{prefix}-images-idx3-ubyte.gz", ndim=3)
        labels = read_idx_gz(args.source / f"{prefix}-labels-idx1-ubyte.gz", ndim=1)
        keep = stratified_indices(labels, per_class, rng)
        arrays[f"{split}_images"] = np.ascontiguousarray(images[keep])
        arrays[f"{split}_labels"] = labels[keep].astype(np.int64)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, **arrays)
    data = args.output.read_bytes()
    for key, value in arrays.items():
        print(f"{key}: shape {value.shape} dtype {value.dtype}")
    print(f"per class: {TRAIN_PER_CLASS} train, {TEST_PER_CLASS} test (seed {SEED})")
    print(f"{args.output}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    if len(data) >= MAX_BYTES:
        print(f"too large: must stay under {MAX_BYTES:,} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
