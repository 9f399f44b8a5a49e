"""Verdicts on folk claims about label smoothing, from the finished runs of a sweep.

`lsexp report` checks sentences people repeat about label smoothing against the sweep's
own runs and says, for each, **supported**, **refuted** or **inconclusive**, with the test
that decided it. Everything here is a pure function of per-run results (``ClaimRun``: the
saved test logits, the per-run numbers of runs.csv): no I/O, no training, no plotting.

One vocabulary, three kinds of test (``lsexp.analysis.stats``), each at one-sided level
0.025, so that a decision agrees with a 95 % interval:

- a claim that something *hurts* or *improves* is a **superiority test** of a paired
  difference d oriented so that d > 0 is the claimed effect: supported when d > 0 is
  established, refuted when d < margin is established (with margin 0: the opposite effect
  is established), inconclusive otherwise;
- a claim that something is *near-best* or *does not hurt* is a **non-inferiority test**
  (the one-sided half of two one-sided tests, TOST) of the harm d at a stated margin:
  supported when d < margin is established, refuted when d > margin is established. A
  clearly better setting is not penalised, which the two-sided equivalence test would do;
- within a claim, the p-values of its comparisons are adjusted by **Holm's** step-down
  correction (family-wise error 0.025 per direction).

Intervals (``ClaimSettings.interval``):

- ``combined`` (default): the paired difference per seed on the whole test set, its
  Student-t spread over seeds, plus the variance of the seed-mean difference under a
  paired bootstrap of the test examples (the same resampled examples for both α and every
  seed: ``hierarchical_bootstrap(..., resample_seeds=False)``), added with
  Welch-Satterthwaite degrees of freedom (``stats.combined_difference``). It sees both
  sources of noise: another seed trains another network, another test set holds other
  images. With 3 seeds it kept 94-95 % coverage both where seeds dominate and where the
  shared test set dominates (tests/test_bootstrap.py), where the percentile bootstrap over
  seeds and examples fell to 0.79 and the t over seeds alone to 0.
- ``bootstrap``: the hierarchical percentile bootstrap (seeds, then the same test examples
  for both α), as ``hierarchical_bootstrap``.
- ``t``: the Student-t interval of the per-seed differences: seeds only, the test set
  treated as fixed.

Every bootstrap is seeded (``ClaimSettings.seed``): the same folder gives the same verdicts.
Comparisons are paired by seed (only seeds finished at both α count).

Any "best α" is chosen on **validation** accuracy, never on the test set it is then
judged on. ECE differences smaller than the ECE noise floor (the expected plug-in ECE of a
perfectly calibrated model with the same confidences, ``metrics.ece_noise_floor``) are
"not resolvable": such a comparison is inconclusive, whatever its interval.

References: Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016 (α = 0.1);
Müller, Kornblith & Hinton, "When Does Label Smoothing Help?", NeurIPS 2019 (calibration,
temperature scaling, the logit-gap cap); Holm, "A simple sequentially rejective multiple
test procedure", Scand. J. Statistics 6, 1979; Schuirmann 1987 (TOST); Xia et al.,
"Towards Understanding Why Label Smoothing Degrades Selective Classification and How to
Fix It", ICLR 2025 (claim 11).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lsexp.analysis import bootstrap as bs
from lsexp.analysis.metrics import optimal_logit_gap, softmax
from lsexp.analysis.selective import selective_metrics
from lsexp.analysis.stats import (
    INCONCLUSIVE,
    REFUTED,
    SUPPORTED,
    VERDICTS,
    Decision,
    Difference,
    bootstrap_difference,
    combined_difference,
    holm_adjust,
    noninferiority_test,
    paired_t,
    superiority_test,
)

__all__ = [
    "CAP_TOLERANCE",
    "DEFAULT_ALPHA",
    "HIGH_ALPHA",
    "INCONCLUSIVE",
    "INTERVALS",
    "REFUTED",
    "SUPPORTED",
    "VERDICTS",
    "ClaimRun",
    "ClaimSettings",
    "claims_markdown",
    "evaluate_claims",
]

HIGH_ALPHA = 0.2  # claim 1 is about α above it; claim 4 needs the largest α to reach it
DEFAULT_ALPHA = 0.1  # the default of Szegedy et al. 2016 (claims 2 and 3)
# Claim 5: the true-class gap on training data may exceed its loss-minimising cap by 10 %
# (the cap is where the smoothed loss of one example is minimal; weight decay and finite
# training keep the mean below it, and the test of "caps" is that it does not run far past).
CAP_TOLERANCE = 0.10
_TOL = 1e-9  # α values from YAML are compared with 0, 0.1 and 0.2 to this tolerance

INTERVALS = {
    "combined": "Student-t over seeds of the paired per-seed differences plus the variance "
    "of a paired bootstrap of the test examples (Welch-Satterthwaite df)",
    "bootstrap": "hierarchical percentile bootstrap (seeds, then the same test examples for "
    "both α)",
    "t": "Student-t over seeds of the paired per-seed differences (test set fixed)",
}


@dataclass(frozen=True)
class ClaimSettings:
    """How the verdicts are computed: the margin of the accuracy claims (a fraction: 0.005
    is 0.5 percentage points), the interval method (``INTERVALS``), bootstrap size and
    seed."""

    margin: float = 0.005
    interval: str = "combined"
    n_boot: int = 1000
    seed: int = 0
    n_bins: int = 15

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise ValueError(f"expected interval in {list(INTERVALS)}, got {self.interval!r}")
        if not (math.isfinite(self.margin) and 0.0 < self.margin < 1.0):
            raise ValueError(f"expected a margin in (0, 1) as a fraction, got {self.margin!r}")


@dataclass(frozen=True, eq=False)
class ClaimRun:
    """One finished (done) run: its test logits and labels, the temperature-scaled test
    logits (None without a validation split), its runs.csv numbers (``values``: accuracy,
    val_accuracy, ece, ece_floor, ece_ts, ece_ts_floor, nll, brier, overconfidence,
    logit_gap, the estimator panel ``panel_*`` / ``panel_ts_*`` ...), and the true-class
    logit gap of training examples at the last epoch (None where the run did not record
    it). Diverged or failed runs are not ClaimRuns; they are only counted."""

    alpha: float
    seed: int
    logits: np.ndarray
    labels: np.ndarray
    values: Mapping[str, float]
    logits_ts: np.ndarray | None = None
    train_gap: np.ndarray | None = None

    def value(self, key: str) -> float:
        v = self.values.get(key)
        return math.nan if v is None else float(v)


# ---------------------------------------------------------------------------------------
# Statistics a claim can compare, in the bootstrap's fast forms
# ---------------------------------------------------------------------------------------


def _underconfidence_terms(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = softmax(z)
    return (p.argmax(axis=1) == y).astype(np.float64) - p.max(axis=1)


# metric -> (which logits, Statistic factory). "underconfidence" = accuracy - mean
# confidence (the negative of runs.csv's overconfidence).
def _statistics(n_bins: int) -> dict[str, tuple[str, bs.Statistic]]:
    return {
        "accuracy": ("raw", bs.ACCURACY),
        "nll": ("raw", bs.NLL),
        "brier": ("raw", bs.BRIER),
        "ece": ("raw", bs.ece_statistic(n_bins, "ece")),
        "underconfidence": (
            "raw",
            bs.Statistic("underconfidence", "mean", prepare=_underconfidence_terms),
        ),
        "ece_ts": ("ts", bs.ece_statistic(n_bins, "ece_ts")),
        "nll_ts": ("ts", bs.NLL.renamed("nll_ts")),
        # Selective classification (claim 11): each run's AURC under resampling is the
        # costliest statistic here (selective.WeightedAURC); _Sweep._grid scores it once.
        "sel_msp_aurc": ("sel", bs.aurc_statistic("msp", "sel_msp_aurc")),
        "sel_pnorm_aurc": ("sel", bs.aurc_statistic("pnorm", "sel_pnorm_aurc")),
    }


# metric -> (name in text, unit): "pct" a fraction shown in %, differences in pp; "raw".
_NAMES = {
    "accuracy": ("accuracy", "pct"),
    "val_accuracy": ("validation accuracy", "pct"),
    "nll": ("NLL", "raw"),
    "brier": ("Brier score", "raw"),
    "ece": ("ECE", "pct"),
    "ece_ts": ("ECE after temperature scaling", "pct"),
    "nll_ts": ("NLL after temperature scaling", "raw"),
    "underconfidence": ("accuracy − mean confidence", "pct"),
    "train_gap": ("true-class logit gap on training data", "raw"),
    "sel_msp_aurc": ("AURC (max softmax)", "pct"),
    "sel_pnorm_aurc": ("AURC (p-norm logits)", "pct"),
    "class_separation": ("class separation R²", "raw"),
}
_DASH = "—"


def _name(metric: str) -> str:
    return _NAMES.get(metric, (metric, "raw"))[0]


def _fmt(x: float | None, metric: str, diff: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return _DASH
    if _NAMES.get(metric, ("", "raw"))[1] == "pct":
        return f"{100 * x:+.2f} pp" if diff else f"{100 * x:.2f}%"
    return f"{x:+.4f}" if diff else f"{x:.4f}"


def _fmt_ci(lo: float | None, hi: float | None, metric: str) -> str:
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return _DASH
    if _NAMES.get(metric, ("", "raw"))[1] == "pct":
        return f"[{100 * lo:+.2f}, {100 * hi:+.2f}] pp"
    return f"[{lo:+.4f}, {hi:+.4f}]"


def _fmt_p(p: float | None) -> str:
    if p is None:
        return _DASH
    return "<1e-6" if p < 1e-6 else f"{p:.2g}"


def _a(alpha: float) -> str:
    return f"α={alpha:g}"


def _num(x: float | None) -> float | None:
    """A JSON-safe number: a finite float, or None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _alphas_text(alphas: Sequence[float]) -> str:
    return "{" + ", ".join(f"{a:g}" for a in alphas) + "}" if alphas else "none"


# ---------------------------------------------------------------------------------------
# The sweep: runs by α and seed, and paired differences with the chosen interval
# ---------------------------------------------------------------------------------------


class _Sweep:
    def __init__(
        self,
        runs: Sequence[ClaimRun],
        num_classes: int,
        n_excluded: Mapping[float, int],
        settings: ClaimSettings,
    ) -> None:
        by_alpha: dict[float, dict[int, ClaimRun]] = {}
        for r in runs:
            seeds = by_alpha.setdefault(float(r.alpha), {})
            if r.seed in seeds:
                raise ValueError(f"two runs at alpha={r.alpha:g}, seed={r.seed}")
            seeds[r.seed] = r
        self.by_alpha = {a: dict(sorted(by_alpha[a].items())) for a in sorted(by_alpha)}
        self.alphas = list(self.by_alpha)
        self.num_classes = num_classes
        self.n_excluded = {float(a): int(n) for a, n in n_excluded.items() if n}
        self.settings = settings
        self.stats = _statistics(settings.n_bins)
        self.notes: list[str] = []
        self._boot: dict[tuple[str, tuple[float, ...], tuple[int, ...]], dict] = {}

    def find(self, alpha: float) -> float | None:
        return next((a for a in self.alphas if abs(a - alpha) < _TOL), None)

    def mean(self, alpha: float, key: str) -> float:
        vals = [r.value(key) for r in self.by_alpha[alpha].values()]
        vals = [v for v in vals if math.isfinite(v)]
        return float(np.mean(vals)) if vals else math.nan

    def common_seeds(self, *alphas: float) -> list[int]:
        seeds = set(self.by_alpha[alphas[0]])
        for a in alphas[1:]:
            seeds &= set(self.by_alpha[a])
        return sorted(seeds)

    def _bootstrap(
        self, source: str, alphas: tuple[float, ...], seeds: tuple[int, ...], resample_seeds: bool
    ) -> dict[str, bs.BootstrapResult]:
        key = (f"{source}:{resample_seeds}", alphas, seeds)
        if key not in self._boot:
            stats = [st for src, st in self.stats.values() if src == source]
            attr = "logits_ts" if source == "ts" else "logits"
            logits = [[getattr(self.by_alpha[a][s], attr) for s in seeds] for a in alphas]
            labels = self.by_alpha[alphas[0]][seeds[0]].labels
            self._boot[key] = bs.hierarchical_bootstrap(
                logits,
                labels,
                stats,
                methods=alphas,
                seeds=seeds,
                n_boot=self.settings.n_boot,
                seed=self.settings.seed,
                resample_seeds=resample_seeds,
                jobs=bs.default_jobs(len(alphas) * len(seeds)),
            )
        return self._boot[key]

    def _grid(self, source: str, alphas: tuple[float, ...], seeds: list[int]) -> tuple[float, ...]:
        """Every α of the sweep where all share these seeds (and, for "ts", have
        temperature-scaled logits), else `alphas`. One bootstrap then serves every pair:
        each run is scored once, and a pair's numbers are those of a bootstrap of that pair
        alone up to rounding (the draws depend only on the seed, n_boot and the number of
        seeds and examples; tests/test_claims.py checks it to 1e-9)."""
        if self.common_seeds(*self.alphas) != seeds:
            return alphas
        if source == "ts" and not all(
            r.logits_ts is not None for g in self.by_alpha.values() for r in g.values()
        ):
            return alphas
        return tuple(self.alphas)

    def _bootstrappable(self, metric: str, alphas: tuple[float, ...], seeds: list[int]) -> bool:
        if self.settings.interval == "t" or metric not in self.stats or not seeds:
            return False
        if self.stats[metric][0] == "ts":
            return all(self.by_alpha[a][s].logits_ts is not None for a in alphas for s in seeds)
        return True

    def difference(self, metric: str, a: float, b: float) -> Difference:
        """metric(a) − metric(b), paired by seed, with the settings' interval method."""
        return self.cross_difference(metric, a, metric, b)

    def cross_difference(self, metric_a: str, a: float, metric_b: str, b: float) -> Difference:
        """metric_a(a) − metric_b(b), paired by seed: two statistics of one bootstrap source
        (e.g. the AURC of one score at α against another score's at α = 0), on the same
        resampled examples, with the settings' interval method."""
        seeds = self.common_seeds(a, b)
        per_seed = [
            self.by_alpha[a][s].value(metric_a) - self.by_alpha[b][s].value(metric_b) for s in seeds
        ]
        source = self.stats.get(metric_a, ("", None))[0]
        if (
            len(seeds) < 2
            or source != self.stats.get(metric_b, ("", None))[0]
            or not self._bootstrappable(metric_a, (a, b), seeds)
        ):
            return paired_t(per_seed)
        combined = self.settings.interval == "combined"
        alphas = self._grid(source, (a, b), seeds)
        res = self._bootstrap(source, alphas, tuple(seeds), not combined)
        ra, rb = res[metric_a], res[metric_b]
        i, j = alphas.index(a), alphas.index(b)
        reps = ra.replicates[:, i] - rb.replicates[:, j]
        if combined:
            return combined_difference(ra.per_run[i] - rb.per_run[j], reps)
        return bootstrap_difference(float(ra.estimate[i] - rb.estimate[j]), reps, len(seeds))

    def level(self, metric: str, a: float) -> Difference:
        """metric(a) over seeds as a one-sample 'difference' from 0."""
        seeds = list(self.by_alpha[a])
        values = [self.by_alpha[a][s].value(metric) for s in seeds]
        if not self._bootstrappable(metric, (a,), seeds) or len(seeds) < 2:
            return paired_t(values)
        combined = self.settings.interval == "combined"
        source = self.stats[metric][0]
        alphas = self._grid(source, (a,), seeds)
        r = self._bootstrap(source, alphas, tuple(seeds), not combined)[metric]
        i = alphas.index(a)
        if combined:
            return combined_difference(r.per_run[i], r.replicates[:, i])
        return bootstrap_difference(float(r.estimate[i]), r.replicates[:, i], len(seeds))

    def method_of(self, d: Difference) -> str:
        return {
            "t": "t over seeds",
            "bootstrap": "hierarchical bootstrap",
            "t+bootstrap": "combined (t over seeds + test-set bootstrap)",
        }[d.method]

    def excluded_note(self) -> list[str]:
        if not self.n_excluded:
            return list(self.notes)
        parts = ", ".join(f"{_a(a)}: {n}" for a, n in sorted(self.n_excluded.items()))
        return [
            f"Diverged or failed runs left out (judged on the survivors): {parts}.",
            *self.notes,
        ]


def _row(
    decision: Decision, metric: str, alpha: float, vs: float | None, role: str, **extra: Any
) -> dict[str, Any]:
    """One comparison as a JSON-safe evidence row."""
    return {
        "kind": "comparison",
        "role": role,
        "metric": metric,
        "alpha": alpha,
        "vs_alpha": vs,
        "test": decision.test,
        "estimate": _num(decision.estimate),
        "ci_low": _num(decision.ci_low),
        "ci_high": _num(decision.ci_high),
        "margin": decision.margin,
        "n": decision.n,
        "method": decision.method,
        "p_support_adj": _num(decision.p_support_adj),
        "p_refute_adj": _num(decision.p_refute_adj),
        "correction": decision.correction,
        "verdict": decision.verdict,
        **extra,
    }


def _level_row(
    sw: _Sweep, alpha: float, metric: str, role: str = "context", **extra: Any
) -> dict[str, Any]:
    vals = [r.value(metric) for r in sw.by_alpha[alpha].values()]
    vals = [v for v in vals if math.isfinite(v)]
    return {
        "kind": "level",
        "role": role,
        "metric": metric,
        "alpha": alpha,
        "n": len(vals),
        "mean": _num(np.mean(vals)) if vals else None,
        "std": _num(np.std(vals, ddof=1)) if len(vals) > 1 else None,
        **extra,
    }


def _describe(row: dict[str, Any]) -> str:
    """'-1.20 pp [-1.9, -0.5], n=3' for a comparison row."""
    m = row["metric"]
    interval = _fmt_ci(row["ci_low"], row["ci_high"], m).removesuffix(" pp")
    return f"{_fmt(row['estimate'], m, diff=True)} {interval}, n={row['n']}"


def _claim(
    sw: _Sweep,
    cid: int | str,
    text: str,
    verdict: str,
    rule: str,
    reason: str,
    *,
    test: str,
    margin: str,
    decisions: Sequence[Decision],
    evidence: list[dict[str, Any]],
    key: str,
    notes: list[str] | None = None,
    interval: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One claim as a JSON-safe dict. The correction and n come from ``decisions`` (after
    Holm, all share one correction; none: no test was made), the interval method from
    the settings unless given, the notes default to the sweep's."""
    assert verdict in VERDICTS, verdict
    return {
        "id": cid,
        "claim": text,
        "verdict": verdict,
        "rule": rule,
        "reason": reason,
        "test": test,
        "margin": margin,
        "correction": decisions[0].correction if decisions else "none",
        "interval": interval or _interval_text(sw),
        "n": _n_text(decisions),
        "key_numbers": key,
        "notes": sw.excluded_note() if notes is None else notes,
        "evidence": evidence,
        **extra,
    }


def _n_text(decisions: Sequence[Decision]) -> str:
    ns = sorted({d.n for d in decisions})
    if not ns:
        return "n=0"
    return f"n={ns[0]} paired seeds" if len(ns) == 1 else f"n={ns[0]}–{ns[-1]} paired seeds"


def _interval_text(sw: _Sweep) -> str:
    s = sw.settings
    boot = f", {s.n_boot} resamples, seed {s.seed}" if s.interval != "t" else ""
    return f"{s.interval}: {INTERVALS[s.interval]}{boot}; 95% interval"


def _inconclusive(
    cid: int | str,
    text: str,
    rule: str,
    reason: str,
    sw: _Sweep,
    test: str,
    margin: str,
    evidence: list | None = None,
) -> dict[str, Any]:
    return _claim(sw, cid, text, INCONCLUSIVE, rule, reason, test=test, margin=margin,
                  decisions=[], evidence=evidence or [], key=_DASH)  # fmt: skip


def _without_zero_or_default(
    sw: _Sweep, cid: int | str, text: str, rule: str, test: str
) -> dict[str, Any]:
    """The inconclusive verdict of a claim that compares α = 0 with α = 0.1 when the
    sweep lacks one of them."""
    missing = "α=0" if sw.find(0.0) is None else f"α={DEFAULT_ALPHA:g}"
    return _inconclusive(
        cid, text, rule, f"Inconclusive: the sweep has no {missing}.", sw, test, "0"
    )


def _alphas_with(rows: Sequence[dict[str, Any]], verdict: str) -> list[float]:
    """The α of the comparison rows with this verdict."""
    return [r["alpha"] for r in rows if r["verdict"] == verdict]


def _holm(decisions: list[Decision]) -> list[Decision]:
    return holm_adjust(decisions) if len(decisions) > 1 else decisions


def _combine_all(verdicts: Sequence[str]) -> str:
    """Supported if every comparison is; refuted if any is; else inconclusive."""
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if any(v == REFUTED for v in verdicts):
        return REFUTED
    return INCONCLUSIVE


# ---------------------------------------------------------------------------------------
# Claim 1: α > 0.2 hurts accuracy
# ---------------------------------------------------------------------------------------


def _best_on_validation(sw: _Sweep, alphas: Sequence[float]) -> tuple[float, str]:
    """The α of highest mean validation accuracy (ties: the smaller α), and how chosen."""
    val = {a: sw.mean(a, "val_accuracy") for a in alphas}
    if all(math.isnan(v) for v in val.values()):
        zero = sw.find(0.0)
        if zero is not None and zero in alphas:
            return zero, "α=0 (no validation accuracy recorded, so no selection was made)"
        return alphas[0], f"{_a(alphas[0])} (no validation accuracy recorded)"
    best = max((a for a in alphas if not math.isnan(val[a])), key=lambda a: (val[a], -a))
    return best, f"{_a(best)}, the best validation accuracy ({100 * val[best]:.2f}%)"


def _claim1(sw: _Sweep) -> dict[str, Any]:
    cid, text = 1, f"α > {HIGH_ALPHA:g} hurts accuracy"
    m = sw.settings.margin
    margin = f"{100 * m:g} pp of accuracy"
    rule = (
        f"Baseline: among α ≤ {HIGH_ALPHA:g}, the α with the best mean **validation** "
        f"accuracy. For each α > {HIGH_ALPHA:g}, a superiority test of the test-accuracy "
        f"harm d = accuracy(baseline) − accuracy(α), Holm-corrected across those α: a "
        f"comparison supports the claim when d > 0 is established, refutes it when d < "
        f"{100 * m:g} pp is established (the harm, if any, is below the margin). The claim "
        f"is supported if every α > {HIGH_ALPHA:g} hurts, refuted if any α > {HIGH_ALPHA:g} "
        "is established not to hurt by the margin, inconclusive otherwise."
    )
    low = [a for a in sw.alphas if a <= HIGH_ALPHA + _TOL]
    high = [a for a in sw.alphas if a > HIGH_ALPHA + _TOL]
    test = "superiority (one-sided, level 0.025), harm vs. margin"
    if not low or not high:
        side = f"α ≤ {HIGH_ALPHA:g}" if not low else f"α > {HIGH_ALPHA:g}"
        return _inconclusive(
            cid, text, rule, f"Inconclusive: the sweep has no {side}.", sw, test, margin
        )
    base, chosen = _best_on_validation(sw, low)
    decisions = _holm([superiority_test(sw.difference("accuracy", base, a), m) for a in high])
    rows = [_row(d, "accuracy", a, base, "decides") for d, a in zip(decisions, high, strict=True)]
    verdict = _combine_all([d.verdict for d in decisions])
    hurt, fine = _alphas_with(rows, SUPPORTED), _alphas_with(rows, REFUTED)
    open_ = _alphas_with(rows, INCONCLUSIVE)
    reason = (
        f"Baseline {chosen}. Established harm at α ∈ {_alphas_text(hurt)}; harm below "
        f"{100 * m:g} pp established at α ∈ {_alphas_text(fine)}; undecided at α ∈ "
        f"{_alphas_text(open_)}. Largest α: {_describe(rows[-1])}."
    )
    evidence = [_level_row(sw, a, "val_accuracy", "selection") for a in low] + rows
    # The key numbers show the comparison that decided: a refuting one, else the largest α.
    shown = next((r for r in rows if r["verdict"] == REFUTED), rows[-1])
    return _claim(
        sw,
        cid,
        text,
        verdict,
        rule,
        reason,
        test=test,
        margin=margin,
        decisions=decisions,
        evidence=evidence,
        key=f"{_a(shown['alpha'])} vs {_a(base)}: harm {_describe(shown)}",
        baseline_alpha=base,
    )


# ---------------------------------------------------------------------------------------
# Claim 2: label smoothing improves calibration (raw ECE, ECE after TS, NLL and Brier)
# ---------------------------------------------------------------------------------------

_FLOORS = {"ece": "ece_floor", "ece_ts": "ece_ts_floor"}
_PANELS = {"ece": "panel_", "ece_ts": "panel_ts_"}


def _improvement_rows(
    sw: _Sweep, metrics_: Sequence[str], positive: Sequence[float], zero: float
) -> tuple[list[Decision], list[dict[str, Any]]]:
    """Superiority of d = metric(0) − metric(α) (> 0: α improves it), for each metric and
    α > 0, Holm over all of them; ECE comparisons below the noise floor made inconclusive."""
    pairs = [(m, a) for m in metrics_ for a in positive]
    raw = [superiority_test(sw.difference(m, zero, a), 0.0) for m, a in pairs]
    decisions = _holm(raw)
    rows = []
    out = []
    for d, (m, a) in zip(decisions, pairs, strict=True):
        extra: dict[str, Any] = {}
        if m in _FLOORS:
            floor = max(sw.mean(a, _FLOORS[m]), sw.mean(zero, _FLOORS[m]))
            extra["noise_floor"] = _num(floor)
            resolvable = not (math.isfinite(floor) and abs(d.estimate) < floor)
            extra["resolvable"] = resolvable
            if not resolvable:
                d = _with_verdict(d, INCONCLUSIVE)
        rows.append(_row(d, m, a, zero, "decides" if _is(a, DEFAULT_ALPHA) else "range", **extra))
        out.append(d)
    return out, rows


def _with_verdict(d: Decision, verdict: str) -> Decision:
    return replace(d, verdict=verdict)


def _is(a: float, b: float) -> bool:
    return abs(a - b) < _TOL


def _range_sentence(rows: list[dict[str, Any]], metric: str) -> str:
    mine = [r for r in rows if r["metric"] == metric]
    better, worse = _alphas_with(mine, SUPPORTED), _alphas_with(mine, REFUTED)
    unres = [r["alpha"] for r in mine if r.get("resolvable") is False]
    open_ = [
        r["alpha"]
        for r in mine
        if r["verdict"] == INCONCLUSIVE and r.get("resolvable") is not False
    ]
    parts = [
        f"better than α=0 at α ∈ {_alphas_text(better)}",
        f"worse at α ∈ {_alphas_text(worse)}",
    ]
    if unres:
        parts.append(
            f"not resolvable (difference below the noise floor) at α ∈ {_alphas_text(unres)}"
        )
    if open_:
        parts.append(f"undecided at α ∈ {_alphas_text(open_)}")
    return f"{_name(metric)}: " + "; ".join(parts) + "."


def _panel_check(sw: _Sweep, metric: str, zero: float, a: float, verdict: str) -> str:
    """Whether the ECE verdict at α holds under every estimator of the panel (each a paired
    t superiority test over seeds, the same rule, no floor)."""
    prefix = _PANELS[metric]
    keys = sorted(
        {
            k
            for r in sw.by_alpha[a].values()
            for k in r.values
            if k.startswith(prefix) and not k[len(prefix) :].startswith("ts_")
        }
    )
    if not keys:
        return "The estimator panel was not computed."
    seeds = sw.common_seeds(zero, a)
    agree, disagree = [], []
    for k in keys:
        d = [sw.by_alpha[zero][s].value(k) - sw.by_alpha[a][s].value(k) for s in seeds]
        v = superiority_test(paired_t(d)).verdict
        (agree if v == verdict else disagree).append(f"{k[len(prefix) :]} ({v})")
    if not disagree:
        return (
            f"The same verdict under every estimator of the panel ({len(keys)} estimators, "
            "t over seeds)."
        )
    return (
        "Not under every estimator of the panel (t over seeds): "
        + ", ".join(disagree)
        + f" differ; {len(agree)} agree."
    )


def _claim2(
    sw: _Sweep, cid: str, metric_set: tuple[str, ...], text: str, what: str
) -> dict[str, Any]:
    rule = (
        f"For each α > 0, a superiority test of d = {what}(α=0) − {what}(α) (d > 0: "
        f"smoothing improves it), margin 0, Holm-corrected across every α"
        + (" and both scores" if len(metric_set) > 1 else "")
        + f". The verdict is the comparison at α={DEFAULT_ALPHA:g}: supported if it improves, "
        "refuted if it is established worse, inconclusive otherwise"
        + (
            " (supported only if both scores improve, refuted if either is worse)"
            if len(metric_set) > 1
            else ""
        )
        + "; the other α give the range where it holds."
        + (
            " An ECE difference smaller than the larger of the two noise floors (the "
            "expected ECE of a perfectly calibrated model with the same confidences) is not "
            "resolvable and counts as inconclusive."
            if metric_set[0] in _FLOORS
            else ""
        )
    )
    test = "superiority (one-sided, level 0.025), margin 0"
    zero, default = sw.find(0.0), sw.find(DEFAULT_ALPHA)
    if zero is None or default is None:
        return _without_zero_or_default(sw, cid, text, rule, test)
    if metric_set[0] == "ece_ts" and not all(
        r.logits_ts is not None for g in sw.by_alpha.values() for r in g.values()
    ):
        return _inconclusive(
            cid,
            text,
            rule,
            "Inconclusive: no validation split, so no temperature was fitted.",
            sw,
            test,
            "0",
        )
    positive = [a for a in sw.alphas if a > _TOL]
    decisions, rows = _improvement_rows(sw, metric_set, positive, zero)
    at_default = [r for r in rows if _is(r["alpha"], DEFAULT_ALPHA)]
    verdict = (
        _combine_all([r["verdict"] for r in at_default])
        if len(at_default) > 1
        else at_default[0]["verdict"]
    )
    sentences = [_range_sentence(rows, m) for m in metric_set]
    notes = sw.excluded_note()
    if metric_set[0] in _PANELS:
        notes = [_panel_check(sw, metric_set[0], zero, default, verdict), *notes]
    key = "; ".join(
        f"{_name(r['metric'])} α=0 − α={DEFAULT_ALPHA:g}: {_describe(r)}" for r in at_default
    )
    reason = (
        f"At α={DEFAULT_ALPHA:g}: "
        + "; ".join(
            f"{_name(r['metric'])} {_describe(r)} ({r['verdict']}"
            + (", below the noise floor" if r.get("resolvable") is False else "")
            + ")"
            for r in at_default
        )
        + ". "
        + " ".join(sentences)
    )
    levels = [
        _level_row(sw, a, m, floor=_num(sw.mean(a, _FLOORS[m])) if m in _FLOORS else None)
        for m in metric_set
        for a in sw.alphas
    ]
    return _claim(
        sw,
        cid,
        text,
        verdict,
        rule,
        reason,
        test=test,
        margin="0",
        decisions=decisions,
        evidence=levels + rows,
        key=key,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------
# Claim 3: α = 0.1 is a near-best default
# ---------------------------------------------------------------------------------------


def _claim3(sw: _Sweep) -> dict[str, Any]:
    cid, text = 3, f"α = {DEFAULT_ALPHA:g} is a near-best default"
    m = sw.settings.margin
    margin = f"{100 * m:g} pp of accuracy"
    rule = (
        f"For every other α of the sweep, a non-inferiority test (the one-sided half of "
        f"TOST) of d = accuracy(α) − accuracy(α={DEFAULT_ALPHA:g}), margin {100 * m:g} pp, "
        f"Holm-corrected across those α. Supported if α={DEFAULT_ALPHA:g} is established "
        f"within {100 * m:g} pp of every other α (d < margin for all); refuted if some α is "
        f"established better by more than {100 * m:g} pp; inconclusive otherwise. No best α "
        "is picked, so there is no selection bias; the validation-best α is shown as context."
    )
    test = "non-inferiority (one-sided, level 0.025) against every other α"
    default = sw.find(DEFAULT_ALPHA)
    others = [a for a in sw.alphas if default is None or not _is(a, default)]
    if default is None or not others:
        why = f"no α={DEFAULT_ALPHA:g}" if default is None else "no other α"
        return _inconclusive(
            cid, text, rule, f"Inconclusive: the sweep has {why}.", sw, test, margin
        )
    decisions = _holm(
        [noninferiority_test(sw.difference("accuracy", a, default), m) for a in others]
    )
    rows = [
        _row(d, "accuracy", a, default, "decides") for d, a in zip(decisions, others, strict=True)
    ]
    verdict = _combine_all([d.verdict for d in decisions])
    best, chosen = _best_on_validation(sw, sw.alphas)
    worst = max(rows, key=lambda r: r["estimate"] if r["estimate"] is not None else -math.inf)
    beaten, within = _alphas_with(rows, REFUTED), _alphas_with(rows, SUPPORTED)
    reason = (
        f"α={DEFAULT_ALPHA:g} established within {100 * m:g} pp of α ∈ {_alphas_text(within)}; "
        f"established worse by more than {100 * m:g} pp than α ∈ {_alphas_text(beaten)}. "
        f"Largest advantage of another α: {_a(worst['alpha'])}, {_describe(worst)}. "
        f"Validation-best: {chosen}."
    )
    return _claim(
        sw,
        cid,
        text,
        verdict,
        rule,
        reason,
        test=test,
        margin=margin,
        decisions=decisions,
        evidence=[_level_row(sw, a, "val_accuracy", "context") for a in sw.alphas] + rows,
        key=f"{_a(worst['alpha'])} − α={DEFAULT_ALPHA:g}: {_describe(worst)}",
        validation_best_alpha=best,
    )


# ---------------------------------------------------------------------------------------
# Claim 4: large α makes the model under-confident
# ---------------------------------------------------------------------------------------


def _claim4(sw: _Sweep) -> dict[str, Any]:
    cid, text = 4, "Large α makes the model under-confident"
    rule = (
        f"At the largest α of the sweep (which must be ≥ {HIGH_ALPHA:g}), a superiority test "
        "of u = accuracy − mean confidence on the test set: supported if u > 0 is established "
        "(under-confident), refuted if u < 0 is established (over-confident), inconclusive "
        "otherwise. One test, no correction. The crossover, the smallest α whose mean u is "
        "above 0, is context."
    )
    test = "superiority (one-sided, level 0.025), margin 0"
    largest = sw.alphas[-1] if sw.alphas else None
    if largest is None or largest < HIGH_ALPHA - _TOL:
        return _inconclusive(
            cid, text, rule, f"Inconclusive: the largest α is below {HIGH_ALPHA:g}.", sw, test, "0"
        )
    d = superiority_test(sw.level("underconfidence", largest), 0.0)
    row = _row(d, "underconfidence", largest, None, "decides")
    levels = [_level_row(sw, a, "underconfidence") for a in sw.alphas]
    cross = next((r["alpha"] for r in levels if r["mean"] is not None and r["mean"] > 0), None)
    reason = (
        f"At {_a(largest)}: accuracy − confidence {_describe(row)}. Crossover (first α "
        f"with mean under-confidence): {'none' if cross is None else _a(cross)}."
    )
    return _claim(
        sw,
        cid,
        text,
        d.verdict,
        rule,
        reason,
        test=test,
        margin="0",
        decisions=[d],
        evidence=levels + [row],
        key=f"{_a(largest)}: {_describe(row)}",
        crossover_alpha=cross,
    )


def _with_derived_values(runs: Sequence[ClaimRun]) -> list[ClaimRun]:
    """The runs with the per-run numbers the claims derive: under-confidence (minus
    runs.csv's overconfidence, for the t interval) and train_gap, the mean of the run's
    training-data true-class gaps (claim 5; NaN where the run did not record them), and the
    AURC of each score claim 11 compares where runs.csv's number is not given."""
    out = []
    for r in runs:
        values = dict(r.values)
        if "underconfidence" not in values and "overconfidence" in values:
            values["underconfidence"] = -float(values["overconfidence"])
        for score in ("msp", "pnorm"):
            if f"sel_{score}_aurc" not in values:
                values[f"sel_{score}_aurc"] = selective_metrics(r.logits, r.labels, score)["aurc"]
        values["train_gap"] = math.nan if r.train_gap is None else float(np.mean(r.train_gap))
        out.append(ClaimRun(r.alpha, r.seed, r.logits, r.labels, values, r.logits_ts, r.train_gap))
    return out


# ---------------------------------------------------------------------------------------
# Claim 5: label smoothing caps the logit gap
# ---------------------------------------------------------------------------------------


def _cap(sw: _Sweep, alpha: float) -> float | None:
    """The loss-minimising logit gap at α (None at α = 0: no cap)."""
    return _num(optimal_logit_gap(alpha, sw.num_classes)) if alpha > _TOL else None


def _claim5(sw: _Sweep, schedule: str | None) -> dict[str, Any]:
    cid, text = 5, "Label smoothing caps how large the logits grow"
    tol = CAP_TOLERANCE
    rule = (
        "Per run, the mean over training examples (a fixed subset, after the last epoch) of "
        "the true-class gap z_y − mean_{i≠y} z_i, against the cap log(K(1−α)/α + 1) that "
        "minimises the smoothed loss (Müller et al. 2019). For each α > 0, a non-inferiority "
        f"test (t over seeds) of gap − cap at a margin of {100 * tol:g}% of the cap: the cap "
        "holds when gap < cap·(1 + tolerance) is established. And a superiority test that "
        "α=0's gap exceeds the smallest α's cap (without smoothing nothing stops it). Holm "
        "over all these tests. Supported if every test is supported; refuted if some α > 0 "
        "is established above its cap·(1 + tolerance), or α=0 is established below the "
        "smallest cap; inconclusive otherwise."
    )
    test = "non-inferiority to the cap (per α > 0) and superiority of α=0 (t over seeds)"
    zero = sw.find(0.0)
    positive = [a for a in sw.alphas if a > _TOL]
    if zero is None or not positive:
        why = "no α=0" if zero is None else "no α > 0"
        return _inconclusive(
            cid,
            text,
            rule,
            f"Inconclusive: the sweep has {why}.",
            sw,
            test,
            f"{100 * tol:g}% of the cap",
        )
    notes = sw.excluded_note()
    if schedule == "constant":
        notes.append(
            "The learning rate is constant in this sweep: α=0's gap is not held "
            "back by a decaying schedule, so this run is its own control."
        )
    else:
        notes.append(
            f"Constant-learning-rate control not run: under the {schedule or 'sweep'}'s "
            "decaying schedule α=0's gap also levels off as the learning rate goes to "
            "0. Sweep the same config with train.schedule: constant to add it."
        )
    missing = [
        f"{_a(r.alpha)} seed {r.seed}"
        for g in sw.by_alpha.values()
        for r in g.values()
        if r.train_gap is None
    ]
    test_gap_rows = [_level_row(sw, a, "logit_gap", cap=_cap(sw, a)) for a in sw.alphas]
    if missing:
        reason = (
            f"Inconclusive: {len(missing)} run(s) did not record the training-data "
            "true-class gap (runs written before lsexp recorded it; a sweep of the same "
            "config into a new folder records it). The test-set top-logit gap is shown "
            "as context only: it is not the quantity the cap bounds."
        )
        return _claim(
            sw,
            cid,
            text,
            INCONCLUSIVE,
            rule,
            reason,
            test=test,
            margin=f"{100 * tol:g}% of the cap",
            decisions=[],
            interval="t over seeds",
            evidence=test_gap_rows,
            key=_DASH,
            notes=notes,
        )

    def gaps(a: float, minus: float) -> list[float]:
        return [r.value("train_gap") - minus for r in sw.by_alpha[a].values()]

    decisions, labels = [], []
    for a in positive:
        cap = optimal_logit_gap(a, sw.num_classes)
        decisions.append(noninferiority_test(paired_t(gaps(a, cap)), tol * cap))
        labels.append((a, cap))
    smallest_cap = optimal_logit_gap(positive[0], sw.num_classes)
    decisions.append(superiority_test(paired_t(gaps(zero, smallest_cap))))
    labels.append((zero, smallest_cap))
    decisions = _holm(decisions)
    rows = [
        _row(d, "train_gap", a, None, "decides", cap=_num(cap))
        for d, (a, cap) in zip(decisions, labels, strict=True)
    ]
    verdict = _combine_all([d.verdict for d in decisions])
    over = _alphas_with(rows[:-1], REFUTED)
    levels = [_level_row(sw, a, "train_gap", cap=_cap(sw, a)) for a in sw.alphas]
    reason = (
        f"α=0 training gap {sw.mean(zero, 'train_gap'):.2f} against the "
        f"smallest cap {smallest_cap:.2f} ({_a(positive[0])}): {rows[-1]['verdict']}. α > 0 "
        f"established above cap·{1 + tol:g}: {_alphas_text(over)}; gap/cap per α: "
        + ", ".join(
            f"{_a(lv['alpha'])} {lv['mean'] / lv['cap']:.2f}"
            for lv in levels
            if lv["cap"] and lv["mean"] is not None
        )
        + "."
    )
    return _claim(
        sw,
        cid,
        text,
        verdict,
        rule,
        reason,
        test=test,
        margin=f"{100 * tol:g}% of the cap",
        decisions=decisions,
        interval="t over seeds (the gap is a training-set quantity)",
        evidence=levels + rows + test_gap_rows,
        key=f"α=0 gap − cap({_a(positive[0])}): {_describe(rows[-1])}",
        notes=notes,
    )


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# Claim 11: label smoothing degrades selective classification
# ---------------------------------------------------------------------------------------


def _claim11(sw: _Sweep) -> dict[str, Any]:
    cid, text = 11, "Label smoothing degrades selective classification"
    rule = (
        "For each α > 0, a superiority test of d = AURC(α) − AURC(α=0) (d > 0: smoothing "
        "makes the max-softmax ranking of errors worse), the test split's area under the "
        "risk–coverage curve with the maximum softmax probability as the confidence score, "
        "margin 0, Holm-corrected across every α. The verdict is the comparison at "
        f"α={DEFAULT_ALPHA:g}: supported if AURC is established higher, refuted if "
        "established lower, inconclusive otherwise; the other α give the range. Evidence, "
        "not part of the verdict: the same test with the p-norm-normalised logits as the "
        "score (Xia et al. 2025's fix) at each α > 0 against the max softmax probability at "
        "α = 0 (Holm-corrected on its own): the gap is closed where the smoothed model with "
        "the fix is not established worse than plain cross-entropy with the max softmax."
    )
    test = "superiority (one-sided, level 0.025), margin 0"
    zero, default = sw.find(0.0), sw.find(DEFAULT_ALPHA)
    if zero is None or default is None:
        return _without_zero_or_default(sw, cid, text, rule, test)
    positive = [a for a in sw.alphas if a > _TOL]

    def rows_for(metric: str, role: str) -> tuple[list[Decision], list[dict[str, Any]]]:
        # metric at α against the max softmax probability's AURC at α = 0
        ds = _holm(
            [
                superiority_test(sw.cross_difference(metric, a, "sel_msp_aurc", zero), 0.0)
                for a in positive
            ]
        )
        rows = [
            _row(
                d,
                metric,
                a,
                zero,
                role if _is(a, DEFAULT_ALPHA) or role == "context" else "range",
                **({} if metric == "sel_msp_aurc" else {"vs_metric": "sel_msp_aurc"}),
            )  # fmt: skip
            for d, a in zip(ds, positive, strict=True)
        ]
        return ds, rows

    decisions, rows = rows_for("sel_msp_aurc", "decides")
    _, fix_rows = rows_for("sel_pnorm_aurc", "context")
    at = next(r for r in rows if _is(r["alpha"], DEFAULT_ALPHA))
    fix = next(r for r in fix_rows if _is(r["alpha"], DEFAULT_ALPHA))
    verdict = at["verdict"]
    worse, better = _alphas_with(rows, SUPPORTED), _alphas_with(rows, REFUTED)
    fix_worse = _alphas_with(fix_rows, SUPPORTED)
    if verdict != SUPPORTED:
        closes = f"There is no established gap at α={default:g} for it to close."
    elif fix["verdict"] == SUPPORTED:
        closes = (
            "Logit normalisation does not close the gap: with it the smoothed model is still "
            "established worse than α=0 with the max softmax."
        )
    elif fix["verdict"] == REFUTED:
        closes = (
            "Logit normalisation more than closes the gap: with it the smoothed model is "
            "established better than α=0 with the max softmax."
        )
    else:
        closes = "Logit normalisation closes the gap as far as this test can tell."
    reason = (
        f"At α={DEFAULT_ALPHA:g}, AURC (max softmax) α − α=0: {_describe(at)} ({verdict}). "
        f"Established worse at α ∈ {_alphas_text(worse)}, better at α ∈ "
        f"{_alphas_text(better)}. AURC with p-norm-normalised logits at α={DEFAULT_ALPHA:g} "
        f"− AURC (max softmax) at α=0: {_describe(fix)} ({fix['verdict']}); established "
        f"worse at α ∈ {_alphas_text(fix_worse)}. {closes}"
    )
    levels = [_level_row(sw, a, m) for m in ("sel_msp_aurc", "sel_pnorm_aurc") for a in sw.alphas]
    return _claim(
        sw,
        cid,
        text,
        verdict,
        rule,
        reason,
        test=test,
        margin="0",
        decisions=decisions,
        evidence=levels + rows + fix_rows,
        key=(
            f"AURC α={DEFAULT_ALPHA:g} − α=0, max softmax: {_describe(at)}; p-norm at "
            f"α={DEFAULT_ALPHA:g} − max softmax at α=0: {_describe(fix)}"
        ),
        logit_normalisation_closes_gap=(
            None if verdict != SUPPORTED else fix["verdict"] != SUPPORTED
        ),
    )


# ---------------------------------------------------------------------------------------
# Claim 6: after temperature scaling, label smoothing is no better calibrated than CE
# ---------------------------------------------------------------------------------------


def _claim6(sw: _Sweep) -> dict[str, Any]:
    cid = 6
    text = ("After temperature scaling, label smoothing is no better calibrated than plain "
            "cross-entropy")  # fmt: skip
    rule = (
        "For each α > 0, a non-inferiority test of d = ECE_TS(α=0) − ECE_TS(α), the advantage "
        "of smoothing in test ECE after temperature scaling (T fitted on validation), with "
        "the margin the larger of the two mean ECE noise floors after scaling (the expected "
        "ECE of a perfectly calibrated model with the same confidences: differences below it "
        "are not resolvable), Holm-corrected across every α. The verdict is the comparison "
        f"at α={DEFAULT_ALPHA:g}: supported if the advantage is established below the margin "
        "(smoothing no better), refuted if it is established above it (smoothing still "
        "better calibrated after scaling), inconclusive otherwise; the other α give the "
        "range. Claim 2b asks the opposite question, whether smoothing is established better."
    )
    test = "non-inferiority (one-sided, level 0.025), margin the ECE noise floor after TS"
    zero, default = sw.find(0.0), sw.find(DEFAULT_ALPHA)
    if zero is None or default is None:
        return _without_zero_or_default(sw, cid, text, rule, test)
    if not all(r.logits_ts is not None for g in sw.by_alpha.values() for r in g.values()):
        return _inconclusive(cid, text, rule, "Inconclusive: no validation split, so no "
                             "temperature was fitted.", sw, test, "noise floor")  # fmt: skip
    positive = [a for a in sw.alphas if a > _TOL]
    floors = {a: max(sw.mean(a, "ece_ts_floor"), sw.mean(zero, "ece_ts_floor")) for a in positive}
    raw = []
    for a in positive:
        margin = floors[a] if math.isfinite(floors[a]) and floors[a] > 0 else 1e-12
        raw.append(noninferiority_test(sw.difference("ece_ts", zero, a), margin))
    decisions = _holm(raw)
    rows = [
        _row(d, "ece_ts", zero, a, "decides" if _is(a, DEFAULT_ALPHA) else "range",
             noise_floor=_num(floors[a]))
        for d, a in zip(decisions, positive, strict=True)
    ]  # fmt: skip
    # The rows compare α = 0 with α: present them as "α=0 vs α" (alpha, vs_alpha).
    at = next(r for r in rows if _is(r["vs_alpha"], DEFAULT_ALPHA))
    verdict = at["verdict"]
    no_better = [r["vs_alpha"] for r in rows if r["verdict"] == SUPPORTED]
    better = [r["vs_alpha"] for r in rows if r["verdict"] == REFUTED]
    reason = (
        f"At α={DEFAULT_ALPHA:g}, ECE after TS α=0 − α={DEFAULT_ALPHA:g}: {_describe(at)}, "
        f"margin (noise floor) {_fmt(at['noise_floor'], 'ece')} ({verdict}). Smoothing "
        f"established no better after scaling at α ∈ {_alphas_text(no_better)}; still "
        f"better beyond the floor at α ∈ {_alphas_text(better)}."
    )
    levels = [_level_row(sw, a, "ece_ts", floor=_num(sw.mean(a, "ece_ts_floor")))
              for a in sw.alphas]  # fmt: skip
    return _claim(sw, cid, text, verdict, rule, reason, test=test,
                  margin="the larger mean ECE noise floor after TS of the pair",
                  decisions=decisions, evidence=levels + rows,
                  key=f"ECE_TS α=0 − α={DEFAULT_ALPHA:g}: {_describe(at)}")  # fmt: skip


# ---------------------------------------------------------------------------------------
# Claim 10: label smoothing tightens class clusters in the penultimate layer
# ---------------------------------------------------------------------------------------


def _claim10(sw: _Sweep) -> dict[str, Any]:
    cid, text = 10, "Label smoothing tightens class clusters in the penultimate layer"
    rule = (
        "Per run, the class separation R² of Kornblith et al. 2021 (1 − mean within-class "
        "cosine distance / mean overall cosine distance, classes weighted equally) of the "
        "penultimate features of the test examples each run saves (the first 300 of each of "
        "the classes 0, 1 and 2: the sample of the penultimate-layer figure, Müller et al. "
        "2019 Fig. 1). For each α > 0, a superiority test of d = R²(α) − R²(α=0) (d > 0: "
        "tighter clusters relative to their spread), margin 0, Holm-corrected across every "
        f"α, t over seeds (R² has no per-example bootstrap). The verdict is the comparison "
        f"at α={DEFAULT_ALPHA:g}; the other α give the range."
    )
    test = "superiority (one-sided, level 0.025), margin 0"
    zero, default = sw.find(0.0), sw.find(DEFAULT_ALPHA)
    if zero is None or default is None:
        return _without_zero_or_default(sw, cid, text, rule, test)
    if not all(math.isfinite(r.value("class_separation"))
               for g in sw.by_alpha.values() for r in g.values()):  # fmt: skip
        return _inconclusive(cid, text, rule, "Inconclusive: some runs saved no penultimate "
                             "features (runs written before lsexp saved them).", sw, test,
                             "0")  # fmt: skip
    positive = [a for a in sw.alphas if a > _TOL]
    decisions = _holm([superiority_test(sw.difference("class_separation", a, zero), 0.0)
                       for a in positive])  # fmt: skip
    rows = [_row(d, "class_separation", a, zero, "decides" if _is(a, DEFAULT_ALPHA) else "range")
            for d, a in zip(decisions, positive, strict=True)]  # fmt: skip
    at = next(r for r in rows if _is(r["alpha"], DEFAULT_ALPHA))
    tighter, looser = _alphas_with(rows, SUPPORTED), _alphas_with(rows, REFUTED)
    reason = (
        f"At α={DEFAULT_ALPHA:g}, R² α − α=0: {_describe(at)} ({at['verdict']}). Tighter at "
        f"α ∈ {_alphas_text(tighter)}, looser at α ∈ {_alphas_text(looser)}."
    )
    levels = [_level_row(sw, a, "class_separation") for a in sw.alphas]
    return _claim(sw, cid, text, at["verdict"], rule, reason, test=test, margin="0",
                  decisions=decisions, evidence=levels + rows, interval=(
                      "t: Student-t over seeds of the paired per-seed differences (test "
                      "sample fixed); 95% interval"),
                  key=f"R² α={DEFAULT_ALPHA:g} − α=0: {_describe(at)}")  # fmt: skip


def evaluate_claims(
    runs: Sequence[ClaimRun],
    num_classes: int,
    n_excluded: Mapping[float, int] | None = None,
    settings: ClaimSettings | None = None,
    schedule: str | None = None,
) -> list[dict[str, Any]]:
    """Verdicts on the folk claims, from the finished runs.

    ``runs``: one ClaimRun per finished run, at most one per (alpha, seed), in any order,
    all on the same test set. ``num_classes``: K, for the logit-gap cap. ``n_excluded``:
    diverged or failed runs per α (only counted). ``schedule``: the sweep's learning-rate
    schedule (claim 5 says whether it is its own constant-rate control).

    Returns one JSON-serialisable dict per claim (floats finite or None) with ``id``,
    ``claim``, ``verdict`` (one of VERDICTS), ``rule``, ``reason``, ``test``, ``margin``,
    ``correction``, ``interval``, ``n``, ``key_numbers``, ``notes`` and ``evidence`` (rows:
    ``kind`` "comparison" for a test, "level" for one α's numbers). Deterministic: the
    bootstrap is seeded by ``settings.seed``.
    """
    settings = settings or ClaimSettings()
    runs = list(runs)
    first = runs[0].labels if runs else None
    shared = all(np.array_equal(r.labels, first) for r in runs)
    if not shared and settings.interval != "t":
        # The bootstrap pairs runs example by example, which needs one test set.
        settings = replace(settings, interval="t")
    sw = _Sweep(_with_derived_values(runs), num_classes, n_excluded or {}, settings)
    if not sw.alphas:
        raise ValueError("expected at least one finished run")
    if not shared:
        sw.notes.append(
            "The runs were scored on different test sets, so the intervals are "
            "t over seeds (no test-set bootstrap)."
        )
    return [
        _claim1(sw),
        _claim2(sw, "2a", ("ece",), "Label smoothing improves calibration (raw ECE)", "ECE"),
        _claim2(
            sw,
            "2b",
            ("ece_ts",),
            "Label smoothing improves calibration after temperature scaling (ECE)",
            "ECE after temperature scaling",
        ),
        _claim2(
            sw,
            "2c",
            ("nll", "brier"),
            "Label smoothing improves the proper scoring rules (NLL and Brier)",
            "score",
        ),
        _claim3(sw),
        _claim4(sw),
        _claim5(sw, schedule),
        _claim6(sw),
        _claim10(sw),
        _claim11(sw),
    ]


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------


def _md_rows(rows: list[dict[str, Any]]) -> list[str]:
    comps = [r for r in rows if r["kind"] == "comparison"]
    levels = [r for r in rows if r["kind"] == "level"]
    head = "setting" if any(r.get("setting") for r in rows) else "α"
    out: list[str] = []
    if levels:
        extra = [k for k in ("floor", "cap") if any(r.get(k) is not None for r in levels)]
        out += [
            "",
            f"| {head} | measure | role | n | mean | std |" + "".join(f" {k} |" for k in extra),
            "|---|---|---|---|---|---|" + "---|" * len(extra),
        ]
        for r in levels:
            m = r["metric"]
            cells = [
                r.get("setting") or f"{r['alpha']:g}",
                _name(m),
                r["role"],
                str(r["n"]),
                _fmt(r["mean"], m),
                _fmt(r["std"], m).lstrip("+") if r["std"] is not None else _DASH,
            ]
            cells += [
                _fmt(r.get(k), m)
                if k == "floor"
                else (f"{r[k]:.2f}" if r.get(k) is not None else _DASH)
                for k in extra
            ]
            out.append("| " + " | ".join(cells) + " |")
    if comps:
        out += [
            "",
            f"| {head} | vs {head} | measure | role | difference | 95% interval | n | method | "
            "p (support, adj.) | p (refute, adj.) | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in comps:
            m = r["metric"]
            vs = _DASH if r["vs_alpha"] is None else f"{r['vs_alpha']:g}"
            if r.get("vs_setting"):
                vs = r["vs_setting"]
            if r.get("vs_metric") not in (None, m):
                vs += f" ({_name(r['vs_metric'])})"
            note = " (below floor)" if r.get("resolvable") is False else ""
            p = [_fmt_p(x) for x in (r["p_support_adj"], r["p_refute_adj"])]
            first = r.get("setting") or f"{r['alpha']:g}"
            out.append(
                f"| {first} | {vs} | {_name(m)} | {r['role']} | "
                f"{_fmt(r['estimate'], m, diff=True)} | "
                f"{_fmt_ci(r['ci_low'], r['ci_high'], m)} | {r['n']} | {r['method']} | "
                f"{p[0]} | {p[1]} | {r['verdict']}{note} |"
            )
    return out


def claims_markdown(claims: list[dict[str, Any]]) -> str:
    """The claims as markdown: a summary table, then one section per claim with its test,
    margin, correction, interval method and n, its rule, reason, notes and evidence."""
    lines = [
        "# Claims",
        "",
        "Verdicts on claims often made about label smoothing, from the finished runs of this "
        "sweep: **supported** (the claimed effect is established), **refuted** (its opposite, "
        "or its absence beyond the margin, is established) or **inconclusive** (neither, at "
        "one-sided level 0.025, i.e. a 95% interval). Comparisons between α are paired by "
        "seed. Accuracy and ECE in %, their differences in percentage points (pp). "
        "`lsexp report --margin` and the config's `claims:` section set the margin and the "
        "interval method.",
        "",
        "| # | claim | verdict | key numbers |",
        "|---|---|---|---|",
    ]
    for c in claims:
        lines.append(f"| {c['id']} | {c['claim']} | **{c['verdict']}** | {c['key_numbers']} |")
    for c in claims:
        lines += [
            "",
            f"## {c['id']}. {c['claim']}",
            "",
            f"**Verdict: {c['verdict']}.** {c['reason']}",
            "",
            f"- Test: {c['test']}",
            f"- Margin: {c['margin']}",
            f"- Correction: {c['correction']}",
            f"- Interval: {c['interval']}",
            f"- n: {c['n']}",
            "",
            f"*Rule.* {c['rule']}",
        ]
        if c.get("notes"):
            lines += [""] + [f"- {note}" for note in c["notes"]]
        lines += _md_rows(c.get("evidence") or [])
    return "\n".join(lines) + "\n"
