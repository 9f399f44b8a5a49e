"""The sweep grammar of several objectives: `sweep.<objective>: [strengths]`, the shared
plain-cross-entropy baseline, distillation teachers, and the errors of each (file, line,
key), with the plan they give (run ids of label smoothing unchanged)."""

from __future__ import annotations

import pytest

from lsexp.config import BASELINE, load_config, run_identity, stable_hash
from lsexp.results.store import plan_runs
from tests.test_config import BASE, edit, line_of, only_problem, write

SWEEP = "sweep:\n  alpha: [0.0, 0.1]\n  seeds: [0, 1]\n"


def with_sweep(body: str) -> str:
    return edit(BASE, SWEEP, "sweep:\n" + body)


ALTERNATIVES = with_sweep(
    "  seeds: [0, 1]\n"
    "  label_smoothing: [0.0, 0.1]\n"
    "  focal: [0, 1, 2]\n"
    "  focal_adaptive: [53]\n"
    "  confidence_penalty: [0.1]\n"
    "  mixup: [0.2]\n"
    "  cutmix: [1.0]\n"
    "  distillation:\n"
    "    teachers: [{label_smoothing: 0}, {label_smoothing: 0.1}]\n"
    "    model: {name: mlp, hidden: [16]}\n"
)


def test_several_objectives_plan_one_run_per_setting_and_seed(tmp_path):
    config = load_config(write(tmp_path, ALTERNATIVES))
    plan = plan_runs(config)
    settings = [(s.objective, s.alpha, s.teacher.alpha if s.teacher else None) for s in plan]
    # focal 0 is the shared baseline (label smoothing at alpha 0), trained once per seed
    assert len(plan) == 2 * 10
    assert settings[::2] == [
        ("label_smoothing", 0.0, None), ("label_smoothing", 0.1, None), ("focal", 1.0, None),
        ("focal", 2.0, None), ("focal_adaptive", 53.0, None), ("confidence_penalty", 0.1, None),
        ("mixup", 0.2, None), ("cutmix", 1.0, None), ("distillation", 0.0, 0.0),
        ("distillation", 0.0, 0.1),
    ]  # fmt: skip
    assert len({s.run_id for s in plan}) == len(plan)
    # teachers come before their students and save their weights; nothing else does
    students = [s for s in plan if s.teacher is not None]
    assert all(plan.index(s.teacher) < plan.index(s) for s in students)
    assert {s.run_id for s in plan if s.teaches} == {s.teacher.run_id for s in students}
    assert all(s.teacher.seed == s.seed for s in students)
    assert "-kd-a0.10-s1_" in students[-1].dirname


def test_label_smoothing_keeps_its_run_ids_under_either_key(tmp_path):
    old = load_config(write(tmp_path, BASE, "old.yaml"))
    new = load_config(write(tmp_path, ALTERNATIVES, "new.yaml"))
    ids = {s.run_id for s in plan_runs(new)}
    for spec in plan_runs(old):
        assert spec.run_id == stable_hash({**old.identity(), "alpha": spec.alpha,
                                           "seed": spec.seed})  # fmt: skip
        assert spec.run_id in ids


def test_the_baseline_is_added_when_only_other_objectives_are_swept(tmp_path):
    config = load_config(write(tmp_path, with_sweep("  seeds: [0]\n  focal: [2]\n")))
    plan = plan_runs(config)
    assert [(s.objective, s.alpha) for s in plan] == [BASELINE, ("focal", 2.0)]
    # a sweep of label smoothing alone gets nothing added
    only_ls = load_config(write(tmp_path, with_sweep("  seeds: [0]\n  alpha: [0.1]\n"), "b.yaml"))
    assert [s.alpha for s in plan_runs(only_ls)] == [0.1]


def test_distillation_settings_change_only_the_students(tmp_path):
    a = plan_runs(load_config(write(tmp_path, ALTERNATIVES, "a.yaml")))
    b = plan_runs(load_config(write(tmp_path, edit(ALTERNATIVES, "hidden: [16]",
                                                   "hidden: [32]"), "b.yaml")))  # fmt: skip
    changed = [x.objective for x, y in zip(a, b, strict=True) if x.run_id != y.run_id]
    assert changed == ["distillation"] * 4
    student = a[-1]
    teacher_id = stable_hash(run_identity(load_config(write(tmp_path, ALTERNATIVES)),
                                          0.1, student.seed))  # fmt: skip
    assert student.identity["teacher"] == teacher_id


@pytest.mark.parametrize(
    ("body", "needle", "key", "message"),
    [
        ("  seeds: [0]\n  focall: [1]\n", "focall:", "sweep.focall", "did you mean 'focal'"),
        ("  seeds: [0]\n  focal: [11]\n", "focal:", "sweep.focal", "gamma must be in [0, 10]"),
        ("  seeds: [0]\n  focal: [1, 2, 1]\n", "focal:", "sweep.focal",
         "duplicate focal values: [1.0]"),
        ("  seeds: [0]\n  focal: []\n", "focal:", "sweep.focal", "focal list is empty"),
        ("  seeds: [0]\n  focal_adaptive: [3]\n", "focal_adaptive:", "sweep.focal_adaptive",
         "takes the single value 53"),
        ("  seeds: [0]\n  mixup: [-0.2]\n", "mixup:", "sweep.mixup", "a must be in [0, 10]"),
        ("  seeds: [0]\n  confidence_penalty: [.nan]\n", "confidence_penalty:",
         "sweep.confidence_penalty.0", "finite"),
        ("  seeds: [0]\n  label_smoothing: [1.0]\n", "label_smoothing:",
         "sweep.label_smoothing", "alpha must be in [0, 1)"),
        ("  seeds: [0]\n  alpha: [0]\n  label_smoothing: [0.1]\n", "sweep:", "sweep",
         "keep one of them"),
        ("  seeds: [0]\n", "sweep:", "sweep", "nothing to train"),
        ("  seeds: [0]\n  alpha: [0, 0.1]\n  distillation:\n"
         "    teachers: [{label_smoothing: 0.2}]\n",
         "teachers:", "sweep.distillation.teachers.0",
         "teacher {label_smoothing: 0.2} is not trained by this sweep; add 0.2 to sweep.alpha"),
        ("  seeds: [0]\n  alpha: [0]\n  distillation:\n    teachers: [{smoothing: 0}]\n",
         "teachers:", "sweep.distillation.teachers", "teacher objective 'smoothing' is unknown"),
        ("  seeds: [0]\n  alpha: [0]\n  distillation:\n    teachers: [{distillation: 0}]\n",
         "teachers:", "sweep.distillation.teachers", "teacher objective 'distillation'"),
        ("  seeds: [0]\n  alpha: [0]\n  distillation:\n    teachers: [{focal: 0}, {alpha: 0}]\n",
         "teachers:", "sweep.distillation.teachers", "unknown"),
        ("  seeds: [0]\n  alpha: [0]\n  focal: [0]\n  distillation:\n"
         "    teachers: [{focal: 0}, {label_smoothing: 0}]\n",
         "teachers:", "sweep.distillation.teachers", "duplicate teacher {label_smoothing: 0}"),
        ("  seeds: [0]\n  alpha: [0]\n  distillation:\n    teachers: []\n", "teachers:",
         "sweep.distillation.teachers", "teachers list is empty"),
        ("  seeds: [0]\n  alpha: [0]\n  distillation:\n    teachers: [{label_smoothing: 0}]\n"
         "    temperature: 0\n", "temperature:", "sweep.distillation.temperature",
         "greater than 0"),
        ("  seeds: [0]\n  alpha: [0]\n  distillation:\n    teachers: [{label_smoothing: 0}]\n"
         "    hard_weight: 1.5\n", "hard_weight:", "sweep.distillation.hard_weight",
         "less than or equal to 1"),
        ("  seeds: [0]\n  alpha: [0]\n  distillation:\n    teachers: [{label_smoothing: 0}]\n"
         "    temprature: 2\n", "temprature:", "sweep.distillation.temprature",
         "did you mean 'temperature'"),
    ],
    ids=["unknown-objective", "out-of-range", "duplicate", "empty", "flsd-value",
         "negative-mixup", "nan", "ls-alpha-1", "alpha-and-ls", "nothing", "teacher-missing",
         "teacher-unknown", "teacher-distillation", "teacher-by-alias", "teacher-duplicate",
         "no-teachers", "temperature-0", "hard-weight", "typo-in-distillation"],
)  # fmt: skip
def test_bad_objective_settings_name_file_line_and_key(tmp_path, body, needle, key, message):
    text = with_sweep(body)
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert problem.startswith(f"{path}:{line_of(text, needle)}: {key}: "), problem
    assert message in problem, problem


def test_a_student_model_must_suit_the_recipe(tmp_path):
    text = edit(edit(edit(BASE, "name: mlp\n  hidden: [64]", "name: airbench"),
                     "  optimizer: sgd\n", "  recipe: airbench94\n"),
                SWEEP, "sweep:\n  alpha: [0]\n  seeds: [0]\n  distillation:\n"
                "    teachers: [{label_smoothing: 0}]\n    model: {name: mlp}\n")  # fmt: skip
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert problem.startswith(
        f"{path}:{line_of(text, 'model: {name: mlp}')}: "
        "sweep.distillation.model.name: recipe airbench94"
    ), problem


def test_objectives_can_be_set_by_override(tmp_path):
    config = load_config(write(tmp_path, BASE), ["sweep.focal=[1, 2]"])
    assert [s.objective for s in plan_runs(config)].count("focal") == 4
    problem = only_problem(write(tmp_path, BASE), ["sweep.focal=[20]"])
    assert problem.startswith("override 'sweep.focal=[20]': sweep.focal: gamma must be"), problem
