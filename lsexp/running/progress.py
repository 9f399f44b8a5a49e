"""Progress of a sweep on the terminal: Rich bars on a terminal, plain lines in a file.

The sweep's ETA comes from the runs themselves, not from Rich's speed estimate: Rich
averages over a 30-second window, so with runs that take minutes it shows "-:--:--"
for most of a sweep. Here the remaining time is (runs left) x (mean seconds per finished
run) minus what the current run has done; before any run has finished, the current
run's own pace (seconds per batch) stands in for it. `SweepClock` holds that arithmetic,
apart from the drawing, so it is tested on its own.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def fmt_metrics(summary: dict[str, Any]) -> str:
    """One run's result in a line: accuracy, NLL, ECE and its time, or why it has none."""
    if "error" in summary:
        return summary["error"]
    if "accuracy" not in summary:
        return f"diverged at epoch {summary.get('diverged_epoch', '?')}"
    return (
        f"acc {summary['accuracy']:.4f}  nll {summary['nll']:.4f}  "
        f"ece {summary['ece']:.4f}  ({summary.get('seconds', 0):.1f}s)"
    )


class SweepClock:
    """Remaining time of a sweep, from the runs that finished and the one in progress."""

    def __init__(self, n_runs: int, now=time.monotonic) -> None:
        self.n_runs = n_runs
        self.now = now
        self.durations: list[float] = []
        self.run_started: float | None = None
        self.fraction = 0.0  # of the current run's batches done

    def start_run(self) -> None:
        self.run_started, self.fraction = self.now(), 0.0

    def progress(self, fraction: float) -> None:
        self.fraction = min(max(fraction, 0.0), 1.0)

    def finish_run(self) -> None:
        if self.run_started is not None:
            self.durations.append(self.now() - self.run_started)
        self.run_started, self.fraction = None, 0.0

    def eta(self) -> float | None:
        """Seconds left, or None while nothing measures the pace yet."""
        left = self.n_runs - len(self.durations)
        if left <= 0:
            return 0.0
        in_run = self.now() - self.run_started if self.run_started is not None else 0.0
        if self.durations:
            per_run = sum(self.durations) / len(self.durations)
        elif self.run_started is not None and self.fraction >= 0.02:
            per_run = in_run / self.fraction  # the current run's pace, extrapolated
        else:
            return None
        current_left = max(per_run - in_run, 0.0) if self.run_started is not None else 0.0
        started = 1 if self.run_started is not None else 0
        return current_left + (left - started) * per_run


class PlainObserver:
    """Progress as plain lines (stdout is a file or a pipe): no ANSI escapes."""

    def __init__(self, console: Console, every_seconds: float = 30.0):
        self.console = console
        self.every = every_seconds
        self.started = time.time()
        self.n_pending = 0
        self.index = 0
        self.spec: Any = None
        self.last = 0.0
        self.clock = SweepClock(0)
        self.epoch = self.epochs = self.steps = 0

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        self._print(f"warning: {text}")

    def sweep_started(self, total, pending, device) -> None:
        self.n_pending = len(pending)
        self.clock = SweepClock(len(pending))
        self._print(f"sweep: {total} runs in plan, {len(pending)} to train, device {device}")

    def data_loading(self, name) -> None:
        self._print(f"loading {name} ...")

    def run_started(self, spec, index, n_pending):
        self.spec, self.index = spec, index
        self.clock.start_run()
        self._print(f"[{index + 1}/{n_pending}] {spec.label} started")
        return self

    def epoch_started(self, epoch, epochs, steps) -> None:
        self.epoch, self.epochs, self.steps = epoch, epochs, steps

    def _track(self, step: int) -> None:
        if self.epochs and self.steps:
            self.clock.progress(((self.epoch - 1) * self.steps + step) / (self.epochs * self.steps))

    def step_done(self, step, steps) -> None:
        self._track(step)
        now = time.time()
        if now - self.last >= self.every:
            self.last = now
            self._print(
                f"[{self.index + 1}/{self.n_pending}] {self.spec.label} epoch "
                f"{self.epoch}/{self.epochs} batch {step}/{steps}, "
                f"sweep eta {format_seconds(self.clock.eta())}"
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
        self.clock.finish_run()
        done = self.index + 1
        elapsed = time.time() - self.started
        self._print(
            f"[{done}/{self.n_pending}] {spec.label} {status}: {fmt_metrics(summary)}"
            f"  | elapsed {format_seconds(elapsed)}, eta {format_seconds(self.clock.eta())}"
        )


class _CountColumn(ProgressColumn):
    """`12/40 runs`, `310/4290 batches`: what the bar counts, said."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "")
        total = "?" if task.total is None else f"{task.total:.0f}"
        return Text(f"{task.completed:.0f}/{total} {unit}")


class _EtaColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        if "eta" not in task.fields:
            return Text("")
        return Text(f"eta {format_seconds(task.fields['eta'])}")


class RichObserver(PlainObserver):
    """Two-level progress bars: the sweep (ETA from finished runs) and the current run."""

    def __init__(self, console: Console):
        super().__init__(console)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            _CountColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            _EtaColumn(),
            console=console,
            transient=False,
        )
        self.sweep_task: Any = None
        self.run_task: Any = None
        self.last_eta = 0.0

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def _print(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _update_eta(self) -> None:
        self.progress.update(self.sweep_task, eta=self.clock.eta())

    def sweep_started(self, total, pending, device) -> None:
        super().sweep_started(total, pending, device)
        self.sweep_task = self.progress.add_task("sweep", total=len(pending), unit="runs", eta=None)

    def run_started(self, spec, index, n_pending):
        self.spec, self.index = spec, index
        self.clock.start_run()
        if self.run_task is not None:
            self.progress.remove_task(self.run_task)
        self.run_task = self.progress.add_task(f"  {spec.label}", total=None, unit="batches")
        return self

    def epoch_started(self, epoch, epochs, steps) -> None:
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.progress.update(self.run_task, total=epochs * steps)

    def step_done(self, step, steps) -> None:
        done = (self.epoch - 1) * steps + step
        self.progress.update(self.run_task, completed=done)
        self._track(step)
        now = time.monotonic()
        if now - self.last_eta >= 1.0:
            self.last_eta = now
            self._update_eta()

    def epoch_done(self, epoch, epochs, row) -> None:
        val = f" val_acc {row['val_acc']:.3f}" if "val_acc" in row else ""
        self.progress.update(
            self.run_task, description=f"  {self.spec.label} ep {epoch}/{epochs}{val}"
        )

    def run_finished(self, spec, status, summary) -> None:
        self.clock.finish_run()
        self._print(f"{spec.label:<22} {status:<9} {fmt_metrics(summary)}")
        self.progress.advance(self.sweep_task)
        self._update_eta()
