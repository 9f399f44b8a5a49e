"""The `lsexp` command line. Each command parses flags, calls one library function, prints.

Exit codes: 0 ok, 1 a run failed, 2 bad usage/config/data, 3 results folder locked,
130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lsexp import __version__
from lsexp.errors import (
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    ConfigError,
    LsexpError,
)
from lsexp.workers import WORKERS_ENV

EPILOG = """\
\b
Examples:
  lsexp sweep configs/quickstart.yaml          # train every alpha x seed
  lsexp sweep configs/cifar10.yaml train.epochs=2 sweep.seeds=[0,1] --out /tmp/try
  lsexp report                                 # every sweep under results/
  lsexp status                                 # what is done, what is pending
  lsexp data import fashion_mnist /usr/share/datasets/fashion-mnist

Exit codes: 0 ok, 1 a run failed, 2 bad usage/config/data, 3 folder locked, 130 interrupted.
"""

app = typer.Typer(
    name="lsexp",
    help="Label-smoothing calibration experiments: sweep alpha x seeds, then report "
    "accuracy, NLL, ECE (and friends), reliability diagrams and alpha curves.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(
    help="Get datasets onto this machine and check them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(data_app, name="data")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Expected failures -> one line per problem on stderr and the documented exit code."""
    try:
        yield
    except ConfigError as e:
        for problem in e.problems:
            err.print(f"error: {problem}", markup=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except LsexpError as e:
        err.print(f"error: {e}", markup=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except OSError as e:  # disk full, permissions, a folder removed under us
        where = f"{e.filename}: " if e.filename else ""
        err.print(f"error: {where}{e.strerror or e}", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"lsexp {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    pass


# ---------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------


def _fmt_metrics(summary: dict[str, Any]) -> str:
    if "error" in summary:
        return summary["error"]
    if "accuracy" not in summary:
        return f"diverged at epoch {summary.get('diverged_epoch', '?')}"
    return (
        f"acc {summary['accuracy']:.4f}  nll {summary['nll']:.4f}  "
        f"ece {summary['ece']:.4f}  ({summary.get('seconds', 0):.1f}s)"
    )


class PlainObserver:
    """Progress as plain lines (stdout is a file or a pipe): no ANSI escapes."""

    def __init__(self, console: Console, every_seconds: float = 30.0):
        self.console = console
        self.every = every_seconds
        self.started = time.time()
        self.n_pending = 0
        self.index = 0
        self.spec = None
        self.last = 0.0

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def sweep_started(self, total, pending, device) -> None:
        self.n_pending = len(pending)
        self._print(f"sweep: {total} runs in plan, {len(pending)} to train, device {device}")

    def data_loading(self, name) -> None:
        self._print(f"loading {name} ...")

    def run_started(self, spec, index, n_pending):
        self.spec, self.index = spec, index
        self.run_t0 = time.time()
        self._print(f"[{index + 1}/{n_pending}] {spec.label} started")
        return self

    def epoch_started(self, epoch, epochs, steps) -> None:
        self.epoch, self.epochs = epoch, epochs

    def step_done(self, step, steps) -> None:
        now = time.time()
        if now - self.last >= self.every:
            self.last = now
            self._print(
                f"[{self.index + 1}/{self.n_pending}] {self.spec.label} epoch "
                f"{self.epoch}/{self.epochs} step {step}/{steps}"
            )

    def epoch_done(self, epoch, epochs, row) -> None:
        now = time.time()
        if now - self.last >= self.every or epoch == epochs:
            self.last = now
            val = f" val_acc {row['val_acc']:.4f}" if "val_acc" in row else ""
            self._print(
                f"[{self.index + 1}/{self.n_pending}] {self.spec.label} epoch {epoch}/{epochs} "
                f"train_loss {row['train_loss']:.4f}{val}"
            )

    def run_finished(self, spec, status, summary) -> None:
        done = self.index + 1
        elapsed = time.time() - self.started
        eta = elapsed / done * (self.n_pending - done)
        self._print(
            f"[{done}/{self.n_pending}] {spec.label} {status}: {_fmt_metrics(summary)}"
            f"  | elapsed {elapsed:.0f}s, eta {eta:.0f}s"
        )


class RichObserver(PlainObserver):
    """Two-level progress bars: the sweep (with ETA) and the epochs of the current run."""

    def __init__(self, console: Console):
        super().__init__(console)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.sweep_task = None
        self.run_task = None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def _print(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def sweep_started(self, total, pending, device) -> None:
        super().sweep_started(total, pending, device)
        self.sweep_task = self.progress.add_task("sweep", total=len(pending))

    def run_started(self, spec, index, n_pending):
        self.spec, self.index = spec, index
        if self.run_task is not None:
            self.progress.remove_task(self.run_task)
        self.run_task = self.progress.add_task(f"  {spec.label}", total=None)
        return self

    def epoch_started(self, epoch, epochs, steps) -> None:
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.progress.update(self.run_task, total=epochs * steps)

    def step_done(self, step, steps) -> None:
        done = (self.epoch - 1) * steps + step
        self.progress.update(self.run_task, completed=done)

    def epoch_done(self, epoch, epochs, row) -> None:
        val = f" val_acc {row['val_acc']:.3f}" if "val_acc" in row else ""
        self.progress.update(
            self.run_task, description=f"  {self.spec.label} ep {epoch}/{epochs}{val}"
        )

    def run_finished(self, spec, status, summary) -> None:
        self._print(f"{spec.label:<22} {status:<9} {_fmt_metrics(summary)}")
        self.progress.advance(self.sweep_task)


class _StopFlag:
    """Ctrl-C / SIGTERM ask the sweep to stop at the next batch; a second Ctrl-C forces it."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def handler(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        err.print("stopping at the next batch boundary (Ctrl-C again to force) ...")


# ---------------------------------------------------------------------------------------
# sweep
# ---------------------------------------------------------------------------------------


@app.command(epilog=EPILOG)
def sweep(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="YAML sweep config.")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[KEY=VALUE]...",
            help="Dotted overrides with YAML values, e.g. train.epochs=2 sweep.seeds=[0,1].",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Results folder [default: results/<name>].")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(help="auto | cpu | cuda | mps [default: the config's device, else auto]."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and what would train; train nothing.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Train runs recorded as failed again.")
    ] = False,
    force_new: Annotated[
        bool,
        typer.Option("--force-new", help="Allow a folder that holds runs of other settings."),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            help="Train only the runs at plan positions = I mod N; several workers can share "
            "one folder [default: from SLURM_ARRAY_TASK_ID/COUNT when set].",
            metavar="I/N",
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            help="Submit the pending runs as one job array through submitit: slurm "
            "(or local / debug, without Slurm) and return."
        ),  # fmt: skip
    ] = None,
    slurm_partition: Annotated[str | None, typer.Option(help="Slurm partition.")] = None,
    gpus_per_task: Annotated[int, typer.Option(help="GPUs per array task.")] = 0,
    cpus_per_task: Annotated[int, typer.Option(help="CPUs per array task.")] = 2,
    timeout_min: Annotated[int, typer.Option(help="Time limit per array task, minutes.")] = 240,
    claim_grace: Annotated[
        float, typer.Option(help="Seconds after which a silent worker's claim is taken over.")
    ] = 600.0,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the model (a GPU option: no gain seen on CPU, and "
            "compiling costs seconds per run; needs a C++ compiler).",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes on this machine sharing the sweep (CPU threads split "
            "evenly). For GPUs that one run leaves idle and many-core CPUs; on a 2-core CPU "
            "it measured no gain (README, Performance).",
        ),
    ] = 1,
) -> None:
    """Train every alpha x seed run of CONFIG that is not finished yet, and save it."""
    from lsexp.cluster import SlurmOptions, parse_shard, submit
    from lsexp.config import load_config
    from lsexp.store import ResultsStore, plan_runs
    from lsexp.sweep import default_out_dir, run_sweep

    with _errors():
        if device is not None and device not in ("auto", "cpu", "cuda", "mps"):
            raise LsexpError(f"--device: expected auto, cpu, cuda or mps, got '{device}'")
        shard_spec = parse_shard(shard)
        config = load_config(config_path, overrides or [])
        target = out_dir or default_out_dir(config)
        if dry_run:
            _print_plan(config, target, plan_runs(config), ResultsStore(target), retry_failed)
            return
        if workers > 1:
            if shard is not None or executor is not None:
                raise LsexpError(
                    "--workers cannot be combined with --shard or --executor; start the "
                    "workers yourself with --shard, or use one of them"
                )
            try:
                code = _sweep_with_workers(config_path, overrides or [], config, target,
                                           workers, device, retry_failed, force_new,
                                           claim_grace, compile)  # fmt: skip
            except KeyboardInterrupt:  # Ctrl-C before the workers started
                err.print("interrupted before any worker started", markup=False)
                code = EXIT_INTERRUPTED
            raise typer.Exit(code)
        if executor is not None:
            options = SlurmOptions(slurm_partition, gpus_per_task, cpus_per_task, timeout_min)
            jobs = submit(config, target, executor=executor, options=options, device=device,
                          retry_failed=retry_failed, force_new=force_new,
                          compile=compile)  # fmt: skip
            if not jobs:
                out.print("nothing to submit: every run is finished")
                return
            out.print(f"submitted {len(jobs)} run(s) as a job array: "
                      f"{', '.join(str(j.job_id) for j in jobs)}", markup=False)  # fmt: skip
            if executor != "slurm":  # local/debug: run them now and wait
                failed = [j.job_id for j in jobs if _job_failed(j)]
                if failed:
                    raise LsexpError(f"array tasks failed: {', '.join(map(str, failed))}")
            out.print(f"follow with: lsexp status {target}; task logs in {target / 'slurm'}",
                      markup=False)  # fmt: skip
            return
        stop = _StopFlag()
        old_int = signal.signal(signal.SIGINT, stop.handler)
        old_term = signal.signal(signal.SIGTERM, stop.handler)
        try:
            if out.is_terminal:
                with RichObserver(out) as observer:
                    result = run_sweep(config, target, device=device, observer=observer,
                                       retry_failed=retry_failed, force_new=force_new,
                                       should_stop=stop, shard=shard_spec,
                                       claim_grace=claim_grace, compile=compile)  # fmt: skip
            else:
                result = run_sweep(config, target, device=device, observer=PlainObserver(out),
                                   retry_failed=retry_failed, force_new=force_new,
                                   should_stop=stop, shard=shard_spec,
                                   claim_grace=claim_grace, compile=compile)  # fmt: skip
        except (KeyboardInterrupt, _interrupted()):
            err.print(
                f"interrupted; finished runs are saved in {target}. Run the same command again "
                "to resume.",
                markup=False,
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
    if WORKERS_ENV not in os.environ:  # a worker of --workers: its parent sums up
        _print_summary(result)
    if result.n_failed:
        err.print(
            f"{result.n_failed} run(s) failed (see 'error' in their run.json); rerun with "
            "--retry-failed to train them again.",
            markup=False,
        )
        raise typer.Exit(EXIT_RUN_FAILED)


def _sweep_with_workers(
    config_path,
    overrides,
    config,
    target,
    n,
    device,
    retry_failed,
    force_new,
    claim_grace,
    compile,
) -> int:
    """The parent of `--workers N`: checks, holds the folder lock, runs the workers."""
    import torch

    from lsexp.data import require_dataset
    from lsexp.store import ResultsStore, plan_runs
    from lsexp.sweep import RunOutcome, SweepResult, is_pending
    from lsexp.workers import combine_exit_codes, run_workers, worker_command

    root = Path(config.data.root).expanduser() if config.data.root else None
    require_dataset(config.data.name, root)
    store = ResultsStore(target)
    plan = plan_runs(config)
    with store.lock():
        if not force_new:
            store.check_same_identity(config)
        before = {spec.run_id: store.status_of(spec) for spec in plan}
        cmd = worker_command(config_path, overrides, target, device=device,
                             retry_failed=retry_failed, force_new=force_new,
                             claim_grace=claim_grace, compile=compile)  # fmt: skip
        threads = torch.get_num_threads()
        out.print(f"sweep: {n} workers x {max(1, threads // n)} thread(s) into {target}",
                  markup=False)  # fmt: skip

        def emit(line: str) -> None:
            out.print(line, markup=False, highlight=False, soft_wrap=True)

        codes = run_workers(cmd, n, threads, emit)
    outcomes = []
    for spec in plan:
        record = store.read_record(spec) or {}
        status = store.status_of(spec)
        if not is_pending(before[spec.run_id], retry_failed):
            status = f"skipped-{before[spec.run_id]}"
        metrics = dict(record.get("test_metrics") or {})
        if "wall_seconds" in record:
            metrics["seconds"] = record["wall_seconds"]
        outcomes.append(RunOutcome(spec, status, metrics if status != "pending" else {}))
    _print_summary(SweepResult(target, outcomes, device or config.device))
    code = combine_exit_codes(codes)
    if code == EXIT_INTERRUPTED:
        err.print(f"interrupted; finished runs are saved in {target}. Run the same command "
                  "again to resume.", markup=False)  # fmt: skip
    elif code == EXIT_RUN_FAILED:
        err.print("some runs failed (see 'error' in their run.json); rerun with "
                  "--retry-failed to train them again.", markup=False)  # fmt: skip
    return code


def _job_failed(job) -> bool:
    try:
        return any(status == "failed" for _, status in job.result())
    except Exception as e:  # submitit re-raises the task's exception here
        err.print(f"array task {job.job_id}: {type(e).__name__}: {e}", markup=False)
        return True


def _interrupted() -> type[Exception]:
    from lsexp.engine import Interrupted

    return Interrupted


def _print_plan(config, target, plan, store, retry_failed) -> None:
    from lsexp.sweep import is_pending

    table = Table(title=f"plan for {config.name} -> {target}")
    for col in ("alpha", "seed", "run", "state"):
        table.add_column(col)
    n_todo = 0
    for s in plan:
        state = store.status_of(s)
        if is_pending(state, retry_failed):
            state, n_todo = "would train", n_todo + 1
        table.add_row(f"{s.alpha:g}", str(s.seed), s.dirname, state)
    out.print(table)
    out.print(f"{len(plan)} runs, {n_todo} would train (dry run: nothing written)")
    from lsexp.data import check_dataset

    root = Path(config.data.root).expanduser() if config.data.root else None
    data = check_dataset(config.data.name, root)
    state = "complete" if data.complete else f"NOT READY: {data.problem}"
    out.print(f"dataset {config.data.name} at {data.path}: {state}", markup=False)


def _print_summary(result) -> None:
    table = Table(title=f"sweep results in {result.out_dir}")
    for col in ("alpha", "seed", "status", "accuracy", "nll", "ece", "seconds"):
        table.add_column(col, justify="right" if col not in ("status",) else "left")
    for o in sorted(result.outcomes, key=lambda o: (o.spec.alpha, o.spec.seed)):
        s = o.summary

        def num(key: str, digits: int = 4, s=s) -> str:
            return f"{s[key]:.{digits}f}" if key in s else "—"

        table.add_row(f"{o.spec.alpha:g}", str(o.spec.seed), o.status, num("accuracy"),
                      num("nll"), num("ece"), num("seconds", 1))  # fmt: skip
    out.print(table)
    trained = sum(not o.status.startswith("skipped") and o.status != "pending"
                  for o in result.outcomes)  # fmt: skip
    claimed = sum(o.status == "skipped-claimed" for o in result.outcomes)
    pending = sum(o.status == "pending" for o in result.outcomes)
    finished = len(result.outcomes) - trained - claimed - pending
    by_others = f", {claimed} being trained by another worker" if claimed else ""
    not_done = f", {pending} not trained (stopped early)" if pending else ""
    out.print(
        f"{trained} trained, {finished} already finished{by_others}{not_done}. "
        f"Next: lsexp report {result.out_dir}"
    )


# ---------------------------------------------------------------------------------------
# report / status
# ---------------------------------------------------------------------------------------


def _sweep_dirs(dirs: list[Path] | None) -> list[Path]:
    from lsexp.store import find_sweeps

    found: list[Path] = []
    for d in dirs or [Path("results")]:
        if not d.exists():
            raise LsexpError(f"{d}: no such folder; run `lsexp sweep CONFIG` first")
        sweeps = find_sweeps(d)
        if not sweeps:
            raise LsexpError(f"{d}: no sweep found (no sweep.yaml); run `lsexp sweep CONFIG`")
        found += sweeps
    return found


@app.command()
def report(
    dirs: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[DIR]...", help="Sweep folders [default: every sweep in results/]."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any run folder is unreadable.")
    ] = False,
    interval: Annotated[
        str,
        typer.Option(help="95% interval over seeds: t (Student-t) or bootstrap (percentile)."),
    ] = "t",
) -> None:
    """Compute metrics from saved logits; write tables and figures to DIR/report/."""
    from lsexp.report import write_report

    n_unreadable = 0
    with _errors():
        if interval not in ("t", "bootstrap"):
            raise LsexpError(f"--interval: expected t or bootstrap, got '{interval}'")
        for d in _sweep_dirs(dirs):
            rep = write_report(d, interval)
            out.print(f"[bold]{rep.config.name}[/bold]: {len(rep.run_rows)} runs -> "
                      f"{d / 'report'}")  # fmt: skip
            _print_report_table(rep)
            for w in rep.warnings:
                err.print(f"warning: {w}", markup=False)
            for f in rep.files:
                out.print(f"  wrote {f}", markup=False)
            n_unreadable += rep.n_unreadable
    if strict and n_unreadable:
        err.print(f"error: {n_unreadable} unreadable run(s) (--strict)", markup=False)
        raise typer.Exit(EXIT_RUN_FAILED)


def _print_report_table(rep) -> None:
    n_bins = rep.config.eval.n_bins
    table = Table(caption=f"test set; mean ± std over seeds; ECE: {n_bins} equal-width bins")
    for col in ("alpha", "n", "accuracy", "nll", "ece", "adaptive ece", "conf − acc"):
        table.add_column(col, justify="right")
    for g in rep.groups:

        def pm(name: str, g=g) -> str:
            s = g.stat(name)
            if s.n == 0:
                return "—"
            return f"{s.mean:.4f}" + (f" ± {s.std:.4f}" if s.n > 1 else "")

        extra = f" (+{g.n_diverged} div, {g.n_failed} fail)" if g.n_diverged or g.n_failed else ""
        table.add_row(f"{g.alpha:g}", f"{len(g.runs)}{extra}", pm("accuracy"), pm("nll"),
                      pm("ece"), pm("adaptive_ece"), pm("overconfidence"))  # fmt: skip
    out.print(table)


def _run_state(store, spec, running: str | None) -> str:
    state = store.status_of(spec)
    if state == "pending" and (spec.run_id == running or store.claim_holder(spec)):
        return "running"
    return state


@app.command()
def status(
    dirs: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[DIR]...", help="Sweep folders [default: every sweep in results/]."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The plan of each sweep and the state of every run."""
    from lsexp.store import ResultsStore, plan_runs

    with _errors():
        report_data = []
        for d in _sweep_dirs(dirs):
            store = ResultsStore(d)
            config = store.load_config()
            running = store.running_run_id()
            runs = [
                {
                    "alpha": s.alpha,
                    "seed": s.seed,
                    "run": s.dirname,
                    "status": _run_state(store, s, running),
                }
                for s in plan_runs(config)
            ]
            report_data.append({"sweep": str(d), "name": config.name, "runs": runs})
    if as_json:
        out.print_json(json.dumps(report_data))
        return
    for item in report_data:
        table = Table(title=f"{item['name']} ({item['sweep']})")
        for col in ("alpha", "seed", "status", "run"):
            table.add_column(col)
        for r in item["runs"]:
            table.add_row(f"{r['alpha']:g}", str(r["seed"]), r["status"], r["run"])
        out.print(table)
        counts: dict[str, int] = {}
        for r in item["runs"]:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        out.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------

RootOption = Annotated[
    Path | None,
    typer.Option("--root", help="Dataset folder [default: $LSEXP_DATA or ~/.cache/lsexp/data]."),
]


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="mnist | fashion_mnist | cifar10 | cifar100")],
    root: RootOption = None,
) -> None:
    """Download a dataset with torchvision (needs internet)."""
    from lsexp.data import fetch_dataset

    with _errors():
        path = fetch_dataset(name, root)
    out.print(f"{name}: ready in {path}", markup=False)


@data_app.command("import")
def data_import(
    name: Annotated[str, typer.Argument(help="mnist | fashion_mnist | cifar10 | cifar100")],
    source: Annotated[
        Path,
        typer.Argument(
            help="Local copy: folder of IDX .gz files, or the CIFAR tar.gz / extracted folder."
        ),
    ],  # fmt: skip
    root: RootOption = None,
) -> None:
    """Copy a local copy of a dataset into the dataset folder (no network)."""
    from lsexp.data import import_dataset

    with _errors():
        path = import_dataset(name, source, root)
    out.print(f"{name}: imported into {path}", markup=False)


@data_app.command("check")
def data_check(root: RootOption = None) -> None:
    """Which datasets are present, where, and whether they are complete."""
    from lsexp.data import DATASET_NAMES, check_dataset

    with _errors():
        statuses = [check_dataset(n, root) for n in DATASET_NAMES]
    width = max(len(s.name) for s in statuses)
    for s in statuses:
        state = "complete" if s.complete else "missing "
        style = "green" if s.complete else "yellow"
        out.print(f"{s.name:<{width}}  [{style}]{state}[/{style}]  {s.path}", soft_wrap=True)
        if s.problem:
            out.print(f"    {s.problem}", markup=False, soft_wrap=True)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = ["app", "main", "EXIT_USAGE"]
