"""`lsexp report --calibrators`: post-hoc calibrators and selective classification in a
report, from the saved logits of a real (tiny) sweep; bad inputs refused whole.

The calibrators and the selective-classification numbers are each tested against known
answers in test_posthoc.py and test_selective.py; here: that the report fits them on the
validation split of every run, writes what it fitted, and that its tables carry the same
numbers an independent computation from predictions.npz gives.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from lsexp.analysis import metrics as M
from lsexp.analysis import posthoc
from lsexp.analysis.selective import selective_metrics
from lsexp.config import validate
from lsexp.reporting.report import write_report
from lsexp.running.sweep import run_sweep
from tests.conftest import run_lsexp, tiny_config_dict

ALL = "ts,vs,ms,hist,iso"


def _sweep(root: Path, val_size: int) -> Path:
    out = root / "out"
    cfg = tiny_config_dict(data={"val_size": val_size},
                           sweep={"alpha": [0.0, 0.1], "seeds": [0, 1]})  # fmt: skip
    run_sweep(validate(cfg, "<test>"), out)
    return out


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    return _sweep(tmp_path_factory.mktemp("posthoc"), 500)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_every_calibrator_is_fitted_written_and_tabulated(swept):
    proc = run_lsexp("report", str(swept), "--calibrators", ALL)
    assert proc.returncode == 0, proc.stderr
    rep = swept / "report"
    params = json.loads((rep / "calibrators.json").read_text())
    assert params["calibrators"] == ALL.split(",")
    runs = _rows(rep / "runs.csv")
    assert sorted(params["runs"]) == sorted(r["run_dir"] for r in runs) and len(runs) == 4
    for r in runs:
        fitted = params["runs"][r["run_dir"]]
        assert set(fitted) == set(ALL.split(","))
        # ts is the report's temperature scaling (same fit as the TS table's T)
        assert fitted["ts"]["temperature"] == pytest.approx(float(r["temperature"]), rel=1e-9)
        assert len(fitted["vs"]["weights"]) == 10 and len(fitted["ms"]["W"]) == 10
        # Independent recomputation from the saved predictions: fit on val, score on test.
        preds = np.load(swept / "runs" / r["run_dir"] / "predictions.npz")
        z, y = preds["test_logits"].astype(np.float64), preds["test_labels"]
        f = posthoc.fit_vector_scaling(preds["val_logits"], preds["val_labels"])
        p = f.probs(z)
        assert float(r["post_vs_ece"]) == pytest.approx(M.ece(p, y, 10), rel=1e-9)
        assert float(r["post_vs_accuracy"]) == pytest.approx(M.accuracy(p, y), rel=1e-12)
        sel = selective_metrics(z, y, "pnorm")
        assert float(r["sel_pnorm_aurc"]) == pytest.approx(sel["aurc"], rel=1e-12)
        assert float(r["sel_msp_coverage_at_5pct_risk"]) == pytest.approx(
            selective_metrics(z, y, "msp")["coverage_at_5pct_risk"], rel=1e-12)  # fmt: skip
    table = _rows(rep / "calibrators.csv")
    assert [(t["calibrator"], float(t["alpha"])) for t in table] == [
        (c, a) for c in ["none", *ALL.split(",")] for a in (0.0, 0.1)
    ]
    iso0 = next(t for t in table if t["calibrator"] == "iso" and float(t["alpha"]) == 0.0)
    mine = [float(r["post_iso_brier"]) for r in runs if float(r["alpha"]) == 0.0]
    assert float(iso0["brier_mean"]) == pytest.approx(np.mean(mine), rel=1e-12)
    md = (rep / "summary.md").read_text()
    assert "## Post-hoc calibrators" in md and "## Selective classification" in md
    assert "| ms | 0.1 | 2 |" in md and "| pnorm | 0 | 2 |" in md
    claims = json.loads((rep / "claims.json").read_text())
    c11 = next(c for c in claims if c["id"] == 11)
    assert c11["verdict"] in ("supported", "refuted", "inconclusive") and c11["rule"]
    for stem in ("calibrators", "risk_coverage"):
        assert (rep / f"{stem}.png").stat().st_size > 0 and (rep / f"{stem}.pdf").exists()
    page = (rep / "index.html").read_text()
    assert "Post-hoc calibrators" in page and "Selective classification" in page


def test_the_default_report_fits_temperature_scaling_only(swept):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rep = write_report(swept)
    assert rep.calibrators == ("ts",)
    params = json.loads((swept / "report" / "calibrators.json").read_text())
    assert all(set(v) == {"ts"} for v in params["runs"].values())
    assert "post_vs_ece" not in _rows(swept / "report" / "runs.csv")[0]


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        ("ts,platt", ["--calibrators: unknown calibrator 'platt'", "choose from ts"]),
        (",", ["--calibrators: no calibrator named"]),
    ],
)
def test_an_unknown_calibrator_is_refused_before_anything_is_written(swept, spec, needles):
    before = tree(swept)
    proc = run_lsexp("report", str(swept), "--calibrators", spec)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    for n in needles:
        assert n in proc.stderr, proc.stderr
    assert tree(swept) == before


def test_a_validation_split_too_small_for_matrix_scaling_leaves_the_old_report(tmp_path):
    out = _sweep(tmp_path, 60)  # matrix scaling needs 10 per class: 100 for 10 classes
    assert run_lsexp("report", str(out)).returncode == 0  # ts fits on 60 examples
    before = tree(out)
    proc = run_lsexp("report", str(out), "--calibrators", "ts,ms")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "run fashion_mnist_mini-mlp-a0.00-s0" in proc.stderr and "100" in proc.stderr
    assert tree(out) == before  # the earlier report, whole; no half-written one


def test_named_calibrators_need_a_validation_split(tmp_path):
    out = _sweep(tmp_path, 0)
    proc = run_lsexp("report", str(out))  # default: TS skipped where there is no val split
    assert proc.returncode == 0 and "skipped" not in proc.stderr, proc.stderr
    runs = _rows(out / "report" / "runs.csv")  # runs without a val split are readable
    assert len(runs) == 4 and all(r["temperature"] == "nan" for r in runs)
    proc = run_lsexp("report", str(out), "--calibrators", "ts")
    assert proc.returncode == 2 and "has no validation split" in proc.stderr, proc.stderr
    assert "data.val_size" in proc.stderr


def test_runs_read_in_worker_processes_give_the_same_numbers(swept, monkeypatch):
    from lsexp.reporting import runs

    monkeypatch.setattr(runs, "PARALLEL_MIN_RUNS", 2)
    cals = tuple(ALL.split(","))
    one = runs.collect(swept, calibrators=cals, jobs=1)
    two = runs.collect(swept, calibrators=cals, jobs=2)
    assert one.run_rows == two.run_rows  # bit for bit, NaN-free rows
    assert one.fitted_params == two.fitted_params
    rc1 = one.groups[0].logits[0].risk_coverage("msp")
    rc2 = two.groups[0].logits[0].risk_coverage("msp")
    np.testing.assert_array_equal(rc1.risk, rc2.risk)


def test_a_calibrator_error_in_a_worker_process_is_the_same_one_line(tmp_path, monkeypatch):
    from lsexp.errors import CalibrationError
    from lsexp.reporting import runs

    out = _sweep(tmp_path, 60)
    monkeypatch.setattr(runs, "PARALLEL_MIN_RUNS", 2)
    with pytest.raises(CalibrationError, match="needs at least 100 validation examples"):
        runs.collect(out, calibrators=("ms",), jobs=2)


def test_a_script_without_a_main_guard_can_collect_in_worker_processes(swept, tmp_path):
    """Library use: a plain script calling `collect` at top level, with workers."""
    script = tmp_path / "plain.py"
    script.write_text(
        "from lsexp.reporting import runs\n"
        "runs.PARALLEL_MIN_RUNS = 2\n"
        f"rep = runs.collect({str(swept)!r}, jobs=2)\n"
        "print(len(rep.run_rows))\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "4"
