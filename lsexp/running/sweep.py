"""Running a sweep: config -> plan -> data check -> train each pending run -> store.

The plan is deterministic and every run has a content-hash id, so a sweep that is
interrupted, or extended with new alpha values or seeds, is resumed by running it again:
finished runs (done or diverged) are skipped. A run that raises is recorded as `failed`
with its error and the sweep goes on; `retry_failed=True` trains those again.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import socket
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from lsexp import __version__
from lsexp.config import SweepConfig
from lsexp.errors import ConfigError
from lsexp.results.store import (
    DEFAULT_CLAIM_GRACE,
    FINAL_STATUSES,
    ResultsStore,
    RunSpec,
    RunState,
    config_hash,
    default_sweep_dir,
    plan_runs,
)
from lsexp.training.data import DatasetStatus, check_dataset, load_splits
from lsexp.training.engine import (
    EngineSettings,
    Interrupted,
    RunObserver,
    RunResult,
    engine_settings,
    load_teacher,
    resolve_device,
    train_run,
)
from lsexp.training.objectives import DEFAULT_OBJECTIVE

TEACHER_POLL_SECONDS = 2.0  # how often a student waiting for its teacher looks again
# A student whose teacher is not trained yet and that nobody is training (another shard's
# run, not started): left pending for a later pass.
WAITING_FOR_TEACHER = "waiting-for-teacher"


class SweepObserver(Protocol):
    """Sweep-level progress events (the CLI renders them)."""

    def warn(self, text: str) -> None: ...
    def sweep_started(self, total: int, pending: list[RunSpec], device: str) -> None: ...
    def data_loading(self, name: str) -> None: ...
    def run_started(self, spec: RunSpec, index: int, n_pending: int) -> RunObserver: ...
    def run_finished(self, spec: RunSpec, status: str, summary: dict[str, Any]) -> None: ...


@dataclass
class RunOutcome:
    spec: RunSpec
    status: str  # done | diverged | failed | skipped-<previous status>
    summary: dict[str, Any]


@dataclass
class SweepResult:
    out_dir: Path
    outcomes: list[RunOutcome]
    device: str

    @property
    def n_failed(self) -> int:
        """Runs that are failed now: failed in this invocation or earlier and not retried."""
        return sum(o.status in ("failed", "skipped-failed") for o in self.outcomes)


def select_shard(plan: list[RunSpec], index: int, count: int) -> list[RunSpec]:
    """The runs at plan positions congruent to `index` mod `count` (alpha-major order, so
    every shard gets a mix of alphas and its share of the slow ones)."""
    return [spec for pos, spec in enumerate(plan) if pos % count == index]


def is_pending(status: str, retry_failed: bool) -> bool:
    """Whether a run in this state is trained by the next sweep."""
    return status == "pending" or (status == "failed" and retry_failed)


def pending_runs(store: ResultsStore, plan: list[RunSpec], retry_failed: bool) -> list[RunSpec]:
    return [spec for spec in plan if is_pending(store.status_of(spec), retry_failed)]


@dataclass
class Prepared:
    """A sweep that passed every check that can be made before training; nothing written."""

    config: SweepConfig
    out_dir: Path
    store: ResultsStore
    plan: list[RunSpec]  # this process's share of the plan (after --shard / run ids)
    states: dict[str, RunState]  # run id -> state, read once
    retry_failed: bool
    dataset: DatasetStatus

    @property
    def todo(self) -> list[RunSpec]:
        return [s for s in self.plan if is_pending(self.states[s.run_id].status, self.retry_failed)]

    @property
    def warnings(self) -> list[str]:
        """Runs that looked finished but cannot be read back, and so are trained again."""
        return [
            f"{s.dirname}: {self.states[s.run_id].problem}; it will be trained again"
            for s in self.plan
            if self.states[s.run_id].problem
        ]


def stored_summary(store: ResultsStore, spec: RunSpec) -> dict[str, Any]:
    """A finished run's test metrics and time as recorded, for the sweep's closing table."""
    record = store.read_record(spec) or {}
    summary = dict(record.get("test_metrics") or {})
    if "wall_seconds" in record:
        summary["seconds"] = record["wall_seconds"]
    if record.get("diverged_epoch") is not None:
        summary["diverged_epoch"] = record["diverged_epoch"]
    if record.get("error"):
        summary["error"] = record["error"]
    return summary


def check_fits(config: SweepConfig, train_size: int | None) -> None:
    """Settings that only the dataset's size can refute (ConfigError, before anything runs)."""
    if train_size is None:
        return
    name, val, batch = config.data.name, config.data.val_size, config.train.batch_size
    problems = []
    if val >= train_size:
        problems.append(
            f"data.val_size: {val} leaves no training images ({name} has {train_size} in its "
            f"training split); set data.val_size below {train_size}, e.g. {train_size // 10}"
        )
    elif batch > train_size - val:
        problems.append(
            f"train.batch_size: {batch} is larger than the {train_size - val} training images "
            f"left after data.val_size={val}; lower train.batch_size or data.val_size"
        )
    if problems:
        raise ConfigError(problems)


def prepare(
    config: SweepConfig,
    out_dir: Path | None = None,
    *,
    retry_failed: bool = False,
    force_new: bool = False,
    shard: tuple[int, int] | None = None,
    run_ids: set[str] | None = None,
) -> Prepared:
    """Every check that can be made before training, shared by the sweep, its dry run,
    `--workers` and cluster submission: the results folder can hold this sweep, the
    dataset is complete and fits the settings, the folder holds no runs of other
    settings (unless `force_new`), and each run's state. Writes nothing."""
    out_dir = Path(out_dir) if out_dir is not None else default_sweep_dir(config.name)
    store = ResultsStore(out_dir)
    store.check_can_hold_sweep()
    dataset = check_dataset(config.data.name, _root(config))
    dataset.require()
    check_fits(config, dataset.train_size)
    if not force_new:
        store.check_same_identity(config)
    plan = plan_runs(config)
    if shard is not None:
        plan = select_shard(plan, *shard)
    if run_ids is not None:
        plan = [s for s in plan if s.run_id in run_ids]
    states = {spec.run_id: store.inspect(spec) for spec in plan}
    return Prepared(config, out_dir, store, plan, states, retry_failed, dataset)


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _workers_on_machine() -> int:
    from lsexp.running.workers import WORKERS_ENV

    value = os.environ.get(WORKERS_ENV, "1")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """This machine's CPU model, for a run's provenance.

    platform.processor(), which is empty on most Linux (it reads `uname -p`), then the first
    `model name` line of `cpuinfo`, then the machine type (e.g. x86_64).
    """
    if platform.processor():
        return platform.processor()
    with contextlib.suppress(OSError):
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    return platform.machine()


def provenance(device: torch.device) -> dict[str, Any]:
    """Where and with what a run was computed (not part of its identity)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "lsexp_version": __version__,
        "git_commit": _git_commit(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "python_version": platform.python_version(),
        "device": str(device),
        "device_name": name,
        "threads": torch.get_num_threads(),
        "workers": _workers_on_machine(),  # lsexp sweep --workers N: N processes at once
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def _record(
    spec: RunSpec,
    config: SweepConfig,
    result: RunResult | None,
    status: str,
    started: float,
    prov: dict[str, Any],
    error: str | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "run_id": spec.run_id,
        "config_hash": config_hash(config),
        "status": status,
        **(
            {"alpha": spec.alpha}
            if spec.objective == DEFAULT_OBJECTIVE
            else {"objective": spec.objective, "strength": spec.alpha}
        ),
        "seed": spec.seed,
        "dataset": config.data.name,
        "model": config.model.name,
        "identity": spec.identity,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.time() - started, 3),
        "provenance": prov,
    }
    if result is not None:
        record.update(
            test_metrics=result.test_metrics,
            diverged_epoch=result.diverged_epoch,
            n_parameters=result.n_parameters,
            train_seconds=round(result.train_seconds, 3),
            eval_seconds=round(result.eval_seconds, 3),
            epochs_completed=len(result.history),
            # Seconds per phase (engine.RunResult.timings; store.write_run adds "write").
            timings={k: round(v, 3) for k, v in result.timings.items()},
        )
        record["provenance"] = {**prov, **result.extra}
    if error is not None:
        record["error"] = error
    return record


def run_sweep(
    config: SweepConfig,
    out_dir: Path | None = None,
    *,
    device: str | None = None,
    observer: SweepObserver | None = None,
    retry_failed: bool = False,
    force_new: bool = False,
    should_stop: Callable[[], bool] | None = None,
    shard: tuple[int, int] | None = None,
    run_ids: set[str] | None = None,
    claim_grace: float = DEFAULT_CLAIM_GRACE,
    compile: bool = False,
) -> SweepResult:
    """Train every pending run of `config` into `out_dir` (default results/<name>).

    Every run is claimed before training (`runs/<run>/.claim`), so any number of workers
    can share a folder without training a run twice. A plain sweep also holds the folder
    lock, which keeps two plain sweeps apart; a worker started with `shard=(i, n)` (or
    with `run_ids`, as the Slurm array tasks are) relies on the claims alone and trains
    only its share: the runs whose position in the plan is congruent to i mod n.
    """
    torch_device = resolve_device(device or config.device)
    prep = prepare(config, out_dir, retry_failed=retry_failed, force_new=force_new,
                   shard=shard, run_ids=run_ids)  # fmt: skip
    out_dir, store, plan = prep.out_dir, prep.store, prep.plan
    worker = shard is not None or run_ids is not None
    if worker:
        store.ensure_writable()
        lock = contextlib.nullcontext(lambda run_id: None)
    else:
        lock = store.lock()
    with lock as set_running:
        if not force_new:
            store.check_same_identity(config)  # again: another sweep may have written it
        store.remove_stale_temp_files(claim_grace)
        todo = prep.todo
        outcomes = [
            RunOutcome(
                spec, f"skipped-{prep.states[spec.run_id].status}", stored_summary(store, spec)
            )  # fmt: skip
            for spec in plan
            if spec not in todo
        ]
        if observer:
            for warning in prep.warnings:
                observer.warn(warning)
            observer.sweep_started(len(plan), todo, str(torch_device))
        splits = None
        if todo:  # load before sweep.yaml is written: unreadable data leaves no trace
            if observer:
                observer.data_loading(config.data.name)
            t0 = time.perf_counter()
            splits = load_splits(config.data.name, _root(config), config.data.val_size,
                                 config.data.split_seed, device=torch_device)  # fmt: skip
            load_seconds = time.perf_counter() - t0
        store.write_sweep_file(config)
        if not todo:
            return SweepResult(out_dir, outcomes, str(torch_device))
        prov = provenance(torch_device)
        settings = engine_settings(
            torch_device, config.model.name, compile, runs_at_once=_workers_on_machine()
        )
        outcomes += _train_each(store, todo, config, splits, torch_device, prov, settings,
                                observer, should_stop, set_running, claim_grace,
                                load_seconds)  # fmt: skip
    return SweepResult(out_dir, outcomes, str(torch_device))


def _train_each(
    store: ResultsStore,
    todo: list[RunSpec],
    config: SweepConfig,
    splits: Any,
    torch_device: torch.device,
    prov: dict[str, Any],
    settings: EngineSettings,
    observer: SweepObserver | None,
    should_stop: Callable[[], bool] | None,
    set_running: Callable[[str | None], None],
    claim_grace: float,
    load_seconds: float = 0.0,
) -> list[RunOutcome]:
    """Claim, train and save each run of `todo` in turn; a run another worker holds or has
    finished meanwhile is skipped. Returns one outcome per run. `load_seconds` (the
    process's one data load, shared by its runs) goes into each run's timings."""
    outcomes: list[RunOutcome] = []
    for i, spec in enumerate(todo):
        teacher_failed = None
        if spec.teacher is not None:
            gate = _teacher_gate(store, spec, should_stop, claim_grace, observer)
            if isinstance(gate, RunOutcome):  # left for a later pass
                outcomes.append(gate)
                continue
            teacher_failed = gate
        claim = store.try_claim(spec, claim_grace)
        if claim is None:
            outcomes.append(RunOutcome(spec, "skipped-claimed", {}))
            continue
        try:
            state = store.status_of(spec)
            if state in FINAL_STATUSES:  # finished by another worker meanwhile
                outcomes.append(RunOutcome(spec, f"skipped-{state}", {}))
                continue
            set_running(spec.run_id)
            if teacher_failed is not None:
                outcome = _save_failed(store, spec, config, time.time(), prov, teacher_failed)
            else:
                outcome = _train_and_save(
                store, spec, config, splits, torch_device, prov, observer, i, len(todo),
                should_stop, settings, load_seconds,
            )  # fmt: skip
        finally:
            claim.release()
        outcomes.append(outcome)
        if observer:
            observer.run_finished(spec, outcome.status, outcome.summary)
    return outcomes


def _train_and_save(
    store: ResultsStore,
    spec: RunSpec,
    config: SweepConfig,
    splits: Any,
    torch_device: torch.device,
    prov: dict[str, Any],
    observer: SweepObserver | None,
    index: int,
    n_todo: int,
    should_stop: Callable[[], bool] | None,
    settings: EngineSettings | None = None,
    load_seconds: float = 0.0,
) -> RunOutcome:
    """Train one claimed run and write it; a failure is recorded, never raised."""
    run_observer = observer.run_started(spec, index, n_todo) if observer else None
    started = time.time()
    try:
        teacher = None
        if spec.teacher is not None:
            teacher = load_teacher(config, store.weights_path(spec.teacher), splits,
                                   torch_device, settings)  # fmt: skip
        result = train_run(config, spec.alpha, spec.seed, splits, torch_device,
                           observer=run_observer, should_stop=should_stop, settings=settings,
                           objective=spec.objective, teacher=teacher,
                           keep_weights=spec.teaches)  # fmt: skip
    except (Interrupted, KeyboardInterrupt):
        raise
    except Exception as e:  # one bad run must not lose the sweep
        return _save_failed(store, spec, config, started, prov, f"{type(e).__name__}: {e}")
    record = _record(spec, config, result, result.status, started, prov)
    record["timings"] = {"load_data": round(load_seconds, 3), **record["timings"]}
    try:
        weights = None
        if result.state_dict is not None:
            buf = io.BytesIO()
            torch.save(result.state_dict, buf)
            weights = buf.getvalue()
        store.write_run(spec, record, result.history, result.predictions, result.penultimate,
                        weights)  # fmt: skip
    except OSError as e:  # disk full, quota, folder removed: earlier runs stay
        error = f"could not save the run: {e.strerror or e}"
        return _save_failed(store, spec, config, started, prov, error)
    summary = dict(result.test_metrics)
    summary["seconds"] = record["wall_seconds"]
    if result.diverged_epoch is not None:
        summary["diverged_epoch"] = result.diverged_epoch
    return RunOutcome(spec, result.status, summary)


def _teacher_gate(
    store: ResultsStore,
    spec: RunSpec,
    should_stop: Callable[[], bool] | None,
    claim_grace: float,
    observer: SweepObserver | None,
) -> RunOutcome | str | None:
    """None when the student `spec` may train (its teacher is done). A teacher another
    worker is training is waited for. A failed or diverged teacher: the error to record
    for the student (it fails, exit 1, naming the teacher). A teacher nobody is training:
    an outcome leaving the student pending for a later pass."""
    teacher = spec.teacher
    assert teacher is not None
    said = False
    while True:
        state = store.inspect(teacher)
        if state.status == "done":
            return None
        if state.status in ("failed", "diverged"):
            return (
                f"its teacher {teacher.dirname} ({teacher.label}) {state.status}; fix "
                "the teacher and rerun with --retry-failed to train it and its students"
            )
        if store.claim_holder(teacher, claim_grace) is None:
            message = (
                f"{spec.dirname}: its teacher {teacher.dirname} ({teacher.label}) is "
                "not trained yet and no worker is training it; left for a later pass "
                "(run the sweep again once the teacher is done)"
            )
            if observer:
                observer.warn(message)
            return RunOutcome(spec, WAITING_FOR_TEACHER, {"error": message})
        if observer and not said:
            observer.warn(f"{spec.dirname}: waiting for its teacher {teacher.dirname}, which "
                          "another worker is training")  # fmt: skip
            said = True
        if should_stop and should_stop():
            raise Interrupted
        time.sleep(TEACHER_POLL_SECONDS)


def _save_failed(
    store: ResultsStore,
    spec: RunSpec,
    config: SweepConfig,
    started: float,
    prov: dict[str, Any],
    error: str,
) -> RunOutcome:
    """Record a failed run; if even that cannot be written (disk full), say so and go on."""
    record = _record(spec, config, None, "failed", started, prov, error=error)
    record["traceback"] = traceback.format_exc()
    try:
        store.write_run(spec, record, [], None)
    except OSError as e:
        error += f" (and the failure record could not be written: {e.strerror or e})"
    return RunOutcome(spec, "failed", {"error": error})


def _root(config: SweepConfig) -> Path | None:
    return Path(config.data.root).expanduser() if config.data.root else None
