"""Sweep orchestration, the results store and the report, on tiny real runs."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lsexp.analysis import metrics
from lsexp.cli import app
from lsexp.config import validate
from lsexp.errors import DataError, LockedError, ResultsError
from lsexp.reporting.report import write_report
from lsexp.results import store
from lsexp.results.store import ResultsStore, atomic_write_bytes, plan_runs
from lsexp.running import sweep
from lsexp.running.sweep import run_sweep
from tests.conftest import fail_runs_at_alpha, tiny_config_dict


def _config(**sections):
    return validate(tiny_config_dict(**sections), "<test>")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------
# plan and ids
# ---------------------------------------------------------------------------------------


def test_plan_ids_are_stable_and_identity_based():
    config = _config()
    a, b = plan_runs(config), plan_runs(_config())
    assert [s.run_id for s in a] == [s.run_id for s in b]
    assert len({s.run_id for s in a}) == len(a) == 2
    # Not part of identity: device, data root, eval batch size.
    same = _config(device="cpu", data={"root": "/elsewhere"}, eval={"batch_size": 7})
    assert [s.run_id for s in plan_runs(same)] == [s.run_id for s in a]
    # Part of identity: anything that changes what is computed.
    other = _config(train={"lr": 0.01})
    assert not {s.run_id for s in plan_runs(other)} & {s.run_id for s in a}
    assert a[0].dirname.startswith("fashion_mnist_mini-mlp-a0.00-s0_")


# ---------------------------------------------------------------------------------------
# atomic files and the lock
# ---------------------------------------------------------------------------------------


def test_atomic_write_keeps_old_file_when_replace_fails(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    target.write_text("old")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left


def test_atomic_write_respects_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "x", b"1")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x").stat().st_mode) == 0o644


def test_second_sweep_on_locked_folder_is_refused(tmp_path):
    config = _config()
    with (
        ResultsStore(tmp_path / "out").lock(),
        pytest.raises(LockedError, match=r"pid \d+ on .*started"),
    ):
        run_sweep(config, tmp_path / "out")
    # Free again once the holder is gone.
    with ResultsStore(tmp_path / "out").lock():
        pass


def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        target = Path("/proc/lsexp-cannot-write-here")
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        target = tmp_path / "ro" / "out"
    with pytest.raises(ResultsError, match="cannot write results"):
        run_sweep(_config(), target)


def test_missing_dataset_fails_before_anything_is_written(tmp_path):
    config = _config(data={"name": "mnist", "root": str(tmp_path / "empty"), "val_size": 10})
    with pytest.raises(DataError, match="lsexp data"):
        run_sweep(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# the sweep: files, resume, growth, changed settings, failures
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "tiny"
    result = run_sweep(_config(), out)
    return out, result


def test_sweep_writes_the_documented_layout(finished):
    out, result = finished
    assert [o.status for o in result.outcomes] == ["done", "done"]
    assert (out / "sweep.yaml").exists()
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        record = json.loads((run / "run.json").read_text())
        assert record["status"] == "done"
        assert record["run_id"] in run.name
        for key in ("lsexp_version", "torch_version", "device", "threads", "host"):
            assert key in record["provenance"]
        with np.load(run / "predictions.npz", allow_pickle=False) as f:
            assert set(f.files) == {"val_logits", "val_labels", "test_logits", "test_labels",
                                    "train_true_class_gap"}  # fmt: skip
            assert f["test_logits"].dtype == np.float32
            recomputed = metrics.all_metrics(f["test_logits"], f["test_labels"], n_bins=10)
        assert recomputed == pytest.approx(record["test_metrics"])
        with (run / "history.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 2 and "val_ece" in rows[0]
    assert not list(out.rglob("*.tmp"))


def test_rerun_skips_finished_runs_and_leaves_them_untouched(finished):
    out, _ = finished
    before = _snapshot(out / "runs")
    result = run_sweep(_config(), out)
    assert [o.status for o in result.outcomes] == ["skipped-done", "skipped-done"]
    assert _snapshot(out / "runs") == before


def test_adding_alphas_trains_only_the_new_runs(tmp_path):
    out = tmp_path / "grow"
    run_sweep(_config(sweep={"alpha": [0.0], "seeds": [0]}), out)
    before = _snapshot(out / "runs")
    result = run_sweep(_config(sweep={"alpha": [0.0, 0.3], "seeds": [0]}), out)
    assert sorted(o.status for o in result.outcomes) == ["done", "skipped-done"]
    after = _snapshot(out / "runs")
    assert {k: v for k, v in after.items() if k in before} == before


def test_changed_settings_are_refused_unless_forced(finished, tmp_path):
    out, _ = finished
    changed = _config(train={"lr": 0.01})
    with pytest.raises(ResultsError, match=r"train\.lr 0\.05 -> 0\.01"):
        run_sweep(changed, out)
    # Device-only changes are not identity changes: nothing retrains.
    result = run_sweep(_config(device="cpu"), out)
    assert all(o.status.startswith("skipped") for o in result.outcomes)


def test_unfinished_run_folder_is_trained_again(tmp_path):
    out = tmp_path / "partial"
    config = _config(sweep={"alpha": [0.1], "seeds": [0]})
    run_sweep(config, out)
    run_dir = next((out / "runs").iterdir())
    (run_dir / "run.json").unlink()  # as if killed before the commit marker
    result = run_sweep(config, out)
    assert [o.status for o in result.outcomes] == ["done"]
    assert (run_dir / "run.json").exists()


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real = fail_runs_at_alpha(monkeypatch, 0.2)
    out = tmp_path / "flaky"
    result = run_sweep(_config(), out)
    assert sorted(o.status for o in result.outcomes) == ["done", "failed"]
    assert result.n_failed == 1
    failed = [json.loads(p.read_text()) for p in out.glob("runs/*/run.json")]
    failed = [r for r in failed if r["status"] == "failed"]
    assert "out of memory" in failed[0]["error"]
    # Without --retry-failed the failed run stays failed; with it, only it reruns.
    assert all(o.status.startswith("skipped") for o in run_sweep(_config(), out).outcomes)
    monkeypatch.setattr(sweep, "train_run", real)
    result = run_sweep(_config(), out, retry_failed=True)
    assert sorted(o.status for o in result.outcomes) == ["done", "skipped-done"]


# ---------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------


def test_report_writes_tables_and_figures(finished):
    out, _ = finished
    rep = write_report(out)
    names = {p.name for p in rep.files}
    for name in ("runs.csv", "summary.csv", "summary.md", "summary.tex", "accuracy_vs_alpha.png",
                 "ece_vs_alpha.png", "reliability.png", "logit_gap.png"):  # fmt: skip
        assert name in names
        assert (out / "report" / name).stat().st_size > 0
    with (out / "report" / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["alpha"]) for r in rows] == [0.0, 0.2]
    for col in ("alpha", "n_runs", "accuracy_mean", "accuracy_std", "nll_mean", "ece_mean",
                "ece_std", "adaptive_ece_mean", "classwise_ece_mean", "brier_mean",
                "mean_confidence_mean"):  # fmt: skip
        assert col in rows[0], col
    record = json.loads(next(out.glob("runs/*a0.00*/run.json")).read_text())
    assert float(rows[0]["accuracy_mean"]) == pytest.approx(record["test_metrics"]["accuracy"])
    md = (out / "report" / "summary.md").read_text()
    assert "10 equal-width bins" in md and "Student-t" in md
    assert (out / "report" / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_report_excludes_and_counts_diverged_and_corrupt_runs(tmp_path):
    out = tmp_path / "mixed"
    config = _config(sweep={"alpha": [0.1], "seeds": [0, 1, 2]})
    run_sweep(config, out)
    runs = sorted((out / "runs").iterdir())
    rec = json.loads((runs[0] / "run.json").read_text())
    rec["status"] = "diverged"
    (runs[0] / "run.json").write_text(json.dumps(rec))
    (runs[1] / "run.json").write_text('{"status": "done", "alp')  # truncated
    rep = write_report(out)
    (group,) = rep.groups
    assert len(group.runs) == 1 and group.n_diverged == 1
    assert rep.n_unreadable == 1
    assert any("corrupt run.json" in w for w in rep.warnings)
    # The next sweep redoes the corrupt run and keeps the diverged one.
    result = run_sweep(config, out)
    assert sorted(o.status for o in result.outcomes) == ["done", "skipped-diverged", "skipped-done"]


def test_report_has_temperature_scaling_and_debiased_columns(finished):
    out, _ = finished
    write_report(out)
    with (out / "report" / "runs.csv").open() as f:
        runs = list(csv.DictReader(f))
    for row in runs:
        t = float(row["temperature"])
        assert 0.01 <= t <= 100
        assert float(row["ece_boot_low"]) <= float(row["ece_boot_high"])
        # TS never makes validation NLL worse; on test it should not be far worse either.
        assert float(row["nll_ts"]) <= float(row["nll"]) * 1.1
        assert 0 <= float(row["panel_debiased_l2_ce"]) <= 1
    with (out / "report" / "summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    for col in ("ece_ts_mean", "temperature_mean", "nll_ts_mean", "panel_debiased_l2_ce_mean"):
        assert col in summary[0]
    assert (out / "report" / "ece_ts_vs_alpha.png").exists()
    assert (out / "report" / "projection.png").exists()


def test_penultimate_sample_is_saved_and_projects_onto_the_template_plane(finished):
    from lsexp.reporting.report import projection_points

    out, _ = finished
    run_dir = next(out.glob("runs/*a0.00*"))
    with np.load(run_dir / "penultimate.npz", allow_pickle=False) as f:
        pen = {k: f[k] for k in f.files}
    assert pen["templates"].shape == (3, 32)  # hidden [32]: penultimate width 32
    assert pen["features"].shape == (len(pen["labels"]), 32)
    assert set(pen["labels"].tolist()) == {0, 1, 2}
    # The templates themselves land on a triangle: w0 at the origin, w1 on the x axis.
    probe = dict(pen, features=pen["templates"], labels=np.array([0, 1, 2]))
    xy, _ = projection_points(probe)
    np.testing.assert_allclose(xy[0], [0, 0], atol=1e-9)
    assert abs(xy[1, 1]) < 1e-9 and xy[1, 0] > 0
    u = pen["templates"][1].astype(np.float64) - pen["templates"][0]
    assert xy[1, 0] == pytest.approx(np.linalg.norm(u))
    # A point off the plane projects to the same place as its in-plane foot.
    w = pen["templates"].astype(np.float64)
    normal = np.linalg.svd(np.stack([w[1] - w[0], w[2] - w[0]]))[2][-1]
    lifted = dict(pen, features=(w[2] + 5 * normal)[None], labels=np.array([2]))
    np.testing.assert_allclose(projection_points(lifted)[0][0], xy[2], atol=1e-6)


def test_report_writes_claims_and_a_self_contained_page(finished):
    out, _ = finished
    write_report(out)
    claims = json.loads((out / "report" / "claims.json").read_text())
    assert [c["id"] for c in claims] == [1, "2a", "2b", "2c", 3, 4, 5, 6, 10, 11]
    for c in claims:
        assert {"claim", "verdict", "rule"} <= set(c)
        assert c["verdict"] == "inconclusive"  # one seed: nothing can be concluded
    page = (out / "report" / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 9
    assert 'src="http' not in page and "Label smoothing improves calibration" in page


def test_report_bootstrap_interval_option(finished, tmp_path):
    from lsexp.analysis.stats import summarize

    s = summarize([0.80, 0.82, 0.84, 0.86], "bootstrap")
    assert s.ci_low >= 0.80 and s.ci_high <= 0.86 and s.ci_low < s.mean < s.ci_high
    t = summarize([0.80, 0.82, 0.84, 0.86], "t")
    assert s.ci_high - s.ci_low < t.ci_high - t.ci_low  # bootstrap is narrower at small n
    assert summarize([0.80, 0.82, 0.84, 0.86], "bootstrap") == s  # seeded: deterministic
    with pytest.raises(ValueError, match="expected method"):
        summarize([1.0, 2.0], "wald")
    out, _ = finished
    write_report(out, interval="bootstrap")
    assert "percentile bootstrap" in (out / "report" / "summary.md").read_text()
    write_report(out)  # back to the default for the other tests using this folder
    assert "Student-t" in (out / "report" / "summary.md").read_text()


def test_report_rejects_an_unknown_interval_method(tmp_path):
    run_sweep(_config(sweep={"alpha": [0.1], "seeds": [0]}), tmp_path / "out")
    result = CliRunner().invoke(app, ["report", str(tmp_path / "out"), "--interval", "wald"])
    assert result.exit_code == 2 and "--interval" in result.output
