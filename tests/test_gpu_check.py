"""benchmarks/gpu_check.py end to end on the CPU with tiny sizes, so the prepared device
check still runs when a GPU machine is lent (it has no other test between GPU sessions)."""

from __future__ import annotations

import json
import sys

import pytest


@pytest.mark.slow
def test_gpu_check_main_runs_on_cpu(tmp_path, monkeypatch, capsys):
    from benchmarks import gpu_check

    out = tmp_path / "gpu.json"
    argv = ["--quick", "--device", "cpu", "--runs", "1", "--procs", "1", "--no-compile"]
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", *argv, "--out", str(out)])
    gpu_check.main()
    report = json.loads(out.read_text())
    assert report["machine"]["device"] == "cpu" and report["machine"]["quick"] is True
    assert len(report["seconds_per_run"]) == 1 and report["seconds_per_run"][0] > 0
    (row,) = report["packing"]
    assert row["processes"] == 1 and row["runs_per_hour"] > 0
    assert report["best_processes"] == 1 and report["sweep_21_runs_minutes"] > 0
    assert "21-run sweep" in capsys.readouterr().out
