"""Atomic file writes, shared by the results store and the dataset import.

A file written here is always either the old or the new complete file, never a partial
one, even if the process is killed or the disk fills: the bytes go to a temp file in the
same folder (same file system, so the rename is atomic), are fsynced, and `os.replace`
puts the temp file in place; the folder is then fsynced so the rename itself survives a
crash. Standard library only, so any module can use it without an import cycle.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def current_umask() -> int:
    """The process umask (reading it needs setting it; it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Create or replace `path` with what `write(file)` writes, atomically.

    The new file gets mode 0o666 minus the umask, as any new file would (mkstemp creates
    0o600 files; results and datasets are meant to be shared like any other file). The
    temp file is named `.<name>.<random>.tmp`, so a leftover one is easy to recognise.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is always the old or the new complete file."""
    atomic_write(path, lambda f: f.write(data))


def atomic_copy(source: IO[bytes], path: Path) -> None:
    """Stream the open file `source` into `path` atomically, 1 MiB at a time."""
    atomic_write(path, lambda f: shutil.copyfileobj(source, f, length=1 << 20))
