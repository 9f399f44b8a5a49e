"""Summary statistics across seeds: mean, std, n and a 95 % t-interval.

With 3-5 seeds a normal interval (±1.96·s/√n) is far too narrow; the Student-t quantile
for n-1 degrees of freedom is used instead. SciPy is not a dependency, so the two-sided
97.5 % quantiles are tabulated (values from any t table, e.g. NIST/SEMATECH e-Handbook
1.3.6.7.2) and interpolated in 1/df beyond the table, where the error is < 1e-3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INTERVAL_METHOD = "95% Student-t interval over seeds (mean ± t(0.975, n-1)·std/√n)"
BOOTSTRAP_METHOD = (
    "95% percentile bootstrap interval of the mean over seeds (10,000 resamples of the "
    "seeds, seed 0; with few seeds it is too narrow: prefer the t-interval below n≈10)"
)
INTERVAL_METHODS = {"t": INTERVAL_METHOD, "bootstrap": BOOTSTRAP_METHOD}

_T975 = {
    1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 6: 2.4469, 7: 2.3646,
    8: 2.3060, 9: 2.2622, 10: 2.2281, 11: 2.2010, 12: 2.1788, 13: 2.1604, 14: 2.1448,
    15: 2.1314, 16: 2.1199, 17: 2.1098, 18: 2.1009, 19: 2.0930, 20: 2.0860, 25: 2.0595,
    30: 2.0423, 40: 2.0211, 60: 2.0003, 120: 1.9799,
}  # fmt: skip


def t_quantile_975(df: int) -> float:
    """Two-sided 95 % Student-t critical value t(0.975, df)."""
    if df < 1:
        raise ValueError(f"expected df >= 1, got {df}")
    if df in _T975:
        return _T975[df]
    keys = sorted(_T975)
    if df > keys[-1]:
        lo, hi, tlo, thi = keys[-1], math.inf, _T975[keys[-1]], 1.959964
    else:
        lo = max(k for k in keys if k < df)
        hi = min(k for k in keys if k > df)
        tlo, thi = _T975[lo], _T975[hi]
    # Interpolate linearly in 1/df (t quantiles are nearly linear in it).
    x, xlo, xhi = 1 / df, 1 / lo, (0.0 if hi == math.inf else 1 / hi)
    return thi + (tlo - thi) * (x - xhi) / (xlo - xhi)


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
