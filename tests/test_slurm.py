"""`lsexp sweep --executor slurm` against a real Slurm: the one-node cluster that
scripts/slurm-local.sh starts (CI starts it in .ci/run). Skipped with the reason when no
such cluster answers `sinfo` (tests/conftest.py).

Every submission pins the tasks to one thread (OMP_NUM_THREADS=1, passed on by sbatch's
default --export=ALL) and one CPU each, so that two tasks share the 2-core node and a
local sweep with the same pinning computes the same numbers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_lsexp, tiny_config_dict

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PARTITION = "batch"  # not the cluster's default partition (debug): the flag must carry it
PINNED = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    # The tasks must import this checkout's lsexp, like the test process.
    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
}
FOUR_RUNS = {"sweep": {"alpha": [0.0, 0.1, 0.2, 0.3], "seeds": [0]}}


def _config(path: Path, name: str, **sections) -> Path:
    path.write_text(yaml.safe_dump({**tiny_config_dict(**sections), "name": name}))
    return path


def _submit(cfg: Path, out: Path, *flags: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`lsexp sweep CFG --executor slurm`; returns the process and the job ids it printed."""
    result = run_lsexp("sweep", str(cfg), "--out", str(out), "--executor", "slurm",
                       "--slurm-partition", PARTITION, "--cpus-per-task", "1", *flags,
                       env=PINNED)  # fmt: skip
    match = re.search(r"as a job array: (.+)", result.stdout)
    return result, match.group(1).strip().split(", ") if match else []


def _queued(job_ids: list[str]) -> list[str]:
    """The lines squeue still shows (pending, running or completing) for these jobs."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    q = subprocess.run(["squeue", "-h", "-j", ",".join(arrays), "-o", "%i %T"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    return q.stdout.split("\n") if q.stdout.strip() else []


def _wait(job_ids: list[str], timeout: float = 300, each=None) -> None:
    """Wait until Slurm has finished the jobs; call `each()` while they are queued."""
    deadline = time.monotonic() + timeout
    while _queued(job_ids):
        assert time.monotonic() < deadline, f"jobs {job_ids} still queued after {timeout} s"
        if each is not None:
            each()
        time.sleep(0.5)


def _results(out: Path, job_ids: list[str]) -> dict[str, list]:
    """What each finished task returned ([(run id, status)]), by job id; a task that was
    killed before it returned has no result."""
    import submitit

    found = {}
    for job_id in job_ids:
        job = submitit.SlurmJob(folder=str(out / "slurm" / "%j"), job_id=job_id)
        if job.paths.result_pickle.exists():
            found[job_id] = job.result()
    return found


def _records(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in out.glob("runs/*/run.json")}


def _status(out: Path) -> list[str]:
    result = run_lsexp("status", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return [r["status"] for r in json.loads(result.stdout)[0]["runs"]]


@pytest.fixture(scope="module")
def slurm_sweep(tmp_path_factory):
    """Four runs submitted as one array, `lsexp status` read while the jobs run."""
    tmp = tmp_path_factory.mktemp("slurm_sweep")
    # 10 epochs: each run trains for a few seconds, long enough to be seen running.
    cfg = _config(tmp / "four.yaml", "slurm-four", train={"epochs": 10}, **FOUR_RUNS)
    out = tmp / "out"
    result, job_ids = _submit(cfg, out)
    assert result.returncode == 0, result.stderr
    partitions = subprocess.run(["squeue", "-h", "-j", job_ids[0].split("_")[0], "-o", "%P"],
                                capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    seen: list[list[str]] = []
    _wait(job_ids, each=lambda: seen.append(_status(out)))
    return {"cfg": cfg, "out": out, "result": result, "job_ids": job_ids, "seen": seen,
            "partitions": set(partitions.split())}  # fmt: skip


def test_a_sweep_is_one_array_task_per_run_in_the_partition_given(slurm_sweep):
    assert "submitted 4 run(s) as a job array" in slurm_sweep["result"].stdout
    job_ids = slurm_sweep["job_ids"]
    array = job_ids[0].split("_")[0]
    assert job_ids == [f"{array}_{i}" for i in range(4)]
    assert slurm_sweep["partitions"] == {PARTITION}
    records = _records(slurm_sweep["out"])
    assert sorted(r["status"] for r in records.values()) == ["done"] * 4
    assert all(r["provenance"]["threads"] == 1 for r in records.values())
    # the task logs are where the CLI says they are
    assert "task logs in" in slurm_sweep["result"].stdout
    assert all((slurm_sweep["out"] / "slurm" / j).is_dir() for j in job_ids)


def test_status_shows_the_runs_while_the_jobs_run(slurm_sweep):
    seen = slurm_sweep["seen"]
    assert any("running" in states for states in seen), seen
    assert _status(slurm_sweep["out"]) == ["done"] * 4


def test_slurm_results_equal_a_local_sweep_of_the_same_config(slurm_sweep, tmp_path):
    local = tmp_path / "local"
    result = run_lsexp("sweep", str(slurm_sweep["cfg"]), "--out", str(local), env=PINNED)
    assert result.returncode == 0, result.stderr
    on_slurm, here = _records(slurm_sweep["out"]), _records(local)
    assert sorted(on_slurm) == sorted(here)  # same run ids
    for run, record in on_slurm.items():
        assert record["run_id"] == here[run]["run_id"]
        assert record["test_metrics"] == here[run]["test_metrics"], run
        predictions = [d / "runs" / run / "predictions.npz" for d in (slurm_sweep["out"], local)]
        assert predictions[0].read_bytes() == predictions[1].read_bytes(), run


def test_resubmitting_a_finished_sweep_trains_nothing(slurm_sweep):
    out = slurm_sweep["out"]
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*")}
    result, job_ids = _submit(slurm_sweep["cfg"], out)
    assert result.returncode == 0, result.stderr
    assert "nothing to submit" in result.stdout and job_ids == []
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*")} == before


def test_a_cancelled_task_is_trained_by_the_resubmission_exactly_once(tmp_path):
    # Two runs, started together on the two CPUs; 100 epochs: a run trains for seconds
    # (about 5 s on a 2-core CI machine), and the cancel follows its claim within a second.
    cfg = _config(tmp_path / "cancel.yaml", "slurm-cancel", train={"epochs": 100},
                  sweep={"alpha": [0.0, 0.1], "seeds": [0]})  # fmt: skip
    out = tmp_path / "out"
    result, first = _submit(cfg, out)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 120
    while not (claims := sorted(out.glob("runs/*/.claim"))):
        assert time.monotonic() < deadline, "no run started within 120 s"
        time.sleep(0.1)
    # Task i trains the run at plan position i (lsexp status lists the plan in order).
    plan = [r["run"] for r in json.loads(run_lsexp("status", str(out), "--json").stdout)[0]["runs"]]
    victim = claims[0].parent.name
    cancelled = first[plan.index(victim)]
    subprocess.run(["scancel", cancelled], check=True, timeout=60)
    _wait(first)
    assert victim not in _records(out), "the cancelled run finished before the cancel"
    assert _status(out).count("pending") == 1

    result, second = _submit(cfg, out)
    assert result.returncode == 0, result.stderr
    assert "submitted 1 run(s)" in result.stdout
    _wait(second)
    records = _records(out)
    assert sorted(records) == sorted(plan) and all(r["status"] == "done" for r in records.values())
    done = [run for res in _results(out, first + second).values()
            for run, status in res if status == "done"]  # fmt: skip
    assert sorted(done) == sorted(r["run_id"] for r in records.values())  # once each
    leftovers = [p for p in out.glob("runs/*/.*")]  # claims, temp files of a killed write
    assert leftovers == []


def test_a_task_stopped_by_its_time_limit_is_failed_with_the_reason(tmp_path):
    # 100000 epochs cannot finish in the 1-minute limit.
    cfg = _config(tmp_path / "long.yaml", "slurm-limit", train={"epochs": 100000},
                  sweep={"alpha": [0.0], "seeds": [0]})  # fmt: skip
    out = tmp_path / "out"
    result, job_ids = _submit(cfg, out, "--timeout-min", "1")
    assert result.returncode == 0, result.stderr
    _wait(job_ids, timeout=240)
    [record] = _records(out).values()
    assert record["status"] == "failed"
    assert "Slurm time limit" in record["error"] and "--timeout-min" in record["error"]
    assert "--retry-failed" in record["error"]
    assert _status(out) == ["failed"]
    # resumable: --retry-failed trains it again
    dry = run_lsexp("sweep", str(cfg), "--out", str(out), "--retry-failed", "--dry-run")
    assert "1 would train" in dry.stdout


def test_a_missing_dataset_fails_once_before_anything_is_queued(tmp_path):
    name = f"slurm-nodata-{os.getpid()}"
    cfg = _config(tmp_path / "nodata.yaml", name,
                  data={"name": "fashion_mnist", "root": str(tmp_path / "empty")})  # fmt: skip
    out = tmp_path / "out"
    result, job_ids = _submit(cfg, out)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "fashion_mnist" in lines[0], result.stderr
    assert job_ids == [] and not out.exists()
    queued = subprocess.run(["squeue", "-h", "-t", "all", "-n", f"lsexp-{name}"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert queued.returncode == 0 and queued.stdout.strip() == ""


def test_a_partition_slurm_refuses_is_one_line_and_leaves_no_task_files(tmp_path):
    cfg = _config(tmp_path / "c.yaml", "slurm-badpart")
    out = tmp_path / "out"
    result = run_lsexp("sweep", str(cfg), "--out", str(out), "--executor", "slurm",
                       "--slurm-partition", "no-such-partition", env=PINNED)  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid partition" in lines[0], result.stderr
    assert list((out / "slurm").iterdir()) == []
