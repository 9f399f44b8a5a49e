"""Verdicts on claims that compare label smoothing with its alternatives (claims 7-9).

The same machinery as `claims` (paired-by-seed differences with the settings' interval,
superiority and non-inferiority tests at one-sided level 0.025, Holm within a claim,
every "best" setting chosen on validation accuracy), over the settings of a sweep of
several objectives instead of the α of one. Each setting (an objective at one strength, or
a distillation student with its teacher) is a `Setting`; inside, the settings are numbered
and `claims._Sweep` pairs them by seed as it pairs α values.

- Claim 7, Müller, Kornblith & Hinton 2019 §5: a label-smoothed teacher distils worse.
- Claim 8, Mukhoti et al. 2020: focal loss is better calibrated than label smoothing at
  equal accuracy.
- Claim 9, the note this project started from: mixup regularises more than label smoothing.

Pure functions of the finished runs; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lsexp.analysis.claims import (
    _DASH,
    INCONCLUSIVE,
    REFUTED,
    SUPPORTED,
    ClaimRun,
    ClaimSettings,
    _claim,
    _describe,
    _holm,
    _num,
    _row,
    _Sweep,
    _with_derived_values,
    _with_verdict,
)
from lsexp.analysis.stats import Decision, noninferiority_test, superiority_test

LS = "label_smoothing"
FOCAL = ("focal", "focal_adaptive")


@dataclass(frozen=True)
class Setting:
    """One trained setting of the sweep and its finished runs (one per seed)."""

    objective: str
    strength: float
    label: str  # "α=0.1", "focal loss γ=2", "distillation, teacher α=0.1", "cross-entropy"
    runs: Sequence[ClaimRun]  # their `alpha` is ignored
    teacher: tuple[str, float] | None = None
    n_excluded: int = 0  # diverged or failed runs, only counted

    @property
    def is_baseline(self) -> bool:
        return self.objective == LS and self.strength == 0


@dataclass
class _Arms:
    """The settings numbered 0..n-1, as a `_Sweep` whose α are those numbers."""

    settings: list[Setting]
    sw: _Sweep
    index: dict[int, Setting] = field(default_factory=dict)

    def label(self, i: float) -> str:
        return self.settings[int(i)].label

    def find(self, objective: str, strength: float | None = None, teacher=None) -> int | None:
        for i, s in enumerate(self.settings):
            if s.objective != objective or not s.runs:
                continue
            if strength is not None and abs(s.strength - strength) > 1e-9:
                continue
            if teacher is not None and s.teacher != teacher:
                continue
            return i
        return None

    def best(self, candidates: Sequence[int]) -> tuple[int, str]:
        """The candidate of best mean validation accuracy (ties: the earlier, i.e. weaker
        strength) and how it was chosen."""
        val = {i: self.sw.mean(float(i), "val_accuracy") for i in candidates}
        finite = [i for i in candidates if math.isfinite(val[i])]
        if not finite:
            return candidates[0], f"{self.label(candidates[0])} (no validation accuracy)"
        best = max(finite, key=lambda i: (val[i], -i))
        return best, f"{self.label(best)}, validation accuracy {100 * val[best]:.2f}%"

    def row(self, d: Decision, metric: str, a: int, b: int, role: str, **extra) -> dict:
        return _row(d, metric, float(a), float(b), role, setting=self.label(a),
                    vs_setting=self.label(b), **extra)  # fmt: skip

    def level(self, i: int, metric: str, role: str = "context") -> dict[str, Any]:
        vals = [r.value(metric) for r in self.sw.by_alpha[float(i)].values()]
        vals = [v for v in vals if math.isfinite(v)]
        mean = sum(vals) / len(vals) if vals else None
        std = None
        if len(vals) > 1:
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
        return {"kind": "level", "role": role, "metric": metric, "alpha": float(i),
                "setting": self.label(i), "n": len(vals), "mean": _num(mean),
                "std": _num(std)}  # fmt: skip


def _arms(settings: Sequence[Setting], num_classes: int, cs: ClaimSettings) -> _Arms:
    settings = list(settings)
    runs = [
        ClaimRun(float(i), r.seed, r.logits, r.labels, r.values, r.logits_ts, r.train_gap)
        for i, s in enumerate(settings)
        for r in s.runs
    ]
    excluded = {float(i): s.n_excluded for i, s in enumerate(settings)}
    sw = _Sweep(_with_derived_values(runs), num_classes, excluded, cs)
    return _Arms(settings, sw)


def _excluded_note(arms: _Arms, used: Sequence[int]) -> list[str]:
    parts = [f"{arms.label(i)}: {arms.settings[i].n_excluded}" for i in used
             if arms.settings[i].n_excluded]  # fmt: skip
    notes = list(arms.sw.notes)
    if parts:
        notes.insert(0, "Diverged or failed runs left out (judged on the survivors): "
                     + ", ".join(parts) + ".")  # fmt: skip
    return notes


def _inconclusive(arms: _Arms, cid: int, text: str, rule: str, reason: str, test: str,
                  margin: str) -> dict[str, Any]:  # fmt: skip
    return _claim(arms.sw, cid, text, INCONCLUSIVE, rule, reason, test=test, margin=margin,
                  decisions=[], evidence=[], key=_DASH, notes=list(arms.sw.notes))  # fmt: skip


# ---------------------------------------------------------------------------------------
# Claim 7: a label-smoothed teacher is a worse distillation teacher
# ---------------------------------------------------------------------------------------


def _claim7(arms: _Arms) -> dict[str, Any]:
    cid = 7
    text = "A label-smoothed teacher is a worse distillation teacher"
    m = arms.sw.settings.margin
    rule = (
        "Students trained by distillation from a teacher at α = 0 and from teachers at α > 0 "
        "(same student model, τ and hard-label weight; student seed s learns from teacher "
        "seed s). For each α > 0: a superiority test of the student harm d = "
        "accuracy(student of α=0) − accuracy(student of α), and, for the premise that the "
        "smoothed teacher is itself as accurate or more (Müller et al. 2019 §5), a "
        "non-inferiority test of the teacher harm accuracy(teacher α=0) − accuracy(teacher "
        f"α), margin {100 * m:g} pp; each family Holm-corrected across the α. Supported if, "
        "for every α, the student harm is established and the premise holds; refuted if for "
        f"some α the student harm is established below {100 * m:g} pp (the smoothed teacher "
        "teaches as well or better); inconclusive otherwise, and when a smoothed teacher is "
        "established less accurate than the α = 0 teacher (its students' accuracy then says "
        "nothing about teaching)."
    )
    test = "superiority of the student harm, with a non-inferiority premise on the teachers"
    margin = f"{100 * m:g} pp of accuracy"
    zero_student = arms.find("distillation", teacher=(LS, 0.0))
    smoothed = [
        (i, s.teacher[1]) for i, s in enumerate(arms.settings)
        if s.objective == "distillation" and s.runs and s.teacher is not None
        and s.teacher[0] == LS and s.teacher[1] > 0
    ]  # fmt: skip
    if zero_student is None or not smoothed:
        missing = "a student of an α = 0 teacher" if zero_student is None else (
            "a student of a teacher at α > 0")  # fmt: skip
        return _inconclusive(arms, cid, text, rule, f"Inconclusive: the sweep has no {missing} "
                             "(sweep.distillation.teachers).", test, margin)  # fmt: skip
    zero_teacher = arms.find(LS, 0.0)
    teachers = {a: arms.find(LS, a) for _, a in smoothed}
    if zero_teacher is None or None in teachers.values():
        return _inconclusive(arms, cid, text, rule, "Inconclusive: a teacher setting has no "
                             "finished run left to compare.", test, margin)  # fmt: skip
    students = _holm([superiority_test(arms.sw.difference("accuracy", float(zero_student),
                                                          float(i)), m)
                      for i, _ in smoothed])  # fmt: skip
    premise = _holm([noninferiority_test(arms.sw.difference("accuracy", float(zero_teacher),
                                                            float(teachers[a])), m)
                     for _, a in smoothed])  # fmt: skip
    rows, verdicts, words = [], [], []
    for (i, a), ds, dt in zip(smoothed, students, premise, strict=True):
        rows.append(arms.row(ds, "accuracy", zero_student, i, "decides"))
        rows.append(arms.row(dt, "accuracy", zero_teacher, teachers[a], "premise"))
        if ds.verdict == REFUTED:
            v = REFUTED
        elif dt.verdict == REFUTED:
            v = INCONCLUSIVE
        elif ds.verdict == SUPPORTED and dt.verdict == SUPPORTED:
            v = SUPPORTED
        else:
            v = INCONCLUSIVE
        verdicts.append(v)
        fails = ", fails" if dt.verdict == REFUTED else ""
        words.append(
            f"teacher α={a:g}: student harm {_describe(rows[-2])} ({ds.verdict}); teacher "
            f"harm {_describe(rows[-1])} (premise {dt.verdict}{fails})"
        )
    verdict = (SUPPORTED if verdicts and all(v == SUPPORTED for v in verdicts)
               else REFUTED if REFUTED in verdicts else INCONCLUSIVE)  # fmt: skip
    used = [zero_student, zero_teacher, *(i for i, _ in smoothed), *teachers.values()]
    levels = [arms.level(i, "accuracy") for i in used]
    first = rows[0]
    key = (f"accuracy, {first['setting']} − {first['vs_setting']}: "
           f"{_describe(first)}")  # fmt: skip
    return _claim(arms.sw, cid, text, verdict, rule, "; ".join(words) + ".", test=test,
                  margin=margin, decisions=students, evidence=levels + rows, key=key,
                  notes=_excluded_note(arms, used))  # fmt: skip


# ---------------------------------------------------------------------------------------
# Claim 8: focal loss is better calibrated than label smoothing at equal accuracy
# ---------------------------------------------------------------------------------------


def _claim8(arms: _Arms) -> dict[str, Any]:
    cid = 8
    text = "Focal loss is better calibrated than label smoothing at equal accuracy"
    m = arms.sw.settings.margin
    rule = (
        "Label smoothing: the α > 0 of best mean validation accuracy; focal loss: the γ (or "
        "FLSD-53) of best mean validation accuracy. A superiority test of d = ECE(label "
        "smoothing) − ECE(focal) on the test set (d > 0: focal better calibrated), margin 0, "
        "with a difference below the larger of the two mean ECE noise floors not resolvable "
        "(inconclusive); and a non-inferiority test of the accuracy gap accuracy(label "
        f"smoothing) − accuracy(focal), margin {100 * m:g} pp, for 'at equal accuracy'. "
        "Both must hold (an intersection-union test: no correction). Supported if both are "
        "established; refuted if label smoothing is established better calibrated; "
        "inconclusive otherwise, and when focal loss is established less accurate by more "
        "than the margin (then it is not 'at equal accuracy'). ECE after temperature scaling "
        "is shown as context."
    )
    test = "superiority of the ECE advantage and non-inferiority of accuracy (IUT)"
    margin = f"0 for ECE (noise floor), {100 * m:g} pp for accuracy"
    ls = [i for i, s in enumerate(arms.settings) if s.objective == LS and s.strength > 0 and s.runs]
    focal = [i for i, s in enumerate(arms.settings) if s.objective in FOCAL and s.runs]
    if not ls or not focal:
        missing = "label smoothing at α > 0" if not ls else "focal loss (sweep.focal)"
        return _inconclusive(arms, cid, text, rule, f"Inconclusive: the sweep has no "
                             f"{missing}.", test, margin)  # fmt: skip
    a, a_how = arms.best(ls)
    f, f_how = arms.best(focal)
    sw = arms.sw
    d_ece = superiority_test(sw.difference("ece", float(a), float(f)), 0.0)
    floor = max(sw.mean(float(a), "ece_floor"), sw.mean(float(f), "ece_floor"))
    resolvable = not (math.isfinite(floor) and abs(d_ece.estimate) < floor)
    if not resolvable:
        d_ece = _with_verdict(d_ece, INCONCLUSIVE)
    d_acc = noninferiority_test(sw.difference("accuracy", float(a), float(f)), m)
    ece_row = arms.row(d_ece, "ece", a, f, "decides", noise_floor=_num(floor),
                       resolvable=resolvable)  # fmt: skip
    acc_row = arms.row(d_acc, "accuracy", a, f, "decides")
    context = [arms.row(superiority_test(sw.difference("ece_ts", float(a), float(f)), 0.0),
                        "ece_ts", a, f, "context")]  # fmt: skip
    if d_ece.verdict == REFUTED:
        verdict = REFUTED
    elif d_acc.verdict == REFUTED:
        verdict = INCONCLUSIVE
    elif d_ece.verdict == SUPPORTED and d_acc.verdict == SUPPORTED:
        verdict = SUPPORTED
    else:
        verdict = INCONCLUSIVE
    below = ", below the noise floor" if not resolvable else ""
    reason = (
        f"Label smoothing: {a_how}; focal: {f_how}. ECE label smoothing − focal: "
        f"{_describe(ece_row)} ({d_ece.verdict}{below}); accuracy label smoothing − focal: "
        f"{_describe(acc_row)} ({d_acc.verdict} at {100 * m:g} pp"
        + (", so not at equal accuracy" if d_acc.verdict == REFUTED else "")
        + "). After temperature scaling, ECE label smoothing − focal: "
        + (_describe(context[0]) if context[0]["n"] else "not computed (no validation split)")
        + "."
    )
    levels = [arms.level(i, k) for i in (a, f) for k in ("val_accuracy", "accuracy", "ece")]
    return _claim(sw, cid, text, verdict, rule, reason, test=test, margin=margin,
                  decisions=[d_ece, d_acc], evidence=levels + [ece_row, acc_row, *context],
                  key=f"ECE {arms.label(a)} − {arms.label(f)}: {_describe(ece_row)}",
                  notes=_excluded_note(arms, [a, f]))  # fmt: skip


# ---------------------------------------------------------------------------------------
# Claim 9: mixup regularises more than label smoothing
# ---------------------------------------------------------------------------------------


def _claim9(arms: _Arms) -> dict[str, Any]:
    cid = 9
    text = "Mixup regularises more than label smoothing"
    rule = (
        "Mixup: the a of best mean validation accuracy; label smoothing: the α > 0 of best "
        "mean validation accuracy. A superiority test of d = accuracy(mixup) − accuracy(label "
        "smoothing) on the test set (d > 0: mixup generalises better), margin 0: supported "
        "if d > 0 is established, refuted if d < 0 is established, inconclusive otherwise. "
        "One test, no correction; test NLL is shown as context."
    )
    test = "superiority (one-sided, level 0.025), margin 0"
    ls = [i for i, s in enumerate(arms.settings) if s.objective == LS and s.strength > 0 and s.runs]
    mix = [i for i, s in enumerate(arms.settings) if s.objective == "mixup" and s.runs]
    if not ls or not mix:
        missing = "label smoothing at α > 0" if not ls else "mixup (sweep.mixup)"
        return _inconclusive(arms, cid, text, rule, f"Inconclusive: the sweep has no "
                             f"{missing}.", test, "0")  # fmt: skip
    x, x_how = arms.best(mix)
    a, a_how = arms.best(ls)
    sw = arms.sw
    d = superiority_test(sw.difference("accuracy", float(x), float(a)), 0.0)
    row = arms.row(d, "accuracy", x, a, "decides")
    nll = arms.row(superiority_test(sw.difference("nll", float(a), float(x)), 0.0), "nll", a, x,
                   "context")  # fmt: skip
    reason = (
        f"Mixup: {x_how}; label smoothing: {a_how}. Accuracy mixup − label smoothing: "
        f"{_describe(row)} ({d.verdict}). NLL label smoothing − mixup: {_describe(nll)} "
        f"(context)."
    )
    levels = [arms.level(i, k) for i in (x, a) for k in ("val_accuracy", "accuracy", "nll")]
    return _claim(sw, cid, text, d.verdict, rule, reason, test=test, margin="0", decisions=[d],
                  evidence=levels + [row, nll],
                  key=f"accuracy {arms.label(x)} − {arms.label(a)}: {_describe(row)}",
                  notes=_excluded_note(arms, [x, a]))  # fmt: skip


def evaluate_alternative_claims(
    settings: Sequence[Setting], num_classes: int, claim_settings: ClaimSettings | None = None
) -> list[dict[str, Any]]:
    """Claims 7-9 from the finished runs of every setting of a sweep (label smoothing with
    the shared baseline at α = 0, the other objectives, distillation students), all on one
    test set; the same dicts as `claims.evaluate_claims`, evidence rows naming settings."""
    cs = claim_settings or ClaimSettings()
    with_runs = [s for s in settings if s.runs]
    if not with_runs:
        return []
    arms = _arms(settings, num_classes, cs)
    return [_claim7(arms), _claim8(arms), _claim9(arms)]


__all__ = ["Setting", "evaluate_alternative_claims"]
