"""What the figures draw (checked on the matplotlib objects, not on pixels)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from lsexp.analysis.metrics import reliability_bins  # noqa: E402
from lsexp.reporting import plots  # noqa: E402


def test_sparse_reliability_bins_are_faded_and_counted():
    rng = np.random.default_rng(0)
    # 3000 confident predictions, and 3 at confidence ~0.1 that happen to be right.
    conf = np.concatenate([rng.uniform(0.8, 1.0, 3000), [0.1, 0.1, 0.1]])
    probs = np.column_stack([conf] + [(1 - conf) / 9] * 9)  # 10 classes, class 0 predicted
    labels = np.concatenate([(rng.uniform(size=3000) > conf[:3000]).astype(int), [0, 0, 0]])
    bins = reliability_bins(probs, labels, n_bins=10)
    fig, ax = plt.subplots()
    plots.reliability(ax, bins, title="t")
    # The count stands over its bin on a top axis, off the bars; dense bins have none.
    (top,) = ax.child_axes
    assert [t.get_text() for t in top.get_xticklabels()] == ["3"]
    np.testing.assert_allclose(top.get_xticks(), [0.05])  # bin (0, 0.1]: 0.1 is its right edge
    assert not ax.texts
    faded = [p for p in ax.patches if p.get_facecolor() == to_rgba(plots.SPARSE_BAR["facecolor"])]
    assert len(faded) == 1 and faded[0].get_height() == pytest.approx(1.0)  # 3 of 3 right
    labels = [label for _, label in plots.reliability_legend_handles(sparse=True)]
    assert f"bin with < {plots.SPARSE_BIN} examples\n(count above the panel)" in labels
    plt.close(fig)


def test_alpha_styles_differ_in_marker_and_dash_not_only_colour():
    alphas = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5]
    styles = plots.alpha_styles(alphas)
    assert len({(s["marker"], s["ls"]) for s in styles.values()}) == len(alphas)
    # Neighbours differ in marker and dash as well as in colour.
    for a, b in zip(alphas[:-1], alphas[1:], strict=True):
        assert styles[a]["marker"] != styles[b]["marker"] and styles[a]["ls"] != styles[b]["ls"]


def test_a_log_axis_ends_a_factor_below_the_smallest_mean_and_says_so():
    fig, ax = plt.subplots()
    # a t-interval of a small ECE reaching towards 0: without the floor the axis would
    # span four decades below the data
    ax.errorbar([0, 1], [0.6, 2.0], yerr=[[0.5999, 0.5], [0.3, 0.5]])
    assert plots.log_y(ax, lowest=0.6) is True
    assert ax.get_ylim()[0] == pytest.approx(0.6 / plots.LOG_FLOOR_FACTOR)
    # nothing below the floor: the axis is left as matplotlib chose, nothing is cut
    fig2, (ax2, ax3) = plt.subplots(1, 2)
    for a in (ax2, ax3):
        a.errorbar([0, 1], [0.6, 2.0], yerr=[[0.1, 0.5], [0.3, 0.5]])
    assert plots.log_y(ax2, lowest=0.6) is False
    assert plots.log_y(ax3) is False
    assert ax2.get_ylim() == ax3.get_ylim()
    assert 0.6 / plots.LOG_FLOOR_FACTOR < ax2.get_ylim()[0] < 0.5
    plt.close(fig)
    plt.close(fig2)
