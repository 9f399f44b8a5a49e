"""`lsexp sweep --workers N`: N worker processes on this machine share one sweep.

Why processes: on a GPU that one small run leaves under-used, several processes overlap
their kernels, and on a many-core CPU several one-run-each processes can use the cores
better than one run spread over all of them. On this project's 2-core CPU `make bench`
found no gain beyond its noise (README, Performance, and `workers2_vs_1` in
benchmarks/results.json), so the default stays 1. Not yet measured on a GPU
(benchmarks/gpu_check.py).

Each worker is an ordinary `lsexp sweep ... --shard 0/1` (the whole plan, no folder
lock) and the per-run claims make sure every run is trained once: a worker skips a run
another one holds, so the work balances itself. The parent holds the folder lock (a
second plain sweep is refused, as usual), splits the CPU threads evenly, relays each
worker's output with a `[wI]` prefix, forwards Ctrl-C / SIGTERM as one stop request per
worker (a second Ctrl-C kills them) and exits with the most serious worker exit code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from lsexp.errors import EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_RUN_FAILED, EXIT_USAGE

WORKERS_ENV = "LSEXP_WORKERS"  # tells a worker how many share the machine (provenance)
PARENT_ENV = "LSEXP_WORKERS_PARENT"  # the parent's pid: a worker stops when it is gone

# A worker's exit code, most serious first: what the parent exits with.
_SEVERITY = (EXIT_INTERRUPTED, EXIT_USAGE, EXIT_LOCKED, EXIT_RUN_FAILED)


def worker_command(
    config_path: Path,
    overrides: Sequence[str],
    out_dir: Path,
    *,
    device: str | None,
    retry_failed: bool,
    force_new: bool,
    claim_grace: float,
    compile: bool = False,
) -> list[str]:
    cmd = [sys.executable, "-m", "lsexp", "sweep", str(config_path), *overrides,
           "--out", str(out_dir), "--shard", "0/1", "--claim-grace", str(claim_grace)]  # fmt: skip
    if device:
        cmd += ["--device", device]
    if retry_failed:
        cmd.append("--retry-failed")
    if force_new:
        cmd.append("--force-new")
    if compile:
        cmd.append("--compile")
    return cmd


def threads_per_worker(n_workers: int, total_threads: int) -> int:
    return max(1, total_threads // n_workers)


def combine_exit_codes(codes: Sequence[int]) -> int:
    for code in _SEVERITY:
        if code in codes:
            return code
    return next((c for c in codes if c != 0), 0)


def run_workers(
    cmd: list[str],
    n_workers: int,
    total_threads: int,
    emit: Callable[[str], None],
) -> list[int]:
    """Start `n_workers` copies of `cmd`, relay their output, return their exit codes."""
    threads = threads_per_worker(n_workers, total_threads)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           WORKERS_ENV: str(n_workers), PARENT_ENV: str(os.getpid()),
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    procs: list[subprocess.Popen] = []
    stops = 0

    def on_signal(signum, frame) -> None:
        nonlocal stops
        stops += 1
        hard = stops > 1 and signum == signal.SIGINT
        emit("killing the workers" if hard else "stopping the workers at the next batch ...")
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL if hard else signal.SIGTERM)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    relays = []
    try:
        for i in range(n_workers):
            # Own session: a terminal's Ctrl-C reaches the parent only, which forwards it
            # once per worker (two SIGINTs would force a worker out mid-batch).
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                 text=True, bufsize=1, start_new_session=True,
                                 preexec_fn=_stop_with_parent)  # fmt: skip
            procs.append(p)
            relay = threading.Thread(target=_relay, args=(p, f"[w{i}] ", emit), daemon=True)
            relay.start()
            relays.append(relay)
        codes = [p.wait() for p in procs]
        for relay in relays:
            relay.join(timeout=5)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for p in procs:  # only if the parent itself is failing: leave no orphans
            if p.poll() is None:
                p.kill()
    if stops and EXIT_INTERRUPTED not in codes:
        codes.append(EXIT_INTERRUPTED)  # stopped on request, even if a worker had just ended
    return codes


def _stop_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGTERM (a stop request) when the parent
    dies. Elsewhere the worker's own check of its parent pid does the same, a batch later."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _relay(proc: subprocess.Popen, prefix: str, emit: Callable[[str], None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        emit(prefix + line.rstrip("\n"))
