"""Claim verdicts on synthetic sweeps whose answer is known by construction.

Each sweep is built from logits with a chosen accuracy and confidence per (α, seed), on
one shared test set, so every claim can be made to come out supported, refuted and
inconclusive. The decisions are recomputed independently where a closed form exists: the
t-interval path against scipy.stats.ttest_1samp with statsmodels' Holm correction.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from lsexp.analysis import metrics as M
from lsexp.analysis.claims import (
    CAP_TOLERANCE,
    INCONCLUSIVE,
    REFUTED,
    SUPPORTED,
    ClaimRun,
    ClaimSettings,
    claims_markdown,
    evaluate_claims,
)
from lsexp.analysis.metrics import optimal_logit_gap
from lsexp.analysis.selective import selective_metrics

K = 10
IDS = [1, "2a", "2b", "2c", 3, 4, 5, 6, 10, 11]


def _logits(rng, labels, acc: float, conf: float) -> np.ndarray:
    """Logits whose argmax is right on a fraction `acc` of examples (exactly, in a random
    subset) and whose top softmax probability is `conf` on every example."""
    n = labels.size
    right = np.zeros(n, bool)
    right[rng.permutation(n)[: round(acc * n)]] = True
    pred = np.where(right, labels, (labels + rng.integers(1, K, n)) % K)
    z = np.zeros((n, K))
    z[np.arange(n), pred] = math.log(conf * (K - 1) / (1 - conf))
    return z


def _run(alpha, seed, labels, acc, conf, *, ts_conf=None, val_acc=None, gap=None, n_val=500):
    rng = np.random.default_rng(hash((alpha, seed)) % 2**32)
    z = _logits(rng, labels, acc, conf)
    z_ts = _logits(np.random.default_rng(seed), labels, acc, ts_conf) if ts_conf else None
    p = M.softmax(z)
    values = {
        "accuracy": M.accuracy(p, labels),
        "val_accuracy": acc if val_acc is None else val_acc,
        "ece": M.ece(p, labels),
        "ece_floor": M.ece_noise_floor(p).mean,
        "nll": M.nll_from_logits(z, labels),
        "brier": M.brier(p, labels),
        "overconfidence": M.overconfidence(p, labels),
        "logit_gap": M.logit_gap(z),
    }
    if z_ts is not None:
        pt = M.softmax(z_ts)
        values.update(ece_ts=M.ece(pt, labels), ece_ts_floor=M.ece_noise_floor(pt).mean)
        for key, v in M.calibration_panel(pt, labels).items():
            values[f"panel_ts_{key}"] = v
    for key, v in M.calibration_panel(p, labels).items():
        values[f"panel_{key}"] = v
    train = None if gap is None else np.full(100, gap, float) + rng.normal(0, 0.05, 100)
    return ClaimRun(alpha, seed, z, labels, values, z_ts, train)


def sweep(spec, n=2000, seeds=(0, 1, 2), **common):
    """spec: alpha -> dict(acc, conf, ...) or a function (seed -> dict)."""
    labels = np.random.default_rng(123).integers(0, K, n)
    runs = []
    for a, s in ((a, s) for a in spec for s in seeds):
        kw = spec[a](s) if callable(spec[a]) else spec[a]
        runs.append(_run(a, s, labels, **{**common, **kw}))
    return runs


def verdicts(runs, **settings):
    claims = evaluate_claims(runs, K, settings=ClaimSettings(**settings), schedule="cosine")
    return {c["id"]: c for c in claims}


def by(runs, claim_id, **settings):
    return verdicts(runs, **settings)[claim_id]


# A sweep where every α ≤ 0.2 has the same accuracy and the larger α lose 10 points.
HURT = {0.0: dict(acc=0.9, conf=0.9), 0.1: dict(acc=0.9, conf=0.9),
        0.3: dict(acc=0.8, conf=0.8), 0.5: dict(acc=0.8, conf=0.8)}  # fmt: skip


# ---------------------------------------------------------------------------------------
# Shape of the output
# ---------------------------------------------------------------------------------------


def test_every_claim_states_its_test_margin_correction_interval_and_n():
    claims = evaluate_claims(sweep(HURT), K)
    assert [c["id"] for c in claims] == IDS
    json.dumps(claims, allow_nan=False)  # finite floats or None only
    md = claims_markdown(claims)
    for c in claims:
        assert c["verdict"] in (SUPPORTED, REFUTED, INCONCLUSIVE)
        for key in ("test", "margin", "correction", "interval", "n", "rule", "reason"):
            assert c[key], (c["id"], key)
        assert f"## {c['id']}. {c['claim']}" in md
    assert md.count("- Test: ") == len(IDS) and md.count("- Interval: ") == len(IDS)
    assert "not supported" not in md


def test_deterministic_and_independent_of_run_order():
    runs = sweep(HURT)
    a = evaluate_claims(runs, K)
    b = evaluate_claims(list(reversed(runs)), K)
    assert json.dumps(a) == json.dumps(b)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="interval"):
        ClaimSettings(interval="wild")
    with pytest.raises(ValueError, match="margin"):
        ClaimSettings(margin=0.0)


# ---------------------------------------------------------------------------------------
# Claim 1: α > 0.2 hurts accuracy
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", ["combined", "bootstrap", "t"])
def test_claim1_supported_when_every_large_alpha_loses(interval):
    c = by(sweep(HURT), 1, interval=interval, n_boot=200)
    assert c["verdict"] == SUPPORTED
    rows = [r for r in c["evidence"] if r["kind"] == "comparison"]
    assert [r["alpha"] for r in rows] == [0.3, 0.5]
    assert all(r["verdict"] == SUPPORTED and r["estimate"] == pytest.approx(0.1) for r in rows)
    assert c["correction"] == "Holm over 2 comparisons"


def test_claim1_refuted_when_a_large_alpha_is_established_within_the_margin():
    # α=0.3 makes the very same predictions as α=0: the harm is exactly 0 at every seed.
    spec = {0.0: dict(acc=0.9, conf=0.9), 0.3: dict(acc=0.9, conf=0.9)}
    runs = sweep(spec)
    same = [r for r in runs if r.alpha == 0.0]
    runs = same + [ClaimRun(0.3, r.seed, r.logits, r.labels, r.values) for r in same]
    assert by(runs, 1)["verdict"] == REFUTED


def test_claim1_inconclusive_on_a_small_noisy_test_set():
    spec = {0.0: dict(acc=0.9, conf=0.9), 0.3: dict(acc=0.895, conf=0.9)}
    c = by(sweep(spec, n=300), 1)
    assert c["verdict"] == INCONCLUSIVE
    row = next(r for r in c["evidence"] if r["kind"] == "comparison")
    assert row["ci_low"] < 0 < 0.005 < row["ci_high"]


def test_claim1_baseline_is_chosen_on_validation_not_test():
    # α=0 is best on test, α=0.1 on validation: the baseline must be α=0.1.
    spec = {0.0: dict(acc=0.92, conf=0.9, val_acc=0.85), 0.1: dict(acc=0.90, conf=0.9,
            val_acc=0.91), 0.3: dict(acc=0.8, conf=0.8)}  # fmt: skip
    c = by(sweep(spec), 1)
    assert c["baseline_alpha"] == 0.1
    row = next(r for r in c["evidence"] if r["kind"] == "comparison")
    assert row["vs_alpha"] == 0.1 and row["estimate"] == pytest.approx(0.10)


def test_claim1_t_path_matches_scipy_and_statsmodels_holm():
    rng = np.random.default_rng(5)
    accs = {0.0: [0.90, 0.905, 0.91], 0.3: [0.89, 0.885, 0.9], 0.5: [0.86, 0.88, 0.87]}
    spec = {a: (lambda s, a=a: dict(acc=accs[a][s], conf=0.9)) for a in accs}
    runs = sweep(spec, n=2000)
    del rng
    c = by(runs, 1, interval="t")
    rows = [r for r in c["evidence"] if r["kind"] == "comparison"]
    acc = {(r.alpha, r.seed): r.values["accuracy"] for r in runs}
    p_raw = [
        sps.ttest_1samp([acc[0.0, s] - acc[a, s] for s in range(3)], 0.0,
                        alternative="greater").pvalue
        for a in (0.3, 0.5)
    ]  # fmt: skip
    p_holm = multipletests(p_raw, method="holm")[1]
    assert [r["p_support_adj"] for r in rows] == pytest.approx(list(p_holm), rel=1e-9)


# ---------------------------------------------------------------------------------------
# Claim 2: calibration (raw ECE, ECE after TS, NLL and Brier)
# ---------------------------------------------------------------------------------------


def test_claim2a_supported_when_smoothing_removes_overconfidence():
    spec = {0.0: dict(acc=0.9, conf=0.99), 0.1: dict(acc=0.9, conf=0.9),
            0.2: dict(acc=0.9, conf=0.88)}  # fmt: skip
    c = by(sweep(spec), "2a")
    assert c["verdict"] == SUPPORTED
    assert "α ∈ {0.1, 0.2}" in c["reason"]  # the range where it holds
    assert "every estimator of the panel" in c["notes"][0]


def test_claim2a_refuted_when_smoothing_makes_a_calibrated_model_underconfident():
    spec = {0.0: dict(acc=0.9, conf=0.9), 0.1: dict(acc=0.9, conf=0.7)}
    assert by(sweep(spec), "2a")["verdict"] == REFUTED


def test_claim2a_differences_below_the_noise_floor_are_not_resolvable():
    # Both calibrated (ECE at the floor, ~1-2 % on 2,000 examples); they differ by noise.
    spec = {0.0: dict(acc=0.9, conf=0.9), 0.1: dict(acc=0.9, conf=0.895)}
    c = by(sweep(spec), "2a")
    row = next(r for r in c["evidence"] if r["kind"] == "comparison")
    assert row["resolvable"] is False and abs(row["estimate"]) < row["noise_floor"]
    assert c["verdict"] == INCONCLUSIVE and "below the noise floor" in c["reason"]


def test_claim2b_uses_the_temperature_scaled_logits():
    spec = {0.0: dict(acc=0.9, conf=0.99, ts_conf=0.9), 0.1: dict(acc=0.9, conf=0.9,
            ts_conf=0.6)}  # fmt: skip
    v = verdicts(sweep(spec))
    assert v["2a"]["verdict"] == SUPPORTED  # raw: smoothing helps
    assert v["2b"]["verdict"] == REFUTED  # after TS: it is worse


def test_claim2b_inconclusive_without_temperature_scaling():
    c = by(sweep({0.0: dict(acc=0.9, conf=0.9), 0.1: dict(acc=0.9, conf=0.9)}), "2b")
    assert c["verdict"] == INCONCLUSIVE and "temperature" in c["reason"]


def test_claim2c_needs_both_scores():
    # At 70 % accuracy, confidence 0.999 costs ~0.09 of Brier score against a calibrated 0.7.
    better = {0.0: dict(acc=0.7, conf=0.999), 0.1: dict(acc=0.7, conf=0.7)}
    worse = {0.0: dict(acc=0.7, conf=0.7), 0.1: dict(acc=0.7, conf=0.999)}
    assert by(sweep(better), "2c")["verdict"] == SUPPORTED
    assert by(sweep(worse), "2c")["verdict"] == REFUTED
    c = by(sweep(better), "2c")
    assert c["correction"] == "none" or "2 comparisons" in c["correction"]


def test_claim2_inconclusive_without_alpha_zero():
    c = by(sweep({0.1: dict(acc=0.9, conf=0.9), 0.2: dict(acc=0.9, conf=0.9)}), "2a")
    assert c["verdict"] == INCONCLUSIVE and "no α=0" in c["reason"]


# ---------------------------------------------------------------------------------------
# Claim 3: α = 0.1 near-best
# ---------------------------------------------------------------------------------------


def test_claim3_supported_when_no_alpha_beats_it_by_the_margin():
    base = sweep({0.1: dict(acc=0.9, conf=0.9)})
    runs = base + [ClaimRun(a, r.seed, r.logits, r.labels, r.values)
                   for a in (0.0, 0.3) for r in base]  # fmt: skip
    c = by(runs, 3)
    assert c["verdict"] == SUPPORTED and c["margin"] == "0.5 pp of accuracy"


def test_claim3_refuted_when_another_alpha_is_clearly_better():
    spec = {0.0: dict(acc=0.95, conf=0.9), 0.1: dict(acc=0.85, conf=0.9)}
    assert by(sweep(spec), 3)["verdict"] == REFUTED


def test_claim3_inconclusive_when_the_gap_may_exceed_the_margin():
    spec = {0.0: dict(acc=0.905, conf=0.9), 0.1: dict(acc=0.9, conf=0.9)}
    assert by(sweep(spec, n=300), 3)["verdict"] == INCONCLUSIVE


def test_claim3_margin_is_a_setting():
    spec = {0.0: dict(acc=0.93, conf=0.9), 0.1: dict(acc=0.9, conf=0.9)}
    runs = sweep(spec, n=4000)
    assert by(runs, 3, margin=0.005)["verdict"] == REFUTED  # 3 pp > 0.5 pp
    assert by(runs, 3, margin=0.10)["verdict"] == SUPPORTED  # 3 pp < 10 pp


# ---------------------------------------------------------------------------------------
# Claim 4: under-confidence at large α
# ---------------------------------------------------------------------------------------


def test_claim4_three_ways():
    under = {0.0: dict(acc=0.9, conf=0.95), 0.3: dict(acc=0.9, conf=0.6)}
    over = {0.0: dict(acc=0.9, conf=0.95), 0.3: dict(acc=0.9, conf=0.99)}
    small = {0.0: dict(acc=0.9, conf=0.95), 0.1: dict(acc=0.9, conf=0.6)}
    assert by(sweep(under), 4)["verdict"] == SUPPORTED
    assert by(sweep(under), 4)["crossover_alpha"] == 0.3
    assert by(sweep(over), 4)["verdict"] == REFUTED
    assert by(sweep(small), 4)["verdict"] == INCONCLUSIVE


# ---------------------------------------------------------------------------------------
# Claim 5: the logit-gap cap, on training data
# ---------------------------------------------------------------------------------------


def _cap(a):
    return optimal_logit_gap(a, K)


def test_claim5_supported_when_gaps_stay_under_their_caps():
    spec = {0.0: dict(acc=0.9, conf=0.9, gap=12.0), 0.1: dict(acc=0.9, conf=0.9,
            gap=0.9 * _cap(0.1)), 0.3: dict(acc=0.9, conf=0.9, gap=0.95 * _cap(0.3))}  # fmt: skip
    c = by(sweep(spec), 5)
    assert c["verdict"] == SUPPORTED
    assert "Constant-learning-rate control not run" in " ".join(c["notes"])


def test_claim5_refuted_when_a_gap_runs_past_its_cap():
    spec = {0.0: dict(acc=0.9, conf=0.9, gap=12.0), 0.1: dict(acc=0.9, conf=0.9,
            gap=(1 + 3 * CAP_TOLERANCE) * _cap(0.1))}  # fmt: skip
    assert by(sweep(spec), 5)["verdict"] == REFUTED


def test_claim5_inconclusive_when_runs_did_not_record_the_training_gap():
    c = by(sweep(HURT), 5)
    assert c["verdict"] == INCONCLUSIVE and "did not record" in c["reason"]
    # the test-set gap is shown, as context only
    assert any(r["metric"] == "logit_gap" for r in c["evidence"])


def test_claim5_constant_schedule_is_its_own_control():
    spec = {0.0: dict(acc=0.9, conf=0.9, gap=12.0), 0.1: dict(acc=0.9, conf=0.9, gap=3.0)}
    claims = evaluate_claims(sweep(spec), K, schedule="constant")
    assert "its own control" in " ".join(next(c for c in claims if c["id"] == 5)["notes"])


def test_excluded_runs_are_named():
    claims = evaluate_claims(sweep(HURT), K, n_excluded={0.5: 2})
    assert all(any("α=0.5: 2" in n for n in c["notes"]) for c in claims)


# ---------------------------------------------------------------------------------------
# Claim 11: selective classification (AURC of the max softmax probability)
# ---------------------------------------------------------------------------------------


def _ranked_run(alpha, seed, labels, *, ranked: bool, acc: float = 0.8):
    """A run with accuracy `acc` whose max-softmax confidence is higher on its right
    predictions (ranked) or unrelated to being right (not ranked)."""
    rng = np.random.default_rng([int(alpha * 100), seed, 7])
    n = labels.size
    right = np.zeros(n, bool)
    right[rng.permutation(n)[: round(acc * n)]] = True
    pred = np.where(right, labels, (labels + rng.integers(1, K, n)) % K)
    margin = rng.uniform(1.0, 4.0, n) + (2.0 * right if ranked else 0.0)
    z = rng.normal(0, 0.3, (n, K))
    z[np.arange(n), pred] += margin
    p = M.softmax(z)
    values = {"accuracy": M.accuracy(p, labels), "val_accuracy": acc,
              "overconfidence": M.overconfidence(p, labels)}  # fmt: skip
    return ClaimRun(alpha, seed, z, labels, values)


def _selective_sweep(ranked_at: dict[float, bool], seeds=(0, 1, 2), n=1500):
    labels = np.random.default_rng(5).integers(0, K, n)
    return [_ranked_run(a, s, labels, ranked=r) for a, r in ranked_at.items() for s in seeds]


@pytest.mark.parametrize("interval", ["t", "combined", "bootstrap"])
def test_claim11_supported_when_smoothing_unranks_errors(interval):
    runs = _selective_sweep({0.0: True, 0.1: False, 0.3: False})
    c = by(runs, 11, interval=interval, n_boot=200)
    assert c["verdict"] == SUPPORTED, c["reason"]
    decides = [r for r in c["evidence"] if r.get("role") == "decides"]
    assert [r["alpha"] for r in decides] == [0.1] and decides[0]["metric"] == "sel_msp_aurc"
    assert decides[0]["estimate"] > 0 and decides[0]["ci_low"] > 0
    # The p-norm evidence is there for every α > 0, and the level rows are the AURC of
    # selective_metrics (checked against hand-computed cases in test_selective).
    fix = [r for r in c["evidence"]
           if r["kind"] == "comparison" and r["metric"] == "sel_pnorm_aurc"]  # fmt: skip
    assert sorted(r["alpha"] for r in fix) == [0.1, 0.3]
    level = next(r for r in c["evidence"] if r["kind"] == "level" and r["alpha"] == 0.0
                 and r["metric"] == "sel_msp_aurc")  # fmt: skip
    ref = np.mean([selective_metrics(r.logits, r.labels, "msp")["aurc"]
                   for r in runs if r.alpha == 0.0])  # fmt: skip
    assert level["mean"] == pytest.approx(ref, rel=1e-12)
    assert "Holm over 2" in c["correction"]
    assert "p-norm" in c["key_numbers"]


def test_claim11_refuted_when_smoothing_ranks_errors_better():
    c = by(_selective_sweep({0.0: False, 0.1: True}), 11, interval="combined", n_boot=200)
    assert c["verdict"] == REFUTED, c["reason"]
    assert c["logit_normalisation_closes_gap"] is None


def test_claim11_inconclusive_without_alpha_0_1():
    c = by(_selective_sweep({0.0: True, 0.3: False}), 11)
    assert c["verdict"] == INCONCLUSIVE and "no α=0.1" in c["reason"]


def test_claim11_one_bootstrap_over_every_alpha_equals_the_pairwise_one():
    """Claim 11 bootstraps every α at once (each run's AURC scored once); a pair's
    difference must be exactly what a bootstrap of that pair alone gives."""
    from lsexp.analysis import bootstrap as bs

    runs = _selective_sweep({0.0: True, 0.1: False, 0.3: False})
    c = by(runs, 11, interval="combined", n_boot=200, seed=4)
    row = next(r for r in c["evidence"] if r.get("role") == "decides")
    pair = [[r.logits for r in runs if r.alpha == a] for a in (0.1, 0.0)]
    res = bs.hierarchical_bootstrap(pair, runs[0].labels, [bs.aurc_statistic("msp", "x")],
                                    methods=(0.1, 0.0), n_boot=200, seed=4,
                                    resample_seeds=False)["x"]  # fmt: skip
    d = res.combined_difference(0.1, 0.0)
    assert row["estimate"] == pytest.approx(d.estimate, rel=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(d.interval(), rel=1e-9)


def test_claim11_fix_compares_the_p_norm_score_with_plain_cross_entropy_max_softmax():
    """The evidence on logit normalisation is AURC_pnorm(α) − AURC_msp(α = 0) (Xia et al.'s
    question: does the fixed smoothed model select as well as plain cross-entropy?), with
    the per-seed differences a t over seeds would use."""
    runs = _selective_sweep({0.0: True, 0.1: False})
    c = by(runs, 11, interval="t")
    fix = next(r for r in c["evidence"]
               if r["kind"] == "comparison" and r["metric"] == "sel_pnorm_aurc")  # fmt: skip
    assert fix["vs_metric"] == "sel_msp_aurc" and fix["vs_alpha"] == 0.0
    d = [
        selective_metrics(a.logits, a.labels, "pnorm")["aurc"]
        - selective_metrics(b.logits, b.labels, "msp")["aurc"]
        for a in runs
        if a.alpha == 0.1
        for b in runs
        if b.alpha == 0.0 and b.seed == a.seed
    ]
    assert fix["estimate"] == pytest.approx(np.mean(d), rel=1e-12)
    assert "(AURC (max softmax))" in claims_markdown([c])


def _same(x, y, path=""):
    """Equal structures; floats to 1e-9 relative (one big matrix product sums in another
    order than several small ones)."""
    if isinstance(x, dict):
        assert x.keys() == y.keys(), path
        for k in x:
            _same(x[k], y[k], f"{path}/{k}")
    elif isinstance(x, list):
        assert len(x) == len(y), path
        for i, (p, q) in enumerate(zip(x, y, strict=True)):
            _same(p, q, f"{path}[{i}]")
    elif isinstance(x, float):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-300), path
    else:
        assert x == y, path


@pytest.mark.parametrize("interval", ["combined", "bootstrap"])
def test_every_verdict_is_the_same_with_one_bootstrap_per_sweep_as_with_one_per_pair(
    interval, monkeypatch
):
    """The claims bootstrap every α at once where the seeds allow; the numbers must be
    those of a bootstrap of each pair alone (the way before 2026-12-05)."""
    from lsexp.analysis import claims as C

    spec = {0.0: dict(acc=0.9, conf=0.95, ts_conf=0.9), 0.1: dict(acc=0.91, conf=0.85, ts_conf=0.9),
            0.3: dict(acc=0.89, conf=0.8, ts_conf=0.88)}  # fmt: skip
    runs = sweep(spec, n=800)
    settings = ClaimSettings(interval=interval, n_boot=100)
    grid = evaluate_claims(runs, K, settings=settings, schedule="cosine")
    monkeypatch.setattr(C._Sweep, "_grid", lambda self, source, alphas, seeds: alphas)
    pairs = evaluate_claims(runs, K, settings=settings, schedule="cosine")
    _same(grid, pairs)
