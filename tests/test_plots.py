"""What the figures draw (checked on the matplotlib objects, not on pixels)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lsexp import plots  # noqa: E402
from lsexp.metrics import reliability_bins  # noqa: E402


def test_sparse_reliability_bins_are_faded_and_counted():
    rng = np.random.default_rng(0)
    # 3000 confident predictions, and 3 at confidence ~0.1 that happen to be right.
    conf = np.concatenate([rng.uniform(0.8, 1.0, 3000), [0.1, 0.1, 0.1]])
    probs = np.column_stack([conf] + [(1 - conf) / 9] * 9)  # 10 classes, class 0 predicted
    labels = np.concatenate([(rng.uniform(size=3000) > conf[:3000]).astype(int), [0, 0, 0]])
    bins = reliability_bins(probs, labels, n_bins=10)
    fig, ax = plt.subplots()
    plots.reliability(ax, bins, title="t", ece_text="e")
    texts = [t.get_text() for t in ax.texts]
    assert "n=3" in texts  # the sparse bin carries its count
    assert sum(t.startswith("n=") for t in texts) == 1  # dense bins do not
    labels_drawn = ax.get_legend_handles_labels()[1]
    assert f"bin with < {plots.SPARSE_BIN} examples" in labels_drawn
    plt.close(fig)
