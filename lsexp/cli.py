"""The `lsexp` command line. Each command parses flags, calls one library function, prints.

Exit codes: 0 ok, 1 a run failed, 2 bad usage/config/data, 3 results folder locked,
130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from lsexp import __version__
from lsexp.errors import (
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    ConfigError,
    LsexpError,
)
from lsexp.running.progress import PlainObserver, RichObserver
from lsexp.running.workers import PARENT_ENV, WORKERS_ENV
from lsexp.training.data import FETCHABLE

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


class _StopFlag:
    """Ctrl-C / SIGTERM ask the sweep to stop at the next batch; a second Ctrl-C forces it.

    A worker of `--workers N` also stops when its parent is gone (killed with SIGKILL, say):
    it was started in its own session, so nothing else would tell it, and it would train
    to the end of its run. Checked at every batch: `getppid` is one cheap system call.
    """

    def __init__(self) -> None:
        self.requested = False
        parent = os.environ.get(PARENT_ENV, "")
        self.parent = int(parent) if parent.isdigit() else None

    def __call__(self) -> bool:
        if not self.requested and self.parent is not None and os.getppid() != self.parent:
            self.requested = True
            err.print("the --workers parent is gone; stopping at this batch", markup=False)
        return self.requested

    def handler(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        err.print("stopping at the next batch boundary (Ctrl-C again to force) ...")


# ---------------------------------------------------------------------------------------
# sweep
# ---------------------------------------------------------------------------------------


# Long only by its option declarations; the body is a straight sequence: check the flags,
# load the config, then one of dry run, --workers, --executor or a sweep in this process.
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
        str | None,
        typer.Option(
            "--out",
            help="Results folder: new, empty, or an lsexp sweep [default: results/<name>].",
        ),
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
        float,
        typer.Option(
            min=1.0, help="Seconds after which a silent worker's claim is taken over (>= 1)."
        ),
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
    from lsexp.config import load_config
    from lsexp.results.store import default_sweep_dir
    from lsexp.running.cluster import SlurmOptions, parse_shard

    with _errors():
        if device is not None and device not in ("auto", "cpu", "cuda", "mps"):
            raise LsexpError(f"--device: expected auto, cpu, cuda or mps, got '{device}'")
        if out_dir is not None and not out_dir.strip():
            raise LsexpError("--out: empty path; give the results folder, e.g. --out results/try")
        if not math.isfinite(claim_grace):
            raise LsexpError(f"--claim-grace: expected a number of seconds, got {claim_grace}")
        shard_spec = parse_shard(shard)
        config = load_config(config_path, overrides or [])
        target = Path(out_dir) if out_dir is not None else default_sweep_dir(config.name)
        if dry_run:
            _dry_run(config, target, retry_failed, force_new, shard_spec)
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
            _submit_array(config, target, executor, options, device, retry_failed, force_new,
                          compile)  # fmt: skip
            return
        result = _sweep_here(config, target, device, retry_failed, force_new, shard_spec,
                             claim_grace, compile)  # fmt: skip
    if WORKERS_ENV not in os.environ:  # a worker of --workers: its parent sums up
        _print_summary(result)
    if result.n_failed:
        err.print(
            f"{result.n_failed} run(s) failed (see 'error' in their run.json); rerun with "
            "--retry-failed to train them again.",
            markup=False,
        )
        raise typer.Exit(EXIT_RUN_FAILED)


def _submit_array(config, target, executor, options, device, retry_failed, force_new, compile):
    """`lsexp sweep --executor E`: submit the pending runs as one job array and say where
    to follow them; with the local/debug executors, wait for the tasks and report failures."""
    from lsexp.results.store import ResultsStore
    from lsexp.running.cluster import submit

    jobs = submit(config, target, executor=executor, options=options, device=device,
                  retry_failed=retry_failed, force_new=force_new, compile=compile)  # fmt: skip
    if not jobs:
        out.print("nothing to submit: every run is finished")
        return
    out.print(f"submitted {len(jobs)} run(s) as a job array: "
              f"{', '.join(str(j.job_id) for j in jobs)}", markup=False)  # fmt: skip
    if executor != "slurm":  # local/debug: run them now and wait
        failed = [j.job_id for j in jobs if _job_failed(j)]
        if failed:
            raise LsexpError(f"array tasks failed: {', '.join(map(str, failed))}")
    out.print(f"follow with: lsexp status {target}; task logs in "
              f"{ResultsStore(target).slurm_dir}", markup=False)  # fmt: skip


def _sweep_here(config, target, device, retry_failed, force_new, shard_spec, claim_grace,
                compile):  # fmt: skip
    """Train in this process, with a progress display; Ctrl-C or SIGTERM stops the run at
    the next batch and exits 130 (finished runs stay saved)."""
    from lsexp.running.sweep import run_sweep

    stop = _StopFlag()
    old_int = signal.signal(signal.SIGINT, stop.handler)
    old_term = signal.signal(signal.SIGTERM, stop.handler)
    try:
        # Rich bars on a terminal, plain lines in a log.
        display = (
            RichObserver(out) if out.is_terminal else contextlib.nullcontext(PlainObserver(out))
        )
        with display as observer:
            return run_sweep(config, target, device=device, observer=observer,
                             retry_failed=retry_failed, force_new=force_new, should_stop=stop,
                             shard=shard_spec, claim_grace=claim_grace,
                             compile=compile)  # fmt: skip
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

    from lsexp.running.sweep import RunOutcome, SweepResult, is_pending, prepare, stored_summary
    from lsexp.running.workers import combine_exit_codes, run_workers, worker_command

    prep = prepare(config, target, retry_failed=retry_failed, force_new=force_new)
    for warning in prep.warnings:
        err.print(f"warning: {warning}", markup=False)
    store, plan = prep.store, prep.plan
    with store.lock():
        if not force_new:
            store.check_same_identity(config)
        before = {spec.run_id: prep.states[spec.run_id].status for spec in plan}
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
        status = store.status_of(spec)
        if not is_pending(before[spec.run_id], retry_failed):
            status = f"skipped-{before[spec.run_id]}"
        metrics = stored_summary(store, spec) if status != "pending" else {}
        outcomes.append(RunOutcome(spec, status, metrics))
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
    from lsexp.training.engine import Interrupted

    return Interrupted


def _dry_run(config, target, retry_failed, force_new, shard_spec) -> None:
    """The plan and every check the real sweep makes; exit 2 where the sweep would stop."""
    from lsexp.errors import DataError
    from lsexp.results.store import ResultsStore, plan_runs
    from lsexp.running.sweep import prepare, select_shard

    try:
        prep = prepare(config, target, retry_failed=retry_failed, force_new=force_new,
                       shard=shard_spec)  # fmt: skip
    except DataError:
        # Still show what would run, then how to get the data (the error below).
        plan = plan_runs(config)
        if shard_spec is not None:
            plan = select_shard(plan, *shard_spec)
        store = ResultsStore(target)
        _print_plan(config, target, plan, {s.run_id: store.inspect(s) for s in plan},
                    retry_failed)  # fmt: skip
        out.print("dataset NOT READY: the sweep would stop here (exit 2)", markup=False)
        raise
    for warning in prep.warnings:
        err.print(f"warning: {warning}", markup=False)
    _print_plan(config, target, prep.plan, prep.states, retry_failed)
    out.print(f"dataset {config.data.name} at {prep.dataset.path}: complete", markup=False)


def _print_plan(config, target, plan, states, retry_failed) -> None:
    from lsexp.running.sweep import is_pending

    table = Table(title=f"plan for {config.name} -> {target}")
    for col in (_setting_header(plan), "seed", "run", "state"):
        table.add_column(col)
    n_todo = 0
    for s in plan:
        state = states[s.run_id].status
        if is_pending(state, retry_failed):
            state, n_todo = "would train", n_todo + 1
        table.add_row(_setting(s, plan), str(s.seed), s.dirname, state)
    out.print(table)
    out.print(f"{len(plan)} runs, {n_todo} would train (dry run: nothing written)")


def _setting_header(specs) -> str:
    """ "alpha" for a sweep of label smoothing alone (as always), else "setting"."""
    return "alpha" if all(s.objective == "label_smoothing" for s in specs) else "setting"


def _setting(spec, specs) -> str:
    return f"{spec.alpha:g}" if _setting_header(specs) == "alpha" else spec.arm_label


def _print_summary(result) -> None:
    from lsexp.results.store import spec_order
    from lsexp.running.sweep import WAITING_FOR_TEACHER

    table = Table(title=f"sweep results in {result.out_dir}")
    specs = [o.spec for o in result.outcomes]
    for col in (_setting_header(specs), "seed", "status", "accuracy", "nll", "ece", "seconds"):
        table.add_column(col, justify="left" if col in ("status", "setting") else "right")
    for o in sorted(result.outcomes, key=lambda o: spec_order(o.spec)):
        s = o.summary

        def num(key: str, digits: int = 4, s=s) -> str:
            return f"{s[key]:.{digits}f}" if key in s else "—"

        table.add_row(_setting(o.spec, specs), str(o.spec.seed), o.status, num("accuracy"),
                      num("nll"), num("ece"), num("seconds", 1))  # fmt: skip
    out.print(table)
    waiting = sum(o.status == WAITING_FOR_TEACHER for o in result.outcomes)
    trained = sum(not o.status.startswith("skipped") and o.status != "pending"
                  for o in result.outcomes) - waiting  # fmt: skip
    claimed = sum(o.status == "skipped-claimed" for o in result.outcomes)
    pending = sum(o.status == "pending" for o in result.outcomes)
    finished = len(result.outcomes) - trained - claimed - pending - waiting
    by_others = f", {claimed} being trained by another worker" if claimed else ""
    not_done = f", {pending} not trained (stopped early)" if pending else ""
    if waiting:
        not_done += (
            f", {waiting} student(s) waiting for a teacher that is not trained yet "
            "(run the same command again once it is)"
        )
    usable = sum(o.status in ("done", "skipped-done") for o in result.outcomes)
    then = (f"Next: lsexp report {result.out_dir}" if usable else
            "No run is finished yet: run the same command again to train them.")  # fmt: skip
    out.print(f"{trained} trained, {finished} already finished{by_others}{not_done}. {then}",
              markup=False)  # fmt: skip


# ---------------------------------------------------------------------------------------
# report / status
# ---------------------------------------------------------------------------------------


def _sweeps(dirs: list[Path] | None) -> Iterator[tuple[Path, Any]]:
    """(folder, its validated config) for each sweep asked for.

    With no DIR, every sweep under results/: one whose sweep.yaml cannot be read is
    skipped with a warning, so one broken folder does not stop the report of the others.
    A folder named on the command line that is broken is an error (exit 2).
    """
    from lsexp.results.store import RESULTS_ROOT, ResultsStore, find_sweeps

    named = dirs is not None and len(dirs) > 0
    for d in dirs or [RESULTS_ROOT]:
        if not d.exists():
            raise LsexpError(f"{d}: no such folder; run `lsexp sweep CONFIG` first")
        sweeps = find_sweeps(d)
        if not sweeps:
            raise LsexpError(f"{d}: no sweep found (no sweep.yaml); run `lsexp sweep CONFIG`")
        for sweep_dir in sweeps:
            try:
                config = ResultsStore(sweep_dir).load_config()
            except LsexpError as e:
                if named and sweep_dir == d:
                    raise
                problem = "; ".join(e.problems) if isinstance(e, ConfigError) else str(e)
                err.print(f"warning: skipped {sweep_dir}: {problem}", markup=False)
                continue
            yield sweep_dir, config


# The DIR arguments of `report` and `status`.
SweepDirs = Annotated[
    list[Path] | None,
    typer.Argument(metavar="[DIR]...", help="Sweep folders [default: every sweep in results/]."),
]


@app.command()
def report(
    dirs: SweepDirs = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any run folder is unreadable.")
    ] = False,
    interval: Annotated[
        str,
        typer.Option(help="95% interval over seeds: t (Student-t) or bootstrap (percentile)."),
    ] = "t",
    n_bins: Annotated[
        int | None,
        typer.Option(
            "--n-bins",
            min=1,
            max=10_000,
            help="Bins of every binned calibration metric [default: the config's eval.n_bins]; "
            "recomputed from the saved logits, nothing is retrained.",
        ),
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option(
            "--margin",
            help="Margin of the accuracy claims in percentage points, e.g. 0.5 [default: the "
            "config's claims.margin, 0.5].",
        ),
    ] = None,
    claims_interval: Annotated[
        str | None,
        typer.Option(
            "--claims-interval",
            help="Interval of the claims' paired differences: combined (t over seeds plus a "
            "test-set bootstrap), bootstrap (hierarchical) or t (seeds only) [default: the "
            "config's claims.interval, combined].",
        ),
    ] = None,
    calibrators: Annotated[
        str | None,
        typer.Option(
            "--calibrators",
            help="Post-hoc calibrators fitted on each run's validation split, comma-separated: "
            "ts (temperature), vs (vector), ms (matrix, ODIR), hist (histogram binning), iso "
            "(isotonic) [default: ts].",
        ),
    ] = None,
) -> None:
    """Compute metrics from saved logits; write tables and figures to DIR/report/."""
    from lsexp.analysis.claims import INTERVALS
    from lsexp.analysis.posthoc import parse_calibrators
    from lsexp.reporting.report import write_report

    n_unreadable = 0
    with _errors():
        if interval not in ("t", "bootstrap"):
            raise LsexpError(f"--interval: expected t or bootstrap, got '{interval}'")
        if margin is not None and not (math.isfinite(margin) and 0 < margin < 100):
            raise LsexpError(
                f"--margin: expected percentage points in (0, 100), e.g. 0.5, got {margin}"
            )
        if claims_interval is not None and claims_interval not in INTERVALS:
            raise LsexpError(
                f"--claims-interval: expected one of {', '.join(INTERVALS)}, got "
                f"'{claims_interval}'"
            )
        chosen = None
        if calibrators is not None:
            try:
                chosen = tuple(c.name for c in parse_calibrators(calibrators))
            except ConfigError as e:
                raise ConfigError([f"--calibrators: {p}" for p in e.problems]) from None
        for d, _ in _sweeps(dirs):
            rep = write_report(d, interval, n_bins, margin, claims_interval, chosen)
            out.print(f"[bold]{rep.config.name}[/bold]: {len(rep.run_rows)} runs -> "
                      f"{d / 'report'}")  # fmt: skip
            for w in rep.warnings:
                err.print(f"warning: {w}", markup=False)
            _print_report_table(rep)
            for f in rep.files:
                out.print(f"  wrote {f}", markup=False)
            n_unreadable += rep.n_unreadable
    if strict and n_unreadable:
        err.print(f"error: {n_unreadable} unreadable run(s) (--strict)", markup=False)
        raise typer.Exit(EXIT_RUN_FAILED)


def _print_report_table(rep) -> None:
    """The headline numbers, narrow enough for an 80-column terminal (all of them are in
    the report's summary files): the metrics whose `cli` header `runs.METRICS` sets."""
    from lsexp.reporting.runs import metric_table

    n_bins = rep.config.eval.n_bins
    shown = [m for m in metric_table() if m.cli]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    groups = rep.arms if rep.alternatives else rep.groups
    first = "setting" if rep.alternatives else "α"
    for col in (first, "n", *(m.cli for m in shown)):
        table.add_column(col, justify="left" if rep.alternatives and col == first else "right",
                         no_wrap=True)  # fmt: skip
    for g in groups:

        def pm(m, g=g) -> str:
            s = g.stat(m.key)
            if s.n == 0:
                return "—"
            mean = f"{s.mean * m.scale:.{m.decimals}f}"
            return mean + (f" ±{s.std * m.scale:.{m.decimals}f}" if s.n > 1 else "")

        extra = f" +{g.n_diverged + g.n_failed}✗" if g.n_diverged or g.n_failed else ""
        name = g.label if rep.alternatives else f"{g.alpha:g}"
        table.add_row(name, f"{len(g.runs)}{extra}", *(pm(m) for m in shown))
    out.print(table)
    caption = (f"Test set, mean ± std over seeds; accuracy, ECE and conf − acc in %; ECE "
               f"with {n_bins} equal-width bins; TS: after temperature scaling.")  # fmt: skip
    out.print(caption, markup=False)
    if any(g.n_diverged or g.n_failed for g in groups):
        out.print("n +k✗: k runs diverged or failed, left out of the means", markup=False)


@app.command()
def status(
    dirs: SweepDirs = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The plan of each sweep and the state of every run."""
    from lsexp.results.store import ResultsStore, plan_runs

    with _errors():
        report_data = []
        for d, config in _sweeps(dirs):
            store = ResultsStore(d)
            running = store.running_run_id()
            runs = []
            for s in plan_runs(config):
                state = store.inspect(s)
                if state.problem:
                    err.print(f"warning: {d}: {s.dirname}: {state.problem}; the next sweep "
                              "trains it again", markup=False)  # fmt: skip
                running_now = state.status == "pending" and (
                    s.run_id == running or store.claim_holder(s)
                )
                runs.append({"alpha": s.alpha, "objective": s.objective, "setting": s.arm_label,
                             "seed": s.seed, "run": s.dirname,
                             "status": "running" if running_now else state.status})  # fmt: skip
            report_data.append({"sweep": str(d), "name": config.name, "runs": runs})
    if as_json:
        out.print_json(json.dumps(report_data))
        return
    for item in report_data:
        table = Table(title=f"{item['name']} ({item['sweep']})")
        ls_only = all(r["objective"] == "label_smoothing" for r in item["runs"])
        for col in ("alpha" if ls_only else "setting", "seed", "status", "run"):
            table.add_column(col)
        for r in item["runs"]:
            shown = f"{r['alpha']:g}" if ls_only else r["setting"]
            table.add_row(shown, str(r["seed"]), r["status"], r["run"])
        out.print(table)
        counts: dict[str, int] = {}
        for r in item["runs"]:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        out.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------

DATASET_HELP = " | ".join(FETCHABLE)  # what `data fetch` / `data import` get

RootOption = Annotated[
    Path | None,
    typer.Option("--root", help="Dataset folder [default: $LSEXP_DATA or ~/.cache/lsexp/data]."),
]


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help=DATASET_HELP)],
    root: RootOption = None,
) -> None:
    """Download a dataset with torchvision (needs internet)."""
    from lsexp.training.data import fetch_dataset

    with _errors():
        path = fetch_dataset(name, root)
    out.print(f"{name}: ready in {path}", markup=False)


@data_app.command("import")
def data_import(
    name: Annotated[str, typer.Argument(help=DATASET_HELP)],
    source: Annotated[
        Path,
        typer.Argument(
            help="Local copy: folder of IDX .gz files, or the CIFAR tar.gz / extracted folder."
        ),
    ],  # fmt: skip
    root: RootOption = None,
) -> None:
    """Copy a local copy of a dataset into the dataset folder (no network)."""
    from lsexp.training.data import import_dataset

    with _errors():
        path = import_dataset(name, source, root)
    out.print(f"{name}: imported into {path}", markup=False)


@data_app.command("check")
def data_check(root: RootOption = None) -> None:
    """Which datasets are present, where, and whether they are complete."""
    from lsexp.training.data import DATASET_NAMES, check_dataset

    with _errors():
        statuses = [check_dataset(n, root) for n in DATASET_NAMES]
    width = max(len(s.name) for s in statuses)
    styles = {"complete": "green", "missing": "yellow", "corrupt": "red"}
    for s in statuses:
        style = styles[s.state]
        out.print(f"{s.name:<{width}}  [{style}]{s.state:<8}[/{style}]  {s.path}", soft_wrap=True)
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
