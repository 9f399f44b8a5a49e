"""Tests for lsexp.analysis.stats: t quantiles against a printed table, paired tests and TOST
against statsmodels, Holm against statsmodels' multipletests and a hand-computed case, and the
verdict each test returns on intervals placed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW, ttost_paired

from lsexp.analysis.stats import (
    ALPHA,
    INCONCLUSIVE,
    LEVEL,
    REFUTED,
    SUPPORTED,
    bootstrap_difference,
    combined_difference,
    equivalence_test,
    holm,
    holm_adjust,
    noninferiority_test,
    paired_t,
    summarize,
    superiority_test,
    t_quantile,
    t_quantile_975,
)

# t(0.975, df) as printed in the NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.6.7.2
# (the table stats.py carried before it used SciPy).
T975_TABLE = {
    1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 6: 2.4469, 7: 2.3646,
    8: 2.3060, 9: 2.2622, 10: 2.2281, 11: 2.2010, 12: 2.1788, 13: 2.1604, 14: 2.1448,
    15: 2.1314, 16: 2.1199, 17: 2.1098, 18: 2.1009, 19: 2.0930, 20: 2.0860, 25: 2.0595,
    30: 2.0423, 40: 2.0211, 60: 2.0003, 120: 1.9799,
}  # fmt: skip


# ---------------------------------------------------------------------------------------
# t quantiles and summarize
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("df", sorted(T975_TABLE))
def test_t_quantile_975_matches_the_printed_table(df: int) -> None:
    assert t_quantile_975(df) == pytest.approx(T975_TABLE[df], abs=5e-5)


def test_t_quantile_symmetry_and_limits() -> None:
    assert t_quantile(0.5, 3) == 0.0
    assert t_quantile(0.025, 4) == pytest.approx(-t_quantile_975(4), rel=1e-12)
    assert t_quantile_975(10**7) == pytest.approx(1.959964, abs=1e-6)  # the normal quantile
    for bad in (0, 0.5, -1):
        with pytest.raises(ValueError, match="expected df >= 1"):
            t_quantile_975(bad)
    with pytest.raises(ValueError, match="expected q in"):
        t_quantile(1.0, 3)


def test_summarize_t_interval_by_hand() -> None:
    s = summarize([0.80, 0.82, 0.87])
    mean, std = (0.80 + 0.82 + 0.87) / 3, math.sqrt(0.0013)  # squared deviations sum 0.0026
    assert (s.mean, s.n) == (pytest.approx(mean), 3)
    assert s.std == pytest.approx(std, rel=1e-12)
    assert s.half_width == pytest.approx(4.3027 * std / math.sqrt(3), rel=2e-5)  # 4 decimals


# ---------------------------------------------------------------------------------------
# Difference: p-values and intervals against statsmodels
# ---------------------------------------------------------------------------------------

DIFFS = [0.012, -0.004, 0.009, 0.015, 0.003]


@pytest.mark.parametrize("c", [-0.01, 0.0, 0.005, 0.02])
def test_paired_t_p_values_match_statsmodels(c: float) -> None:
    d = paired_t(DIFFS)
    ref = DescrStatsW(np.array(DIFFS))
    assert d.p_greater(c) == pytest.approx(ref.ttest_mean(c, alternative="larger")[1], rel=1e-10)
    assert d.p_less(c) == pytest.approx(ref.ttest_mean(c, alternative="smaller")[1], rel=1e-10)


def test_paired_t_interval_matches_statsmodels() -> None:
    lo, hi = paired_t(DIFFS).interval(0.95)
    ref_lo, ref_hi = DescrStatsW(np.array(DIFFS)).tconfint_mean(alpha=0.05)
    assert (lo, hi) == (pytest.approx(ref_lo, rel=1e-10), pytest.approx(ref_hi, rel=1e-10))


@pytest.mark.parametrize(("low", "high"), [(-0.005, 0.005), (-0.02, 0.02), (-0.01, 0.03)])
def test_tost_matches_statsmodels_ttost_paired(low: float, high: float) -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(0.9, 0.01, size=6)
    b = a - rng.normal(0.004, 0.006, size=6)
    d = paired_t(a - b)
    p_ref, (_, p_low, _), (_, p_high, _) = ttost_paired(a, b, low, high)
    assert max(d.p_greater(low), d.p_less(high)) == pytest.approx(p_ref, rel=1e-10)
    assert d.p_greater(low) == pytest.approx(p_low, rel=1e-10)
    assert d.p_less(high) == pytest.approx(p_high, rel=1e-10)
    if low == -high:  # the symmetric margin equivalence_test takes
        assert equivalence_test(a - b, high).p_support == pytest.approx(p_ref, rel=1e-10)


def test_paired_t_drops_nans_and_is_untestable_below_two_seeds() -> None:
    d = paired_t([0.01, math.nan, 0.02])
    assert (d.n, d.estimate) == (2, pytest.approx(0.015))
    one = paired_t([0.01])
    assert not one.testable
    assert math.isnan(one.p_greater(0.0)) and all(map(math.isnan, one.interval()))
    decision = superiority_test([0.01])
    assert decision.verdict == INCONCLUSIVE and math.isnan(decision.ci_low)


def test_identical_differences_take_the_limit_of_the_t_test() -> None:
    d = paired_t([0.005, 0.005, 0.005])
    assert d.interval() == (0.005, 0.005)
    assert (d.p_greater(0.0), d.p_less(0.0)) == (0.0, 1.0)
    assert (d.p_greater(0.01), d.p_less(0.01)) == (1.0, 0.0)
    assert d.p_greater(0.005) == d.p_less(0.005) == 1.0


def test_combined_difference_by_hand() -> None:
    diffs, reps = [0.010, 0.014, 0.018], np.array([0.011, 0.015, 0.013, 0.017, 0.009])
    v_seed, v_test = 0.004**2 / 3, float(np.var(reps, ddof=1))  # s = 0.004 exactly
    d = combined_difference(diffs, reps)
    assert (d.method, d.n, d.estimate) == ("t+bootstrap", 3, pytest.approx(0.014))
    assert d.se == pytest.approx(math.sqrt(v_seed + v_test), rel=1e-12)
    assert d.df == pytest.approx(2 * (v_seed + v_test) ** 2 / v_seed**2, rel=1e-12)
    lo, hi = d.interval(0.95)
    half = t_quantile(0.975, d.df) * d.se
    assert (lo, hi) == (pytest.approx(0.014 - half), pytest.approx(0.014 + half))
    ref = DescrStatsW(np.array(diffs))  # with no test-set variance it is the paired t-test
    no_test = combined_difference(diffs, [0.5, 0.5, 0.5])
    assert no_test.p_greater(0.0) == pytest.approx(ref.ttest_mean(0.0, "larger")[1], rel=1e-10)
    # identical seeds: the t reference becomes the normal, with the replicates' variance
    same = combined_difference([0.01, 0.01, 0.01], reps)
    assert same.df == math.inf
    assert same.p_less(0.01 + 1.959964 * math.sqrt(v_test)) == pytest.approx(0.025, abs=1e-6)
    assert not combined_difference([0.01], reps).testable


def test_bootstrap_difference_by_hand() -> None:
    d = bootstrap_difference(0.02, [0.01, 0.03, -0.01, 0.02, 0.05, 0.0, 0.04, 0.02, 0.03], n=3)
    # 2 of 9 replicates are <= 0: p = (1 + 2) / 10; 7 are >= 0.01: p = 8 / 10.
    assert d.p_greater(0.0) == pytest.approx(0.3)
    assert d.p_less(0.01) == pytest.approx(0.8)
    lo, hi = d.interval(0.5)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(d.values, [0.25, 0.75])))
    with pytest.raises(ValueError, match="finite"):
        bootstrap_difference(0.0, [0.0, math.nan], n=3)


# ---------------------------------------------------------------------------------------
# Verdicts: each test, each outcome
# ---------------------------------------------------------------------------------------


def _around(center: float, half_width: float, n: int = 5) -> list[float]:
    """n per-seed differences whose 95 % t-interval is center ± half_width exactly."""
    base = np.linspace(-1.0, 1.0, n)
    base *= half_width / (t_quantile_975(n - 1) * base.std(ddof=1) / math.sqrt(n))
    return (center + base).tolist()


@pytest.mark.parametrize(
    ("center", "half", "margin", "verdict"),
    [
        (0.010, 0.004, 0.0, SUPPORTED),  # [0.006, 0.014]: above 0
        (0.002, 0.001, 0.005, SUPPORTED),  # [0.001, 0.003]: real, though below the margin
        (-0.010, 0.004, 0.0, REFUTED),  # [-0.014, -0.006]: the opposite effect
        (0.001, 0.003, 0.005, REFUTED),  # [-0.002, 0.004]: any effect is below the margin
        (0.001, 0.003, 0.0, INCONCLUSIVE),  # straddles 0, no margin to beat
        (0.002, 0.006, 0.005, INCONCLUSIVE),  # [-0.004, 0.008]: straddles 0 and the margin
    ],
)
def test_superiority_verdicts(center: float, half: float, margin: float, verdict: str) -> None:
    d = superiority_test(_around(center, half), margin=margin)
    assert d.verdict == verdict
    assert (d.ci_low, d.ci_high) == (pytest.approx(center - half), pytest.approx(center + half))
    assert (d.test, d.level, d.alpha, d.n, d.method) == ("superiority", LEVEL, ALPHA, 5, "t")


@pytest.mark.parametrize(
    ("center", "half", "verdict"),
    [
        (0.001, 0.003, SUPPORTED),  # [-0.002, 0.004] < 0.005: harm below the margin
        (-0.030, 0.003, SUPPORTED),  # clearly better: it does not hurt
        (0.012, 0.004, REFUTED),  # [0.008, 0.016] > 0.005: hurts by more than the margin
        (0.000, 0.010, INCONCLUSIVE),  # contains 0 AND the margin: not "does not hurt"
    ],
)
def test_noninferiority_verdicts(center: float, half: float, verdict: str) -> None:
    d = noninferiority_test(_around(center, half), margin=0.005)
    assert (d.verdict, d.test, d.margin) == (verdict, "non-inferiority", 0.005)


@pytest.mark.parametrize(
    ("center", "half", "verdict"),
    [
        (0.001, 0.003, SUPPORTED),  # inside (-0.005, 0.005)
        (-0.030, 0.003, REFUTED),  # far below -margin: different (better)
        (0.012, 0.004, REFUTED),  # above +margin
        (0.004, 0.003, INCONCLUSIVE),  # [0.001, 0.007] crosses +margin
        (0.000, 0.010, INCONCLUSIVE),
    ],
)
def test_equivalence_verdicts(center: float, half: float, verdict: str) -> None:
    assert equivalence_test(_around(center, half), margin=0.005).verdict == verdict


def test_unadjusted_decisions_can_be_read_off_the_interval() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        diffs = rng.normal(rng.normal(0, 0.01), rng.uniform(0.001, 0.01), size=rng.integers(2, 8))
        sup = superiority_test(diffs, margin=0.004)
        assert (sup.verdict == SUPPORTED) == (sup.ci_low > 0)
        assert (sup.verdict == REFUTED) == (sup.ci_low <= 0 and sup.ci_high < 0.004)
        non = noninferiority_test(diffs, margin=0.004)
        assert (non.verdict == SUPPORTED) == (non.ci_high < 0.004)
        assert (non.verdict == REFUTED) == (non.ci_low > 0.004)
        eq = equivalence_test(diffs, margin=0.004)
        assert (eq.verdict == SUPPORTED) == (eq.ci_low > -0.004 and eq.ci_high < 0.004)
        assert (eq.verdict == REFUTED) == (eq.ci_low > 0.004 or eq.ci_high < -0.004)


def test_error_rates_at_the_null_boundary() -> None:
    # 1500 sweeps of 5 seeds with d exactly at the boundary of each null: a false verdict
    # must come out at about ALPHA (binomial sd 0.004), never above it by 4 sd (a test at
    # 0.05 instead of 0.025 would fail).
    rng = np.random.default_rng(1)
    draws = rng.normal(0.0, 1.0, size=(1500, 5))
    false_sup = np.mean([superiority_test(x).verdict == SUPPORTED for x in draws])
    false_non = np.mean([noninferiority_test(x + 0.5, 0.5).verdict == SUPPORTED for x in draws])
    false_eq = np.mean([equivalence_test(x + 0.5, 0.5).verdict == SUPPORTED for x in draws])
    assert abs(false_sup - ALPHA) < 4 * 0.004
    assert abs(false_non - ALPHA) < 4 * 0.004
    assert false_eq < ALPHA + 4 * 0.004


def test_bad_margins_and_alphas_are_rejected() -> None:
    with pytest.raises(ValueError, match="margin > 0"):
        noninferiority_test(DIFFS, 0.0)
    with pytest.raises(ValueError, match="margin > 0"):
        equivalence_test(DIFFS, -0.01)
    with pytest.raises(ValueError, match="margin >= 0"):
        superiority_test(DIFFS, margin=math.nan)
    with pytest.raises(ValueError, match="alpha"):
        superiority_test(DIFFS, alpha=0.5)


def test_a_bootstrap_difference_goes_through_the_same_tests() -> None:
    rng = np.random.default_rng(2)
    diff = bootstrap_difference(0.01, rng.normal(0.01, 0.002, size=4000), n=3)
    d = superiority_test(diff)
    assert (d.verdict, d.method, d.n) == (SUPPORTED, "bootstrap", 3)
    assert d.ci_low == pytest.approx(np.quantile(diff.values, 0.025))
    assert noninferiority_test(diff, 0.005).verdict == REFUTED


# ---------------------------------------------------------------------------------------
# Holm
# ---------------------------------------------------------------------------------------


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04, 0.2 -> 4*0.01, 3*0.03, max(0.09, 2*0.04), max(0.09, 0.2)
    np.testing.assert_allclose(holm([0.04, 0.01, 0.2, 0.03]), [0.09, 0.04, 0.2, 0.09])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    assert holm([]).shape == (0,)


@pytest.mark.parametrize("m", [1, 2, 5, 20])
def test_holm_matches_statsmodels(m: int) -> None:
    rng = np.random.default_rng(m)
    p = np.concatenate([rng.uniform(0, 0.05, size=m // 2), rng.uniform(0, 1, size=m - m // 2)])
    p[rng.integers(m)] = p[0]  # a tie
    expected = multipletests(p, alpha=0.05, method="holm")[1]
    np.testing.assert_allclose(holm(p), expected, rtol=1e-12)


def test_holm_leaves_nans_out_of_the_family() -> None:
    adjusted = holm([0.01, math.nan, 0.02])
    assert math.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], [0.02, 0.02])
    assert np.isnan(holm([math.nan])).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([1.5])


def test_holm_adjust_can_turn_supported_into_inconclusive() -> None:
    # One-sided p-values 0.012 and 0.02 pass alpha = 0.025 alone; after Holm (0.024, 0.024)
    # both still pass, and adding a third comparison (p = 0.3) lifts them to 0.036 and 0.04.
    decisions = [superiority_test(_around(c, h)) for c, h in ((0.010, 0.0095), (0.010, 0.0099))]
    assert [d.verdict for d in decisions] == [SUPPORTED, SUPPORTED]
    third = superiority_test(_around(0.001, 0.01))
    adjusted = holm_adjust([*decisions, third])
    expected = holm([d.p_support for d in [*decisions, third]])
    assert [d.p_support_adj for d in adjusted] == pytest.approx(expected.tolist())
    assert all(a.p_support_adj >= a.p_support for a in adjusted)
    assert [d.verdict for d in adjusted] == [
        SUPPORTED if p < ALPHA else INCONCLUSIVE for p in expected
    ]
    assert adjusted[0].correction == "Holm over 3 comparisons"
    assert decisions[0].correction == "none"  # the input is not changed


def test_holm_adjust_refuting_family() -> None:
    # Two comparisons both refuting at p ~ 0.015: Holm doubles the smaller one.
    decisions = [superiority_test(_around(-0.01, 0.0099)), superiority_test(_around(-0.01, 0.0098))]
    adjusted = holm_adjust(decisions)
    expected = holm([d.p_refute for d in decisions])
    assert [d.p_refute_adj for d in adjusted] == pytest.approx(expected.tolist())
    assert [d.verdict for d in adjusted] == [
        REFUTED if p < ALPHA else INCONCLUSIVE for p in expected
    ]
    with pytest.raises(ValueError, match="one alpha"):
        holm_adjust([superiority_test(DIFFS), superiority_test(DIFFS, alpha=0.05)])
    assert holm_adjust([]) == []
