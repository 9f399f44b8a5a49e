"""The summary tables: summary.csv, summary.md, summary.tex and the tables of index.html,
all from the columns of `runs.METRICS` (unit, decimals, which way is better)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lsexp.analysis import metrics
from lsexp.analysis.stats import INTERVAL_METHODS
from lsexp.config import SweepConfig
from lsexp.reporting.html_report import MISSING, Cell, Table
from lsexp.reporting.runs import (
    FLOOR_DRAWS,
    N_BOOT,
    AlphaGroup,
    Report,
    metric,
    metric_names,
    metric_table,
    num_classes,
)


def summary_rows(report: Report) -> list[dict[str, Any]]:
    k = num_classes(report)
    out = []
    for g in report.groups:
        row: dict[str, Any] = {
            "alpha": g.alpha,
            "n_runs": len(g.runs),
            "n_diverged": g.n_diverged,
            "n_failed": g.n_failed,
        }
        for name in metric_names():
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


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One metric column of the summary tables: its unit and decimals are fixed."""

    metric: str  # a runs.METRICS key
    header: str  # with its unit
    scale: float = 1.0  # 100: shown in % (or percentage points)
    decimals: int = 2  # the fewest decimals shown; more where needed to tell the best apart
    better: str = ""  # "max" / "min": the best mean is marked; "": nothing marked
    floor: str = ""  # a noise-floor metric: every mean within the floor of the best is marked


def column(key: str, header: str | None = None) -> Column:
    """The column of metric `key` as `runs.METRICS` declares it (another header if given)."""
    m = metric(key)
    return Column(key, header or m.header, m.scale, m.decimals, m.better, m.floor)


MAX_DECIMALS = 6
ACCURACY, NLL, BRIER, ECE = (column(k) for k in ("accuracy", "nll", "brier", "ece"))
LOGIT_GAP = column("logit_gap")


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
    below 10^-6 of the unit). A column with a noise floor (ECE) marks every mean that is
    within the larger of the two mean floors of the best: a difference below the floor is
    not resolvable, so it is not ranked.
    """
    stats = [g.stat(col.metric) for g in groups]
    means = [s.mean * col.scale if s.n else math.nan for s in stats]
    d = col.decimals if col.floor else _decimals(means, col)
    finite = [m for m in means if math.isfinite(m)]
    best = ""
    if col.better and finite:
        best = f"{(max(finite) if col.better == 'max' else min(finite)):.{d}f}"
    floors = [g.stat(col.floor).mean * col.scale if col.floor else math.nan for g in groups]
    best_floor = next(
        (f for m, f in zip(means, floors, strict=True)
         if best and math.isfinite(m) and f"{m:.{d}f}" == best),
        math.nan,
    )  # fmt: skip
    cells = []
    for s, m, f in zip(stats, means, floors, strict=True):
        if not math.isfinite(m):
            cells.append(Cell(MISSING))
            continue
        text = f"{m:.{d}f}"
        spread = f"{s.std * col.scale:.{d}f}" if s.n > 1 and math.isfinite(s.std) else ""
        marked = bool(best) and text == best
        if best and col.floor and math.isfinite(f) and math.isfinite(best_floor):
            marked = abs(m - float(best)) <= max(f, best_floor)
        cells.append(Cell(text, spread, best=marked))
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


def md_columns(table: int) -> list[Column]:
    """The columns of summary.md's table 1 (main), 2 (temperature scaling), 3 and 4 (the
    estimator panel before and after temperature scaling)."""
    return [column(m.key) for m in metric_table() if table in m.md]


def html_columns(table: int) -> list[Column]:
    """The columns of index.html's table 1 or 2 (two narrow tables, nothing hidden)."""
    return [column(m.key) for m in metric_table() if m.html == table]


def tex_columns() -> list[Column]:
    return [column(m.key, m.tex) for m in metric_table() if m.tex]


def setting_sentence(c: SweepConfig) -> str:
    """What was trained, in one sentence (summary.md and index.html open with it); only the
    settings the recipe uses (airbench94 brings its own optimizer, schedule, augmentation)."""
    t = c.train
    if t.recipe == "airbench94":
        recipe = (f"recipe airbench94 (Jordan 2024: Nesterov SGD, triangle schedule, Lookahead, "
                  f"flip + translate), lr {t.lr:g} and weight decay {t.weight_decay:g} per "
                  f"1024 examples, batch {t.batch_size}")  # fmt: skip
    else:
        augment = "crop + flip" if t.augment else "no augmentation"
        recipe = (f"{t.optimizer} lr {t.lr:g}, {t.schedule} schedule, batch {t.batch_size}, "
                  f"weight decay {t.weight_decay:g}, {augment}")  # fmt: skip
    tta = f", test-time augmentation level {c.eval.tta}" if c.eval.tta else ""
    return (
        f"Dataset `{c.data.name}` (val {c.data.val_size} carved from train, split seed "
        f"{c.data.split_seed}), model `{c.model.name}`, {t.epochs} epochs, {recipe}{tta}."
    )


def summary_markdown(report: Report, figures: list[str] | None = None) -> str:
    """summary.md. figures: the figure files written (stems), listed at the end."""
    c = report.config
    n_bins = c.eval.n_bins
    groups = report.groups
    lines = [
        f"# lsexp report: {c.name}",
        "",
        setting_sentence(c),
        "",
        f"Test-set metrics on true labels, as mean ± sample standard deviation over seeds "
        f"(n per row; no ± where n = 1); accuracy, ECE and confidence in %. ECE, MCE and "
        f"classwise ECE use {n_bins} equal-width bins; adaptive ECE uses {n_bins} "
        f"equal-mass bins. **Bold**: the best mean of a column; in an ECE column, every mean "
        f"within the noise floor of the best (differences below it are not resolvable). "
        f"ECE floor: the expected ECE of a perfectly calibrated model with the same "
        f"confidences ({FLOOR_DRAWS} label draws, seed 0): an ECE near it is what perfect "
        f"calibration scores on this test set. Interval column: "
        f"{INTERVAL_METHODS[report.interval]}.",
        "",
        *_md_table(groups, md_columns(1), ci_after={"accuracy", "ece"}),
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
        "## Temperature scaling",
        "",
        "T minimises the validation NLL of softmax(logits / T) (Guo et al. 2017) and is "
        "applied to the test logits; the validation accuracy is the one any best α is "
        "chosen on.",
        "",
        *_md_table(groups, md_columns(2), ci_after=set()),
        "",
        "## The estimator panel",
        "",
        "Calibration error by several estimators, before (first table) and after (second) "
        "temperature scaling: top-label ECE with 10, 15 and 20 equal-width and equal-mass "
        f"bins (equal-mass bins never split tied confidences), classwise ECE ({n_bins} "
        "equal-width bins), smooth ECE (Błasiok & Nakkiran 2023, kernel-smoothed, "
        "automatic bandwidth), and the debiased l2 calibration error of Kumar et al. 2019 "
        f"({n_bins} equal-mass bins). The last is an RMS error, never smaller than an l1 "
        "ECE: compare its changes across α, not its level with the other columns.",
        "",
        *_md_table(groups, md_columns(3), ci_after=set()),
        "",
        *_md_table(groups, md_columns(4), ci_after=set()),
    ]
    if report.warnings:
        lines += ["", "## Notes", ""] + [f"- {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


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
    cols = tex_columns()
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


HTML_TITLES = {
    1: "Accuracy and calibration",
    2: "More calibration measures, the logit gap, and temperature scaling (TS)",
    3: "Estimator panel: binned ECE (%)",
    4: "Estimator panel: classwise, smooth and debiased l2, before and after TS (%)",
    5: "Estimator panel after temperature scaling: binned ECE (%)",
}


def html_tables(report: Report) -> list[Table]:
    """The summary as the tables of index.html: same cells as summary.md, in narrower
    tables that fit a laptop screen side by side with nothing hidden."""
    groups = report.groups
    n_bins = report.config.eval.n_bins
    out = []
    for table, title in HTML_TITLES.items():
        cols = html_columns(table)
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
            "Bold: the best mean of a column; in an ECE column every mean within the noise "
            "floor of the best (the ECE a perfectly calibrated model with the same "
            "confidences scores; differences below it are not resolvable). "
            "TS: temperature scaling, T fitted on the "
            f"validation split. {MISSING}: not available. summary.csv has every number "
            "unrounded, with 95% intervals."
        ),
    )
    return out
