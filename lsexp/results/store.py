"""The results layout. This is the only module that knows where files live on disk: the
other modules ask a `ResultsStore` for a path (`runs_dir`, `report_dir`, `slurm_dir`, ...).

```
<out>/                    default results/<sweep name>/ (`default_sweep_dir`)
  sweep.yaml              resolved config, its identity hash, lsexp version
  .lock                   flock held by the running sweep (holder: pid, host, start time)
  runs/<dataset>-<model>-a0.10-s0_<id>/
    run.json              status (done | diverged | failed), metrics, timings, provenance
    history.csv           one row per epoch
    predictions.npz       float32 logits + int64 labels for val and test, and
                          train_true_class_gap (float32, one value per example of a fixed
                          training subset: z_y - mean of the other logits after the last
                          epoch; runs written before it was added lack it)
    penultimate.npz       penultimate activations of test examples of 3 classes + their
                          last-layer weight rows (for the Müller et al. 2019 projection)
    model.pt              the trained state dict, only for a distillation teacher
  report/                 written by `lsexp report`
  slurm/<job id>/         submitit's pickles and logs, when submitted with --executor
```

Every file is written atomically (temp file in the same folder, fsync, `os.replace`), and
`run.json` is written last: a run folder without a readable `run.json` is unfinished and
is trained again by the next sweep.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import socket
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lsexp import __version__
from lsexp.config import (
    RUN_KEYS,
    SweepConfig,
    config_to_yaml,
    normalize_identity,
    run_identity,
    stable_hash,
    student_model,
    validate,
)
from lsexp.errors import ConfigError, LockedError, ResultsError
from lsexp.fsutil import atomic_write_bytes
from lsexp.training.objectives import DEFAULT_OBJECTIVE

RESULTS_ROOT = Path("results")  # where sweeps go, and `lsexp report` looks, by default
SWEEP_FILE = "sweep.yaml"
LOCK_FILE = ".lock"
RUNS_DIR = "runs"
REPORT_DIR = "report"
SLURM_DIR = "slurm"
RUN_FILE = "run.json"
HISTORY_FILE = "history.csv"
PREDICTIONS_FILE = "predictions.npz"
PENULTIMATE_FILE = "penultimate.npz"
WEIGHTS_FILE = "model.pt"  # a teacher's state dict (torch.save), read with weights_only=True
FINAL_STATUSES = ("done", "diverged")
PREDICTION_ARRAYS = ("val_logits", "val_labels", "test_logits", "test_labels")
TRAIN_GAP_ARRAY = "train_true_class_gap"  # optional: runs written before it lack it
# What lsexp itself puts in a results folder; anything else there means the folder is
# somebody else's, and a sweep refuses to write into it.
OWN_ENTRIES = frozenset({SWEEP_FILE, LOCK_FILE, RUNS_DIR, REPORT_DIR, SLURM_DIR})
CLAIM_FILE = ".claim"
TAKEOVER_FILE = ".claim.takeover"
HEARTBEAT_SECONDS = 30.0
DEFAULT_CLAIM_GRACE = 600.0  # a claim whose heartbeat is older than this is dead


# ---------------------------------------------------------------------------------------
# Plan: what runs a config asks for
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep: the config's recipe, one objective at one strength
    (label smoothing's alpha, focal's gamma, ...; a distillation student: its teacher), and
    one seed."""

    alpha: float  # the objective's strength (label smoothing: alpha; distillation: 0)
    seed: int
    run_id: str  # hash of the identity fields: same settings, same id, on any machine
    dirname: str
    identity: dict[str, Any] = field(compare=False, repr=False)
    objective: str = DEFAULT_OBJECTIVE  # trained at strength `alpha`
    teacher: RunSpec | None = field(default=None, compare=False, repr=False)
    teaches: bool = field(default=False, compare=False)  # save its weights for students

    @property
    def strength(self) -> float:
        return self.alpha

    @property
    def arm_label(self) -> str:
        """objective and strength in the user's words: alpha=0.1, focal gamma=2, ..."""
        return arm_label(self.objective, self.alpha, self.teacher)

    @property
    def label(self) -> str:
        return f"{self.arm_label} seed={self.seed}"


def arm_label(objective: str, strength: float, teacher: RunSpec | None = None) -> str:
    from lsexp.training.objectives import OBJECTIVES

    if objective == DEFAULT_OBJECTIVE:
        return f"alpha={strength:g}"
    if objective == "distillation":
        return f"distillation from {teacher.arm_label if teacher else '?'}"
    o = OBJECTIVES[objective]
    if o.low == o.high:  # FLSD-53: the strength only names it
        return objective
    return f"{objective} {o.strength}={strength:g}"


# Short names in run folder names.
_SHORT = {"focal": "focal", "focal_adaptive": "flsd", "confidence_penalty": "cp",
          "mixup": "mixup", "cutmix": "cutmix"}  # fmt: skip


def _tag(objective: str, strength: float, teacher: RunSpec | None = None) -> str:
    """The objective and strength in a run folder's name: a0.10, focal2, kd-a0.10, ..."""
    if objective == DEFAULT_OBJECTIVE:
        return f"a{strength:.2f}"
    if objective == "distillation":
        assert teacher is not None
        return f"kd-{_tag(teacher.objective, teacher.alpha)}"
    return f"{_SHORT[objective]}{strength:g}"


def spec_order(spec: RunSpec) -> tuple:
    """Sort key of runs for tables: objective (registry order), teacher, strength, seed."""
    from lsexp.training.objectives import OBJECTIVES

    teacher = spec_order(spec.teacher) if spec.teacher is not None else ()
    return (list(OBJECTIVES).index(spec.objective), teacher, spec.alpha, spec.seed)


def plan_runs(config: SweepConfig) -> list[RunSpec]:
    """All runs of the sweep in a fixed order: arm-major (label smoothing's alphas as
    listed, the other objectives, then distillation students), then seed. Teachers thus
    come before their students; a sweep of label smoothing alone plans what it always did."""
    specs: list[RunSpec] = []
    by_key: dict[tuple[str, float, int], RunSpec] = {}
    teachers = set(config.sweep.distillation.teacher_keys()) if config.sweep.distillation else set()
    for arm in config.sweep.arms():
        for seed in config.sweep.seeds:
            identity = run_identity(config, arm, seed)
            run_id = stable_hash(identity)
            teacher = by_key[(*arm.teacher, seed)] if arm.teacher else None
            model = config.model.name if teacher is None else student_model(config).name
            tag = _tag(arm.objective, arm.strength, teacher)
            name = f"{config.data.name}-{model}-{tag}-s{seed}_{run_id}"
            spec = RunSpec(float(arm.strength), int(seed), run_id, name, identity, arm.objective,
                           teacher, teaches=arm.key[:2] in teachers)  # fmt: skip
            by_key[(arm.objective, arm.strength, seed)] = spec
            specs.append(spec)
    return specs


def config_hash(config: SweepConfig) -> str:
    return stable_hash(config.identity())


def normalized_run_id(record: dict[str, Any]) -> str | None:
    """The id a run's recorded identity has today (report-only settings at their fixed
    values): equal to its run_id for runs made since 0.2, the id to look it up by for
    runs made before with, say, 10 ECE bins."""
    identity = record.get("identity")
    return stable_hash(normalize_identity(identity)) if isinstance(identity, dict) else None


def same_settings(record: dict[str, Any], config: SweepConfig) -> bool:
    """Whether a run record belongs to `config`'s settings (any alpha and seed)."""
    identity = record.get("identity")
    if not isinstance(identity, dict):
        return record.get("config_hash") == config_hash(config)
    rest = {k: v for k, v in normalize_identity(identity).items() if k not in RUN_KEYS}
    return stable_hash(rest) == config_hash(config)


# ---------------------------------------------------------------------------------------
# Atomic files
# ---------------------------------------------------------------------------------------


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")


def csv_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------
# Loaded runs
# ---------------------------------------------------------------------------------------


@dataclass
class StoredRun:
    """A run folder as found on disk (run.json parsed; predictions loaded on demand)."""

    path: Path
    record: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.record.get("status", "unknown"))

    @property
    def alpha(self) -> float:
        """The run's strength: label smoothing's alpha, another objective's parameter."""
        return record_strength(self.record)

    @property
    def strength(self) -> float:
        return record_strength(self.record)

    @property
    def objective(self) -> str:
        return str(self.record.get("objective", DEFAULT_OBJECTIVE))

    @property
    def teacher(self) -> str | None:
        """A distillation student's teacher run id (None for other runs)."""
        identity = self.record.get("identity")
        return identity.get("teacher") if isinstance(identity, dict) else None

    @property
    def seed(self) -> int:
        return int(self.record["seed"])

    def predictions(self) -> dict[str, np.ndarray]:
        """val_logits, val_labels, test_logits, test_labels, checked (RunFileError if not),
        and train_true_class_gap where the run saved it."""
        return read_predictions(self.path / PREDICTIONS_FILE)

    def train_true_class_gap(self) -> np.ndarray | None:
        """The training-subset true-class logit gaps (float32), None for older runs."""
        return self.predictions().get(TRAIN_GAP_ARRAY)

    def check(self) -> None:
        """RunFileError unless the run's files are as it wrote them (see check_run_files)."""
        check_run_files(self.path, self.record)

    def penultimate(self) -> dict[str, np.ndarray] | None:
        """Penultimate activations of a few test examples (None for older runs)."""
        path = self.path / PENULTIMATE_FILE
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    def history(self) -> list[dict[str, float]]:
        return read_history(self.path / HISTORY_FILE)


@dataclass
class UnreadableRun:
    path: Path
    reason: str


class RunFileError(ValueError):
    """A run's file is missing or not what lsexp wrote; the message is one line."""


def read_predictions(path: Path) -> dict[str, np.ndarray]:
    """Load a run's predictions.npz and check it is what lsexp writes.

    Never unpickles (`allow_pickle=False`), and turns numpy's messages (which advise
    loading the file "unsafely") into one line of our own. Logits may be float16 (the
    compact form committed to a repository) or float32; they come back as float32, and so
    does the optional `train_true_class_gap` (absent from the dict for older runs).
    """
    name = path.name
    if not path.is_file():
        raise RunFileError(f"{name} is missing")
    if not zipfile.is_zipfile(path):
        raise RunFileError(f"{name} is not a .npz archive (replaced or truncated)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        kind = "holds Python objects" if "pickle" in str(e) else "is corrupt"
        raise RunFileError(f"{name} {kind}; it was not written by lsexp") from None
    missing = [k for k in PREDICTION_ARRAYS if k not in arrays]
    if missing:
        raise RunFileError(f"{name} lacks {', '.join(missing)}")
    if arrays["val_logits"].shape == (0,) and arrays["test_logits"].ndim == 2:
        # No validation split, as written before 2026-12-05: an empty 1-D array.
        arrays["val_logits"] = arrays["val_logits"].reshape(0, arrays["test_logits"].shape[1])
    for split in ("val", "test"):
        logits, labels = arrays[f"{split}_logits"], arrays[f"{split}_labels"]
        if logits.ndim != 2 or logits.dtype.kind != "f" or labels.ndim != 1:
            raise RunFileError(f"{name}: {split} arrays have the wrong shape or type")
        if labels.dtype.kind not in "iu" or len(labels) != len(logits):
            raise RunFileError(f"{name}: {split} labels do not match the {split} logits")
        if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[1]):
            raise RunFileError(f"{name}: {split} labels out of range for {logits.shape[1]} classes")
        arrays[f"{split}_logits"] = logits.astype(np.float32, copy=False)
        arrays[f"{split}_labels"] = labels.astype(np.int64, copy=False)
    if len(arrays["test_labels"]) == 0:
        raise RunFileError(f"{name} holds no test predictions")
    if arrays["val_logits"].shape[1] != arrays["test_logits"].shape[1] and len(
        arrays["val_labels"]
    ):
        raise RunFileError(f"{name}: val and test logits have different class counts")
    if TRAIN_GAP_ARRAY in arrays:  # optional (older runs lack it); float16 when packed
        gap = arrays[TRAIN_GAP_ARRAY]
        if gap.ndim != 1 or gap.dtype.kind != "f":
            raise RunFileError(f"{name}: {TRAIN_GAP_ARRAY} has the wrong shape or type")
        arrays[TRAIN_GAP_ARRAY] = gap.astype(np.float32, copy=False)
    return arrays


def record_strength(record: dict[str, Any]) -> float:
    """A run record's strength: "strength" since other objectives exist, "alpha" before
    (and for label smoothing)."""
    return float(record["strength"] if "strength" in record else record["alpha"])


def read_history(path: Path) -> list[dict[str, float]]:
    """A run's history.csv as floats (RunFileError if it is not one)."""
    if not path.is_file():
        raise RunFileError(f"{path.name} is missing")
    try:
        with path.open(newline="") as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except (OSError, ValueError, TypeError, csv.Error, UnicodeDecodeError):
        raise RunFileError(f"{path.name} is not a history written by lsexp") from None


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_run_files(path: Path, record: dict[str, Any]) -> None:
    """Raise RunFileError unless a done run's files read back as lsexp wrote them: the
    predictions and history parse, and each file matches the digest run.json recorded."""
    read_predictions(path / PREDICTIONS_FILE)
    read_history(path / HISTORY_FILE)
    for name, digest in (record.get("files") or {}).items():
        if name not in (PREDICTIONS_FILE, HISTORY_FILE, PENULTIMATE_FILE, WEIGHTS_FILE):
            continue
        if not (path / name).is_file() or file_digest(path / name) != digest:
            raise RunFileError(f"{name} was changed after the run wrote it")


@dataclass(frozen=True)
class RunState:
    """A run's state in a results folder, and why a finished-looking run is not done."""

    status: str  # done | diverged | failed | pending
    problem: str | None = None  # set when the run looked finished but cannot be used


# ---------------------------------------------------------------------------------------
# Per-run claims: several workers (shards, Slurm array tasks) share one results folder
# ---------------------------------------------------------------------------------------


class RunClaim:
    """An exclusive claim on one run: `runs/<run>/.claim` with host, pid and a heartbeat.

    The file is created with O_EXCL, so two workers never both claim a run. A background
    thread refreshes its mtime every `HEARTBEAT_SECONDS`; a claim whose mtime is older than
    the grace period belongs to a dead worker and may be taken over (see `try_claim`).
    """

    def __init__(self, path: Path, token: str, heartbeat: float = HEARTBEAT_SECONDS):
        self.path = path
        self.token = token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat,), daemon=True)
        self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError, ValueError):
            if json.loads(self.path.read_text()).get("token") == self.token:
                self.path.unlink()


def _claim_info(token: str) -> bytes:
    return json.dumps({
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "claimed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "token": token,
    }).encode()  # fmt: skip


def _claim_live(path: Path, grace: float) -> bool:
    """A claim is live while its heartbeat is fresh; on this host, while its pid exists too."""
    age = _age(path)
    if age is None or age > grace:
        return False
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return True  # being written right now
    if isinstance(info, dict) and info.get("host") == socket.gethostname():
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return False  # killed (SIGKILL, OOM): no need to wait for the grace period
        except (OSError, KeyError, ValueError, TypeError):
            pass
    return True


def _age(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------


class ResultsStore:
    """One sweep's results folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs_dir = self.root / RUNS_DIR
        self.report_dir = self.root / REPORT_DIR
        self.slurm_dir = self.root / SLURM_DIR
        self.sweep_file = self.root / SWEEP_FILE
        self._moved: dict[str, Path] | None = None  # run id -> folder named by an older id

    # -- folder-wide lock ----------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[Callable[[str | None], None]]:
        """Hold the folder's lock for the duration; LockedError names the holder if taken.

        Yields `set_running(run_id)`, which records the run in training in the lock file so
        that `lsexp status` can show it as running.
        """
        self.ensure_writable()
        path = self.root / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                holder = _read_holder(path)
                raise LockedError(
                    f"{self.root} is in use by another sweep ({holder}); wait for it to finish, "
                    "or write elsewhere with --out DIR"
                ) from None
            holder = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }

            def set_running(run_id: str | None) -> None:
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps({**holder, "running": run_id}).encode(), 0)

            set_running(None)
            try:
                yield set_running
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def running_run_id(self) -> str | None:
        """The run a live sweep is training now, from the lock file (None if none)."""
        try:
            holder = json.loads((self.root / LOCK_FILE).read_text())
        except (OSError, ValueError):
            return None  # no lock file, or empty: released
        if not isinstance(holder, dict):
            return None
        if holder.get("host") == socket.gethostname():
            # Same machine: a holder killed with SIGKILL leaves its text behind; check the pid.
            try:
                os.kill(int(holder["pid"]), 0)
            except (OSError, KeyError, ValueError, TypeError):
                return None
        return holder.get("running")

    def ensure_writable(self) -> None:
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe"):
                pass
        except OSError as e:
            raise ResultsError(
                f"cannot write results to {self.root} ({e.strerror}); choose a writable "
                "folder with --out DIR"
            ) from None

    def remove_stale_temp_files(self, grace: float = DEFAULT_CLAIM_GRACE) -> int:
        """Delete temp files left by writers that were killed mid-write.

        A run folder's temp files are removed unless a live claim protects the run (its
        worker may be writing right now); temp files of the folder itself (sweep.yaml)
        once they are older than `grace`.
        """
        n = 0
        paths = [p for p in self.root.glob(".*.tmp") if (_age(p) or 0) > grace]
        for run_dir in self.runs_dir.glob("*/"):
            if not _claim_live(run_dir / CLAIM_FILE, grace):
                paths += run_dir.glob(".*.tmp")
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                n += 1
        return n

    # -- per-run claims ------------------------------------------------------------------

    def try_claim(
        self,
        spec: RunSpec,
        grace: float = DEFAULT_CLAIM_GRACE,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> RunClaim | None:
        """Claim a run for this process, or None if a live worker holds it.

        A dead worker's claim (heartbeat older than `grace`) is taken over. Only the
        worker that creates the takeover file (O_EXCL) may replace a stale claim, so two
        workers taking over at once cannot both win.
        """
        run_dir = self.run_path(spec)
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / CLAIM_FILE
        token = uuid.uuid4().hex
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return self._take_over(path, token, grace, heartbeat)
        with os.fdopen(fd, "wb") as f:
            f.write(_claim_info(token))
        return RunClaim(path, token, heartbeat)

    def _take_over(self, path: Path, token: str, grace: float, heartbeat: float):
        if _claim_live(path, grace):
            return None  # a live worker holds it
        guard = path.with_name(TAKEOVER_FILE)
        try:
            fd = os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            guard_age = _age(guard)
            if guard_age is not None and guard_age > grace:  # a taker died mid-takeover
                with contextlib.suppress(FileNotFoundError):
                    guard.unlink()
            return None
        os.close(fd)
        try:
            if _claim_live(path, grace):  # re-check under the guard: someone may have just won
                return None
            atomic_write_bytes(path, _claim_info(token))
            return RunClaim(path, token, heartbeat)
        finally:
            with contextlib.suppress(FileNotFoundError):
                guard.unlink()

    def claim_holder(self, spec: RunSpec, grace: float = DEFAULT_CLAIM_GRACE) -> dict | None:
        """Who holds a live claim on the run (None if nobody, or the claim is stale)."""
        path = self.run_path(spec) / CLAIM_FILE
        if not _claim_live(path, grace):
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {"host": "?", "pid": "?"}

    # -- sweep config --------------------------------------------------------------------

    def read_sweep_file(self) -> dict[str, Any] | None:
        path = self.sweep_file
        if not path.exists():
            return None
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            return None
        return data if isinstance(data, dict) else None

    def check_can_hold_sweep(self) -> None:
        """Refuse a folder that is not, and cannot become, this sweep's results folder.

        A sweep writes sweep.yaml, runs/, report/ and .lock into its folder. So the folder
        must be new, empty, or already an lsexp sweep; a sweep.yaml that lsexp did not
        write (a user's config, say) is never overwritten, and a folder holding anything
        else is somebody else's. Raises ResultsError (exit 2) saying what is there.
        """
        root = self.root
        where = "the current folder" if str(root) in ("", ".") else str(root)
        if root.exists() and not root.is_dir():
            raise ResultsError(f"{where} is a file, not a folder; choose a folder with --out DIR")
        if not root.is_dir():
            return
        sweep_file = self.sweep_file
        if sweep_file.exists() or sweep_file.is_symlink():
            if not _is_sweep_record(self.read_sweep_file()):
                raise ResultsError(
                    f"{sweep_file} was not written by lsexp (a config file?) and a sweep "
                    f"would overwrite it; write the results elsewhere with --out DIR "
                    f"(e.g. --out {Path(where) / 'results'})"
                    if where != "the current folder"
                    else f"{where} holds a sweep.yaml that lsexp did not write (a config file?) "
                    "and a sweep would overwrite it; write the results elsewhere with --out DIR"
                )
            return
        try:
            entries = sorted(root.iterdir())
        except OSError as e:
            raise ResultsError(
                f"cannot read {where} ({e.strerror}); choose another --out DIR"
            ) from None
        foreign = [
            p.name + ("/" if p.is_dir() else "")
            for p in entries
            if p.name not in OWN_ENTRIES and not _is_temp_name(p.name)
        ]
        if foreign:
            shown = ", ".join(foreign[:4]) + (
                f" and {len(foreign) - 4} more" if len(foreign) > 4 else ""
            )
            raise ResultsError(
                f"{where} is not empty and holds no lsexp sweep (it has {shown}); write the "
                "results to a new or empty folder with --out DIR"
            )

    def check_same_identity(self, config: SweepConfig) -> None:
        """Refuse to mix runs of a different recipe into this folder (alpha/seeds may grow)."""
        previous = self.read_sweep_file()
        if not previous or previous.get("config_hash") in (None, config_hash(config)):
            return
        try:
            old = self._validate_stored(previous)
        except ConfigError:
            old = None
        diffs = _diff_keys(old.identity(), config.identity()) if old is not None else ["?"]
        if not diffs:  # differs only in report-only settings (e.g. eval.n_bins)
            return
        raise ResultsError(
            f"{self.root} holds a sweep with different settings (changed: {', '.join(diffs)}); "
            "use a new --out DIR, or --force-new to add runs of the new settings beside the old"
        )

    def write_sweep_file(self, config: SweepConfig) -> None:
        header = (
            f"# Written by lsexp {__version__}. The resolved config of this sweep; runs in "
            f"runs/ whose config_hash differs are ignored by `lsexp report`.\n"
        )
        body = yaml.safe_dump(
            {"lsexp_version": __version__, "config_hash": config_hash(config)}, sort_keys=False
        )
        text = header + body + "config:\n" + _indent(config_to_yaml(config))
        atomic_write_text(self.sweep_file, text)

    def load_config(self) -> SweepConfig:
        data = self.read_sweep_file()
        if data is None:
            raise ResultsError(f"{self.root}: no readable {SWEEP_FILE}; is this a sweep folder?")
        return self._validate_stored(data)

    def _validate_stored(self, data: dict[str, Any]) -> SweepConfig:
        return validate(data.get("config"), str(self.sweep_file))

    # -- runs ----------------------------------------------------------------------------

    def run_path(self, spec: RunSpec) -> Path:
        """The run's folder: named by its id, or an older folder of the same run made when
        a report-only setting was still part of the id (see `config.REPORT_ONLY`)."""
        path = self.runs_dir / spec.dirname
        if path.exists():
            return path
        return self._older_folders().get(spec.run_id, path)

    def weights_path(self, spec: RunSpec) -> Path:
        """Where a teacher's trained weights are (see `write_run`)."""
        return self.run_path(spec) / WEIGHTS_FILE

    def _older_folders(self) -> dict[str, Path]:
        if self._moved is None:
            self._moved = {}
            for run_json in self.runs_dir.glob(f"*/{RUN_FILE}"):
                try:
                    record = json.loads(run_json.read_text())
                    run_id = normalized_run_id(record)
                except (OSError, ValueError, AttributeError, TypeError):
                    continue
                if run_id and not run_json.parent.name.endswith(f"_{run_id}"):
                    self._moved[run_id] = run_json.parent
        return self._moved

    def _is_record_of(self, record: Any, spec: RunSpec) -> bool:
        if not isinstance(record, dict):
            return False
        return record.get("run_id") == spec.run_id or normalized_run_id(record) == spec.run_id

    def read_record(self, spec: RunSpec) -> dict[str, Any] | None:
        try:
            record = json.loads((self.run_path(spec) / RUN_FILE).read_text())
        except (OSError, ValueError):
            return None
        return record if self._is_record_of(record, spec) else None

    def status_of(self, spec: RunSpec) -> str:
        """done | diverged | failed | pending (see `inspect`)."""
        return self.inspect(spec).status

    def inspect(self, spec: RunSpec) -> RunState:
        """The run's state, checking the files of a done run: one that cannot be read back
        (a predictions.npz or history.csv replaced or truncated, a digest that no longer
        matches) is not done, and says why, so the next sweep trains it again."""
        path = self.run_path(spec)
        try:
            raw = (path / RUN_FILE).read_text()
        except FileNotFoundError:
            return RunState("pending")
        except OSError as e:
            return RunState("pending", f"{RUN_FILE} is unreadable ({e.strerror})")
        try:
            record = json.loads(raw)
        except ValueError:
            return RunState("pending", f"{RUN_FILE} is not valid JSON")
        if not self._is_record_of(record, spec):
            return RunState("pending", f"{RUN_FILE} is not this run's record")
        status = record.get("status")
        if status not in ("done", "diverged", "failed"):
            return RunState("pending", f"{RUN_FILE} has an unknown status {status!r}")
        if status != "done":
            return RunState(status)
        try:
            check_run_files(path, record)
        except RunFileError as e:
            return RunState("pending", str(e))
        if spec.teaches and WEIGHTS_FILE not in (record.get("files") or {}):
            return RunState("pending", "a distillation teacher, trained before its weights "
                                       f"were saved ({WEIGHTS_FILE})")  # fmt: skip
        return RunState("done")

    def write_run(
        self,
        spec: RunSpec,
        record: dict[str, Any],
        history: list[dict[str, Any]],
        predictions: dict[str, np.ndarray] | None,
        penultimate: dict[str, np.ndarray] | None = None,
        weights: bytes | None = None,
    ) -> Path:
        """Write a finished run; run.json goes last, so it marks the run complete.

        A record with a `timings` dict gets `timings["write"]`: the seconds spent writing
        the other files (run.json, written last, is a few hundred bytes).
        """
        started = time.perf_counter()
        path = self.run_path(spec)
        path.mkdir(parents=True, exist_ok=True)
        digests: dict[str, str] = {}
        for name, arrays in ((PREDICTIONS_FILE, predictions), (PENULTIMATE_FILE, penultimate)):
            if arrays is not None:
                buf = io.BytesIO()
                np.savez(buf, **arrays)
                data = buf.getvalue()
                atomic_write_bytes(path / name, data)
                digests[name] = hashlib.sha256(data).hexdigest()
        if weights is not None:
            atomic_write_bytes(path / WEIGHTS_FILE, weights)
            digests[WEIGHTS_FILE] = hashlib.sha256(weights).hexdigest()
        history_text = csv_text(history)
        atomic_write_text(path / HISTORY_FILE, history_text)
        digests[HISTORY_FILE] = hashlib.sha256(history_text.encode("utf-8")).hexdigest()
        if isinstance(record.get("timings"), dict):
            timings = {**record["timings"], "write": round(time.perf_counter() - started, 3)}
            record = {**record, "timings": timings}
        # The digests let the next sweep tell a file lsexp wrote from one replaced later.
        write_json(path / RUN_FILE, {**record, "files": digests} if predictions else record)
        return path

    def scan(self) -> tuple[list[StoredRun], list[UnreadableRun]]:
        """Every run folder: parsed records, and those whose run.json is missing or corrupt."""
        runs: list[StoredRun] = []
        bad: list[UnreadableRun] = []
        if not self.runs_dir.is_dir():
            return runs, bad
        for path in sorted(p for p in self.runs_dir.iterdir() if p.is_dir()):
            file = path / RUN_FILE
            if not file.exists():
                bad.append(UnreadableRun(path, "no run.json (unfinished or interrupted)"))
                continue
            try:
                record = json.loads(file.read_text())
                if not isinstance(record, dict) or "status" not in record:
                    raise ValueError("not a run record")
                record_strength(record), int(record["seed"])
            except (OSError, ValueError, KeyError, TypeError) as e:
                bad.append(UnreadableRun(path, f"corrupt run.json ({e})"))
                continue
            runs.append(StoredRun(path, record))
        return runs, bad


def _is_sweep_record(data: dict[str, Any] | None) -> bool:
    """Whether parsed sweep.yaml data is the record `write_sweep_file` writes."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("config_hash"), str)
        and isinstance(data.get("config"), dict)
        and "lsexp_version" in data
    )


def _is_temp_name(name: str) -> bool:
    """Files lsexp leaves while it writes (atomic temp files, the writability probe)."""
    return name.startswith((".probe", ".report-")) or (
        name.startswith(".") and name.endswith(".tmp")
    )


def default_sweep_dir(name: str) -> Path:
    """A sweep's results folder when no --out is given: results/<name>."""
    return RESULTS_ROOT / name


def find_sweeps(results_root: Path) -> list[Path]:
    """Sweep folders (those holding a sweep.yaml) directly under `results_root`."""
    if (results_root / SWEEP_FILE).exists():
        return [results_root]
    if not results_root.is_dir():
        return []
    return sorted(p for p in results_root.iterdir() if (p / SWEEP_FILE).exists())


def _read_holder(path: Path) -> str:
    try:
        h = json.loads(path.read_text())
        return f"pid {h['pid']} on {h['host']}, started {h['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [f"{prefix[:-1]} {a!r} -> {b!r}"]


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())
