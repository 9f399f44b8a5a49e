"""Tests for lsexp.analysis.calibration: temperature scaling recovers a known T, matches a
brute-force grid minimiser, and stays finite and in bounds on degenerate and extreme inputs."""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest

from lsexp.analysis import calibration
from lsexp.analysis.calibration import T_MAX, T_MIN, apply_temperature, fit_temperature
from lsexp.analysis.metrics import nll_from_logits, softmax

# ---------------------------------------------------------------------------------------
# Data and references
# ---------------------------------------------------------------------------------------


def _calibrated(seed: int, n: int, k: int, scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Logits z ~ N(0, scale^2) and labels drawn from softmax(z): calibrated at T = 1."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=scale, size=(n, k))
    cdf = np.cumsum(softmax(z), axis=1)
    labels = np.minimum((cdf < rng.random((n, 1))).sum(axis=1), k - 1)
    return z, labels


def _nll_at(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    return nll_from_logits(np.asarray(logits, dtype=np.float64) / temperature, labels)


def _grid_minimiser(logits: np.ndarray, labels: np.ndarray, n: int = 2001) -> tuple[float, float]:
    """(T, step) of the lowest NLL on a dense log-spaced grid over [T_MIN, T_MAX]."""
    grid = np.geomspace(T_MIN, T_MAX, n)
    values = [_nll_at(logits, labels, t) for t in grid]
    return float(grid[int(np.argmin(values))]), float(grid[1] / grid[0])


# ---------------------------------------------------------------------------------------
# Recovery and optimality
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("true_t", [3.0, 0.5])
def test_recovers_the_temperature_that_calibrates(true_t: float) -> None:
    z, labels = _calibrated(seed=0, n=20000, k=10)
    # softmax(z) is calibrated, so (z * T) / T is: the fit should find T back.
    assert fit_temperature(z * true_t, labels) == pytest.approx(true_t, rel=0.03)


def test_fitted_t_beats_t1_and_its_neighbours() -> None:
    z, labels = _calibrated(seed=1, n=20000, k=10)
    logits = z * 2.5  # over-confident
    t = fit_temperature(logits, labels)
    best = _nll_at(logits, labels, t)
    assert best < _nll_at(logits, labels, 1.0)
    assert best <= _nll_at(logits, labels, t * 1.05)
    assert best <= _nll_at(logits, labels, t * 0.95)
    assert best <= _nll_at(logits, labels, t * (1 + 1e-6))
    assert best <= _nll_at(logits, labels, t * (1 - 1e-6))


def _mixed(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident logits with 30 % label noise: an interior optimum far from T = 1."""
    rng = np.random.default_rng(seed)
    z, labels = _calibrated(seed, 600, 10, scale=4.0)
    noisy = rng.random(600) < 0.3
    labels[noisy] = rng.integers(0, 10, size=int(noisy.sum()))
    return z, labels


DATASETS = {
    "calibrated": lambda: _calibrated(2, 600, 10),
    "overconfident": lambda: (_calibrated(3, 600, 10)[0] * 6.0, _calibrated(3, 600, 10)[1]),
    "underconfident": lambda: (_calibrated(4, 600, 5)[0] * 0.1, _calibrated(4, 600, 5)[1]),
    "label_noise": lambda: _mixed(5),
    "binary": lambda: _calibrated(6, 600, 2, scale=5.0),
    "tiny": lambda: _calibrated(7, 3, 4),
}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_matches_a_dense_grid_minimiser(name: str) -> None:
    logits, labels = DATASETS[name]()
    t = fit_temperature(logits, labels)
    t_grid, step = _grid_minimiser(logits, labels)
    assert T_MIN <= t <= T_MAX
    assert t_grid / step <= t <= t_grid * step  # within one grid step of the grid's best
    assert _nll_at(logits, labels, t) <= _nll_at(logits, labels, t_grid) + 1e-12


def test_binary_recovery() -> None:
    z, labels = _calibrated(seed=8, n=20000, k=2, scale=3.0)
    assert fit_temperature(z * 2.0, labels) == pytest.approx(2.0, rel=0.03)


# ---------------------------------------------------------------------------------------
# Edge cases: the fit never returns NaN and never leaves [T_MIN, T_MAX]
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("margin", [2.0, 50.0, 1e4])
def test_all_correct_goes_to_the_lower_bound(margin: float) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=500)
    logits = rng.normal(size=(500, 10))
    logits[np.arange(500), labels] += margin + 10.0  # every prediction right
    assert fit_temperature(logits, labels) == T_MIN


def test_confidently_wrong_goes_to_the_upper_bound() -> None:
    logits = np.array([[1e4, 0.0, 0.0], [0.0, 1e4, 0.0], [0.0, 0.0, 1e4], [1e4, 0.0, 0.0]])
    labels = np.array([0, 1, 2, 1])  # one in four wrong at a margin of 1e4
    assert fit_temperature(logits, labels) == T_MAX  # true optimum ~1e4 / log 3, clamped


@pytest.mark.parametrize("k", [1, 2, 10])
def test_equal_logits_give_one(k: int) -> None:
    labels = np.arange(12) % k
    assert fit_temperature(np.zeros((12, k)), labels) == 1.0
    assert fit_temperature(np.full((12, k), 7.5), labels) == 1.0


def test_logits_too_small_to_matter_give_one() -> None:
    z, labels = _calibrated(seed=9, n=100, k=3)
    assert fit_temperature(z * 1e-30, labels) == 1.0


@pytest.mark.parametrize(("label", "expected"), [(0, T_MIN), (1, T_MAX)])
def test_single_sample(label: int, expected: float) -> None:
    assert fit_temperature(np.array([[3.0, 1.0]]), np.array([label])) == expected


def test_single_sample_with_an_interior_optimum() -> None:
    # Three classes at 2, 2, 0 with true class 0: the NLL falls towards log 2 as T -> 0 but
    # never reaches it, and rises towards log 3 as T grows: the lower bound wins.
    assert fit_temperature(np.array([[2.0, 2.0, 0.0]]), np.array([0])) == T_MIN


def test_shift_invariant_at_magnitude_1e4() -> None:
    z, labels = _calibrated(seed=10, n=3000, k=10)
    t = fit_temperature(z * 2.0, labels)
    # Softmax ignores a per-row offset; the fit must too, at logits of magnitude 1e4.
    offsets = np.random.default_rng(0).choice([-1e4, 1e4], size=(3000, 1))
    assert fit_temperature(z * 2.0 + offsets, labels) == pytest.approx(t, rel=1e-6)


@pytest.mark.parametrize(
    "logits",
    [
        [[1e300, -1e300], [0.0, 1e300]],
        [[1.7e308, -1.7e308, 0.0], [-1.7e308, 0.0, 1.0]],
        [[1e-300, 0.0], [0.0, 5e-324]],
        [[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]],
    ],
)
def test_extreme_finite_logits_give_a_finite_t_without_warnings(logits: list) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value RuntimeWarning either
        t = fit_temperature(np.array(logits), np.array([1, 0]))
    assert np.isfinite(t)
    assert T_MIN <= t <= T_MAX


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_logits_are_rejected(bad: float) -> None:
    logits = np.zeros((4, 3))
    logits[2, 1] = bad
    with pytest.raises(ValueError, match="expected finite logits"):
        fit_temperature(logits, np.array([0, 1, 2, 0]))


@pytest.mark.parametrize(
    ("logits", "labels", "message"),
    [
        (np.zeros(3), [0, 1, 2], "expected logits of shape"),
        (np.zeros((3, 2)), [0, 1], "expected 3 labels"),
        (np.zeros((3, 2)), [0, 1, 2], r"expected labels in \[0, 2\)"),
        (np.zeros((3, 2)), [0.0, 1.0, 1.0], "expected integer labels"),
        (np.zeros((0, 2)), np.zeros(0, dtype=int), "expected at least one sample"),
    ],
)
def test_bad_shapes_and_labels_are_rejected(logits, labels, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_temperature(logits, np.asarray(labels))


def test_deterministic_and_dtype_independent() -> None:
    z, labels = _calibrated(seed=11, n=5000, k=10)
    logits = (z * 1.7).astype(np.float32)
    t = fit_temperature(logits, labels)
    assert fit_temperature(logits, labels) == t  # bit for bit
    assert fit_temperature(logits.astype(np.float64), labels) == t
    order = np.random.default_rng(0).permutation(5000)
    assert fit_temperature(logits[order], labels[order]) == pytest.approx(t, rel=1e-9)
    assert isinstance(t, float)


# ---------------------------------------------------------------------------------------
# apply_temperature
# ---------------------------------------------------------------------------------------


def test_apply_temperature_divides_in_float64_and_keeps_the_argmax() -> None:
    z, _ = _calibrated(seed=12, n=50, k=6)
    logits = z.astype(np.float32)
    scaled = apply_temperature(logits, 2.5)
    assert scaled.dtype == np.float64
    np.testing.assert_array_equal(scaled, logits.astype(np.float64) / 2.5)
    np.testing.assert_array_equal(scaled.argmax(axis=1), logits.argmax(axis=1))
    np.testing.assert_array_equal(apply_temperature(logits, 1), logits.astype(np.float64))


def test_apply_fitted_temperature_lowers_held_out_nll() -> None:
    z, labels = _calibrated(seed=13, n=20000, k=10)
    logits = z * 3.0
    t = fit_temperature(logits[:10000], labels[:10000])  # fit on "val", judge on "test"
    after = nll_from_logits(apply_temperature(logits[10000:], t), labels[10000:])
    assert after < nll_from_logits(logits[10000:], labels[10000:]) - 0.1


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf, True, "2", None])
def test_apply_temperature_rejects_bad_t(bad) -> None:
    with pytest.raises(ValueError, match="expected a"):
        apply_temperature(np.zeros((2, 2)), bad)


def test_apply_temperature_rejects_non_finite_logits() -> None:
    with pytest.raises(ValueError, match="expected finite logits"):
        apply_temperature(np.array([[0.0, np.nan]]), 1.0)


def test_doctests() -> None:
    result = doctest.testmod(calibration)
    assert result.attempted >= 3
    assert result.failed == 0
