"""Sweeps of several objectives on tiny real runs: mixup/CutMix reproducible by seed,
distillation teachers trained before their students (one process, --workers, --shard, the
submitit executors), a failed teacher failing its students, teacher weights saved and
read back with weights_only, and the report of such a sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from lsexp.cli import app
from lsexp.config import validate
from lsexp.errors import EXIT_RUN_FAILED
from lsexp.reporting.report import write_report
from lsexp.results.store import WEIGHTS_FILE, ResultsStore, plan_runs
from lsexp.running import sweep
from lsexp.running.sweep import WAITING_FOR_TEACHER, run_sweep
from lsexp.training.data import load_splits
from lsexp.training.engine import load_teacher, predict_logits, train_run
from tests.conftest import run_lsexp, tiny_config_dict

REPO = Path(__file__).resolve().parent.parent

DISTILL = {
    "seeds": [0],
    "alpha": [0.0, 0.1],
    "distillation": {
        "teachers": [{"label_smoothing": 0.0}, {"label_smoothing": 0.1}],
        "temperature": 2.0,
        "hard_weight": 0.5,
        "model": {"name": "mlp", "hidden": [16]},
    },
}


def _config(sweep_grid: dict, **sections):
    return validate(tiny_config_dict(sweep=sweep_grid, **sections), "<test>")


def _records(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in out.glob("runs/*/run.json")}


def _cfg_file(tmp_path: Path, sweep_grid: dict) -> Path:
    path = tmp_path / "alt.yaml"
    data = tiny_config_dict(sweep=sweep_grid)
    data["sweep"] = sweep_grid  # not merged with the default alpha list
    path.write_text(yaml.safe_dump(data))
    return path


def _teachers_first(out: Path, config) -> None:
    """Every student's files were written after its teacher's run.json (ns mtimes)."""
    store = ResultsStore(out)
    students = [s for s in plan_runs(config) if s.teacher is not None]
    assert students
    for s in students:
        teacher_done = (store.run_path(s.teacher) / "run.json").stat().st_mtime_ns
        student_files = (store.run_path(s) / "predictions.npz").stat().st_mtime_ns
        assert student_files > teacher_done, s.dirname


@pytest.fixture(scope="module")
def splits():
    return load_splits("fashion_mnist_mini", None, 500, 0)


# ---------------------------------------------------------------------------------------
# mixup and CutMix in the engine
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective", ["mixup", "cutmix"])
def test_mixing_runs_are_identical_for_one_seed_and_differ_by_strength(splits, objective):
    config = _config({"seeds": [0], objective: [0.4]}, train={"epochs": 1})
    device = torch.device("cpu")
    a = train_run(config, 0.4, 0, splits, device, objective=objective)
    b = train_run(config, 0.4, 0, splits, device, objective=objective)
    np.testing.assert_array_equal(a.predictions["test_logits"], b.predictions["test_logits"])
    assert a.history == b.history or all(
        {k: v for k, v in ra.items() if k != "seconds"} == {k: v for k, v in rb.items()
                                                           if k != "seconds"}
        for ra, rb in zip(a.history, b.history, strict=True)
    )  # fmt: skip
    other = train_run(config, 1.0, 0, splits, device, objective=objective)
    plain = train_run(config, 0.0, 0, splits, device)  # the baseline: no mixing
    assert not np.array_equal(a.predictions["test_logits"], other.predictions["test_logits"])
    assert not np.array_equal(a.predictions["test_logits"], plain.predictions["test_logits"])
    # train accuracy of mixed batches: a fraction, below that of unmixed training here
    acc = a.history[-1]["train_acc"]
    assert 0 < acc < 1


def test_mixing_at_strength_zero_is_plain_cross_entropy(splits):
    config = _config({"seeds": [0], "mixup": [0.2]}, train={"epochs": 1})
    device = torch.device("cpu")
    mixed = train_run(config, 0.0, 0, splits, device, objective="mixup")
    plain = train_run(config, 0.0, 0, splits, device)
    np.testing.assert_array_equal(mixed.predictions["test_logits"],
                                  plain.predictions["test_logits"])  # fmt: skip


# ---------------------------------------------------------------------------------------
# Distillation: weights, order, failures
# ---------------------------------------------------------------------------------------


def test_teachers_save_weights_that_reproduce_their_logits(tmp_path, splits):
    config = _config(DISTILL)
    out = tmp_path / "out"
    result = run_sweep(config, out)
    assert sorted(o.status for o in result.outcomes) == ["done"] * 4
    _teachers_first(out, config)
    store = ResultsStore(out)
    plan = plan_runs(config)
    teachers = [s for s in plan if s.teaches]
    assert len(teachers) == 2
    for spec in plan:
        record = store.read_record(spec)
        has = (store.run_path(spec) / WEIGHTS_FILE).exists()
        assert has == spec.teaches, spec.dirname
        assert (WEIGHTS_FILE in record["files"]) == spec.teaches
    # weights_only load, then the same test logits as the teacher saved
    teacher = teachers[1]
    net = load_teacher(config, store.weights_path(teacher), splits, torch.device("cpu"))
    logits = predict_logits(net, splits.test_x, 128).numpy()
    saved = np.load(store.run_path(teacher) / "predictions.npz")["test_logits"]
    np.testing.assert_allclose(logits, saved, rtol=1e-5, atol=1e-5)
    # students: the smaller model, their teacher's id in the identity
    for s in plan:
        if s.teacher is not None:
            record = store.read_record(s)
            assert record["objective"] == "distillation"
            assert record["identity"]["teacher"] == s.teacher.run_id
            assert record["n_parameters"] < store.read_record(s.teacher)["n_parameters"]
    # a rerun trains nothing
    again = run_sweep(config, out)
    assert all(o.status.startswith("skipped") for o in again.outcomes)
    # packed for committing: the teachers keep their weights (byte for byte), so a rerun
    # into the packed folder still trains nothing
    packed = tmp_path / "packed"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "pack_results.py"), str(out), str(packed)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    pstore = ResultsStore(packed)
    for spec in teachers:
        assert (
            pstore.read_record(spec)["files"][WEIGHTS_FILE]
            == store.read_record(spec)["files"][WEIGHTS_FILE]
        )
        assert pstore.weights_path(spec).read_bytes() == store.weights_path(spec).read_bytes()
    again = run_sweep(config, packed)
    assert all(o.status.startswith("skipped") for o in again.outcomes)


def test_a_failed_teacher_fails_its_students_naming_it(tmp_path, monkeypatch):
    real = sweep.train_run

    def flaky(config, strength, seed, *args, **kwargs):
        if kwargs.get("objective") == "label_smoothing" and strength == 0.1:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(config, strength, seed, *args, **kwargs)

    monkeypatch.setattr(sweep, "train_run", flaky)
    config = _config(DISTILL)
    out = tmp_path / "out"
    result = run_sweep(config, out)
    status = {o.spec.dirname: o.status for o in result.outcomes}
    plan = plan_runs(config)
    failed_teacher = next(s for s in plan if s.objective == "label_smoothing" and s.alpha == 0.1)
    bad_student = next(s for s in plan if s.teacher == failed_teacher)
    good_student = next(s for s in plan if s.teacher is not None and s is not bad_student)
    assert status[failed_teacher.dirname] == "failed"
    assert status[bad_student.dirname] == "failed"
    assert status[good_student.dirname] == "done"  # the other runs are kept
    error = ResultsStore(out).read_record(bad_student)["error"]
    assert failed_teacher.dirname in error and "--retry-failed" in error
    assert result.n_failed == 2
    # fixed: --retry-failed trains the teacher, then its student
    monkeypatch.setattr(sweep, "train_run", real)
    again = run_sweep(config, out, retry_failed=True)
    assert sorted(o.status for o in again.outcomes if not o.status.startswith("skipped")) == [
        "done", "done"]  # fmt: skip
    _teachers_first(out, config)


def test_the_cli_exits_1_when_a_teacher_fails(tmp_path, monkeypatch):
    real = sweep.train_run

    def no_teacher(config, strength, seed, *args, **kwargs):
        if kwargs.get("objective") == "label_smoothing":
            raise RuntimeError("simulated")
        return real(config, strength, seed, *args, **kwargs)

    monkeypatch.setattr(sweep, "train_run", no_teacher)
    cfg = _cfg_file(tmp_path, DISTILL)
    result = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "o")])
    assert result.exit_code == EXIT_RUN_FAILED, result.output
    assert "4 run(s) failed" in result.output


def test_a_student_whose_teacher_is_in_an_unrun_shard_is_left_for_later(tmp_path):
    config = _config(DISTILL)
    plan = plan_runs(config)
    # plan: T0, T0.1, S0, S0.1; shard 0/2 = T0, S0; shard 1/2 = T0.1, S0.1
    assert [s.teacher is None for s in plan] == [True, True, False, False]
    out = tmp_path / "out"
    first = run_sweep(config, out, shard=(1, 2))
    status = {o.spec.dirname: o.status for o in first.outcomes}
    assert status[plan[1].dirname] == "done" and status[plan[3].dirname] == "done"
    # shard 0 holds T0 and its student: its own teacher is first, so nothing waits there
    second = run_sweep(config, out, shard=(0, 2))
    assert {o.status for o in second.outcomes} == {"done"}
    # a shard whose teacher is elsewhere and not trained: left pending, with a message
    out2 = tmp_path / "out2"
    warnings = []

    class Observer:
        def warn(self, text):
            warnings.append(text)

        def sweep_started(self, *a):
            pass

        def data_loading(self, *a):
            pass

        def run_started(self, *a):
            return None

        def run_finished(self, *a):
            pass

    only_student = run_sweep(config, out2, run_ids={plan[3].run_id}, observer=Observer())
    assert [o.status for o in only_student.outcomes] == [WAITING_FOR_TEACHER]
    assert ResultsStore(out2).status_of(plan[3]) == "pending"
    assert any(plan[1].dirname in w and "later pass" in w for w in warnings), warnings


@pytest.mark.slow
def test_workers_train_teachers_before_students(tmp_path):
    cfg = _cfg_file(tmp_path, {**DISTILL, "seeds": [0, 1]})
    out = tmp_path / "out"
    result = run_lsexp("sweep", str(cfg), "--workers", "2", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    records = _records(out)
    assert len(records) == 8 and all(r["status"] == "done" for r in records.values())
    _teachers_first(out, validate(yaml.safe_load(cfg.read_text()), str(cfg)))
    assert len({r["provenance"]["pid"] for r in records.values()}) == 2


@pytest.mark.parametrize("executor", ["debug", "local"])
def test_submitit_executors_run_students_after_teachers(tmp_path, executor):
    pytest.importorskip("submitit")
    cfg = _cfg_file(tmp_path, DISTILL)
    out = tmp_path / "array"
    result = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out), "--executor",
                                      executor])  # fmt: skip
    assert result.exit_code == 0, result.output
    records = _records(out)
    assert sorted(r["status"] for r in records.values()) == ["done"] * 4
    _teachers_first(out, validate(yaml.safe_load(cfg.read_text()), str(cfg)))


def test_a_teacher_trained_before_weights_were_saved_is_trained_again(tmp_path):
    """A folder of label smoothing alone (no weights) extended with distillation: the
    teachers are trained again, once, with their ids; the other runs are kept."""
    ls_only = _config({"seeds": [0], "alpha": [0.0, 0.1, 0.2]})
    out = tmp_path / "out"
    run_sweep(ls_only, out)
    before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/run.json")}
    config = _config({**DISTILL, "alpha": [0.0, 0.1, 0.2],
                      "distillation": {**DISTILL["distillation"],
                                       "teachers": [{"label_smoothing": 0.1}]}})  # fmt: skip
    store = ResultsStore(out)
    teacher = next(s for s in plan_runs(config) if s.teaches)
    state = store.inspect(teacher)
    assert state.status == "pending" and "weights" in state.problem
    result = run_sweep(config, out)
    trained = sorted(o.spec.dirname for o in result.outcomes if o.status == "done")
    student = next(s for s in plan_runs(config) if s.teacher is not None)
    assert trained == sorted([teacher.dirname, student.dirname])
    after = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/run.json")}
    kept = [name for name in before if name != teacher.dirname]
    assert all(after[name] == before[name] for name in kept)


# ---------------------------------------------------------------------------------------
# The report of a sweep of several objectives
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_of_several_objectives(tmp_path):
    grid = {"seeds": [0, 1], "alpha": [0.0, 0.1], "focal": [2], "confidence_penalty": [0.3],
            "mixup": [0.2], "distillation": DISTILL["distillation"]}  # fmt: skip
    config = _config(grid)
    out = tmp_path / "out"
    run_sweep(config, out)
    report = write_report(out)
    assert report.alternatives
    assert [g.label for g in report.arms] == [
        "cross-entropy", "α=0.1", "focal loss γ=2", "confidence penalty β=0.3", "mixup a=0.2",
        "distillation, teacher cross-entropy", "distillation, teacher α=0.1"]  # fmt: skip
    assert [g.alpha for g in report.groups] == [0.0, 0.1]  # label smoothing's parts
    rep = out / "report"
    methods = (rep / "methods.csv").read_text().splitlines()
    assert len(methods) == 1 + 7 and methods[0].startswith("objective,strength,teacher,setting")
    assert (rep / "methods.png").exists() and (rep / "reliability_methods.png").exists()
    claims = json.loads((rep / "claims.json").read_text())
    assert [c["id"] for c in claims] == [1, "2a", "2b", "2c", 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert all(c["rule"] and c["verdict"] for c in claims)
    summary = (rep / "summary.md").read_text()
    assert summary.index("## Method comparison") < summary.index("## Label smoothing")
    runs_csv = (rep / "runs.csv").read_text().splitlines()
    assert runs_csv[0].startswith("objective,strength,teacher,setting,seed,status")
    assert len(runs_csv) == 1 + 14


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"seeds": [0], "alpha": [0.0], "distillation": {"teachers": [{"label_smoothing": 0.3}]}},
         "sweep.distillation.teachers.0: teacher {label_smoothing: 0.3} is not trained"),
        ({"seeds": [0], "focal": [2, 2]}, "sweep.focal: duplicate focal values: [2.0]"),
        ({"seeds": [0], "mixupp": [0.2]}, "sweep.mixupp: unknown key (did you mean 'mixup'?)"),
    ],
    ids=["teacher-not-in-sweep", "duplicate", "unknown-objective"],
)  # fmt: skip
def test_bad_objective_settings_exit_2_and_write_nothing(tmp_path, grid, message):
    cfg = _cfg_file(tmp_path, grid)
    out = tmp_path / "out"
    result = run_lsexp("sweep", str(cfg), "--out", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert any(message in line for line in lines), result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
