"""`lsexp report`: saved logits -> metrics -> statistics across seeds -> tables and figures.

Nothing here trains. Every metric is recomputed from the saved float32 logits (in
float64), on the true, unsmoothed labels, so a new metric never needs a new sweep.
Only runs whose `config_hash` matches the folder's `sweep.yaml` are used; runs that
diverged or failed are counted per alpha and left out of the means.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lsexp import metrics, plots
from lsexp.calibration import apply_temperature, fit_temperature
from lsexp.claims import RunResult as ClaimRun
from lsexp.claims import claims_markdown, evaluate_claims
from lsexp.config import SweepConfig
from lsexp.html_report import MISSING, Cell, Table
from lsexp.stats import INTERVAL_METHODS, Summary, summarize
from lsexp.store import (
    ResultsStore,
    StoredRun,
    UnreadableRun,
    atomic_write_bytes,
    atomic_write_text,
    config_hash,
    csv_text,
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


def collect(sweep_dir: Path, interval: str = "t") -> Report:
    """Read a sweep folder and compute per-run metrics and per-alpha groups."""
    store = ResultsStore(sweep_dir)
    config = store.load_config()
    expected = config_hash(config)
    runs, unreadable = store.scan()
    notes: list[str] = [f"skipped {u.path.name}: {u.reason}" for u in unreadable]
    n_bins = config.eval.n_bins
    groups: dict[float, AlphaGroup] = {}
    rows: list[dict[str, Any]] = []
    other = 0
    for run in runs:
        if run.record.get("config_hash") != expected:
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
            row, logits, labels = _run_row(run, n_bins)
        except (OSError, KeyError, ValueError) as e:
            reason = f"unreadable predictions.npz ({e})"
            notes.append(f"skipped {run.path.name}: {reason}")
            unreadable.append(UnreadableRun(run.path, reason))
            continue
        g.runs.append(row)
        g.pooled_logits.append(logits)
        g.pooled_labels.append(labels)
        g.histories.append(run.history())
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
            "Figures: " + ", ".join(f"`{s}.png`" for s in figures) + ".",
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


def _save(fig, path: Path) -> None:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _arrays(report: Report, name: str) -> tuple[np.ndarray, ...]:
    groups = [g for g in report.groups if g.runs]
    stats = [g.stat(name) for g in groups]
    return (
        np.array([g.alpha for g in groups]),
        np.array([s.mean for s in stats]),
        np.array([s.half_width for s in stats]),
        np.array([s.n for s in stats]),
    )


def _title(report: Report) -> str:
    c = report.config
    return f"{c.data.name} / {c.model.name} / {c.train.epochs} epochs"


def figure_metric(report: Report, name: str, ylabel: str, path: Path, scale: float = 1.0):
    import matplotlib.pyplot as plt

    alphas, mean, hw, n = _arrays(report, name)
    fig, ax = plt.subplots(figsize=(6, 4))
    plots.metric_vs_alpha(ax, alphas, mean * scale, hw * scale, n, ylabel=ylabel)
    ax.set_title(f"{_title(report)}\nmean over seeds, error bars: {report.interval_label}",
                 fontsize=10)  # fmt: skip
    _save(fig, path)


def figure_ece_ts(report: Report, path: Path) -> None:
    """ECE before and after temperature scaling on one axis (Müller et al. 2019, Table 3)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, label, color in (("ece", "no post-hoc calibration", "C3"),
                               ("ece_ts", "after temperature scaling", "C0")):  # fmt: skip
        alphas, mean, hw, n = _arrays(report, name)
        plots.metric_vs_alpha(ax, alphas, mean * 100, hw * 100, n, label=label, color=color,
                              annotate_n=name == "ece",
                              ylabel=f"test ECE (%, {report.config.eval.n_bins} bins)")  # fmt: skip
    ax.legend(fontsize=8)
    ax.set_title(f"{_title(report)}\nlabel smoothing vs temperature scaling "
                 f"(T fitted on val); {report.interval_label}s", fontsize=10)  # fmt: skip
    _save(fig, path)


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


def figure_projection(report: Report, path: Path) -> bool:
    """α = 0 beside a smoothed α (0.1 if swept, else the largest), first common seed."""
    import matplotlib.pyplot as plt

    by_alpha = {g.alpha: g for g in report.groups if g.stored}
    if 0.0 not in by_alpha or len(by_alpha) < 2:
        return False
    smoothed = 0.1 if 0.1 in by_alpha else max(by_alpha)
    seeds = {r.seed for r in by_alpha[0.0].stored} & {r.seed for r in by_alpha[smoothed].stored}
    if not seeds:
        return False
    seed = min(seeds)
    pens = []
    for a in (0.0, smoothed):
        run = next(r for r in by_alpha[a].stored if r.seed == seed)
        pen = run.penultimate()
        if pen is None:
            return False
        pens.append((a, pen))
    info_classes = _class_names(report)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, (a, pen) in zip(axes, pens, strict=True):
        xy, labels = projection_points(pen)
        names = [info_classes[k] if k < len(info_classes) else str(k) for k in pen["classes"]]
        title = f"α = {a:g} (seed {seed}; axes scaled per panel)"
        plots.projection(ax, xy, labels, pen["classes"], names, title=title)
    fig.suptitle(
        "Penultimate-layer activations projected onto the plane through three class "
        f"templates (Müller et al. 2019, Fig. 1) — {_title(report)}",
        fontsize=10,
    )
    _save(fig, path)
    return True


def _class_names(report: Report) -> tuple[str, ...]:
    from lsexp.data import DATASETS

    info = DATASETS.get(report.config.data.name)
    return info.classes if info is not None else ()


def figure_reliability(report: Report, path: Path) -> None:
    import matplotlib.pyplot as plt

    n_bins = report.config.eval.n_bins
    groups = [g for g in report.groups if g.runs]
    ncols = min(4, max(1, len(groups)))
    nrows = math.ceil(len(groups) / ncols)
    fig = plt.figure(figsize=(3.3 * ncols, 4.6 * nrows))
    outer = fig.add_gridspec(nrows, ncols, hspace=0.45, wspace=0.3)
    for i, g in enumerate(groups):
        inner = outer[i // ncols, i % ncols].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.08)
        ax_rel = fig.add_subplot(inner[0])
        ax_hist = fig.add_subplot(inner[1], sharex=ax_rel)
        logits = np.concatenate(g.pooled_logits)
        labels = np.concatenate(g.pooled_labels)
        probs = metrics.softmax(logits)
        bins = metrics.reliability_bins(probs, labels, n_bins=n_bins)
        ece = g.stat("ece")
        spread = f" ± {ece.std * 100:.2f}" if ece.n > 1 else ""
        plots.reliability(
            ax_rel, bins, title=f"α = {g.alpha:g}",
            ece_text=f"ECE {ece.mean * 100:.2f}{spread} %\n({n_bins} equal-width bins,\n"
                     f"mean over n={ece.n} seeds)",
        )  # fmt: skip
        ax_rel.set_xlabel("")
        plt.setp(ax_rel.get_xticklabels(), visible=False)
        if i % ncols == 0:
            ax_rel.set_ylabel("accuracy")
            ax_hist.set_ylabel("fraction")
        plots.confidence_histogram(
            ax_hist, bins,
            mean_accuracy=metrics.accuracy(probs, labels),
            mean_confidence=metrics.mean_confidence(probs),
        )  # fmt: skip
        if i == 0:
            ax_rel.legend(fontsize=6, loc="lower right")
    fig.suptitle(
        f"Reliability diagrams (test, seeds pooled) — {_title(report)}", fontsize=11, y=1.0
    )
    _save(fig, path)


def figure_logit_gap(report: Report, path: Path) -> None:
    import matplotlib.pyplot as plt

    alphas, mean, hw, n = _arrays(report, "logit_gap")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    plots.logit_gap_vs_alpha(ax1, alphas, mean, hw, n, _num_classes(report))
    ax1.set_title("Logit gap at the end of training (test)", fontsize=10)
    curves: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for g in report.groups:
        hs = [h for h in g.histories if h and "val_logit_gap" in h[0]]
        if not hs:
            continue
        length = min(len(h) for h in hs)
        y = np.mean([[row["val_logit_gap"] for row in h[:length]] for h in hs], axis=0)
        curves[g.alpha] = (np.arange(1, length + 1), y)
    if curves:
        plots.curves_by_alpha(ax2, curves, ylabel="mean logit gap (val)")
        ax2.set_title("Logit gap during training (mean over seeds)", fontsize=10)
    else:
        ax2.set_axis_off()
    fig.suptitle(_title(report), fontsize=11)
    _save(fig, path)


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------


def write_report(sweep_dir: str | Path, interval: str = "t") -> Report:
    """Compute everything and write it to <sweep_dir>/report/. Returns what was computed."""
    sweep_dir = Path(sweep_dir)
    report = collect(sweep_dir, interval)
    out = ResultsStore(sweep_dir).report_dir
    out.mkdir(parents=True, exist_ok=True)

    def text(name: str, content: str) -> None:
        atomic_write_text(out / name, content)
        report.files.append(out / name)

    text("runs.csv", csv_text(report.run_rows))
    text("summary.csv", csv_text(summary_rows(report)))
    text("summary.md", summary_markdown(report, FIGURE_STEMS))
    text("summary.tex", summary_latex(report))
    claims = evaluate_report_claims(report)
    text("claims.json", json.dumps(claims, indent=2, allow_nan=False) + "\n")
    text("claims.md", claims_markdown(claims))
    if any(g.runs for g in report.groups):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # tight_layout chatter
            figure_metric(
                report, "accuracy", "test accuracy (%)", out / "accuracy_vs_alpha.png", 100
            )
            figure_metric(report, "ece", f"test ECE (%, {report.config.eval.n_bins} bins)",
                          out / "ece_vs_alpha.png", 100)  # fmt: skip
            figure_ece_ts(report, out / "ece_ts_vs_alpha.png")
            figure_reliability(report, out / "reliability.png")
            figure_logit_gap(report, out / "logit_gap.png")
            projected = figure_projection(report, out / "projection.png")
            if not projected:
                report.warnings.append(
                    "no projection.png: needs alpha = 0 and a smoothed alpha with a common seed "
                    "and saved penultimate activations"
                )
        names = ["accuracy_vs_alpha.png", "ece_vs_alpha.png", "ece_ts_vs_alpha.png",
                 "reliability.png", "logit_gap.png"]  # fmt: skip
        names += ["projection.png"] if projected else []
        report.files += [out / name for name in names]
    else:
        report.warnings.append("no finished runs: no figures written")
    text("index.html", index_html(report, claims))
    return report


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


FIGURE_STEMS = ["accuracy_vs_alpha", "ece_vs_alpha", "ece_ts_vs_alpha", "reliability",
                "logit_gap", "projection"]  # fmt: skip
FIGURE_CAPTIONS = {
    "accuracy_vs_alpha.png": ("Accuracy vs α", "Test accuracy, mean over seeds; error bars "
                              "are 95% intervals over seeds (method in the summary); "
                              "n = seeds per point."),
    "ece_vs_alpha.png": ("ECE vs α", "Test ECE (equal-width bins), mean over seeds with 95% "
                         "intervals."),
    "ece_ts_vs_alpha.png": ("Label smoothing vs temperature scaling", "Test ECE before and "
                            "after temperature scaling (T fitted on the validation split)."),
    "reliability.png": ("Reliability diagrams", "Per-bin accuracy (grey), gap to the diagonal "
                        "(red: over-confident, blue: under-confident), and the confidence "
                        "histogram with mean accuracy and mean confidence; seeds pooled."),
    "logit_gap.png": ("Logit gap", "Mean gap between the top logit and the others, against "
                      "the loss-minimising gap log(K(1−α)/α + 1), and during training."),
    "projection.png": ("Penultimate layer", "Activations of three classes projected onto the "
                       "plane through their last-layer templates (Müller et al. 2019, Fig. 1)."),
}  # fmt: skip


def index_html(report: Report, claims: list[dict[str, Any]]) -> str:
    """report/index.html: one self-contained page with claims, tables, figures, settings."""
    from lsexp.config import config_to_yaml
    from lsexp.html_report import render_index

    out = ResultsStore(report.sweep_dir).report_dir
    figures = [
        (title, out / name, caption)
        for name, (title, caption) in FIGURE_CAPTIONS.items()
        if out / name in report.files
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
