"""Claims 6-10 on synthetic sweeps whose answer is known by construction (the builders
of tests/test_claims.py): each comes out supported, refuted and inconclusive, and the
t-interval decisions are recomputed with scipy's one-sample t-test and statsmodels' Holm
correction."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from lsexp.analysis.claims import (
    INCONCLUSIVE,
    REFUTED,
    SUPPORTED,
    ClaimSettings,
    claims_markdown,
)
from lsexp.analysis.claims_alternatives import Setting, evaluate_alternative_claims
from tests.test_claims import K, _run, by, sweep

SEEDS = (0, 1, 2)
LABELS = np.random.default_rng(123).integers(0, K, 2000)


def _runs(tag: float, seeds=SEEDS, **kw):
    """Runs of one setting; `tag` only seeds the synthetic logits (any distinct number)."""
    return [_run(tag, s, LABELS, **(kw(s) if callable(kw) else kw)) for s in seeds]


def _p_greater(d, margin=0.0) -> float:
    return float(sps.ttest_1samp(np.asarray(d) - margin, 0.0, alternative="greater").pvalue)


def _p_less(d, margin=0.0) -> float:
    return float(sps.ttest_1samp(np.asarray(d) - margin, 0.0, alternative="less").pvalue)


def _holm(ps):
    return list(multipletests(ps, method="holm")[1])


def alt_claims(settings, **cs):
    claims = evaluate_alternative_claims(settings, K, ClaimSettings(**cs))
    json.dumps(claims, allow_nan=False)
    assert claims_markdown(claims)
    return {c["id"]: c for c in claims}


def _acc(acc, conf=None, val=None):
    return lambda s: {"acc": acc + 0.004 * s, "conf": conf or acc + 0.004 * s,
                      **({"val_acc": val} if val is not None else {})}  # fmt: skip


# ---------------------------------------------------------------------------------------
# Claim 6: after TS, label smoothing no better calibrated than cross-entropy
# ---------------------------------------------------------------------------------------


def test_claim6_supported_when_scaling_leaves_no_advantage():
    # both calibrated after scaling (ts_conf = acc): d ≈ 0, well inside the noise floor
    spec = {a: (lambda s: dict(acc=0.9 + 0.005 * s, conf=0.97, ts_conf=0.9 + 0.005 * s))
            for a in (0.0, 0.1, 0.2)}  # fmt: skip
    c = by(sweep(spec), 6, interval="t")
    assert c["verdict"] == SUPPORTED, c["reason"]
    rows = [r for r in c["evidence"] if r["kind"] == "comparison"]
    assert [r["vs_alpha"] for r in rows] == [0.1, 0.2]
    # recomputed: non-inferiority p = P(d < floor), Holm across the two α
    runs = sweep(spec)
    val = {(r.alpha, r.seed): r.values for r in runs}
    ps = []
    for a in (0.1, 0.2):
        floor = max(np.mean([val[(a, s)]["ece_ts_floor"] for s in SEEDS]),
                    np.mean([val[(0.0, s)]["ece_ts_floor"] for s in SEEDS]))  # fmt: skip
        d = [val[(0.0, s)]["ece_ts"] - val[(a, s)]["ece_ts"] for s in SEEDS]
        ps.append(_p_less(d, floor))
    for r, p in zip(rows, _holm(ps), strict=True):
        assert r["p_support_adj"] == pytest.approx(p, rel=1e-6)


def test_claim6_refuted_when_smoothing_stays_better_after_scaling():
    spec = {0.0: lambda s: dict(acc=0.9, conf=0.99, ts_conf=0.995 - 0.001 * s),
            0.1: lambda s: dict(acc=0.9, conf=0.9, ts_conf=0.9 + 0.001 * s)}  # fmt: skip
    c = by(sweep(spec), 6, interval="t")
    assert c["verdict"] == REFUTED, c["reason"]


def test_claim6_inconclusive_without_its_alphas_or_a_validation_split():
    assert (
        by(
            sweep(
                {
                    0.0: dict(acc=0.9, conf=0.9, ts_conf=0.9),
                    0.2: dict(acc=0.9, conf=0.9, ts_conf=0.9),
                }
            ),
            6,
        )["verdict"]
        == INCONCLUSIVE
    )
    c = by(sweep({0.0: dict(acc=0.9, conf=0.9), 0.1: dict(acc=0.9, conf=0.9)}), 6)
    assert c["verdict"] == INCONCLUSIVE and "validation" in c["reason"]


# ---------------------------------------------------------------------------------------
# Claim 10: label smoothing tightens class clusters (class separation R²)
# ---------------------------------------------------------------------------------------


def _with_r2(runs, r2):
    return [replace(r, values={**r.values, "class_separation": r2(r.alpha, r.seed)})
            for r in runs]  # fmt: skip


@pytest.mark.parametrize(("delta", "verdict"), [(0.2, SUPPORTED), (-0.2, REFUTED)])
def test_claim10_follows_the_r2_difference(delta, verdict):
    runs = sweep({a: dict(acc=0.9, conf=0.9) for a in (0.0, 0.1, 0.3)})
    noise = {0: 0.01, 1: -0.02, 2: 0.015}
    runs = _with_r2(runs, lambda a, s: 0.5 + (delta * (a > 0)) + noise[s] * (1 + a))
    c = by(runs, 10)
    assert c["verdict"] == verdict, c["reason"]
    # t over seeds whatever the interval setting, Holm across α: recomputed with scipy
    rows = [r for r in c["evidence"] if r["kind"] == "comparison"]
    val = {(r.alpha, r.seed): r.values["class_separation"] for r in runs}
    ds = [[val[(a, s)] - val[(0.0, s)] for s in SEEDS] for a in (0.1, 0.3)]
    want = _holm([_p_greater(d) for d in ds])
    for r, p in zip(rows, want, strict=True):
        assert r["p_support_adj"] == pytest.approx(p, rel=1e-6)
        assert r["method"] == "t"


def test_claim10_inconclusive_without_saved_features():
    c = by(sweep({0.0: dict(acc=0.9, conf=0.9), 0.1: dict(acc=0.9, conf=0.9)}), 10)
    assert c["verdict"] == INCONCLUSIVE and "penultimate" in c["reason"]


# ---------------------------------------------------------------------------------------
# Claim 7: a label-smoothed teacher distils worse
# ---------------------------------------------------------------------------------------


def _distillation(teacher0, teacher1, student0, student1):
    return [
        Setting("label_smoothing", 0.0, "cross-entropy", _runs(0.0, **teacher0)),
        Setting("label_smoothing", 0.1, "α=0.1", _runs(0.1, **teacher1)),
        Setting("distillation", 0.0, "distillation, teacher cross-entropy",
                _runs(5.0, **student0), teacher=("label_smoothing", 0.0)),
        Setting("distillation", 0.0, "distillation, teacher α=0.1", _runs(5.1, **student1),
                teacher=("label_smoothing", 0.1)),
    ]  # fmt: skip


def test_claim7_supported_when_the_smoothed_teachers_student_is_worse():
    settings = _distillation(dict(acc=0.9, conf=0.9), dict(acc=0.9, conf=0.9),
                             dict(acc=0.88, conf=0.88), dict(acc=0.84, conf=0.84))  # fmt: skip
    c = alt_claims(settings, interval="t")[7]
    assert c["verdict"] == SUPPORTED, c["reason"]
    decides = [r for r in c["evidence"] if r.get("role") == "decides"]
    assert decides[0]["setting"] == "distillation, teacher cross-entropy"
    assert decides[0]["estimate"] == pytest.approx(0.04, abs=2e-3)


def test_claim7_refuted_when_the_smoothed_teacher_teaches_as_well():
    settings = _distillation(dict(acc=0.9, conf=0.9), dict(acc=0.9, conf=0.9),
                             dict(acc=0.85, conf=0.85), dict(acc=0.88, conf=0.88))  # fmt: skip
    assert alt_claims(settings, interval="t")[7]["verdict"] == REFUTED


def test_claim7_inconclusive_when_the_smoothed_teacher_is_itself_worse():
    settings = _distillation(dict(acc=0.9, conf=0.9), dict(acc=0.8, conf=0.8),
                             dict(acc=0.88, conf=0.88), dict(acc=0.84, conf=0.84))  # fmt: skip
    c = alt_claims(settings, interval="t")[7]
    assert c["verdict"] == INCONCLUSIVE and "premise refuted, fails" in c["reason"]


def test_claim7_inconclusive_without_students():
    settings = _distillation(dict(acc=0.9, conf=0.9), dict(acc=0.9, conf=0.9),
                             dict(acc=0.9, conf=0.9), dict(acc=0.9, conf=0.9))[:2]  # fmt: skip
    c = alt_claims(settings)[7]
    assert c["verdict"] == INCONCLUSIVE and "sweep.distillation" in c["reason"]


# ---------------------------------------------------------------------------------------
# Claims 8 and 9: focal against label smoothing; mixup against label smoothing
# ---------------------------------------------------------------------------------------


def _comparison(ls: dict, other_name: str, others: dict):
    """Baseline, label smoothing at its α (dict α -> run kwargs), another objective."""
    out = [Setting("label_smoothing", 0.0, "cross-entropy", _runs(0.0, acc=0.9, conf=0.95))]
    out += [Setting("label_smoothing", a, f"α={a:g}", _runs(a, **kw)) for a, kw in ls.items()]
    out += [Setting(other_name, v, f"{other_name} {v:g}", _runs(10 + v, **kw))
            for v, kw in others.items()]  # fmt: skip
    return out


def test_claim8_supported_when_focal_is_calibrated_at_equal_accuracy():
    s = _comparison({0.1: dict(acc=0.9, conf=0.99)}, "focal", {2.0: dict(acc=0.9, conf=0.9)})
    c = alt_claims(s, interval="t")[8]
    assert c["verdict"] == SUPPORTED, c["reason"]


def test_claim8_refuted_when_label_smoothing_is_better_calibrated():
    s = _comparison({0.1: dict(acc=0.9, conf=0.9)}, "focal", {2.0: dict(acc=0.9, conf=0.99)})
    assert alt_claims(s, interval="t")[8]["verdict"] == REFUTED


def test_claim8_not_at_equal_accuracy_is_inconclusive():
    s = _comparison({0.1: dict(acc=0.9, conf=0.99)}, "focal", {2.0: dict(acc=0.8, conf=0.8)})
    c = alt_claims(s, interval="t")[8]
    assert c["verdict"] == INCONCLUSIVE and "not at equal accuracy" in c["reason"]


def test_claims_choose_the_best_setting_on_validation_not_test():
    # α=0.1 is best on validation but worse on test than α=0.2: the claim uses α=0.1
    ls = {0.1: dict(acc=0.86, conf=0.86, val_acc=0.95), 0.2: dict(acc=0.91, conf=0.91, val_acc=0.9)}
    mix = {0.2: dict(acc=0.89, conf=0.89, val_acc=0.92), 0.4: dict(acc=0.95, conf=0.95,
                                                                   val_acc=0.8)}  # fmt: skip
    c = alt_claims(_comparison(ls, "mixup", mix), interval="t")[9]
    assert "Mixup: mixup 0.2" in c["reason"] and "label smoothing: α=0.1" in c["reason"]
    assert c["verdict"] == SUPPORTED  # 0.89 against 0.86, not 0.95 against 0.91
    row = next(r for r in c["evidence"] if r.get("role") == "decides")
    runs = {st.label: st.runs for st in _comparison(ls, "mixup", mix)}
    d = [a.values["accuracy"] - b.values["accuracy"]
         for a, b in zip(runs["mixup 0.2"], runs["α=0.1"], strict=True)]  # fmt: skip
    assert row["p_support_adj"] == pytest.approx(_p_greater(d), rel=1e-6)


def test_claim9_refuted_when_mixup_is_less_accurate():
    s = _comparison({0.1: dict(acc=0.9, conf=0.9)}, "mixup", {0.2: dict(acc=0.85, conf=0.85)})
    assert alt_claims(s, interval="t")[9]["verdict"] == REFUTED


@pytest.mark.parametrize("interval", ["combined", "bootstrap"])
def test_claims_7_to_9_run_with_the_bootstrap_intervals(interval):
    s = _comparison({0.1: dict(acc=0.9, conf=0.99)}, "focal", {2.0: dict(acc=0.9, conf=0.9)})
    s.append(Setting("mixup", 0.2, "mixup 0.2", _runs(20.0, acc=0.93, conf=0.93)))
    claims = alt_claims(s, interval=interval, n_boot=200, margin=0.02)
    assert claims[8]["verdict"] == SUPPORTED and claims[9]["verdict"] == SUPPORTED
    assert claims[7]["verdict"] == INCONCLUSIVE  # no distillation in this sweep


def test_no_runs_no_claims():
    assert evaluate_alternative_claims([Setting("focal", 1.0, "focal 1", [])], K) == []
