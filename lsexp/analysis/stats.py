"""Statistics for the report and the claims: summaries across seeds, paired tests that end in
one verdict vocabulary, and Holm's correction. The distributions come from SciPy.

Summaries. With 3-5 seeds a normal interval (±1.96·s/√n) is far too narrow; the Student-t
quantile for n-1 degrees of freedom (``scipy.stats.t``) is used instead.

Tests. A claim about label smoothing compares two settings (two α values, or one α and the
best one), paired: the same seed means the same initialisation and data order, and every
run is scored on the same test examples. The comparison is summarised by a ``Difference``
(the estimate of the paired difference d and its sampling distribution: a Student-t over
per-seed differences, bootstrap replicates from ``lsexp.analysis.bootstrap``, or both combined), and
a test turns it into a ``Decision`` whose verdict is one of

    supported / refuted / inconclusive

- ``superiority_test`` is for directional claims ("α hurts accuracy", "smoothing improves
  ECE"): supported when the claimed direction is established, refuted when the claimed
  effect is established to be smaller than a margin (the opposite direction, for margin 0).
- ``noninferiority_test`` is for "does not hurt" and "near-best" claims: supported when the
  harm is established to be below the margin, refuted when it is established to exceed it.
- ``equivalence_test`` (two one-sided tests, TOST) is for "no different" claims: supported
  when the difference is established to lie inside (-margin, +margin), refuted when it is
  established to lie outside.

Every one-sided test runs at ``ALPHA`` = 0.025, the convention of ICH E9 ("Statistical
Principles for Clinical Trials", 1998, section 5.5: one-sided tests at half the two-sided
level), so that before any multiplicity correction each decision can be read off the one
95 % two-sided interval the report shows: supported/refuted exactly when that interval lies
on one side of 0 or of the margin. ``holm_adjust`` then applies Holm's step-down correction
(Holm 1979) across the comparisons of one claim; the decisions use the adjusted p-values, the
interval stays unadjusted (as is usual; the report says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

__all__ = [
    "ALPHA",
    "BOOTSTRAP_METHOD",
    "INCONCLUSIVE",
    "INTERVAL_METHOD",
    "INTERVAL_METHODS",
    "LEVEL",
    "REFUTED",
    "SUPPORTED",
    "VERDICTS",
    "Decision",
    "Difference",
    "Summary",
    "bootstrap_difference",
    "combined_difference",
    "equivalence_test",
    "holm",
    "holm_adjust",
    "noninferiority_test",
    "paired_t",
    "summarize",
    "superiority_test",
    "t_quantile",
    "t_quantile_975",
]

FloatArray = NDArray[np.float64]

INTERVAL_METHOD = "95% Student-t interval over seeds (mean ± t(0.975, n-1)·std/√n)"
BOOTSTRAP_METHOD = (
    "95% percentile bootstrap interval of the mean over seeds (10,000 resamples of the "
    "seeds, seed 0; with few seeds it is too narrow: prefer the t-interval below n≈10)"
)
INTERVAL_METHODS = {"t": INTERVAL_METHOD, "bootstrap": BOOTSTRAP_METHOD}

SUPPORTED = "supported"
REFUTED = "refuted"
INCONCLUSIVE = "inconclusive"
VERDICTS = (SUPPORTED, REFUTED, INCONCLUSIVE)

ALPHA = 0.025
"""Level of every one-sided test (ICH E9, section 5.5): decisions match a 95 % interval."""
LEVEL = 1.0 - 2.0 * ALPHA
"""Two-sided level of the interval a ``Decision`` reports: 0.95."""


# ---------------------------------------------------------------------------------------
# Student-t quantiles and summaries across seeds
# ---------------------------------------------------------------------------------------


def t_quantile(q: float, df: float) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom (``scipy.stats.t.ppf``)."""
    if not df >= 1:  # inf is allowed: the normal quantile
        raise ValueError(f"expected df >= 1, got {df}")
    if not 0.0 < q < 1.0:
        raise ValueError(f"expected q in (0, 1), got {q}")
    return float(sps.t.ppf(q, df))


def t_quantile_975(df: int) -> float:
    """Two-sided 95 % Student-t critical value t(0.975, df), e.g. 4.3027 for df = 2."""
    return t_quantile(0.975, df)


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float  # sample std (ddof=1); NaN for n < 2
    n: int
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def summarize(values: list[float] | np.ndarray, method: str = "t") -> Summary:
    """Mean, sample std and a 95 % interval of finite values; NaN where undefined.

    method "t": Student-t interval (the default). method "bootstrap": percentile bootstrap
    of the mean (Efron & Tibshirani 1993), resampling the values with replacement.
    """
    if method not in INTERVAL_METHODS:
        raise ValueError(f"expected method in {sorted(INTERVAL_METHODS)}, got {method!r}")
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return Summary(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(v.mean())
    if n == 1:
        return Summary(mean, math.nan, 1, math.nan, math.nan)
    std = float(v.std(ddof=1))
    if method == "bootstrap":
        rng = np.random.default_rng(0)
        means = v[rng.integers(0, n, size=(10_000, n))].mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        return Summary(mean, std, n, float(low), float(high))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return Summary(mean, std, n, mean - half, mean + half)


# ---------------------------------------------------------------------------------------
# The sampling distribution of a paired difference
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Difference:
    """A paired difference d = (setting A) - (setting B): its estimate and how it varies.

    Build it with ``paired_t`` (Student-t over per-seed differences), ``bootstrap_difference``
    (replicates of the difference from a paired bootstrap) or ``combined_difference`` (the
    spread over seeds plus test-set sampling, Welch-Satterthwaite). It answers three
    questions, each with the method's own formula: the two-sided interval at a level, and
    the one-sided p-values ``p_greater(c)`` (null d <= c against d > c) and ``p_less(c)``
    (null d >= c against d < c).
    """

    estimate: float
    """The point estimate of d (the mean over seeds of the per-seed differences)."""
    n: int
    """Number of paired seeds."""
    method: str
    """"t", "bootstrap" or "t+bootstrap"."""
    values: FloatArray = field(repr=False)
    """"t", "t+bootstrap": the (n,) per-seed differences; "bootstrap": the (B,) replicates."""
    se: float = math.nan
    """"t", "t+bootstrap": the standard error of the estimate."""
    df: float = math.nan
    """"t", "t+bootstrap": degrees of freedom of its Student-t reference (may be inf)."""

    @property
    def testable(self) -> bool:
        """False where no interval exists: fewer than 2 seeds (t) or no replicates."""
        if self.method == "bootstrap":
            return self.values.size >= 1
        return self.n >= 2 and math.isfinite(self.se)

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        """Two-sided interval: estimate ± t((1+level)/2, df)·se, or the bootstrap
        percentiles (1-level)/2 and (1+level)/2 of the replicates (Efron & Tibshirani 1993,
        ch. 13)."""
        _check_level(level)
        if not self.testable:
            return math.nan, math.nan
        if self.method == "bootstrap":
            lo, hi = np.quantile(self.values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
            return float(lo), float(hi)
        half = t_quantile((1.0 + level) / 2.0, self.df) * self.se
        return self.estimate - half, self.estimate + half

    def p_greater(self, c: float = 0.0) -> float:
        """One-sided p-value of the null d <= c against d > c (NaN where not testable).

        t: the one-sample t-test, p = P(T_df >= (estimate - c) / se) (df = n - 1 for "t");
        where se is 0 (every per-seed difference the same) the statistic is ±inf and p is 0
        or 1 (the limit).
        bootstrap: (1 + #{d* <= c}) / (B + 1), the share of replicates on the null's side
        (Davison & Hinkley, "Bootstrap Methods and their Application", 1997, ch. 4), which
        rejects at level a about when the percentile interval at level 1 - 2a excludes c.
        """
        return self._p(c, greater=True)

    def p_less(self, c: float = 0.0) -> float:
        """One-sided p-value of the null d >= c against d < c; see ``p_greater``."""
        return self._p(c, greater=False)

    def _p(self, c: float, greater: bool) -> float:
        if not self.testable:
            return math.nan
        c = float(c)
        if self.method == "bootstrap":
            d = self.values
            hits = np.count_nonzero(d <= c) if greater else np.count_nonzero(d >= c)
            return (1.0 + hits) / (d.size + 1.0)
        if self.se == 0.0:  # identical per-seed differences: the t statistic is ±inf
            if self.estimate == c:
                return 1.0
            return 0.0 if (self.estimate > c) == greater else 1.0
        t = (self.estimate - c) / self.se
        # The one-sample t-test (scipy.stats.ttest_1samp's statistic), tail taken directly.
        return float(sps.t.sf(t, self.df) if greater else sps.t.cdf(t, self.df))


def paired_t(differences: ArrayLike) -> Difference:
    """``Difference`` from per-seed paired differences (A - B per seed; NaNs dropped):
    se = s / √n with the sample std s, df = n - 1."""
    d = np.asarray(differences, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    estimate = float(d.mean()) if d.size else math.nan
    se = float(np.std(d, ddof=1)) / math.sqrt(d.size) if d.size >= 2 else math.nan
    return Difference(estimate, int(d.size), "t", d, se=se, df=float(d.size - 1))


def combined_difference(differences: ArrayLike, example_replicates: ArrayLike) -> Difference:
    """Seed-to-seed spread and test-set sampling in one t reference (Welch-Satterthwaite).

    ``differences``: the (S,) per-seed differences on the whole test set; their t-interval
    sees how much the difference moves from seed to seed, with S - 1 degrees of freedom, but
    not the sampling of the test set that every seed shares. ``example_replicates``: the (B,)
    replicates of the seed-mean difference under resampling of the test examples only (all
    seeds kept: ``hierarchical_bootstrap(..., resample_seeds=False)``), which sees exactly
    that. The variances add:

        se^2 = s^2 / S + Var(example_replicates)
        df   = (S - 1) se^4 / (s^2 / S)^2        (Satterthwaite 1946; inf if s = 0)

    Satterthwaite, "An approximate distribution of estimates of variance components",
    Biometrics Bulletin 2(6), 1946; the replicate variance counts as known (df -> inf).
    The part of the test-set noise that differs from seed to seed is in both terms, so
    the interval errs wide. With 3 seeds this is the interval that keeps its coverage both
    where seeds dominate (the bootstrap over 3 seeds is then too narrow) and where the shared
    test set dominates (the t-interval over seeds is then too narrow): see
    tests/test_bootstrap.py.
    """
    d = np.asarray(differences, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    r = np.asarray(example_replicates, dtype=np.float64).ravel()
    if not np.all(np.isfinite(r)):
        raise ValueError("expected finite bootstrap replicates")
    estimate = float(d.mean()) if d.size else math.nan
    if d.size < 2 or r.size < 2:
        return Difference(estimate, int(d.size), "t+bootstrap", d)
    v_seed = float(np.var(d, ddof=1)) / d.size
    v_test = float(np.var(r, ddof=1))
    total = v_seed + v_test
    df = math.inf if v_seed == 0.0 else (d.size - 1) * total * total / (v_seed * v_seed)
    return Difference(estimate, int(d.size), "t+bootstrap", d, se=math.sqrt(total), df=df)


def bootstrap_difference(estimate: float, replicates: ArrayLike, n: int) -> Difference:
    """``Difference`` from a point estimate and bootstrap replicates of it (n paired seeds).

    The replicates must come from a paired resampling (``lsexp.analysis.bootstrap``): the same seeds
    and the same test examples for A and B in every replicate.
    """
    r = np.asarray(replicates, dtype=np.float64).ravel()
    if not np.all(np.isfinite(r)):
        raise ValueError("expected finite bootstrap replicates")
    return Difference(float(estimate), int(n), "bootstrap", r)


# ---------------------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """The outcome of one paired test: the interval, the p-values and the verdict.

    ``p_support`` is the p-value of the null whose rejection supports the claim,
    ``p_refute`` that of the null whose rejection refutes it. The verdict compares the
    *adjusted* p-values (equal to the raw ones until ``holm_adjust``) with ``alpha``:
    supported if p_support_adj < alpha, else refuted if p_refute_adj < alpha, else
    inconclusive.
    """

    test: str
    """"superiority", "non-inferiority" or "equivalence"."""
    estimate: float
    ci_low: float
    ci_high: float
    level: float
    """Two-sided level of [ci_low, ci_high] (1 - 2·alpha: 0.95 by default)."""
    margin: float
    n: int
    method: str
    """How the interval and p-values were computed: "t", "bootstrap" or "t+bootstrap"."""
    alpha: float
    p_support: float
    p_refute: float
    p_support_adj: float
    p_refute_adj: float
    verdict: str
    correction: str = "none"
    """"none", or e.g. "Holm over 3 comparisons"."""


def _verdict(p_support: float, p_refute: float, alpha: float) -> str:
    if p_support < alpha:  # NaN compares False: untestable means inconclusive
        return SUPPORTED
    if p_refute < alpha:
        return REFUTED
    return INCONCLUSIVE


def _check_level(level: float) -> None:
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"expected a level in (0, 1), got {level!r}")


def _as_difference(diff: Difference | ArrayLike) -> Difference:
    return diff if isinstance(diff, Difference) else paired_t(diff)


def _check_margin(margin: float, positive: bool) -> float:
    m = float(margin)
    if not math.isfinite(m) or m < 0.0 or (positive and m == 0.0):
        need = "> 0" if positive else ">= 0"
        raise ValueError(f"expected a finite margin {need}, got {margin!r}")
    return m


def _decide(
    test: str, d: Difference, margin: float, p_support: float, p_refute: float, alpha: float
) -> Decision:
    lo, hi = d.interval(1.0 - 2.0 * alpha)
    return Decision(
        test=test,
        estimate=d.estimate,
        ci_low=lo,
        ci_high=hi,
        level=1.0 - 2.0 * alpha,
        margin=margin,
        n=d.n,
        method=d.method,
        alpha=alpha,
        p_support=p_support,
        p_refute=p_refute,
        p_support_adj=p_support,
        p_refute_adj=p_refute,
        verdict=_verdict(p_support, p_refute, alpha),
    )


def _check_alpha(alpha: float) -> float:
    a = float(alpha)
    if not 0.0 < a < 0.5:
        raise ValueError(f"expected alpha in (0, 0.5), got {alpha!r}")
    return a


def superiority_test(
    diff: Difference | ArrayLike, margin: float = 0.0, alpha: float = ALPHA
) -> Decision:
    """Test a directional claim ("hurts", "improves"): d > 0 is the claimed effect.

    Orient d so that a positive value is what the claim says, e.g. for "α hurts accuracy"
    d = accuracy(α=0) - accuracy(α), for "α improves ECE" d = ECE(α=0) - ECE(α). Two
    one-sided tests at level ``alpha``:

    - supported: the null d <= 0 is rejected (p_support = p_greater(0)): the claimed
      direction is established; the (1 - 2·alpha) interval lies above 0. An established
      effect smaller than the margin is still supported (the claim says "hurts", not
      "hurts by at least the margin"); compare ``ci_high`` with the margin to say so.
    - refuted: not supported, and the null d >= margin is rejected (p_refute =
      p_less(margin)): any effect in the claimed direction is smaller than the margin;
      the interval lies below the margin. With margin 0 this means the opposite effect is
      established.
    - inconclusive: neither; the interval straddles 0, or reaches from below 0 to beyond
      the margin. Too few seeds (n < 2 for a t-test) is inconclusive too.

    ``diff`` is a ``Difference`` or the per-seed differences (a t-test over seeds).
    """
    d, m, a = _as_difference(diff), _check_margin(margin, positive=False), _check_alpha(alpha)
    return _decide("superiority", d, m, d.p_greater(0.0), d.p_less(m), a)


def noninferiority_test(
    diff: Difference | ArrayLike, margin: float, alpha: float = ALPHA
) -> Decision:
    """Test a "does not hurt" or "near-best" claim: d is the harm, the claim is d < margin.

    Orient d as the harm the claim denies, e.g. for "α does not hurt accuracy"
    d = accuracy(α=0) - accuracy(α), for "α=0.1 is near-best"
    d = accuracy(best α) - accuracy(α=0.1). One-sided tests at level ``alpha`` against the
    margin (the one-sided half of a TOST; Schuirmann 1987):

    - supported: the null d >= margin is rejected (p_support = p_less(margin)): the harm is
      established to be below the margin; the interval lies below it. A setting that is
      clearly *better* (d far below 0) is supported too: it does not hurt.
    - refuted: the null d <= margin is rejected (p_refute = p_greater(margin)): the harm is
      established to exceed the margin; the interval lies above it.
    - inconclusive: the interval contains the margin. An interval that contains 0 is *not*
      evidence of "does not hurt": with 3 seeds it can reach far beyond the margin.
    """
    d, m, a = _as_difference(diff), _check_margin(margin, positive=True), _check_alpha(alpha)
    return _decide("non-inferiority", d, m, d.p_less(m), d.p_greater(m), a)


def equivalence_test(diff: Difference | ArrayLike, margin: float, alpha: float = ALPHA) -> Decision:
    """Two one-sided tests (TOST; Schuirmann 1987) of |d| < margin: "no different" claims.

    Schuirmann, "A comparison of the two one-sided tests procedure and the power approach
    for assessing the equivalence of average bioavailability", J. Pharmacokinetics and
    Biopharmaceutics 15(6), 1987. For claims that deny an effect in *either* direction
    ("α=0.1 is no better and no worse than α=0 after temperature scaling"); for "does not
    hurt" use ``noninferiority_test``, which does not penalise a clear improvement.

    - supported: both nulls d <= -margin and d >= +margin are rejected (p_support =
      max(p_greater(-margin), p_less(+margin)), the intersection-union p-value of Berger &
      Hsu 1996): the difference is established to lie inside the margin; the interval lies
      within (-margin, +margin).
    - refuted: d > +margin or d < -margin is established (p_refute = min(p_greater(+margin),
      p_less(-margin))): the interval lies entirely outside the margin. The two rejection
      regions are disjoint, so a false "refuted" has probability at most 2·alpha, and about
      alpha once the margin exceeds twice the standard error.
    - inconclusive: the interval overlaps an end of the margin.
    """
    d, m, a = _as_difference(diff), _check_margin(margin, positive=True), _check_alpha(alpha)
    p_support = max(d.p_greater(-m), d.p_less(m))
    p_refute = min(d.p_greater(m), d.p_less(-m))
    return _decide("equivalence", d, m, p_support, p_refute, a)


# ---------------------------------------------------------------------------------------
# Multiple comparisons
# ---------------------------------------------------------------------------------------


def holm(p_values: ArrayLike) -> FloatArray:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order.

    Holm, "A simple sequentially rejective multiple test procedure", Scandinavian Journal of
    Statistics 6(2), 1979. With the m p-values sorted, p_(1) <= ... <= p_(m):

        adj_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))

    and rejecting every hypothesis with adj < alpha controls the familywise error rate at
    alpha under any dependence. NaN p-values (comparisons that could not be tested, which
    therefore reject nothing) stay NaN and are not counted in m.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    if np.any((p[ok] < 0.0) | (p[ok] > 1.0)):
        raise ValueError("expected p-values in [0, 1]")
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def holm_adjust(decisions: Sequence[Decision]) -> list[Decision]:
    """The decisions of one claim's comparisons, with Holm-adjusted p-values and verdicts.

    The supporting p-values are adjusted as one family and the refuting ones as another, so
    that a false "supported" for any comparison, and a false "refuted" for any, each has
    probability at most alpha. All decisions must share one alpha.
    """
    if not decisions:
        return []
    alphas = {d.alpha for d in decisions}
    if len(alphas) != 1:
        raise ValueError(f"expected decisions at one alpha, got {sorted(alphas)}")
    (alpha,) = alphas
    support = holm([d.p_support for d in decisions])
    refute = holm([d.p_refute for d in decisions])
    k = len(decisions)
    note = f"Holm over {k} comparison{'' if k == 1 else 's'}"
    return [
        replace(
            d,
            p_support_adj=float(s),
            p_refute_adj=float(r),
            verdict=_verdict(float(s), float(r), alpha),
            correction=note,
        )
        for d, s, r in zip(decisions, support, refute, strict=True)
    ]


Z975 = 1.959964  # standard normal 97.5 % quantile


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion k/n (Wilson 1927).

    With p = k/n and z = 1.96: centre (p + z²/2n) / (1 + z²/n), half-width
    z/(1 + z²/n) · √(p(1−p)/n + z²/4n²). Brown, Cai & DasGupta (2001) recommend it over
    the normal (Wald) interval, which collapses to zero width at p = 0 or 1. Here: the
    test-set resolution of one run's accuracy (n test examples).
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"expected 0 <= successes <= n and n >= 1, got {successes}/{n}")
    p, z2 = successes / n, Z975**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return centre - half, centre + half
