"""Tests for lsexp.analysis.selective: hand-computed risk-coverage cases, the oracle closed form, a
float64 reference loop, ties broken in expectation (checked against every tie order),
invariance to monotone transforms, and TorchUncertainty's formulas re-implemented here."""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lsexp.analysis import selective
from lsexp.analysis.metrics import softmax
from lsexp.analysis.selective import (
    SCORES,
    max_logit_score,
    msp_score,
    oracle_aurc,
    oracle_aurc_asymptotic,
    pnorm_score,
    risk_coverage,
    select_pnorm_p,
    selective_metrics,
)

# ---------------------------------------------------------------------------------------
# References written out in float64
# ---------------------------------------------------------------------------------------


def _reference_curve(scores: np.ndarray, correct: np.ndarray) -> tuple[list[float], list[float]]:
    """Selective and generalized risk after accepting the k highest scores, k = 1..n, by a
    plain loop (scores assumed distinct)."""
    n = len(scores)
    order = sorted(range(n), key=lambda i: -scores[i])
    risks, gen = [], []
    errors = 0
    for k, i in enumerate(order, start=1):
        errors += 0 if correct[i] else 1
        risks.append(errors / k)
        gen.append(errors / n)
    return risks, gen


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoid rule (torchmetrics' ``_auc_compute`` for increasing x)."""
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)))


def _tu_curve(scores: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """TorchUncertainty's ``_aurc_rejection_rate_compute``: cumulative error rate after
    sorting by descending score."""
    e = errors[np.argsort(-scores, kind="stable")]
    return np.cumsum(e) / np.arange(1, len(e) + 1)


def _tu_aurc(scores: np.ndarray, errors: np.ndarray) -> float:
    """TorchUncertainty ``AURC.compute``: trapezoid over coverage k/n, k = 1..n, / (1 - 1/n)."""
    rates = _tu_curve(scores, errors)
    n = len(rates)
    cov = np.arange(1, n + 1) / n
    return float(_trapezoid(rates, cov) / (1 - 1 / n))


def _tu_augrc(scores: np.ndarray, errors: np.ndarray) -> float:
    """TorchUncertainty ``AUGRC.compute``: the same with the risk times the coverage."""
    rates = _tu_curve(scores, errors)
    n = len(rates)
    cov = np.arange(1, n + 1) / n
    return float(_trapezoid(rates * cov, cov) / (1 - 1 / n))


def _tu_cov_at_risk(scores: np.ndarray, errors: np.ndarray, threshold: float) -> float:
    """TorchUncertainty ``CovAtxRisk.compute``, line by line (including its index check)."""
    rates = _tu_curve(scores, errors)
    n = len(rates)
    admissible = (rates > threshold).astype(int)
    j = int(np.argmin(admissible[::-1]))
    if admissible[j] > threshold:
        return math.nan
    return 1 - j / n


def _tu_probs_to_scores(probs: list, targets: list) -> tuple[np.ndarray, np.ndarray]:
    """TorchUncertainty's ``update``: 1-D probs are p(class 1); score = max prob, error =
    argmax != target."""
    p = np.asarray(probs, dtype=float)
    if p.ndim == 1:
        p = np.stack([1 - p, p], axis=-1)
    return p.max(axis=1), p.argmax(axis=1) != np.asarray(targets)


# ---------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------


def test_hand_computed_curve_without_ties() -> None:
    # Scores 0.9 0.8 0.7 0.6 0.5, correct 1 0 1 1 0.
    # Errors after k accepted E_k = 0 1 1 1 2.
    # Risk R_k = E_k / k = 0, 1/2, 1/3, 1/4, 2/5; AURC = mean = 1.48333.../5 = 0.296667.
    # Generalized G_k = E_k / 5 = 0, .2, .2, .2, .4; AUGRC = 1.0 / 5 = 0.2.
    # Oracle (3 right first): R = 0, 0, 0, 1/4, 2/5; AURC* = 0.65 / 5 = 0.13.
    # Coverage at risk 0.3: R_k <= 0.3 at k = 1 and k = 4 -> 4/5. At risk 0.01: k = 1 -> 1/5.
    rc = risk_coverage([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 1, 0])
    np.testing.assert_allclose(rc.risk, [0, 1 / 2, 1 / 3, 1 / 4, 2 / 5], rtol=1e-15)
    np.testing.assert_allclose(rc.generalized_risk, [0, 0.2, 0.2, 0.2, 0.4], rtol=1e-15)
    np.testing.assert_allclose(rc.coverage, [0.2, 0.4, 0.6, 0.8, 1.0], rtol=1e-15)
    assert rc.aurc == pytest.approx((1 / 2 + 1 / 3 + 1 / 4 + 2 / 5) / 5, rel=1e-15)
    assert rc.augrc == pytest.approx(0.2, rel=1e-15)
    assert rc.oracle_aurc == pytest.approx(0.13, rel=1e-14)
    assert rc.eaurc == pytest.approx(0.296666666666 - 0.13, abs=1e-11)
    assert rc.coverage_at_risk(0.3) == pytest.approx(0.8)
    assert rc.coverage_at_risk(0.01) == pytest.approx(0.2)
    assert rc.coverage_at_risk(0.4) == 1.0
    assert rc.n == 5 and rc.n_errors == 2
    assert rc.at_threshold.all()


def test_hand_computed_curve_with_a_tie() -> None:
    # Scores 0.9, 0.5, 0.5, 0.1; correct 1, 1, 0, 0. The tied pair holds one error, so
    # over its two orders E_2 is 0 or 1: in expectation E = 0, 1/2, 1, 2.
    # R = 0, 1/4, 1/3, 1/2 (the mean of the two orders' R = (0,0,1/3,1/2), (0,1/2,1/3,1/2)).
    # AURC = (1/4 + 1/3 + 1/2) / 4 = 0.2708333.
    # k = 2 splits the tie, which no threshold does: coverage at risk 0.3 is 1/4, not 2/4
    # (R_3 = 1/3 > 0.3); at risk 0.34 it is 3/4.
    rc = risk_coverage([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])
    np.testing.assert_allclose(rc.risk, [0, 1 / 4, 1 / 3, 1 / 2], rtol=1e-15)
    np.testing.assert_array_equal(rc.at_threshold, [True, False, True, True])
    assert rc.aurc == pytest.approx((1 / 4 + 1 / 3 + 1 / 2) / 4, rel=1e-15)
    assert rc.coverage_at_risk(0.3) == 0.25
    assert rc.coverage_at_risk(0.34) == 0.75
    # The order of the input does not matter.
    other = risk_coverage([0.5, 0.1, 0.9, 0.5], [0, 0, 1, 1])
    np.testing.assert_array_equal(other.risk, rc.risk)


def test_all_tied_gives_the_error_rate_everywhere() -> None:
    # One run of n ties with r errors: E_k = k r / n, so R_k = r / n for every k.
    rc = risk_coverage(np.zeros(8), [1, 0, 1, 1, 0, 1, 1, 1])
    np.testing.assert_allclose(rc.risk, 0.25, rtol=1e-15)
    assert rc.coverage_at_risk(0.25) == 1.0 and rc.coverage_at_risk(0.2) == 0.0


def test_one_example_and_no_errors_and_all_errors() -> None:
    right, wrong = risk_coverage([0.3], [True]), risk_coverage([0.3], [False])
    assert (right.aurc, right.eaurc, right.coverage_at_risk(0.01)) == (0.0, 0.0, 1.0)
    assert (wrong.aurc, wrong.augrc, wrong.eaurc, wrong.coverage_at_risk(0.5)) == (1, 1, 0, 0)
    perfect = risk_coverage([3.0, 2.0, 1.0], [1, 1, 1])
    assert perfect.aurc == perfect.augrc == perfect.eaurc == 0.0
    hopeless = risk_coverage([3.0, 2.0, 1.0], [0, 0, 0])
    assert hopeless.aurc == 1.0 and hopeless.augrc == pytest.approx((1 + 2 + 3) / 9)
    assert hopeless.coverage_at_risk(0.99) == 0.0 and hopeless.eaurc == 0.0


# ---------------------------------------------------------------------------------------
# Against references
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_float64_reference_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    scores = rng.normal(size=n)
    correct = rng.random(n) < 1 / (1 + np.exp(-2 * scores))  # better scores, more often right
    risks, gen = _reference_curve(scores, correct)
    rc = risk_coverage(scores, correct)
    np.testing.assert_allclose(rc.risk, risks, rtol=1e-15)
    np.testing.assert_allclose(rc.generalized_risk, gen, rtol=1e-15)
    assert rc.aurc == pytest.approx(math.fsum(risks) / n, rel=1e-13)
    assert rc.augrc == pytest.approx(math.fsum(gen) / n, rel=1e-13)
    for target in (0.01, 0.05, 0.2):
        qualifying = [(k + 1) / n for k, r in enumerate(risks) if r <= target]
        assert rc.coverage_at_risk(target) == (max(qualifying) if qualifying else 0.0)


def test_ties_are_broken_in_expectation_over_every_order() -> None:
    # Averaging the plain loop over all 7! orders of the examples, each sorted stably by
    # score, averages over every order within each run of ties.
    scores = np.array([2.0, 1.0, 1.0, 1.0, 0.0, 0.0, -1.0])
    correct = np.array([1, 0, 1, 1, 0, 1, 0], dtype=bool)
    total_risk = np.zeros(7)
    perms = list(itertools.permutations(range(7)))
    for perm in perms:
        p = np.array(perm)
        order = p[np.argsort(-scores[p], kind="stable")]
        errors = np.cumsum(~correct[order])
        total_risk += errors / np.arange(1, 8)
    rc = risk_coverage(scores, correct)
    np.testing.assert_allclose(rc.risk, total_risk / len(perms), rtol=1e-13)


def test_oracle_closed_form() -> None:
    for n, r in [(1, 0), (1, 1), (5, 2), (10, 1), (1000, 37), (10000, 1234)]:
        m = n - r
        explicit = math.fsum((k - m) / k for k in range(m + 1, n + 1)) / n
        assert oracle_aurc(n, r) == pytest.approx(explicit, rel=1e-12, abs=1e-15)
        # The oracle ordering itself: every correct example scored above every error.
        correct = np.arange(n) < m
        rc = risk_coverage(correct.astype(float), correct)
        assert rc.aurc == pytest.approx(explicit, rel=1e-12, abs=1e-15)
        assert abs(rc.eaurc) < 1e-15
        # Geifman et al.'s asymptotic form is within 1/n.
        assert abs(oracle_aurc(n, r) - oracle_aurc_asymptotic(r / n)) <= 1 / n


def test_eaurc_is_never_negative() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(1, 60))
        rc = risk_coverage(rng.integers(0, 4, n).astype(float), rng.random(n) < 0.7)
        assert rc.eaurc >= -1e-15


def test_augrc_is_traubs_auroc_identity() -> None:
    # AUGRC = [(1 - AUROC) r m + r (r + 1) / 2] / n^2, AUROC as scikit-learn computes it
    # (ties count 1/2), for scores with many ties.
    rng = np.random.default_rng(4)
    n = 400
    scores = rng.integers(0, 12, n).astype(float)
    correct = rng.random(n) < (0.3 + scores / 20)
    r, m = int(np.sum(~correct)), int(np.sum(correct))
    auroc = roc_auc_score(correct, scores)
    expected = ((1 - auroc) * r * m + r * (r + 1) / 2) / n**2
    assert risk_coverage(scores, correct).augrc == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "transform",
    [lambda s: 3.0 * s - 7.0, np.arctan, lambda s: s**3, lambda s: np.exp(s / 3)],
    ids=["affine", "arctan", "cube", "exp"],
)
def test_invariant_to_strictly_increasing_transforms(transform) -> None:
    rng = np.random.default_rng(5)
    scores = rng.integers(-6, 7, 300) / 2.0  # many ties, all distinct under each transform
    correct = rng.random(300) < 0.8
    a, b = risk_coverage(scores, correct), risk_coverage(transform(scores), correct)
    np.testing.assert_array_equal(a.risk, b.risk)
    np.testing.assert_array_equal(a.at_threshold, b.at_threshold)
    assert (a.aurc, a.augrc, a.coverage_at_risk(0.1)) == (b.aurc, b.augrc, b.coverage_at_risk(0.1))


# ---------------------------------------------------------------------------------------
# TorchUncertainty (risk_coverage.py), re-implemented above
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_torch_uncertainty_aurc_and_augrc_differ_only_by_their_trapezoid(seed: int) -> None:
    # TU integrates k = 1..n with the trapezoid rule and divides by (1 - 1/n):
    # TU = (sum_k R_k - (R_1 + R_n) / 2) / (n - 1), ours = sum_k R_k / n.
    rng = np.random.default_rng(seed)
    n = 1000
    scores = rng.normal(size=n)
    errors = rng.random(n) > 1 / (1 + np.exp(-scores))
    rc = risk_coverage(scores, ~errors)
    for ours, tu, curve in [
        (rc.aurc, _tu_aurc(scores, errors.astype(float)), rc.risk),
        (rc.augrc, _tu_augrc(scores, errors.astype(float)), rc.generalized_risk),
    ]:
        assert tu == pytest.approx((n * ours - (curve[0] + curve[-1]) / 2) / (n - 1), rel=1e-12)
        assert abs(tu - ours) < 1.0 / (n - 1)


def test_torch_uncertainty_published_aurc_case() -> None:
    # TorchUncertainty's test_compute_binary: its value (0*0.4 + 0.25*0.2/2 + 0.25*0.2
    # + 0.15*0.2/2) / 0.8 = 0.1125. Ours on the same case: R = 0, 0, 0, 1/4, 2/5 -> 0.13
    # (the tie at 0.8 holds two correct examples, so its order does not matter).
    scores, errors = _tu_probs_to_scores([0.1, 0.2, 0.3, 0.4, 0.2], [0, 0, 1, 1, 0])
    assert _tu_aurc(scores, errors.astype(float)) == pytest.approx(0.1125)
    rc = risk_coverage(scores, ~errors)
    assert rc.aurc == pytest.approx(0.13)
    assert (5 * rc.aurc - (rc.risk[0] + rc.risk[-1]) / 2) / 4 == pytest.approx(0.1125)


@pytest.mark.parametrize(
    ("probs", "targets", "threshold", "expected"),
    [
        # TorchUncertainty's test_compute_zero cases and its expected values.
        (
            [0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.48, 0.49],
            [1, 0, 1, 1, 1, 0, 0, 0, 1],
            0.55,
            8 / 9,
        ),
        ([0.1, 0.2, 0.3, 0.4, 0.2], [0, 0, 1, 1, 1], 0.5, 4 / 5),
        ([0.1, 0.2, 0.3, 0.4, 0.2], [0, 0, 1, 1, 0], 0.5, 1.0),
    ],
)
def test_coverage_at_risk_agrees_with_torch_uncertainty(probs, targets, threshold, expected):
    scores, errors = _tu_probs_to_scores(probs, targets)
    assert _tu_cov_at_risk(scores, errors.astype(float), threshold) == pytest.approx(expected)
    assert risk_coverage(scores, ~errors).coverage_at_risk(threshold) == pytest.approx(expected)


def test_coverage_at_risk_where_torch_uncertainty_returns_nan() -> None:
    # No coverage qualifies: TU returns NaN, this module 0.0 (abstain on everything).
    scores, errors = _tu_probs_to_scores([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]], [1, 1, 1])
    assert math.isnan(_tu_cov_at_risk(scores, errors.astype(float), 0.5))
    assert risk_coverage(scores, ~errors).coverage_at_risk(0.5) == 0.0
    # Risks 1, 1/2, 1/3, 1/4 at target 0.3: k = 4 qualifies (coverage 1), but TU checks
    # admissible[0] (= 1, the first point) instead of the point it found, and returns NaN.
    scores, errors = np.array([4.0, 3.0, 2.0, 1.0]), np.array([1.0, 0.0, 0.0, 0.0])
    assert math.isnan(_tu_cov_at_risk(scores, errors, 0.3))
    assert risk_coverage(scores, errors == 0).coverage_at_risk(0.3) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_coverage_at_risk_agrees_with_torch_uncertainty_without_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    scores = rng.normal(size=n)
    errors = (rng.random(n) > 1 / (1 + np.exp(-3 * scores))).astype(float)
    rc = risk_coverage(scores, errors == 0)
    for t in (0.01, 0.05, 0.1, 0.3):
        tu = _tu_cov_at_risk(scores, errors, t)
        if not math.isnan(tu):  # TU's index check aside, the definitions agree
            assert rc.coverage_at_risk(t) == pytest.approx(tu, abs=1e-12)


# ---------------------------------------------------------------------------------------
# Confidence scores
# ---------------------------------------------------------------------------------------


def test_msp_score_is_the_log_odds_of_the_max_softmax() -> None:
    rng = np.random.default_rng(6)
    z = rng.normal(scale=3.0, size=(1000, 10))
    p = softmax(z).max(axis=1)
    np.testing.assert_allclose(msp_score(z), np.log(p / (1 - p)), rtol=1e-9, atol=1e-12)
    # Same order as the max softmax probability, so the same curve.
    correct = rng.random(1000) < p
    np.testing.assert_array_equal(risk_coverage(msp_score(z), correct).risk,
                                  risk_coverage(p, correct).risk)  # fmt: skip


def test_msp_score_does_not_saturate() -> None:
    # Margins of 40, 60 and 800: the max softmax probability is 1.0 for all three in
    # float64, the log-odds still order them (log-odds = margin - log(K - 1) here).
    z = np.array([[40.0, 0.0, 0.0], [60.0, 0.0, 0.0], [800.0, 0.0, 0.0]])
    assert np.all(softmax(z).max(axis=1) == 1.0)
    np.testing.assert_allclose(
        msp_score(z), [40 - math.log(2), 60 - math.log(2), 800 - math.log(2)]
    )


def test_max_logit_score() -> None:
    np.testing.assert_array_equal(max_logit_score([[1.0, 5.0, 2.0], [-3.0, -4.0, -1.0]]), [5, -1])


def test_pnorm_score_matches_the_formula_and_its_invariances() -> None:
    rng = np.random.default_rng(7)
    z = rng.normal(scale=2.0, size=(200, 6))
    c = z - z.mean(axis=1, keepdims=True)
    for p in (1.0, 2.0, 3.5, math.inf):
        expected = c.max(axis=1) / np.linalg.norm(c, ord=p, axis=1)
        np.testing.assert_allclose(pnorm_score(z, p), expected, rtol=1e-13)
    # Unchanged by adding a constant to every logit of a row, or by scaling a row.
    np.testing.assert_allclose(pnorm_score(z + 5.0), pnorm_score(z), rtol=1e-12)
    np.testing.assert_allclose(pnorm_score(z * 7.0), pnorm_score(z), rtol=1e-12)
    # All-equal logits score 0; huge logits do not overflow.
    assert pnorm_score([[2.0, 2.0, 2.0]]).tolist() == [0.0]
    big = np.array([[1e200, 0.0, -1e200]])
    np.testing.assert_allclose(pnorm_score(big, 9.0), pnorm_score(big / 1e200, 9.0), rtol=1e-12)


def test_pnorm_score_ranks_as_the_max_softmax_of_normalised_logits_at_high_temperature() -> None:
    rng = np.random.default_rng(8)
    z = rng.normal(scale=2.0, size=(300, 5))
    c = z - z.mean(axis=1, keepdims=True)
    u = c / np.linalg.norm(c, axis=1, keepdims=True)
    msp_hot = softmax(u / 1e4).max(axis=1)
    assert np.array_equal(np.argsort(msp_hot), np.argsort(pnorm_score(z)))


def test_select_pnorm_p_is_the_grid_argmin() -> None:
    rng = np.random.default_rng(9)
    z = rng.normal(scale=3.0, size=(800, 10))
    y = np.where(rng.random(800) < 0.7, z.argmax(axis=1), rng.integers(0, 10, 800))
    correct = z.argmax(axis=1) == y
    grid = (1.0, 2.0, 4.0, 8.0)
    aurcs = [risk_coverage(pnorm_score(z, p), correct).aurc for p in grid]
    assert select_pnorm_p(z, y, grid) == grid[int(np.argmin(aurcs))]


def test_selective_metrics_keys_and_values() -> None:
    rng = np.random.default_rng(10)
    z = rng.normal(scale=3.0, size=(500, 10))
    y = np.where(rng.random(500) < 0.8, z.argmax(axis=1), rng.integers(0, 10, 500))
    for name, score in SCORES.items():
        got = selective_metrics(z, y, name)
        assert set(got) == {"aurc", "augrc", "eaurc", "oracle_aurc", "coverage_at_1pct_risk",
                            "coverage_at_5pct_risk"}  # fmt: skip
        rc = risk_coverage(score.fn(z), z.argmax(axis=1) == y)
        assert got["aurc"] == rc.aurc and got["coverage_at_5pct_risk"] == rc.coverage_at_risk(0.05)
    with pytest.raises(ValueError, match="unknown score"):
        selective_metrics(z, y, "entropy")


@pytest.mark.parametrize(
    ("scores", "correct", "match"),
    [
        ([[0.1, 0.2]], [1], "shape"),
        ([0.1, np.nan], [1, 0], "finite"),
        ([0.1, 0.2], [1], "one per score"),
        ([0.1, 0.2], [2, 0], "bool or 0/1"),
        ([], [], "n >= 1"),
    ],
)
def test_bad_input(scores, correct, match) -> None:
    with pytest.raises(ValueError, match=match):
        risk_coverage(np.asarray(scores, dtype=float), np.asarray(correct))


def test_doctests() -> None:
    assert doctest.testmod(selective, raise_on_error=False).failed == 0


# ---------------------------------------------------------------------------------------
# AURC under resampling weights (the bootstrap's fast form) against materialised resamples
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 9, 60])
def test_weighted_aurc_equals_the_aurc_of_the_materialised_resample(n):
    from lsexp.analysis.selective import WeightedAURC

    rng = np.random.default_rng(n)
    scores = rng.integers(0, 5, n).astype(float)  # many ties, across examples too
    correct = rng.uniform(size=n) < 0.7
    w = WeightedAURC.of(scores, correct)
    assert w.aurc(np.ones(n))[0] == pytest.approx(risk_coverage(scores, correct).aurc, abs=1e-15)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(30)])
    got = w.aurc(counts)
    for row, value in zip(counts, got, strict=True):
        idx = np.repeat(np.arange(n), row)
        assert value == pytest.approx(risk_coverage(scores[idx], correct[idx]).aurc,
                                      rel=1e-12, abs=1e-15)  # fmt: skip


def test_aurc_statistic_in_the_bootstrap_matches_the_generic_recomputation():
    from lsexp.analysis import bootstrap as bs

    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, (2, 3, 200, 4))
    y = rng.integers(0, 4, 200)
    generic = bs.generic_statistic("g", lambda zz, yy: selective_metrics(zz, yy, "pnorm")["aurc"])
    res = bs.hierarchical_bootstrap(z, y, [bs.aurc_statistic("pnorm", "fast"), generic],
                                    n_boot=25, seed=1)  # fmt: skip
    np.testing.assert_allclose(res["fast"].replicates, res["g"].replicates, rtol=1e-12)
    np.testing.assert_allclose(res["fast"].per_run, res["g"].per_run, rtol=1e-12)


@pytest.mark.parametrize("rows_per_chunk", [1, 130, None])  # one run per chunk .. all in one
def test_weighted_aurc_of_many_runs_at_once_equals_each_materialised_resample(rows_per_chunk):
    from lsexp.analysis.selective import WeightedAURC, WeightedAURCBatch

    rng = np.random.default_rng(11)
    n = 40
    runs = [
        (rng.integers(0, 6, n).astype(float), rng.uniform(size=n) < 0.6),  # ties
        (rng.normal(size=n), np.ones(n, bool)),  # no errors: AURC 0
        (rng.normal(size=n), np.zeros(n, bool)),  # all wrong: AURC 1
        (np.zeros(n), rng.uniform(size=n) < 0.5),  # one tie group for everything
    ]
    batch = WeightedAURCBatch([WeightedAURC.of(sc, c) for sc, c in runs], rows_per_chunk)
    n_chunks = {1: len(runs), None: 1}.get(rows_per_chunk)
    assert len(batch.chunks) == n_chunks if n_chunks else 1 < len(batch.chunks) < len(runs)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(20)])
    got = batch(counts)
    assert got.shape == (20, len(runs))
    for k, (sc, c) in enumerate(runs):
        for r, row in enumerate(counts):
            idx = np.repeat(np.arange(n), row)
            want = risk_coverage(sc[idx], c[idx]).aurc
            assert got[r, k] == pytest.approx(want, rel=1e-12, abs=1e-15), (k, r)
    np.testing.assert_array_equal(got[:, 1], 0.0)
    np.testing.assert_allclose(got[:, 2], 1.0, rtol=1e-14)
    with pytest.raises(ValueError, match="shape"):
        batch(counts[:, :-1])
