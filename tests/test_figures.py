"""The report's figures as a paper's reviewer reads them, checked on the matplotlib objects.

Each figure is built from a synthetic report (tests/figreport.py: 7 α × 3 seeds like the
quickstart, one seed, or a seed count that differs between α) and checked with
tests/figcheck.py: no text on the data, nothing hidden, one scale where panels compare.
"""

from __future__ import annotations

import re
import shutil
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from lsexp.analysis import metrics
from lsexp.analysis.stats import wilson_interval  # noqa: E402
from lsexp.reporting import plots  # noqa: E402
from lsexp.reporting import report as rp  # noqa: E402
from lsexp.reporting.html_report import (  # noqa: E402
    CSS_PX_PER_INCH,
    PAGE_MAX_WIDTH_PX,
    PAGE_PADDING_PX,
    png_size,
)
from tests.figcheck import collisions, text_items  # noqa: E402
from tests.figreport import synthetic_report  # noqa: E402

STEMS = ["accuracy_vs_alpha", "ece_vs_alpha", "ece_ts_vs_alpha", "reliability", "logit_gap",
         "train_gap", "projection", "calibrators", "risk_coverage"]  # fmt: skip
# One seed: accuracies 3 test images apart (0.15 pp of 2,000), the case of a "cliff".
ONE_SEED_ACC = {0.0: 0.85, 0.05: 0.8515, 0.1: 0.8505, 0.2: 0.85, 0.3: 0.849, 0.4: 0.8515,
                0.5: 0.8485}  # fmt: skip


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("figs")
    return {
        "3 seeds": synthetic_report(tmp / "a"),
        "1 seed": synthetic_report(tmp / "b", seeds=(0,), accuracy=ONE_SEED_ACC),
        "n varies": synthetic_report(tmp / "c", missing={0.3: 2, 0.5: 1}),
        "4 alphas": synthetic_report(tmp / "d", alphas=(0.0, 0.1, 0.2, 0.3), seeds=(0, 1)),
    }


@pytest.fixture(scope="module")
def figures(reports):
    """(report kind, stem) -> open Figure; closed at the end of the module."""
    built = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.filterwarnings("ignore", "More than 20 figures", RuntimeWarning)
        for kind, rep in reports.items():
            figs, notes = rp.build_figures(rep)
            assert notes == []
            for stem, fig in figs:
                built[kind, stem] = fig
    yield built
    for fig in built.values():
        plt.close(fig)


def _texts(fig) -> list[str]:
    return [a.get_text() for _, a in text_items(fig) if hasattr(a, "get_text")]


# ---------------------------------------------------------------------------------------
# Every figure
# ---------------------------------------------------------------------------------------


def test_every_figure_is_built(figures, reports):
    for kind in reports:
        assert sorted(stem for k, stem in figures if k == kind) == sorted(STEMS)


@pytest.mark.parametrize("kind", ["3 seeds", "1 seed", "n varies", "4 alphas"])
@pytest.mark.parametrize("stem", STEMS)
def test_no_text_covers_data_or_other_text(figures, kind, stem):
    assert collisions(figures[kind, stem]) == []


def test_overlap_check_sees_text_on_data():
    # The check itself: a label on a line, a legend over bars, two titles on each other.
    fig, (ax1, ax2) = plt.subplots(1, 2)
    ax1.plot([0, 1], [0, 1])
    ax1.text(0.5, 0.5, "n=3")
    ax2.bar([0, 1], [1, 1], label="bars")
    ax2.legend(loc="center")
    found = collisions(fig)
    assert any("'n=3' covers" in f for f in found)
    assert any("legend covers a bar" in f for f in found)
    fig.suptitle("x" * 30, y=0.5)
    assert any("suptitle overlaps" in f for f in collisions(fig))
    plt.close(fig)


def test_saved_as_vector_pdf_and_300_dpi_png(reports, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        figs, _ = rp.build_figures(reports["4 alphas"])
    for stem, fig in figs:
        paths = rp.save_figure(fig, tmp_path, stem)
        assert [p.name for p in paths] == [f"{stem}.pdf", f"{stem}.png"]
        assert not plt.fignum_exists(fig.number)  # closed
    for stem in STEMS:
        pdf = (tmp_path / f"{stem}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF")
        assert b"/Subtype /Image" not in pdf  # vector: no raster image inside
        assert b"/FontType 3" not in pdf and b"/Subtype /Type3" not in pdf  # TrueType fonts
        assert b"CreationDate" not in pdf  # same numbers, same bytes
        width, height, dpi = png_size((tmp_path / f"{stem}.png").read_bytes())
        assert dpi == pytest.approx(300, abs=0.5)
        # Shown at print size in index.html, without shrinking: no wider than its column.
        content_px = PAGE_MAX_WIDTH_PX - 2 * PAGE_PADDING_PX
        assert width / dpi * CSS_PX_PER_INCH <= content_px, stem


@pytest.mark.parametrize("stem", STEMS)
def test_text_is_legible_at_print_size(figures, stem):
    # At least 8 pt, the floor of most journals' figure guidelines (e.g. Nature, IEEE).
    sizes = [a.get_fontsize() for _, a in text_items(figures["3 seeds", stem])
             if hasattr(a, "get_fontsize")]  # fmt: skip
    for leg in _legends(figures["3 seeds", stem]):
        sizes += [t.get_fontsize() for t in leg.get_texts()]
    assert min(sizes) >= plots.SMALL


def _legends(fig):
    return [*fig.legends] + [ax.get_legend() for ax in fig.axes if ax.get_legend()]


# ---------------------------------------------------------------------------------------
# n: once in the title when the same everywhere, on a top axis when not
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", ["accuracy_vs_alpha", "ece_vs_alpha", "ece_ts_vs_alpha",
                                  "logit_gap"])  # fmt: skip
def test_n_once_in_the_title_when_the_same_everywhere(figures, stem):
    fig = figures["3 seeds", stem]
    texts = _texts(fig)
    assert not any(re.fullmatch(r"n\s*=\s*\d+", t) for t in texts)  # no per-point labels
    assert any("n = 3 seeds" in t for t in texts)
    assert all(not ax.child_axes for ax in fig.axes)  # no seeds axis


@pytest.mark.parametrize("stem", ["accuracy_vs_alpha", "ece_vs_alpha", "ece_ts_vs_alpha",
                                  "logit_gap"])  # fmt: skip
def test_n_on_a_top_axis_when_it_varies(figures, reports, stem):
    fig = figures["n varies", stem]
    (top,) = [c for ax in fig.axes for c in ax.child_axes]
    expected = [str(len(g.runs)) for g in reports["n varies"].groups]
    assert [t.get_text() for t in top.get_xticklabels()] == expected == [
        "3", "3", "3", "3", "1", "3", "2"]  # fmt: skip
    assert top.get_xlabel() == "seeds (n)"


# ---------------------------------------------------------------------------------------
# One seed: no interval over seeds, no zoomed-in cliff
# ---------------------------------------------------------------------------------------


def test_one_seed_accuracy_shows_the_test_set_interval_not_a_cliff(figures, reports):
    scipy_stats = pytest.importorskip("scipy.stats")
    fig = figures["1 seed", "accuracy_vs_alpha"]
    ax = fig.axes[0]
    title = ax.get_title()
    assert "t-interval" not in title and "one seed (seed 0)" in title
    assert "Wilson interval over the 2,000 test images" in title
    # The error bars are the Wilson interval of each run (scipy as the reference).
    (container,) = ax.containers
    (bars,) = [c for c in container.lines[2] if isinstance(c, LineCollection)]
    ends = sorted((seg[0][1], seg[1][1]) for seg in bars.get_segments())
    expected = sorted(
        tuple(100 * np.array(scipy_stats.binomtest(round(a * 2000), 2000)
                             .proportion_ci(0.95, method="wilson")))
        for a in ONE_SEED_ACC.values()
    )  # fmt: skip
    np.testing.assert_allclose(ends, expected, atol=1e-4)
    # 3 images (0.15 pp) between the extremes fill well under a tenth of the axis.
    lo, hi = ax.get_ylim()
    spread = 100 * (max(ONE_SEED_ACC.values()) - min(ONE_SEED_ACC.values()))
    assert spread / (hi - lo) < 0.1


def test_one_seed_ece_bars_are_the_runs_bootstrap_interval(figures, reports):
    ax = figures["1 seed", "ece_vs_alpha"].axes[0]
    assert "t-interval" not in ax.get_title()
    assert "bootstrap interval over test images" in ax.get_title()
    (container,) = ax.containers
    (bars,) = container.lines[2]
    ends = sorted((seg[0][1], seg[1][1]) for seg in bars.get_segments())
    runs = [g.runs[0] for g in reports["1 seed"].groups]
    expected = sorted((100 * r["ece_boot_low"], 100 * r["ece_boot_high"]) for r in runs)
    np.testing.assert_allclose(ends, expected, atol=1e-9)


def test_multi_seed_accuracy_axis_spans_the_test_set_resolution(figures, reports):
    ax = figures["3 seeds", "accuracy_vs_alpha"].axes[0]
    assert "95% t-interval over seeds" in ax.get_title()
    lo, hi = ax.get_ylim()
    for g in reports["3 seeds"].groups:
        m = g.stat("accuracy").mean
        w_lo, w_hi = wilson_interval(round(m * 2000), 2000)
        assert lo <= 100 * w_lo and 100 * w_hi <= hi


# ---------------------------------------------------------------------------------------
# ECE before and after temperature scaling
# ---------------------------------------------------------------------------------------


def test_ece_ts_series_differ_in_every_channel_and_do_not_hide_each_other(figures):
    fig = figures["3 seeds", "ece_ts_vs_alpha"]
    ax = fig.axes[0]
    before, after = ax.containers
    lb, la = before.lines[0], after.lines[0]
    assert lb.get_marker() != la.get_marker()
    assert lb.get_linestyle() != la.get_linestyle()
    assert to_rgba(lb.get_markerfacecolor()) != to_rgba(la.get_markerfacecolor())
    assert lb.get_color() != la.get_color()
    # At every α the two markers sit apart on the page by more than a marker's width.
    xb = lb.get_transform().transform(lb.get_xydata())[:, 0]
    xa = la.get_transform().transform(la.get_xydata())[:, 0]
    marker_px = lb.get_markersize() * fig.dpi / 72
    assert (np.abs(xa - xb) >= marker_px).all()
    # ... and they still stand on their α: the shift is on the page, not in the data.
    np.testing.assert_array_equal(lb.get_xdata(), la.get_xdata())


# ---------------------------------------------------------------------------------------
# Reliability diagrams
# ---------------------------------------------------------------------------------------


def _reliability_axes(fig):
    return [ax for ax in fig.axes if ax.get_ylim() == (0.0, 1.0) and ax.patches
            and ax.get_title()]  # fmt: skip


def test_reliability_legend_swatches_match_the_drawn_bars(figures):
    fig = figures["3 seeds", "reliability"]
    (legend,) = _legends(fig)
    handles = dict(zip([t.get_text() for t in legend.get_texts()], legend.legend_handles,
                       strict=True))  # fmt: skip
    drawn = [p for ax in _reliability_axes(fig) for p in ax.patches if isinstance(p, Rectangle)]
    for label in ("accuracy in the bin", "gap: over-confident", "gap: under-confident"):
        swatch = handles[label]
        assert isinstance(swatch, Patch)
        same = [p for p in drawn if p.get_hatch() == swatch.get_hatch()
                and p.get_fill() and p.get_height() != 0
                and to_rgba(p.get_edgecolor()) == to_rgba(swatch.get_edgecolor())]  # fmt: skip
        assert same, label
        for p in same:  # opaque, so the colour seen is the colour of the swatch
            assert to_rgba(p.get_facecolor()) == to_rgba(swatch.get_facecolor())
            assert to_rgba(p.get_facecolor())[3] == 1.0


def test_reliability_has_no_empty_slot_or_band(figures):
    fig = figures["3 seeds", "reliability"]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    # 7 α: 2 rows of 4 panels, the eighth slot holds the legend.
    (legend,) = _legends(fig)
    holder = [ax for ax in fig.axes if ax.get_legend() is legend]
    assert holder and not holder[0].axison
    assert len(_reliability_axes(fig)) == 7
    # Rows follow each other without a blank band: at most 0.4 in between a row's
    # bottom (histogram tick labels) and the next row's top (its titles).
    rows = {}
    for ax in fig.axes:
        if ax.axison:
            y = round(ax.get_position().y1, 2)
            rows.setdefault(y, []).append(ax.get_tightbbox(r))
    tops = sorted(rows, reverse=True)
    boxes = [(min(b.y0 for b in rows[t]), max(b.y1 for b in rows[t])) for t in tops]
    gaps = [boxes[i][0] - boxes[i + 1][1] for i in range(len(boxes) - 1)]
    assert max(gaps) <= 0.4 * fig.dpi


def test_reliability_grid_fills_its_rows():
    assert [rp.reliability_grid(n) for n in (1, 3, 4, 5, 6, 7, 8, 9, 10)] == [
        (1, 1), (1, 3), (1, 4), (2, 3), (2, 3), (2, 4), (2, 4), (3, 3), (3, 4)]  # fmt: skip


def test_reliability_ece_is_that_of_the_pooled_bars(figures, reports):
    rep = reports["3 seeds"]
    titles = [ax.get_title() for ax in _reliability_axes(figures["3 seeds", "reliability"])]
    for g, title in zip(rep.groups, titles, strict=True):
        probs = metrics.softmax(np.concatenate(g.pooled_logits))
        labels = np.concatenate(g.pooled_labels)
        pooled = metrics.ece(probs, labels, n_bins=15)
        assert f"ECE {100 * pooled:.2f} %" in title
        assert f"{100 * g.stat('ece').mean:.2f}" != f"{100 * pooled:.2f}"  # they do differ
    assert "pooled" in figures["3 seeds", "reliability"]._suptitle.get_text()


# ---------------------------------------------------------------------------------------
# Logit gap
# ---------------------------------------------------------------------------------------


def test_logit_gap_defines_k_names_the_splits_and_tells_alphas_apart(figures):
    fig = figures["3 seeds", "logit_gap"]
    ax1, ax2 = fig.axes[:2]
    assert any("K = 10 classes" in t.get_text() for t in ax1.get_legend().get_texts())
    assert "test split" in ax1.get_title() and "validation split" in ax2.get_title()
    lines = [ln for ln in ax2.lines if ln.get_label().startswith("α")]
    assert len(lines) == 7
    styles = {(ln.get_marker(), ln.get_linestyle()) for ln in lines}
    assert len(styles) == 7  # each α its own marker and dash pattern, not colour alone


# ---------------------------------------------------------------------------------------
# Projection
# ---------------------------------------------------------------------------------------


def test_projection_one_scale_labelled_axes_and_the_largest_alpha(figures):
    fig = figures["3 seeds", "projection"]
    axes = [ax for ax in fig.axes if ax.collections]
    assert [ax.get_title() for ax in axes] == ["α = 0", "α = 0.1", "α = 0.5"]
    assert len({ax.get_xlim() for ax in axes}) == 1 and len({ax.get_ylim() for ax in axes}) == 1
    assert all(ax.get_xlabel() for ax in axes) and axes[0].get_ylabel()
    assert "Same scale in every panel" in fig._suptitle.get_text()
    # Every point is inside the shared limits (none clipped away).
    x0, x1 = axes[0].get_xlim()
    y0, y1 = axes[0].get_ylim()
    for ax in axes:
        for coll in ax.collections:
            xy = coll.get_offsets()
            assert (xy[:, 0] > x0).all() and (xy[:, 0] < x1).all()
            assert (xy[:, 1] > y0).all() and (xy[:, 1] < y1).all()


def test_projection_alphas():
    assert rp.projection_alphas([0.0, 0.05, 0.1, 0.2, 0.5]) == [0.0, 0.1, 0.5]
    assert rp.projection_alphas([0.0, 0.1]) == [0.0, 0.1]
    assert rp.projection_alphas([0.0, 0.3]) == [0.0, 0.3]
    assert rp.projection_alphas([0.1, 0.3]) == []


def test_train_gap_figure_draws_each_alpha_and_its_cap(tmp_path):
    from lsexp.reporting.figures import figure_train_gap

    rep = synthetic_report(tmp_path, alphas=(0.0, 0.1, 0.3), seeds=(0, 1))
    rep.groups[1].logits[0].train_gap = None
    assert figure_train_gap(rep) is None  # a run without the recorded gap: no figure
    rng = np.random.default_rng(0)
    for g in rep.groups:
        for lg in g.logits:
            cap = metrics.optimal_logit_gap(g.alpha, 10) if g.alpha > 0 else 12.0
            lg.train_gap = rng.normal(cap, 0.3, 500)
    fig = figure_train_gap(rep)
    ax = fig.axes[0]
    caps = [ln for ln in ax.lines if ln.get_label().startswith("cap")]
    assert len(caps) == 1
    assert list(caps[0].get_xdata()) == [0.1, 0.3]
    assert np.allclose(caps[0].get_ydata(), [metrics.optimal_logit_gap(a, 10) for a in (0.1, 0.3)])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.1", "0.3"]
    assert ax.get_ylim()[0] <= 0
    plt.close(fig)


def test_figures_drawn_in_worker_processes_are_the_files_drawn_here(tmp_path, monkeypatch):
    """A sweep of PARALLEL_FIGURE_RUNS runs or more draws its figures in forked workers
    while the claims are evaluated: the same files, byte for byte, and the same notes."""
    outputs = {}
    import concurrent.futures as cf

    submitted = []

    class Recording(cf.ProcessPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            submitted.append(fn.__name__)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(cf, "ProcessPoolExecutor", Recording)
    default = rp.PARALLEL_FIGURE_RUNS
    for mode, threshold in (("workers", default), ("here", 10**9)):
        submitted.clear()
        monkeypatch.setattr(rp, "PARALLEL_FIGURE_RUNS", threshold)
        shutil.rmtree(tmp_path / "sweep", ignore_errors=True)  # one path: index.html names it
        rep = synthetic_report(tmp_path / "sweep")
        assert sum(len(g.runs) for g in rep.groups) >= default
        out = tmp_path / "sweep" / "report"
        out.mkdir(parents=True)
        rp._write_files(rep, out)
        outputs[mode] = ({p.name: p.read_bytes() for p in sorted(out.iterdir())},
                         [p.name for p in rep.files], rep.warnings)  # fmt: skip
        assert (submitted.count("_figure_worker") > 1) == (mode == "workers")
    files, order, notes = outputs["workers"]
    assert order == outputs["here"][1]
    assert notes == outputs["here"][2]
    assert sorted(files) == sorted(outputs["here"][0])
    assert {f"{s}.png" for s in STEMS} <= set(files)
    for name, data in files.items():
        assert data == outputs["here"][0][name], name
