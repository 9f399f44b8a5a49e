"""Claim verdicts on synthetic sweeps whose answer is known by construction."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from lsexp.analysis.claims import (
    CAP_TOLERANCE,
    NEAR_BEST_MARGIN,
    RunResult,
    claims_markdown,
    evaluate_claims,
)
from lsexp.analysis.metrics import optimal_logit_gap
from lsexp.analysis.stats import summarize

K = 10
ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
SEEDS = tuple(range(5))
IDS = (
    "alpha_above_0.2_hurts_accuracy",
    "smoothing_improves_calibration",
    "alpha_0.1_near_best_default",
    "large_alpha_underconfident",
    "smoothing_caps_logit_gap",
)


# A "textbook" sweep: every claim holds. Each metric is a function of (alpha, seed); the
# tests override one function at a time.
def _acc(a, s):
    return 0.90 if a <= 0.2 else 0.85


def _ece(a, s):
    return 0.05 - 0.1 * a


def _over(a, s):
    return 0.05 - 0.3 * a  # crosses 0 at α = 1/6


def _gap(a, s):
    return 8.0 if a == 0 else 0.95 * optimal_logit_gap(a, K)


def sweep(
    alphas=ALPHAS,
    seeds=SEEDS,
    *,
    acc=_acc,
    ece=_ece,
    over=_over,
    gap=_gap,
    ece_ts=None,
    noise=0.001,
    rng_seed=0,
) -> list[RunResult]:
    """Runs for every (alpha, seed), with small independent Gaussian noise on each metric."""
    rng = np.random.default_rng(rng_seed)
    runs = []
    for a in alphas:
        for s in seeds:
            e = rng.normal(0.0, noise, size=4)
            runs.append(
                RunResult(
                    alpha=a,
                    seed=s,
                    accuracy=acc(a, s) + e[0],
                    ece=ece(a, s) + e[1],
                    overconfidence=over(a, s) + e[2],
                    logit_gap=gap(a, s) + 10 * e[3],
                    ece_ts=None if ece_ts is None else ece_ts(a, s),
                )
            )
    return runs


def claim(claims: list[dict], cid: str) -> dict:
    (c,) = [c for c in claims if c["id"] == cid]
    return c


def verdict(runs: list[RunResult], cid: str, **kw) -> dict:
    return claim(evaluate_claims(runs, K, **kw), cid)


def decisive(c: dict) -> list[dict]:
    return [r for r in c["evidence"] if r["role"] == "decisive"]


# ---------------------------------------------------------------------------------------
# Shape of the output
# ---------------------------------------------------------------------------------------


def test_every_claim_has_the_documented_keys_in_order():
    claims = evaluate_claims(sweep(), K)
    assert [c["id"] for c in claims] == list(IDS)
    for c in claims:
        assert {"id", "claim", "verdict", "rule", "reason", "evidence"} <= set(c)
        assert c["verdict"] in ("supported", "not supported", "inconclusive")
        assert "Student-t" in c["rule"]
        assert c["evidence"] and all(isinstance(r, dict) for r in c["evidence"])


def test_textbook_sweep_supports_every_claim():
    claims = evaluate_claims(sweep(), K)
    assert {c["id"]: c["verdict"] for c in claims} == dict.fromkeys(IDS, "supported")


@pytest.mark.parametrize(
    "runs",
    [
        sweep(),
        sweep(seeds=(0,)),
        [],
        sweep(ece_ts=lambda a, s: 0.01),
        # NaN metrics, a missing seed and a None ece_ts must still give finite-or-None output
        sweep(gap=lambda a, s: math.nan if s == 0 else _gap(a, s))[1:],
    ],
)
def test_output_is_strict_json(runs):
    claims = evaluate_claims(runs, K, n_excluded={0.5: 2, 0.7: 3})
    text = json.dumps(claims, allow_nan=False)
    assert json.loads(text) == claims


def test_run_order_does_not_change_anything():
    runs = sweep(ece_ts=lambda a, s: 0.01 + 0.001 * s)[:-3]  # unbalanced: seeds missing
    expected = evaluate_claims(runs, K, n_excluded={0.5: 3, 0.1: 1})
    for seed in range(5):
        shuffled = runs[:]
        random.Random(seed).shuffle(shuffled)
        got = evaluate_claims(shuffled, K, n_excluded={0.1: 1, 0.5: 3})
        assert got == expected
        assert claims_markdown(got) == claims_markdown(expected)


@pytest.mark.parametrize("acc", [_acc, lambda a, s: 0.91 if a == 0.1 else 0.90])
def test_one_seed_makes_every_verdict_inconclusive_n1(acc):
    for c in evaluate_claims(sweep(seeds=(3,), acc=acc), K):
        assert c["verdict"] == "inconclusive", c["id"]
        assert "n=1" in c["reason"], c["reason"]


def test_c3_best_alpha_0_1_with_a_single_seed_is_inconclusive():
    runs = [
        r
        for r in sweep(acc=lambda a, s: 0.91 if a == 0.1 else 0.90)
        if r.alpha != 0.1 or r.seed == 0
    ]
    c = verdict(runs, IDS[2])
    assert c["verdict"] == "inconclusive"
    assert "only n=1 finished seed at α=0.1" in c["reason"]


def test_no_runs_at_all_is_inconclusive_everywhere():
    claims = evaluate_claims([], K, n_excluded={0.1: 4})
    assert {c["verdict"] for c in claims} == {"inconclusive"}
    assert "α=0.1 has no finished run (4 diverged or failed)" in claim(claims, IDS[1])["reason"]


def test_bad_input_is_rejected_with_a_message():
    runs = sweep(alphas=(0.0, 0.1), seeds=(0, 1))
    with pytest.raises(ValueError, match="one run per"):
        evaluate_claims([*runs, runs[0]], K)
    with pytest.raises(ValueError, match="num_classes"):
        evaluate_claims(runs, 1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        evaluate_claims([RunResult(1.0, 0, 0.1, 0.1, 0.0, 0.0)], K)
    with pytest.raises(ValueError, match="count"):
        evaluate_claims(runs, K, n_excluded={0.1: -1})


def test_excluded_runs_are_named_in_the_notes():
    claims = evaluate_claims(sweep(), K, n_excluded={0.5: 2})
    c1 = claim(claims, IDS[0])
    assert any("α=0.5: 2 runs diverged or failed" in n for n in c1["notes"])
    # claim 2 looks only at α=0, α=0.1 and the lowest-ECE α (0.5 here), not at α=0.05
    claims = evaluate_claims(sweep(), K, n_excluded={0.05: 1})
    assert any("α=0.05: 1 run diverged" in n for n in claim(claims, IDS[0])["notes"])
    assert not any("α=0.05" in n for n in claim(claims, IDS[1])["notes"])


# ---------------------------------------------------------------------------------------
# Pairing by seed
# ---------------------------------------------------------------------------------------


def test_comparisons_are_paired_by_seed():
    # Seeds differ by up to 12 ECE points, shared across α; α=0.1 is 0.4 points better for
    # every seed. Separate intervals overlap widely; the paired interval excludes 0.
    def ece(a, s):
        return 0.02 + 0.03 * s - (0.004 if a == 0.1 else 0.0)

    runs = sweep(alphas=(0.0, 0.1), ece=ece, noise=0.0005)
    at = {a: summarize([r.ece for r in runs if r.alpha == a]) for a in (0.0, 0.1)}
    assert at[0.1].ci_high > at[0.0].ci_low  # an unpaired comparison would see nothing
    c = verdict(runs, IDS[1])
    assert c["verdict"] == "supported", c["reason"]
    (row,) = decisive(c)
    assert row["n_pairs"] == 5 and row["ci_high"] < 0
    assert row["mean_diff"] == pytest.approx(-0.004, abs=0.001)


def test_only_seeds_finished_at_both_alphas_are_paired():
    def ece(a, s):
        return 0.02 + 0.03 * s - (0.004 if a == 0.1 else 0.0)

    runs = sweep(alphas=(0.0, 0.1), ece=ece, noise=0.0005)
    # seed 9 only at α=0 with a wild ECE, seed 2 missing at α=0.1: both must be ignored
    runs = [r for r in runs if not (r.alpha == 0.1 and r.seed == 2)]
    runs.append(RunResult(0.0, 9, 0.5, 0.9, 0.4, 3.0))
    (row,) = decisive(verdict(runs, IDS[1]))
    assert row["seeds"] == [0, 1, 3, 4] and row["n_pairs"] == 4
    assert row["mean_alpha"] - row["mean_baseline"] == pytest.approx(row["mean_diff"])
    assert row["ci_high"] < 0


def test_fewer_than_two_common_seeds_is_inconclusive():
    runs = sweep(alphas=(0.0,), seeds=(0, 1, 2)) + sweep(alphas=(0.1,), seeds=(2, 3, 4))
    c = verdict(runs, IDS[1])
    assert c["verdict"] == "inconclusive"
    assert "only n=1 paired seed" in c["reason"]


# ---------------------------------------------------------------------------------------
# Claim 1: α > 0.2 hurts accuracy
# ---------------------------------------------------------------------------------------


def test_c1_drop_above_0_2_is_supported():
    c = verdict(sweep(), IDS[0])
    assert c["verdict"] == "supported"
    assert [r["alpha"] for r in decisive(c)] == [0.3, 0.5]
    assert all(r["ci_high"] < 0 for r in decisive(c))


def test_c1_flat_accuracy_is_not_supported():
    c = verdict(sweep(acc=lambda a, s: 0.9), IDS[0])
    assert c["verdict"] == "not supported", c["reason"]


def test_c1_flat_but_one_alpha_without_interval_is_inconclusive():
    runs = [r for r in sweep(acc=lambda a, s: 0.9) if r.alpha != 0.5 or r.seed == 0]
    c = verdict(runs, IDS[0])
    assert c["verdict"] == "inconclusive"
    assert "fewer than 2 paired seeds" in c["reason"]


def test_c1_drop_only_below_the_largest_alpha_is_inconclusive():
    c = verdict(sweep(acc=lambda a, s: 0.85 if a == 0.3 else 0.9), IDS[0])
    assert c["verdict"] == "inconclusive"
    assert "Mixed" in c["reason"]


def test_c1_needs_at_least_half_of_the_alphas_above_0_2():
    alphas = (0.0, 0.1, 0.3, 0.4, 0.5)
    one_of_three = sweep(alphas, acc=lambda a, s: 0.85 if a == 0.5 else 0.9)
    assert verdict(one_of_three, IDS[0])["verdict"] == "inconclusive"
    two_of_three = sweep(alphas, acc=lambda a, s: 0.85 if a >= 0.4 else 0.9)
    assert verdict(two_of_three, IDS[0])["verdict"] == "supported"
    one_of_two = sweep((0.0, 0.1, 0.3, 0.5), acc=lambda a, s: 0.85 if a == 0.5 else 0.9)
    assert verdict(one_of_two, IDS[0])["verdict"] == "supported"  # exactly half is enough


def test_c1_baseline_is_the_best_alpha_up_to_0_2():
    # α=0.3 beats α=0 and α=0.1 but not the best α ≤ 0.2 (α=0.2)
    table = {0.0: 0.90, 0.1: 0.90, 0.2: 0.93, 0.3: 0.91}
    c = verdict(sweep(tuple(table), acc=lambda a, s: table[a]), IDS[0])
    assert c["verdict"] == "supported"
    (row,) = decisive(c)
    assert row["baseline_alpha"] == 0.2
    assert row["mean_diff"] == pytest.approx(-0.02, abs=0.002)


def test_c1_without_alphas_above_0_2_is_inconclusive():
    c = verdict(sweep((0.0, 0.1, 0.2)), IDS[0])
    assert c["verdict"] == "inconclusive"
    assert "no finished α > 0.2" in c["reason"]


# ---------------------------------------------------------------------------------------
# Claim 2: label smoothing improves calibration
# ---------------------------------------------------------------------------------------


def test_c2_lower_ece_at_0_1_is_supported_with_extra_evidence():
    c = verdict(sweep(), IDS[1])
    assert c["verdict"] == "supported"
    (row,) = decisive(c)
    assert (row["alpha"], row["baseline_alpha"]) == (0.1, 0.0)
    (extra,) = [r for r in c["evidence"] if r["role"] == "extra"]
    assert extra["alpha"] == 0.5  # lowest mean ECE


def test_c2_higher_ece_at_0_1_is_not_supported_worse():
    c = verdict(sweep(ece=lambda a, s: 0.05 + 0.1 * a), IDS[1])
    assert c["verdict"] == "not supported"
    assert c["reason"].startswith("Worse")


def test_c2_flat_ece_is_not_supported_no_detectable_improvement():
    c = verdict(sweep(ece=lambda a, s: 0.05), IDS[1])
    assert c["verdict"] == "not supported"
    assert c["reason"].startswith("No detectable improvement")
    assert decisive(c)[0]["interval_vs_0"] == "contains 0"


def test_c2_temperature_scaling_is_context_only():
    plain = verdict(sweep(), IDS[1])
    with_ts = verdict(sweep(ece_ts=lambda a, s: 0.012), IDS[1])
    assert with_ts["verdict"] == plain["verdict"]
    (ts0,) = [r for r in with_ts["evidence"] if r["metric"] == "ece_ts" and r["alpha"] == 0.0]
    assert ts0["mean"] == pytest.approx(0.012) and ts0["role"] == "context"
    assert any("temperature scaling" in n for n in with_ts["notes"])
    assert not any(r["metric"] == "ece_ts" for r in plain["evidence"])


# ---------------------------------------------------------------------------------------
# Missing α=0.1: claims 2 and 3
# ---------------------------------------------------------------------------------------


def test_missing_alpha_0_1_makes_claims_2_and_3_inconclusive():
    claims = evaluate_claims(sweep((0.0, 0.05, 0.2, 0.3, 0.5)), K)
    for cid in IDS[1:3]:
        c = claim(claims, cid)
        assert c["verdict"] == "inconclusive"
        assert "α=0.1 is not in the sweep" in c["reason"]


# ---------------------------------------------------------------------------------------
# Claim 3: α = 0.1 is a near-best default
# ---------------------------------------------------------------------------------------


def test_c3_alpha_0_1_best_is_supported():
    c = verdict(sweep(acc=lambda a, s: 0.91 if a == 0.1 else 0.90), IDS[2])
    assert c["verdict"] == "supported"
    assert "highest mean accuracy" in c["reason"]
    assert not decisive(c)


def test_c3_within_margin_of_the_best_is_supported():
    # best α=0.05 is 0.2 points better, well inside the half-point margin
    c = verdict(sweep(acc=lambda a, s: {0.05: 0.902, 0.1: 0.900}.get(a, 0.89)), IDS[2])
    assert c["verdict"] == "supported", c["reason"]
    (row,) = decisive(c)
    assert row["baseline_alpha"] == 0.05
    assert -NEAR_BEST_MARGIN < row["ci_low"] < 0


def test_c3_far_below_the_best_is_not_supported():
    c = verdict(sweep(acc=lambda a, s: 0.88 if a == 0.1 else 0.90), IDS[2])
    assert c["verdict"] == "not supported"
    assert decisive(c)[0]["ci_high"] < -NEAR_BEST_MARGIN


def test_c3_interval_straddling_the_margin_is_inconclusive():
    # per-seed differences -0.2, -0.8, -0.3, -0.7, -0.5 points: mean exactly -0.5
    offset = [0.002, 0.008, 0.003, 0.007, 0.005]
    c = verdict(sweep(acc=lambda a, s: 0.9 - (offset[s] if a == 0.1 else 0.0), noise=0.0), IDS[2])
    assert c["verdict"] == "inconclusive"
    (row,) = decisive(c)
    assert row["ci_low"] < -NEAR_BEST_MARGIN < row["ci_high"]


def test_c3_with_only_alpha_0_1_is_inconclusive():
    c = verdict(sweep((0.1,)), IDS[2])
    assert c["verdict"] == "inconclusive"


# ---------------------------------------------------------------------------------------
# Claim 4: large α makes the model under-confident
# ---------------------------------------------------------------------------------------


def test_c4_negative_overconfidence_at_largest_alpha_is_supported_with_crossover():
    c = verdict(sweep(), IDS[3])
    assert c["verdict"] == "supported"
    assert decisive(c)[0]["alpha"] == 0.5
    assert c["crossover_alpha"] == 0.2
    assert [r["alpha"] for r in c["evidence"] if r["crossover"]] == [0.2]


def test_c4_positive_overconfidence_is_not_supported():
    c = verdict(sweep(over=lambda a, s: 0.02), IDS[3])
    assert c["verdict"] == "not supported"
    assert c["crossover_alpha"] is None


def test_c4_interval_containing_zero_is_inconclusive():
    # at α=0.5 the mean is below 0 (-0.1 points) but the interval is not
    offset = [-0.004, 0.003, -0.002, 0.002, -0.004]

    def over(a, s):
        return offset[s] if a == 0.5 else -0.02

    c = verdict(sweep(over=over, noise=0.0), IDS[3])
    assert c["verdict"] == "inconclusive"
    assert "contains 0" in c["reason"]
    assert decisive(c)[0]["mean"] < 0


def test_c4_largest_alpha_below_0_2_is_inconclusive():
    c = verdict(sweep((0.0, 0.05, 0.1), over=lambda a, s: -0.05), IDS[3])
    assert c["verdict"] == "inconclusive"
    assert "largest finished α of the sweep is 0.1" in c["reason"]


# ---------------------------------------------------------------------------------------
# Claim 5: label smoothing caps logit growth
# ---------------------------------------------------------------------------------------


def test_c5_gaps_below_their_caps_are_supported():
    c = verdict(sweep(), IDS[4])
    assert c["verdict"] == "supported"
    for r in c["evidence"]:
        if r["alpha"] > 0:
            assert r["cap"] == pytest.approx(optimal_logit_gap(r["alpha"], K))


@pytest.mark.parametrize(("factor", "expected"), [(1.05, "supported"), (1.15, "not supported")])
def test_c5_tolerance_on_the_cap(factor, expected):
    assert CAP_TOLERANCE == 0.10

    def gap(a, s):
        return factor * optimal_logit_gap(a, K) if a == 0.3 else _gap(a, s)

    c = verdict(sweep(gap=gap), IDS[4])
    assert c["verdict"] == expected, c["reason"]


def test_c5_alpha_0_gap_within_the_caps_is_inconclusive():
    c = verdict(sweep(gap=lambda a, s: 3.0 if a == 0 else _gap(a, s)), IDS[4])
    assert c["verdict"] == "inconclusive"
    assert "did not bind" in c["reason"]


def test_c5_without_alpha_0_is_inconclusive():
    c = verdict(sweep(ALPHAS[1:]), IDS[4])
    assert c["verdict"] == "inconclusive"
    assert "α=0 is not in the sweep" in c["reason"]


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------


def test_markdown_has_every_claim_and_verdict():
    mixed = sweep(acc=lambda a, s: 0.9, over=lambda a, s: 0.02)
    for runs in (sweep(), mixed, sweep(seeds=(0,))):
        claims = evaluate_claims(runs, K, n_excluded={0.5: 1})
        md = claims_markdown(claims)
        assert md.startswith("# Claims\n")
        assert "Student-t" in md
        for c in claims:
            assert f"| {c['claim']} | **{c['verdict']}** |" in md
            assert f"## {IDS.index(c['id']) + 1}. {c['claim']}" in md
            assert c["reason"] in md and c["rule"] in md


def test_markdown_formats_accuracy_in_percent():
    md = claims_markdown(evaluate_claims(sweep(acc=lambda a, s: 0.9, noise=0.0), K))
    assert "90.00%" in md
    assert "+0.00 pp" in md
