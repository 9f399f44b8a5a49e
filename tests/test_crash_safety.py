"""Crash safety: a sweep loses and duplicates no run whatever stops it or breaks under it.

SIGKILL and SIGTERM mid-sweep, then a resume (and `status` meanwhile); the folder lock
(held, and freed when its holder dies); a changed recipe on resume; a failed run and
--retry-failed; a full disk; stale temp files; corrupt and malicious result files.
(Reliability *diagrams*, the calibration figure, are tested in test_metrics.py and
test_figures.py.)
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from lsexp.cli import app
from lsexp.config import validate
from lsexp.results import store
from lsexp.results.store import ResultsStore
from lsexp.running import sweep
from lsexp.running.sweep import run_sweep
from tests.conftest import fail_runs_at_alpha, run_lsexp, tiny_config_dict

FOUR_RUNS = {"sweep": {"alpha": [0.0, 0.1, 0.2, 0.3], "seeds": [0]}}


def _write_config(tmp_path: Path, **sections) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict(**sections)))
    return path


def _start_sweep(cfg: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lsexp", "sweep", str(cfg), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _wait_for_runs(out: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(list(out.glob("runs/*/run.json"))) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"sweep ended early: {proc.communicate()}")
        time.sleep(0.05)
    pytest.fail("timed out waiting for runs")


def _finished(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for run in out.glob("runs/*")
        if (run / "run.json").exists()
        for p in run.iterdir()
    }


@pytest.mark.slow
def test_kill_9_mid_sweep_then_rerun_loses_and_duplicates_nothing(tmp_path):
    cfg = _write_config(tmp_path, **FOUR_RUNS)
    out = tmp_path / "out"
    proc = _start_sweep(cfg, out)
    _wait_for_runs(out, 1, proc)
    time.sleep(0.3)  # somewhere inside the next run
    proc.kill()
    proc.wait()
    before = _finished(out)
    assert before, "expected at least one finished run before the kill"

    again = run_lsexp("sweep", str(cfg), "--out", str(out))
    assert again.returncode == 0, again.stderr
    after = _finished(out)
    assert {k: after[k] for k in before} == before  # byte-identical, not retrained
    run_dirs = sorted(p.name for p in out.glob("runs/*"))
    assert len(run_dirs) == 4
    ids = [json.loads((out / "runs" / d / "run.json").read_text())["run_id"] for d in run_dirs]
    assert len(set(ids)) == 4
    assert all(json.loads((out / "runs" / d / "run.json").read_text())["status"] == "done"
               for d in run_dirs)  # fmt: skip
    assert not list(out.rglob("*.tmp"))
    trained = again.stdout.count(" done: ")
    assert trained == 4 - len({k.split("/")[1] for k in before})


@pytest.mark.slow
def test_sigterm_stops_cleanly_with_exit_130_and_resume_completes(tmp_path):
    cfg = _write_config(tmp_path, **FOUR_RUNS)
    out = tmp_path / "out"
    proc = _start_sweep(cfg, out)
    _wait_for_runs(out, 1, proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Run the same command again to resume" in stderr.replace("\n", " ")
    assert "Traceback" not in stderr
    with ResultsStore(out).lock():  # the lock was released
        pass
    again = run_lsexp("sweep", str(cfg), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert len(list(out.glob("runs/*/run.json"))) == 4


@pytest.mark.slow
def test_status_shows_the_run_in_training(tmp_path):
    cfg = _write_config(tmp_path, **FOUR_RUNS)
    out = tmp_path / "out"
    proc = _start_sweep(cfg, out)
    try:
        _wait_for_runs(out, 1, proc)
        result = CliRunner().invoke(app, ["status", str(out), "--json"])
        states = [r["status"] for r in json.loads(result.output)[0]["runs"]]
    finally:
        proc.kill()
        proc.wait()
    assert states.count("running") <= 1 and "done" in states
    assert "running" in states or states.count("done") == 4
    # Killed: nothing is running any more, the interrupted run is pending again.
    result = CliRunner().invoke(app, ["status", str(out), "--json"])
    states = [r["status"] for r in json.loads(result.output)[0]["runs"]]
    assert "running" not in states


def test_lock_names_the_holder_and_is_freed_when_the_holder_dies(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom lsexp.results.store import ResultsStore\n"
         f"with ResultsStore({str(out)!r}).lock():\n"
         "    print('locked', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        cfg = _write_config(tmp_path)
        result = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out)])
        assert result.exit_code == 3
        assert f"pid {holder.pid}" in result.output
    finally:
        holder.kill()
        holder.wait()
    with ResultsStore(out).lock():  # the kernel dropped the dead holder's flock
        pass


def test_changed_recipe_exits_2_naming_the_keys(tmp_path):
    cfg = _write_config(tmp_path, sweep={"alpha": [0.1], "seeds": [0]})
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(app, ["sweep", str(cfg), "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["sweep", str(cfg), "train.lr=0.01", "--out", str(out)])
    assert result.exit_code == 2
    assert "train.lr 0.05 -> 0.01" in result.output
    forced = runner.invoke(app, ["sweep", str(cfg), "train.lr=0.01", "--out", str(out),
                                 "--force-new"])  # fmt: skip
    assert forced.exit_code == 0
    assert len(list(out.glob("runs/*/run.json"))) == 2


def test_failed_run_exits_1_and_retry_failed_reruns_only_it(tmp_path, monkeypatch):
    real = fail_runs_at_alpha(monkeypatch, 0.2)
    cfg = _write_config(tmp_path)
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(app, ["sweep", str(cfg), "--out", str(out)])
    assert result.exit_code == 1
    assert "--retry-failed" in result.output
    monkeypatch.setattr(sweep, "train_run", real)
    assert runner.invoke(app, ["sweep", str(cfg), "--out", str(out)]).exit_code == 1
    result = runner.invoke(app, ["sweep", str(cfg), "--out", str(out), "--retry-failed"])
    assert result.exit_code == 0
    assert "1 trained, 1 already finished" in result.output


def test_disk_full_fails_the_run_and_keeps_earlier_results(tmp_path, monkeypatch):
    config = validate(tiny_config_dict(), "<test>")
    out = tmp_path / "out"
    real = store.atomic_write_bytes
    calls = {"n": 0}

    def full_after_first_run(path, data):
        if path.name == "predictions.npz":
            calls["n"] += 1
            if calls["n"] > 1:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", full_after_first_run)
    result = run_sweep(config, out)
    assert [o.status for o in result.outcomes] == ["done", "failed"]
    assert "No space left" in result.outcomes[1].summary["error"]
    first = next(out.glob("runs/*a0.00*"))
    assert json.loads((first / "run.json").read_text())["status"] == "done"
    assert (first / "predictions.npz").exists()
    assert not list(out.rglob("*.tmp"))


def test_stale_temp_files_are_cleaned_by_the_next_sweep(tmp_path):
    config = validate(tiny_config_dict(sweep={"alpha": [0.1], "seeds": [0]}), "<test>")
    out = tmp_path / "out"
    run_sweep(config, out)
    run_dir = next(out.glob("runs/*"))
    (run_dir / ".run.json.abc123.tmp").write_text('{"half')
    run_sweep(config, out)
    assert not list(out.rglob("*.tmp"))


def test_report_strict_exits_1_on_a_corrupt_run(tmp_path):
    config = validate(tiny_config_dict(sweep={"alpha": [0.1], "seeds": [0, 1]}), "<test>")
    out = tmp_path / "out"
    run_sweep(config, out)
    next(out.glob("runs/*/run.json")).write_text("{ truncated")
    runner = CliRunner()
    lenient = runner.invoke(app, ["report", str(out)])
    assert lenient.exit_code == 0
    assert "corrupt run.json" in lenient.output
    assert runner.invoke(app, ["report", str(out), "--strict"]).exit_code == 1


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))


def test_a_malicious_pickle_in_predictions_runs_no_code(tmp_path):
    config = validate(tiny_config_dict(sweep={"alpha": [0.1], "seeds": [0, 1]}), "<test>")
    out = tmp_path / "out"
    run_sweep(config, out)
    _Evil.marker = tmp_path / "pwned"
    target = next(out.glob("runs/*/predictions.npz"))
    evil = np.empty(1, dtype=object)
    evil[0] = _Evil()
    with target.open("wb") as f:
        np.savez(f, test_logits=evil, test_labels=evil, val_logits=evil, val_labels=evil)
    assert b"system" in target.read_bytes()  # the payload is really in the file
    rep = CliRunner().invoke(app, ["report", str(out)])
    assert rep.exit_code == 0
    assert "predictions.npz holds Python objects" in rep.output
    assert not _Evil.marker.exists()
