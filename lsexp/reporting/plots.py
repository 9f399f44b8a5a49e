"""Drawing functions. Each draws numbers it is given onto an `ax` (or `fig`) it is given.

The numbers come from `lsexp.reporting.report` / `lsexp.analysis.metrics`; nothing here
computes a metric.

Rules every figure keeps, because the figures go into papers (and are checked in
tests/test_figures.py on the matplotlib objects):
- no text on the data: counts, legends and notes sit outside the plotting area (a top axis,
  a legend beside or below the panels, or an empty grid slot);
- every series is told apart by marker and line style as well as colour, so it reads in
  greyscale;
- a legend swatch is drawn with the very style dict its data was drawn with.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.transforms import offset_copy  # noqa: E402

from lsexp.analysis.metrics import ReliabilityBins  # noqa: E402

OVER = "#d62728"  # over-confident gap (confidence above accuracy)
UNDER = "#1f77b4"  # under-confident gap
SMALL = 8  # smallest font size used (points): legible at the size index.html shows figures
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
LINESTYLES = ("-", "--", "-.", ":")


def alpha_styles(alphas: list[float]) -> dict[float, dict]:
    """One style per alpha: colour from a sequential map (order reads as α), plus a marker
    and line style of its own, so neighbouring α stay apart where colours are close."""
    cmap = plt.get_cmap("viridis")
    ordered = sorted(alphas)
    n = max(1, len(ordered) - 1)
    return {
        a: {
            "color": cmap(0.92 * i / n),
            "marker": MARKERS[i % len(MARKERS)],
            "ls": LINESTYLES[i % len(LINESTYLES)],
        }
        for i, a in enumerate(ordered)
    }


def metric_vs_alpha(
    ax: Axes,
    alphas: np.ndarray,
    mean: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    ylabel: str,
    label: str | None = None,
    style: dict | None = None,
    dodge_pt: float = 0.0,
) -> None:
    """Mean per α with an error bar from `low` to `high` (NaN: no bar at that point).

    dodge_pt shifts the series sideways on the page by that many points (the data stay at
    their α), so two series on one axis do not hide each other where they agree.
    """
    style = {"color": "C0", "marker": "o", "ls": "-"} | (style or {})
    mean = np.asarray(mean, dtype=float)
    has_bar = np.isfinite(low) & np.isfinite(high) & np.isfinite(mean)
    yerr = np.where(has_bar, [mean - np.asarray(low), np.asarray(high) - mean], 0.0)
    transform = offset_copy(ax.transData, fig=ax.figure, x=dodge_pt, units="points")
    ax.errorbar(alphas, mean, yerr=np.maximum(yerr, 0.0), capsize=3, lw=1.5, ms=6,
                label=label, transform=transform, **style)  # fmt: skip
    # An offset transform hides the points from autoscaling: add them to the limits here.
    ys = np.concatenate([mean, np.where(has_bar, low, np.nan), np.where(has_bar, high, np.nan)])
    xs = np.tile(np.asarray(alphas, dtype=float), 3)
    keep = np.isfinite(ys)
    if keep.any():
        ax.update_datalim(np.column_stack([xs[keep], ys[keep]]))
        ax.autoscale_view()
    ax.set_xlabel("label smoothing α")
    ax.set_ylabel(ylabel)
    alpha_ticks(ax, alphas)
    ax.grid(alpha=0.3)


def connector(ax: Axes, start: tuple[float, float], end: tuple[float, float], style: dict,
              dodge_pt: float = 0.0) -> None:  # fmt: skip
    """A line in a series' colour and line style from `start` (a point the series shares
    with others, such as a baseline) to `end`, without markers, shifted sideways with its
    series by `dodge_pt` points."""
    if not all(np.isfinite([*start, *end])):
        return
    transform = offset_copy(ax.transData, fig=ax.figure, x=dodge_pt, units="points")
    ax.plot([start[0], end[0]], [start[1], end[1]], color=style.get("color"),
            ls=style.get("ls", "-"), lw=1.5, zorder=1, transform=transform)  # fmt: skip


def alpha_ticks(ax: Axes, alphas: np.ndarray) -> None:
    ax.set_xticks(alphas)
    ax.set_xticklabels([f"{a:g}" for a in alphas], rotation=45 if len(alphas) > 8 else 0)
    pad = 0.06 * max(float(np.ptp(alphas)), 0.1)
    ax.set_xlim(float(np.min(alphas)) - pad, float(np.max(alphas)) + pad)


def seeds_axis(ax: Axes, alphas: np.ndarray, n: np.ndarray) -> None:
    """The number of finished seeds per α on a top axis, clear of the data: for figures
    where it differs between α (where it is the same, the title says it once)."""
    top = ax.secondary_xaxis("top")
    top.set_xticks(alphas, labels=[str(int(k)) for k in n])
    top.tick_params(length=2, labelsize=SMALL, colors="0.3")
    top.set_xlabel("seeds (n)", fontsize=SMALL, color="0.3")


LOG_FLOOR_FACTOR = 3.0  # a log axis starts at most this factor below the smallest mean


def log_y(ax: Axes, lowest: float | None = None) -> bool:
    """A log y-axis with ticks at 1, 2, 5 x 10^k, labelled as plain numbers (0.5, 1, 2).

    `lowest`, the smallest mean drawn: the axis then starts at most LOG_FLOOR_FACTOR below
    it, so an interval that reaches towards 0 (a t-interval of a small ECE does) runs off
    the bottom instead of stretching the axis over decades. Returns whether a bar was cut.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    cut = False
    if lowest is not None and np.isfinite(lowest) and lowest > 0:
        y0, y1 = ax.get_ylim()
        floor = lowest / LOG_FLOOR_FACTOR
        if y0 < floor:
            ax.set_ylim(floor, y1)
            cut = True
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    return cut


def cover(ax: Axes, low: float, high: float) -> None:
    """Widen the y-axis to show at least [low, high] (a resolution the data cannot beat)."""
    y0, y1 = ax.get_ylim()
    if np.isfinite(low) and np.isfinite(high):
        ax.set_ylim(min(y0, low), max(y1, high))


def legend_below(ax: Axes, ncol: int = 2) -> None:
    """The axis legend under the axis (below the x label), off the data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, fontsize=SMALL,
              frameon=False, handlelength=3)  # fmt: skip


# ---------------------------------------------------------------------------------------
# Reliability diagrams
# ---------------------------------------------------------------------------------------

SPARSE_BIN = 30  # fewer examples than this in a reliability bin: drawn faded, with its count


def _tint(color: str, strength: float) -> tuple[float, float, float]:
    """`color` mixed with white: an opaque light shade (a translucent fill would take the
    colour of whatever lies under it, and then no longer match its legend swatch)."""
    return tuple(strength * c + (1 - strength) for c in to_rgb(color))


ACC_BAR = {"facecolor": "0.55", "edgecolor": "0.2", "lw": 0.6}
SPARSE_BAR = {"facecolor": "0.88", "edgecolor": "0.45", "lw": 0.6, "ls": ":"}
# An under-confident gap lies over the accuracy bar (it runs down from accuracy to
# confidence): opaque fills keep its colour the legend's.
OVER_GAP = {"facecolor": _tint(OVER, 0.35), "edgecolor": OVER, "hatch": "//", "lw": 0.6}
UNDER_GAP = {"facecolor": _tint(UNDER, 0.35), "edgecolor": UNDER, "hatch": "\\\\", "lw": 0.6}
DIAGONAL = {"ls": "--", "color": "k", "lw": 1}
HIST_BAR = {"facecolor": "0.7", "edgecolor": "0.3", "lw": 0.6}
MEAN_ACC_LINE = {"color": "k", "ls": "-", "lw": 1.3}
MEAN_CONF_LINE = {"color": "k", "ls": (0, (4, 2)), "lw": 1.3}


def reliability(ax: Axes, bins: ReliabilityBins, *, title: str) -> None:
    """Guo et al. (2017) reliability diagram: per-bin accuracy bars, gap to the diagonal.

    The gap is drawn from accuracy to confidence, red (hatched /) where the model is
    over-confident (confidence > accuracy) and blue (hatched \\) where under-confident, so
    the direction shows in greyscale too. Bins with fewer than SPARSE_BIN examples are
    faded, their gap only outlined, and their count written on a top axis over the bin.
    The legend is drawn once per figure by `reliability_legend`.
    """
    width = 1.0 / bins.n_bins
    centers = (bins.edges[:-1] + bins.edges[1:]) / 2
    filled = bins.counts > 0
    acc = np.where(filled, bins.accuracy, 0.0)
    conf = np.where(filled, bins.confidence, 0.0)
    # A bin with a handful of examples can show any accuracy: fade it and print its count,
    # so that a tall bar from three examples is not read as a finding.
    sparse = filled & (bins.counts < SPARSE_BIN)
    solid = filled & ~sparse
    ax.bar(centers[solid], acc[solid], width=width, **ACC_BAR)
    ax.bar(centers[sparse], acc[sparse], width=width, **SPARSE_BAR)
    gap = conf - acc
    for mask, style in ((filled & (gap > 0), OVER_GAP), (filled & (gap < 0), UNDER_GAP)):
        ax.bar(centers[mask & solid], gap[mask & solid], bottom=acc[mask & solid],
               width=width, **style)  # fmt: skip
        # The gap of a sparse bin: outlined only.
        ax.bar(centers[mask & sparse], gap[mask & sparse], bottom=acc[mask & sparse],
               width=width, fill=False, edgecolor=style["edgecolor"], lw=0.6, ls=":")  # fmt: skip
    ax.plot([0, 1], [0, 1], **DIAGONAL)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    if sparse.any():
        top = ax.secondary_xaxis("top")
        top.set_xticks(centers[sparse], labels=[str(int(k)) for k in bins.counts[sparse]])
        # No tick marks: beside a rotated count a tick reads as a minus sign.
        top.tick_params(length=0, labelsize=SMALL, colors="0.3", pad=2, labelrotation=90)
    ax.set_title(title, fontsize=SMALL + 1)


def confidence_histogram(
    ax: Axes, bins: ReliabilityBins, *, mean_accuracy: float, mean_confidence: float
) -> None:
    """Fraction of samples per confidence bin, with mean accuracy and mean confidence lines."""
    width = 1.0 / bins.n_bins
    centers = (bins.edges[:-1] + bins.edges[1:]) / 2
    frac = bins.counts / max(1, bins.counts.sum())
    ax.bar(centers, frac, width=width, **HIST_BAR)
    ax.axvline(mean_accuracy, **MEAN_ACC_LINE)
    ax.axvline(mean_confidence, **MEAN_CONF_LINE)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    # Three ticks: with more, the "1.0" of a panel runs into the "0.0" of its neighbour.
    ax.set_xticks([0, 0.5, 1], labels=["0", "0.5", "1"])
    ax.set_xlabel("confidence")


def reliability_legend_handles(sparse: bool) -> list[tuple[object, str]]:
    """Legend entries built from the same style dicts the panels are drawn with."""
    entries: list[tuple[object, str]] = [
        (Patch(**ACC_BAR), "accuracy in the bin"),
        (Patch(**OVER_GAP), "gap: over-confident"),
        (Patch(**UNDER_GAP), "gap: under-confident"),
        (Line2D([], [], **DIAGONAL), "perfect calibration"),
    ]
    if sparse:
        entries.append(
            (Patch(**SPARSE_BAR), f"bin with < {SPARSE_BIN} examples\n(count above the panel)")
        )
    entries += [
        (Patch(**HIST_BAR), "fraction of examples\n(lower panels)"),
        (Line2D([], [], **MEAN_ACC_LINE), "mean accuracy"),
        (Line2D([], [], **MEAN_CONF_LINE), "mean confidence"),
    ]
    return entries


def reliability_legend(target: Axes | Figure, sparse: bool) -> None:
    """The one legend of a reliability figure: in an empty grid slot (an Axes, turned
    off) when there is one, else under the panels."""
    handles, labels = zip(*reliability_legend_handles(sparse), strict=True)
    if isinstance(target, Axes):
        target.set_axis_off()
        target.legend(handles, labels, loc="center", fontsize=SMALL + 1, frameon=False)
    else:
        target.legend(handles, labels, loc="outside lower center", ncol=4,
                      fontsize=SMALL + 1, frameon=False)  # fmt: skip


# ---------------------------------------------------------------------------------------
# Logit gap and training curves
# ---------------------------------------------------------------------------------------


def logit_gap_theory(ax: Axes, grid: np.ndarray, cap: np.ndarray, num_classes: int) -> None:
    """The loss-minimising logit gap log(K(1−α)/α + 1) (Müller et al. 2019) as a line."""
    ax.plot(grid, cap, color="0.4", ls=":", lw=1.5,
            label=f"loss-minimising gap log(K(1−α)/α + 1), K = {num_classes} classes")  # fmt: skip


def curves_by_alpha(
    ax: Axes,
    curves: dict[float, tuple[np.ndarray, np.ndarray]],
    *,
    ylabel: str,
) -> None:
    """One line per alpha (x = epoch, y = mean over seeds), legend to the right."""
    styles = alpha_styles(list(curves))
    for a in sorted(curves):
        x, y = curves[a]
        every = max(1, len(x) // 8)  # a few markers per line, so it reads in greyscale
        ax.plot(x, y, label=f"α = {a:g}", lw=1.4, ms=5, markevery=every, **styles[a])
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=SMALL, frameon=False,
              handlelength=3)  # fmt: skip


# ---------------------------------------------------------------------------------------
# Penultimate-layer projection
# ---------------------------------------------------------------------------------------

CLASS_MARKERS = ("o", "s", "^")


def projection(
    ax: Axes,
    xy: np.ndarray,
    labels: np.ndarray,
    classes: np.ndarray,
    names: list[str],
    *,
    title: str,
    limits: tuple[float, float, float, float],
) -> None:
    """Scatter of projected activations, one colour and marker per class (Müller et al.
    2019, Fig. 1), on the given (x0, x1, y0, y1) limits so that panels share one scale."""
    for i, (k, name) in enumerate(zip(classes, names, strict=True)):
        pts = xy[labels == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=7, alpha=0.5, color=f"C{i}", label=name,
                   marker=CLASS_MARKERS[i % len(CLASS_MARKERS)], edgecolors="none")  # fmt: skip
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[2], limits[3])
    ax.set_aspect("equal", adjustable="box")
    ax.set_title(title, fontsize=SMALL + 2)
    ax.set_xlabel("coordinate along e₁")
    ax.grid(alpha=0.3)
