"""`lsexp sweep --workers N`: worker processes share one sweep, each run trained once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lsexp.errors import EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_RUN_FAILED, EXIT_USAGE
from lsexp.running.workers import combine_exit_codes, threads_per_worker, worker_command
from tests.conftest import run_lsexp, tiny_config_dict


def _cfg(tmp_path: Path, **sections) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict(**sections)))
    return path


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("runs/*/run.json"))]


def test_exit_code_is_the_most_serious_one():
    assert combine_exit_codes([0, 0]) == 0
    assert combine_exit_codes([0, EXIT_RUN_FAILED]) == EXIT_RUN_FAILED
    assert combine_exit_codes([EXIT_RUN_FAILED, EXIT_USAGE]) == EXIT_USAGE
    assert combine_exit_codes([EXIT_USAGE, EXIT_INTERRUPTED, 0]) == EXIT_INTERRUPTED
    assert combine_exit_codes([0, EXIT_LOCKED]) == EXIT_LOCKED
    assert combine_exit_codes([0, -9]) == -9  # killed by a signal: not success


def test_threads_are_split_evenly():
    assert [threads_per_worker(n, 2) for n in (1, 2, 3)] == [2, 1, 1]
    assert threads_per_worker(4, 16) == 4


def test_worker_command_passes_the_sweep_on():
    cmd = worker_command(Path("c.yaml"), ["train.epochs=1"], Path("out"), device="cpu",
                         retry_failed=True, force_new=False, claim_grace=60.0)  # fmt: skip
    assert cmd[1:] == ["-m", "lsexp", "sweep", "c.yaml", "train.epochs=1", "--out", "out",
                       "--shard", "0/1", "--claim-grace", "60.0", "--device", "cpu",
                       "--retry-failed"]  # fmt: skip
    more = worker_command(Path("c.yaml"), [], Path("out"), device=None, retry_failed=False,
                          force_new=True, claim_grace=600.0, compile=True)  # fmt: skip
    assert more[-2:] == ["--force-new", "--compile"] and "--device" not in more


def test_workers_train_every_run_once(tmp_path):
    cfg = _cfg(tmp_path, sweep={"alpha": [0.0, 0.1, 0.2], "seeds": [0, 1]})
    out = tmp_path / "out"
    result = run_lsexp("sweep", str(cfg), "--workers", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    records = _records(out)
    assert len(records) == 6 and all(r["status"] == "done" for r in records)
    assert len({(r["alpha"], r["seed"]) for r in records}) == 6
    assert {r["provenance"]["workers"] for r in records} == {2}
    assert {r["provenance"]["engine"]["runs_at_once"] for r in records} == {2}
    assert len({r["provenance"]["pid"] for r in records}) <= 2
    assert "[w0] " in result.stdout and "[w1] " in result.stdout
    assert "6 trained, 0 already finished" in result.stdout
    assert not list(out.glob("runs/*/.claim"))  # every claim released
    again = run_lsexp("sweep", str(cfg), "--workers", "2", "--out", str(out))
    assert again.returncode == 0 and "0 trained, 6 already finished" in again.stdout


def test_workers_do_not_combine_with_shard(tmp_path):
    result = run_lsexp("sweep", str(_cfg(tmp_path)), "--workers", "2", "--shard", "0/2")
    assert result.returncode == EXIT_USAGE
    assert result.stderr.strip().startswith("error: --workers cannot be combined with --shard")
    assert "Traceback" not in result.stderr


def test_workers_check_the_data_and_folder_first(tmp_path):
    cfg = _cfg(tmp_path, data={"name": "mnist", "root": str(tmp_path / "nodata")})
    result = run_lsexp("sweep", str(cfg), "--workers", "2", "--out", str(tmp_path / "out"))
    assert result.returncode == EXIT_USAGE and "lsexp data" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing created, no worker started
    assert "[w0]" not in result.stdout


@pytest.mark.slow
def test_sigterm_stops_every_worker_and_the_sweep_resumes(tmp_path):
    # A few seconds per run: long enough to be stopped mid-run.
    cfg = _cfg(tmp_path, model={"name": "cnn", "width": 8}, train={"epochs": 8},
               sweep={"alpha": [0.0, 0.1, 0.2], "seeds": [0]})  # fmt: skip
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "lsexp", "sweep", str(cfg), "--workers", "2",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)  # fmt: skip
    deadline = time.time() + 120
    while len(list(out.glob("runs/*/.claim"))) < 2:  # both workers are training
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    # The parent holds the folder lock: a plain sweep into the same folder is refused.
    other = run_lsexp("sweep", str(cfg), "--out", str(out))
    assert other.returncode == EXIT_LOCKED, other.stderr
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, (stdout, stderr)
    assert "interrupted; finished runs are saved" in stderr
    worker_pids = {int(line.split()[1]) for line in _ps_children(proc.pid)}
    assert not worker_pids  # no worker left behind
    assert not list(out.glob("runs/*/.claim")) and not list(out.glob("runs/*/*.tmp*"))
    assert len(_records(out)) < 3  # stopped before the end
    resumed = run_lsexp("sweep", str(cfg), "--workers", "2", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert [r["status"] for r in _records(out)] == ["done"] * 3


def _ps_children(pid: int) -> list[str]:
    if not Path("/proc").exists():
        return []
    lines = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            lines.append(f"pid {stat.parent.name}")
    return lines


def test_worker_does_not_print_the_sweep_summary(tmp_path):
    cfg = _cfg(tmp_path, sweep={"alpha": [0.0], "seeds": [0]})
    result = run_lsexp("sweep", str(cfg), "--out", str(tmp_path / "out"), "--shard", "0/1",
                       env={"LSEXP_WORKERS": "2"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "sweep results in" not in result.stdout
    (record,) = _records(tmp_path / "out")
    assert record["provenance"]["workers"] == 2
    assert record["provenance"]["engine"]["runs_at_once"] == 2
