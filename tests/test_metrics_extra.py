"""Tests for lsexp.analysis.metrics.debiased_l2_ce (formerly debiased_ece) and
ece_bootstrap_interval.

debiased_l2_ce is checked against a slow port of p-lambda/verified_calibration's
``get_calibration_error(probs, labels, p=2, debias=True, mode='top-label')`` for continuous
confidences (``get_equal_bins`` + ``unbiased_l2_ce``), and against the properties the
estimator exists for: about 0 on calibrated samples, unbiased for the squared error.
"""

from __future__ import annotations

import bisect
import math
import time

import numpy as np
import pytest

from lsexp.analysis.metrics import (
    _debiased_squared_ce,
    _resampled_ece,
    debiased_ece,
    debiased_l2_ce,
    ece,
    ece_bootstrap_interval,
    equal_width_bin_index,
    reliability_bins,
    softmax,
)


def top_label(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence (max probability) and correctness (0/1, float64) of the top label."""
    return probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(np.float64)


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def _calibrated(seed: int, n: int, k: int, scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """probs = softmax of Gaussian logits, labels drawn from probs: calibrated by construction."""
    rng = np.random.default_rng(seed)
    probs = softmax(rng.normal(scale=scale, size=(n, k)))
    labels = np.minimum((np.cumsum(probs, axis=1) < rng.random((n, 1))).sum(axis=1), k - 1)
    return probs, labels


def _overconfident(seed: int, n: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z), reported probs softmax(2.5 z): clearly over-confident."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, k))
    labels = np.minimum((np.cumsum(softmax(z), axis=1) < rng.random((n, 1))).sum(axis=1), k - 1)
    return softmax(2.5 * z), labels


def _binary_gap(seed: int, n: int, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Two classes, confidence c ~ U(0.5 + gap, 1), right with probability c - gap."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.5 + gap, 1.0, size=n)
    right = rng.random(n) < conf - gap
    return np.stack([conf, 1.0 - conf], axis=1), np.where(right, 0, 1)


def _with_ties(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Confidences from a handful of values, so many fall on equal-mass boundaries; right
    with probability confidence - 0.1."""
    rng = np.random.default_rng(seed)
    tops = rng.choice([0.5, 0.6, 0.75, 0.9, 1.0], size=n)
    probs = np.stack([tops, 1.0 - tops], axis=1)
    return probs, (rng.random(n) > tops - 0.1).astype(np.int64)


# ---------------------------------------------------------------------------------------
# Slow reference: Kumar et al.'s code path, one Python step at a time
# ---------------------------------------------------------------------------------------


def _ref_l2_ce(probs: np.ndarray, labels: np.ndarray, n_bins: int, debias: bool) -> float:
    """Port of unbiased_l2_ce (debias) or plugin_ce with p=2: sqrt of the clipped square."""
    return math.sqrt(max(_ref_squared_ce(probs, labels, n_bins, debias), 0.0))


def _ref_squared_ce(probs: np.ndarray, labels: np.ndarray, n_bins: int, debias: bool) -> float:
    """Port of get_equal_bins + fast_bin + unbiased_square_ce (debias) or the plug-in square."""
    confidences, correct = [], []
    for row, label in zip(probs.tolist(), labels.tolist(), strict=True):
        confidences.append(max(row))
        correct.append(1.0 if row.index(max(row)) == label else 0.0)
    n = len(confidences)
    ordered = sorted(confidences)
    groups = min(n_bins, n)
    base, extra = divmod(n, groups)  # np.array_split: the first `extra` groups get one more
    parts, start = [], 0
    for g in range(groups):
        size = base + (1 if g < extra else 0)
        parts.append(ordered[start : start + size])
        start += size
    bounds = [(parts[i][-1] + parts[i + 1][0]) / 2.0 for i in range(groups - 1)]
    bounds = sorted(set([*bounds, 1.0]))
    members: list[list[tuple[float, float]]] = [[] for _ in bounds]
    for c, o in zip(confidences, correct, strict=True):
        members[bisect.bisect_left(bounds, c)].append((c, o))
    total = 0.0
    for bin_members in members:
        size = len(bin_members)
        if size < (2 if debias else 1):
            continue
        conf = sum(c for c, _ in bin_members) / size
        acc = sum(o for _, o in bin_members) / size
        error = (conf - acc) ** 2
        if debias:
            error -= acc * (1.0 - acc) / (size - 1.0)
        total += size / n * error
    return total


DATASETS = {
    "calibrated": lambda: _calibrated(0, 700, 10),
    "overconfident": lambda: _overconfident(1, 700),
    "binary_gap": lambda: _binary_gap(2, 700, 0.15),
    "ties": lambda: _with_ties(3, 700),
    "fewer_samples_than_bins": lambda: _overconfident(4, 7),
    "one_sample": lambda: _overconfident(5, 1),
}


# ---------------------------------------------------------------------------------------
# debiased_l2_ce
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_bins", [1, 2, 15, 40])
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_debiased_l2_ce_matches_the_slow_reference(name: str, n_bins: int) -> None:
    probs, labels = DATASETS[name]()
    squared = _ref_squared_ce(probs, labels, n_bins, debias=True)  # before clipping at 0
    conf, correct = top_label(probs, labels)
    assert _debiased_squared_ce(conf, correct, n_bins) == pytest.approx(squared, abs=1e-14)
    expected = _ref_l2_ce(probs, labels, n_bins, debias=True)
    assert debiased_l2_ce(probs, labels, n_bins) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_the_old_name_is_the_same_function() -> None:
    assert debiased_ece is debiased_l2_ce


def test_n_bins_1_closed_form() -> None:
    probs, labels = _overconfident(6, 500)
    conf, correct = probs.max(axis=1), (probs.argmax(axis=1) == labels)
    acc, n = correct.mean(), len(labels)
    expected = math.sqrt(max((conf.mean() - acc) ** 2 - acc * (1 - acc) / (n - 1), 0.0))
    assert debiased_l2_ce(probs, labels, n_bins=1) == pytest.approx(expected, rel=1e-12)


def test_calibrated_samples_give_about_zero_below_the_plug_in() -> None:
    probs, labels = _calibrated(7, 20000, 10)
    debiased = debiased_l2_ce(probs, labels)
    plug_in = _ref_l2_ce(probs, labels, 15, debias=False)
    assert debiased < 0.01
    assert plug_in > debiased
    # The plug-in's squared error is inflated by about sum_b acc_b (1 - acc_b) / N ~ M / 4N.
    assert plug_in**2 - debiased**2 > 15 * 0.1 / 20000


def test_squared_estimate_is_unbiased_on_calibrated_samples() -> None:
    # Averaged over 300 calibrated samples of N = 600, the debiased squared error is ~0,
    # while the plug-in's sits at sum_b (n_b/N) var_b / n_b ~ M * 0.2 / N ~ 5e-3.
    debiased, plug_in = [], []
    for seed in range(300):
        probs, labels = _calibrated(1000 + seed, 600, 10)
        conf, correct = top_label(probs, labels)
        debiased.append(_debiased_squared_ce(conf, correct, 15))
        plug_in.append(_ref_l2_ce(probs, labels, 15, debias=False) ** 2)
    mean, stderr = np.mean(debiased), np.std(debiased) / math.sqrt(len(debiased))
    assert abs(mean) < 3 * stderr + 1e-5
    assert np.mean(plug_in) > 20 * abs(mean)
    assert np.mean(plug_in) > 2e-3


def test_constant_miscalibration_gives_its_gap() -> None:
    # Confidence always 0.9, accuracy exactly 0.7: the l2 error is 0.2.
    n = 10000
    probs = np.tile([0.9, 0.05, 0.05], (n, 1))
    labels = np.where(np.arange(n) < 7 * n // 10, 0, 1)
    expected = math.sqrt(0.2**2 - 0.7 * 0.3 / (n - 1))  # one bin: all confidences are equal
    assert debiased_l2_ce(probs, labels) == pytest.approx(expected, rel=1e-12)
    assert debiased_l2_ce(probs, labels) == pytest.approx(0.2, abs=1e-3)


def test_continuous_miscalibration_gives_its_gap() -> None:
    probs, labels = _binary_gap(8, 40000, 0.2)  # accuracy = confidence - 0.2 everywhere
    assert debiased_l2_ce(probs, labels) == pytest.approx(0.2, abs=0.01)


def test_debiased_l2_ce_properties() -> None:
    probs, labels = _overconfident(9, 2000)
    value = debiased_l2_ce(probs, labels)
    assert isinstance(value, float)
    assert 0.0 <= value <= 1.0
    order = np.random.default_rng(0).permutation(2000)
    assert debiased_l2_ce(probs[order], labels[order]) == pytest.approx(value, rel=1e-12)
    assert debiased_l2_ce(probs.astype(np.float32), labels) == pytest.approx(value, abs=1e-6)
    # Perfect and certain: every bin has acc 1 and conf 1, so exactly 0.
    assert debiased_l2_ce(np.eye(4)[[0, 1, 2, 3, 0]], np.array([0, 1, 2, 3, 0])) == 0.0


@pytest.mark.parametrize(
    ("probs", "labels", "n_bins", "message"),
    [
        ([[0.5, 0.5]], [0], 0, "expected n_bins"),
        ([[0.5, np.nan]], [0], 15, "expected finite probs"),
        ([[1.5, -0.5]], [0], 15, r"expected probs in \[0, 1\]"),
        ([[0.5, 0.5]], [2], 15, r"expected labels in \[0, 2\)"),
    ],
)
def test_debiased_l2_ce_validation(probs, labels, n_bins, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        debiased_l2_ce(np.array(probs), np.array(labels), n_bins)


# ---------------------------------------------------------------------------------------
# ece_bootstrap_interval
# ---------------------------------------------------------------------------------------


def test_bin_index_follows_the_equal_width_convention() -> None:
    # Values exactly on the edges b/M (and 0, 1.0) go where reliability_bins puts them:
    # bin b = (b/M, (b+1)/M], 0 in the first bin.
    m = 5
    values = np.concatenate([np.arange(m + 1) / m, np.random.default_rng(0).random(200)])
    index = equal_width_bin_index(values, m)
    one_class = reliability_bins(values[:, None], np.zeros(len(values), dtype=np.int64), m)
    np.testing.assert_array_equal(np.bincount(index, minlength=m), one_class.counts)
    np.testing.assert_array_equal(index[: m + 1], [0, 0, 1, 2, 3, 4])


def test_resampled_ece_equals_ece_of_each_resample() -> None:
    probs, labels = _overconfident(10, 300)
    conf, correct = top_label(probs, labels)
    n_boot, seed = 25, 3
    got = _resampled_ece(conf, correct, 15, n_boot, np.random.default_rng(seed))
    idx = np.random.default_rng(seed).integers(0, 300, size=(n_boot, 300))
    expected = [ece(probs[i], labels[i]) for i in idx]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_interval_matches_a_slow_percentile_bootstrap() -> None:
    probs, labels = _overconfident(11, 400)
    idx = np.random.default_rng(7).integers(0, 400, size=(50, 400))
    eces = [ece(probs[i], labels[i], n_bins=10) for i in idx]
    expected = np.quantile(eces, [0.05, 0.95])
    got = ece_bootstrap_interval(probs, labels, n_bins=10, n_boot=50, level=0.9, seed=7)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_interval_contains_the_point_ece() -> None:
    probs, labels = _overconfident(12, 5000)
    lo, hi = ece_bootstrap_interval(probs, labels)
    assert lo < ece(probs, labels) < hi
    assert hi - lo > 0.0


def test_interval_narrows_as_n_grows() -> None:
    widths = []
    for n in (500, 5000, 50000):
        lo, hi = ece_bootstrap_interval(*_overconfident(13, n))
        widths.append(hi - lo)
    # Width ~ 1/sqrt(N): each tenfold N should shrink it about threefold.
    assert widths[0] > 2 * widths[1] > 4 * widths[2]


def test_interval_widens_with_level() -> None:
    probs, labels = _overconfident(14, 2000)
    lo50, hi50 = ece_bootstrap_interval(probs, labels, level=0.5)
    lo99, hi99 = ece_bootstrap_interval(probs, labels, level=0.99)
    assert lo99 < lo50 < hi50 < hi99


def test_interval_deterministic_for_a_seed() -> None:
    probs, labels = _overconfident(15, 2000)
    first = ece_bootstrap_interval(probs, labels, seed=5)
    assert ece_bootstrap_interval(probs, labels, seed=5) == first
    assert ece_bootstrap_interval(probs, labels, seed=6) != first
    assert all(isinstance(v, float) for v in first)


def test_interval_is_fast() -> None:
    rng = np.random.default_rng(16)
    probs = softmax(rng.normal(scale=3.0, size=(10000, 100)))
    labels = rng.integers(0, 100, size=10000)
    start = time.perf_counter()
    ece_bootstrap_interval(probs, labels, n_bins=15, n_boot=200)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5, 95, np.nan, True, "0.95", None])
def test_level_validation(level) -> None:
    probs, labels = _overconfident(17, 50)
    with pytest.raises(ValueError, match="expected level"):
        ece_bootstrap_interval(probs, labels, level=level)


@pytest.mark.parametrize("n_boot", [0, 1, -5, 2.5, True])
def test_n_boot_validation(n_boot) -> None:
    probs, labels = _overconfident(18, 50)
    with pytest.raises(ValueError, match="expected n_boot"):
        ece_bootstrap_interval(probs, labels, n_boot=n_boot)


def test_interval_validates_inputs_like_ece() -> None:
    with pytest.raises(ValueError, match="expected n_bins"):
        ece_bootstrap_interval(np.array([[0.5, 0.5]]), np.array([0]), n_bins=0)
    with pytest.raises(ValueError, match="expected 1 labels"):
        ece_bootstrap_interval(np.array([[0.5, 0.5]]), np.array([0, 1]))
