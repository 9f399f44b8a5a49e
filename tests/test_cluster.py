"""Sharded sweeps, per-run claims and the submitit job-array path."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lsexp.cli import app
from lsexp.config import config_data, validate
from lsexp.errors import EXIT_USAGE, LsexpError
from lsexp.reporting.report import write_report
from lsexp.results.store import CLAIM_FILE, ResultsStore, plan_runs
from lsexp.running.cluster import _array_task, _SlurmStop, parse_shard, signal_delay_s
from lsexp.running.sweep import run_sweep, select_shard
from tests.conftest import run_lsexp, tiny_config_dict

SIX_RUNS = {"sweep": {"alpha": [0.0, 0.1, 0.3], "seeds": [0, 1]}}


def _config(**sections):
    return validate(tiny_config_dict(**sections), "<test>")


def test_parse_shard_from_text_and_slurm_environment():
    assert parse_shard("0/4", {}) == (0, 4)
    assert parse_shard("3/4", {}) == (3, 4)
    assert parse_shard(None, {}) is None
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert parse_shard(None, env) == (2, 4)
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"}) == (0, 2)
    for bad in ("4/4", "-1/3", "1/0", "a/b", "3"):
        with pytest.raises(LsexpError, match="--shard"):
            parse_shard(bad, {})


@pytest.mark.parametrize("n", range(1, 8))
def test_shards_cover_the_plan_exactly_once(n):
    plan = plan_runs(_config(sweep={"alpha": [0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5],
                                    "seeds": [0, 1, 2]}))  # fmt: skip
    parts = [select_shard(plan, i, n) for i in range(n)]
    ids = [s.run_id for part in parts for s in part]
    assert sorted(ids) == sorted(s.run_id for s in plan)
    assert len(ids) == len(set(ids))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced


def _write_claim(path: Path, host: str, pid: int, age: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "token": "x"}))
    t = time.time() - age
    os.utime(path, (t, t))


def test_claims_are_exclusive_and_stale_ones_are_taken_over(tmp_path):
    store = ResultsStore(tmp_path)
    spec = plan_runs(_config())[0]
    first = store.try_claim(spec)
    assert first is not None
    assert store.try_claim(spec) is None  # held by a live worker (this process)
    assert store.claim_holder(spec)["pid"] == os.getpid()
    first.release()
    assert not (store.run_path(spec) / CLAIM_FILE).exists()

    claim = store.run_path(spec) / CLAIM_FILE
    _write_claim(claim, "other-host", 1, age=10)  # fresh heartbeat on another machine
    assert store.try_claim(spec, grace=60) is None
    _write_claim(claim, "other-host", 1, age=120)  # silent for longer than the grace period
    taken = store.try_claim(spec, grace=60)
    assert taken is not None
    assert json.loads(claim.read_text())["pid"] == os.getpid()
    taken.release()

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_claim(claim, socket.gethostname(), dead.pid, age=1)  # same host, process gone
    again = store.try_claim(spec, grace=600)
    assert again is not None
    again.release()


def test_heartbeat_keeps_a_claim_fresh(tmp_path):
    store = ResultsStore(tmp_path)
    spec = plan_runs(_config())[0]
    claim = store.try_claim(spec, heartbeat=0.05)
    path = store.run_path(spec) / CLAIM_FILE
    old = time.time() - 1000
    os.utime(path, (old, old))
    time.sleep(0.3)
    assert time.time() - path.stat().st_mtime < 1
    claim.release()


def test_a_run_claimed_elsewhere_is_skipped(tmp_path):
    config = _config()
    spec = plan_runs(config)[0]
    store = ResultsStore(tmp_path / "out")
    _write_claim(store.run_path(spec) / CLAIM_FILE, "other-host", 1, age=5)
    result = run_sweep(config, tmp_path / "out", shard=(0, 1))
    assert sorted(o.status for o in result.outcomes) == ["done", "skipped-claimed"]


@pytest.mark.slow
def test_two_workers_on_one_folder_train_each_run_once(tmp_path):
    cfg = tmp_path / "six.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config_dict(**SIX_RUNS)))
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "lsexp", "sweep", str(cfg), "--out", str(out), "--shard", "0/1"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    records = [json.loads(p.read_text()) for p in out.glob("runs/*/run.json")]
    assert len(records) == 6 and all(r["status"] == "done" for r in records)
    trained = [int(o.split(" trained,")[0].rsplit("\n", 1)[-1]) for o, _ in outputs]
    assert sum(trained) == 6  # no run trained twice


@pytest.mark.slow
def test_three_shards_give_the_same_report_as_one_sweep(tmp_path):
    config = _config(**SIX_RUNS)
    for i in range(3):
        run_sweep(config, tmp_path / "sharded", shard=(i, 3))
    run_sweep(config, tmp_path / "single")
    rows = {}
    for name in ("sharded", "single"):
        write_report(tmp_path / name)
        with (tmp_path / name / "report" / "summary.csv").open() as f:
            rows[name] = list(csv.DictReader(f))
    assert rows["sharded"] == rows["single"]


def test_submitit_debug_executor_runs_the_sweep_end_to_end(tmp_path):
    pytest.importorskip("submitit")
    cfg = tmp_path / "six.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config_dict(**SIX_RUNS)))
    out = tmp_path / "array"
    result = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out), "--executor", "debug"])
    assert result.exit_code == 0, result.output
    assert "submitted 6 run(s) as a job array" in result.output
    records = [json.loads(p.read_text()) for p in out.glob("runs/*/run.json")]
    assert sorted(r["status"] for r in records) == ["done"] * 6
    again = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out), "--executor", "debug"])
    assert "nothing to submit" in again.output


def test_a_missing_dataset_stops_the_submission_before_anything_is_written(tmp_path):
    pytest.importorskip("submitit")
    cfg = tmp_path / "nodata.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config_dict(
        data={"name": "fashion_mnist", "root": str(tmp_path / "empty")})))  # fmt: skip
    out = tmp_path / "out"
    result = run_lsexp("sweep", str(cfg), "--out", str(out), "--executor", "local")
    assert result.returncode == EXIT_USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "fashion_mnist" in lines[0] and "lsexp data" in lines[0]
    assert "submitted" not in result.stdout
    assert not out.exists()  # no sweep.yaml, no task pickles, no logs


def test_executor_slurm_without_sbatch_is_refused(tmp_path, monkeypatch):
    # submitit alone would quietly run the tasks here instead (its AutoExecutor picks Slurm
    # only when srun is on PATH).
    pytest.importorskip("submitit")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config_dict()))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "out"),
                                      "--executor", "slurm"])  # fmt: skip
    assert result.exit_code == EXIT_USAGE
    assert "sbatch not found" in result.output and "--executor local" in result.output
    assert not (tmp_path / "out").exists()


def test_slurm_warns_before_the_time_limit_within_the_limit():
    assert signal_delay_s(240) == 90  # submitit's default for real limits
    assert signal_delay_s(5) == 90
    assert signal_delay_s(3) == 30  # + up to 60 s early: still not before half the limit
    assert signal_delay_s(1) == signal_delay_s(2) == 1


def _stop(timeout_min: int, signum: int, elapsed: float) -> _SlurmStop:
    stop = _SlurmStop(timeout_min, signal_delay_s(timeout_min))
    stop.handler(signum, None)
    stop.elapsed = elapsed
    return stop


def test_stop_signals_are_told_apart_by_the_time_left():
    hour = 60 * 60
    # USR2 comes only near the limit (sbatch --signal) ...
    assert _stop(240, signal.SIGUSR2, 4 * hour - 100).at_time_limit()
    # ... or with a preemption, long before it: not the limit.
    assert not _stop(240, signal.SIGUSR2, 1 * hour).at_time_limit()
    # SIGTERM: at the limit (Slurm checks every 30 s; the task started after the job) ...
    assert _stop(240, signal.SIGTERM, 4 * hour - 20).at_time_limit()
    assert _stop(240, signal.SIGTERM, 4 * hour + 10).at_time_limit()
    # ... or scancel / preemption before it.
    assert not _stop(240, signal.SIGTERM, 30).at_time_limit()
    assert _stop(1, signal.SIGUSR2, 5).at_time_limit()  # a 1-minute task is warned early


def _task_stopped_by(signum: int, timeout_min: int, tmp_path, monkeypatch):
    """Run one array task here as Slurm would, and send it `signum` once it trains."""
    monkeypatch.setenv("SLURM_JOB_ID", "1")  # the task routes Slurm's signals only under Slurm
    config = _config(train={"epochs": 100000}, sweep={"alpha": [0.0], "seeds": [0]})
    [spec] = plan_runs(config)
    claim = ResultsStore(tmp_path).run_path(spec) / CLAIM_FILE

    def signal_when_claimed():
        deadline = time.monotonic() + 120
        while not claim.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signum)

    sender = threading.Thread(target=signal_when_claimed, daemon=True)
    sender.start()
    states = _array_task(config_data(config), str(tmp_path), spec.run_id, "cpu",
                         timeout_min=timeout_min)  # fmt: skip
    sender.join()
    return spec, states


def test_an_array_task_at_its_time_limit_records_the_run_as_failed(tmp_path, monkeypatch):
    before = signal.getsignal(signal.SIGUSR2)
    spec, states = _task_stopped_by(signal.SIGUSR2, 1, tmp_path, monkeypatch)
    assert states == [(spec.run_id, "failed")]
    record = ResultsStore(tmp_path).read_record(spec)
    assert record["status"] == "failed"
    assert record["error"].startswith("Slurm time limit: the array task's limit is 1 min")
    assert "SIGUSR2" in record["error"] and "--retry-failed" in record["error"]
    assert not (ResultsStore(tmp_path).run_path(spec) / CLAIM_FILE).exists()
    assert signal.getsignal(signal.SIGUSR2) is before  # handlers restored


def test_a_cancelled_array_task_leaves_its_run_pending(tmp_path, monkeypatch, capsys):
    spec, states = _task_stopped_by(signal.SIGTERM, 240, tmp_path, monkeypatch)
    assert states == [(spec.run_id, "pending")]
    store = ResultsStore(tmp_path)
    assert store.status_of(spec) == "pending"
    assert [p.name for p in store.run_path(spec).iterdir()] == []  # nothing partial
    assert "stays pending: submit the sweep again" in capsys.readouterr().err


def test_an_array_sbatch_refuses_leaves_no_task_files_and_says_why(tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    from submitit.core.utils import FailedJobError

    from lsexp.running.cluster import submit

    class RefusingExecutor:  # what submitit does when sbatch refuses: files written, then raise
        def __init__(self, folder, cluster):
            self.logs = Path(folder).parent

        def update_parameters(self, **params):
            pass

        def map_array(self, fn, *args):
            self.logs.mkdir(parents=True, exist_ok=True)
            (self.logs / "tasks.pkl").write_bytes(b"pickled tasks")
            raise FailedJobError("sbatch: error: invalid partition specified: gpu\n")

    monkeypatch.setattr(submitit, "AutoExecutor", RefusingExecutor)
    config = validate(tiny_config_dict(), "<test>")
    out = tmp_path / "out"
    with pytest.raises(LsexpError, match="not submitted: sbatch: error: invalid partition"):
        submit(config, out, executor="local")
    assert list(ResultsStore(out).slurm_dir.iterdir()) == []
