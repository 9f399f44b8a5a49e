"""Accuracy and calibration metrics: pure NumPy functions of (probs or logits, labels).

Everything is computed in float64, whatever the input dtype, so that metrics recomputed
from saved float32 logits are reproducible to the last digit. No torch, no device, no I/O.

Shapes: ``probs`` and ``logits`` are (N, K) arrays (N samples, K classes); ``labels`` is an
(N,) integer array of true classes in [0, K). Labels are the true, unsmoothed labels:
label smoothing is a training setting only (see docs/architecture.md, "Conventions").

Binning conventions (docs/architecture.md, "Conventions"), each in one place
(``equal_width_bin_index``, ``equal_mass_bin_index``; every binned metric bins through them):

- confidence = max probability; predicted class = ``np.argmax`` (ties go to the lowest index);
- M equal-width bins, bin b = (b/M, (b+1)/M]; a value exactly on an edge goes to the lower
  bin, 0 goes to the first bin and 1.0 to the last. Edges are ``np.arange(M + 1) / M``, so
  each edge is the float nearest to b/M (the same float as the literal ``0.2`` for M=5);
- M equal-mass bins: the sorted values cut into min(M, N) groups of ``np.array_split``'s
  sizes, a cut inside a run of tied values moved to the end of the run (ties never split);
- bins are weighted by their fraction of samples, and empty bins count zero.

When printing an ECE, print the bin count and scheme next to it (e.g. "ECE (15 equal-width
bins)"): the number means little without them. ``calibration_panel`` computes the same
calibration error several ways (bins, bin counts, classwise, smooth ECE without bins, the
debiased l2 error), and ``ece_noise_floor`` / ``calibration_noise_floor`` what a perfectly
calibrated model with the same probabilities would score: the plug-in ECE is not 0 there,
and differences below that floor are noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "PANEL_BINS",
    "NoiseFloor",
    "ReliabilityBins",
    "accuracy",
    "adaptive_ece",
    "all_metrics",
    "brier",
    "calibration_panel",
    "calibration_noise_floor",
    "calibration_panel_labels",
    "class_separation_r2",
    "classwise_ece",
    "debiased_ece",
    "debiased_l2_ce",
    "ece",
    "ece_bootstrap_interval",
    "ece_noise_floor",
    "equal_mass_bin_index",
    "equal_width_bin_index",
    "log_softmax",
    "logit_gap",
    "mce",
    "mean_confidence",
    "nll",
    "nll_from_logits",
    "optimal_logit_gap",
    "overconfidence",
    "reliability_bins",
    "smooth_ece",
    "smooth_ece_bandwidth",
    "softmax",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_TINY = np.finfo(np.float64).tiny


# ---------------------------------------------------------------------------------------
# Input validation: errors say "expected X, got Y"
# ---------------------------------------------------------------------------------------


def _as_2d_float(x: ArrayLike, name: str) -> FloatArray:
    """``x`` as a float64 (N, K) array with N >= 1, K >= 1 and only finite values."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"expected {name} of shape (N, K), got shape {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"expected at least one sample in {name}, got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"expected at least one class in {name}, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"expected {name} with a real dtype, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    n_bad = int(np.count_nonzero(~np.isfinite(arr)))
    if n_bad:
        raise ValueError(f"expected finite {name}, got {n_bad} non-finite values (NaN or inf)")
    return arr


def _as_probs(probs: ArrayLike) -> FloatArray:
    p = _as_2d_float(probs, "probs")
    lo, hi = float(p.min()), float(p.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"expected probs in [0, 1], got values in [{lo!r}, {hi!r}]")
    return p


def _as_labels(labels: ArrayLike, n: int, k: int) -> IntArray:
    """``labels`` as an int64 (n,) array with values in [0, k)."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"expected labels of shape (N,), got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"expected {n} labels (one per row of probs/logits), got {y.shape[0]}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"expected integer labels, got dtype {y.dtype}")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= k:
        raise ValueError(f"expected labels in [0, {k}), got values in [{lo}, {hi}]")
    return y.astype(np.int64, copy=False)


def _check_n_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"expected n_bins to be an integer >= 1, got {n_bins!r}")
    return int(n_bins)


def _probs_labels(probs: ArrayLike, labels: ArrayLike) -> tuple[FloatArray, IntArray]:
    p = _as_probs(probs)
    return p, _as_labels(labels, *p.shape)


# ---------------------------------------------------------------------------------------
# Softmax
# ---------------------------------------------------------------------------------------


def log_softmax(logits: ArrayLike) -> FloatArray:
    """Log-softmax over the last axis, in float64.

    log_softmax(z)_k = (z_k - m) - log sum_j exp(z_j - m), with m = max_j z_j. Subtracting
    the row max keeps every exp() in (0, 1], so logits of magnitude 1e4 stay finite.

    >>> log_softmax([[1e4, 0.0]]).round(6).tolist()
    [[0.0, -10000.0]]
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim < 1:
        raise ValueError(f"expected logits with at least one axis, got shape {z.shape}")
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: ArrayLike) -> FloatArray:
    """Softmax over the last axis, in float64: exp(z_k - m) / sum_j exp(z_j - m), m = max z.

    >>> softmax([[0.0, 0.0, 0.0, 0.0, 0.0]]).tolist()
    [[0.2, 0.2, 0.2, 0.2, 0.2]]
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim < 1:
        raise ValueError(f"expected logits with at least one axis, got shape {z.shape}")
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------
# Unbinned metrics
# ---------------------------------------------------------------------------------------


def accuracy(probs: ArrayLike, labels: ArrayLike) -> float:
    """Top-1 accuracy: (1/N) sum_i 1[argmax_k p_ik = y_i]; ties go to the lowest index."""
    p, y = _probs_labels(probs, labels)
    return float(np.mean(p.argmax(axis=1) == y))


def nll(probs: ArrayLike, labels: ArrayLike) -> float:
    """Negative log-likelihood of the true labels: -(1/N) sum_i log p_{i, y_i}.

    p_{i,y_i} is clipped below at the smallest normal float64 (~2.2e-308), so a zero
    probability costs about 708 nats instead of inf. Prefer ``nll_from_logits`` when logits
    are at hand: it is exact where the probability underflows.
    """
    p, y = _probs_labels(probs, labels)
    p_true = p[np.arange(p.shape[0]), y]
    return float(-np.mean(np.log(np.maximum(p_true, _TINY))))


def nll_from_logits(logits: ArrayLike, labels: ArrayLike) -> float:
    """Negative log-likelihood from logits: -(1/N) sum_i log_softmax(z_i)_{y_i}, exactly.

    Per sample, (m - z_y) + log sum_k exp(z_k - m) with m = max_k z_k: the same stable form
    as ``log_softmax``, evaluated only at the true class.
    """
    z = _as_2d_float(logits, "logits")
    y = _as_labels(labels, *z.shape)
    m = z.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(z - m).sum(axis=1))
    return float(np.mean((m[:, 0] - z[np.arange(z.shape[0]), y]) + log_sum))


def brier(probs: ArrayLike, labels: ArrayLike) -> float:
    """Multiclass Brier score (Brier 1950): (1/N) sum_i sum_k (p_ik - 1[y_i = k])^2.

    Brier, "Verification of forecasts expressed in terms of probability", Monthly Weather
    Review 78(1), 1950. Summed over classes, so it lies in [0, 2]: 0 for a one-hot correct
    forecast, 2 for a one-hot wrong one.
    """
    p, y = _probs_labels(probs, labels)
    diff = p.copy()
    diff[np.arange(p.shape[0]), y] -= 1.0
    return float(np.mean(np.sum(diff * diff, axis=1)))


def mean_confidence(probs: ArrayLike) -> float:
    """Mean top-1 confidence: (1/N) sum_i max_k p_ik."""
    return float(np.mean(_as_probs(probs).max(axis=1)))


def overconfidence(probs: ArrayLike, labels: ArrayLike) -> float:
    """Signed calibration gap: mean confidence - accuracy (> 0: over-confident on average).

    Unlike ECE, positive and negative gaps cancel here: this is the direction, not the size.
    """
    p, y = _probs_labels(probs, labels)
    return float(np.mean(p.max(axis=1)) - np.mean(p.argmax(axis=1) == y))


# ---------------------------------------------------------------------------------------
# Binned calibration metrics
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ReliabilityBins:
    """Equal-width binning of confidences against outcomes: what a reliability diagram draws.

    Arrays are read-only. For top-label binning (``reliability_bins``), ``confidence`` is the
    mean max-probability in each bin and ``accuracy`` the fraction of correct predictions;
    both are NaN where a bin is empty.
    """

    edges: FloatArray
    """(M + 1,) bin edges b/M; bin b is (edges[b], edges[b + 1]], bin 0 also holds 0."""
    counts: IntArray
    """(M,) number of samples in each bin."""
    confidence: FloatArray
    """(M,) mean confidence per bin, NaN where empty."""
    accuracy: FloatArray
    """(M,) mean outcome (accuracy) per bin, NaN where empty."""
    n_bins: int
    """M, the number of bins."""
    n: int
    """N, the number of samples binned."""

    @property
    def gaps(self) -> FloatArray:
        """(M,) |accuracy - confidence| per bin, NaN where empty."""
        return np.abs(self.accuracy - self.confidence)

    @property
    def ece(self) -> float:
        """sum_b (n_b / N) |acc_b - conf_b| over non-empty bins (empty bins count zero)."""
        filled = self.counts > 0
        return float(np.sum(self.counts[filled] / self.n * self.gaps[filled]))

    @property
    def mce(self) -> float:
        """max_b |acc_b - conf_b| over non-empty bins."""
        return float(np.max(self.gaps[self.counts > 0]))


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _equal_width_edges(n_bins: int) -> FloatArray:
    """(M + 1,) edges b/M, each the float nearest to b/M."""
    return np.arange(n_bins + 1, dtype=np.float64) / n_bins


def equal_width_bin_index(values: FloatArray, n_bins: int) -> IntArray:
    """Equal-width bin (0 .. M-1) of each value in [0, 1]: the single home of the convention.

    ``np.searchsorted(inner_edges, v, 'left')`` returns the b with edge_b < v <= edge_{b+1}:
    a value exactly on an edge goes to the lower bin, 0 to bin 0 and 1.0 to bin M-1.
    """
    return np.searchsorted(_equal_width_edges(n_bins)[1:-1], values, side="left")


def _binned_abs_sums(idx: IntArray, gaps: FloatArray, n_groups: int) -> FloatArray:
    """(R,) sum_b |sum_{i in b} gaps[r, i]| for bins ``idx`` ((N,), or (R, N): one per row).

    All R rows in one bincount: row r's bins are shifted by r * n_groups.
    """
    r = gaps.shape[0]
    flat = (idx + n_groups * np.arange(r)[:, None]).ravel()
    sums = np.bincount(flat, weights=gaps.ravel(), minlength=r * n_groups)
    return np.abs(sums.reshape(r, n_groups)).sum(axis=1)


def _equal_width_bins(values: FloatArray, outcomes: FloatArray, n_bins: int) -> ReliabilityBins:
    """Bin ``values`` in [0, 1] into M equal-width bins (b/M, (b+1)/M]; average per bin."""
    edges = _equal_width_edges(n_bins)
    idx = equal_width_bin_index(values, n_bins)
    counts = np.bincount(idx, minlength=n_bins)
    sum_values = np.bincount(idx, weights=values, minlength=n_bins)
    sum_outcomes = np.bincount(idx, weights=outcomes, minlength=n_bins)
    filled = counts > 0
    mean_values = np.full(n_bins, np.nan)
    mean_outcomes = np.full(n_bins, np.nan)
    mean_values[filled] = sum_values[filled] / counts[filled]
    mean_outcomes[filled] = sum_outcomes[filled] / counts[filled]
    return ReliabilityBins(
        edges=_readonly(edges),
        counts=_readonly(counts.astype(np.int64)),
        confidence=_readonly(mean_values),
        accuracy=_readonly(mean_outcomes),
        n_bins=n_bins,
        n=int(values.shape[0]),
    )


def equal_mass_bin_index(values: FloatArray, n_bins: int) -> IntArray:
    """Equal-mass bin (0, 1, ...) of each value; tied values always share a bin.

    The single home of the equal-mass convention, used by ``adaptive_ece`` and
    ``debiased_l2_ce``. Sort the values and cut them into G = min(M, N) consecutive groups
    with ``np.array_split`` (sizes differ by at most one). A cut that falls inside a run of
    equal values moves up to the end of the run, so the whole run joins the lower bin; cuts
    that then coincide, or reach the end, are dropped (fewer, larger bins). Bin g holds the
    values from the first value of group g up to, not including, the first value of group
    g + 1. Every bin is non-empty and the result does not depend on the order of the values.

    This is Kumar et al.'s ``get_equal_bins`` (p-lambda/verified_calibration: boundaries at
    the midpoints between groups, a value on a boundary to the lower bin) stated without
    midpoints, which can round onto the upper value when two values are adjacent floats.

    >>> equal_mass_bin_index(np.array([0.6, 0.7, 0.6, 0.8, 0.7, 0.7]), 3).tolist()
    [0, 1, 0, 2, 1, 1]
    """
    ordered = np.sort(values)
    n = ordered.shape[0]
    groups = min(n_bins, n)
    base, extra = divmod(n, groups)  # np.array_split: the first `extra` groups get one more
    sizes = base + (np.arange(groups) < extra)
    cuts = np.cumsum(sizes)[:-1]  # first sorted index of groups 1 .. G-1
    cuts = np.searchsorted(ordered, ordered[cuts - 1], side="right")  # past any tie run
    lows = ordered[np.unique(cuts[cuts < n])]  # first value of each bin after the first
    return np.searchsorted(lows, values, side="right")


def _equal_mass_ece(conf: FloatArray, correct: FloatArray, n_bins: int) -> float:
    """sum_g (n_g / N) |acc_g - conf_g| over the bins of ``equal_mass_bin_index``."""
    idx = equal_mass_bin_index(conf, n_bins)
    gap_sums = np.bincount(idx, weights=correct) - np.bincount(idx, weights=conf)
    # (n_g / N) |acc_g - conf_g| = |sum_g correct - sum_g conf| / N
    return float(np.sum(np.abs(gap_sums)) / conf.shape[0])


def _top_label(p: FloatArray, y: IntArray) -> tuple[FloatArray, FloatArray]:
    """(confidence, correct) per sample: max prob and 1.0 where argmax == label."""
    return p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)


def reliability_bins(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> ReliabilityBins:
    """Top-label reliability diagram data: per equal-width bin, count, mean confidence, accuracy.

    Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017,
    section 2. Bin b = (b/M, (b+1)/M] of confidence max_k p_ik; see the module docstring
    for the edge convention.

    >>> rb = reliability_bins([[0.2] * 5, [0.0, 1.0, 0.0, 0.0, 0.0]], [0, 1], n_bins=5)
    >>> rb.counts.tolist(), rb.ece
    ([1, 0, 0, 0, 1], 0.4)
    """
    p, y = _probs_labels(probs, labels)
    return _equal_width_bins(*_top_label(p, y), _check_n_bins(n_bins))


def ece(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> float:
    """Expected calibration error, top-label, equal-width bins (Guo et al. 2017, eq. 3).

    ECE = sum_b (n_b / N) |acc_b - conf_b| over M bins b = (b/M, (b+1)/M] of the max
    probability; empty bins count zero. In [0, 1].

    >>> ece([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3]], [0, 1], n_bins=2)  # gaps 0.1 and 0.4
    0.25
    """
    return reliability_bins(probs, labels, n_bins).ece


def mce(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> float:
    """Maximum calibration error (Guo et al. 2017, eq. 5): max_b |acc_b - conf_b|.

    Over the non-empty equal-width bins of ``ece``. In [0, 1], and never below the ECE.
    """
    return reliability_bins(probs, labels, n_bins).mce


def adaptive_ece(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> float:
    """Top-label ECE with equal-mass (adaptive) bins, after Nixon et al. 2019.

    Nixon, Dusenberry, Zhang, Jerfel & Tran, "Measuring Calibration in Deep Learning",
    CVPR Workshops 2019, propose adaptive bin ranges so that each bin holds the same number
    of samples. This is the top-label form (as AdaECE in Mukhoti et al. 2020); Nixon et al.'s
    ACE also averages over classes. aECE = sum_g (n_g / N) |acc_g - conf_g| over the bins of
    ``equal_mass_bin_index``: the sorted confidences are cut into G = min(M, N) groups with
    ``np.array_split`` (sizes differ by at most one), except that tied confidences are never
    split: a cut inside a run of equal confidences moves up to the end of the run. So 100
    predictions at confidence 0.9, 70 % of them right, form one bin and score 0.2 at any M,
    and the result does not depend on the order of the samples. In [0, 1].

    >>> round(adaptive_ece([[0.9, 0.1]] * 100, [0] * 70 + [1] * 30), 12)
    0.2
    """
    p, y = _probs_labels(probs, labels)
    n_bins = _check_n_bins(n_bins)
    conf, correct = _top_label(p, y)
    return _equal_mass_ece(conf, correct, n_bins)


def classwise_ece(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> float:
    """Classwise ECE (static calibration error, Nixon et al. 2019, "Measuring Calibration").

    SCE = (1/K) sum_k sum_b (n_bk / N) |acc_bk - conf_bk|: for each class k, the
    equal-width-binned ECE of p_k (the class-k probability, not the max) against the
    outcome 1[y = k], averaged over classes. Same bins as ``ece``. In [0, 1].
    """
    p, y = _probs_labels(probs, labels)
    n_bins = _check_n_bins(n_bins)
    by_class = np.ascontiguousarray(p.T)  # one contiguous row per class: faster to bin
    per_class = [
        _equal_width_bins(by_class[k], (y == k).astype(np.float64), n_bins).ece
        for k in range(p.shape[1])
    ]
    return float(np.mean(per_class))


# ---------------------------------------------------------------------------------------
# Logit gap: the quantity label smoothing caps
# ---------------------------------------------------------------------------------------


def logit_gap(logits: ArrayLike) -> float:
    """Mean gap between the top logit and the mean of the other K-1 logits.

    gap = (1/N) sum_i (z_i,max - (sum_k z_ik - z_i,max) / (K - 1)). Cross-entropy drives it
    to infinity; label smoothing with strength alpha makes it finite (Müller, Kornblith &
    Hinton, "When Does Label Smoothing Help?", NeurIPS 2019): see ``optimal_logit_gap``.
    Needs K >= 2.

    >>> logit_gap([[3.0, 1.0, -1.0], [0.0, 2.0, 0.0]])
    2.5
    """
    z = _as_2d_float(logits, "logits")
    k = z.shape[1]
    if k < 2:
        raise ValueError(f"expected at least 2 classes for a logit gap, got {k}")
    top = z.max(axis=1)
    rest_mean = (z.sum(axis=1) - top) / (k - 1)
    return float(np.mean(top - rest_mean))


def optimal_logit_gap(alpha: float, num_classes: int) -> float:
    """Logit gap that minimises the label-smoothed loss: log(K (1 - alpha) / alpha + 1).

    With the smoothed target P'(y) = 1 - alpha + alpha/K and P'(i) = alpha/K otherwise, the
    loss is minimised at Q = P'. Logits [g, 0, ..., 0] give Q(y) = e^g / (e^g + K - 1),
    which equals P'(y) exactly when e^g = K (1 - alpha) / alpha + 1. Infinite for alpha = 0
    (plain cross-entropy), 0 for alpha = 1 (the uniform target).

    >>> round(optimal_logit_gap(0.1, 10), 6)
    4.51086
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ValueError(f"expected an integer num_classes, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"expected num_classes >= 2, got {num_classes}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"expected alpha in [0, 1], got {alpha!r}")
    if alpha == 0.0:
        return float("inf")
    return float(np.log(num_classes * (1.0 - alpha) / alpha + 1.0))


# ---------------------------------------------------------------------------------------
# Class separation of features: what label smoothing does to the penultimate layer
# ---------------------------------------------------------------------------------------


def _as_features_labels(features: ArrayLike, labels: ArrayLike) -> tuple[FloatArray, IntArray]:
    """Features as a finite float64 (N, D) array and labels as (N,) class indices 0..K-1
    (np.unique's inverse: any integer values, K = the number of distinct ones)."""
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"expected features of shape (N, D) with N, D >= 1, got {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"expected features with a real dtype, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    n_bad = int(np.count_nonzero(~np.isfinite(x)))
    if n_bad:
        raise ValueError(f"expected finite features, got {n_bad} non-finite values (NaN or inf)")
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"expected labels of shape (N,), got shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"expected {x.shape[0]} labels (one per row of features), got {y.shape[0]}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"expected integer labels, got dtype {y.dtype}")
    classes, inverse = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2:
        raise ValueError(f"expected at least 2 classes among the labels, got {classes.shape[0]}")
    return x, inverse.reshape(-1).astype(np.int64, copy=False)


def _l2_normalise_rows(x: FloatArray) -> FloatArray:
    """Each row divided by its L2 norm; a zero row stays zero (as tf.nn.l2_normalize).

    Rows are first divided by their largest |entry|, so that norms of rows with entries
    near 1e-200 or 1e200 neither underflow nor overflow.
    """
    scale = np.abs(x).max(axis=1, keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    y = x / safe
    norm = np.sqrt(np.einsum("nd,nd->n", y, y))[:, None]
    return np.where(scale > 0, y / np.where(norm > 0, norm, 1.0), 0.0)


def _class_distances(features: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """(dbar_within, dbar_total) of ``class_separation_r2``, in O(N D)."""
    x, y = _as_features_labels(features, labels)
    z = _l2_normalise_rows(x)
    k = int(y.max()) + 1
    counts = np.bincount(y, minlength=k).astype(np.float64)
    order = np.argsort(y, kind="stable")
    starts = np.concatenate(([0], np.cumsum(np.bincount(y, minlength=k))[:-1]))
    means = np.add.reduceat(z[order], starts, axis=0) / counts[:, None]  # (K, D): mu_k
    # Mean over pairs in class k of (1 - z_m.z_n) = 1 - |mu_k|^2, written without the
    # cancellation of 1 - |mu_k|^2 as mean_m (1 - |z_m|^2) + mean_m |z_m - mu_k|^2, where
    # 1 - |z_m|^2 is 1 for a zero row and 0 otherwise.
    dev = z - means[y]
    spread = np.bincount(y, weights=np.einsum("nd,nd->n", dev, dev), minlength=k)
    zero_rows = np.bincount(y, weights=(~z.any(axis=1)).astype(np.float64), minlength=k)
    within_k = (zero_rows + spread) / counts
    dbar_within = float(within_k.mean())
    # Mean over class pairs (j, k) of (1 - mu_j.mu_k) = 1 - |mu_bar|^2
    # = mean_k (1 - |mu_k|^2) + mean_k |mu_k - mu_bar|^2.
    between = means - means.mean(axis=0)
    dbar_between = float(np.einsum("kd,kd->k", between, between).mean())
    return dbar_within, dbar_within + dbar_between


def class_separation_r2(features: ArrayLike, labels: ArrayLike) -> float:
    """Class separation R^2 of features (Kornblith et al. 2021, Eq. 1 / Sec. 3.1).

    From Kornblith, Chen, Lee & Norouzi 2021, "Why Do Better Loss Functions Lead to Less
    Transferable Features?" (NeurIPS): with sim the cosine similarity and K the number of
    classes present,

        R^2 = 1 - dbar_within / dbar_total,
        dbar_within = sum_k sum_{m,n in class k} (1 - sim(x_m, x_n)) / (K N_k^2),
        dbar_total  = sum_j sum_k sum_{m in j, n in k} (1 - sim(x_m, x_n)) / (K^2 N_j N_k),

    over all pairs, m = n included, each class weighted equally whatever its size. 1 means
    every class collapsed to one direction (label smoothing and other "better" losses push
    the penultimate layer that way; the paper finds it transfers worse); 0 means the classes
    are indistinguishable in angle. 0 <= R^2 <= 1 always.

    Computed in float64 in O(N D) rather than over the N^2 pairs: with z_m = x_m / |x_m|
    and mu_k the mean of z over class k, the mean of sim over the pairs of class k is
    |mu_k|^2, and over the pairs of classes (j, k) it is mu_j . mu_k, so dbar_within =
    mean_k (1 - |mu_k|^2) and dbar_total = 1 - |mean_k mu_k|^2 (each summed in a form
    without cancellation; the two agree with the pairwise formula to rounding).

    A zero feature vector normalises to zero, as ``tf.nn.l2_normalize`` does: its cosine
    similarity with everything, itself included, is 0, so it is at distance 1 from every
    vector. When every row is a positive multiple of one vector, both distances are 0 and
    R^2 is 0/0: NaN is returned.

    Args:
        features: (N, D) finite real array, e.g. penultimate-layer activations.
        labels: (N,) integer class labels; any integer values, at least 2 distinct.

    >>> class_separation_r2([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]], [0, 0, 1])
    1.0
    """
    dbar_within, dbar_total = _class_distances(features, labels)
    if dbar_total == 0.0:
        return float("nan")
    return 1.0 - dbar_within / dbar_total


# ---------------------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------------------


def all_metrics(logits: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> dict[str, float]:
    """Every metric of this module from (float32 or float64) logits and true labels.

    Probabilities are the float64 softmax of the logits; NLL is computed from the logits
    (``nll_from_logits``). Keys: accuracy, nll, brier, ece, mce, adaptive_ece,
    classwise_ece, mean_confidence, overconfidence, logit_gap. Binned metrics use
    ``n_bins`` bins (equal-width, or equal-mass for adaptive_ece).
    """
    z = _as_2d_float(logits, "logits")
    y = _as_labels(labels, *z.shape)
    n_bins = _check_n_bins(n_bins)
    p = softmax(z)
    bins = reliability_bins(p, y, n_bins)
    return {
        "accuracy": accuracy(p, y),
        "nll": nll_from_logits(z, y),
        "brier": brier(p, y),
        "ece": bins.ece,
        "mce": bins.mce,
        "adaptive_ece": adaptive_ece(p, y, n_bins),
        "classwise_ece": classwise_ece(p, y, n_bins),
        "mean_confidence": mean_confidence(p),
        "overconfidence": overconfidence(p, y),
        "logit_gap": logit_gap(z),
    }


# ---------------------------------------------------------------------------------------
# Debiased calibration error and bootstrap intervals
# ---------------------------------------------------------------------------------------


def _debiased_squared_ce(conf: FloatArray, correct: FloatArray, n_bins: int) -> float:
    """Kumar et al.'s debiased estimate of the squared l2 calibration error; may be < 0.

    sum_b (n_b / N) [(conf_b - acc_b)^2 - acc_b (1 - acc_b) / (n_b - 1)] over equal-mass bins
    with n_b >= 2; bins with fewer than 2 samples contribute 0 (as ``unbiased_square_ce``).
    """
    idx = equal_mass_bin_index(conf, n_bins)
    counts = np.bincount(idx)
    sum_conf = np.bincount(idx, weights=conf)
    sum_correct = np.bincount(idx, weights=correct)
    used = counts >= 2
    n_b = counts[used].astype(np.float64)
    conf_b = sum_conf[used] / n_b
    acc_b = sum_correct[used] / n_b
    per_bin = (conf_b - acc_b) ** 2 - acc_b * (1.0 - acc_b) / (n_b - 1.0)
    return float(np.sum(n_b / conf.shape[0] * per_bin))


def debiased_l2_ce(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> float:
    """Debiased top-label l2 (RMS) calibration error (Kumar, Liang & Ma 2019), equal-mass bins.

    The quantity estimated is the l2 calibration error of the top label,

        CE_2 = sqrt( E[ (P(correct | conf) - conf)^2 ] ),

    the root-mean-square gap between accuracy and confidence, not the l1 gap E|...| that
    ECE (``ece``, ``adaptive_ece``) estimates. By Jensen's inequality CE_2 >= CE_1, so this
    number is typically larger than an ECE of the same predictions: compare it with other l2
    errors, not with ECE.

    Kumar, Liang & Ma, "Verified Uncertainty Calibration", NeurIPS 2019, section 5, and
    p-lambda/verified_calibration ``get_calibration_error(probs, labels, p=2, debias=True,
    mode='top-label')`` (its ``lower_bound_scaling_ce`` path with ``get_equal_bins``):

        CE_2^2 = sum_b (n_b / N) [(conf_b - acc_b)^2 - acc_b (1 - acc_b) / (n_b - 1)]
        debiased_l2_ce = sqrt(max(CE_2^2, 0))

    over the bins b with n_b >= 2 samples (other bins contribute 0), where conf_b is the mean
    max-probability and acc_b the accuracy in bin b. The plug-in sum_b (n_b/N)(conf_b -
    acc_b)^2 is biased upwards by about the sampling variance of acc_b; subtracting its
    unbiased estimate acc_b (1 - acc_b) / (n_b - 1) removes that bias, so a calibrated model
    scores near 0 instead of ~sqrt(M / 4N). Bins are equal-mass (``equal_mass_bin_index``:
    min(M, N) groups of the sorted confidences, tied confidences kept in one bin).

    Unlike ``get_calibration_error``, this does not switch to one bin per distinct value when
    the confidences take few distinct values.

    >>> probs = [[0.9, 0.1]] * 10
    >>> round(debiased_l2_ce(probs, [0] * 7 + [1] * 3), 6)  # sqrt(0.2^2 - 0.7 * 0.3 / 9)
    0.129099
    """
    p, y = _probs_labels(probs, labels)
    n_bins = _check_n_bins(n_bins)
    conf, correct = _top_label(p, y)
    return float(np.sqrt(max(_debiased_squared_ce(conf, correct, n_bins), 0.0)))


debiased_ece = debiased_l2_ce
"""Former name of ``debiased_l2_ce`` (kept so old code runs): an l2 error, not an ECE."""


_BOOT_CHUNK = 1 << 22  # resampled indices held at once, to bound memory for large N


def _resampled_ece(
    conf: FloatArray,
    correct: FloatArray,
    n_bins: int,
    n_boot: int,
    rng: np.random.Generator,
) -> FloatArray:
    """(n_boot,) top-label ECEs (equal-width bins) of resamples of N samples with replacement.

    The bin of a sample does not change under resampling, so each resample needs only the
    per-bin sums of correct - conf: ECE = sum_b |sum_{i in b} (correct_i - conf_i)| / N.
    """
    n = conf.shape[0]
    bins = equal_width_bin_index(conf, n_bins)
    gap = correct - conf
    out = np.empty(n_boot)
    per_chunk = max(1, _BOOT_CHUNK // n)
    for start in range(0, n_boot, per_chunk):
        m = min(per_chunk, n_boot - start)
        idx = rng.integers(0, n, size=(m, n))
        out[start : start + m] = _binned_abs_sums(bins[idx], gap[idx], n_bins) / n
    return out


def ece_bootstrap_interval(
    probs: ArrayLike,
    labels: ArrayLike,
    n_bins: int = 15,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval for the top-label ECE (equal-width bins, as ``ece``).

    Efron & Tibshirani, "An Introduction to the Bootstrap" (1993), ch. 13: draw n_boot
    resamples of the N test examples with replacement (``np.random.default_rng(seed)``),
    compute the ECE of each, and return its (1 - level)/2 and (1 + level)/2 quantiles
    (``np.quantile``, linear interpolation). Confidences, correctness and bins are computed
    once; a resample only re-sums them per bin (one bincount per chunk of resamples).

    This is the interval for the test-set sampling noise of one model's ECE, not a spread
    across seeds. The plug-in ECE is biased upwards and a resample's more so: for a nearly
    calibrated model the interval can sit above the point ECE.

    >>> lo, hi = ece_bootstrap_interval([[0.9, 0.1]] * 7 + [[0.6, 0.4]] * 3, [0] * 10)
    >>> bool(lo <= ece([[0.9, 0.1]] * 7 + [[0.6, 0.4]] * 3, [0] * 10) <= hi)
    True
    """
    p, y = _probs_labels(probs, labels)
    n_bins = _check_n_bins(n_bins)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 2:
        raise ValueError(f"expected n_boot to be an integer >= 2, got {n_boot!r}")
    if isinstance(level, bool) or not isinstance(level, float | int | np.integer | np.floating):
        raise ValueError(f"expected level to be a number in (0, 1), got {level!r}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"expected level in (0, 1), got {level!r}")
    conf, correct = _top_label(p, y)
    eces = _resampled_ece(conf, correct, n_bins, int(n_boot), np.random.default_rng(seed))
    lo, hi = np.quantile(eces, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


# ---------------------------------------------------------------------------------------
# Smooth ECE (Błasiok & Nakkiran 2023)
# ---------------------------------------------------------------------------------------

_SMOOTH_GRID = 1 << 14  # grid intervals on [0, 1]: spacing 6.1e-5, <= sigma / 16 for all sigma
_SMOOTH_MIN_SIGMA = 1e-3  # smallest bandwidth allowed and searched (relplot's eps)


def _wrapped_gaussian_dft(sigma: float, g: int) -> FloatArray:
    """rfft of the Gaussian of std ``sigma`` wrapped on a circle of length 2, sampled at 1/g.

    The wrapped Gaussian has the Fourier series (1/2) sum_n exp(-(pi n sigma)^2 / 2)
    e^{i pi n x}, so its 2g samples x_l = l/g have the DFT g·exp(-(pi k sigma)^2 / 2),
    k = 0 .. g, plus aliases exp(-(pi (2g - k) sigma)^2 / 2) that are below 1e-300 once
    sigma·g >= 8 (here sigma·g >= 16).
    """
    k = np.arange(g + 1, dtype=np.float64)
    return g * np.exp(-0.5 * (math.pi * sigma * k) ** 2)


def _smooth_ece_at(conf: FloatArray, residual: FloatArray, sigma: float) -> float:
    """smECE_sigma = int_0^1 |(1/N) sum_i K_sigma(t, f_i) (y_i - f_i)| dt, reflected kernel.

    Discretised on G + 1 = 16385 grid points t_j = j/G: each f_i is split between its two
    neighbouring grid points in proportion to closeness ("linear binning", Wand 1994, J.
    Comput. Graph. Statist. 3(4), which keeps the smoothed function exact to O(1/G^2)); the
    reflected kernel is the Gaussian wrapped on a circle of length 2 applied to the weights and
    their mirror images -t (Błasiok & Nakkiran 2023, section 4), a circular convolution done
    with the FFT; the integral is the trapezoid rule over the grid.
    """
    g = _SMOOTH_GRID
    pos = conf * g
    left = np.minimum(pos.astype(np.int64), g - 1)
    frac = pos - left
    n = conf.shape[0]
    w = np.bincount(left, weights=residual * (1.0 - frac), minlength=g + 1)
    w += np.bincount(left + 1, weights=residual * frac, minlength=g + 1)
    w /= n
    circle = np.zeros(2 * g)
    circle[: g + 1] += w  # the weights at t in [0, 1] ...
    circle[(-np.arange(g + 1)) % (2 * g)] += w  # ... and their mirror images at -t
    spectrum = np.fft.rfft(circle) * _wrapped_gaussian_dft(sigma, g)
    smoothed = np.fft.irfft(spectrum, n=2 * g)[: g + 1]
    a = np.abs(smoothed)
    return float((a.sum() - 0.5 * (a[0] + a[-1])) / g)


def _smooth_ece_fixed_point(conf: FloatArray, residual: FloatArray) -> tuple[float, float]:
    """(smECE_sigma*, sigma*) at the bandwidth with smECE_sigma* = sigma* (brentq, 1e-9).

    smECE_sigma is non-increasing in sigma (a wider Gaussian is a narrower one convolved with
    another, and convolving with a probability kernel never raises an L1 norm), so
    smECE_sigma - sigma has exactly one root. It is searched in [1e-3, 1]: below 1e-3 the
    error is within 1e-3 of 0 and the bandwidth 1e-3 is used; an error of 1 (every prediction
    confidently wrong) gives sigma* = 1.
    """
    lo, hi = _SMOOTH_MIN_SIGMA, 1.0
    at_lo = _smooth_ece_at(conf, residual, lo)
    if at_lo <= lo:
        return at_lo, lo
    at_hi = _smooth_ece_at(conf, residual, hi)
    if at_hi >= hi:
        return at_hi, hi
    from scipy.optimize import brentq  # here: importing scipy costs a sweep 0.3 s

    sigma = brentq(lambda s: _smooth_ece_at(conf, residual, s) - s, lo, hi, xtol=1e-9)
    return _smooth_ece_at(conf, residual, sigma), float(sigma)


def _check_bandwidth(bandwidth: float | None) -> float | None:
    if bandwidth is None:
        return None
    b = float(bandwidth)
    if not (math.isfinite(b) and _SMOOTH_MIN_SIGMA <= b <= 1.0):
        raise ValueError(f"expected a bandwidth in [0.001, 1], got {bandwidth!r}")
    return b


def smooth_ece(probs: ArrayLike, labels: ArrayLike, bandwidth: float | None = None) -> float:
    """Top-label smooth ECE (Błasiok & Nakkiran 2023), with its automatic bandwidth.

    Błasiok & Nakkiran, "Smooth ECE: Principled Reliability Diagrams via Kernel Smoothing",
    ICLR 2024 (arXiv:2309.12236). With f_i the max probability and y_i = 1[correct],

        smECE_sigma = int_0^1 |r_sigma(t)| delta_sigma(t) dt
                    = int_0^1 |(1/N) sum_i K_sigma(t, f_i) (y_i - f_i)| dt,

    where r_sigma is the kernel-smoothed residual, delta_sigma the kernel density of the
    confidences, and K_sigma the Gaussian kernel of std sigma reflected at 0 and 1 (so no
    mass leaves [0, 1]). No bins: a small change of one confidence moves the value a little,
    never a jump. With ``bandwidth`` None, sigma is the paper's automatic choice, the unique
    sigma* with smECE_sigma* = sigma*, and smECE_sigma* is returned (the authors' ``relplot``
    package, ``relplot.smECE``, does the same by bisection). In [0, 1].

    Numerics: float64; the smoothed residual is computed on a grid of 16385 points (spacing
    <= sigma/16), see ``_smooth_ece_at``; sigma* to 1e-9 by ``scipy.optimize.brentq``.
    Against a direct float64 evaluation of the integral the relative error is below 2e-6 for
    sigma >= 0.01 and 1.5e-4 at the smallest bandwidth, 0.001. ``relplot`` (1.0.3) agrees to
    0.3 % where no confidence lies within 0.001 of 0 or 1; its grid mirrors the weights at
    the end points without the end point itself, which drops half the kernel mass of
    confidences there, so it reads a few % higher for models with many confidences of ~1.0
    (this function keeps that mass, as the reflected kernel of the definition does).

    >>> round(smooth_ece([[0.9, 0.1]] * 10, [0] * 9 + [1]), 6)  # calibrated: y - f sums to 0
    0.0
    """
    p, y = _probs_labels(probs, labels)
    bandwidth = _check_bandwidth(bandwidth)
    conf, correct = _top_label(p, y)
    if bandwidth is not None:
        return _smooth_ece_at(conf, correct - conf, bandwidth)
    return _smooth_ece_fixed_point(conf, correct - conf)[0]


def smooth_ece_bandwidth(probs: ArrayLike, labels: ArrayLike) -> float:
    """The automatic bandwidth sigma* of ``smooth_ece``: the fixed point smECE_sigma* = sigma*."""
    p, y = _probs_labels(probs, labels)
    conf, correct = _top_label(p, y)
    return _smooth_ece_fixed_point(conf, correct - conf)[1]


# ---------------------------------------------------------------------------------------
# The estimator panel: one calibration error, several ways to estimate it
# ---------------------------------------------------------------------------------------

PANEL_BINS = (10, 15, 20)
"""Bin counts of the binned top-label ECEs in ``calibration_panel``."""


def calibration_panel_labels(n_bins: int = 15) -> dict[str, str]:
    """Key -> human label of every estimator in ``calibration_panel(..., n_bins)``, in order.

    Every estimator but ``debiased_l2_ce`` estimates an l1 calibration error (a mean
    |accuracy - confidence|); ``debiased_l2_ce`` estimates the l2 (RMS) error, which is never
    smaller: compare its changes across α, not its level with the others.
    """
    n_bins = _check_n_bins(n_bins)
    labels = {f"ece_width_{m}": f"ECE, {m} equal-width bins" for m in PANEL_BINS}
    labels.update({f"ece_mass_{m}": f"ECE, {m} equal-mass bins" for m in PANEL_BINS})
    labels["classwise_ece"] = f"classwise ECE, {n_bins} equal-width bins"
    labels["smooth_ece"] = "smooth ECE, automatic bandwidth"
    labels["debiased_l2_ce"] = f"debiased l2 (RMS) calibration error, {n_bins} equal-mass bins"
    return labels


def calibration_panel(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> dict[str, float]:
    """Every calibration-error estimator of the panel, keyed as ``calibration_panel_labels``.

    - ece_width_M (M = 10, 15, 20): ``ece``, top-label, equal-width bins (Guo et al. 2017);
    - ece_mass_M: ``adaptive_ece``, top-label, equal-mass bins, ties kept together (Nixon
      et al. 2019);
    - classwise_ece: ``classwise_ece`` with ``n_bins`` equal-width bins (Nixon et al. 2019);
    - smooth_ece: ``smooth_ece``, kernel-smoothed, no bins (Błasiok & Nakkiran 2023);
    - debiased_l2_ce: ``debiased_l2_ce`` with ``n_bins`` equal-mass bins (Kumar et al. 2019),
      an l2 error.

    A difference in calibration that every estimator sees in the same direction does not
    depend on a binning choice; one that flips between them does.
    """
    p, y = _probs_labels(probs, labels)
    n_bins = _check_n_bins(n_bins)
    conf, correct = _top_label(p, y)
    out: dict[str, float] = {}
    for m in PANEL_BINS:
        out[f"ece_width_{m}"] = _equal_width_bins(conf, correct, m).ece
    for m in PANEL_BINS:
        out[f"ece_mass_{m}"] = _equal_mass_ece(conf, correct, m)
    out["classwise_ece"] = classwise_ece(p, y, n_bins)
    out["smooth_ece"] = _smooth_ece_fixed_point(conf, correct - conf)[0]
    out["debiased_l2_ce"] = float(np.sqrt(max(_debiased_squared_ce(conf, correct, n_bins), 0.0)))
    return out


# ---------------------------------------------------------------------------------------
# The ECE noise floor: what a perfectly calibrated model with these confidences scores
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseFloor:
    """Plug-in calibration error of a perfectly calibrated model with given confidences.

    ``mean`` is the floor: the expected value, over labels drawn from the model's own
    probabilities, of the plug-in estimator. An observed ECE near it is what perfect
    calibration looks like on this many test examples; a difference between two ECEs
    smaller than it cannot be resolved.
    """

    mean: float
    """The floor: the mean over the draws."""
    std: float
    """Standard deviation over the draws (its Monte Carlo error is std / sqrt(n_draws))."""
    q95: float
    """95th percentile over the draws: an ECE above it is unlikely under calibration."""
    n_draws: int
    seed: int


def _check_draws(n_draws: int) -> int:
    if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) or n_draws < 2:
        raise ValueError(f"expected n_draws to be an integer >= 2, got {n_draws!r}")
    return int(n_draws)


def _floor(draws: FloatArray, n_draws: int, seed: int) -> NoiseFloor:
    return NoiseFloor(
        mean=float(draws.mean()),
        std=float(draws.std(ddof=1)),
        q95=float(np.quantile(draws, 0.95)),
        n_draws=n_draws,
        seed=seed,
    )


def calibration_noise_floor(
    probs: ArrayLike, n_bins: int = 15, n_draws: int = 200, seed: int = 0
) -> dict[str, NoiseFloor]:
    """Noise floor of each binned l1 estimator of ``calibration_panel``, keyed like it.

    For r = 1 .. n_draws, labels are drawn from the model's own probabilities, y_ri ~
    Categorical(p_i) (``np.random.default_rng(seed)``), which makes the model perfectly
    calibrated by construction (its top label is then right with probability exactly its
    confidence); each estimator is computed on (p, y_r) and averaged over r. The bins depend
    only on the probabilities, so they are computed once and the draws cost one bincount
    per binning.

    Keys: ece_width_M and ece_mass_M (M in ``PANEL_BINS``) and classwise_ece (``n_bins``
    bins). Not for smooth_ece (its bandwidth is refitted per draw, too slow to repeat here) or
    debiased_l2_ce (debiased: its floor is about 0 by construction).
    """
    p = _as_probs(probs)
    n_bins, n_draws = _check_n_bins(n_bins), _check_draws(n_draws)
    n, k = p.shape
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(p, axis=1)
    u = rng.random((n_draws, n))
    drawn = np.minimum((cdf[None, :, :] < u[:, :, None]).sum(axis=2), k - 1)  # (R, N)
    conf, top = p.max(axis=1), p.argmax(axis=1)
    gaps = (drawn == top[None, :]).astype(np.float64) - conf[None, :]
    out: dict[str, NoiseFloor] = {}
    for m in PANEL_BINS:
        draws = _binned_abs_sums(equal_width_bin_index(conf, m), gaps, m) / n
        out[f"ece_width_{m}"] = _floor(draws, n_draws, seed)
    for m in PANEL_BINS:
        idx = equal_mass_bin_index(conf, m)
        draws = _binned_abs_sums(idx, gaps, int(idx.max()) + 1) / n
        out[f"ece_mass_{m}"] = _floor(draws, n_draws, seed)
    per_class = np.zeros(n_draws)
    for c in range(k):
        outcome = (drawn == c).astype(np.float64) - p[None, :, c]
        per_class += _binned_abs_sums(equal_width_bin_index(p[:, c], n_bins), outcome, n_bins)
    out["classwise_ece"] = _floor(per_class / (n * k), n_draws, seed)
    return out


def ece_noise_floor(
    probs: ArrayLike,
    n_bins: int = 15,
    n_draws: int = 200,
    seed: int = 0,
    binning: str = "width",
) -> NoiseFloor:
    """Noise floor of the top-label plug-in ECE: its mean under perfect calibration.

    With c_i the confidence (max probability) of test example i, draw r = 1 .. n_draws sets
    of outcomes correct_ri ~ Bernoulli(c_i) (``np.random.default_rng(seed)``) and return the
    mean of ECE_r = sum_b |sum_{i in b} (correct_ri - c_i)| / N over the draws, with the
    same bins as ``ece`` (binning "width") or ``adaptive_ece`` ("mass"). The plug-in ECE is
    biased upwards, most where bins hold few examples: a calibrated model with the
    confidences of a 2,000-example test set scores ~1-2.5 %, not 0. Vectorised: the bins
    depend only on the c_i, so all draws cost one bincount.

    >>> floor = ece_noise_floor([[0.9, 0.1]] * 50, n_draws=2000)
    >>> 0.03 < floor.mean < 0.037  # E|Binomial(50, 0.9)/50 - 0.9| = 0.03329 exactly
    True
    """
    p = _as_probs(probs)
    n_bins, n_draws = _check_n_bins(n_bins), _check_draws(n_draws)
    if binning not in ("width", "mass"):
        raise ValueError(f"expected binning 'width' or 'mass', got {binning!r}")
    conf = p.max(axis=1)
    n = conf.shape[0]
    if binning == "width":
        idx, groups = equal_width_bin_index(conf, n_bins), n_bins
    else:
        idx = equal_mass_bin_index(conf, n_bins)
        groups = int(idx.max()) + 1
    rng = np.random.default_rng(seed)
    gaps = (rng.random((n_draws, n)) < conf[None, :]).astype(np.float64) - conf[None, :]
    return _floor(_binned_abs_sums(idx, gaps, groups) / n, n_draws, seed)
