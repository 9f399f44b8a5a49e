"""A paired, hierarchical bootstrap over seeds and test examples, for a sweep's comparisons.

A sweep scores M methods (α values) × S seeds on one test set of N examples. A difference
between two methods, averaged over seeds, varies for two reasons: another seed trains
another network, and another test set holds other examples. The Student-t interval over
seeds sees only the first. ``hierarchical_bootstrap`` resamples both:

1. draw S seeds with replacement from the S seeds;
2. draw N test examples with replacement, and score *every* method of every drawn seed on
   those same examples;
3. compute the statistic (accuracy, NLL, ECE, ...) of each run on its resample, and average
   each method over the drawn seeds.

Every replicate uses the same seeds and the same examples for every method, so a difference
between two methods is paired: variation shared by both (a hard test set, a lucky seed)
cancels, and two identical methods differ by exactly nothing.

Why one example resample for all seeds (``examples="shared"``, the default) rather than one
per drawn seed (``"per_seed"``): the runs of a sweep are not nested in their test sets, they
are crossed with one test set: every seed is scored on the same 2,000 images. An
example-level effect on a difference (an image that smoothing gets right at every seed) is
then common to all seeds and does not average out over seeds; only a resample shared by the
seeds carries it into the interval. This is the "pigeonhole" bootstrap for crossed random
effects (Owen, "The pigeonhole bootstrap", Annals of Applied Statistics 1(2), 2007), which
is mildly conservative; resampling examples independently per seed (a nested, two-stage
bootstrap; Davison & Hinkley, "Bootstrap Methods and their Application", 1997, section 3.8)
shrinks that shared component by 1/S. Both are offered; the tests show the difference.

What resampling seeds cannot fix: with 3 seeds the seed level has only 10 distinct resamples
and its variance is (S-1)/S = 2/3 of the sample variance, so where seed-to-seed spread
dominates, the percentile interval is too narrow (coverage 0.79 for a nominal 0.95 in
tests/test_bootstrap.py), while the Student-t interval over seeds (``stats.paired_t``)
misses the test-set noise the seeds share (coverage 0 where the seeds agree). With
``resample_seeds=False`` only the examples are resampled, and
``BootstrapResult.combined_difference`` adds that test-set variance to the t over seeds
(``stats.combined_difference``, Welch-Satterthwaite degrees of freedom): it kept its
coverage (0.94-0.95) in both regimes. The report should say which interval a verdict used.

Speed: statistics that are means of per-example terms (accuracy, NLL, Brier) need only one
matrix product of the resampling counts with the per-example terms. Binned ECEs keep each
example's bin under resampling (the bins depend only on its confidence), so a resample's ECE
is sum_b |sum_{i in b} w_i (correct_i - conf_i)| / N: again one matrix product, with the
per-bin terms. Anything else (``generic_statistic``: adaptive or smooth ECE) is recomputed
on each materialised resample, which is slow and meant for small n_boot.

Reproducible: the draws depend only on (seed, n_boot, S, N, examples), never on the
statistics or the methods, so two calls with the same seed and shapes use the same resamples
(and their results are paired with each other too).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import csc_array, hstack

from lsexp.analysis.metrics import (
    FloatArray,
    IntArray,
    _as_2d_float,
    _as_labels,
    _check_n_bins,
    equal_width_bin_index,
    log_softmax,
    softmax,
)
from lsexp.analysis.stats import LEVEL, Difference, bootstrap_difference, combined_difference
from lsexp.parallel import PARALLEL_MIN_RUNS, available_cpus, can_fork, process_pool

__all__ = [
    "ACCURACY",
    "BRIER",
    "EXAMPLE_SCHEMES",
    "NLL",
    "BootstrapResult",
    "Statistic",
    "aurc_statistic",
    "bootstrap_draws",
    "classwise_ece_statistic",
    "ece_statistic",
    "generic_statistic",
    "hierarchical_bootstrap",
]

EXAMPLE_SCHEMES = ("shared", "per_seed")
_BLOCK = 250  # replicates drawn and scored at once: bounds memory (B x N counts per block)


# ---------------------------------------------------------------------------------------
# Statistics: how each is computed from one run, in a form that resamples fast
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistic:
    """A per-run statistic of (logits, labels), in one of three resampling-friendly forms.

    kind "mean": statistic = (1/N) sum_i terms_i, ``prepare`` returns terms (N,).
    kind "binned": statistic = scale · sum_g |sum_i w_i v_ig| / N for a fixed assignment
        of every example's J terms to groups: ``prepare`` returns (groups (N, J) int,
        values (N, J) float, n_groups, scale).
    kind "weighted": ``prepare`` returns a state once per run and ``resampled(state,
        counts)`` the statistic of each resample, for counts (R, N) (e.g. AURC,
        ``aurc_statistic``); optionally ``batch(states)``, a function of counts (R, N)
        giving (R, runs) for all the runs' states at once (the same numbers, faster).
    kind "generic": ``function(logits, labels)`` recomputed on every resample.
    """

    name: str
    kind: str
    prepare: Callable[[FloatArray, IntArray], object] | None = None
    function: Callable[[FloatArray, IntArray], float] | None = None
    resampled: Callable[[object, FloatArray], FloatArray] | None = None
    batch: Callable[[list[object]], Callable[[FloatArray], FloatArray]] | None = None

    def renamed(self, name: str) -> Statistic:
        """The same statistic under another name (e.g. "nll_ts" for temperature-scaled
        logits passed in a second call)."""
        return replace(self, name=name)


def _accuracy_terms(z: FloatArray, y: IntArray) -> FloatArray:
    # argmax of the probabilities, as metrics.accuracy: where two top logits differ by less
    # than the rounding of exp(), softmax ties them and the lower index wins.
    return (softmax(z).argmax(axis=1) == y).astype(np.float64)


def _nll_terms(z: FloatArray, y: IntArray) -> FloatArray:
    return -log_softmax(z)[np.arange(z.shape[0]), y]


def _brier_terms(z: FloatArray, y: IntArray) -> FloatArray:
    d = softmax(z)
    d[np.arange(z.shape[0]), y] -= 1.0
    return np.sum(d * d, axis=1)


ACCURACY = Statistic("accuracy", "mean", prepare=_accuracy_terms)
"""Top-1 accuracy (``metrics.accuracy``): the mean of 1[argmax z_i = y_i]."""
NLL = Statistic("nll", "mean", prepare=_nll_terms)
"""NLL from logits (``metrics.nll_from_logits``): the mean of -log softmax(z_i)_{y_i}."""
BRIER = Statistic("brier", "mean", prepare=_brier_terms)
"""Multiclass Brier score (``metrics.brier``): the mean of sum_k (p_ik - 1[y_i = k])^2."""


def ece_statistic(n_bins: int = 15, name: str | None = None) -> Statistic:
    """Top-label ECE with ``n_bins`` equal-width bins (``metrics.ece``), resampled exactly."""
    n_bins = _check_n_bins(n_bins)

    def prepare(z: FloatArray, y: IntArray) -> tuple[IntArray, FloatArray, int, float]:
        p = softmax(z)
        conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
        groups = equal_width_bin_index(conf, n_bins)[:, None]
        return groups, (correct - conf)[:, None], n_bins, 1.0

    return Statistic(name or "ece", "binned", prepare=prepare)


def classwise_ece_statistic(n_bins: int = 15, name: str | None = None) -> Statistic:
    """Classwise ECE with ``n_bins`` equal-width bins (``metrics.classwise_ece``), exactly.

    Each example has one term per class k, in group k·M + bin(p_ik), with value
    1[y_i = k] - p_ik; the sum of absolute group sums is divided by K·N.
    """
    n_bins = _check_n_bins(n_bins)

    def prepare(z: FloatArray, y: IntArray) -> tuple[IntArray, FloatArray, int, float]:
        p = softmax(z)
        k = p.shape[1]
        groups = equal_width_bin_index(p, n_bins) + n_bins * np.arange(k)[None, :]
        values = (y[:, None] == np.arange(k)[None, :]).astype(np.float64) - p
        return groups, values, k * n_bins, 1.0 / k

    return Statistic(name or "classwise_ece", "binned", prepare=prepare)


def aurc_statistic(score: str = "msp", name: str | None = None) -> Statistic:
    """AURC of a confidence score (``selective.SCORES``: msp, maxlogit, pnorm) with ties
    broken in expectation (``selective.risk_coverage``), resampled exactly by
    ``selective.WeightedAURC`` without re-sorting."""
    from lsexp.analysis.selective import WeightedAURC, WeightedAURCBatch, confidence_scores

    def prepare(z: FloatArray, y: IntArray) -> WeightedAURC:
        return WeightedAURC.of(confidence_scores(z, score), z.argmax(axis=1) == y)

    return Statistic(name or f"aurc_{score}", "weighted", prepare=prepare,
                     resampled=lambda state, counts: state.aurc(counts),
                     batch=WeightedAURCBatch)  # fmt: skip


def generic_statistic(name: str, function: Callable[[FloatArray, IntArray], float]) -> Statistic:
    """Any statistic ``function(logits, labels) -> float``, recomputed on every resample.

    E.g. ``generic_statistic("adaptive_ece", lambda z, y: metrics.adaptive_ece(
    metrics.softmax(z), y))``: the equal-mass bins move with the resample, so it cannot use
    the fast paths. Cost: n_boot x S x M calls of ``function``.
    """
    return Statistic(name, "generic", function=function)


# ---------------------------------------------------------------------------------------
# The draws
# ---------------------------------------------------------------------------------------


def _check_int(x: int, name: str, low: int) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer) or x < low:
        raise ValueError(f"expected {name} to be an integer >= {low}, got {x!r}")
    return int(x)


def bootstrap_draws(
    n_seeds: int,
    n_examples: int,
    n_boot: int,
    seed: int = 0,
    examples: str = "shared",
    resample_seeds: bool = True,
) -> Iterator[tuple[IntArray, NDArray[np.int32]]]:
    """The resamples, in blocks: (seed_index (b, S), counts (b, S, N)) per block of b <= 250.

    seed_index[r, j] is the seed in slot j of replicate r (drawn with replacement; with
    ``resample_seeds`` False, seed j itself); counts[r, j, i] how often test example i is
    drawn for that slot (N draws with replacement). With examples "shared" the counts of
    every slot of a replicate are the same array. ``np.random.default_rng(seed)`` drives
    everything, block by block, so the draws depend only on the arguments, and the example
    counts do not depend on ``resample_seeds``.
    """
    s, n = _check_int(n_seeds, "n_seeds", 1), _check_int(n_examples, "n_examples", 1)
    n_boot = _check_int(n_boot, "n_boot", 1)
    if examples not in EXAMPLE_SCHEMES:
        raise ValueError(f"expected examples in {EXAMPLE_SCHEMES}, got {examples!r}")
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, _BLOCK):
        b = min(_BLOCK, n_boot - start)
        seed_index = rng.integers(0, s, size=(b, s))
        if not resample_seeds:
            seed_index = np.broadcast_to(np.arange(s), (b, s))
        slots = 1 if examples == "shared" else s
        picks = rng.integers(0, n, size=(b * slots, n))
        flat = (picks + n * np.arange(b * slots)[:, None]).ravel()
        counts = np.bincount(flat, minlength=b * slots * n).astype(np.int32)
        counts = counts.reshape(b, slots, n)
        if slots == 1:
            counts = np.broadcast_to(counts, (b, s, n))
        yield seed_index, counts


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """One statistic of M methods x S seeds, at full data and under the resamples."""

    statistic: str
    methods: tuple[Hashable, ...]
    seeds: tuple[Hashable, ...]
    per_run: FloatArray = field(repr=False)
    """(M, S) the statistic of each run on the whole test set."""
    replicates: FloatArray = field(repr=False)
    """(B, M) per replicate, each method's mean over the drawn seeds on the drawn examples."""
    n_boot: int
    seed: int
    examples: str
    resample_seeds: bool = True

    @property
    def estimate(self) -> FloatArray:
        """(M,) each method's mean over seeds on the whole test set."""
        return self.per_run.mean(axis=1)

    def _index(self, method: Hashable) -> int:
        try:
            return self.methods.index(method)
        except ValueError:
            raise KeyError(f"unknown method {method!r}; have {list(self.methods)}") from None

    def interval(self, method: Hashable, level: float = LEVEL) -> tuple[float, float]:
        """Percentile interval of one method's seed-mean (Efron & Tibshirani 1993, ch. 13)."""
        r = self.replicates[:, self._index(method)]
        lo, hi = np.quantile(r, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
        return float(lo), float(hi)

    def difference(self, a: Hashable, b: Hashable) -> Difference:
        """The paired difference (method a) - (method b) with its bootstrap distribution
        (method "bootstrap": percentile interval, for ``stats`` tests)."""
        i, j = self._index(a), self._index(b)
        return bootstrap_difference(
            float(self.estimate[i] - self.estimate[j]),
            self.replicates[:, i] - self.replicates[:, j],
            n=len(self.seeds),
        )

    def combined_difference(self, a: Hashable, b: Hashable) -> Difference:
        """(method a) - (method b) as ``stats.combined_difference``: the t over the per-seed
        differences plus this result's test-set variance (needs ``resample_seeds=False``)."""
        if self.resample_seeds:
            raise ValueError("combined_difference needs a bootstrap with resample_seeds=False")
        i, j = self._index(a), self._index(b)
        return combined_difference(
            self.per_run[i] - self.per_run[j], self.replicates[:, i] - self.replicates[:, j]
        )


# ---------------------------------------------------------------------------------------
# The bootstrap
# ---------------------------------------------------------------------------------------


def _as_runs(logits: ArrayLike | Sequence[Sequence[ArrayLike]], labels: ArrayLike):
    """(M, S, N, K) float64 logits and (N,) labels, validated."""
    if isinstance(logits, np.ndarray):
        z = logits
    else:
        rows = [[_as_2d_float(x, "logits") for x in row] for row in logits]
        if not rows or any(len(r) != len(rows[0]) for r in rows) or not rows[0]:
            raise ValueError("expected logits as M methods x S seeds (same S for every method)")
        shapes = {x.shape for r in rows for x in r}
        if len(shapes) != 1:
            raise ValueError(f"expected one (N, K) shape for every run, got {sorted(shapes)}")
        z = np.stack([np.stack(r) for r in rows])
    if z.ndim != 4:
        raise ValueError(f"expected logits of shape (M, S, N, K), got shape {z.shape}")
    z = z.astype(np.float64, copy=False)
    if not np.all(np.isfinite(z)):
        raise ValueError("expected finite logits")
    y = _as_labels(labels, z.shape[2], z.shape[3])
    return z, y


def _binned_design(stat: Statistic, z: FloatArray, y: IntArray):
    """Sparse (N, M·S·G) matrix of per-group terms of a binned statistic, G, scale."""
    m, s, n = z.shape[:3]
    rows, cols, vals = [], [], []
    n_groups, scale = 0, 1.0
    for a in range(m):
        for b in range(s):
            groups, values, n_groups, scale = stat.prepare(z[a, b], y)
            rows.append(np.repeat(np.arange(n), groups.shape[1]))
            cols.append(((a * s + b) * n_groups + groups).ravel())
            vals.append(values.ravel())
    design = csc_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, m * s * n_groups),
    )  # duplicate (row, col) entries are summed, as the group sums are
    return design, n_groups, scale


class _Scorer:
    """Scores every statistic of every run under a block of count vectors, batched: one
    dense matrix product for all "mean" statistics, one sparse product for all "binned"."""

    def __init__(self, statistics: Sequence[Statistic], z: FloatArray, y: IntArray) -> None:
        self.statistics, self.z, self.y = list(statistics), z, y
        m, s, n = z.shape[:3]
        self.mean = [i for i, st in enumerate(statistics) if st.kind == "mean"]
        self.binned = [i for i, st in enumerate(statistics) if st.kind == "binned"]
        for st in statistics:
            if st.kind not in ("mean", "binned", "weighted", "generic"):
                raise ValueError(f"unknown statistic kind {st.kind!r}")
        terms = [
            [[statistics[i].prepare(z[a, b], y) for b in range(s)] for a in range(m)]
            for i in self.mean
        ]
        # (N, n_mean·M·S), Fortran order: the columns of one statistic are contiguous.
        self.terms = np.asarray(terms, dtype=np.float64).reshape(-1, n).T
        designs = [_binned_design(statistics[i], z, y) for i in self.binned]
        self.groups = [(g, scale) for _, g, scale in designs]
        self.design = hstack([d for d, _, _ in designs], format="csc") if designs else None
        self.states = {
            i: [[st.prepare(z[a, b], y) for b in range(s)] for a in range(m)]
            for i, st in enumerate(statistics) if st.kind == "weighted"
        }  # fmt: skip
        # all runs of a statistic at once where it can (row-major: method, then seed)
        self.batches = {
            i: statistics[i].batch([state for row in states for state in row])
            for i, states in self.states.items() if statistics[i].batch is not None
        }  # fmt: skip

    def score(self, counts: FloatArray) -> list[FloatArray]:
        """(R, M, S) per statistic, for R count vectors (R, N) that each sum to N."""
        m, s, n = self.z.shape[:3]
        r = counts.shape[0]
        out: list[FloatArray | None] = [None] * len(self.statistics)
        if self.mean:
            means = (counts @ self.terms / n).reshape(r, len(self.mean), m, s)
            for k, i in enumerate(self.mean):
                out[i] = means[:, k]
        if self.design is not None:
            sums = counts @ self.design
            start = 0
            for i, (g, scale) in zip(self.binned, self.groups, strict=True):
                block = sums[:, start : start + m * s * g].reshape(r, m, s, g)
                out[i] = np.abs(block).sum(axis=3) * (scale / n)
                start += m * s * g
        for i, states in self.states.items():
            if i in self.batches:
                out[i] = self.batches[i](counts).reshape(r, m, s)
                continue
            fn = self.statistics[i].resampled
            out[i] = np.stack([np.stack([fn(st, counts) for st in row], axis=1)
                               for row in states], axis=1)  # fmt: skip
        for i, st in enumerate(self.statistics):
            if st.kind == "generic":
                out[i] = self._generic(st, counts)
        return out  # type: ignore[return-value]

    def _generic(self, st: Statistic, counts: FloatArray) -> FloatArray:
        m, s, n = self.z.shape[:3]
        out = np.empty((counts.shape[0], m, s))
        for i, row in enumerate(counts):
            idx = np.repeat(np.arange(n), row.astype(np.int64))
            for a in range(m):
                for b in range(s):
                    out[i, a, b] = st.function(self.z[a, b][idx], self.y[idx])
        return out


def hierarchical_bootstrap(
    logits: ArrayLike | Sequence[Sequence[ArrayLike]],
    labels: ArrayLike,
    statistics: Sequence[Statistic],
    *,
    methods: Sequence[Hashable] | None = None,
    seeds: Sequence[Hashable] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    examples: str = "shared",
    resample_seeds: bool = True,
    jobs: int = 1,
) -> dict[str, BootstrapResult]:
    """Resample seeds, then test examples (the same for every method), and score statistics.

    ``logits``: (M, S, N, K), or M lists of S (N, K) arrays: run (method m, seed s) on the
    one test set whose true labels are ``labels`` (N,). Only complete grids: pass the seeds
    finished at every method being compared. ``methods`` and ``seeds`` name the axes (default
    0 .. M-1 and 0 .. S-1). See the module docstring for the scheme and ``examples``.

    Returns {statistic name: ``BootstrapResult``}. For a replicate with drawn seeds s_1..s_S
    and example counts w (per slot for "per_seed"), a method's value is
    (1/S) sum_j stat(run (m, s_j) on the examples w_j); ``BootstrapResult.difference(a, b)``
    gives the paired difference as a ``stats.Difference``.

    ``jobs`` > 1 scores the methods in that many worker processes (forked, one BLAS thread
    each), every jobs-th method each: the draws do not depend on the methods,
    so the results are those of one process up to rounding in the last bits (the matrix
    products are blocked differently; tests/test_bootstrap.py).
    """
    z, y = _as_runs(logits, labels)
    m, s, n, _ = z.shape
    methods = tuple(range(m)) if methods is None else tuple(methods)
    seeds = tuple(range(s)) if seeds is None else tuple(seeds)
    if len(methods) != m or len(seeds) != s:
        raise ValueError(f"expected {m} method names and {s} seed names")
    n_boot = _check_int(n_boot, "n_boot", 1)
    jobs = min(_check_int(jobs, "jobs", 1), m)
    names = [stat.name for stat in statistics]
    if len(set(names)) != len(names):
        raise ValueError(f"expected distinct statistic names, got {names}")
    args = (y, statistics, n_boot, seed, examples, resample_seeds)
    if jobs > 1 and can_fork():
        per_run, reps = _in_processes(z, args, jobs)
    else:
        per_run, reps = _score_all(z, *args)
    return {
        stat.name: BootstrapResult(
            stat.name, methods, seeds, pr, rep, n_boot, seed, examples, resample_seeds
        )
        for stat, pr, rep in zip(statistics, per_run, reps, strict=True)
    }


def default_jobs(n_runs: int) -> int:
    """Worker processes worth using for a bootstrap of `n_runs` runs: the CPUs this
    process may use, or 1 for grids below ``parallel.PARALLEL_MIN_RUNS``."""
    return available_cpus() if n_runs >= PARALLEL_MIN_RUNS else 1


_SHARED: tuple | None = None  # (z, args) for the forked workers of _in_processes


def _in_processes(z: FloatArray, args: tuple, jobs: int):
    """``_score_all`` over `jobs` processes, each on every jobs-th method (interleaved, so
    that costly methods, e.g. large α with many errors for the AURC, are spread out); the
    workers inherit z by fork (nothing large is pickled) and return their share."""
    global _SHARED
    shares = [np.arange(k, z.shape[0], jobs) for k in range(jobs)]
    _SHARED = (z, args)
    try:
        with process_pool(jobs) as pool:  # forked: the caller checked can_fork
            parts = list(pool.map(_score_share, shares))
    finally:
        _SHARED = None
    order = np.argsort(np.concatenate(shares))  # back to the methods' order
    per_run = [np.concatenate([p[0][k] for p in parts])[order] for k in range(len(parts[0][0]))]
    reps = [
        np.concatenate([p[1][k] for p in parts], axis=1)[:, order] for k in range(len(parts[0][1]))
    ]
    return per_run, reps


def _score_share(share: np.ndarray):
    assert _SHARED is not None
    z, args = _SHARED
    return _score_all(z[share], *args)


def _score_all(
    z: FloatArray,
    y: IntArray,
    statistics: Sequence[Statistic],
    n_boot: int,
    seed: int,
    examples: str,
    resample_seeds: bool,
) -> tuple[list[FloatArray], list[FloatArray]]:
    """Per statistic: (M, S) on the whole test set and (n_boot, M) replicates."""
    m, s, n, _ = z.shape
    scorer = _Scorer(statistics, z, y)
    per_run = [x[0] for x in scorer.score(np.ones((1, n)))]
    reps = [np.empty((n_boot, m)) for _ in statistics]
    shared = examples == "shared"
    start = 0
    for seed_index, counts in bootstrap_draws(s, n, n_boot, seed, examples, resample_seeds):
        b = seed_index.shape[0]
        slots = 1 if shared else s
        # Score every run on each slot's examples (one slot when shared) in one batch, then
        # take each slot's drawn seed: (b, slots, M, S) -> (b, M) per slot.
        flat = counts[:, :slots, :].reshape(b * slots, n).astype(np.float64)
        scored = [x.reshape(b, slots, m, s) for x in scorer.score(flat)]
        rows = np.arange(b)
        for k in range(len(statistics)):
            total = np.zeros((b, m))
            for j in range(s):
                total += scored[k][rows, 0 if shared else j, :, seed_index[:, j]]
            reps[k][start : start + b] = total / s
        start += b
    return per_run, reps
