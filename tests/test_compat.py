"""Results folders written by earlier lsexp versions stay valid: reported as they are, and
a rerun of their config trains nothing (tests/fixtures/README.md says how the fixture was
made)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsexp.config import load_config
from lsexp.results.store import ResultsStore, plan_runs
from tests.conftest import REPO, run_lsexp

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = FIXTURES / "results_v0.yaml"


@pytest.fixture
def old_results(tmp_path) -> Path:
    out = tmp_path / "results_v0"
    shutil.copytree(FIXTURES / "results_v0", out)
    return out


def test_runs_of_the_old_layout_are_found_and_done(old_results):
    store = ResultsStore(old_results)
    plan = plan_runs(load_config(CONFIG))
    assert [store.status_of(s) for s in plan] == ["done", "done"]
    # The folders keep the ids they were made with (eval.n_bins was part of them then).
    assert sorted(store.run_path(s).name[-12:] for s in plan) == ["0b6120b31ccb", "44fa9801eb3e"]


@pytest.mark.parametrize("overrides", [[], ["eval.n_bins=15"], ["eval.n_bins=20"]])
def test_a_rerun_trains_nothing_whatever_the_bins(old_results, overrides):
    before = {p: p.read_bytes() for p in old_results.rglob("*") if p.is_file()}
    dry = run_lsexp("sweep", str(CONFIG), *overrides, "--out", str(old_results), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "0 would train" in dry.stdout
    proc = run_lsexp("sweep", str(CONFIG), *overrides, "--out", str(old_results))
    assert proc.returncode == 0, proc.stderr
    assert "0 trained, 2 already finished" in proc.stdout
    for path, data in before.items():
        if path.name != "sweep.yaml":
            assert path.read_bytes() == data, path


def test_the_old_folder_is_reported_and_n_bins_is_a_report_setting(old_results):
    proc = run_lsexp("report", str(old_results))
    assert proc.returncode == 0, proc.stderr
    rows = (old_results / "report" / "summary.csv").read_text().splitlines()
    assert len(rows) == 3  # header + alpha 0 and 0.1
    claims = json.loads((old_results / "report" / "claims.json").read_text())
    assert claims
    again = run_lsexp("report", str(old_results), "--n-bins", "20")
    assert again.returncode == 0, again.stderr
    assert "20 equal-width bins" in (old_results / "report" / "summary.md").read_text()


def test_a_packed_folder_is_done_reported_and_close_to_the_original(old_results, tmp_path):
    packed = tmp_path / "packed"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "pack_results.py"),
                           str(old_results), str(packed)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "packed 2 done" in proc.stdout
    rerun = run_lsexp("sweep", str(CONFIG), "--out", str(packed))
    assert "0 trained, 2 already finished" in rerun.stdout, rerun.stdout + rerun.stderr
    for folder in (old_results, packed):
        assert run_lsexp("report", str(folder)).returncode == 0
    rows = [
        {r.split(",")[0]: r for r in (f / "report" / "summary.csv").read_text().splitlines()}
        for f in (old_results, packed)
    ]
    header = rows[0]["alpha"].split(",")
    for alpha in ("0.0", "0.1"):
        a, b = (dict(zip(header, r[alpha].split(","), strict=True)) for r in rows)
        for key in ("accuracy_mean", "nll_mean", "ece_mean"):
            assert abs(float(a[key]) - float(b[key])) < 2e-3, (key, a[key], b[key])
    assert sum(p.stat().st_size for p in packed.rglob("*.npz")) < sum(
        p.stat().st_size for p in old_results.rglob("*.npz")
    )
