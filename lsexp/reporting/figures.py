"""The report's figures: one function per figure computes its numbers and draws them with
`reporting.plots` on a Figure it makes; `build_figures` lists them, `save` writes each as
PDF and 300-dpi PNG, `figure_captions` says what each shows."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lsexp.analysis import metrics
from lsexp.analysis.stats import wilson_interval
from lsexp.reporting import plots
from lsexp.reporting.runs import N_BOOT, AlphaGroup, Report, num_classes, setting_label
from lsexp.results.store import (
    atomic_write_bytes,
)

# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------

FIG_DPI = 300


def save_figure(fig, out: Path, stem: str) -> list[Path]:
    """Write <stem>.pdf (vector) and <stem>.png (FIG_DPI) into `out`, then close the figure.

    PDF fonts are embedded as TrueType (fonttype 42) rather than Type 3, which many
    publishers reject, and CreationDate is left out so that the same numbers give the
    same bytes.
    """
    import io

    import matplotlib.pyplot as plt

    paths = []
    try:
        with plt.rc_context({"pdf.fonttype": 42}):
            for fmt, extra in (("pdf", {"metadata": {"CreationDate": None}}),
                               ("png", {"dpi": FIG_DPI})):  # fmt: skip
                buf = io.BytesIO()
                fig.savefig(buf, format=fmt, bbox_inches="tight", pad_inches=0.05, **extra)
                atomic_write_bytes(out / f"{stem}.{fmt}", buf.getvalue())
                paths.append(out / f"{stem}.{fmt}")
    finally:
        plt.close(fig)
    return paths


@dataclass
class Series:
    """What a metric-vs-α figure draws for one metric (numbers already scaled)."""

    alphas: np.ndarray
    mean: np.ndarray
    low: np.ndarray  # error-bar ends; NaN: no bar at that α
    high: np.ndarray
    n: np.ndarray  # finished seeds per α
    bars: str  # what the error bars are, in words ("" when there are none)


def _done_groups(report: Report) -> list[AlphaGroup]:
    return [g for g in report.groups if g.runs]


def _n_test(report: Report) -> int:
    return int(next(r["n_test"] for g in _done_groups(report) for r in g.runs))


def metric_series(report: Report, name: str, scale: float = 1.0) -> Series:
    """Mean over seeds per α, with the report's 95 % interval over seeds as error bars.

    With one seed at every α there is no interval over seeds; the error bars are then the
    test-set interval of that one run where one exists: the Wilson interval for accuracy,
    the per-run bootstrap over test examples for ECE.
    """
    groups = _done_groups(report)
    stats = [g.stat(name) for g in groups]
    alphas = np.array([g.alpha for g in groups])
    mean = np.array([s.mean for s in stats]) * scale
    n = np.array([s.n for s in stats])
    low = np.array([s.ci_low for s in stats]) * scale
    high = np.array([s.ci_high for s in stats]) * scale
    bars = f"{report.interval_label} over seeds"
    if (n == 1).any() and (n > 1).any():
        bars += " (none where n = 1)"
    if (n <= 1).all():
        runs = [g.runs[0] for g in groups]
        if name == "accuracy":
            cis = [wilson_interval(round(r["accuracy"] * r["n_test"]), r["n_test"]) for r in runs]
            low, high = (np.array(x) * scale for x in zip(*cis, strict=True))
            bars = f"95% Wilson interval over the {_n_test(report):,} test images"
        elif name == "ece":
            low = np.array([r["ece_boot_low"] for r in runs]) * scale
            high = np.array([r["ece_boot_high"] for r in runs]) * scale
            bars = f"95% bootstrap interval over test images ({N_BOOT} resamples)"
        else:
            bars = ""
    return Series(alphas, mean, low, high, n, bars)


def _seeds_words(report: Report, n: np.ndarray) -> str:
    """n once, for the title, when it is the same at every α; else "" (a top axis shows it)."""
    if len(set(n.tolist())) != 1:
        return ""
    if n[0] == 1:
        seed = _done_groups(report)[0].runs[0]["seed"]
        return f"one seed (seed {seed})"
    return f"mean over n = {n[0]} seeds per α"


def _subtitle(report: Report, s: Series) -> str:
    seeds = _seeds_words(report, s.n) or "mean over seeds, n per α on the top axis"
    bars = f"error bars: {s.bars}" if s.bars else "no error bars"
    return f"{seeds}; {bars}"


def _title(report: Report) -> str:
    c = report.config
    return f"{c.data.name} / {c.model.name} / {c.train.epochs} epochs"


def _draw_series(ax, report: Report, s: Series, **kwargs) -> None:
    plots.metric_vs_alpha(ax, s.alphas, s.mean, s.low, s.high, **kwargs)
    if not _seeds_words(report, s.n):
        plots.seeds_axis(ax, s.alphas, s.n)


def figure_metric(report: Report, name: str, ylabel: str, scale: float = 1.0):
    """One metric against α. For accuracy the y-axis spans at least the 95 % Wilson
    interval of the test set around every point, so that a few test images never look
    like a cliff."""
    import matplotlib.pyplot as plt

    s = metric_series(report, name, scale)
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    _draw_series(ax, report, s, ylabel=ylabel)
    subtitle = _subtitle(report, s)
    if name == "accuracy":
        n_test = _n_test(report)
        lows, highs = zip(*(wilson_interval(round(m / scale * n_test), n_test)
                            for m in s.mean), strict=True)  # fmt: skip
        plots.cover(ax, min(lows) * scale, max(highs) * scale)
        if "Wilson" not in s.bars:  # with one seed the bars are this interval already
            subtitle += (f"\ny-axis spans at least the 95% Wilson interval of {n_test:,} "
                         f"test images (1 image = {100 / n_test:.2g} pp)")  # fmt: skip
    if name == "ece":
        floor_band(ax, report, "ece_floor", scale)
        plots.legend_below(ax, ncol=1)
    ax.set_title(f"{_title(report)}\n{subtitle}", fontsize=9)
    return fig


def figure_ece_ts(report: Report):
    """ECE before and after temperature scaling on one axis (Müller et al. 2019, Table 3).

    The two series differ in colour, marker, fill and line style, and are shifted 3.5 pt
    apart so that neither hides the other where they agree.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.3), layout="constrained")
    before, after = metric_series(report, "ece", 100), metric_series(report, "ece_ts", 100)
    ylabel = f"test ECE (%, {report.config.eval.n_bins} bins)"
    _draw_series(ax, report, before, ylabel=ylabel, label="no post-hoc calibration",
                 style=BEFORE_TS, dodge_pt=-3.5)  # fmt: skip
    plots.metric_vs_alpha(ax, after.alphas, after.mean, after.low, after.high, ylabel=ylabel,
                          label="after temperature scaling (T fitted on val)", style=AFTER_TS,
                          dodge_pt=3.5)  # fmt: skip
    floor_band(ax, report, "ece_ts_floor", 100, "noise floor after temperature scaling")
    plots.legend_below(ax, ncol=2)
    if before.bars == after.bars:
        bars = f"error bars: {before.bars}" if before.bars else "no error bars"
    else:
        bars = f"error bars: {before.bars or 'none'} before, {after.bars or 'none'} after"
    seeds = _seeds_words(report, before.n) or "mean over seeds, n per α on the top axis"
    ax.set_title(f"{_title(report)}\nlabel smoothing vs temperature scaling; {seeds};\n{bars}",
                 fontsize=9)  # fmt: skip
    return fig


def floor_band(ax, report: Report, key: str, scale: float, label: str | None = None) -> None:
    """The ECE noise floor per α (mean over seeds of each run's floor) as a grey band from
    0: an ECE inside it is what a perfectly calibrated model with the same confidences
    scores on this test set, and differences inside it are not resolvable."""
    s = metric_series(report, key, scale)
    ok = np.isfinite(s.mean)
    if not ok.any():
        return
    ax.fill_between(s.alphas[ok], 0, s.mean[ok], color="0.6", alpha=0.3, lw=0, zorder=0,
                    label=label or "noise floor: ECE of a perfectly calibrated model with "
                    "these confidences")  # fmt: skip
    ax.set_ylim(bottom=0)


BEFORE_TS = {"color": "C3", "marker": "o", "ls": "-"}
AFTER_TS = {"color": "C0", "marker": "s", "ls": "--", "mfc": "white", "mew": 1.5}


def projection_points(pen: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """2-D coordinates of penultimate activations in the plane through 3 class templates.

    Müller et al. (2019, Sec. 2): take the last-layer weight rows w_a, w_b, w_c of three
    classes, an orthonormal basis (e1, e2) of the plane through them (Gram-Schmidt on
    w_b - w_a, w_c - w_a), and project each activation x to ((x - w_a)·e1, (x - w_a)·e2).
    """
    w = pen["templates"].astype(np.float64)
    u, v = w[1] - w[0], w[2] - w[0]
    e1 = u / np.linalg.norm(u)
    v = v - (v @ e1) * e1
    e2 = v / np.linalg.norm(v)
    x = pen["features"].astype(np.float64) - w[0]
    return np.stack([x @ e1, x @ e2], axis=1), pen["labels"]


def projection_alphas(alphas: list[float]) -> list[float]:
    """α = 0, 0.1 (the usual default) if swept, and the largest α: the comparison of
    Müller et al. (2019, Fig. 1) plus the far end of the sweep."""
    if 0.0 not in alphas or len(alphas) < 2:
        return []
    chosen = [0.0] + ([0.1] if 0.1 in alphas else []) + [max(alphas)]
    return sorted(set(chosen))


def shared_limits(xys: list[np.ndarray], pad: float = 0.05) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) holding every point of every panel, padded: one scale for all."""
    pts = np.concatenate(xys)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    margin = pad * max(float((hi - lo).max()), 1e-12)
    return (lo[0] - margin, hi[0] + margin, lo[1] - margin, hi[1] + margin)


def figure_projection(report: Report):
    """Projection panels for `projection_alphas`, first common seed, one scale; None when
    α = 0, a smoothed α, a common seed or the saved activations are missing."""
    import matplotlib.pyplot as plt

    by_alpha = {g.alpha: g for g in report.groups if g.stored}
    chosen = projection_alphas(list(by_alpha))
    if not chosen:
        return None
    seeds = set.intersection(*({r.seed for r in by_alpha[a].stored} for a in chosen))
    if not seeds:
        return None
    seed = min(seeds)
    pens = []
    for a in chosen:
        run = next(r for r in by_alpha[a].stored if r.seed == seed)
        pen = run.penultimate()
        if pen is None:
            return None
        pens.append((a, pen, *projection_points(pen)))
    limits = shared_limits([xy for _, _, xy, _ in pens])
    info_classes = _class_names(report)
    fig, axes = plt.subplots(1, len(pens), figsize=(3.6 * len(pens), 4.4), layout="constrained",
                             squeeze=False)  # fmt: skip
    for i, (ax, (a, pen, xy, labels)) in enumerate(zip(axes[0], pens, strict=True)):
        names = [info_classes[k] if k < len(info_classes) else str(k) for k in pen["classes"]]
        plots.projection(ax, xy, labels, pen["classes"], names, title=f"α = {a:g}",
                         limits=limits)  # fmt: skip
        if i == 0:
            ax.set_ylabel("coordinate along e₂")
        else:
            ax.tick_params(labelleft=False)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=3, fontsize=plots.SMALL + 1,
               markerscale=2.5, frameon=False)  # fmt: skip
    fig.suptitle(
        "Penultimate-layer activations of three classes on the plane through their "
        "last-layer templates\n(Müller et al. 2019, Fig. 1; e₁, e₂: an orthonormal basis of "
        f"that plane). {_title(report)}, seed {seed}.\nSame scale in every panel.",
        fontsize=9,
    )
    return fig


def _class_names(report: Report) -> tuple[str, ...]:
    from lsexp.training.data import DATASETS

    info = DATASETS.get(report.config.data.name)
    return info.classes if info is not None else ()


def reliability_panels(
    report: Report, groups: list[AlphaGroup] | None = None
) -> list[dict[str, Any]]:
    """Per α (or per setting of `groups`): the reliability bins of the test predictions of
    all its seeds pooled, and the ECE, accuracy and mean confidence of those same pooled
    predictions (so the number above a panel is the ECE of the bars drawn in it)."""
    n_bins = report.config.eval.n_bins
    out = []
    for g in _done_groups(report) if groups is None else groups:
        probs = metrics.softmax(np.concatenate(g.pooled_logits))
        labels = np.concatenate(g.pooled_labels)
        out.append({
            "alpha": g.alpha,
            "name": f"α = {g.alpha:g}" if groups is None else g.label,
            "n_seeds": len(g.pooled_logits),
            "bins": metrics.reliability_bins(probs, labels, n_bins=n_bins),
            "ece": metrics.ece(probs, labels, n_bins=n_bins),
            "accuracy": metrics.accuracy(probs, labels),
            "confidence": metrics.mean_confidence(probs),
        })  # fmt: skip
    return out


def reliability_grid(n: int) -> tuple[int, int]:
    """(rows, columns) for n panels: at most 4 columns, and rows as even as possible."""
    nrows = math.ceil(n / 4)
    return nrows, math.ceil(n / nrows)


def figure_reliability(report: Report, groups: list[AlphaGroup] | None = None):
    """One reliability diagram per α (or per setting of `groups`) over its confidence
    histogram; the legend fills the first empty grid slot, or sits under the panels when
    the grid is full."""
    import matplotlib.pyplot as plt

    panels = reliability_panels(report, groups)
    nrows, ncols = reliability_grid(len(panels))
    n_seeds = {p["n_seeds"] for p in panels}
    empty = nrows * ncols - len(panels)
    legend_rows = 0 if empty else 1.1 if ncols >= 3 else 2.0
    fig = plt.figure(figsize=(max(2.7 * ncols, 4.6), 3.9 * nrows + 0.9 + legend_rows),
                     layout="constrained")  # fmt: skip
    gs = fig.add_gridspec(2 * nrows, ncols, height_ratios=[3, 1] * nrows)
    sparse = False
    for i, p in enumerate(panels):
        r, c = divmod(i, ncols)
        ax_rel = fig.add_subplot(gs[2 * r, c])
        ax_hist = fig.add_subplot(gs[2 * r + 1, c], sharex=ax_rel)
        bins = p["bins"]
        sparse |= bool(((bins.counts > 0) & (bins.counts < plots.SPARSE_BIN)).any())
        seeds = f", {p['n_seeds']} seeds" if len(n_seeds) > 1 else ""
        acc, conf = 100 * p["accuracy"], 100 * p["confidence"]
        title = (f"{p['name']}{seeds}: ECE {100 * p['ece']:.2f} %\n"
                 f"acc. {acc:.1f} %, conf. {conf:.1f} %")  # fmt: skip
        plots.reliability(ax_rel, bins, title=title)
        plots.confidence_histogram(ax_hist, bins, mean_accuracy=p["accuracy"],
                                   mean_confidence=p["confidence"])  # fmt: skip
        ax_rel.tick_params(labelbottom=False)
        if c == 0:
            ax_rel.set_ylabel("accuracy")
            ax_hist.set_ylabel("fraction")
        else:
            ax_rel.tick_params(labelleft=False)
            ax_hist.tick_params(labelleft=False)
    if empty:
        first = len(panels) % ncols
        plots.reliability_legend(fig.add_subplot(gs[2 * nrows - 2 :, first:]), sparse)
    else:
        plots.reliability_legend(fig, sparse)
    bins_words = f"{report.config.eval.n_bins} equal-width bins"
    unit = "α" if groups is None else "setting"
    if n_seeds == {1}:
        what = f"one seed per {unit} ({bins_words})"
    else:
        k = f"the {min(n_seeds)} seeds" if len(n_seeds) == 1 else "the seeds"
        what = (f"{k} of each {unit} pooled: bars, ECE, accuracy and confidence all from the "
                f"pooled\npredictions ({bins_words})")  # fmt: skip
    head = "Reliability diagrams" if groups is None else (
        "Reliability diagrams of cross-entropy and of each objective at its strength of best "
        "validation accuracy")  # fmt: skip
    fig.suptitle(f"{head}, test split, {what}. {_title(report)}", fontsize=9)
    return fig


def logit_gap_curves(report: Report) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Per α: the validation logit gap after each epoch, mean over seeds (common length)."""
    curves: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for g in report.groups:
        hs = [h for h in g.histories if h and "val_logit_gap" in h[0]]
        if not hs:
            continue
        length = min(len(h) for h in hs)
        y = np.mean([[row["val_logit_gap"] for row in h[:length]] for h in hs], axis=0)
        curves[g.alpha] = (np.arange(1, length + 1), y)
    return curves


def figure_logit_gap(report: Report):
    """(a) the test logit gap after training against the loss-minimising gap; (b) the
    validation logit gap over the epochs (the history is evaluated on the validation
    split only: the test split is not looked at during training)."""
    import matplotlib.pyplot as plt

    k = num_classes(report)
    s = metric_series(report, "logit_gap")
    curves = logit_gap_curves(report)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    _draw_series(ax1, report, s, ylabel="mean logit gap", label="measured",
                 style={"color": "C0", "marker": "o", "ls": "-"})  # fmt: skip
    pos = s.alphas[s.alphas > 0]
    if len(pos):
        grid = np.linspace(max(1e-3, pos.min() * 0.5), max(s.alphas.max(), 0.05), 200)
        plots.logit_gap_theory(
            ax1, grid, np.array([metrics.optimal_logit_gap(a, k) for a in grid]), k
        )
        finite = s.mean[np.isfinite(s.mean)]
        top = max(float(finite.max()) if len(finite) else 1.0, 1.0) * 1.3
        ax1.set_ylim(0, top)
    plots.legend_below(ax1, ncol=1)
    ax1.set_title("(a) test split, after the last epoch", fontsize=10)
    if curves:
        plots.curves_by_alpha(ax2, curves, ylabel="mean logit gap")
        ax2.set_title("(b) validation split, after each epoch", fontsize=10)
    else:
        ax2.set_axis_off()
    curves_words = "the same seed" if (s.n <= 1).all() else "mean over seeds"
    fig.suptitle(
        f"Mean logit gap (top logit − mean of the others), K = {k} classes. {_title(report)}"
        f"\n(a): {_subtitle(report, s)}; (b): {curves_words}",
        fontsize=9,
    )
    return fig


def train_gaps(report: Report) -> list[tuple[float, np.ndarray]] | None:
    """(α, the true-class gaps of every seed's training subset pooled) per α, or None when
    some run did not record them (runs written before lsexp saved them)."""
    out = []
    for g in _done_groups(report):
        gaps = [lg.train_gap for lg in g.logits]
        if not gaps or any(x is None for x in gaps):
            return None
        out.append((g.alpha, np.concatenate([np.asarray(x, np.float64) for x in gaps])))
    return out or None


def figure_train_gap(report: Report):
    """The true-class gap z_y − mean_{i≠y} z_i on training examples after the last epoch,
    as a distribution per α (box: quartiles; whiskers: 5th and 95th percentiles), against
    the gap that minimises the smoothed loss of one example, log(K(1−α)/α + 1). The
    quantity claim 5 (the cap) is about."""
    import matplotlib.pyplot as plt

    data = train_gaps(report)
    if data is None:
        return None
    k = num_classes(report)
    alphas = np.array([a for a, _ in data])
    width = 0.6 * float(np.min(np.diff(alphas))) if len(alphas) > 1 else 0.05
    fig, ax = plt.subplots(figsize=(6, 4.3), layout="constrained")
    box = {"facecolor": "C0", "alpha": 0.35}
    ax.boxplot([x for _, x in data], positions=alphas, widths=width, whis=(5, 95),
               showfliers=False, manage_ticks=False, patch_artist=True, boxprops=box,
               medianprops={"color": "C0"})  # fmt: skip
    pos = alphas[alphas > 0]
    if len(pos):
        caps = [metrics.optimal_logit_gap(a, k) for a in pos]
        ax.plot(pos, caps, ls="none", marker="_", ms=18, mew=2.5, color="C3",
                label="cap log(K(1−α)/α + 1)")  # fmt: skip
        ax.legend(loc="upper right", fontsize=plots.SMALL, frameon=False)
    ax.set_xlabel("label smoothing α")
    ax.set_ylabel("true-class logit gap on training data")
    ax.set_ylim(bottom=min(0.0, float(min(np.percentile(x, 5) for _, x in data))))
    plots.alpha_ticks(ax, alphas)
    ax.grid(alpha=0.3)
    n = [len(g.runs) for g in _done_groups(report)]
    seeds = f"{n[0]} seeds pooled" if len(set(n)) == 1 else "seeds pooled"
    ax.set_title(f"{_title(report)}\ntrue-class gap z_y − mean of the others, training "
                 f"subset after the last epoch; {seeds};\nbox: quartiles, whiskers: 5th–95th "
                 "percentile", fontsize=9)  # fmt: skip
    return fig


# ---------------------------------------------------------------------------------------
# Post-hoc calibrators and selective classification
# ---------------------------------------------------------------------------------------

SERIES_STYLES = (
    {"color": "C3", "marker": "o", "ls": "-"},
    {"color": "C0", "marker": "s", "ls": "--", "mfc": "white", "mew": 1.5},
    {"color": "C2", "marker": "^", "ls": "-."},
    {"color": "C1", "marker": "D", "ls": ":", "mfc": "white", "mew": 1.5},
    {"color": "C4", "marker": "v", "ls": "-"},
    {"color": "C5", "marker": "P", "ls": "--"},
    {"color": "C6", "marker": "X", "ls": "-."},
)
"""Styles of the series of one axis (calibrators, scores): colour, marker and line style
differ, so that they read in greyscale."""

POSTHOC_PANELS = (
    ("accuracy", "test accuracy (%)", 100),
    ("nll", "test NLL", 1),
    ("ece", "test ECE (%, {n_bins} bins, log scale)", 100),
    ("brier", "test Brier score", 1),
)


def _dodges(n: int, step: float = 3.0) -> list[float]:
    """Sideways offsets (points) for n series on one axis, centred on the true α."""
    return [step * (i - (n - 1) / 2) for i in range(n)]


def _draw_metrics(ax, report: Report, series: list[tuple[str, str]], scale: float,
                  ylabel: str, step: float) -> str:  # fmt: skip
    """One metric-vs-α series per (runs.csv key, legend label), each in its own
    SERIES_STYLES entry and shifted `step` points from the next; returns what the error
    bars are, in words."""
    dodge = _dodges(len(series), step)
    bars = ""
    for i, (key, label) in enumerate(series):
        s = metric_series(report, key, scale)
        bars = bars or s.bars
        plots.metric_vs_alpha(ax, s.alphas, s.mean, s.low, s.high, ylabel=ylabel, label=label,
                              style=SERIES_STYLES[i % len(SERIES_STYLES)],
                              dodge_pt=dodge[i])  # fmt: skip
    return bars


def _seeds_and_bars(report: Report, bars: str) -> tuple[str, str]:
    """('mean over n = 3 seeds per α', 'error bars: ...') for a figure's title."""
    n = np.array([len(g.runs) for g in _done_groups(report)])
    seeds = _seeds_words(report, n) or "mean over seeds"
    return seeds, f"error bars: {bars}" if bars else "no error bars"


def figure_calibrators(report: Report):
    """Accuracy, NLL, ECE and Brier against α, one series per post-hoc calibrator ('none':
    the model as trained), each with the report's interval over seeds."""
    import matplotlib.pyplot as plt

    from lsexp.analysis.posthoc import CALIBRATORS
    from lsexp.reporting.runs import posthoc_key

    names = ["none", *report.calibrators]
    labels = {"none": "none (as trained)"} | {c: f"{c}: {CALIBRATORS[c].label}"
                                             for c in report.calibrators}  # fmt: skip
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.4), layout="constrained")
    n_bins = report.config.eval.n_bins
    bars = ""
    for ax, (key, ylabel, scale) in zip(axes.flat, POSTHOC_PANELS, strict=True):
        series = [(key if c == "none" else posthoc_key(c, key), labels[c]) for c in names]
        bars = _draw_metrics(ax, report, series, scale, ylabel.format(n_bins=n_bins),
                             3.0 if len(names) > 3 else 4.0)  # fmt: skip
    # ECE spans two orders of magnitude (a smoothed model as trained vs calibrated): log y.
    ece = [metric_series(report, "ece" if c == "none" else posthoc_key(c, "ece"), 100)
           for c in names]  # fmt: skip
    cut = plots.log_y(axes.flat[2], _lowest(v for s in ece for v in s.mean))
    handles, texts = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, texts, loc="outside lower center", ncol=3, fontsize=plots.SMALL,
               frameon=False, handlelength=3)  # fmt: skip
    seeds, bars_words = _seeds_and_bars(report, bars)
    fig.suptitle(f"Post-hoc calibrators, fitted on each run's validation split, applied to "
                 f"its test split. {_title(report)}\n{seeds}; {bars_words}"
                 f"{LOG_CUT_WORDS if cut else ''}; series drawn a few points apart sideways",
                 fontsize=9)  # fmt: skip
    return fig


# ---------------------------------------------------------------------------------------
# Method comparison: every objective over its own strengths
# ---------------------------------------------------------------------------------------

METHOD_PANELS = (
    ("accuracy", "test accuracy (%)", 100),
    ("nll", "test NLL", 1),
    ("brier", "test Brier score", 1),
    ("ece", "test ECE (%, {n_bins} bins, log scale)", 100),
    None,  # the legend's slot: accuracy does not change under temperature scaling
    ("nll_ts", "NLL after TS", 1),
    ("brier_ts", "Brier after TS", 1),
    ("ece_ts", "ECE after TS (%, log scale)", 100),
)


BASELINE_STYLE = {"color": "black", "marker": "o", "ls": ":"}
BASELINE_LABEL = (
    "cross-entropy: the shared baseline (step CE; dotted line), where every curve starts"
)


@dataclass
class MethodCurve:
    """One objective's settings in strength order; `from_baseline`: it starts at the
    shared cross-entropy point (x = 0); distillation students start at x = 1 instead."""

    objective: str
    label: str
    groups: list[AlphaGroup]
    from_baseline: bool


def method_curves(report: Report) -> list[MethodCurve]:
    """Per objective of the sweep (label smoothing first): its finished settings, each
    curve starting from the shared baseline (plain cross-entropy) where it was trained."""
    from lsexp.training.objectives import OBJECTIVES

    done = [g for g in report.arms if g.runs]
    base = next((g for g in done if g.is_baseline), None)
    curves = []
    for name, o in OBJECTIVES.items():
        own = [g for g in done if g.objective == name and not g.is_baseline]
        if not own:
            continue
        if name == "distillation":
            teachers = ", ".join(setting_label(*g.teacher) for g in own if g.teacher)
            label = f"distillation ({student_words(report)}), teachers: {teachers}"
            curves.append(MethodCurve(name, label, own, False))
            continue
        values = ", ".join(f"{g.alpha:g}" for g in own)
        label = o.label if o.low == o.high else f"{o.label}, {o.symbol} = {values}"
        start = [base] if base is not None else []
        curves.append(MethodCurve(name, label, start + own, base is not None))
    return curves


def student_words(report: Report) -> str:
    from lsexp.config import student_model

    m = student_model(report.config)
    size = f" {list(m.hidden)}" if m.hidden else f" width {m.width}" if m.width else ""
    return f"student {m.name}{size}"


def figure_methods(report: Report):
    """Accuracy, NLL, Brier and ECE, as trained (top) and after temperature scaling
    (bottom), for every objective over its own strength steps, each curve starting from
    the shared cross-entropy baseline (x = 0), with the report's interval over seeds."""
    import matplotlib.pyplot as plt

    curves = method_curves(report)
    if not curves:
        return None
    fig, axes = plt.subplots(2, 4, figsize=(13.5, 7.2), layout="constrained")
    n_bins = report.config.eval.n_bins
    dodge = _dodges(len(curves), 2.5)
    steps = 1 + max(sum(not g.is_baseline for g in c.groups) for c in curves)
    base = next((g for g in report.arms if g.is_baseline and g.runs), None)
    bars = ""
    cut = False
    for ax, panel in zip(axes.flat, METHOD_PANELS, strict=True):
        if panel is None:
            continue
        key, ylabel, scale = panel
        ylabel = ylabel.format(n_bins=n_bins)
        base_mean = math.nan
        means: list[float] = []
        if base is not None and math.isfinite(base.stat(key).mean):
            st = base.stat(key)
            base_mean = st.mean * scale
            means.append(base_mean)
            ax.axhline(base_mean, color="0.5", lw=1, ls=":", zorder=0)
            plots.metric_vs_alpha(ax, np.zeros(1), np.array([base_mean]),
                                  np.array([st.ci_low * scale]), np.array([st.ci_high * scale]),
                                  ylabel=ylabel, label=BASELINE_LABEL,
                                  style=BASELINE_STYLE)  # fmt: skip
        for i, c in enumerate(curves):
            own = [g for g in c.groups if not g.is_baseline]
            stats = [g.stat(key) for g in own]
            xs = np.arange(1, len(own) + 1, dtype=float)
            mean = np.array([st.mean for st in stats]) * scale
            low = np.array([st.ci_low for st in stats]) * scale
            high = np.array([st.ci_high for st in stats]) * scale
            means.extend(mean.tolist())
            style = SERIES_STYLES[i % len(SERIES_STYLES)]
            plots.metric_vs_alpha(ax, xs, mean, low, high, ylabel=ylabel, label=c.label,
                                  style=style, dodge_pt=dodge[i])  # fmt: skip
            if c.from_baseline and math.isfinite(base_mean):  # the curve starts at the baseline
                plots.connector(ax, (0.0, base_mean), (xs[0], mean[0]), style, dodge[i])
        bars = bars or f"{report.interval_label} over seeds"
        ticks = np.arange(steps, dtype=float)
        plots.alpha_ticks(ax, ticks)
        ax.set_xticklabels(["CE"] + [str(k) for k in range(1, steps)])
        ax.set_xlabel("strength step (values in the legend)")
        if key.startswith("ece"):
            cut |= plots.log_y(ax, _lowest(means))
    legend_ax = axes[1, 0]
    legend_ax.axis("off")
    handles, texts = axes[0, 0].get_legend_handles_labels()
    legend_ax.legend(handles, [_wrap(t, 34) for t in texts], loc="center", fontsize=plots.SMALL,
                     frameon=False, handlelength=3)  # fmt: skip
    n = np.array([len(g.runs) for g in report.arms if g.runs])
    seeds = (f"mean over n = {n[0]} seeds per setting" if len(set(n.tolist())) == 1
             else f"mean over {n.min()}–{n.max()} seeds per setting")  # fmt: skip
    fig.suptitle(f"Label smoothing and its alternatives, as trained (top) and after "
                 f"temperature scaling (bottom). {_title(report)}\n{seeds}; error bars: "
                 f"{bars}{LOG_CUT_WORDS if cut else ''}; series drawn a few points apart "
                 "sideways", fontsize=9)  # fmt: skip
    return fig


LOG_CUT_WORDS = (f" (log axes end {plots.LOG_FLOOR_FACTOR:g}x below the smallest mean; "
                 "longer bars are cut)")  # fmt: skip


def _lowest(values) -> float | None:
    """The smallest positive finite value, for `plots.log_y`; None if there is none."""
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return float(v.min()) if v.size else None


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def method_best(report: Report) -> list[AlphaGroup]:
    """The baseline and, per objective, its setting of best mean validation accuracy (ties:
    the weaker strength), for the reliability diagrams of the comparison."""
    done = [g for g in report.arms if g.runs]
    out = [g for g in done if g.is_baseline]
    for name in dict.fromkeys(g.objective for g in done):
        own = [g for g in done if g.objective == name and not g.is_baseline]
        if own:
            out.append(max(own, key=lambda g: (_val_accuracy(g), -g.alpha)))
    return out


def _val_accuracy(g: AlphaGroup) -> float:
    v = g.stat("val_accuracy").mean
    return v if math.isfinite(v) else -math.inf


RC_SCORES = ("msp", "pnorm")  # the risk-coverage panels: the claim's score and its fix
RC_MIN_COVERAGE = 0.02  # the y-axis is fitted to coverages from here on (see the figure)


def risk_coverage_curves(report: Report, score: str) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Per α: (coverage, selective risk) of `score`, the mean over seeds of each run's
    curve (all runs share one test split, so their coverages are the same)."""
    out = {}
    for g in _done_groups(report):
        curves = [lg.risk_coverage(score) for lg in g.logits]
        if len({c.n for c in curves}) != 1:
            continue
        out[g.alpha] = (curves[0].coverage, np.mean([c.risk for c in curves], axis=0))
    return out


def figure_risk_coverage(report: Report):
    """(a, b) risk-coverage curves per α with the max softmax and the p-norm score; (c)
    AURC against α for every score, with the report's interval over seeds."""
    import matplotlib.pyplot as plt

    from lsexp.analysis.selective import SCORES

    fig, axes = plt.subplots(1, 3, figsize=(11.4, 4.4), layout="constrained")
    top = 0.0
    for ax, score, tag in zip(axes[:2], RC_SCORES, "ab", strict=True):
        curves = risk_coverage_curves(report, score)
        styles = plots.alpha_styles(list(curves))
        for a in sorted(curves):
            x, y = curves[a]
            ax.plot(x, 100 * y, label=f"α = {a:g}", lw=1.4, ms=5,
                    markevery=max(1, len(x) // 8), **styles[a])  # fmt: skip
            keep = x >= RC_MIN_COVERAGE
            if keep.any():
                top = max(top, float(100 * y[keep].max()))
        ax.set_xlabel("coverage (share accepted)")
        ax.set_ylabel("selective risk (%)")
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        ax.set_title(f"({tag}) {SCORES[score].label}", fontsize=10)
    for ax in axes[:2]:
        ax.set_ylim(0, top * 1.05 if top > 0 else 1)
    handles, texts = axes[0].get_legend_handles_labels()
    fig.legend(handles, texts, loc="outside lower center", ncol=min(len(texts), 7),
               fontsize=plots.SMALL, frameon=False, handlelength=3)  # fmt: skip
    series = [(f"sel_{score}_aurc", SCORES[score].label) for score in SCORES]
    bars = _draw_metrics(axes[2], report, series, 100, "test AURC (%)", 4.0)
    plots.legend_below(axes[2], ncol=1)
    axes[2].set_title("(c) AURC of each score (lower is better)", fontsize=10)
    seeds, bars_words = _seeds_and_bars(report, bars)
    fig.suptitle(f"Selective classification, test split. {_title(report)}\n(a, b): risk after "
                 f"accepting the most confident share of examples, {seeds};\ny-axis fitted to "
                 f"coverage ≥ {RC_MIN_COVERAGE:.0%} (below it a handful of examples set the "
                 f"risk). (c): {bars_words}", fontsize=9)  # fmt: skip
    return fig


def figure_plan(report: Report) -> list[tuple[str, Callable[[], Any], str]]:
    """Every figure of the report as (file stem, a function that draws it, the note to give
    if it returns None), in the order of the report; nothing is drawn yet, so the figures
    can be drawn in any process (`report._render_figures`)."""
    if not _done_groups(report):
        return []
    n_bins = report.config.eval.n_bins
    plan: list[tuple[str, Callable[[], Any], str]] = []
    if report.alternatives:
        plan += [
            ("methods", lambda: figure_methods(report), ""),
            ("reliability_methods", lambda: figure_reliability(report, method_best(report))
             if method_curves(report) else None, ""),
        ]  # fmt: skip
    plan += [
        ("accuracy_vs_alpha", lambda: figure_metric(report, "accuracy", "test accuracy (%)", 100),
         ""),
        ("ece_vs_alpha", lambda: figure_metric(report, "ece", f"test ECE (%, {n_bins} bins)", 100),
         ""),
        ("ece_ts_vs_alpha", lambda: figure_ece_ts(report), ""),
        ("reliability", lambda: figure_reliability(report), ""),
        ("logit_gap", lambda: figure_logit_gap(report), ""),
        ("calibrators", lambda: figure_calibrators(report), ""),
        ("risk_coverage", lambda: figure_risk_coverage(report), ""),
        ("train_gap", lambda: figure_train_gap(report),
         "no train_gap figure: some runs did not record the training-data logit gap "
         "(runs written before lsexp saved it)"),
        ("projection", lambda: figure_projection(report),
         "no projection figure: needs alpha = 0 and a smoothed alpha with a common seed "
         "and saved penultimate activations"),
    ]  # fmt: skip
    return plan


def build_figures(report: Report) -> tuple[list[tuple[str, Any]], list[str]]:
    """Every figure of the report as (file stem, open Figure), and notes on figures left
    out. The caller saves (`save_figure`) or closes them."""
    if not _done_groups(report):
        return [], ["no finished runs: no figures written"]
    figs, notes = [], []
    for stem, draw, note in figure_plan(report):
        fig = draw()
        if fig is not None:
            figs.append((stem, fig))
        elif note:
            notes.append(note)
    return figs, notes


def figure_captions(report: Report) -> dict[str, tuple[str, str]]:
    """(title, caption) per figure stem, for index.html; n and the error bars as drawn."""
    groups = _done_groups(report)
    if not groups:
        return {}
    n = np.array([len(g.runs) for g in groups])
    seeds = _seeds_words(report, n) or "mean over seeds (n per α on the figure's top axis)"
    acc, ece = metric_series(report, "accuracy", 100), metric_series(report, "ece", 100)

    def bars(s: Series) -> str:
        return f"error bars: {s.bars}" if s.bars else "no error bars"

    n_bins = report.config.eval.n_bins
    n_test = _n_test(report)
    captions = {
        "accuracy_vs_alpha": ("Accuracy vs α", f"Test accuracy, {seeds}; {bars(acc)}. The "
                              f"y-axis spans at least the 95% Wilson interval of the {n_test:,} "
                              f"test images, so that a few images do not look like a cliff."),
        "ece_vs_alpha": ("ECE vs α", f"Test ECE ({n_bins} equal-width bins), {seeds}; "
                         f"{bars(ece)}. Grey band: the noise floor, the expected ECE of a "
                         "perfectly calibrated model with the same confidences (200 label "
                         "draws); differences inside it are not resolvable."),
        "ece_ts_vs_alpha": ("Label smoothing vs temperature scaling", f"Test ECE before (red "
                            "circles, solid) and after (blue open squares, dashed) temperature "
                            f"scaling, T fitted on the validation split; {seeds}. The two "
                            "series are drawn a few points apart sideways so neither hides "
                            "the other. Grey band: the noise floor after temperature scaling "
                            "(the expected ECE of a perfectly calibrated model with those "
                            "confidences)."),
        "reliability": ("Reliability diagrams", "Per α, the test predictions of all its "
                        "seeds pooled: per-bin accuracy (grey bars), the gap to the diagonal "
                        "(red, hatched /: over-confident; blue, hatched \\: under-confident), "
                        f"faded bars for bins with fewer than {plots.SPARSE_BIN} examples "
                        "(count above the panel), and below, the confidence histogram with "
                        "mean accuracy (solid) and mean confidence (dashed). The ECE above a "
                        "panel is that of the pooled predictions, the bars drawn; the tables "
                        "give the mean of the per-seed ECEs."),
        "logit_gap": ("Logit gap", f"(a) Mean gap between the top logit and the others on "
                      f"the test split after training, {seeds}, against the loss-minimising "
                      f"gap log(K(1−α)/α + 1) with K = {num_classes(report)} classes "
                      "(Müller et al. 2019). (b) The same gap on the validation split after "
                      "each epoch, mean over seeds: training evaluates the validation split "
                      "only, so the test split stays unseen until the end."),
        "train_gap": ("Logit gap on training data", "The true-class gap z_y − mean of the "
                      "other logits on a fixed subset of training examples after the last "
                      "epoch, seeds pooled, per α (box: quartiles; whiskers: 5th–95th "
                      "percentile), against the cap log(K(1−α)/α + 1) that minimises the "
                      "smoothed loss (red): the quantity of claim 5."),
        "calibrators": ("Post-hoc calibrators", f"Test accuracy, NLL, ECE ({n_bins} bins) and "
                        "Brier score against α for the model as trained (none) and after each "
                        f"post-hoc calibrator, fitted on the run's validation split; {seeds}; "
                        f"{bars(acc)}. The series are drawn a few points apart sideways. "
                        "Histogram binning and isotonic regression give some test examples a "
                        "zero probability for their class, which dominates their NLL. On the log "
                        "ECE axis a bar that runs off the bottom is an interval reaching 0."),
        "risk_coverage": ("Selective classification", "(a, b) Risk–coverage curves: the error "
                          "rate among the accepted examples when the most confident share is "
                          "accepted, by max softmax probability (a) and by the p-norm-"
                          f"normalised logits (b), {seeds}. (c) The area under each curve "
                          f"(AURC) against α for the three scores; {bars(acc)}. Claim 11 "
                          "tests (a)'s AURC against α = 0."),
        "projection": ("Penultimate layer", "Activations of three classes projected onto the "
                       "plane through their last-layer templates (Müller et al. 2019, Fig. 1): "
                       "α = 0, α = 0.1 when swept, and the largest α, one seed, all panels on "
                       "the same scale so that cluster sizes compare."),
    }  # fmt: skip
    if not report.alternatives:
        return captions
    # Everything above is about label smoothing's α; the comparison comes first.
    captions = {stem: (f"Label smoothing: {title[0].lower()}{title[1:]}", text)
                for stem, (title, text) in captions.items()}  # fmt: skip
    best = ", ".join(g.label for g in method_best(report) if not g.is_baseline)
    return {
        "methods": ("Method comparison", "Test accuracy, NLL, Brier score and ECE "
                    f"({n_bins} equal-width bins) of every objective, as trained (top) and after "
                    "temperature scaling (bottom; T fitted on each run's validation split), "
                    "mean over seeds with the report's interval. Each objective is a curve over "
                    "its own strengths in increasing order (values in the legend), starting from "
                    "the shared cross-entropy baseline (step CE; dotted line); distillation "
                    "students, whose model may differ, start at step 1, one step per teacher. "
                    "Series are drawn a few points apart sideways."),
        "reliability_methods": ("Reliability by objective", "As the label-smoothing "
                                "reliability diagrams, for cross-entropy and for each objective "
                                "at its strength of best mean validation accuracy (chosen on "
                                f"validation, never on test): {best}."),
        **captions,
    }  # fmt: skip
