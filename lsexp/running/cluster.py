"""Spreading a sweep over machines: `--shard I/N` and Slurm job arrays through submitit.

lsexp has no scheduler of its own. Runs are independent and their ids deterministic, so
a sweep splits by position in the plan (`--shard I/N`), and every worker writes into one
shared results folder, where per-run claim files (see `store.RunClaim`) keep two workers
off the same run. `submit` hands the pending runs to submitit's `AutoExecutor.map_array`
as one Slurm job array (one task per run; distillation students in a second array that
starts once the first, holding their teachers, has ended); its "local" and "debug" executors run the
same tasks without Slurm. tests/test_slurm.py runs the Slurm path against a real one-node
cluster (scripts/slurm-local.sh) when one answers.

A task that Slurm stops does not lose the sweep: at the job's time limit the task stops its
run at the next batch and records it as failed, with the limit in the error (resubmit with
a larger --timeout-min and --retry-failed); a task cancelled with `scancel` leaves its run
pending, so submitting the sweep again trains it.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsexp.config import SweepConfig, config_data, validate
from lsexp.errors import LsexpError
from lsexp.results.store import ResultsStore, plan_runs

EXECUTORS = ("slurm", "local", "debug")
# At most this many array tasks run at once (sbatch --array=...%64), so that one sweep does
# not take a whole partition; submitit's own default is 256.
ARRAY_PARALLELISM = 64


def parse_shard(text: str | None, environ: dict[str, str] | None = None) -> tuple[int, int] | None:
    """`"I/N"` -> (I, N) with 0 <= I < N. Without text, from a Slurm array task, else None.

    Under Slurm, the task's index is SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN (arrays
    may start at 1) and the count SLURM_ARRAY_TASK_COUNT.
    """
    env = os.environ if environ is None else environ
    if text is None:
        if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
            return None
        try:
            index = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            count = int(env["SLURM_ARRAY_TASK_COUNT"])
        except ValueError:
            raise LsexpError(
                "SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT are not integers; pass --shard I/N"
            ) from None
        text = f"{index}/{count}"
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise LsexpError(f"--shard: expected I/N such as 0/4, got '{text}'") from None
    if n < 1 or not 0 <= i < n:
        raise LsexpError(f"--shard: expected 0 <= I < N, got '{text}'")
    return i, n


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int = 2
    timeout_min: int = 240


def signal_delay_s(timeout_min: int) -> int:
    """Seconds before the time limit at which Slurm warns a task with SIGUSR2.

    submitit's default, 90 s (`sbatch --signal=USR2@90`), for limits of 5 min and more.
    Slurm may send the warning up to 60 s earlier than asked (sbatch(1), --signal), so for
    shorter limits the delay shrinks to keep the warning in the second half of the limit
    where it can (1 s at least: a 1-minute task is still warned, near its start).
    """
    return max(1, min(90, timeout_min * 60 // 2 - 60))


# How far from the time limit a stop signal may arrive and still be the time limit's: Slurm
# sends the USR2 warning up to 60 s early and ends an over-limit job on its next periodic
# check (30 s in slurmctld), and the task's clock starts after the job's (Python start-up).
_LIMIT_SLACK_S = 90.0


class _SlurmStop:
    """Slurm's stop signals as a should_stop flag: the run stops at the next batch.

    Slurm sends SIGUSR2 `signal_delay_s` before the time limit (submitit asks for it with
    `--signal`), and SIGTERM when it ends the job (time limit, `scancel`, preemption),
    followed by SIGKILL KillWait seconds later (30 s by default; slurm.conf(5)). submitit's
    own handlers would requeue or ignore them; these replace them for the task's run.
    """

    def __init__(self, timeout_min: int, delay_s: int) -> None:
        self.timeout_s = timeout_min * 60.0
        self.delay_s = delay_s
        self.started = time.monotonic()
        self.started_at = time.time()
        self.signum: int | None = None
        self.elapsed = 0.0

    def __call__(self) -> bool:
        return self.signum is not None

    def handler(self, signum, frame) -> None:
        if self.signum is None:
            self.signum, self.elapsed = signum, time.monotonic() - self.started

    def at_time_limit(self) -> bool:
        """Whether the signal came from the time limit (not from scancel or preemption)."""
        left = self.timeout_s - self.elapsed
        if self.signum == signal.SIGUSR2:
            return left <= self.delay_s + _LIMIT_SLACK_S
        return left <= _LIMIT_SLACK_S


@contextlib.contextmanager
def _slurm_signals(stop: _SlurmStop):
    """Route SIGUSR2 and SIGTERM to `stop` inside a Slurm task; elsewhere change nothing
    (the debug executor runs tasks in the caller's process)."""
    if (
        "SLURM_JOB_ID" not in os.environ
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    old = {s: signal.signal(s, stop.handler) for s in (signal.SIGUSR2, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _array_task(
    data: dict[str, Any],
    out_dir: str,
    run_id: str,
    device: str | None,
    compile: bool = False,
    timeout_min: int = 240,
):
    """One job-array task: train one run into the shared folder (claims keep it unique)."""
    from lsexp.running.sweep import run_sweep
    from lsexp.training.engine import Interrupted

    stop = _SlurmStop(timeout_min, signal_delay_s(timeout_min))
    config = validate(data, str(ResultsStore(out_dir).sweep_file))
    try:
        with _slurm_signals(stop):
            result = run_sweep(config, Path(out_dir), device=device, run_ids={run_id},
                               compile=compile, should_stop=stop)  # fmt: skip
    except Interrupted:
        name = signal.Signals(stop.signum).name if stop.signum else "a stop request"
        if stop.at_time_limit():
            error = (
                f"Slurm time limit: the array task's limit is {timeout_min} min (--timeout-min) "
                f"and Slurm stopped the run with {name} after {stop.elapsed:.0f} s; nothing of "
                "the run was kept: submit again with a larger --timeout-min and --retry-failed"
            )
            state = _record_failed(config, Path(out_dir), run_id, device, stop.started_at, error)
            return [(run_id, state)]
        print(f"lsexp: run {run_id} stopped by {name} after {stop.elapsed:.0f} s (job "
              "cancelled or preempted); nothing was kept and the run stays pending: submit "
              "the sweep again to train it", file=sys.stderr)  # fmt: skip
        return [(run_id, "pending")]
    return [(o.spec.run_id, o.status) for o in result.outcomes]


def _record_failed(
    config: SweepConfig,
    out_dir: Path,
    run_id: str,
    device: str | None,
    started: float,
    error: str,
) -> str:
    """Record a run stopped by the time limit as failed; returns the run's state after."""
    from lsexp.running.sweep import _save_failed, provenance
    from lsexp.training.engine import resolve_device

    store = ResultsStore(out_dir)
    spec = next(s for s in plan_runs(config) if s.run_id == run_id)
    claim = store.try_claim(spec)  # run_sweep released it; keep other workers off meanwhile
    if claim is None:
        return "skipped-claimed"
    try:
        if store.status_of(spec) != "pending":  # finished by another worker meanwhile
            return store.status_of(spec)
        prov = provenance(resolve_device(device or config.device))
        return _save_failed(store, spec, config, started, prov, error).status
    finally:
        claim.release()


def submit(
    config: SweepConfig,
    out_dir: Path,
    *,
    executor: str = "slurm",
    options: SlurmOptions | None = None,
    device: str | None = None,
    retry_failed: bool = False,
    force_new: bool = False,
    compile: bool = False,
) -> list[Any]:
    """Submit every pending run as one job array; returns submitit's job objects.

    Everything that would make every task fail is checked here, once, before anything is
    queued or written: the executor, submitit, Slurm's `sbatch`, and the dataset.
    """
    from lsexp.running.sweep import prepare

    if executor not in EXECUTORS:
        raise LsexpError(f"--executor: expected one of {', '.join(EXECUTORS)}, got '{executor}'")
    try:
        import submitit
    except ImportError:
        raise LsexpError(
            "--executor needs submitit: pip install 'lsexp[slurm]' (or pip install submitit)"
        ) from None
    # submitit's AutoExecutor picks Slurm by itself whenever `srun` is on PATH and falls back
    # to running the tasks here otherwise; lsexp names the executor and checks for Slurm.
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise LsexpError(
            "--executor slurm: sbatch not found on PATH (no Slurm client on this machine); "
            "submit from a Slurm login node, or run here with --executor local"
        )
    # The same checks as a local sweep, on the submitting machine, once: the results
    # folder, the dataset and its size, the settings of the runs already there.
    prep = prepare(config, out_dir, retry_failed=retry_failed, force_new=force_new)
    options = options or SlurmOptions()
    store = prep.store
    store.ensure_writable()
    store.write_sweep_file(config)
    todo = prep.todo
    if not todo:
        return []
    # Tasks may start in another working directory (sbatch --chdir): give them full paths.
    shared = out_dir.resolve()
    logs = ResultsStore(shared).slurm_dir
    ex = submitit.AutoExecutor(folder=str(logs / "%j"), cluster=executor)
    params: dict[str, Any] = {
        "timeout_min": options.timeout_min,
        "cpus_per_task": options.cpus_per_task,
        "name": f"lsexp-{config.name}",
    }
    if executor == "slurm":
        params["slurm_array_parallelism"] = ARRAY_PARALLELISM
        params["gpus_per_node"] = options.gpus_per_task
        params["slurm_signal_delay_s"] = signal_delay_s(options.timeout_min)
        if options.partition:
            params["slurm_partition"] = options.partition
    ex.update_parameters(**params)
    data = config_data(config)

    def tasks(specs: list) -> list[tuple]:
        return [(data, str(shared), s.run_id, device, compile, options.timeout_min) for s in specs]

    # Distillation students run after their teachers: a second array, which Slurm starts
    # once the first has ended (afterany: a failed teacher then fails its students with a
    # message naming it); the local and debug executors run the first array to its end
    # before submitting the second.
    first = [s for s in todo if s.teacher is None]
    students = [s for s in todo if s.teacher is not None]
    jobs = _map_array(ex, tasks(first), logs, executor) if first else []
    if students and jobs:
        if executor == "slurm":
            array_id = str(jobs[0].job_id).split("_")[0]
            ex.update_parameters(slurm_dependency=f"afterany:{array_id}")
        else:
            for job in jobs:
                with contextlib.suppress(Exception):  # its failure is reported with the rest
                    job.result()  # the debug executor runs a task here
    if students:
        jobs += _map_array(ex, tasks(students), logs, executor)
    return jobs


def _map_array(ex: Any, tasks: list[tuple], logs: Path, executor: str) -> list[Any]:
    """Submit one `_array_task` per entry of `tasks` as one job array. If sbatch refuses
    it, remove the files submitit left in `logs` for it and raise its message."""
    from submitit.core.utils import FailedJobError

    def listing() -> set[Path]:
        return set(logs.iterdir()) if logs.is_dir() else set()

    before = listing()
    try:
        # submitit prints sbatch's complaint itself and then raises it: keep one copy, ours.
        with contextlib.redirect_stderr(io.StringIO()):
            return ex.map_array(_array_task, *zip(*tasks, strict=True))
    except FailedJobError as e:  # sbatch refused the array: its own message says why
        for path in listing() - before:  # the task pickles and script of the array
            if not path.is_dir():
                path.unlink(missing_ok=True)
        message = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        raise LsexpError(
            f"--executor {executor}: the job array was not submitted: {message}"
        ) from None
