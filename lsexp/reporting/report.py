"""`lsexp report`: saved logits -> metrics -> statistics across seeds -> tables and figures.

Nothing here trains. Every metric is recomputed from the saved float32 logits (in
float64), on the true, unsmoothed labels, so a new metric never needs a new sweep.
Only runs whose `config_hash` matches the folder's `sweep.yaml` are used; runs that
diverged or failed are counted per alpha and left out of the means.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lsexp.analysis import metrics
from lsexp.analysis.calibration import apply_temperature, fit_temperature
from lsexp.analysis.claims import RunResult as ClaimRun
from lsexp.analysis.claims import claims_markdown, evaluate_claims
from lsexp.analysis.stats import INTERVAL_METHODS, Summary, summarize, wilson_interval
from lsexp.config import SweepConfig
from lsexp.reporting import plots
from lsexp.reporting.html_report import MISSING, Cell, Table
from lsexp.results.store import (
    ResultsStore,
    RunFileError,
    StoredRun,
    UnreadableRun,
    atomic_write_bytes,
    atomic_write_text,
    csv_text,
    same_settings,
)

METRIC_NAMES = (
    "accuracy",
    "nll",
    "brier",
    "ece",
    "mce",
    "adaptive_ece",
    "classwise_ece",
    "debiased_ece",
    "mean_confidence",
    "overconfidence",
    "logit_gap",
    "temperature",
    "nll_ts",
    "ece_ts",
    "adaptive_ece_ts",
)
LOWER_IS_BETTER = {
    "nll", "brier", "ece", "mce", "adaptive_ece", "classwise_ece", "debiased_ece",
    "nll_ts", "ece_ts", "adaptive_ece_ts",
}  # fmt: skip
N_BOOT = 200  # bootstrap resamples of the test set for each run's ECE interval


@dataclass
class AlphaGroup:
    alpha: float
    runs: list[dict[str, Any]] = field(default_factory=list)  # per-run rows of done runs
    n_diverged: int = 0
    n_failed: int = 0
    pooled_logits: list[np.ndarray] = field(default_factory=list)
    pooled_labels: list[np.ndarray] = field(default_factory=list)
    histories: list[list[dict[str, float]]] = field(default_factory=list)
    stored: list[StoredRun] = field(default_factory=list)

    interval: str = "t"  # how `stat` builds its 95 % interval: "t" or "bootstrap"

    def stat(self, name: str) -> Summary:
        return summarize([r[name] for r in self.runs], self.interval)


@dataclass
class Report:
    sweep_dir: Path
    config: SweepConfig
    groups: list[AlphaGroup]
    run_rows: list[dict[str, Any]]
    n_unreadable: int
    n_other_settings: int
    files: list[Path]
    warnings: list[str]
    interval: str = "t"

    @property
    def interval_label(self) -> str:
        return {"t": "95% t-interval", "bootstrap": "95% bootstrap interval"}[self.interval]


def run_metrics(preds: dict[str, np.ndarray], n_bins: int) -> dict[str, float]:
    """Every per-run number of the report, from saved logits (test; val for fitting T).

    Temperature scaling (Guo et al. 2017) is fitted on the validation logits and applied
    to the test logits; without a validation split the `_ts` columns are NaN.
    """
    logits, labels = preds["test_logits"], preds["test_labels"]
    row = metrics.all_metrics(logits, labels, n_bins=n_bins)
    probs = metrics.softmax(logits)
    row["debiased_ece"] = metrics.debiased_ece(probs, labels, n_bins=n_bins)
    low, high = metrics.ece_bootstrap_interval(probs, labels, n_bins=n_bins, n_boot=N_BOOT)
    row["ece_boot_low"], row["ece_boot_high"] = low, high
    if len(preds.get("val_labels", ())) > 0:
        t = fit_temperature(preds["val_logits"], preds["val_labels"])
        scaled = apply_temperature(logits, t)
        probs_ts = metrics.softmax(scaled)
        row["temperature"] = t
        row["nll_ts"] = metrics.nll_from_logits(scaled, labels)
        row["ece_ts"] = metrics.ece(probs_ts, labels, n_bins=n_bins)
        row["adaptive_ece_ts"] = metrics.adaptive_ece(probs_ts, labels, n_bins=n_bins)
    else:
        for key in ("temperature", "nll_ts", "ece_ts", "adaptive_ece_ts"):
            row[key] = math.nan
    row["n_test"] = len(labels)
    return row


def _run_row(run: StoredRun, n_bins: int) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    preds = run.predictions()
    row: dict[str, Any] = {"alpha": run.alpha, "seed": run.seed, "status": run.status}
    row.update(run_metrics(preds, n_bins))
    row["run_dir"] = run.path.name
    return row, preds["test_logits"], preds["test_labels"]


def collect(sweep_dir: Path, interval: str = "t", n_bins: int | None = None) -> Report:
    """Read a sweep folder and compute per-run metrics and per-alpha groups.

    `n_bins` (default: the config's eval.n_bins) sets every binned metric; it is a report
    setting, recomputed from the saved logits, never a reason to retrain.
    """
    store = ResultsStore(sweep_dir)
    config = store.load_config()
    if n_bins is not None:
        config = config.model_copy(
            update={"eval": config.eval.model_copy(update={"n_bins": n_bins})}
        )
    runs, unreadable = store.scan()
    notes: list[str] = [f"skipped {u.path.name}: {u.reason}" for u in unreadable]
    n_bins = config.eval.n_bins
    groups: dict[float, AlphaGroup] = {}
    rows: list[dict[str, Any]] = []
    other = 0
    for run in runs:
        if not same_settings(run.record, config):
            other += 1
            continue
        g = groups.setdefault(run.alpha, AlphaGroup(run.alpha))
        if run.status == "diverged":
            g.n_diverged += 1
            rows.append({"alpha": run.alpha, "seed": run.seed, "status": "diverged",
                         "run_dir": run.path.name})  # fmt: skip
            continue
        if run.status != "done":
            g.n_failed += 1
            rows.append({"alpha": run.alpha, "seed": run.seed, "status": run.status,
                         "run_dir": run.path.name})  # fmt: skip
            continue
        try:
            run.check()
            row, logits, labels = _run_row(run, n_bins)
            history = run.history()
        except (OSError, RunFileError) as e:
            reason = f"{e}; the next `lsexp sweep` trains it again"
            notes.append(f"skipped {run.path.name}: {reason}")
            unreadable.append(UnreadableRun(run.path, reason))
            continue
        g.runs.append(row)
        g.pooled_logits.append(logits)
        g.pooled_labels.append(labels)
        g.histories.append(history)
        g.stored.append(run)
        rows.append(row)
    if other:
        notes.append(f"ignored {other} run(s) of other settings (different config_hash)")
    ordered = [groups[a] for a in sorted(groups)]
    rows.sort(key=lambda r: (r["alpha"], r["seed"]))
    for g in ordered:
        g.interval = interval
    return Report(sweep_dir, config, ordered, rows, len(unreadable), other, [], notes, interval)


def summary_rows(report: Report) -> list[dict[str, Any]]:
    k = _num_classes(report)
    out = []
    for g in report.groups:
        row: dict[str, Any] = {
            "alpha": g.alpha,
            "n_runs": len(g.runs),
            "n_diverged": g.n_diverged,
            "n_failed": g.n_failed,
        }
        for name in METRIC_NAMES:
            s = g.stat(name)
            row[f"{name}_mean"] = s.mean
            row[f"{name}_std"] = s.std
            row[f"{name}_ci_low"] = s.ci_low
            row[f"{name}_ci_high"] = s.ci_high
        row["optimal_logit_gap"] = (
            metrics.optimal_logit_gap(g.alpha, k) if g.alpha > 0 else math.inf
        )
        out.append(row)
    return out


def _num_classes(report: Report) -> int:
    for g in report.groups:
        if g.pooled_logits:
            return int(g.pooled_logits[0].shape[1])
    return {"cifar100": 100}.get(report.config.data.name, 10)


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One metric column of the summary tables: its unit and decimals are fixed."""

    metric: str  # a METRIC_NAMES entry
    header: str  # with its unit
    scale: float = 1.0  # 100: shown in % (or percentage points)
    decimals: int = 2  # the fewest decimals shown; more where needed to tell the best apart
    better: str = ""  # "max" / "min": the best mean is marked; "": nothing marked


def _ranked(metric: str, header: str, scale: float, decimals: int) -> Column:
    """A column whose best mean is marked: the lowest for LOWER_IS_BETTER, else the highest."""
    return Column(metric, header, scale, decimals, "min" if metric in LOWER_IS_BETTER else "max")


MAX_DECIMALS = 6
ACCURACY = _ranked("accuracy", "accuracy (%)", 100, 2)
NLL = _ranked("nll", "NLL", 1, 3)
BRIER = _ranked("brier", "Brier", 1, 4)
ECE = _ranked("ece", "ECE (%)", 100, 2)
ADAPTIVE_ECE = _ranked("adaptive_ece", "adaptive ECE (%)", 100, 2)
CLASSWISE_ECE = _ranked("classwise_ece", "classwise ECE (%)", 100, 2)
DEBIASED_ECE = _ranked("debiased_ece", "debiased ECE, l2 (%)", 100, 2)
MEAN_CONF = Column("mean_confidence", "mean conf. (%)", 100, 2)
OVERCONF = Column("overconfidence", "conf. − acc. (pp)", 100, 2)
LOGIT_GAP = Column("logit_gap", "logit gap", 1, 2)
TEMPERATURE = Column("temperature", "T", 1, 2)
NLL_TS = _ranked("nll_ts", "NLL after TS", 1, 3)
ECE_TS = _ranked("ece_ts", "ECE after TS (%)", 100, 2)
ADAPTIVE_ECE_TS = _ranked("adaptive_ece_ts", "adaptive ECE after TS (%)", 100, 2)


def _decimals(means: list[float], col: Column) -> int:
    """col.decimals, or more until no other mean prints the same as the best one.

    Otherwise two cells that differ could print alike with only one marked best.
    """
    finite = [m for m in means if math.isfinite(m)]
    if not col.better or len(finite) < 2:
        return col.decimals
    best = max(finite) if col.better == "max" else min(finite)
    d = col.decimals
    while d < MAX_DECIMALS and any(m != best and f"{m:.{d}f}" == f"{best:.{d}f}" for m in finite):
        d += 1
    return d


def column_cells(groups: list[AlphaGroup], col: Column) -> list[Cell]:
    """One cell per α group: mean (and ± sample std when n ≥ 2), fixed decimals, best marked.

    Best: every cell whose printed mean equals the printed best mean, so equal-looking
    cells are marked alike (with MAX_DECIMALS that is only a true tie or a difference
    below 10^-6 of the unit).
    """
    stats = [g.stat(col.metric) for g in groups]
    means = [s.mean * col.scale if s.n else math.nan for s in stats]
    d = _decimals(means, col)
    finite = [m for m in means if math.isfinite(m)]
    best = ""
    if col.better and finite:
        best = f"{(max(finite) if col.better == 'max' else min(finite)):.{d}f}"
    cells = []
    for s, m in zip(stats, means, strict=True):
        if not math.isfinite(m):
            cells.append(Cell(MISSING))
            continue
        text = f"{m:.{d}f}"
        spread = f"{s.std * col.scale:.{d}f}" if s.n > 1 and math.isfinite(s.std) else ""
        cells.append(Cell(text, spread, best=bool(best) and text == best))
    return cells


def _ci_cells(groups: list[AlphaGroup], col: Column, decimals: list[Cell]) -> list[str]:
    out = []
    for g, cell in zip(groups, decimals, strict=True):
        s = g.stat(col.metric)
        d = len(cell.text.partition(".")[2])
        out.append(
            MISSING if not math.isfinite(s.ci_low)
            else f"[{s.ci_low * col.scale:.{d}f}, {s.ci_high * col.scale:.{d}f}]"
        )  # fmt: skip
    return out


def _runs_text(g: AlphaGroup) -> str:
    return f"{len(g.runs)} ({g.n_diverged}/{g.n_failed})"


def _md(cell: Cell | str) -> str:
    if isinstance(cell, str):
        return cell
    mean = cell.text.replace("-", "−")
    mean = f"**{mean}**" if cell.best else mean
    return f"{mean} ± {cell.spread}" if cell.spread else mean


def _md_table(groups: list[AlphaGroup], columns: list[Column], ci_after: set[str]) -> list[str]:
    header = ["α", "n (div/fail)"]
    body: list[list[str]] = [[f"{g.alpha:g}", _runs_text(g)] for g in groups]
    for col in columns:
        cells = column_cells(groups, col)
        header.append(col.header)
        for row, cell in zip(body, cells, strict=True):
            row.append(_md(cell))
        if col.metric in ci_after:
            header.append("95% CI")
            for row, text in zip(body, _ci_cells(groups, col, cells), strict=True):
                row.append(text.replace("-", "−"))
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in body),
    ]


MD_MAIN = [ACCURACY, NLL, ECE, ADAPTIVE_ECE, CLASSWISE_ECE, BRIER, MEAN_CONF, OVERCONF,
           LOGIT_GAP]  # fmt: skip
MD_TS = [TEMPERATURE, NLL, NLL_TS, ECE, ECE_TS, ADAPTIVE_ECE_TS, DEBIASED_ECE]


def summary_markdown(report: Report, figures: list[str] | None = None) -> str:
    """summary.md. figures: the figure files written (stems), listed at the end."""
    c = report.config
    n_bins = c.eval.n_bins
    groups = report.groups
    lines = [
        f"# lsexp report: {c.name}",
        "",
        f"Dataset `{c.data.name}` (val {c.data.val_size} carved from train, split seed "
        f"{c.data.split_seed}), model `{c.model.name}`, {c.train.epochs} epochs, "
        f"{c.train.optimizer} lr {c.train.lr:g}, {c.train.schedule} schedule, batch "
        f"{c.train.batch_size}, weight decay {c.train.weight_decay:g}, augment "
        f"{c.train.augment}.",
        "",
        f"Test-set metrics on true labels, as mean ± sample standard deviation over seeds "
        f"(n per row; no ± where n = 1); accuracy, ECE and confidence in %. ECE, MCE and "
        f"classwise ECE use {n_bins} equal-width bins; adaptive ECE uses {n_bins} "
        f"equal-mass bins. **Bold**: the best mean of a column. Interval column: "
        f"{INTERVAL_METHODS[report.interval]}.",
        "",
        *_md_table(groups, MD_MAIN, ci_after={"accuracy", "ece"}),
        "",
        "conf. − acc. > 0 means over-confident, < 0 under-confident. Logit gap = top logit "
        "minus the mean of the others, averaged over test examples.",
        "",
    ]
    if figures:
        lines += [
            "Figures, each as PDF (vector) and 300-dpi PNG: "
            + ", ".join(f"`{s}`" for s in figures)
            + ".",
            "",
        ]
    lines += [
        f"Per-run numbers (with a {N_BOOT}-resample bootstrap interval of each run's ECE over "
        "test examples): `runs.csv`.",
        "",
        "## Temperature scaling and a less biased ECE",
        "",
        "T minimises the validation NLL of softmax(logits / T) (Guo et al. 2017) and is "
        "applied to the test logits. Debiased ECE: the l2 calibration error estimator of "
        f"Kumar et al. 2019 with {n_bins} equal-mass bins (plug-in ECE is biased upward; "
        "compare small differences with this column).",
        "",
        *_md_table(groups, MD_TS, ci_after=set()),
    ]
    if report.warnings:
        lines += ["", "## Notes", ""] + [f"- {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


TEX_COLUMNS = [
    _ranked("accuracy", "Acc. (\\%)", 100, 2),
    _ranked("nll", "NLL", 1, 3),
    _ranked("ece", "ECE (\\%)", 100, 2),
    _ranked("adaptive_ece", "AdaECE (\\%)", 100, 2),
    _ranked("brier", "Brier", 1, 4),
]


def _tex(cell: Cell) -> str:
    if cell.text == MISSING:
        return "--"

    def num(x: str) -> str:
        return f"$-${x[1:]}" if x.startswith("-") else x

    text = num(cell.text) + (f" $\\pm$ {cell.spread}" if cell.spread else "")
    return f"\\textbf{{{text}}}" if cell.best else text


def summary_latex(report: Report) -> str:
    """booktabs table: mean ± sample std over seeds; best mean per column in bold.

    Decimals per column are fixed, and raised where two different means would print
    alike (see `column_cells`); a note under the rule says what ± and bold mean.
    """
    cols = TEX_COLUMNS
    groups = report.groups
    cells = [column_cells(groups, col) for col in cols]
    ns = sorted({len(g.runs) for g in groups if g.runs})
    if ns == [1]:
        note = "One seed per $\\alpha$ (no $\\pm$); bold: best."
    else:
        n_words = f"$n = {ns[0]}$ seeds" if len(ns) == 1 else "$n$ seeds"
        note = f"Mean $\\pm$ sample std over {n_words}" + (
            " (no $\\pm$ where $n = 1$)" if 1 in ns else "") + "; bold: best."  # fmt: skip
    lines = [
        "% Generated by lsexp report. Requires \\usepackage{booktabs}.",
        "% Test set. Mean +/- sample standard deviation (ddof 1) over the seeds of each alpha;",
        "% bold: the best mean of a column, with as many decimals as it takes to tell it apart.",
        "\\begin{tabular}{r" + "c" * (len(cols) + 1) + "}",
        "\\toprule",
        "$\\alpha$ & $n$ & " + " & ".join(c.header for c in cols) + " \\\\",
        "\\midrule",
    ]
    for i, g in enumerate(groups):
        row = [_tex(column[i]) for column in cells]
        lines.append(f"{g.alpha:g} & {len(g.runs)} & " + " & ".join(row) + " \\\\")
    lines += [
        "\\bottomrule",
        f"\\multicolumn{{{len(cols) + 2}}}{{l}}{{\\footnotesize {note}}} \\\\",
        "\\end{tabular}",
    ]
    return "\n".join(lines) + "\n"


HTML_TABLES = [
    ("Accuracy and calibration", [ACCURACY, NLL, BRIER, ECE, ADAPTIVE_ECE, OVERCONF]),
    ("More calibration measures, the logit gap, and temperature scaling (TS)",
     [CLASSWISE_ECE, DEBIASED_ECE, MEAN_CONF, LOGIT_GAP, TEMPERATURE, NLL_TS, ECE_TS]),
]  # fmt: skip


def html_tables(report: Report) -> list[Table]:
    """The summary as the tables of index.html: same cells as summary.md, in narrower
    tables that fit a laptop screen side by side with nothing hidden."""
    groups = report.groups
    n_bins = report.config.eval.n_bins
    out = []
    for title, cols in HTML_TABLES:
        cells = [column_cells(groups, col) for col in cols]
        rows = []
        for i, g in enumerate(groups):
            runs = str(len(g.runs))
            if g.n_diverged or g.n_failed:
                runs += f" (+{g.n_diverged} div., {g.n_failed} failed)"
            rows.append([Cell(f"{g.alpha:g}"), Cell(runs)] + [column[i] for column in cells])
        out.append(Table(title, ["α", "n"] + [c.header for c in cols], rows))
    out[-1] = Table(
        out[-1].title,
        out[-1].headers,
        out[-1].rows,
        note=(
            "Test set; mean ± sample standard deviation over the n seeds of each α (no ± "
            "where n = 1); accuracy, ECE and confidence in %, conf. − acc. in percentage "
            f"points. ECE: {n_bins} equal-width bins; adaptive ECE: {n_bins} equal-mass bins. "
            "Bold: the best mean of a column. TS: temperature scaling, T fitted on the "
            f"validation split. {MISSING}: not available. summary.csv has every number "
            "unrounded, with 95% intervals."
        ),
    )
    return out


# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------

FIG_DPI = 300


def _save(fig, out: Path, stem: str) -> list[Path]:
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
    plots.legend_below(ax, ncol=2)
    if before.bars == after.bars:
        bars = f"error bars: {before.bars}" if before.bars else "no error bars"
    else:
        bars = f"error bars: {before.bars or 'none'} before, {after.bars or 'none'} after"
    seeds = _seeds_words(report, before.n) or "mean over seeds, n per α on the top axis"
    ax.set_title(f"{_title(report)}\nlabel smoothing vs temperature scaling; {seeds};\n{bars}",
                 fontsize=9)  # fmt: skip
    return fig


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


def reliability_panels(report: Report) -> list[dict[str, Any]]:
    """Per α: the reliability bins of the test predictions of all its seeds pooled, and
    the ECE, accuracy and mean confidence of those same pooled predictions (so the number
    above a panel is the ECE of the bars drawn in it)."""
    n_bins = report.config.eval.n_bins
    out = []
    for g in _done_groups(report):
        probs = metrics.softmax(np.concatenate(g.pooled_logits))
        labels = np.concatenate(g.pooled_labels)
        out.append({
            "alpha": g.alpha,
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


def figure_reliability(report: Report):
    """One reliability diagram per α over its confidence histogram; the legend fills the
    first empty grid slot, or sits under the panels when the grid is full."""
    import matplotlib.pyplot as plt

    panels = reliability_panels(report)
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
        title = (f"α = {p['alpha']:g}{seeds}: ECE {100 * p['ece']:.2f} %\n"
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
    if n_seeds == {1}:
        what = f"one seed per α ({bins_words})"
    else:
        k = f"the {min(n_seeds)} seeds" if len(n_seeds) == 1 else "the seeds"
        what = (f"{k} of each α pooled: bars, ECE, accuracy and confidence all from the "
                f"pooled\npredictions ({bins_words})")  # fmt: skip
    fig.suptitle(f"Reliability diagrams, test split, {what}. {_title(report)}", fontsize=9)
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

    k = _num_classes(report)
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


def build_figures(report: Report) -> tuple[list[tuple[str, Any]], list[str]]:
    """Every figure of the report as (file stem, open Figure), and notes on figures left
    out. The caller saves (`_save`) or closes them."""
    if not _done_groups(report):
        return [], ["no finished runs: no figures written"]
    figs = [
        ("accuracy_vs_alpha", figure_metric(report, "accuracy", "test accuracy (%)", 100)),
        ("ece_vs_alpha", figure_metric(
            report, "ece", f"test ECE (%, {report.config.eval.n_bins} bins)", 100)),
        ("ece_ts_vs_alpha", figure_ece_ts(report)),
        ("reliability", figure_reliability(report)),
        ("logit_gap", figure_logit_gap(report)),
    ]  # fmt: skip
    notes = []
    projection = figure_projection(report)
    if projection is not None:
        figs.append(("projection", projection))
    else:
        notes.append(
            "no projection figure: needs alpha = 0 and a smoothed alpha with a common seed "
            "and saved penultimate activations"
        )
    return figs, notes


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------


def write_report(sweep_dir: str | Path, interval: str = "t", n_bins: int | None = None) -> Report:
    """Compute everything and write it to <sweep_dir>/report/. Returns what was computed.

    The report is built in a temporary folder beside it and swapped in whole, so the
    folder always holds one complete report: never files of an earlier one (a figure
    that is no longer drawn, say) and never half of a new one.
    """
    sweep_dir = Path(sweep_dir)
    report = collect(sweep_dir, interval, n_bins)
    final = ResultsStore(sweep_dir).report_dir
    with building(final) as out:
        _write_files(report, out)
    report.files = [final / f.relative_to(out) for f in report.files]
    return report


@contextlib.contextmanager
def building(final: Path) -> Iterator[Path]:
    """A fresh folder next to `final`; on success it replaces `final` by two renames."""
    tmp = Path(tempfile.mkdtemp(prefix=".report-", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
        old = final.parent / f"{tmp.name}.old"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_files(report: Report, out: Path) -> None:

    def text(name: str, content: str) -> None:
        atomic_write_text(out / name, content)
        report.files.append(out / name)

    # Figures first, so that summary.md and index.html list only the figures written.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # layout-engine chatter
        figures, notes = build_figures(report)
        stems = []
        for stem, fig in figures:
            report.files += _save(fig, out, stem)
            stems.append(stem)
    report.warnings += notes
    text("runs.csv", csv_text(report.run_rows))
    text("summary.csv", csv_text(summary_rows(report)))
    text("summary.md", summary_markdown(report, stems))
    text("summary.tex", summary_latex(report))
    claims = evaluate_report_claims(report)
    text("claims.json", json.dumps(claims, indent=2, allow_nan=False) + "\n")
    text("claims.md", claims_markdown(claims))
    text("index.html", index_html(report, claims, out))


def evaluate_report_claims(report: Report) -> list[dict[str, Any]]:
    """Verdicts on the folk claims from the done runs (diverged/failed counted, excluded)."""
    runs = [
        ClaimRun(alpha=r["alpha"], seed=r["seed"], accuracy=r["accuracy"], ece=r["ece"],
                 overconfidence=r["overconfidence"], logit_gap=r["logit_gap"],
                 ece_ts=r["ece_ts"] if math.isfinite(r.get("ece_ts", math.nan)) else None)
        for g in report.groups for r in g.runs
    ]  # fmt: skip
    excluded = {g.alpha: g.n_diverged + g.n_failed for g in report.groups}
    return evaluate_claims(runs, _num_classes(report), excluded)


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
    return {
        "accuracy_vs_alpha": ("Accuracy vs α", f"Test accuracy, {seeds}; {bars(acc)}. The "
                              f"y-axis spans at least the 95% Wilson interval of the {n_test:,} "
                              f"test images, so that a few images do not look like a cliff."),
        "ece_vs_alpha": ("ECE vs α", f"Test ECE ({n_bins} equal-width bins), {seeds}; "
                         f"{bars(ece)}."),
        "ece_ts_vs_alpha": ("Label smoothing vs temperature scaling", f"Test ECE before (red "
                            "circles, solid) and after (blue open squares, dashed) temperature "
                            f"scaling, T fitted on the validation split; {seeds}. The two "
                            "series are drawn a few points apart sideways so neither hides "
                            "the other."),
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
                      f"gap log(K(1−α)/α + 1) with K = {_num_classes(report)} classes "
                      "(Müller et al. 2019). (b) The same gap on the validation split after "
                      "each epoch, mean over seeds: training evaluates the validation split "
                      "only, so the test split stays unseen until the end."),
        "projection": ("Penultimate layer", "Activations of three classes projected onto the "
                       "plane through their last-layer templates (Müller et al. 2019, Fig. 1): "
                       "α = 0, α = 0.1 when swept, and the largest α, one seed, all panels on "
                       "the same scale so that cluster sizes compare."),
    }  # fmt: skip


def index_html(report: Report, claims: list[dict[str, Any]], out: Path) -> str:
    """report/index.html: one self-contained page with claims, tables, figures, settings;
    the figures are read from `out`, the folder the report is being built in."""
    from lsexp.config import config_to_yaml
    from lsexp.reporting.html_report import render_index

    figures = [
        (title, out / f"{stem}.png", caption)
        for stem, (title, caption) in figure_captions(report).items()
        if out / f"{stem}.png" in report.files
    ]
    provenance: dict[str, Any] = {"results folder": str(report.sweep_dir)}
    for g in report.groups:
        if g.stored:
            provenance.update(g.stored[0].record.get("provenance", {}))
            break
    provenance["runs (done / diverged / failed / unreadable)"] = (
        f"{sum(len(g.runs) for g in report.groups)} / "
        f"{sum(g.n_diverged for g in report.groups)} / "
        f"{sum(g.n_failed for g in report.groups)} / {report.n_unreadable}"
    )
    intro = summary_markdown(report).split("\n\n")[1:2]
    return render_index(
        title=f"lsexp report: {report.config.name}",
        intro_md="\n\n".join(intro),
        claims=claims,
        tables=html_tables(report),
        figures=figures,
        settings_yaml=config_to_yaml(report.config),
        provenance=provenance,
    )
