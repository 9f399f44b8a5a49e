"""metrics.class_separation_r2 against a brute-force float64 pairwise reference written
from Kornblith et al. 2021 (Eq. 1 / Sec. 3.1), and on features whose R^2 is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lsexp.analysis import metrics
from lsexp.analysis.metrics import class_separation_r2


def ref_distances(features, labels) -> tuple[float, float]:
    """(dbar_within, dbar_total) over all N^2 pairs, straight from the formula."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    norms = np.sqrt((x * x).sum(axis=1))
    n = x.shape[0]
    sim = np.zeros((n, n))
    for m in range(n):
        for p in range(n):
            if norms[m] > 0 and norms[p] > 0:  # a zero vector: similarity 0 with everything
                sim[m, p] = x[m] @ x[p] / (norms[m] * norms[p])
    dist = 1.0 - sim
    classes = np.unique(y)
    k = len(classes)
    members = [np.flatnonzero(y == c) for c in classes]
    within = sum(dist[np.ix_(i, i)].sum() / (k * len(i) ** 2) for i in members)
    total = sum(
        dist[np.ix_(i, j)].sum() / (k**2 * len(i) * len(j)) for i in members for j in members
    )
    return float(within), float(total)


def ref_r2(features, labels) -> float:
    within, total = ref_distances(features, labels)
    return 1.0 - within / total


def clustered(rng, sizes, dim, spread):
    """Class c around a random centre, `spread` the noise scale; labels shuffled."""
    centres = rng.normal(size=(len(sizes), dim))
    noise = [spread * rng.normal(size=(s, dim)) for s in sizes]
    x = np.concatenate([c + e for c, e in zip(centres, noise, strict=True)])
    y = np.repeat(np.arange(len(sizes)), sizes)
    order = rng.permutation(len(y))
    return x[order], y[order]


@pytest.mark.parametrize("spread", [0.1, 1.0, 5.0])
def test_matches_pairwise_reference_unbalanced(spread):
    rng = np.random.default_rng(0)
    x, y = clustered(rng, [3, 40, 11, 1, 25], dim=7, spread=spread)
    got = class_separation_r2(x.astype(np.float32), y)
    want = ref_r2(x.astype(np.float32), y)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-13)
    within, total = metrics._class_distances(x, y)
    ref_within, ref_total = ref_distances(x, y)
    assert within == pytest.approx(ref_within, rel=1e-12, abs=1e-14)
    assert total == pytest.approx(ref_total, rel=1e-12, abs=1e-14)


def test_matches_reference_with_zero_rows():
    rng = np.random.default_rng(1)
    x, y = clustered(rng, [6, 9, 4], dim=5, spread=0.5)
    x[[0, 3, 10]] = 0.0
    assert class_separation_r2(x, y) == pytest.approx(ref_r2(x, y), rel=1e-12)
    # A zero row is at distance 1 from everything, itself included: a class of zero rows
    # alone has within-class distance 1.
    x2 = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    y2 = np.array([0, 0, 1, 1])
    within, total = metrics._class_distances(x2, y2)
    assert within == pytest.approx(0.5)  # (1 + 0) / 2
    assert total == pytest.approx(ref_distances(x2, y2)[1])
    assert total == pytest.approx(0.75)  # classes (0,0), (0,1), (1,0): 1; (1,1): 0


@pytest.mark.parametrize("k", [2, 100])
def test_matches_reference_k(k):
    rng = np.random.default_rng(k)
    sizes = rng.integers(1, 8, size=k) if k > 2 else [2, 17]
    x, y = clustered(rng, sizes, dim=12, spread=1.5)
    labels = y * 3 - 50  # any integer values, not 0..K-1
    assert class_separation_r2(x, labels) == pytest.approx(ref_r2(x, labels), rel=1e-11)


@pytest.mark.parametrize("k", [2, 3, 10])
def test_orthogonal_one_hot_clusters_give_one(k):
    rng = np.random.default_rng(2)
    sizes = rng.integers(1, 6, size=k)
    y = np.repeat(np.arange(k), sizes)
    x = np.eye(k + 2)[y] * rng.uniform(0.5, 3.0, size=(len(y), 1))  # positive multiples
    within, total = metrics._class_distances(x, y)
    # Within a class every pair has sim 1; between classes sim 0, so each of the K^2 - K
    # off-diagonal class pairs has distance 1: dbar_total = (K^2 - K) / K^2 = 1 - 1/K.
    assert within == 0.0
    assert total == pytest.approx(1.0 - 1.0 / k, rel=1e-15)
    assert ref_distances(x, y) == pytest.approx((0.0, 1.0 - 1.0 / k))
    assert class_separation_r2(x, y) == 1.0


def test_identical_distributions_give_zero():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(30, 6))
    x = np.concatenate([base, base, base])  # every class holds the same vectors
    y = np.repeat([0, 1, 2], 30)
    assert abs(class_separation_r2(x, y)) < 1e-12
    # i.i.d. features with random labels: R^2 is small (O(K / N)), not 0.
    x = rng.normal(size=(20_000, 16))
    y = rng.integers(0, 10, size=20_000)
    assert 0.0 <= class_separation_r2(x, y) < 5e-3


def test_invariant_to_positive_row_scaling():
    rng = np.random.default_rng(4)
    x, y = clustered(rng, [10, 5, 8], dim=4, spread=1.0)
    r2 = class_separation_r2(x, y)
    scales = 10.0 ** rng.uniform(-250, 250, size=(len(y), 1))  # norms would over/underflow
    assert class_separation_r2(x * scales, y) == pytest.approx(r2, rel=1e-12)
    assert class_separation_r2(-x, y) == pytest.approx(r2, rel=1e-12)  # sim(-a,-b) = sim(a,b)
    # A negative scale is not a positive one: flipping one class changes R^2.
    flipped = np.where((y == 0)[:, None], -x, x)
    assert class_separation_r2(flipped, y) != pytest.approx(r2, rel=1e-6)


def test_all_rows_one_direction_is_nan():
    x = np.array([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]])
    assert math.isnan(class_separation_r2(x, [0, 1, 1]))


def test_in_unit_interval():
    rng = np.random.default_rng(5)
    for _ in range(20):
        x = rng.normal(size=(15, 3)) * (rng.random((15, 1)) < 0.8)
        y = rng.integers(0, 4, size=15)
        if len(np.unique(y)) >= 2:
            assert 0.0 <= class_separation_r2(x, y) <= 1.0


@pytest.mark.parametrize(
    ("features", "labels", "match"),
    [
        (np.ones(4), [0, 1, 0, 1], "shape"),
        (np.ones((4, 2, 1)), [0, 1, 0, 1], "shape"),
        (np.ones((0, 2)), np.array([], dtype=int), "shape"),
        (np.ones((4, 0)), [0, 1, 0, 1], "shape"),
        (np.array([[1.0, np.nan]] * 4), [0, 1, 0, 1], "finite"),
        (np.array([[1.0, np.inf]] * 4), [0, 1, 0, 1], "finite"),
        (np.array([["a", "b"]] * 4), [0, 1, 0, 1], "real dtype"),
        (np.ones((4, 2)), [[0, 1, 0, 1]], "labels of shape"),
        (np.ones((4, 2)), [0, 1, 0], "4 labels"),
        (np.ones((4, 2)), [0.0, 1.0, 0.0, 1.0], "integer labels"),
        (np.ones((4, 2)), [True, False, True, False], "integer labels"),
        (np.ones((4, 2)), [3, 3, 3, 3], "at least 2 classes"),
    ],
)
def test_bad_inputs(features, labels, match):
    with pytest.raises(ValueError, match=match):
        class_separation_r2(features, labels)
