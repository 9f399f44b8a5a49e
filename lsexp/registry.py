"""`by_name`: how every registry in lsexp (DATASETS, OBJECTIVES, CALIBRATORS, SCORES) is built.

A registry is a dict from a name to the entry that declares it, in the order declared (the
order tables and `--help` list them in). A name given twice is a mistake in the code: the
later entry would silently replace the earlier, so it is refused at import time.
"""

from __future__ import annotations

from typing import Protocol, TypeVar


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


def by_name(*entries: T) -> dict[str, T]:
    """{entry.name: entry} in the order given; ValueError if a name repeats."""
    registry: dict[str, T] = {}
    for entry in entries:
        if entry.name in registry:
            raise ValueError(f"{entry.name!r} is declared twice")
        registry[entry.name] = entry
    return registry
