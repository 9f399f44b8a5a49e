"""Selective classification from logits: risk-coverage curves, AURC, AUGRC, E-AURC and
coverage at a target risk, for three confidence scores. Pure float64 NumPy.

A selective classifier predicts argmax_k z_k when its confidence score is high enough and
abstains otherwise (Geifman & El-Yaniv 2017, "Selective Classification for Deep Neural
Networks", NeurIPS). Accepting the n examples from the most to the least confident gives,
after the first k accepted:

- coverage c_k = k / n;
- selective risk R_k = E_k / k, with E_k the number of errors among the k accepted;
- generalized risk G_k = E_k / n, errors among the accepted over all examples (Traub et al.
  2024, "Overcoming Common Flaws in the Evaluation of Selective Classification Systems",
  NeurIPS, sec. 3).

Ties in the score. Examples with equal scores cannot be separated by a threshold, and any
order among them is arbitrary. This module breaks ties *in expectation*: within a run of
tied examples, E_k grows linearly from its value before the run to its value after it,
which is the mean of E_k over all orders of the run. AURC and AUGRC, being linear in E_k,
are then exactly their average over uniformly random tie-breaking, and they depend only on
the order of the scores (invariant to any strictly increasing transform of them).
Coverage at a target risk is taken only at the ends of tied runs, the coverages that a
threshold on the score can realise. Without ties every k is such an end and nothing changes.

Scores (``SCORES``), all computed from the logits of the run:

- ``msp``: maximum softmax probability (Hendrycks & Gimpel 2017, "A Baseline for Detecting
  Misclassified and Out-of-Distribution Examples in Neural Networks", ICLR);
- ``maxlogit``: max_k z_k (Hendrycks et al. 2022, "Scaling Out-of-Distribution Detection
  for Real-World Settings", ICML);
- ``pnorm``: the max of the centred logits divided by their p-norm, p = 2 (Cattelan & Silva
  2024, "How to Fix a Broken Confidence Estimator: Evaluating Post-hoc Methods for Selective
  Classification with Deep Neural Networks", UAI), the logit normalisation that Xia et al.
  2025 ("Towards Understanding Why Label Smoothing Degrades Selective Classification and How
  to Fix It", ICLR) apply to label-smoothed models. See ``pnorm_score``.

Definitions were checked against TorchUncertainty (ENSTA-U2IS-AI/torch-uncertainty,
``metrics/classification/risk_coverage.py``, read at v0.8.0+10, Jan 2026); the differences
are stated in each function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma

from lsexp.analysis.metrics import FloatArray, _as_2d_float, _as_labels
from lsexp.registry import by_name

__all__ = [
    "PNORM_GRID",
    "PNORM_P",
    "RISK_TARGETS",
    "SCORES",
    "RiskCoverage",
    "Score",
    "confidence_scores",
    "max_logit_score",
    "msp_score",
    "oracle_aurc",
    "oracle_aurc_asymptotic",
    "pnorm_score",
    "risk_coverage",
    "select_pnorm_p",
    "selective_metrics",
]

PNORM_P = 2.0
"""The p of the ``pnorm`` score (see ``pnorm_score``)."""

PNORM_GRID = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)
"""Candidate p for ``select_pnorm_p``: Cattelan & Silva's grid 0..9 without p = 0."""

RISK_TARGETS = (0.01, 0.05)
"""Target risks of ``selective_metrics``' coverage-at-risk numbers (1 % and 5 %)."""


# ---------------------------------------------------------------------------------------
# Confidence scores: higher means more confident; only their order matters here
# ---------------------------------------------------------------------------------------


def _logits_k2(logits: ArrayLike) -> FloatArray:
    z = _as_2d_float(logits, "logits")
    if z.shape[1] < 2:
        raise ValueError(f"expected at least 2 classes for a confidence score, got {z.shape}")
    return z


def msp_score(logits: ArrayLike) -> FloatArray:
    """Maximum softmax probability, as its log-odds log(p_max / (1 - p_max)), in float64.

    p_max = max_k softmax(z)_k is the confidence of Hendrycks & Gimpel 2017. Its log-odds is
    a strictly increasing function of it, so it ranks the examples exactly as p_max does,
    but it does not round to 1.0: for a logit margin above ~37, p_max is 1.0 in float64 and
    all such examples would tie. log-odds = -log sum_{j != k*} exp(z_j - z_k*), evaluated
    relative to the second-largest logit so it stays finite for any finite logits.
    (TorchUncertainty ranks the float probabilities, where those ties are broken by sort
    order.) To score calibrated probabilities instead, pass ``probs.max(axis=1)`` to
    ``risk_coverage``.

    >>> msp_score([[0.0, 0.0], [2.0, 0.0]]).round(6).tolist()
    [0.0, 2.0]
    """
    z = _logits_k2(logits)
    rows = np.arange(z.shape[0])
    top = z.argmax(axis=1)
    rest = z.copy()
    rest[rows, top] = -np.inf
    second = rest.max(axis=1)
    log_rest = second + np.log(np.exp(rest - second[:, None]).sum(axis=1))
    return z[rows, top] - log_rest


def max_logit_score(logits: ArrayLike) -> FloatArray:
    """Max logit max_k z_k (Hendrycks et al. 2022), in float64.

    >>> max_logit_score([[1.0, 3.0], [0.5, -2.0]]).tolist()
    [3.0, 0.5]
    """
    return _logits_k2(logits).max(axis=1)


def _check_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float | np.integer | np.floating):
        raise ValueError(f"expected a real p >= 1, got {p!r}")
    p = float(p)
    if not p >= 1.0:  # also rejects NaN
        raise ValueError(f"expected p >= 1 (a norm), got {p!r}")
    return p


def pnorm_score(logits: ArrayLike, p: float = PNORM_P) -> FloatArray:
    """MaxLogit-pNorm: max_k (z_k - mean(z)) / ||z - mean(z)||_p (Cattelan & Silva 2024).

    Cattelan & Silva's reference code (lfpc/FixSelectiveClassification, ``post_hoc.py``)
    centres the logits, divides them by their p-norm and takes the max. This is also the
    ranking of the max softmax of the normalised logits u = (z - mean z) / ||z - mean z||_p
    at a high temperature: softmax(u / tau)_k ~ (1 + u_k / tau) / K as tau -> inf, so the max
    softmax orders examples by max_k u_k. (Their earlier "p-NormSoftmax" takes the max
    softmax of u / tau at a temperature tau tuned on held-out data; their final estimator
    drops tau, as here.)

    Choice of p. Cattelan & Silva pick p from 0..9 on held-out data by AURC, falling back to
    the MSP when no p beats it (``select_pnorm_p`` does the grid search without the
    fallback). The ``pnorm`` score here uses a fixed p = 2, the Euclidean norm, which needs
    no validation split, is the same for every run and every alpha, and so leaves nothing
    tuned that could differ between the label-smoothing strengths being compared. Xia et al.
    2025 use this normalisation to recover the selective classification lost to label
    smoothing; this module does not reproduce their tuning of p.

    A row whose logits are all equal has a zero norm; its score is 0 (the lowest possible
    value is 0 only there: otherwise max_k u_k > 0).

    >>> pnorm_score([[3.0, 0.0, 0.0]], p=2).round(6).tolist()  # (2, -1, -1) / sqrt(6)
    [0.816497]
    """
    z = _logits_k2(logits)
    p = _check_p(p)
    centred = z - z.mean(axis=1, keepdims=True)
    top = centred.max(axis=1)
    # Divide by the max |u_k| first, so |.|^p cannot overflow for large logits or p.
    scale = np.abs(centred).max(axis=1)
    safe = np.where(scale > 0.0, scale, 1.0)
    ratio = np.abs(centred) / safe[:, None]
    norm = np.ones_like(scale) if math.isinf(p) else np.sum(ratio**p, axis=1) ** (1.0 / p)
    # norm >= 1 wherever scale > 0 (the largest ratio is 1); elsewhere the row is all 0.
    return np.where(scale > 0.0, (top / safe) / np.maximum(norm, 1.0), 0.0)


def select_pnorm_p(
    val_logits: ArrayLike, val_labels: ArrayLike, grid: Sequence[float] = PNORM_GRID
) -> float:
    """The p in ``grid`` whose ``pnorm_score`` has the lowest AURC on validation logits.

    Cattelan & Silva 2024's grid search (``optimize.p`` in their code), over p = 1..9 by
    default; ties go to the smaller p. Their p = 0 (dividing by the count of non-zero
    logits, i.e. by K) and their fallback to the MSP are left out: this returns a p.
    """
    z = _logits_k2(val_logits)
    y = _as_labels(val_labels, *z.shape)
    correct = z.argmax(axis=1) == y
    ps = [_check_p(v) for v in grid]
    if not ps:
        raise ValueError("expected a non-empty grid of p values")
    aurcs = [risk_coverage(pnorm_score(z, v), correct).aurc for v in ps]
    return ps[int(np.argmin(aurcs))]


@dataclass(frozen=True)
class Score:
    """One entry of ``SCORES``: a name, a label for tables and figures, and the score."""

    name: str
    label: str
    citation: str
    fn: Callable[[ArrayLike], FloatArray]


SCORES: dict[str, Score] = by_name(
    Score(
        "msp",
        "max softmax probability",
        "Hendrycks & Gimpel 2017 (ICLR)",
        msp_score,
    ),
    Score(
        "maxlogit",
        "max logit",
        "Hendrycks et al. 2022 (ICML)",
        max_logit_score,
    ),
    Score(
        "pnorm",
        "max p-norm-normalised logit (p = 2)",
        "Cattelan & Silva 2024 (UAI); Xia et al. 2025 (ICLR)",
        pnorm_score,
    ),
)
"""The three confidence scores by name, in the order tables list them."""


def confidence_scores(logits: ArrayLike, score: str) -> FloatArray:
    """(n,) scores of ``SCORES[score]`` for each row of logits (higher = more confident)."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose from {', '.join(SCORES)}")
    return SCORES[score].fn(logits)


# ---------------------------------------------------------------------------------------
# Risk-coverage curve and its summaries
# ---------------------------------------------------------------------------------------


def oracle_aurc(n: int, n_errors: int) -> float:
    """AURC of the oracle that accepts every correct example before any error, exactly.

    With m = n - r correct examples, the oracle's risk is 0 for k <= m and (k - m)/k after,
    so (Geifman, Uziel & El-Yaniv 2019, "Bias-Reduced Uncertainty Estimation for Deep Neural
    Classifiers", ICLR, sec. 3, for the same mean-of-risks AURC):

        AURC* = (1/n) sum_{k=m+1}^{n} (k - m)/k = (r - m (H_n - H_m)) / n,

    H_j the j-th harmonic number, H_n - H_m = digamma(n + 1) - digamma(m + 1). Geifman et al.
    approximate it by r/n + (1 - r/n) log(1 - r/n) (``oracle_aurc_asymptotic``); the exact
    sum keeps E-AURC >= 0 for every n. Differences are below 1/n.

    >>> round(oracle_aurc(4, 2), 6)  # risks 0, 0, 1/3, 2/4 -> (1/3 + 1/2) / 4
    0.208333
    """
    n, r = int(n), int(n_errors)
    if n < 1 or not 0 <= r <= n:
        raise ValueError(f"expected n >= 1 and 0 <= n_errors <= n, got n={n}, n_errors={r}")
    m = n - r
    if r == 0:
        return 0.0
    if m == 0:
        return 1.0
    return float((r - m * (digamma(n + 1) - digamma(m + 1))) / n)


def oracle_aurc_asymptotic(error_rate: float) -> float:
    """Geifman et al. 2019's closed form r + (1 - r) log(1 - r) for the oracle AURC.

    The large-n limit of ``oracle_aurc`` at error rate r = n_errors / n (the integral of
    max(0, 1 - (1 - r)/c) over coverage c in (0, 1]); 1 at r = 1.
    """
    r = float(error_rate)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"expected an error rate in [0, 1], got {error_rate!r}")
    return 1.0 if r == 1.0 else r + (1.0 - r) * math.log1p(-r)


@dataclass(frozen=True, eq=False)
class RiskCoverage:
    """The risk-coverage curve of one score on one set of predictions (arrays read-only).

    Index k - 1 holds the point after accepting the k most confident examples, k = 1..n,
    with ties broken in expectation (module docstring).
    """

    coverage: FloatArray
    """(n,) c_k = k / n."""
    risk: FloatArray
    """(n,) selective risk R_k = E_k / k (error rate among the accepted)."""
    generalized_risk: FloatArray
    """(n,) G_k = E_k / n (errors among the accepted over all examples)."""
    at_threshold: np.ndarray
    """(n,) bool: True where k ends a run of tied scores (a coverage a threshold realises)."""
    n: int
    n_errors: int

    @property
    def aurc(self) -> float:
        """Area under the risk-coverage curve: AURC = (1/n) sum_{k=1}^{n} R_k.

        The mean selective risk over the n coverages k/n, i.e. the right Riemann sum of the
        curve (Geifman et al. 2019, sec. 3; the code of Cattelan & Silva 2024 integrates the
        same points with the trapezoid rule from (0, 0), which is lower by R_n / (2n)).
        TorchUncertainty's ``AURC`` integrates the points k = 1..n with the trapezoid rule
        and divides by (1 - 1/n): (sum_k R_k - (R_1 + R_n)/2) / (n - 1), which differs by
        O(1/n) and is NaN for n = 1. In [0, 1]; lower is better.
        """
        return float(np.mean(self.risk))

    @property
    def augrc(self) -> float:
        """Area under the generalized risk-coverage curve: AUGRC = (1/n) sum_k G_k.

        Traub et al. 2024, sec. 3, as the mean of G_k = E_k / n over the coverages k/n. It
        equals (1/n^2) [(1 - AUROC) r m + r (r + 1)/2] for r errors and m = n - r correct
        examples, with AUROC the probability that a correct example outscores an error
        (ties count 1/2): Traub et al.'s reading of AUGRC as the average risk of an
        undetected failure. TorchUncertainty's ``AUGRC`` uses the trapezoid rule over
        k = 1..n divided by (1 - 1/n), as for its AURC. In [0, 1/2 + 1/(2n)]; lower is better.
        """
        return float(np.mean(self.generalized_risk))

    @property
    def oracle_aurc(self) -> float:
        """``oracle_aurc(n, n_errors)``: the lowest AURC any score can reach here."""
        return oracle_aurc(self.n, self.n_errors)

    @property
    def eaurc(self) -> float:
        """Excess AURC: E-AURC = AURC - AURC* (Geifman et al. 2019, sec. 3).

        AURC* is the exact oracle AURC of ``oracle_aurc`` (not its asymptotic form), so
        E-AURC >= 0 and is 0 for an ordering with every correct example first.
        """
        return self.aurc - self.oracle_aurc

    def summary(self, targets: Iterable[float] = RISK_TARGETS) -> dict[str, float]:
        """aurc, augrc, eaurc, oracle_aurc and coverage_at_{100 t:g}pct_risk per target."""
        out = {"aurc": self.aurc, "augrc": self.augrc, "eaurc": self.eaurc,
               "oracle_aurc": self.oracle_aurc}  # fmt: skip
        for t in targets:
            out[f"coverage_at_{100 * float(t):g}pct_risk"] = self.coverage_at_risk(t)
        return out

    def coverage_at_risk(self, target: float) -> float:
        """Largest coverage whose selective risk is at most ``target``.

        max { k/n : k ends a run of tied scores and E_k / k <= target }, or 0.0 if there is
        none (abstaining on everything is the only choice). The risk need not fall
        monotonically with coverage, so this is the largest such coverage anywhere on the
        curve, not the first crossing. As TorchUncertainty's ``CovAtxRisk``, except: (1) it
        returns NaN where no coverage qualifies, this returns 0.0, so that it can be
        averaged over seeds; (2) it considers every k of an arbitrary order of tied scores,
        this only the coverages a threshold realises; (3) it checks its answer against the
        wrong index (``admissible_risks[max_cov_at_risk]`` indexes the unflipped array with
        a position in the flipped one) and so returns NaN in some cases where a coverage
        qualifies, e.g. risks (1, 1/2, 1/3, 1/4) at target 0.3, where this returns 1.0.
        """
        t = float(target)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"expected a target risk in [0, 1], got {target!r}")
        ok = self.at_threshold & (self.risk <= t)
        if not ok.any():
            return 0.0
        return float(self.coverage[np.flatnonzero(ok)[-1]])


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def risk_coverage(scores: ArrayLike, correct: ArrayLike) -> RiskCoverage:
    """Risk-coverage curve: accept examples from the highest score down, ties in expectation.

    ``scores`` (n,) finite reals, higher = more confident; ``correct`` (n,) bool or 0/1,
    whether the prediction of each example is right. Sorted once (stable, descending); for a
    run of tied scores from position a to b (1-based), E_k for a <= k <= b is
    E_{a-1} + (k - a + 1) (E_b - E_{a-1}) / (b - a + 1).

    >>> rc = risk_coverage([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])
    >>> rc.risk.round(4).tolist(), round(rc.aurc, 4)  # risks 0, 1/2, 1/3, 1/2
    ([0.0, 0.5, 0.3333, 0.5], 0.3333)
    """
    s = np.asarray(scores)
    c = np.asarray(correct)
    if s.ndim != 1 or s.shape[0] < 1:
        raise ValueError(f"expected scores of shape (n,) with n >= 1, got shape {s.shape}")
    if c.shape != s.shape:
        raise ValueError(f"expected correct of shape {s.shape} (one per score), got {c.shape}")
    if not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)):
        raise ValueError(f"expected real scores, got dtype {s.dtype}")
    s = s.astype(np.float64, copy=False)
    if not np.all(np.isfinite(s)):
        raise ValueError("expected finite scores, got NaN or inf")
    if c.dtype != bool:
        if not np.all((c == 0) | (c == 1)):
            raise ValueError("expected correct to be bool or 0/1")
        c = c.astype(bool)
    n = s.shape[0]
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    errors = (~c[order]).astype(np.float64)
    cum = np.cumsum(errors)
    ends = np.append(s_sorted[1:] != s_sorted[:-1], True)  # k ends a run of tied scores
    end_pos = np.flatnonzero(ends)
    starts = np.append(0, end_pos[:-1] + 1)
    before = np.append(0.0, cum[end_pos[:-1]])
    size = end_pos - starts + 1
    run = np.repeat(np.arange(end_pos.size), size)
    within = np.arange(n) - starts[run] + 1
    # Exact at run ends: (delta * size) / size is delta for integers below 2^53.
    expected = before[run] + ((cum[end_pos] - before)[run] * within) / size[run]
    k = np.arange(1, n + 1, dtype=np.float64)
    return RiskCoverage(
        coverage=_readonly(k / n),
        risk=_readonly(expected / k),
        generalized_risk=_readonly(expected / n),
        at_threshold=_readonly(ends),
        n=n,
        n_errors=int(cum[-1]),
    )


def selective_metrics(
    logits: ArrayLike,
    labels: ArrayLike,
    score: str = "msp",
    targets: Iterable[float] = RISK_TARGETS,
) -> dict[str, float]:
    """Selective-classification numbers of one score on one set of logits and labels.

    The prediction is argmax_k z_k (ties to the lowest index, as ``metrics.accuracy``).
    Keys: aurc, augrc, eaurc, oracle_aurc, and coverage_at_{100 t:g}pct_risk for each
    target t (``coverage_at_1pct_risk``, ``coverage_at_5pct_risk`` by default). See
    ``RiskCoverage`` for each definition.
    """
    z = _logits_k2(logits)
    y = _as_labels(labels, *z.shape)
    return risk_coverage(confidence_scores(z, score), z.argmax(axis=1) == y).summary(targets)


# ---------------------------------------------------------------------------------------
# AURC under resampling weights (the bootstrap's fast form)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class WeightedAURC:
    """One run's scores, prepared once, for ``aurc``: the AURC of the same run on many
    resamples of its test examples at once (``bootstrap.aurc_statistic`` uses it).

    A resample is a vector of counts w_i (how often example i is drawn). Its risk-coverage
    curve accepts the drawn copies from the highest score down; copies of one example, and
    examples with equal scores, form one run of ties, broken in expectation as
    ``risk_coverage`` does. AURC = (1/N) sum_k E_k / k, N = sum_i w_i, E_k the expected
    errors among the first k. Swapping the sums, a wrong copy at position p adds 1/k for
    every k >= p, i.e. H_N - H_{p-1} (H_j the j-th harmonic number). In tie group g (groups
    in descending score) with c_g drawn copies, e_g of them wrong, after C'_g copies of
    higher score (C_g = C'_g + c_g), a wrong copy's position is uniform on C'_g + 1 .. C_g,
    so its expected term is H_N - (1/c_g) sum_{j=C'_g}^{C_g - 1} H_j, which is

        H_N - H_{C'_g} - (C_g (H_{C_g - 1} - H_{C'_g}) - (c_g - 1)) / c_g

    (using sum_{k=a+1}^{b-1} (b/k - 1) for the part above H_{C'_g}; c_g = 1 gives
    H_N - H_{C_g - 1}). AURC = (1/N) sum_g e_g times that: only the groups that hold a wrong
    example count (about the error rate times n of them), and C_g is the cumulative sum of
    the copies in each such group and the stretch of error-free groups before it. Those are
    sums of the counts over fixed sets of examples: one sparse product per block of
    resamples, and table lookups of H (counts are integers). Exact; no sorting per
    resample.
    """

    through: object
    """(n, M) sparse 0/1: the examples of each of the M groups that hold errors together
    with the error-free stretch just before it (their cumulative sum is C_g)."""
    group_examples: object
    """(n, M) sparse 0/1: the examples of each group that holds errors (c_g)."""
    error_examples: object
    """(n, M) sparse 0/1: the wrong examples of each of those groups (e_g)."""

    @classmethod
    def of(cls, scores: ArrayLike, correct: ArrayLike) -> WeightedAURC:
        from scipy.sparse import csc_array

        s = np.asarray(scores, dtype=np.float64)
        c = np.asarray(correct).astype(bool)
        if s.ndim != 1 or c.shape != s.shape or s.size < 1:
            raise ValueError(f"expected scores and correct of one shape (n,), got {s.shape}, "
                             f"{c.shape}")  # fmt: skip
        n = s.size
        order = np.argsort(-s, kind="stable")
        ss = s[order]
        group = np.cumsum(np.append(False, ss[1:] != ss[:-1]))  # tie group of each position
        wrong = ~c[order]
        has_error = np.zeros(group[-1] + 1, bool)
        has_error[group[wrong]] = True
        err_groups = np.flatnonzero(has_error)
        m = err_groups.size
        # the first group with errors at or after each group: its column in `through`
        # (m for the stretch after the last one, which no column needs)
        upto = np.searchsorted(err_groups, group)
        keep = upto < m
        through = csc_array((np.ones(int(keep.sum())), (order[keep], upto[keep])), shape=(n, m))
        in_group = has_error[group]
        col = upto[in_group]  # a position in an error group: that group's column
        group_examples = csc_array((np.ones(col.size), (order[in_group], col)), shape=(n, m))
        pos = np.flatnonzero(wrong)
        errors = csc_array((np.ones(pos.size), (order[pos], upto[pos])), shape=(n, m))
        return cls(through, group_examples, errors)

    def aurc(self, counts: ArrayLike) -> FloatArray:
        """(R,) AURC of each resample, for counts (R, n) of non-negative integers (each row
        summing to at least 1). A row of ones gives ``risk_coverage(...).aurc`` exactly."""
        w = np.asarray(counts, dtype=np.float64)
        return WeightedAURCBatch([self])(w[None, :] if w.ndim == 1 else w)[:, 0]


_CHUNK_ROWS = (1 << 24) // 250  # rows (3 per group with errors) of one chunk's sparse matrix
_CACHE_COLUMNS = 8  # resamples scored together: one run's arrays then stay in cache


class WeightedAURCBatch:
    """The AURC of many runs (``WeightedAURC`` states on one test set) under the same
    resamples: ``batch(counts)`` is (R, runs), column k equal to ``states[k].aurc(counts)``.

    The three sums per group with errors (``WeightedAURC``: through, in the group, wrong)
    of every run are one sparse product per chunk of runs, (3 x groups, n) @ (n, r), for
    ``_CACHE_COLUMNS`` resamples at a time, with the counts transposed once for all runs;
    each run's sums are then contiguous rows, and its cumulative sums run down the rows.
    A chunk holds at most ``_CHUNK_ROWS`` rows (or one run), bounding the matrix's memory.
    """

    def __init__(self, states: Sequence[WeightedAURC], rows_per_chunk: int | None = None):
        from scipy.sparse import vstack

        if not states:
            raise ValueError("expected at least one WeightedAURC state")
        self.n = states[0].through.shape[0]
        if any(st.through.shape[0] != self.n for st in states):
            raise ValueError("expected the states of one test set (the same n)")
        limit = rows_per_chunk or _CHUNK_ROWS
        self.chunks: list[tuple[object, list[tuple[int, int]]]] = []
        mats: list[object] = []
        spans: list[tuple[int, int]] = []
        rows = 0
        for st in states:
            m = st.through.shape[1]
            if mats and rows + 3 * m > limit:
                self.chunks.append((vstack(mats, format="csr"), spans))
                mats, spans, rows = [], [], 0
            mats += [st.through.T, st.group_examples.T, st.error_examples.T]
            spans.append((rows, m))
            rows += 3 * m
        self.chunks.append((vstack(mats, format="csr"), spans))
        self.size = len(states)

    def __call__(self, counts: ArrayLike) -> FloatArray:
        w = np.asarray(counts, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != self.n:
            raise ValueError(f"expected counts of shape (R, {self.n}), got {w.shape}")
        wt = np.ascontiguousarray(w.T)  # (n, R): one transpose for every run
        total = wt.sum(axis=0)  # (R,) N of each resample
        harmonic = np.concatenate(([0.0], np.cumsum(1.0 / np.arange(1, int(total.max()) + 1))))
        h_total = harmonic[total.astype(np.intp)]
        out = np.empty((w.shape[0], self.size))
        for lo in range(0, w.shape[0], _CACHE_COLUMNS):  # a few resamples at a time: in cache
            cols = slice(lo, lo + _CACHE_COLUMNS)
            part = np.ascontiguousarray(wt[:, cols])
            k = 0
            for matrix, spans in self.chunks:
                sums = matrix @ part  # (rows, r)
                for a, m in spans:
                    through, c, e = (
                        sums[a : a + m],
                        sums[a + m : a + 2 * m],
                        sums[a + 2 * m : a + 3 * m],
                    )
                    out[cols, k] = (
                        _aurc_of_sums(through, c, e, harmonic, h_total[cols]) / total[cols]
                    )
                    k += 1
        return out


def _aurc_of_sums(through: FloatArray, c: FloatArray, e: FloatArray, harmonic: FloatArray,
                  h_total: FloatArray) -> FloatArray:  # fmt: skip
    """(R,) N times the AURC, from one run's sums (M, R) per group with errors: the drawn
    copies up to and including the group (``through``, before the cumulative sum), in it
    (``c``) and its drawn errors (``e``); see ``WeightedAURC``."""
    end = np.cumsum(through, axis=0)  # C_g: exact, sums of integers below 2^53
    start = end - c  # C'_g
    h_start = harmonic[start.astype(np.intp)]
    h_last = harmonic[np.maximum(end - 1, 0).astype(np.intp)]  # H_{C_g - 1}
    # a group not drawn (c = 0) has e = 0: any finite value will do for its term
    inside = (end * (h_last - h_start) - (c - 1)) / np.maximum(c, 1)
    return (e * (h_total - h_start - inside)).sum(axis=0)
