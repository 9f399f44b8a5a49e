"""Tests for lsexp.analysis.metrics: slow reference loops, properties, and torchmetrics as an
outside check.

The binning convention pinned here (docs/architecture.md, "Conventions"): bin b =
(b/M, (b+1)/M], a value exactly on an edge goes to the lower bin, 0 to the first bin and
1.0 to the last.
"""

from __future__ import annotations

import dataclasses
import doctest
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

from lsexp.analysis import metrics
from lsexp.analysis.metrics import (
    ReliabilityBins,
    accuracy,
    adaptive_ece,
    all_metrics,
    brier,
    classwise_ece,
    ece,
    log_softmax,
    logit_gap,
    mce,
    mean_confidence,
    nll,
    nll_from_logits,
    optimal_logit_gap,
    overconfidence,
    reliability_bins,
    softmax,
)

BINNED = {
    "ece": ece,
    "mce": mce,
    "adaptive_ece": adaptive_ece,
    "classwise_ece": classwise_ece,
}


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def _random_probs(rng: np.random.Generator, n: int, k: int, scale: float = 2.0) -> np.ndarray:
    """Continuous probabilities: softmax of Gaussian logits."""
    return softmax(rng.normal(scale=scale, size=(n, k)))


def _labels_near_argmax(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Labels equal to the argmax 60% of the time, uniform otherwise: a mix of right and wrong."""
    n, k = probs.shape
    return np.where(rng.random(n) < 0.6, probs.argmax(axis=1), rng.integers(0, k, size=n))


def _edge_probs(rng: np.random.Generator, n: int, k: int, n_bins: int) -> np.ndarray:
    """Rows whose max probability is exactly a bin edge b/M (including 1.0: one-hot rows).

    The other K-1 classes share 1 - b/M equally (so K=5, M=5 gives max probs 0.2, 0.4, ...,
    1.0, and zeros for the classwise metric).
    """
    tops = np.arange(1, n_bins + 1) / n_bins
    tops = tops[tops >= 1.0 / k]
    probs = np.empty((n, k))
    for i, top in enumerate(rng.choice(tops, size=n)):
        probs[i] = min((1.0 - top) / (k - 1), top)
        probs[i, rng.integers(k)] = top
    return probs


def _dataset(kind: str, seed: int, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "random":
        probs = _random_probs(rng, 300, 5)
    elif kind == "edges":
        probs = _edge_probs(rng, 300, 5, n_bins)
    else:  # half and half, shuffled
        probs = np.concatenate([_random_probs(rng, 150, 5), _edge_probs(rng, 150, 5, n_bins)])
        probs = probs[rng.permutation(300)]
    return probs, _labels_near_argmax(rng, probs)


# ---------------------------------------------------------------------------------------
# Slow, obviously-correct references
# ---------------------------------------------------------------------------------------


def _ref_bin(value: float, n_bins: int) -> int:
    """The b with b/M < value <= (b+1)/M; 0 goes to bin 0."""
    for b in range(n_bins):
        if b / n_bins < value <= (b + 1) / n_bins:
            return b
    assert value == 0.0
    return 0


def _ref_top_label(probs: np.ndarray, labels: np.ndarray) -> tuple[list[float], list[float]]:
    confidences, correct = [], []
    for row, label in zip(probs.tolist(), labels.tolist(), strict=True):
        confidence = max(row)
        confidences.append(confidence)
        correct.append(1.0 if row.index(confidence) == label else 0.0)
    return confidences, correct


def _ref_binned(values: list[float], outcomes: list[float], n_bins: int) -> dict[str, object]:
    members: list[list[tuple[float, float]]] = [[] for _ in range(n_bins)]
    for value, outcome in zip(values, outcomes, strict=True):
        members[_ref_bin(value, n_bins)].append((value, outcome))
    counts, confs, accs, total, worst = [], [], [], 0.0, 0.0
    for bin_members in members:
        counts.append(len(bin_members))
        if not bin_members:
            confs.append(math.nan)
            accs.append(math.nan)
            continue
        conf = sum(v for v, _ in bin_members) / len(bin_members)
        acc = sum(o for _, o in bin_members) / len(bin_members)
        confs.append(conf)
        accs.append(acc)
        total += len(bin_members) / len(values) * abs(acc - conf)
        worst = max(worst, abs(acc - conf))
    return {"counts": counts, "confidence": confs, "accuracy": accs, "ece": total, "mce": worst}


def _ref_adaptive_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    """Equal-mass groups of np.array_split's sizes, each cut moved past a run of ties."""
    pairs = sorted(zip(*_ref_top_label(probs, labels), strict=True))
    n = len(pairs)
    groups = min(n_bins, n)
    base, extra = divmod(n, groups)  # np.array_split: the first `extra` groups get one more
    cuts, end = [], 0
    for g in range(groups - 1):
        end += base + (1 if g < extra else 0)
        cut = end
        while cut < n and pairs[cut][0] == pairs[cut - 1][0]:  # never split tied confidences
            cut += 1
        if cut < n and (not cuts or cut > cuts[-1]):
            cuts.append(cut)
    total = 0.0
    for start, stop in zip([0, *cuts], [*cuts, n], strict=True):
        group = pairs[start:stop]
        conf = sum(c for c, _ in group) / len(group)
        acc = sum(o for _, o in group) / len(group)
        total += len(group) / n * abs(acc - conf)
    return total


def _ref_classwise_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    per_class = []
    for k in range(probs.shape[1]):
        values = [float(v) for v in probs[:, k]]
        outcomes = [1.0 if int(y) == k else 0.0 for y in labels]
        per_class.append(_ref_binned(values, outcomes, n_bins)["ece"])
    return sum(per_class) / len(per_class)


# ---------------------------------------------------------------------------------------
# Softmax
# ---------------------------------------------------------------------------------------


def test_softmax_matches_formula_and_is_float64() -> None:
    logits = np.random.default_rng(0).normal(size=(20, 7)).astype(np.float32)
    z = logits.astype(np.float64)
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert softmax(logits).dtype == np.float64
    np.testing.assert_allclose(softmax(logits), expected, rtol=1e-14)
    np.testing.assert_allclose(log_softmax(logits), np.log(expected), rtol=1e-13)
    np.testing.assert_allclose(softmax(logits).sum(axis=1), 1.0, rtol=1e-15)


def test_softmax_and_log_softmax_stable_at_large_magnitude() -> None:
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [1e4, 1e4, 1e4]])
    np.testing.assert_array_equal(log_softmax(logits)[0], [0.0, -1e4, -2e4])
    np.testing.assert_allclose(log_softmax(logits)[1:], -np.log(3.0), rtol=1e-15)
    np.testing.assert_array_equal(softmax(logits)[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(softmax(logits)[1:], 1.0 / 3.0, rtol=1e-15)
    assert np.all(np.isfinite(log_softmax(logits)))


# ---------------------------------------------------------------------------------------
# Unbinned metrics
# ---------------------------------------------------------------------------------------


def test_accuracy_breaks_ties_towards_the_lowest_index() -> None:
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.8]])
    assert accuracy(probs, np.array([0, 1, 1])) == pytest.approx(2 / 3)


def test_mean_confidence_and_overconfidence_by_hand() -> None:
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([0, 0, 0])  # right, wrong, right
    assert mean_confidence(probs) == pytest.approx((0.9 + 0.7 + 0.6) / 3)
    assert overconfidence(probs, labels) == pytest.approx((0.9 + 0.7 + 0.6) / 3 - 2 / 3)
    assert overconfidence(probs, np.array([0, 1, 0])) == pytest.approx((0.9 + 0.7 + 0.6) / 3 - 1)


def test_nll_matches_nll_from_logits() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(500, 10))
    labels = rng.integers(0, 10, size=500)
    expected = -np.mean([math.log(softmax(row)[y]) for row, y in zip(logits, labels, strict=True)])
    assert nll(softmax(logits), labels) == pytest.approx(expected, rel=1e-12)
    assert nll_from_logits(logits, labels) == pytest.approx(expected, rel=1e-12)


def test_nll_is_finite_for_a_zero_probability_and_exact_from_logits() -> None:
    tiny = np.finfo(np.float64).tiny
    assert nll(np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(-math.log(tiny))
    # exp(-1e4) underflows to 0 in probability space; from logits the NLL stays exact.
    assert nll_from_logits(np.array([[0.0, -1e4]]), np.array([1])) == pytest.approx(1e4)


def test_brier_by_hand_and_against_reference() -> None:
    one_hot = np.eye(4)
    assert brier(one_hot, np.arange(4)) == 0.0
    assert brier(one_hot, np.array([1, 2, 3, 0])) == 2.0
    assert brier(np.full((3, 4), 0.25), np.array([0, 1, 2])) == pytest.approx(1 - 1 / 4)
    rng = np.random.default_rng(2)
    probs = _random_probs(rng, 100, 6)
    labels = rng.integers(0, 6, size=100)
    expected = sum(
        sum((p - (1.0 if k == y else 0.0)) ** 2 for k, p in enumerate(row))
        for row, y in zip(probs.tolist(), labels.tolist(), strict=True)
    ) / len(labels)
    assert brier(probs, labels) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------------------------------
# Binned metrics against the reference loops
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_bins", [1, 2, 5, 10, 15])
@pytest.mark.parametrize("kind", ["random", "edges", "mixed"])
def test_equal_width_metrics_match_reference(kind: str, n_bins: int) -> None:
    probs, labels = _dataset(kind, seed=n_bins, n_bins=n_bins)
    ref = _ref_binned(*_ref_top_label(probs, labels), n_bins)
    bins = reliability_bins(probs, labels, n_bins)
    assert bins.counts.tolist() == ref["counts"]
    np.testing.assert_allclose(bins.confidence, ref["confidence"], rtol=1e-12)
    np.testing.assert_allclose(bins.accuracy, ref["accuracy"], rtol=1e-12)
    assert ece(probs, labels, n_bins) == pytest.approx(ref["ece"], abs=1e-12)
    assert mce(probs, labels, n_bins) == pytest.approx(ref["mce"], abs=1e-12)


@pytest.mark.parametrize("n_bins", [1, 2, 5, 10, 15])
@pytest.mark.parametrize("kind", ["random", "edges", "mixed"])
def test_adaptive_ece_matches_reference(kind: str, n_bins: int) -> None:
    probs, labels = _dataset(kind, seed=100 + n_bins, n_bins=n_bins)
    expected = _ref_adaptive_ece(probs, labels, n_bins)
    assert adaptive_ece(probs, labels, n_bins) == pytest.approx(expected, abs=1e-12)
    # 7 bins over 300 samples: groups of 43 and 42, cut inside runs of tied confidences.
    assert adaptive_ece(probs, labels, 7) == pytest.approx(
        _ref_adaptive_ece(probs, labels, 7), abs=1e-12
    )


def test_adaptive_ece_with_fewer_samples_than_bins_uses_one_sample_per_bin() -> None:
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([0, 0, 0])
    expected = (abs(1 - 0.9) + abs(0 - 0.7) + abs(1 - 0.6)) / 3
    assert adaptive_ece(probs, labels, n_bins=15) == pytest.approx(expected)
    assert adaptive_ece(probs, labels, n_bins=15) == pytest.approx(
        _ref_adaptive_ece(probs, labels, 15)
    )


def test_adaptive_ece_keeps_tied_confidences_in_one_bin() -> None:
    # 100 predictions at confidence 0.9, 70 right: one bin, |0.7 - 0.9| = 0.2 at any M.
    probs = np.tile([0.9, 0.1], (100, 1))
    labels = np.array([0] * 70 + [1] * 30)
    for n_bins in (1, 2, 10, 15, 20, 100):
        assert adaptive_ece(probs, labels, n_bins) == pytest.approx(0.2, abs=1e-12)
    # Confidences 0.6 x2, 0.7 x3, 0.8 x1 in 3 bins: the cut after the fourth sample falls
    # inside the 0.7s and moves past them: bins {0.6, 0.6}, {0.7 x3}, {0.8}.
    probs = np.array([[c, 1 - c] for c in (0.6, 0.6, 0.7, 0.7, 0.7, 0.8)])
    labels = np.array([0, 1, 0, 0, 1, 1])  # right: 1/2, 2/3, 0/1
    expected = (2 * abs(0.5 - 0.6) + 3 * abs(2 / 3 - 0.7) + abs(0.0 - 0.8)) / 6
    assert adaptive_ece(probs, labels, 3) == pytest.approx(expected, abs=1e-12)
    np.testing.assert_array_equal(
        metrics.equal_mass_bin_index(probs.max(axis=1), 3), [0, 0, 1, 1, 1, 2]
    )


def test_equal_mass_bins_of_distinct_values_are_the_array_split_groups() -> None:
    values = np.random.default_rng(0).random(103)
    order = np.argsort(values)
    idx = metrics.equal_mass_bin_index(values, 10)
    for g, members in enumerate(np.array_split(order, 10)):
        assert set(np.flatnonzero(idx == g)) == set(members.tolist())


@pytest.mark.parametrize("n_bins", [1, 2, 5, 10, 15])
@pytest.mark.parametrize("kind", ["random", "edges", "mixed"])
def test_classwise_ece_matches_reference(kind: str, n_bins: int) -> None:
    probs, labels = _dataset(kind, seed=200 + n_bins, n_bins=n_bins)
    expected = _ref_classwise_ece(probs, labels, n_bins)
    assert classwise_ece(probs, labels, n_bins) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------
# The edge convention, pinned value by value
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confidence", "expected_bin"),
    [
        (0.0, 0),
        (0.1, 0),
        (0.2, 0),
        (float(np.nextafter(0.2, 1.0)), 1),
        (0.4, 1),
        (0.6, 2),
        (0.8, 3),
        (float(np.nextafter(1.0, 0.0)), 4),
        (1.0, 4),
    ],
)
def test_edge_values_land_in_the_lower_bin(confidence: float, expected_bin: int) -> None:
    bins = reliability_bins(np.array([[confidence, 0.0]]), np.array([0]), n_bins=5)
    assert bins.counts.tolist() == [1 if b == expected_bin else 0 for b in range(5)]


@pytest.mark.parametrize("n_bins", [3, 7, 10, 15])
def test_every_edge_b_over_m_lands_in_bin_b_minus_1(n_bins: int) -> None:
    values = np.arange(n_bins + 1) / n_bins  # 0, 1/M, ..., 1 as the top-label confidences
    probs = np.stack([values, np.zeros_like(values)], axis=1)
    bins = reliability_bins(probs, np.zeros(n_bins + 1, dtype=int), n_bins)
    expected = np.ones(n_bins, dtype=int)
    expected[0] = 2  # 0 and 1/M
    np.testing.assert_array_equal(bins.counts, expected)


def test_one_hot_correct_predictions_have_zero_error_and_fill_the_last_bin() -> None:
    probs = np.eye(5)[np.array([0, 3, 3, 1, 4, 2])]
    labels = probs.argmax(axis=1)
    bins = reliability_bins(probs, labels, n_bins=15)
    assert bins.counts.tolist() == [0] * 14 + [6]
    for metric in BINNED.values():
        assert metric(probs, labels) == 0.0


def test_confident_wrong_predictions_have_error_one() -> None:
    k = 5
    probs = np.eye(k)[np.array([0, 3, 3, 1, 4, 2])]
    labels = (probs.argmax(axis=1) + 1) % k
    assert ece(probs, labels) == 1.0
    assert mce(probs, labels) == 1.0
    assert adaptive_ece(probs, labels) == 1.0
    # Each sample costs 1/N in its predicted class (p=1, y=0) and 1/N in its true class
    # (p=0, y=1): 2 in total, averaged over K classes.
    assert classwise_ece(probs, labels) == pytest.approx(2 / k)


def test_empty_bins_count_zero() -> None:
    probs = np.array([[0.95, 0.05]] * 3 + [[0.55, 0.45]] * 2)
    labels = np.array([0, 0, 1, 0, 1])
    bins = reliability_bins(probs, labels, n_bins=10)
    filled = [5, 9]
    assert [b for b in range(10) if bins.counts[b] > 0] == filled
    assert np.all(np.isnan(np.delete(bins.confidence, filled)))
    assert np.all(np.isnan(np.delete(bins.accuracy, filled)))
    gap_high, gap_low = abs(2 / 3 - 0.95), abs(1 / 2 - 0.55)
    assert ece(probs, labels, n_bins=10) == pytest.approx(3 / 5 * gap_high + 2 / 5 * gap_low)
    assert mce(probs, labels, n_bins=10) == pytest.approx(gap_high)


# ---------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BINNED))
@pytest.mark.parametrize("kind", ["random", "edges", "mixed"])
def test_binned_metrics_lie_in_unit_interval(name: str, kind: str) -> None:
    for seed in range(5):
        probs, labels = _dataset(kind, seed=seed, n_bins=15)
        value = BINNED[name](probs, labels, 15)
        assert isinstance(value, float)
        assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("name", sorted(BINNED))
@pytest.mark.parametrize("kind", ["random", "edges"])
def test_binned_metrics_are_invariant_to_sample_order(name: str, kind: str) -> None:
    metric = BINNED[name]
    probs, labels = _dataset(kind, seed=3, n_bins=5)
    perm = np.random.default_rng(4).permutation(len(labels))
    for n_bins in (5, 7, 15):
        expected = metric(probs, labels, n_bins)
        assert metric(probs[perm], labels[perm], n_bins) == pytest.approx(expected, abs=1e-12)


def test_one_bin_closed_forms() -> None:
    probs, labels = _dataset("mixed", seed=5, n_bins=5)
    top_gap = abs(accuracy(probs, labels) - mean_confidence(probs))
    assert ece(probs, labels, n_bins=1) == pytest.approx(top_gap, abs=1e-12)
    assert mce(probs, labels, n_bins=1) == pytest.approx(top_gap, abs=1e-12)
    assert adaptive_ece(probs, labels, n_bins=1) == pytest.approx(top_gap, abs=1e-12)
    one_hot = np.eye(probs.shape[1])[labels]
    class_gaps = np.abs(probs.mean(axis=0) - one_hot.mean(axis=0))
    assert classwise_ece(probs, labels, n_bins=1) == pytest.approx(class_gaps.mean(), abs=1e-12)


def test_mce_is_at_least_ece() -> None:
    for seed in range(20):
        probs, labels = _dataset("mixed", seed=seed, n_bins=10)
        assert mce(probs, labels, 10) >= ece(probs, labels, 10)


def test_perfectly_calibrated_sample_has_near_zero_error() -> None:
    rng = np.random.default_rng(6)
    n, k = 200_000, 4
    logits = rng.normal(scale=2.0, size=(n, k))
    probs = softmax(logits)
    # Labels drawn from the predicted distribution: calibrated by construction.
    labels = np.minimum((rng.random((n, 1)) > probs.cumsum(axis=1)).sum(axis=1), k - 1)
    assert ece(probs, labels) < 0.01
    assert adaptive_ece(probs, labels) < 0.01
    assert classwise_ece(probs, labels) < 0.01
    # The same labels against over-sharpened probabilities: clearly miscalibrated.
    sharp = softmax(3.0 * logits)
    assert ece(sharp, labels) > 0.05
    assert overconfidence(sharp, labels) > 0.05


def test_classwise_ece_two_classes() -> None:
    rng = np.random.default_rng(7)
    probs = _random_probs(rng, 400, 2)
    labels = rng.integers(0, 2, size=400)
    # With two classes, p_0 = 1 - p_1 and 1[y=0] = 1 - 1[y=1]: away from bin edges both
    # classes give the same binned error, which is then the classwise ECE.
    class0 = _ref_binned(probs[:, 0].tolist(), (labels == 0).astype(float).tolist(), 10)["ece"]
    class1 = _ref_binned(probs[:, 1].tolist(), (labels == 1).astype(float).tolist(), 10)["ece"]
    assert class0 == pytest.approx(class1, abs=1e-12)
    assert classwise_ece(probs, labels, 10) == pytest.approx(class1, abs=1e-12)
    # By hand, n_bins=2: class 0 sees (0.7, y=1) and (0.2, y=1); class 1 (0.3, 0), (0.8, 0).
    hand = np.array([[0.7, 0.3], [0.2, 0.8]])
    assert classwise_ece(hand, np.array([0, 0]), n_bins=2) == pytest.approx(0.55)


# ---------------------------------------------------------------------------------------
# Outside reference: torchmetrics
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_bins", [5, 10, 15])
@pytest.mark.parametrize("num_classes", [3, 10])
def test_ece_and_mce_agree_with_torchmetrics(n_bins: int, num_classes: int) -> None:
    rng = np.random.default_rng(1000 * n_bins + num_classes)
    probs = _random_probs(rng, 2000, num_classes)
    labels = _labels_near_argmax(rng, probs)
    # torchmetrics bins [b/M, (b+1)/M) in float32: keep confidences clear of every edge.
    conf = probs.max(axis=1)
    edges = np.arange(n_bins + 1) / n_bins
    clear = np.min(np.abs(conf[:, None] - edges[None, :]), axis=1) > 1e-6
    probs, labels = probs[clear], labels[clear]
    assert clear.mean() > 0.99
    preds, target = torch.from_numpy(probs), torch.from_numpy(labels)
    for norm, ours in (("l1", ece), ("max", mce)):
        theirs = multiclass_calibration_error(
            preds, target, num_classes=num_classes, n_bins=n_bins, norm=norm
        )
        assert ours(probs, labels, n_bins) == pytest.approx(float(theirs), abs=1e-6)


# ---------------------------------------------------------------------------------------
# ReliabilityBins
# ---------------------------------------------------------------------------------------


def test_reliability_bins_structure() -> None:
    probs, labels = _dataset("mixed", seed=8, n_bins=15)
    bins = reliability_bins(probs, labels, n_bins=15)
    assert isinstance(bins, ReliabilityBins)
    assert (bins.n_bins, bins.n) == (15, len(labels))
    np.testing.assert_array_equal(bins.edges, np.arange(16) / 15)
    assert bins.counts.shape == bins.confidence.shape == bins.accuracy.shape == (15,)
    assert np.issubdtype(bins.counts.dtype, np.integer)
    assert bins.counts.sum() == len(labels)
    assert bins.ece == ece(probs, labels, 15)
    assert bins.mce == mce(probs, labels, 15)
    with pytest.raises(dataclasses.FrozenInstanceError):
        bins.n = 0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        bins.counts[0] = 0


# ---------------------------------------------------------------------------------------
# Logit gap
# ---------------------------------------------------------------------------------------


def test_logit_gap_by_hand() -> None:
    logits = np.array([[3.0, 1.0, -1.0], [0.0, 2.0, 0.0]])
    assert logit_gap(logits) == pytest.approx((3.0 - 0.0 + 2.0 - 0.0) / 2)
    assert logit_gap(logits + np.array([[100.0], [-7.0]])) == pytest.approx(2.5)
    assert logit_gap(np.array([[1.0, 1.0]])) == 0.0


@pytest.mark.parametrize("num_classes", [2, 10, 100])
@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.3, 0.9])
def test_optimal_logit_gap_matches_the_smoothed_target(alpha: float, num_classes: int) -> None:
    gap = optimal_logit_gap(alpha, num_classes)
    logits = np.zeros((1, num_classes))
    logits[0, 0] = gap
    assert logit_gap(logits) == pytest.approx(gap)
    assert softmax(logits)[0, 0] == pytest.approx(1 - alpha + alpha / num_classes, rel=1e-12)
    # ... and it is a stationary point of PyTorch's label-smoothed cross-entropy.
    z = torch.tensor(logits, requires_grad=True)
    F.cross_entropy(z, torch.tensor([0]), label_smoothing=alpha).backward()
    assert z.grad is not None
    assert float(z.grad.abs().max()) < 1e-12


def test_optimal_logit_gap_limits() -> None:
    assert optimal_logit_gap(0.0, 10) == math.inf
    assert optimal_logit_gap(1.0, 10) == 0.0
    assert optimal_logit_gap(0.1, 10) == pytest.approx(math.log(91))


# ---------------------------------------------------------------------------------------
# all_metrics
# ---------------------------------------------------------------------------------------


def test_all_metrics_keys_and_values() -> None:
    rng = np.random.default_rng(9)
    logits = rng.normal(scale=3.0, size=(400, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=400)
    result = all_metrics(logits, labels, n_bins=10)
    assert list(result) == [
        "accuracy",
        "nll",
        "brier",
        "ece",
        "mce",
        "adaptive_ece",
        "classwise_ece",
        "mean_confidence",
        "overconfidence",
        "logit_gap",
    ]
    assert all(type(v) is float for v in result.values())
    probs = softmax(logits.astype(np.float64))
    assert result["accuracy"] == accuracy(probs, labels)
    assert result["nll"] == nll_from_logits(logits, labels)
    assert result["nll"] == pytest.approx(nll(probs, labels), rel=1e-12)
    assert result["brier"] == brier(probs, labels)
    assert result["ece"] == ece(probs, labels, 10)
    assert result["mce"] == mce(probs, labels, 10)
    assert result["adaptive_ece"] == adaptive_ece(probs, labels, 10)
    assert result["classwise_ece"] == classwise_ece(probs, labels, 10)
    assert result["mean_confidence"] == mean_confidence(probs)
    assert result["overconfidence"] == overconfidence(probs, labels)
    assert result["logit_gap"] == logit_gap(logits)
    assert result["ece"] != ece(probs, labels, 15)  # n_bins is passed through


def test_all_metrics_nll_is_exact_where_the_probability_underflows() -> None:
    result = all_metrics(np.array([[0.0, -1e4], [0.0, 0.0]]), np.array([1, 0]))
    assert result["nll"] == pytest.approx((1e4 + math.log(2.0)) / 2)


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------

PROBS_LABELS_FUNCTIONS: dict[str, Callable[..., object]] = {
    "accuracy": accuracy,
    "nll": nll,
    "brier": brier,
    "overconfidence": overconfidence,
    "reliability_bins": reliability_bins,
    **BINNED,
}

GOOD_PROBS = np.array([[0.7, 0.3], [0.4, 0.6]])
GOOD_LABELS = np.array([0, 1])

BAD_INPUTS = {
    "probs 1-D": (np.array([0.7, 0.3]), np.array([0])),
    "probs 3-D": (GOOD_PROBS[None], GOOD_LABELS),
    "no samples": (np.zeros((0, 2)), np.zeros(0, dtype=int)),
    "probs NaN": (np.array([[np.nan, 0.3], [0.4, 0.6]]), GOOD_LABELS),
    "probs above 1": (np.array([[1.5, -0.5], [0.4, 0.6]]), GOOD_LABELS),
    "labels 2-D": (GOOD_PROBS, GOOD_LABELS[:, None]),
    "labels too few": (GOOD_PROBS, GOOD_LABELS[:1]),
    "label == K": (GOOD_PROBS, np.array([0, 2])),
    "label < 0": (GOOD_PROBS, np.array([-1, 0])),
    "float labels": (GOOD_PROBS, np.array([0.0, 1.0])),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("name", sorted(PROBS_LABELS_FUNCTIONS))
def test_bad_probs_or_labels_are_rejected(name: str, case: str) -> None:
    probs, labels = BAD_INPUTS[case]
    with pytest.raises(ValueError, match="expected"):
        PROBS_LABELS_FUNCTIONS[name](probs, labels)


@pytest.mark.parametrize("n_bins", [0, -1, 2.5, True])
@pytest.mark.parametrize("name", sorted({**BINNED, "reliability_bins": reliability_bins}))
def test_bad_n_bins_is_rejected(name: str, n_bins: object) -> None:
    function = {**BINNED, "reliability_bins": reliability_bins}[name]
    with pytest.raises(ValueError, match="expected n_bins"):
        function(GOOD_PROBS, GOOD_LABELS, n_bins)


def test_bad_logits_are_rejected() -> None:
    with pytest.raises(ValueError, match="expected"):
        mean_confidence(np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="expected"):
        nll_from_logits(np.array([[0.0, 1.0]]), np.array([2]))
    with pytest.raises(ValueError, match="expected finite"):
        all_metrics(np.array([[0.0, np.nan]]), np.array([0]))
    with pytest.raises(ValueError, match="expected n_bins"):
        all_metrics(np.array([[0.0, 1.0]]), np.array([0]), n_bins=0)
    with pytest.raises(ValueError, match="expected at least 2 classes"):
        logit_gap(np.array([[1.0], [2.0]]))
    for alpha, num_classes in ((-0.1, 10), (1.5, 10), (0.1, 1)):
        with pytest.raises(ValueError, match="expected"):
            optimal_logit_gap(alpha, num_classes)


def test_docstring_examples() -> None:
    result = doctest.testmod(metrics)
    assert result.attempted > 0
    assert result.failed == 0
