"""Verdicts on folk claims about label smoothing, from the finished runs of a sweep.

`lsexp report` checks five sentences people repeat about label smoothing against the
sweep's own numbers and says, for each, "supported", "not supported" or "inconclusive",
with the decision rule in words and the numbers behind it. Everything here is a pure
function of per-run results (`RunResult`): no I/O, no training, no plotting.

Statistics (docs/architecture.md, "Conventions"): a spread across seeds is summarised by
`stats.summarize` (mean, sample std, n, 95 % Student-t interval). A comparison between two
α values is *paired by seed*, because the same seed means the same initialisation and data
order: only seeds finished at both α count, the difference is taken per seed, and the
interval is the t-interval of the mean difference. Seed-to-seed variation shared by both α
then cancels, which makes a small consistent effect visible where two separate intervals
would overlap. A claim needing an interval with fewer than 2 paired seeds, or an α the sweep
lacks, is "inconclusive", and the reason says which.

Caveats stated once here rather than in every verdict: a "best" α is picked by its mean
over the same runs it is then compared with (the winner's mean is biased upwards, which
favours "hurts" in claim 1 and "not near-best" in claim 3), claim 1 makes one comparison
per α > 0.2 with no multiplicity correction, and diverged or failed runs are left out, so
an α where many runs diverged is judged on its survivors (the claim's notes say so).

References: Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016 (α = 0.1);
Müller, Kornblith & Hinton, "When Does Label Smoothing Help?", NeurIPS 2019 (calibration,
temperature scaling, the logit-gap cap).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lsexp.analysis.metrics import optimal_logit_gap
from lsexp.analysis.stats import INTERVAL_METHOD, summarize, t_quantile_975

__all__ = [
    "CAP_TOLERANCE",
    "DEFAULT_ALPHA",
    "HIGH_ALPHA",
    "INCONCLUSIVE",
    "NEAR_BEST_MARGIN",
    "NOT_SUPPORTED",
    "SUPPORTED",
    "VERDICTS",
    "RunResult",
    "claims_markdown",
    "evaluate_claims",
]

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)

HIGH_ALPHA = 0.2  # claim 1 is about α above it; claim 4 needs the largest α to reach it
DEFAULT_ALPHA = 0.1  # the default of Szegedy et al. 2016 (claims 2 and 3)
# Claim 3: "near-best" = within half an accuracy point (0.005 as a fraction) of the best α.
NEAR_BEST_MARGIN = 0.005
# Claim 5: a measured logit gap may exceed its loss-minimising cap by 10 %: the cap is where
# training would settle, and the measured gap (top logit, not the true-class logit, over
# test examples) only approximates the quantity the cap bounds.
CAP_TOLERANCE = 0.10

_ALPHA_TOL = 1e-9  # α values from YAML are compared with 0, 0.1 and 0.2 to this tolerance

PAIRED_METHOD = (
    f"{INTERVAL_METHOD}, applied to the per-seed differences (paired by seed: only seeds "
    "finished at both α count)"
)


@dataclass(frozen=True)
class RunResult:
    """Test-set results of one finished (done) run. Diverged or failed runs are not
    passed in as RunResults; they are only counted (``n_excluded``)."""

    alpha: float
    seed: int
    accuracy: float
    ece: float
    overconfidence: float  # mean confidence - accuracy: > 0 over-confident
    logit_gap: float  # mean (top logit - mean of the other logits), as metrics.logit_gap
    ece_ts: float | None = None  # ECE after temperature scaling, None where not computed


# ---------------------------------------------------------------------------------------
# Formatting (reasons, key numbers and the markdown share these)
# ---------------------------------------------------------------------------------------

# metric -> (name in text, unit): "pct" a fraction shown in %, "pp" a signed fraction shown
# in percentage points, "raw" a plain number.
_METRICS = {
    "accuracy": ("accuracy", "pct"),
    "ece": ("ECE", "pct"),
    "ece_ts": ("ECE after temperature scaling", "pct"),
    "overconfidence": ("overconfidence (mean confidence - accuracy)", "pp"),
    "logit_gap": ("logit gap", "raw"),
}
_DASH = "—"


def _unit(metric: str) -> str:
    return _METRICS.get(metric, (metric, "raw"))[1]


def _fmt_value(x: float | None, metric: str) -> str:
    """A level (a mean, a bound) of ``metric``: 91.23%, +1.50 pp or 4.51."""
    if x is None:
        return _DASH
    unit = _unit(metric)
    if unit == "pct":
        return f"{100 * x:.2f}%"
    if unit == "pp":
        return f"{100 * x:+.2f} pp"
    return f"{x:.2f}"


def _fmt_diff(x: float | None, metric: str, signed: bool = True) -> str:
    """A difference (or a std of differences) of ``metric``: -5.02 pp or +0.31."""
    if x is None:
        return _DASH
    sign = "+" if signed else ""
    if _unit(metric) in ("pct", "pp"):
        return f"{100 * x:{sign}.2f} pp"
    return f"{x:{sign}.2f}"


def _fmt_interval(lo: float | None, hi: float | None, metric: str, diff: bool) -> str:
    """[89.89%, 90.16%], [-5.30, -4.73] pp or [7.97, 8.06]; the dash when undefined."""
    if lo is None or hi is None:
        return _DASH
    unit = _unit(metric)
    if unit == "pp" or (diff and unit == "pct"):
        return f"[{100 * lo:+.2f}, {100 * hi:+.2f}] pp"
    if unit == "pct":
        return f"[{100 * lo:.2f}%, {100 * hi:.2f}%]"
    return f"[{lo:+.2f}, {hi:+.2f}]" if diff else f"[{lo:.2f}, {hi:.2f}]"


def _a(alpha: float) -> str:
    return f"α={alpha:g}"


def _seeds_phrase(n: int, paired: bool) -> str:
    what = "paired seed" if paired else "finished seed"
    return f"n={n} {what}{'' if n == 1 else 's'}"


def _describe_paired(row: dict[str, Any]) -> str:
    """'-5.02 pp [-5.30, -4.74], n=5' for a paired row; no interval where n < 2."""
    metric, n = row["metric"], row["n_pairs"]
    if n == 0:
        return "n=0 paired seeds"
    if row["ci_low"] is None:
        return f"{_fmt_diff(row['mean_diff'], metric)}, n={n}, no interval"
    interval = _fmt_interval(row["ci_low"], row["ci_high"], metric, diff=True)
    return f"{_fmt_diff(row['mean_diff'], metric)} {interval}, n={n}"


def _describe_level(row: dict[str, Any]) -> str:
    """'+1.20 pp [+0.80, +1.60], n=5' for a per-α row; no interval where n < 2."""
    metric, n = row["metric"], row["n"]
    if n == 0:
        return "no finished seed"
    if row["ci_low"] is None:
        return f"{_fmt_value(row['mean'], metric)}, n={n}, no interval"
    interval = _fmt_interval(row["ci_low"], row["ci_high"], metric, diff=False)
    return f"{_fmt_value(row['mean'], metric)} {interval}, n={n}"


# ---------------------------------------------------------------------------------------
# The sweep, grouped by α and seed
# ---------------------------------------------------------------------------------------


def _num(x: float | None) -> float | None:
    """A JSON-safe number: a finite float, or None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _position(lo: float | None, hi: float | None, threshold: float = 0.0) -> str | None:
    """Where an interval lies relative to ``threshold``: below, above, or contains it."""
    if lo is None or hi is None:
        return None
    if hi < threshold:
        return "below 0" if threshold == 0.0 else "below"
    if lo > threshold:
        return "above 0" if threshold == 0.0 else "above"
    return "contains 0" if threshold == 0.0 else "contains"


@dataclass(frozen=True)
class _Sweep:
    by_alpha: dict[float, dict[int, RunResult]]  # sorted by α, then by seed
    n_excluded: dict[float, int]  # sorted by α; only counts > 0
    num_classes: int

    @property
    def alphas(self) -> list[float]:
        return list(self.by_alpha)

    def find(self, target: float) -> float | None:
        """The sweep's α equal to ``target`` (to _ALPHA_TOL), or None."""
        for a in self.by_alpha:
            if abs(a - target) <= _ALPHA_TOL:
                return a
        return None

    def excluded_at(self, target: float) -> int:
        return sum(k for a, k in self.n_excluded.items() if abs(a - target) <= _ALPHA_TOL)

    def missing(self, target: float) -> str:
        """Why α=target has no data: not in the sweep, or all its runs excluded."""
        k = self.excluded_at(target)
        if k:
            return f"{_a(target)} has no finished run ({k} diverged or failed)"
        return f"{_a(target)} is not in the sweep"

    def values(self, alpha: float, metric: str) -> list[float]:
        """Finite values of ``metric`` at ``alpha``, in seed order."""
        out = []
        for run in self.by_alpha[alpha].values():
            v = getattr(run, metric)
            if v is not None and math.isfinite(v):
                out.append(float(v))
        return out

    def n_seeds(self, alpha: float, metric: str) -> int:
        return len(self.values(alpha, metric))

    def best(self, alphas: Iterable[float], metric: str, highest: bool) -> float | None:
        """The α with the highest (or lowest) mean ``metric``; ties go to the smaller α."""
        scored = []
        for a in alphas:
            m = summarize(self.values(a, metric)).mean
            if math.isfinite(m):
                scored.append((-m if highest else m, a))
        return min(scored)[1] if scored else None

    def level(self, alpha: float, metric: str, role: str) -> dict[str, Any]:
        """Evidence row: mean, std and interval of ``metric`` across seeds at ``alpha``."""
        s = summarize(self.values(alpha, metric))
        return {
            "kind": "per_alpha",
            "role": role,
            "metric": metric,
            "alpha": alpha,
            "n": s.n,
            "n_excluded": self.excluded_at(alpha),
            "mean": _num(s.mean),
            "std": _num(s.std),
            "ci_low": _num(s.ci_low),
            "ci_high": _num(s.ci_high),
        }

    def paired(self, alpha: float, baseline: float, metric: str, role: str) -> dict[str, Any]:
        """Evidence row: ``metric`` at ``alpha`` minus at ``baseline``, paired by seed."""
        runs, base = self.by_alpha[alpha], self.by_alpha[baseline]
        seeds, here, there = [], [], []
        for seed, run in runs.items():  # seed order, so the sums do not depend on run order
            if seed not in base:
                continue
            x, y = getattr(run, metric), getattr(base[seed], metric)
            if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
                continue
            seeds.append(int(seed))
            here.append(float(x))
            there.append(float(y))
        s = summarize([x - y for x, y in zip(here, there, strict=True)])
        lo, hi = _num(s.ci_low), _num(s.ci_high)
        return {
            "kind": "paired",
            "role": role,
            "metric": metric,
            "alpha": alpha,
            "baseline_alpha": baseline,
            "n_pairs": s.n,
            "seeds": seeds,
            "mean_alpha": _num(summarize(here).mean),
            "mean_baseline": _num(summarize(there).mean),
            "mean_diff": _num(s.mean),
            "std_diff": _num(s.std),
            "t_crit": t_quantile_975(s.n - 1) if s.n >= 2 else None,
            "ci_low": lo,
            "ci_high": hi,
            "interval_vs_0": _position(lo, hi),
        }

    def mean(self, alpha: float, metric: str) -> float | None:
        return _num(summarize(self.values(alpha, metric)).mean)

    def exclusion_notes(self, alphas: Iterable[float] | None = None) -> list[str]:
        """One note per α (of ``alphas``, default all) whose diverged or failed runs are
        left out of the numbers."""
        wanted = None if alphas is None else list(alphas)
        notes = []
        for a, k in self.n_excluded.items():
            if wanted is not None and not any(abs(a - w) <= _ALPHA_TOL for w in wanted):
                continue
            found = self.find(a)
            n = 0 if found is None else len(self.by_alpha[found])
            notes.append(
                f"{_a(a)}: {k} run{'' if k == 1 else 's'} diverged or failed and "
                f"{'is' if k == 1 else 'are'} left out; {n} finished run{'' if n == 1 else 's'} "
                "used."
            )
        return notes


def _sweep(runs: list[RunResult], num_classes: int, n_excluded: dict[float, int] | None) -> _Sweep:
    if not _is_count(num_classes) or num_classes < 2:
        raise ValueError(f"expected an integer num_classes >= 2, got {num_classes!r}")
    grouped: dict[float, dict[int, RunResult]] = {}
    for i, run in enumerate(runs):
        if not isinstance(run, RunResult):
            raise TypeError(f"runs[{i}]: expected a RunResult, got {type(run).__name__}")
        alpha = float(run.alpha)
        if not (math.isfinite(alpha) and 0.0 <= alpha < 1.0):
            raise ValueError(f"runs[{i}].alpha: expected a number in [0, 1), got {run.alpha!r}")
        seeds = grouped.setdefault(alpha + 0.0, {})  # + 0.0 turns -0.0 into 0.0
        if run.seed in seeds:
            raise ValueError(
                f"runs[{i}]: expected one run per (alpha, seed), got a second run for "
                f"alpha={alpha:g}, seed={run.seed}"
            )
        seeds[run.seed] = run
    excluded: dict[float, int] = {}
    for alpha, k in (n_excluded or {}).items():
        if not _is_count(k) or k < 0:
            raise ValueError(f"n_excluded[{alpha!r}]: expected a count >= 0, got {k!r}")
        if k:
            excluded[float(alpha) + 0.0] = excluded.get(float(alpha) + 0.0, 0) + int(k)
    return _Sweep(
        by_alpha={a: dict(sorted(grouped[a].items())) for a in sorted(grouped)},
        n_excluded=dict(sorted(excluded.items())),
        num_classes=int(num_classes),
    )


def _is_count(x: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _claim(
    cid: str,
    text: str,
    verdict: str,
    rule: str,
    reason: str,
    evidence: list[dict[str, Any]],
    key_numbers: str,
    notes: list[str],
    **extra: Any,
) -> dict[str, Any]:
    assert verdict in VERDICTS, verdict
    return {
        "id": cid,
        "claim": text,
        "verdict": verdict,
        "rule": rule,
        "reason": reason,
        "evidence": evidence,
        "key_numbers": key_numbers,
        "notes": notes,
        **extra,
    }


# ---------------------------------------------------------------------------------------
# Claim 1: α > 0.2 hurts accuracy
# ---------------------------------------------------------------------------------------

_C1_RULE = (
    f"Baseline: among α ≤ {HIGH_ALPHA:g}, the α with the highest mean accuracy over its "
    f"finished seeds (ties: the smaller α). For each α > {HIGH_ALPHA:g}: the accuracy "
    f"difference α minus baseline, with the {PAIRED_METHOD}. Supported if the interval lies "
    f"entirely below 0 for the largest α and for at least half of the α > {HIGH_ALPHA:g}. "
    f"Not supported if every α > {HIGH_ALPHA:g} has an interval (n ≥ 2 paired seeds) and none "
    "lies entirely below 0. Otherwise inconclusive: mixed results, fewer than 2 paired seeds, "
    f"or no finished α on one side of {HIGH_ALPHA:g}. One comparison per α, no "
    "multiple-comparison correction."
)


def _claim_high_alpha_hurts(sw: _Sweep) -> dict[str, Any]:
    cid, text = "alpha_above_0.2_hurts_accuracy", f"α > {HIGH_ALPHA:g} hurts accuracy"
    notes = sw.exclusion_notes()
    low = [a for a in sw.alphas if a <= HIGH_ALPHA + _ALPHA_TOL]
    high = [a for a in sw.alphas if a > HIGH_ALPHA + _ALPHA_TOL]
    base = sw.best(low, "accuracy", highest=True)
    if base is None or not high:
        side = f"α ≤ {HIGH_ALPHA:g}" if base is None else f"α > {HIGH_ALPHA:g}"
        reason = f"Inconclusive: the sweep has no finished {side} with an accuracy to compare."
        evidence = [sw.level(a, "accuracy", "context") for a in sw.alphas]
        return _claim(cid, text, INCONCLUSIVE, _C1_RULE, reason, evidence, _DASH, notes)

    rows = [sw.paired(a, base, "accuracy", "decisive") for a in high]
    evidence = [sw.level(base, "accuracy", "baseline"), *rows]
    largest = rows[-1]
    below = [r for r in rows if r["interval_vs_0"] == "below 0"]
    undetermined = [r for r in rows if r["ci_low"] is None]
    base_mean = _fmt_value(sw.mean(base, "accuracy"), "accuracy")
    base_text = f"the best α ≤ {HIGH_ALPHA:g} ({_a(base)}, {base_mean})"
    largest_text = f"{_a(largest['alpha'])}: {_describe_paired(largest)}"
    key = (
        f"{_a(largest['alpha'])} − {_a(base)}: {_describe_paired(largest)}; "
        f"{len(below)}/{len(rows)} α > {HIGH_ALPHA:g} below 0"
    )
    if len(undetermined) == len(rows):
        n = max(r["n_pairs"] for r in rows)
        reason = (
            f"Inconclusive: only {_seeds_phrase(n, paired=True)} between each α > "
            f"{HIGH_ALPHA:g} and {base_text}, so there is no interval."
        )
        verdict = INCONCLUSIVE
    elif largest["interval_vs_0"] == "below 0" and 2 * len(below) >= len(rows):
        reason = (
            f"At {len(below)} of {len(rows)} α > {HIGH_ALPHA:g}, including the largest "
            f"({largest_text}), accuracy is lower than at {base_text}, with the 95% interval "
            "of the paired difference entirely below 0."
        )
        verdict = SUPPORTED
    elif not below and not undetermined:
        reason = (
            f"No α > {HIGH_ALPHA:g} has an accuracy drop against {base_text} with the "
            f"interval entirely below 0; at the largest, {largest_text}."
        )
        verdict = NOT_SUPPORTED
    else:
        if below:
            which = ", ".join(_a(r["alpha"]) for r in below)
            others = [_a(r["alpha"]) for r in undetermined if r is not largest]
            extra = f"; no interval at {', '.join(others)}" if others else ""
            reason = (
                f"Mixed evidence: accuracy is below {base_text} with the interval entirely "
                f"below 0 at {len(below)} of {len(rows)} α > {HIGH_ALPHA:g} ({which}), but "
                f"support needs the largest α and at least half of them ({largest_text}{extra})."
            )
        else:
            thin = ", ".join(_a(r["alpha"]) for r in undetermined)
            have = "has" if len(undetermined) == 1 else "have"
            reason = (
                f"Inconclusive: no α > {HIGH_ALPHA:g} has an accuracy drop against {base_text} "
                f"with the interval entirely below 0, but {thin} {have} fewer than 2 paired "
                f"seeds, so no interval ({largest_text})."
            )
        verdict = INCONCLUSIVE
    return _claim(cid, text, verdict, _C1_RULE, reason, evidence, key, notes)


# ---------------------------------------------------------------------------------------
# Claim 2: label smoothing improves calibration
# ---------------------------------------------------------------------------------------

_C2_RULE = (
    f"ECE difference α={DEFAULT_ALPHA:g} minus α=0, with the {PAIRED_METHOD}. Supported if "
    "the interval lies entirely below 0. Not supported if it lies entirely above 0 "
    "(smoothing made calibration worse) or contains 0 (no detectable improvement). "
    f"Inconclusive if α=0 or α={DEFAULT_ALPHA:g} has no finished run, or with fewer than 2 "
    "paired seeds. Extra evidence, not part of the verdict: the α with the lowest mean ECE "
    "against α=0 (same interval), and the ECE after temperature scaling at α=0 (Müller et "
    "al. 2019 compare smoothing with temperature scaling)."
)


def _claim_improves_calibration(sw: _Sweep) -> dict[str, Any]:
    cid, text = "smoothing_improves_calibration", "Label smoothing improves calibration"
    a0, a1 = sw.find(0.0), sw.find(DEFAULT_ALPHA)
    used = [0.0, DEFAULT_ALPHA]
    if a0 is None or a1 is None:
        missing = [sw.missing(t) for t, a in ((0.0, a0), (DEFAULT_ALPHA, a1)) if a is None]
        reason = f"Inconclusive: {' and '.join(missing)}; the claim compares α=0.1 with α=0."
        evidence = [sw.level(a, "ece", "context") for a in sw.alphas]
        return _claim(
            cid, text, INCONCLUSIVE, _C2_RULE, reason, evidence, _DASH, sw.exclusion_notes(used)
        )

    row = sw.paired(a1, a0, "ece", "decisive")
    evidence = [row]
    notes = []
    lowest = sw.best(sw.alphas, "ece", highest=False)
    if lowest is not None and lowest not in (a0, a1):
        extra = sw.paired(lowest, a0, "ece", "extra")
        evidence.append(extra)
        used.append(lowest)
        notes.append(
            f"Lowest mean ECE at {_a(lowest)}; against α=0: {_describe_paired(extra)} "
            "(extra evidence, not part of the verdict)."
        )
    elif lowest is not None:
        notes.append(f"Lowest mean ECE of the sweep at {_a(lowest)}.")
    for a in (a0, a1):
        if sw.n_seeds(a, "ece_ts"):
            evidence.append(sw.level(a, "ece_ts", "context"))
    if sw.n_seeds(a0, "ece_ts"):
        ts = sw.level(a0, "ece_ts", "context")
        notes.append(
            f"Context, not part of the verdict: α=0 after temperature scaling has ECE "
            f"{_describe_level(ts)}, against {_fmt_value(sw.mean(a1, 'ece'), 'ece')} at "
            f"α={DEFAULT_ALPHA:g} without it."
        )
    notes += sw.exclusion_notes(used)

    key = f"ECE α={DEFAULT_ALPHA:g} − α=0: {_describe_paired(row)}"
    described = f"paired ECE difference α={DEFAULT_ALPHA:g} − α=0 of {_describe_paired(row)}"
    if row["ci_low"] is None:
        n = row["n_pairs"]
        reason = f"Inconclusive: only {_seeds_phrase(n, paired=True)}, so no interval ({key})."
        verdict = INCONCLUSIVE
    elif row["interval_vs_0"] == "below 0":
        reason = f"Smoothing lowered the ECE: {described}, interval entirely below 0."
        verdict = SUPPORTED
    elif row["interval_vs_0"] == "above 0":
        reason = f"Worse: smoothing raised the ECE, {described}, interval entirely above 0."
        verdict = NOT_SUPPORTED
    else:
        reason = f"No detectable improvement: {described}, interval contains 0."
        verdict = NOT_SUPPORTED
    return _claim(cid, text, verdict, _C2_RULE, reason, evidence, key, notes)


# ---------------------------------------------------------------------------------------
# Claim 3: α = 0.1 is a near-best default
# ---------------------------------------------------------------------------------------

_C3_RULE = (
    f"Best α: the α with the highest mean accuracy over its finished seeds (ties: the "
    f"smaller α). If that is α={DEFAULT_ALPHA:g} itself (with at least 2 finished seeds), "
    f"supported. Otherwise the accuracy difference α={DEFAULT_ALPHA:g} minus best α, with the "
    f"{PAIRED_METHOD}: supported if the interval's lower bound is above "
    f"-{100 * NEAR_BEST_MARGIN:g} pp (within {100 * NEAR_BEST_MARGIN:g} accuracy points of "
    f"the best), not supported if its upper bound is below -{100 * NEAR_BEST_MARGIN:g} pp, "
    f"inconclusive in between. Inconclusive also if α={DEFAULT_ALPHA:g} has no finished run "
    "or no other α to compare with, or with fewer than 2 seeds."
)


def _claim_default_near_best(sw: _Sweep) -> dict[str, Any]:
    cid, text = "alpha_0.1_near_best_default", f"α = {DEFAULT_ALPHA:g} is a near-best default"
    notes = sw.exclusion_notes()
    a1 = sw.find(DEFAULT_ALPHA)
    levels = [sw.level(a, "accuracy", "context") for a in sw.alphas]
    if a1 is None:
        reason = f"Inconclusive: {sw.missing(DEFAULT_ALPHA)}."
        return _claim(cid, text, INCONCLUSIVE, _C3_RULE, reason, levels, _DASH, notes)
    others = [a for a in sw.alphas if a != a1 and sw.n_seeds(a, "accuracy")]
    n1 = sw.n_seeds(a1, "accuracy")
    if not others:
        reason = f"Inconclusive: the sweep has no finished α other than {DEFAULT_ALPHA:g}."
        return _claim(cid, text, INCONCLUSIVE, _C3_RULE, reason, levels, _DASH, notes)
    if n1 < 2:
        reason = (
            f"Inconclusive: only {_seeds_phrase(n1, paired=False)} at α={DEFAULT_ALPHA:g}, "
            "so no interval."
        )
        return _claim(cid, text, INCONCLUSIVE, _C3_RULE, reason, levels, _DASH, notes)

    best = sw.best(sw.alphas, "accuracy", highest=True)
    if best == a1:
        runner_up = sw.best(others, "accuracy", highest=True)
        assert runner_up is not None
        row = sw.paired(a1, runner_up, "accuracy", "context")
        key = f"α={DEFAULT_ALPHA:g} is the best α ({_describe_level(sw.level(a1, 'accuracy', ''))})"
        reason = (
            f"α={DEFAULT_ALPHA:g} has the highest mean accuracy of the sweep "
            f"({_fmt_value(sw.mean(a1, 'accuracy'), 'accuracy')}, n={n1}); against the "
            f"runner-up {_a(runner_up)} the paired difference is {_describe_paired(row)}."
        )
        return _claim(cid, text, SUPPORTED, _C3_RULE, reason, [row, *levels], key, notes)

    assert best is not None
    row = sw.paired(a1, best, "accuracy", "decisive")
    row["margin"] = -NEAR_BEST_MARGIN
    row["interval_vs_margin"] = _position(row["ci_low"], row["ci_high"], -NEAR_BEST_MARGIN)
    evidence = [row, *levels]
    key = f"α={DEFAULT_ALPHA:g} − best {_a(best)}: {_describe_paired(row)}"
    described = (
        f"the paired accuracy difference α={DEFAULT_ALPHA:g} − best {_a(best)} "
        f"({_fmt_value(sw.mean(best, 'accuracy'), 'accuracy')}) is {_describe_paired(row)}"
    )
    margin = f"-{100 * NEAR_BEST_MARGIN:g} pp"
    if row["ci_low"] is None:
        reason = (
            f"Inconclusive: only {_seeds_phrase(row['n_pairs'], paired=True)} between "
            f"α={DEFAULT_ALPHA:g} and the best {_a(best)}, so no interval."
        )
        verdict = INCONCLUSIVE
    elif row["interval_vs_margin"] == "above":
        reason = f"Near-best: {described}, lower bound above {margin}."
        verdict = SUPPORTED
    elif row["interval_vs_margin"] == "below":
        reason = f"Not near-best: {described}, upper bound below {margin}."
        verdict = NOT_SUPPORTED
    else:
        reason = f"Inconclusive: {described}, and the interval contains {margin}."
        verdict = INCONCLUSIVE
    return _claim(cid, text, verdict, _C3_RULE, reason, evidence, key, notes)


# ---------------------------------------------------------------------------------------
# Claim 4: large α makes the model under-confident
# ---------------------------------------------------------------------------------------

_C4_RULE = (
    "For each α: overconfidence = mean confidence - accuracy (< 0: under-confident), mean "
    f"across seeds with the {INTERVAL_METHOD}. The largest finished α of the sweep decides; "
    f"it must be ≥ {HIGH_ALPHA:g}. Supported if its interval lies entirely below 0, not "
    "supported if entirely at or above 0, inconclusive if it contains 0, with fewer than 2 "
    f"seeds, or if the largest α is below {HIGH_ALPHA:g}. Crossover (reported, not part of "
    "the verdict): the smallest α whose interval lies entirely below 0."
)


def _claim_large_alpha_underconfident(sw: _Sweep) -> dict[str, Any]:
    cid, text = "large_alpha_underconfident", "Large α makes the model under-confident"
    notes = sw.exclusion_notes()
    alphas = [a for a in sw.alphas if sw.n_seeds(a, "overconfidence")]
    rows = [sw.level(a, "overconfidence", "context") for a in alphas]
    for r in rows:
        r["interval_vs_0"] = _position(r["ci_low"], r["ci_high"])
    crossover = next((r["alpha"] for r in rows if r["interval_vs_0"] == "below 0"), None)
    for r in rows:
        r["crossover"] = r["alpha"] == crossover
    extra = {"crossover_alpha": crossover}
    if crossover is not None:
        notes.insert(0, f"Crossover: {_a(crossover)} is the smallest α with its interval below 0.")
    if not rows:
        reason = "Inconclusive: the sweep has no finished run."
        return _claim(cid, text, INCONCLUSIVE, _C4_RULE, reason, rows, _DASH, notes, **extra)

    top = rows[-1]
    top["role"] = "decisive"
    key = f"{_a(top['alpha'])}: {_describe_level(top)}" + (
        f"; crossover {_a(crossover)}" if crossover is not None else "; no crossover"
    )
    described = (
        f"at the largest {_a(top['alpha'])} mean confidence - accuracy is {_describe_level(top)}"
    )
    if top["alpha"] < HIGH_ALPHA - _ALPHA_TOL:
        reason = (
            f"Inconclusive: the largest finished α of the sweep is {top['alpha']:g}, below "
            f"{HIGH_ALPHA:g}."
        )
        verdict = INCONCLUSIVE
    elif top["ci_low"] is None:
        reason = (
            f"Inconclusive: only {_seeds_phrase(top['n'], paired=False)} at the largest "
            f"{_a(top['alpha'])}, so no interval."
        )
        verdict = INCONCLUSIVE
    elif top["interval_vs_0"] == "below 0":
        reason = f"Under-confident: {described}, interval entirely below 0."
        verdict = SUPPORTED
    elif top["ci_low"] >= 0.0:
        reason = f"Not under-confident: {described}, interval entirely at or above 0."
        verdict = NOT_SUPPORTED
    else:
        reason = f"Inconclusive: {described}, interval contains 0."
        verdict = INCONCLUSIVE
    return _claim(cid, text, verdict, _C4_RULE, reason, rows, key, notes, **extra)


# ---------------------------------------------------------------------------------------
# Claim 5: label smoothing caps logit growth
# ---------------------------------------------------------------------------------------

_C5_RULE = (
    "For each α > 0: the mean logit gap (top logit minus the mean of the others) across "
    f"seeds, with the {INTERVAL_METHOD}, against the cap log(K(1-α)/α + 1), the gap that "
    "minimises the smoothed loss (Müller et al. 2019). Supported if every α > 0 has a mean "
    f"gap ≤ cap × {1 + CAP_TOLERANCE:g} ({100 * CAP_TOLERANCE:g}% tolerance) and the mean gap "
    "at α=0 exceeds the cap of the smallest α > 0. Not supported if some α > 0 with at least "
    f"2 seeds has a mean gap above cap × {1 + CAP_TOLERANCE:g}. Inconclusive otherwise: no "
    "α=0 or no α > 0, fewer than 2 seeds at some α, or an α=0 gap within the smallest cap "
    "(the caps did not bind). A point-estimate rule; the intervals are shown for context."
)


def _claim_caps_logit_gap(sw: _Sweep) -> dict[str, Any]:
    cid, text = "smoothing_caps_logit_gap", "Label smoothing caps logit growth"
    notes = sw.exclusion_notes()
    a0 = sw.find(0.0)
    positive = [a for a in sw.alphas if a > _ALPHA_TOL]
    rows = [sw.level(a, "logit_gap", "decisive") for a in sw.alphas]
    for r in rows:
        if r["alpha"] > _ALPHA_TOL:
            cap = optimal_logit_gap(r["alpha"], sw.num_classes)
            r["cap"] = cap
            r["cap_limit"] = cap * (1 + CAP_TOLERANCE)
            r["ratio_to_cap"] = None if r["mean"] is None else r["mean"] / cap
        else:
            r["cap"] = r["cap_limit"] = r["ratio_to_cap"] = None  # infinite for α=0
    extra = {"num_classes": sw.num_classes}
    if a0 is None or not positive:
        missing = sw.missing(0.0) if a0 is None else "the sweep has no α > 0"
        reason = f"Inconclusive: {missing}; the claim compares α > 0 with α=0."
        return _claim(cid, text, INCONCLUSIVE, _C5_RULE, reason, rows, _DASH, notes, **extra)

    zero = rows[0]
    pos_rows = rows[1:]
    smallest = pos_rows[0]
    over = [r for r in pos_rows if r["n"] >= 2 and r["mean"] > r["cap_limit"]]
    thin = [r for r in rows if r["n"] < 2]
    worst = max(
        (r for r in pos_rows if r["ratio_to_cap"] is not None),
        key=lambda r: (r["ratio_to_cap"], -r["alpha"]),
        default=None,
    )
    worst_text = (
        _DASH
        if worst is None
        else f"{_a(worst['alpha'])}: {worst['mean']:.2f} vs cap {worst['cap']:.2f} "
        f"(×{worst['ratio_to_cap']:.2f})"
    )
    key = f"α=0 gap {_describe_level(zero)}; largest gap/cap {worst_text}"
    zero_text = (
        f"α=0 reaches {_describe_level(zero)} against the smallest-α cap "
        f"{smallest['cap']:.2f} ({_a(smallest['alpha'])})"
    )
    if over:
        r = max(over, key=lambda r: (r["ratio_to_cap"], -r["alpha"]))
        reason = (
            f"{len(over)} α > 0 exceed their cap by more than {100 * CAP_TOLERANCE:g}%; the "
            f"most, {_a(r['alpha'])}, has a mean gap {_describe_level(r)}, "
            f"×{r['ratio_to_cap']:.2f} its cap {r['cap']:.2f}."
        )
        verdict = NOT_SUPPORTED
    elif thin:
        n = min(r["n"] for r in thin)
        where = ", ".join(_a(r["alpha"]) for r in thin)
        reason = f"Inconclusive: only n={n} finished seed{'' if n == 1 else 's'} at {where}."
        verdict = INCONCLUSIVE
    elif zero["mean"] > smallest["cap"]:
        reason = (
            f"Every α > 0 stays within {100 * CAP_TOLERANCE:g}% of its cap (largest ratio "
            f"{worst_text}), while {zero_text}."
        )
        verdict = SUPPORTED
    else:
        reason = (
            f"Inconclusive: every α > 0 stays within its cap, but {zero_text}, so the caps "
            "did not bind (training too short to tell)."
        )
        verdict = INCONCLUSIVE
    return _claim(cid, text, verdict, _C5_RULE, reason, rows, key, notes, **extra)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------

_CLAIMS: tuple[Callable[[_Sweep], dict[str, Any]], ...] = (
    _claim_high_alpha_hurts,
    _claim_improves_calibration,
    _claim_default_near_best,
    _claim_large_alpha_underconfident,
    _claim_caps_logit_gap,
)


def evaluate_claims(
    runs: list[RunResult],
    num_classes: int,
    n_excluded: dict[float, int] | None = None,
) -> list[dict[str, Any]]:
    """Verdicts on five folk claims about label smoothing, from the finished runs.

    ``runs``: one RunResult per finished (done) run, at most one per (alpha, seed), in any
    order. ``num_classes``: K, for the logit-gap cap. ``n_excluded``: diverged or failed runs
    per α, which are only counted (named in the claims' notes).

    Returns one JSON-serialisable dict per claim (floats finite or None) with keys ``id``,
    ``claim``, ``verdict`` (one of VERDICTS), ``rule``, ``reason``, ``evidence`` (rows of
    numbers: ``kind`` "paired" for a seed-paired difference, "per_alpha" for one α's spread
    across seeds; ``role`` says whether a row decides the verdict), ``key_numbers`` (a
    short string for a summary table) and ``notes``; see the module docstring for the
    statistics and each claim's ``rule`` for its decision rule. Deterministic, and
    independent of the order of ``runs``.
    """
    sw = _sweep(runs, num_classes, n_excluded)
    return [make(sw) for make in _CLAIMS]


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------

# (key, header, how to format): "alpha", "int", "text", "value" or "diff" (in the row's
# metric), "sdiff" (a std of differences), "interval" / "dinterval" (ci_low, ci_high), "raw"
_PAIRED_COLUMNS = [
    ("role", "role", "text"),
    ("alpha", "α", "alpha"),
    ("baseline_alpha", "vs α", "alpha"),
    ("metric", "metric", "text"),
    ("n_pairs", "n pairs", "int"),
    ("mean_alpha", "mean at α", "value"),
    ("mean_baseline", "mean at vs α", "value"),
    ("mean_diff", "paired mean diff.", "diff"),
    ("std_diff", "std of diff.", "sdiff"),
    ("ci_low", "95% interval", "dinterval"),
    ("interval_vs_0", "interval vs 0", "text"),
]
_LEVEL_COLUMNS = [
    ("role", "role", "text"),
    ("alpha", "α", "alpha"),
    ("metric", "metric", "text"),
    ("n", "n", "int"),
    ("n_excluded", "excluded", "int"),
    ("mean", "mean", "value"),
    ("std", "std", "sdiff"),
    ("ci_low", "95% interval", "interval"),
    ("interval_vs_0", "interval vs 0", "text"),
    ("crossover", "crossover", "bool"),
    ("cap", "cap", "raw"),
    ("cap_limit", f"cap × {1 + CAP_TOLERANCE:g}", "raw"),
    ("ratio_to_cap", "gap / cap", "raw"),
]


def _cell(row: dict[str, Any], key: str, how: str) -> str:
    metric = str(row.get("metric", ""))
    value = row.get(key)
    if how in ("interval", "dinterval"):
        return _fmt_interval(row.get("ci_low"), row.get("ci_high"), metric, how == "dinterval")
    if value is None:
        return _DASH
    if how == "alpha":
        return f"{value:g}"
    if how == "value":
        return _fmt_value(value, metric)
    if how == "diff":
        return _fmt_diff(value, metric)
    if how == "sdiff":
        return _fmt_diff(value, metric, signed=False)
    if how == "raw":
        return f"{value:.2f}"
    if how == "bool":
        return "yes" if value else "no"
    if how == "text" and key == "metric":
        return _METRICS.get(metric, (metric, ""))[0]
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> list[str]:
    shown = [c for c in columns if any(c[0] in r for r in rows)]
    lines = [
        "| " + " | ".join(header for _, header, _ in shown) + " |",
        "|" + "---|" * len(shown),
    ]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r, key, how) for key, _, how in shown) + " |")
    return lines


def claims_markdown(claims: list[dict[str, Any]]) -> str:
    """The claims as markdown: a summary table, then one section per claim with its rule,
    reason, notes and evidence tables. Accuracy, ECE and overconfidence in %, differences in
    percentage points (pp), 2 decimals."""
    lines = [
        "# Claims",
        "",
        "Verdicts on claims often made about label smoothing, from the finished runs of this "
        "sweep. Comparisons between α values are paired by seed (only seeds finished at both "
        f"α); intervals: {INTERVAL_METHOD}. Accuracy, ECE and overconfidence in %, "
        "differences in percentage points (pp).",
        "",
        "| claim | verdict | key numbers |",
        "|---|---|---|",
    ]
    for c in claims:
        lines.append(f"| {c['claim']} | **{c['verdict']}** | {c.get('key_numbers', _DASH)} |")
    for i, c in enumerate(claims, 1):
        lines += [
            "",
            f"## {i}. {c['claim']}",
            "",
            f"**Verdict: {c['verdict']}.** {c['reason']}",
            "",
            f"*Rule.* {c['rule']}",
        ]
        if c.get("notes"):
            lines += [""] + [f"- {note}" for note in c["notes"]]
        evidence = c.get("evidence") or []
        for kind, columns in (("paired", _PAIRED_COLUMNS), ("per_alpha", _LEVEL_COLUMNS)):
            rows = [r for r in evidence if r.get("kind") == kind]
            if rows:
                lines += ["", *_table(rows, columns)]
    return "\n".join(lines) + "\n"
