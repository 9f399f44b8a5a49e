"""The Wilson score interval of a binomial proportion, against SciPy."""

from __future__ import annotations

import numpy as np
import pytest

from lsexp.analysis.stats import wilson_interval


def test_wilson_interval_closed_form_case():
    # 0 successes in 10: [0, z²/(n + z²)] = [0, 3.8415 / 13.8415] = [0, 0.2775], where the
    # normal (Wald) interval collapses to [0, 0].
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0, abs=1e-12)
    assert high == pytest.approx(1.959964**2 / (10 + 1.959964**2), rel=1e-12)
    assert high == pytest.approx(0.2775, abs=1e-4)


def test_wilson_interval_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    for k, n in ((1700, 2000), (0, 50), (50, 50), (3, 10), (9990, 10000)):
        ref = scipy_stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        np.testing.assert_allclose(wilson_interval(k, n), (ref.low, ref.high), atol=1e-6)
    with pytest.raises(ValueError, match="expected 0 <= successes <= n"):
        wilson_interval(5, 4)
