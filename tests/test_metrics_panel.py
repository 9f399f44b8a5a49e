"""Tests for smooth ECE, the estimator panel and the ECE noise floor (lsexp.analysis.metrics).

Smooth ECE is checked against a direct float64 evaluation of the paper's integral (Błasiok &
Nakkiran 2023: reflected Gaussian kernel, no grid, no FFT), against the authors' ``relplot``
package, and against closed forms; the noise floor against exact binomial expectations
(scipy.stats.binom).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import relplot
from scipy.stats import binom

from lsexp.analysis.metrics import (
    PANEL_BINS,
    adaptive_ece,
    calibration_noise_floor,
    calibration_panel,
    calibration_panel_labels,
    classwise_ece,
    debiased_l2_ce,
    ece,
    ece_noise_floor,
    smooth_ece,
    smooth_ece_bandwidth,
    softmax,
)

# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def _interior(seed: int, n: int, gap: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """Two classes, confidence ~ U(0.52, 0.97), right with probability confidence - gap:
    no confidence near 0 or 1."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.52, 0.97, size=n)
    right = rng.random(n) < conf - gap
    return np.stack([conf, 1.0 - conf], axis=1), np.where(right, 0, 1)


def _saturated(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident softmax(3 z) against labels from softmax(z): many confidences ~1.0."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(n, 10))
    labels = np.minimum((np.cumsum(softmax(z), axis=1) < rng.random((n, 1))).sum(axis=1), 9)
    return softmax(3.0 * z), labels


def _calibrated(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probs = softmax(rng.normal(scale=2.0, size=(n, 10)))
    labels = np.minimum((np.cumsum(probs, axis=1) < rng.random((n, 1))).sum(axis=1), 9)
    return probs, labels


DATASETS = {
    "interior": lambda: _interior(0, 300),
    "saturated": lambda: _saturated(1, 300),
    "calibrated": lambda: _calibrated(2, 300),
}


def _top(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(np.float64)


# ---------------------------------------------------------------------------------------
# Smooth ECE: a direct float64 reference of the definition
# ---------------------------------------------------------------------------------------


def _ref_smooth_ece(conf: np.ndarray, correct: np.ndarray, sigma: float) -> float:
    """int_0^1 |(1/N) sum_i K(t, f_i)(y_i - f_i)| dt with the reflected Gaussian kernel
    K(t, f) = sum_k phi_sigma(t - f - 2k) + phi_sigma(t + f - 2k), summed directly at 10,001
    points (trapezoid rule); images further than 9 sigma from [0, 1] add < 1e-17 and are
    skipped."""
    t = np.linspace(0.0, 1.0, 10001)
    residual = correct - conf
    total = np.zeros_like(t)
    reach = 1 + math.ceil(5 * sigma)
    for k in range(-reach, reach + 1):
        for image in (conf + 2 * k, -conf + 2 * k):
            near = (image > -9 * sigma) & (image < 1 + 9 * sigma)
            z = (t[:, None] - image[None, near]) / sigma
            total += np.exp(-0.5 * z * z) @ residual[near]
    total /= len(conf) * sigma * math.sqrt(2 * math.pi)
    return float(np.trapezoid(np.abs(total), t))


@pytest.mark.parametrize("sigma", [0.003, 0.01, 0.05, 0.2])
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_smooth_ece_at_a_fixed_bandwidth_matches_the_definition(name: str, sigma: float) -> None:
    probs, labels = DATASETS[name]()
    expected = _ref_smooth_ece(*_top(probs, labels), sigma)
    assert smooth_ece(probs, labels, bandwidth=sigma) == pytest.approx(expected, rel=5e-5)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_automatic_bandwidth_is_the_fixed_point(name: str) -> None:
    probs, labels = DATASETS[name]()
    sigma = smooth_ece_bandwidth(probs, labels)
    value = smooth_ece(probs, labels)
    assert value == pytest.approx(sigma, abs=1e-8)  # smECE_sigma* = sigma*
    assert _ref_smooth_ece(*_top(probs, labels), sigma) == pytest.approx(sigma, rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smooth_ece_matches_relplot_away_from_0_and_1(seed: int) -> None:
    probs, labels = _interior(seed, 2000, gap=0.03 * (seed + 1))
    conf, correct = _top(probs, labels)
    for sigma in (0.02, 0.05, 0.1):
        expected = relplot.smECE_sigma(conf, correct, sigma)
        assert smooth_ece(probs, labels, bandwidth=sigma) == pytest.approx(expected, rel=5e-3)
    # relplot bisects for sigma* to 1/1024 and returns the upper end: compare at its sigma,
    # and the automatic values to within that resolution.
    auto, width = relplot.smECE(conf, correct, return_width=True)
    assert smooth_ece(probs, labels, bandwidth=width) == pytest.approx(auto, rel=5e-3)
    assert smooth_ece(probs, labels) == pytest.approx(auto, abs=2e-3)
    assert smooth_ece_bandwidth(probs, labels) == pytest.approx(width, abs=2e-3)


def test_constant_confidence_gives_its_gap_at_any_bandwidth() -> None:
    # Every f = 0.9, 70 % right: the smoothed residual is K(t, 0.9)·(0.7 - 0.9) and the
    # reflected kernel integrates to 1 over [0, 1], so smECE = 0.2 and sigma* = 0.2.
    probs, labels = np.tile([0.9, 0.1], (100, 1)), np.array([0] * 70 + [1] * 30)
    for sigma in (0.005, 0.05, 0.5, 1.0):
        assert smooth_ece(probs, labels, bandwidth=sigma) == pytest.approx(0.2, abs=1e-12)
    assert smooth_ece(probs, labels) == pytest.approx(0.2, abs=1e-9)
    assert smooth_ece_bandwidth(probs, labels) == pytest.approx(0.2, abs=1e-8)


def test_two_far_apart_groups_add_up() -> None:
    # 40 at 0.6 (half right: gap 0.1), 60 at 0.9 (70 % right: gap 0.2), sigma = 0.001: the
    # kernels do not overlap (300 sigma apart), so smECE = (40·0.1 + 60·0.2) / 100 = 0.16.
    conf = np.array([0.6] * 40 + [0.9] * 60)
    probs = np.stack([conf, 1 - conf], axis=1)
    labels = np.array([0] * 20 + [1] * 20 + [0] * 42 + [1] * 18)
    assert smooth_ece(probs, labels, bandwidth=0.001) == pytest.approx(0.16, abs=1e-9)


def test_all_confidently_wrong_gives_one() -> None:
    probs, labels = np.tile([1.0, 0.0], (10, 1)), np.ones(10, dtype=np.int64)
    assert smooth_ece(probs, labels) == pytest.approx(1.0, abs=1e-12)
    assert smooth_ece_bandwidth(probs, labels) == 1.0


def test_smooth_ece_is_order_and_dtype_invariant() -> None:
    probs, labels = _saturated(3, 500)
    value = smooth_ece(probs, labels)
    order = np.random.default_rng(0).permutation(500)
    assert smooth_ece(probs[order], labels[order]) == pytest.approx(value, rel=1e-9)
    assert smooth_ece(probs.astype(np.float32), labels) == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize("bad", [0.0, 1e-4, 1.5, math.nan])
def test_bad_bandwidth_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="expected a bandwidth"):
        smooth_ece(np.tile([0.9, 0.1], (4, 1)), np.zeros(4, dtype=np.int64), bandwidth=bad)


# ---------------------------------------------------------------------------------------
# The panel
# ---------------------------------------------------------------------------------------


def test_panel_keys_labels_and_values() -> None:
    probs, labels = _saturated(4, 600)
    panel = calibration_panel(probs, labels, n_bins=12)
    names = calibration_panel_labels(12)
    assert list(panel) == list(names)
    for m in PANEL_BINS:
        assert panel[f"ece_width_{m}"] == ece(probs, labels, m)
        assert panel[f"ece_mass_{m}"] == pytest.approx(adaptive_ece(probs, labels, m), abs=1e-15)
        assert names[f"ece_width_{m}"] == f"ECE, {m} equal-width bins"
        assert names[f"ece_mass_{m}"] == f"ECE, {m} equal-mass bins"
    assert panel["classwise_ece"] == classwise_ece(probs, labels, 12)
    assert panel["smooth_ece"] == smooth_ece(probs, labels)
    assert panel["debiased_l2_ce"] == debiased_l2_ce(probs, labels, 12)
    assert "12 equal-mass bins" in names["debiased_l2_ce"] and "l2" in names["debiased_l2_ce"]
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in panel.values())


# ---------------------------------------------------------------------------------------
# Noise floor: exact binomial expectations
# ---------------------------------------------------------------------------------------


def _abs_binomial_moments(n: int, c: float) -> tuple[float, float]:
    """E and E^2 of |S - n c| for S ~ Binomial(n, c), from the pmf."""
    s = np.arange(n + 1)
    pmf = binom.pmf(s, n, c)
    dev = np.abs(s - n * c)
    return float(np.sum(pmf * dev)), float(np.sum(pmf * dev**2))


def test_noise_floor_of_one_confidence_is_the_binomial_mean_absolute_deviation() -> None:
    # All 60 confidences 0.85, one bin: ECE_r = |S/60 - 0.85| with S ~ Binomial(60, 0.85).
    probs = np.tile([0.85, 0.15], (60, 1))
    m1, m2 = _abs_binomial_moments(60, 0.85)
    mean, sd = m1 / 60, math.sqrt(m2 - m1 * m1) / 60
    for binning in ("width", "mass"):
        floor = ece_noise_floor(probs, n_draws=20000, seed=1, binning=binning)
        assert floor.mean == pytest.approx(mean, abs=4 * sd / math.sqrt(20000))
        assert floor.std == pytest.approx(sd, rel=0.05)
        assert (floor.n_draws, floor.seed) == (20000, 1)


def test_noise_floor_of_two_bins_adds_independent_binomials() -> None:
    # 30 at 0.62 and 70 at 0.95, in different equal-width bins (15 bins) and equal-mass bins.
    conf = np.array([0.62] * 30 + [0.95] * 70)
    probs = np.stack([conf, 1 - conf], axis=1)
    (a1, a2), (b1, b2) = _abs_binomial_moments(30, 0.62), _abs_binomial_moments(70, 0.95)
    mean = (a1 + b1) / 100
    sd = math.sqrt(a2 - a1 * a1 + b2 - b1 * b1) / 100
    for binning in ("width", "mass"):
        floor = ece_noise_floor(probs, n_bins=15, n_draws=20000, binning=binning)
        assert floor.mean == pytest.approx(mean, abs=4 * sd / math.sqrt(20000))


def test_classwise_noise_floor_of_a_binary_constant_model() -> None:
    # K = 2, p = (0.7, 0.3) everywhere: both classes' binned errors are |S/n - 0.7|, so
    # classwise = top-label = the binomial mean absolute deviation.
    probs = np.tile([0.7, 0.3], (40, 1))
    m1, m2 = _abs_binomial_moments(40, 0.7)
    mean, sd = m1 / 40, math.sqrt(m2 - m1 * m1) / 40
    floors = calibration_noise_floor(probs, n_draws=20000, seed=3)
    for key in ("classwise_ece", "ece_width_15", "ece_mass_10"):
        assert floors[key].mean == pytest.approx(mean, abs=4 * sd / math.sqrt(20000))


def test_panel_floor_agrees_with_ece_noise_floor_and_with_simulation() -> None:
    probs, _ = _calibrated(5, 1500)
    floors = calibration_noise_floor(probs, n_draws=400, seed=0)
    assert set(floors) == set(calibration_panel_labels()) - {"smooth_ece", "debiased_l2_ce"}
    single = ece_noise_floor(probs, n_draws=400, seed=7)
    se = math.hypot(floors["ece_width_15"].std, single.std) / math.sqrt(400)
    assert floors["ece_width_15"].mean == pytest.approx(single.mean, abs=4 * se)
    # The same floor by brute force: ECE of the probabilities against sampled labels.
    rng = np.random.default_rng(11)
    cdf = np.cumsum(probs, axis=1)
    brute = [
        ece(probs, np.minimum((cdf < rng.random((1500, 1))).sum(axis=1), 9)) for _ in range(400)
    ]
    se = math.hypot(np.std(brute), single.std) / math.sqrt(400)
    assert single.mean == pytest.approx(np.mean(brute), abs=4 * se)
    assert 0.01 < single.mean < 0.04  # the 1-2.5 % the issue quotes for N = 2,000, roughly


def test_noise_floor_is_reproducible_by_seed() -> None:
    probs, _ = _calibrated(6, 500)
    assert ece_noise_floor(probs, seed=4) == ece_noise_floor(probs, seed=4)
    assert ece_noise_floor(probs, seed=4).mean != ece_noise_floor(probs, seed=5).mean
    a, b = calibration_noise_floor(probs, seed=4), calibration_noise_floor(probs, seed=4)
    assert a == b


def test_noise_floor_validation() -> None:
    probs = np.tile([0.7, 0.3], (5, 1))
    with pytest.raises(ValueError, match="n_draws"):
        ece_noise_floor(probs, n_draws=1)
    with pytest.raises(ValueError, match="binning"):
        ece_noise_floor(probs, binning="quantile")
    with pytest.raises(ValueError, match="expected probs"):
        calibration_noise_floor(np.array([[1.5, -0.5]]))
