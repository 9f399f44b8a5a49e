"""Worker processes for the report's independent pieces (runs, bootstrap methods, figures).

One place for what every parallel step of the report needs: how many CPUs this process may
use, from how many runs a pool pays for its start-up, whether workers may be forked, and
the pool itself (one BLAS thread per worker: the processes are the threads).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor

PARALLEL_MIN_RUNS = 16  # fewer runs than this: done in this process (a worker costs ~0.1-1 s)


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Fork only on Linux: macOS can fork, but its system libraries are not fork-safe.
    A forked worker inherits the caller's data, so nothing large is pickled."""
    return sys.platform.startswith("linux")


def process_pool(jobs: int) -> ProcessPoolExecutor:
    """`jobs` worker processes, forked where `can_fork`, spawned elsewhere, each limited
    to one BLAS thread. Spawned workers re-import the caller's __main__; callers that pass
    data through module globals must check `can_fork` first."""
    import multiprocessing
    from concurrent import futures  # looked up at call time (tests wrap the pool class)

    ctx = multiprocessing.get_context("fork" if can_fork() else "spawn")
    return futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                                       initializer=_one_blas_thread)  # fmt: skip


def _one_blas_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # kept for the worker's life (no context manager to undo it)
