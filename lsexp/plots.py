"""Drawing functions. Each draws numbers it is given onto an `ax` it is given.

The numbers come from `lsexp.report` / `lsexp.metrics`; nothing here computes a metric.
Colours: one colour per alpha from a sequential map, so figures can be read side by side.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from lsexp.metrics import ReliabilityBins  # noqa: E402

OVER = "#d62728"  # over-confident gap (confidence above accuracy)
UNDER = "#1f77b4"  # under-confident gap


def alpha_colors(alphas: list[float]) -> dict[float, tuple]:
    cmap = plt.get_cmap("viridis")
    n = max(1, len(alphas) - 1)
    return {a: cmap(0.9 * i / n) for i, a in enumerate(sorted(alphas))}


def metric_vs_alpha(
    ax: Axes,
    alphas: np.ndarray,
    mean: np.ndarray,
    half_width: np.ndarray,
    n: np.ndarray,
    *,
    ylabel: str,
    label: str | None = None,
    color: str = "C0",
    annotate_n: bool = True,
) -> None:
    """Mean over seeds with 95 % interval error bars; `n=` written above each point."""
    hw = np.where(np.isfinite(half_width), half_width, 0.0)
    ax.errorbar(alphas, mean, yerr=hw, marker="o", capsize=4, color=color, label=label, lw=1.5)
    if annotate_n:
        for a, m, h, k in zip(alphas, mean, hw, n, strict=True):
            if np.isfinite(m):
                ax.annotate(
                    f"n={int(k)}", (a, m + h), textcoords="offset points", xytext=(0, 4),
                    ha="center", fontsize=7, color="0.35",
                )  # fmt: skip
    ax.set_xlabel("label smoothing α")
    ax.set_ylabel(ylabel)
    ax.set_xticks(alphas)
    ax.set_xticklabels([f"{a:g}" for a in alphas], rotation=45 if len(alphas) > 8 else 0)
    ax.grid(alpha=0.3)


SPARSE_BIN = 30  # fewer examples than this in a reliability bin: drawn faded, with its count


def reliability(ax: Axes, bins: ReliabilityBins, *, title: str, ece_text: str) -> None:
    """Guo et al. (2017) reliability diagram: per-bin accuracy bars, gap to the diagonal.

    The gap is drawn from accuracy to confidence, red where the model is over-confident
    (confidence > accuracy) and blue where under-confident, so the direction shows. Bins
    with fewer than SPARSE_BIN examples are faded and labelled with their count.
    """
    width = 1.0 / bins.n_bins
    centers = (bins.edges[:-1] + bins.edges[1:]) / 2
    filled = bins.counts > 0
    acc = np.where(filled, bins.accuracy, 0.0)
    conf = np.where(filled, bins.confidence, 0.0)
    # A bin with a handful of examples can show any accuracy: fade it and print its count,
    # so that a tall bar from three examples is not read as a finding.
    sparse = filled & (bins.counts < SPARSE_BIN)
    solid = ~sparse
    ax.bar(centers[solid], acc[solid], width=width, color="0.55", edgecolor="0.2", lw=0.6,
           label="accuracy")  # fmt: skip
    if sparse.any():
        ax.bar(centers[sparse], acc[sparse], width=width, color="0.85", edgecolor="0.5",
               lw=0.6, ls=":", label=f"bin with < {SPARSE_BIN} examples")  # fmt: skip
        for x, n in zip(centers[sparse], bins.counts[sparse], strict=True):
            ax.text(x, 0.02, f"n={int(n)}", rotation=90, ha="center", va="bottom",
                    fontsize=6, color="0.2")  # fmt: skip
    over = filled & (conf > acc)
    under = filled & (conf <= acc)
    for mask, color, name in ((over, OVER, "over-confident"), (under, UNDER, "under-confident")):
        if (mask & solid).any():
            m = mask & solid
            ax.bar(
                centers[m], (conf - acc)[m], bottom=acc[m], width=width, color=color,
                alpha=0.35, edgecolor=color, hatch="//", lw=0.6, label=name,
            )  # fmt: skip
        if (mask & sparse).any():  # the gap of a sparse bin: outlined only
            m = mask & sparse
            ax.bar(centers[m], (conf - acc)[m], bottom=acc[m], width=width, fill=False,
                   edgecolor=color, lw=0.6, ls=":")  # fmt: skip
    ax.plot([0, 1], [0, 1], ls="--", color="k", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.text(
        0.03, 0.97, ece_text, transform=ax.transAxes, va="top", ha="left", fontsize=8,
        bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"},
    )  # fmt: skip
    ax.set_xlabel("confidence")


def confidence_histogram(
    ax: Axes, bins: ReliabilityBins, *, mean_accuracy: float, mean_confidence: float
) -> None:
    """Fraction of samples per confidence bin, with mean accuracy and mean confidence lines."""
    width = 1.0 / bins.n_bins
    centers = (bins.edges[:-1] + bins.edges[1:]) / 2
    frac = bins.counts / max(1, bins.counts.sum())
    ax.bar(centers, frac, width=width, color="0.7", edgecolor="0.3", lw=0.6)
    ax.axvline(mean_accuracy, color="k", ls="-", lw=1.2, label=f"accuracy {mean_accuracy:.3f}")
    ax.axvline(mean_confidence, color=OVER if mean_confidence > mean_accuracy else UNDER,
               ls="--", lw=1.2, label=f"avg. conf. {mean_confidence:.3f}")  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.legend(fontsize=7, loc="upper left", frameon=False)


def logit_gap_vs_alpha(
    ax: Axes,
    alphas: np.ndarray,
    mean: np.ndarray,
    half_width: np.ndarray,
    n: np.ndarray,
    num_classes: int,
) -> None:
    """Measured mean logit gap per alpha, and the gap that minimises the smoothed loss."""
    metric_vs_alpha(ax, alphas, mean, half_width, n, ylabel="mean logit gap (test)",
                    label="measured (end of training)")  # fmt: skip
    pos = alphas[alphas > 0]
    if len(pos):
        grid = np.linspace(max(1e-3, pos.min() * 0.5), max(alphas.max(), 0.05), 200)
        cap = np.log(num_classes * (1 - grid) / grid + 1)
        ax.plot(grid, cap, color="0.4", ls=":", lw=1.5,
                label="loss-minimising gap log(K(1−α)/α + 1)")  # fmt: skip
        finite = mean[np.isfinite(mean)]
        top = max(float(finite.max()) if len(finite) else 1.0, 1.0) * 1.3
        ax.set_ylim(0, top)
    ax.legend(fontsize=8)


def curves_by_alpha(
    ax: Axes,
    curves: dict[float, tuple[np.ndarray, np.ndarray]],
    *,
    ylabel: str,
) -> None:
    """One line per alpha (x = epoch, y = mean over seeds)."""
    colors = alpha_colors(list(curves))
    for a in sorted(curves):
        x, y = curves[a]
        ax.plot(x, y, color=colors[a], label=f"α={a:g}", lw=1.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)


def projection(
    ax: Axes,
    xy: np.ndarray,
    labels: np.ndarray,
    classes: np.ndarray,
    names: list[str],
    *,
    title: str,
) -> None:
    """Scatter of projected activations, one colour per class (Müller et al. 2019, Fig. 1)."""
    for i, (k, name) in enumerate(zip(classes, names, strict=True)):
        pts = xy[labels == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.5, color=f"C{i}", label=name,
                   edgecolors="none")  # fmt: skip
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, markerscale=2)
