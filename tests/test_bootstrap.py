"""Tests for lsexp.analysis.bootstrap: every replicate against a brute-force recomputation on the
materialised resample (with lsexp.analysis.metrics), paired structure, reproducibility, and coverage
on synthetic sweeps whose true difference is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lsexp.analysis import metrics
from lsexp.analysis.bootstrap import (
    ACCURACY,
    BRIER,
    NLL,
    bootstrap_draws,
    classwise_ece_statistic,
    ece_statistic,
    generic_statistic,
    hierarchical_bootstrap,
)
from lsexp.analysis.stats import SUPPORTED, paired_t, superiority_test

# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def _sweep(seed: int, m: int = 3, s: int = 3, n: int = 60, k: int = 4):
    """Random logits for M methods x S seeds on one test set, and its labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=n)
    logits = rng.normal(size=(m, s, n, k))
    logits[..., :] += 1.5 * (np.arange(k) == labels[:, None])  # better than chance
    logits *= rng.uniform(0.5, 3.0, size=(m, s, 1, 1))  # various confidence levels
    return logits.astype(np.float32), labels


REFERENCES = {
    "accuracy": lambda z, y: metrics.accuracy(metrics.softmax(z), y),
    "nll": metrics.nll_from_logits,
    "brier": lambda z, y: metrics.brier(metrics.softmax(z), y),
    "ece": lambda z, y: metrics.ece(metrics.softmax(z), y, 10),
    "classwise_ece": lambda z, y: metrics.classwise_ece(metrics.softmax(z), y, 5),
    "adaptive_ece": lambda z, y: metrics.adaptive_ece(metrics.softmax(z), y, 5),
}
STATISTICS = [
    ACCURACY,
    NLL,
    BRIER,
    ece_statistic(10),
    classwise_ece_statistic(5),
    generic_statistic("adaptive_ece", REFERENCES["adaptive_ece"]),
]


# ---------------------------------------------------------------------------------------
# Every replicate is the statistic of its resample
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("examples", ["shared", "per_seed"])
def test_replicates_match_a_brute_force_recomputation(examples: str) -> None:
    logits, labels = _sweep(0)
    m, s, n, _ = logits.shape
    result = hierarchical_bootstrap(
        logits, labels, STATISTICS, n_boot=12, seed=5, examples=examples
    )
    ((seed_index, counts),) = list(bootstrap_draws(s, n, 12, seed=5, examples=examples))
    z = logits.astype(np.float64)
    for name, reference in REFERENCES.items():
        expected = np.zeros((12, m))
        for r in range(12):
            for j in range(s):
                idx = np.repeat(np.arange(n), counts[r, j])
                for a in range(m):
                    expected[r, a] += reference(z[a, seed_index[r, j]][idx], labels[idx]) / s
        np.testing.assert_allclose(result[name].replicates, expected, rtol=1e-10, atol=1e-13)
        full = [[reference(z[a, b], labels) for b in range(s)] for a in range(m)]
        np.testing.assert_allclose(result[name].per_run, full, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(result[name].estimate, np.mean(full, axis=1), rtol=1e-10)


def test_draws_shapes_and_schemes() -> None:
    blocks = list(bootstrap_draws(4, 30, 600, seed=1, examples="shared"))
    assert [b[0].shape[0] for b in blocks] == [250, 250, 100]
    for seed_index, counts in blocks:
        assert counts.shape == (seed_index.shape[0], 4, 30)
        assert np.all(counts.sum(axis=2) == 30)  # N draws per slot
        assert np.all((seed_index >= 0) & (seed_index < 4))
        assert np.all(counts == counts[:, :1, :])  # one example resample for every slot
    ((_, per_seed),) = list(bootstrap_draws(4, 30, 50, seed=1, examples="per_seed"))
    assert np.all(per_seed.sum(axis=2) == 30)
    assert not np.all(per_seed == per_seed[:, :1, :])  # independent per slot
    with pytest.raises(ValueError, match="examples"):
        next(bootstrap_draws(4, 30, 10, examples="nested"))


# ---------------------------------------------------------------------------------------
# Paired structure and reproducibility
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("examples", ["shared", "per_seed"])
def test_identical_methods_differ_by_nothing(examples: str) -> None:
    logits, labels = _sweep(1, m=2)
    logits[1] = logits[0]  # method 1 is a copy of method 0, seed by seed
    result = hierarchical_bootstrap(
        logits, labels, STATISTICS[:5], methods=("a", "b"), n_boot=300, examples=examples
    )
    for name, res in result.items():
        # Zero up to the rounding of a matrix product (BLAS may sum equal columns in
        # different orders): 1e-15 against differences of 1e-3 and more between real methods.
        diff = res.difference("a", "b")
        assert abs(diff.estimate) <= 1e-15, name
        lo, hi = diff.interval()
        assert max(abs(lo), abs(hi)) <= 1e-15, name
        assert res.interval("a") == pytest.approx(res.interval("b"), abs=1e-15)
    # ... while two different methods' difference has a real spread
    other = hierarchical_bootstrap(*_sweep(2, m=2), [ACCURACY], n_boot=300)["accuracy"]
    lo, hi = other.difference(0, 1).interval()
    assert hi - lo > 0.01


def test_pairing_narrows_the_difference_interval() -> None:
    # Method b = method a plus a small, consistent improvement on 10 % of the examples: the
    # paired interval of b - a is much narrower than the two separate intervals suggest.
    rng = np.random.default_rng(3)
    n, k = 2000, 5
    labels = rng.integers(0, k, size=n)
    base = rng.normal(size=(1, 3, n, k))
    base[..., :] += 1.0 * (np.arange(k) == labels[:, None])
    better = base.copy()
    fix = rng.random(n) < 0.1
    better[0, :, fix, labels[fix]] += 5.0
    res = hierarchical_bootstrap(np.concatenate([base, better]), labels, [ACCURACY], n_boot=500)
    acc = res["accuracy"]
    lo, hi = acc.difference(1, 0).interval()
    separate = (acc.interval(0)[1] - acc.interval(0)[0]) + (acc.interval(1)[1] - acc.interval(1)[0])
    assert lo > 0.0
    assert hi - lo < 0.5 * separate


def test_reproducible_by_seed_and_independent_of_the_other_statistics() -> None:
    logits, labels = _sweep(4)
    one = hierarchical_bootstrap(logits, labels, [ACCURACY, ece_statistic(10)], n_boot=300)
    again = hierarchical_bootstrap(logits, labels, [ACCURACY, ece_statistic(10)], n_boot=300)
    alone = hierarchical_bootstrap(logits, labels, [ACCURACY], n_boot=300)
    other = hierarchical_bootstrap(logits, labels, [ACCURACY], n_boot=300, seed=1)
    np.testing.assert_array_equal(one["accuracy"].replicates, again["accuracy"].replicates)
    np.testing.assert_array_equal(one["ece"].replicates, again["ece"].replicates)
    np.testing.assert_array_equal(one["accuracy"].replicates, alone["accuracy"].replicates)
    assert not np.array_equal(one["accuracy"].replicates, other["accuracy"].replicates)
    # Renamed statistics on other logits (e.g. after temperature scaling) share the draws.
    scaled = hierarchical_bootstrap(logits / 2, labels, [ACCURACY.renamed("acc_ts")], n_boot=300)
    np.testing.assert_array_equal(scaled["acc_ts"].replicates, one["accuracy"].replicates)


def test_difference_feeds_the_stats_tests() -> None:
    res = hierarchical_bootstrap(
        *_sweep(5, m=2, n=400), [ACCURACY], methods=(0.0, 0.1), n_boot=400
    )["accuracy"]
    diff = res.difference(0.1, 0.0)
    assert (diff.method, diff.n, diff.values.shape) == ("bootstrap", 3, (400,))
    decision = superiority_test(diff)
    assert decision.method == "bootstrap"
    assert (decision.ci_low, decision.ci_high) == pytest.approx(diff.interval())
    with pytest.raises(KeyError, match="unknown method"):
        res.difference(0.2, 0.0)


# ---------------------------------------------------------------------------------------
# Coverage: synthetic sweeps with a known true difference
# ---------------------------------------------------------------------------------------


def _crossed_sweep(rng: np.random.Generator, n: int, s: int):
    """Two methods on one test set: example i is right at (method m, seed s) iff its
    difficulty x_i ~ U(0, 1) is below q_m + u_ms, u_ms ~ N(0, 0.01^2). The population
    accuracy of method m is q_m, so the true difference is q_1 - q_0 = 0.05. The examples
    between the two thresholds are the same at every seed: the test-set part of the noise is
    shared by the seeds (a crossed design)."""
    x = rng.random(n)
    thresholds = np.array([0.65, 0.70])[:, None] + rng.normal(0.0, 0.01, size=(2, s))
    correct = x[None, None, :] < thresholds[:, :, None]
    logits = np.stack([np.where(correct, 1.0, -1.0), np.zeros(correct.shape)], axis=-1)
    return logits, np.zeros(n, dtype=np.int64)


def _coverage(examples: str, nested: bool, n_sweeps: int) -> float:
    """Share of n_sweeps synthetic sweeps (N = 300, 6 seeds) whose 95 % interval of the
    difference contains the truth, 0.05. ``nested``: each seed gets its own test set."""
    rng = np.random.default_rng(10)
    hits = 0
    for i in range(n_sweeps):
        if nested:  # example i of one seed has nothing to do with example i of another
            runs = [_crossed_sweep(rng, n=300, s=1) for _ in range(6)]
            logits, labels = np.concatenate([r[0] for r in runs], axis=1), runs[0][1]
        else:
            logits, labels = _crossed_sweep(rng, n=300, s=6)
        res = hierarchical_bootstrap(
            logits, labels, [ACCURACY], n_boot=250, seed=i, examples=examples
        )["accuracy"]
        lo, hi = res.difference(1, 0).interval(0.95)
        hits += lo <= 0.05 <= hi
    return hits / n_sweeps


# Measured with 300 sweeps: shared/crossed 0.94, per_seed/crossed 0.71, per_seed/nested
# 0.93, shared/nested 0.96. The bounds below are > 2.5 binomial sd from those.


def test_shared_examples_cover_the_true_difference_of_a_crossed_design() -> None:
    assert 0.89 <= _coverage("shared", nested=False, n_sweeps=150) <= 0.995


@pytest.mark.slow
def test_per_seed_examples_undercover_a_crossed_design() -> None:
    # Resampling examples independently per seed averages the test-set noise the seeds
    # share over the 6 seeds, as if each had its own test set: the interval is too narrow.
    assert _coverage("per_seed", nested=False, n_sweeps=100) < 0.82


@pytest.mark.slow
def test_both_schemes_cover_a_nested_design() -> None:
    # Where every seed has its own test set, per_seed is right and shared (the pigeonhole
    # bootstrap) is mildly conservative.
    assert _coverage("per_seed", nested=True, n_sweeps=100) >= 0.85
    assert _coverage("shared", nested=True, n_sweeps=100) >= 0.85


def _three_seed_coverage(seed_sd: float, n_sweeps: int = 150) -> dict[str, float]:
    """Coverage of the true 0.05 by three intervals on sweeps of 3 seeds, N = 600: the
    hierarchical bootstrap, the t over seeds, and the two combined (t + bootstrap)."""
    rng = np.random.default_rng(20)
    hits = {"bootstrap": 0, "t": 0, "t+bootstrap": 0}
    for i in range(n_sweeps):
        x = rng.random(600)
        thresholds = np.array([0.65, 0.70])[:, None] + rng.normal(0.0, seed_sd, size=(2, 3))
        correct = x[None, None, :] < thresholds[:, :, None]
        logits = np.stack([np.where(correct, 1.0, -1.0), np.zeros(correct.shape)], axis=-1)
        labels = np.zeros(600, dtype=np.int64)
        both = hierarchical_bootstrap(logits, labels, [ACCURACY], n_boot=300, seed=i)
        examples = hierarchical_bootstrap(
            logits, labels, [ACCURACY], n_boot=300, seed=i, resample_seeds=False
        )
        per_seed = both["accuracy"].per_run[1] - both["accuracy"].per_run[0]
        for name, diff in (
            ("bootstrap", both["accuracy"].difference(1, 0)),
            ("t", paired_t(per_seed)),
            ("t+bootstrap", examples["accuracy"].combined_difference(1, 0)),
        ):
            lo, hi = diff.interval(0.95)
            hits[name] += lo <= 0.05 <= hi
    return {k: v / n_sweeps for k, v in hits.items()}


def test_with_three_seeds_only_the_combined_interval_covers_in_both_regimes() -> None:
    # Measured (150 sweeps each): seeds identical (all noise from the shared test set):
    # bootstrap 0.94, t 0.00 (every seed has the same difference), t+bootstrap 0.95. Seed
    # spread 0.03 (seeds dominate): bootstrap 0.79 (3 seeds resampled: too narrow), t 0.95,
    # t+bootstrap 0.94. Binomial sd at 0.95 is 0.018.
    test_set = _three_seed_coverage(0.0)
    assert test_set["t+bootstrap"] >= 0.89 and test_set["bootstrap"] >= 0.89
    assert test_set["t"] < 0.5
    seeds = _three_seed_coverage(0.03)
    assert seeds["t+bootstrap"] >= 0.89 and seeds["t"] >= 0.89
    assert seeds["bootstrap"] < 0.87


def test_combined_difference_needs_fixed_seeds() -> None:
    res = hierarchical_bootstrap(*_sweep(9, m=2), [ACCURACY], n_boot=50)["accuracy"]
    with pytest.raises(ValueError, match="resample_seeds=False"):
        res.combined_difference(1, 0)
    fixed = hierarchical_bootstrap(*_sweep(9, m=2), [ACCURACY], n_boot=50, resample_seeds=False)[
        "accuracy"
    ]
    diff = fixed.combined_difference(1, 0)
    assert diff.method == "t+bootstrap" and diff.n == 3
    np.testing.assert_allclose(diff.values, fixed.per_run[1] - fixed.per_run[0])
    # with the seeds fixed, every replicate averages the same three runs
    ((seed_index, _),) = list(bootstrap_draws(3, 60, 50, resample_seeds=False))
    assert np.all(seed_index == np.arange(3))


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


def test_bad_inputs_are_rejected() -> None:
    logits, labels = _sweep(6)
    with pytest.raises(ValueError, match=r"shape \(M, S, N, K\)"):
        hierarchical_bootstrap(logits[0], labels, [ACCURACY])
    with pytest.raises(ValueError, match="expected 60 labels"):
        hierarchical_bootstrap(logits, labels[:50], [ACCURACY])
    with pytest.raises(ValueError, match="distinct statistic names"):
        hierarchical_bootstrap(logits, labels, [ACCURACY, ACCURACY])
    with pytest.raises(ValueError, match="method names"):
        hierarchical_bootstrap(logits, labels, [ACCURACY], methods=(0.0, 0.1))
    bad = logits.copy()
    bad[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="finite"):
        hierarchical_bootstrap(bad, labels, [ACCURACY])
    with pytest.raises(ValueError, match="same S"):
        hierarchical_bootstrap([[logits[0, 0]], [logits[1, 0], logits[1, 1]]], labels, [ACCURACY])
    with pytest.raises(ValueError, match="n_boot"):
        hierarchical_bootstrap(logits, labels, [ACCURACY], n_boot=0)


def test_nested_lists_equal_the_array_form() -> None:
    logits, labels = _sweep(7)
    as_lists = [[logits[a, b] for b in range(3)] for a in range(3)]
    a = hierarchical_bootstrap(logits, labels, [NLL], n_boot=50)["nll"]
    b = hierarchical_bootstrap(as_lists, labels, [NLL], n_boot=50)["nll"]
    np.testing.assert_array_equal(a.replicates, b.replicates)


def test_supported_on_a_clear_effect() -> None:
    logits, labels = _sweep(8, m=2, n=1000)
    logits[1] *= 0.0  # method 1: uniform predictions, far worse NLL... and accuracy at chance
    res = hierarchical_bootstrap(logits, labels, [ACCURACY], n_boot=300)["accuracy"]
    assert superiority_test(res.difference(0, 1)).verdict == SUPPORTED


@pytest.mark.parametrize("examples", ["shared", "per_seed"])
@pytest.mark.parametrize("jobs", [2, 3, 7])  # 7 > M: one process per method
def test_worker_processes_give_the_numbers_of_one_process(examples, jobs) -> None:
    # the same draws; the matrix products are blocked differently, so equal up to rounding
    from lsexp.analysis.bootstrap import aurc_statistic

    logits, labels = _sweep(5, m=5, s=3, n=80)
    stats = [*STATISTICS, aurc_statistic("msp"), aurc_statistic("pnorm")]
    one = hierarchical_bootstrap(logits, labels, stats, n_boot=40, seed=2, examples=examples,
                                 methods=list("abcde"))  # fmt: skip
    many = hierarchical_bootstrap(logits, labels, stats, n_boot=40, seed=2, examples=examples,
                                  methods=list("abcde"), jobs=jobs)  # fmt: skip
    assert list(one) == list(many)
    for name in one:
        assert many[name].methods == tuple("abcde")
        np.testing.assert_allclose(many[name].per_run, one[name].per_run, rtol=1e-13, atol=0)
        np.testing.assert_allclose(many[name].replicates, one[name].replicates, rtol=1e-13,
                                   atol=0)  # fmt: skip
    with pytest.raises(ValueError, match="jobs"):
        hierarchical_bootstrap(logits, labels, stats[:1], n_boot=5, jobs=0)
