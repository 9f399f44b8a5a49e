"""Tests for lsexp.analysis.posthoc: each calibrator recovers a known answer on synthetic data, the
top-label methods never reverse the order of confidences, and bad input gives a clear
error with exit code 2."""

from __future__ import annotations

import doctest
import itertools
import json

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from sklearn.isotonic import IsotonicRegression

from lsexp.analysis import posthoc
from lsexp.analysis.calibration import fit_temperature
from lsexp.analysis.metrics import all_metrics, ece, log_softmax, nll_from_logits, softmax
from lsexp.analysis.posthoc import (
    CALIBRATORS,
    fit_histogram_binning,
    fit_isotonic,
    fit_matrix_scaling,
    fit_vector_scaling,
    parse_calibrators,
    top_label_probs,
)
from lsexp.errors import EXIT_USAGE, CalibrationError, ConfigError

# ---------------------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------------------


def _draw_labels(rng: np.random.Generator, true_logits: np.ndarray) -> np.ndarray:
    """Labels drawn from softmax(true_logits): those logits are calibrated by construction."""
    cdf = np.cumsum(softmax(true_logits), axis=1)
    return np.minimum((cdf < rng.random((true_logits.shape[0], 1))).sum(axis=1), cdf.shape[1] - 1)


def _calibrated(seed: int, n: int, k: int, scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=scale, size=(n, k))
    return z, _draw_labels(rng, z)


def _top_label_data(seed: int, n: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident logits: labels from softmax(z / 3), so the model is wrong often."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=4.0, size=(n, k))
    return z, _draw_labels(rng, z / 3.0)


# ---------------------------------------------------------------------------------------
# Registry and errors
# ---------------------------------------------------------------------------------------


def test_registry_names_labels_and_citations() -> None:
    assert list(CALIBRATORS) == ["ts", "vs", "ms", "hist", "iso"]
    for name, cal in CALIBRATORS.items():
        assert cal.name == name and cal.label and cal.citation
    assert {n for n, c in CALIBRATORS.items() if c.keeps_prediction} == {"ts", "hist", "iso"}
    assert {n for n, c in CALIBRATORS.items() if c.top_label} == {"hist", "iso"}


def test_parse_calibrators_order_case_and_repeats() -> None:
    assert [c.name for c in parse_calibrators("iso, TS,ts")] == ["iso", "ts"]
    assert [c.name for c in parse_calibrators(["ms", "vs"])] == ["ms", "vs"]
    assert [c.name for c in parse_calibrators("ts,vs,ms,hist,iso")] == list(CALIBRATORS)


@pytest.mark.parametrize("spec", ["ts,platt", "dirichlet", "ts,,foo"])
def test_unknown_calibrator_is_a_usage_error_listing_the_known_ones(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_calibrators(spec)
    assert info.value.exit_code == EXIT_USAGE
    (line,) = info.value.problems
    assert "unknown calibrator" in line and spec.split(",")[-1] in line
    for name in CALIBRATORS:
        assert name in line


@pytest.mark.parametrize("spec", ["", " , "])
def test_empty_calibrator_list_is_a_usage_error(spec: str) -> None:
    with pytest.raises(ConfigError, match="no calibrator named"):
        parse_calibrators(spec)


def test_matrix_scaling_on_a_too_small_validation_split_says_what_is_needed() -> None:
    z, y = _calibrated(0, 99, 10)
    with pytest.raises(CalibrationError) as info:
        fit_matrix_scaling(z, y)
    assert info.value.exit_code == EXIT_USAGE
    msg = str(info.value)
    assert "\n" not in msg
    for part in ("100 validation examples", "10 classes", "got 99", "data.val_size"):
        assert part in msg
    fit_matrix_scaling(*_calibrated(0, 100, 10))  # exactly 10 K is enough
    assert posthoc.ms_min_examples(100) == 1000


def test_fit_rejects_one_class_and_apply_rejects_another_class_count() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        CALIBRATORS["ts"].fit(np.zeros((5, 1)), np.zeros(5, dtype=int))
    fitted = CALIBRATORS["ts"].fit(*_calibrated(0, 50, 3))
    with pytest.raises(ValueError, match="3 classes"):
        fitted.probs(np.zeros((2, 4)))


# ---------------------------------------------------------------------------------------
# Common properties: probabilities, JSON params, K = 2 and K = 100, a batch of one
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CALIBRATORS))
@pytest.mark.parametrize("k", [2, 10])
def test_every_calibrator_gives_probabilities_and_json_params(name: str, k: int) -> None:
    z, y = _top_label_data(1, 2000, k)
    zt, _ = _top_label_data(2, 500, k)
    fitted = CALIBRATORS[name].fit(z, y)
    p = fitted.probs(zt)
    assert p.shape == zt.shape and p.dtype == np.float64
    assert np.all(p >= 0.0) and np.allclose(p.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.exp(fitted.log_probs(zt)), p, rtol=1e-12, atol=1e-300)
    if CALIBRATORS[name].keeps_prediction:
        np.testing.assert_array_equal(p.argmax(axis=1), zt.argmax(axis=1))
    json.dumps(fitted.params, allow_nan=False)
    # A batch of one gives the same row as the full batch.
    np.testing.assert_allclose(fitted.probs(zt[3:4]), p[3:4], rtol=1e-13, atol=0)


@pytest.mark.parametrize("name", ["ts", "vs", "hist", "iso"])
def test_fitting_on_a_single_example(name: str) -> None:
    # One validation example, predicted right: every method (ms needs 10 K) still fits and
    # puts the prediction on top. TS goes to its lower bound T = 0.01, VS sharpens until the
    # NLL stops falling, hist and iso have one bin of accuracy 1.
    z, y = np.array([[2.0, 0.5, -1.0]]), np.array([0])
    p = CALIBRATORS[name].fit(z, y).probs(z)
    assert p.argmax() == 0 and p[0, 0] > 0.99 and p.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["ts", "vs", "hist", "iso"])
def test_hundred_classes(name: str) -> None:
    z, y = _top_label_data(3, 3000, 100)
    p = CALIBRATORS[name].fit(z, y).probs(z[:300])
    assert p.shape == (300, 100) and np.allclose(p.sum(axis=1), 1.0, atol=1e-12)


def test_matrix_scaling_hundred_classes_at_a_fixed_strength() -> None:
    # 10,100 parameters from 1,000 examples: only the penalty makes this well-posed.
    z, y = _calibrated(4, 1000, 100)
    fitted = fit_matrix_scaling(z, y, lam=10.0, mu=10.0)
    w = np.array(fitted.params["W"])
    assert w.shape == (100, 100) and fitted.params["selected_by"] == "fixed"
    assert np.allclose(fitted.probs(z[:5]).sum(axis=1), 1.0)


# ---------------------------------------------------------------------------------------
# Temperature scaling: the wrapper is lsexp.analysis.calibration
# ---------------------------------------------------------------------------------------


def test_temperature_scaling_wraps_fit_temperature() -> None:
    z, y = _calibrated(5, 3000, 10)
    fitted = CALIBRATORS["ts"].fit(z * 2.5, y)
    t = fit_temperature(z * 2.5, y)
    assert fitted.params == {"temperature": t}
    np.testing.assert_allclose(fitted.probs(z), softmax(z / t), rtol=1e-14)


# ---------------------------------------------------------------------------------------
# Vector scaling recovers per-class temperatures; matrix scaling a known linear map
# ---------------------------------------------------------------------------------------


def test_vector_scaling_recovers_per_class_temperatures_and_biases() -> None:
    z0, y = _calibrated(6, 60000, 4, scale=2.0)  # softmax(z0) is calibrated
    temps = np.array([0.5, 1.0, 2.0, 4.0])
    bias = np.array([0.3, -0.2, 0.0, -0.1])  # centred: biases are known up to a constant
    observed = temps * (z0 - bias)  # so softmax(observed / temps + bias) is calibrated
    fitted = fit_vector_scaling(observed, y)
    assert fitted.params["converged"]
    np.testing.assert_allclose(fitted.params["temperatures"], temps, rtol=0.05)
    np.testing.assert_allclose(fitted.params["biases"], bias, atol=0.04)
    assert np.mean(fitted.params["biases"]) == pytest.approx(0.0, abs=1e-12)


def _centred(w: np.ndarray) -> np.ndarray:
    """W with its column means removed: softmax(W z + b) does not change if the same row
    vector is added to every row of W, so only this part of W is identifiable."""
    return w - w.mean(axis=0, keepdims=True)


def test_matrix_scaling_recovers_a_known_linear_map() -> None:
    rng = np.random.default_rng(7)
    k, n = 4, 60000
    x = rng.normal(scale=2.0, size=(n, k))  # what the model outputs
    a = np.eye(k) * 0.7 + rng.normal(scale=0.3, size=(k, k))
    c = np.array([0.4, -0.3, 0.1, -0.2])
    y = _draw_labels(rng, x @ a.T + c)  # softmax(A x + c) is calibrated
    fitted = fit_matrix_scaling(x, y, lam=0.0, mu=0.0)
    assert fitted.params["converged"] and fitted.params["selected_by"] == "fixed"
    w, b = np.array(fitted.params["W"]), np.array(fitted.params["b"])
    np.testing.assert_allclose(_centred(w), _centred(a), atol=0.05)
    np.testing.assert_allclose(b - b.mean(), c - c.mean(), atol=0.05)


def test_matrix_objective_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(8)
    k, n = 4, 50
    z_t = rng.normal(scale=2.0, size=(k, n))
    y = rng.integers(0, k, n)
    true = posthoc._true_index(y)
    theta = rng.normal(size=k * k + k)

    def value(t: np.ndarray) -> float:
        return posthoc._matrix_objective(t, z_t, true, 0.7, 1.3)[0]

    _, grad = posthoc._matrix_objective(theta, z_t, true, 0.7, 1.3)
    np.testing.assert_allclose(grad, approx_fprime(theta, value, 1e-7), rtol=1e-5, atol=1e-6)

    def vec_value(t: np.ndarray) -> float:
        return posthoc._vector_objective(t, z_t, true)[0]

    theta_v = rng.normal(size=2 * k)
    _, grad_v = posthoc._vector_objective(theta_v, z_t, true)
    np.testing.assert_allclose(grad_v, approx_fprime(theta_v, vec_value, 1e-7), rtol=1e-5)


def test_matrix_objective_value_is_the_odir_formula() -> None:
    rng = np.random.default_rng(9)
    k, n = 3, 20
    z = rng.normal(size=(n, k))
    y = rng.integers(0, k, n)
    w, b = rng.normal(size=(k, k)), rng.normal(size=k)
    lam, mu = 2.0, 0.5
    expected = (
        nll_from_logits(z @ w.T + b, y)
        + lam * sum(w[i, j] ** 2 for i in range(k) for j in range(k) if i != j) / (k * (k - 1))
        + mu * float(np.sum(b**2)) / k
    )
    theta = np.concatenate([w.ravel(), b])
    value, _ = posthoc._matrix_objective(theta, z.T.copy(), posthoc._true_index(y), lam, mu)
    assert value == pytest.approx(expected, rel=1e-13)


def test_odir_penalty_pulls_off_diagonals_and_biases_to_zero() -> None:
    rng = np.random.default_rng(10)
    x = rng.normal(scale=2.0, size=(5000, 4))
    a = np.eye(4) + rng.normal(scale=0.5, size=(4, 4))
    y = _draw_labels(rng, x @ a.T + rng.normal(size=4))
    w = np.array(fit_matrix_scaling(x, y, lam=1e6, mu=1e6).params["W"])
    b = np.array(fit_matrix_scaling(x, y, lam=1e6, mu=1e6).params["b"])
    assert np.max(np.abs(w - np.diag(np.diag(w)))) < 1e-3
    assert np.max(np.abs(b)) < 1e-3


def test_matrix_scaling_chooses_its_strength_on_a_seeded_holdout() -> None:
    z, y = _top_label_data(11, 1500, 5)
    fitted = fit_matrix_scaling(z, y)
    params = fitted.params
    assert params["selected_by"] == "holdout" and params["seed"] == 0
    assert params["grid"] == sorted(posthoc.ODIR_GRID, reverse=True)
    assert len(params["holdout_nll"]) == len(params["grid"])
    best = params["grid"][int(np.argmin(params["holdout_nll"]))]
    assert params["lambda"] == params["mu"] == best
    # The same data and seed give the same fit; another seed may choose differently.
    assert fit_matrix_scaling(z, y).params == params
    # The refit on all of the split at the chosen strength is what is applied.
    again = fit_matrix_scaling(z, y, lam=best, mu=best)
    np.testing.assert_allclose(fitted.probs(z), again.probs(z), atol=5e-5)
    json.dumps(params, allow_nan=False)


def test_matrix_scaling_can_change_the_prediction() -> None:
    # A map that swaps classes 0 and 1: accuracy after ms is not the model's accuracy.
    rng = np.random.default_rng(12)
    x = rng.normal(scale=3.0, size=(4000, 3))
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    y = _draw_labels(rng, 2.0 * x @ swap.T)
    fitted = fit_matrix_scaling(x, y, lam=0.0, mu=0.0)
    after = all_metrics(np.log(fitted.probs(x)), y)["accuracy"]
    before = all_metrics(x, y)["accuracy"]
    assert after > before + 0.3


# ---------------------------------------------------------------------------------------
# Top-label methods: histogram binning and isotonic regression
# ---------------------------------------------------------------------------------------


def _reference_pav(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool adjacent violators written out: (unique sorted x, fitted value at each), with
    equal x averaged first (Barlow et al. 1972; scikit-learn's handling of ties)."""
    ux, inv = np.unique(x, return_inverse=True)
    blocks = [[float(np.sum(y[inv == i])), float(np.sum(inv == i)), 1] for i in range(ux.size)]
    merged: list[list[float]] = []
    for blk in blocks:
        merged.append(list(blk))
        while len(merged) > 1 and merged[-2][0] / merged[-2][1] > merged[-1][0] / merged[-1][1]:
            s, w, c = merged.pop()
            merged[-1][0] += s
            merged[-1][1] += w
            merged[-1][2] += c
    fitted = np.concatenate([[s / w] * int(c) for s, w, c in merged])
    return ux, fitted


def test_isotonic_matches_a_written_out_pav_and_scikit_learn() -> None:
    z, y = _top_label_data(13, 3000)
    conf = softmax(z).max(axis=1)
    correct = (z.argmax(axis=1) == y).astype(float)
    ux, ref = _reference_pav(conf, correct)
    fitted = fit_isotonic(z, y)
    got = np.interp(ux, fitted.params["x_thresholds"], fitted.params["y_thresholds"])
    np.testing.assert_allclose(got, ref, atol=1e-12)
    # Out-of-sample: scikit-learn's own interpolation and clipping, floored at 1/K.
    zt, _ = _top_label_data(14, 1000)
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(conf, correct)
    expected = np.clip(iso.predict(softmax(zt).max(axis=1)), 1 / 5 + 1e-12, 1.0)
    np.testing.assert_allclose(fitted.probs(zt).max(axis=1), expected, rtol=1e-15)


def test_histogram_binning_hand_computed() -> None:
    # 6 examples, 3 equal-mass bins of 2. Confidences (K = 2) and correctness:
    #   0.55 right, 0.60 wrong | 0.70 right, 0.75 right | 0.80 right, 0.90 wrong
    # Bin accuracies 1/2, 1, 1/2: the last two violate monotonicity and are pooled,
    # (2 + 1) / 4 = 3/4. Inner edges: midpoints (0.60+0.70)/2 = 0.65; (0.75+0.80)/2 = 0.775
    # is dropped by the merge.
    conf = np.array([0.55, 0.60, 0.70, 0.75, 0.80, 0.90])
    z = np.stack([np.log(conf / (1 - conf)), np.zeros(6)], axis=1)  # softmax max = conf
    y = np.array([0, 1, 0, 0, 0, 1])
    fitted = fit_histogram_binning(z, y, n_bins=3)
    assert fitted.params["inner_edges"] == pytest.approx([0.65])
    assert fitted.params["accuracy"] == pytest.approx([0.5, 0.75])
    assert fitted.params["counts"] == [2, 4]
    # 0.5 + 1e-12 is the floor for K = 2 (the first bin's 1/2 is below it).
    new = np.array([0.51, 0.649, 0.651, 0.99])
    zt = np.stack([np.log(new / (1 - new)), np.zeros(4)], axis=1)
    np.testing.assert_allclose(fitted.probs(zt)[:, 0], [0.5 + 1e-12, 0.5 + 1e-12, 0.75, 0.75])


@pytest.mark.parametrize("fit", [fit_histogram_binning, fit_isotonic])
def test_top_label_methods_are_calibrated_on_their_own_fitting_data(fit) -> None:
    z, y = _top_label_data(15, 5000)
    before = ece(softmax(z), y)
    after = ece(fit(z, y).probs(z), y)
    assert before > 0.1
    # Not exactly 0: a bin or block whose accuracy is below 1/K is floored at 1/K.
    assert after < 2e-3


def test_isotonic_ece_is_zero_on_fitting_data_when_nothing_is_floored() -> None:
    # Every confidence group right at least half the time, so no value reaches the floor:
    # each pooled block's confidence equals its accuracy and the ECE sums exact zeros.
    rng = np.random.default_rng(16)
    z = rng.normal(scale=4.0, size=(4000, 3))
    y = np.where(rng.random(4000) < 0.8, z.argmax(axis=1), rng.integers(0, 3, 4000))
    fitted = fit_isotonic(z, y)
    assert min(fitted.params["y_thresholds"]) > 1 / 3
    assert ece(fitted.probs(z), y) < 1e-12


@pytest.mark.parametrize("fit", [fit_histogram_binning, fit_isotonic])
def test_top_label_methods_never_reverse_the_order_of_confidences(fit) -> None:
    z, y = _top_label_data(17, 3000)
    zt, _ = _top_label_data(18, 5000)
    zt[:10] *= 50.0  # a few far outside the validation range
    before = softmax(zt).max(axis=1)
    after = fit(z, y).probs(zt).max(axis=1)
    order = np.argsort(before, kind="stable")
    assert np.all(np.diff(after[order]) >= 0.0)  # non-decreasing: ties allowed
    # Ties do appear (piecewise-constant maps), so the order is non-strict.
    assert np.unique(after).size < np.unique(before).size


def test_top_label_probs_shares_the_rest_in_proportion_or_equally() -> None:
    # Row 0: original (0.5, 0.3, 0.2); c' = 0.6 -> others 0.4 * (0.6, 0.4) = (0.24, 0.16).
    # Row 1: original (0.4, 0.35, 0.25); c' = 0.34 -> proportional would give class 1
    #   0.66 * 0.35/0.6 = 0.385 > 0.34, so the rest is shared equally: 0.33 each.
    # Row 2: c' = 0.1 < 1/3 is floored at 1/3 + 1e-12; shared equally, just below 1/3.
    # Row 3: c' = 1 -> others 0.
    p0 = np.array([[0.5, 0.3, 0.2], [0.4, 0.35, 0.25], [0.2, 0.5, 0.3], [0.2, 0.3, 0.5]])
    got = top_label_probs(np.log(p0), [0.6, 0.34, 0.1, 1.0])
    floor = 1 / 3 + 1e-12
    expected = [
        [0.6, 0.24, 0.16],
        [0.34, 0.33, 0.33],
        [(1 - floor) / 2, floor, (1 - floor) / 2],
        [0.0, 0.0, 1.0],
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(got.argmax(axis=1), [0, 0, 1, 2])
    assert np.all(got[2, [0, 2]] < got[2, 1])  # strictly below: argmax unambiguous


def test_top_label_probs_keeps_tiny_probabilities_exact() -> None:
    # Margins of 1000 nats: the original others are 0 in float64, their ratio is not.
    z = np.array([[1000.0, 0.0, -1.0]])
    got = top_label_probs(z, [0.9])
    np.testing.assert_allclose(got[0, 1:], 0.1 * softmax(np.array([0.0, -1.0])), rtol=1e-14)


def test_calibrated_metrics_after_temperature_scaling_match_all_metrics() -> None:
    z, y = _calibrated(19, 4000, 10)
    fitted = CALIBRATORS["ts"].fit(z * 3.0, y)
    got = posthoc.calibrated_metrics(fitted, z * 3.0, y)
    ref = all_metrics(z * 3.0 / fitted.params["temperature"], y)
    assert set(got) == set(ref) - {"logit_gap"}
    for key, value in got.items():
        assert value == pytest.approx(ref[key], rel=1e-12, abs=1e-15), key


def test_calibrated_metrics_nll_of_a_top_label_method_uses_its_probabilities() -> None:
    z, y = _top_label_data(20, 2000)
    fitted = fit_isotonic(z, y)
    p = fitted.probs(z)
    expected = -np.mean(np.log(np.maximum(p[np.arange(2000), y], np.finfo(float).tiny)))
    assert posthoc.calibrated_metrics(fitted, z, y)["nll"] == pytest.approx(expected, rel=1e-14)
    # Exact log-softmax for the scaling methods.
    vs = fit_vector_scaling(z, y)
    logp = vs.log_probs(z)
    w, b = np.array(vs.params["weights"]), np.array(vs.params["biases"])
    np.testing.assert_allclose(logp, log_softmax(z * w + b), rtol=1e-13)


def test_every_calibrator_helps_an_overconfident_model_on_test_data() -> None:
    z, y = _top_label_data(21, 5000)
    zt, yt = _top_label_data(22, 10000)
    before = ece(softmax(zt), yt)
    for name, cal in CALIBRATORS.items():
        assert ece(cal.fit(z, y).probs(zt), yt) < before / 3, name


def test_doctests() -> None:
    assert doctest.testmod(posthoc, raise_on_error=False).failed == 0


def test_parse_calibrators_every_subset_round_trips() -> None:
    names = list(CALIBRATORS)
    for r in range(1, len(names) + 1):
        for combo in itertools.combinations(names, r):
            assert [c.name for c in parse_calibrators(",".join(combo))] == list(combo)
