"""The summary tables: summary.csv, summary.md, summary.tex and the tables of index.html,
all from the columns of `runs.METRICS` (unit, decimals, which way is better)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lsexp.analysis import metrics
from lsexp.analysis.posthoc import CALIBRATORS
from lsexp.analysis.selective import SCORES
from lsexp.analysis.stats import INTERVAL_METHODS
from lsexp.config import SweepConfig
from lsexp.reporting.html_report import MISSING, Cell, Table
from lsexp.reporting.runs import (
    FLOOR_DRAWS,
    N_BOOT,
    POSTHOC_COLUMNS,
    SELECTIVE_COLUMNS,
    AlphaGroup,
    Report,
    metric,
    metric_names,
    metric_table,
    num_classes,
    posthoc_key,
    setting_label,
)
from lsexp.training.objectives import OBJECTIVES

# ---------------------------------------------------------------------------------------
# Method comparison: every objective at every strength, before and after temperature scaling
# ---------------------------------------------------------------------------------------

METHOD_COLUMNS = ("accuracy", "nll", "brier", "ece", "nll_ts", "brier_ts", "ece_ts")
METHOD_CI = {"accuracy", "ece", "ece_ts"}  # followed by their 95% interval in summary.md


def objective_label(g: AlphaGroup) -> str:
    return "cross-entropy (baseline)" if g.is_baseline else OBJECTIVES[g.objective].label


def methods_rows(report: Report) -> list[dict[str, Any]]:
    """methods.csv: per setting (every objective and strength), each comparison metric's
    mean, sample std and 95% interval over seeds."""
    out = []
    for g in report.arms:
        row: dict[str, Any] = {
            "objective": g.objective,
            "strength": g.alpha,
            "teacher": "" if g.teacher is None else setting_label(*g.teacher),
            "setting": g.label,
            "n_runs": len(g.runs),
            "n_diverged": g.n_diverged,
            "n_failed": g.n_failed,
        }
        for key in METHOD_COLUMNS:
            st = g.stat(key)
            row.update({f"{key}_mean": st.mean, f"{key}_std": st.std,
                        f"{key}_ci_low": st.ci_low, f"{key}_ci_high": st.ci_high})  # fmt: skip
        out.append(row)
    return out


def methods_note(report: Report) -> str:
    return (
        "Every objective at every strength it was trained at, on the test set: mean ± sample "
        "std over seeds (n). Plain cross-entropy, strength 0 of every objective, is one "
        "shared baseline. TS: temperature scaling, a post-hoc step applied to every trained "
        "model (T fitted on the run's validation split); it does not change accuracy. "
        f"ECE: {report.config.eval.n_bins} equal-width bins. Bold: the best mean of a "
        "column; in an ECE column every mean within the noise floor of the best. "
        f"Interval column: {INTERVAL_METHODS[report.interval]}. Every number unrounded: "
        "methods.csv."
    )


def _method_cells(report: Report) -> list[tuple[Column, list[Cell]]]:
    groups = report.arms
    return [(col, column_cells(groups, col)) for col in map(column, METHOD_COLUMNS)]


def methods_markdown(report: Report) -> list[str]:
    groups = report.arms
    header = ["objective", "setting", "n (div/fail)"]
    body = [[objective_label(g), setting_label(g.objective, g.alpha, g.teacher, short=True),
             _runs_text(g)] for g in groups]  # fmt: skip
    for col, cells in _method_cells(report):
        header.append(col.header)
        for row, cell in zip(body, cells, strict=True):
            row.append(_md(cell))
        if col.metric in METHOD_CI:
            header.append("95% CI")
            for row, text in zip(body, _ci_cells(groups, col, cells), strict=True):
                row.append(text.replace("-", "−"))
    return _pipe_table(header, body)


def methods_html(report: Report) -> Table:
    cols = _method_cells(report)
    rows = []
    for i, g in enumerate(report.arms):
        runs = str(len(g.runs))
        if g.n_diverged or g.n_failed:
            runs += f" (+{g.n_diverged} div., {g.n_failed} failed)"
        rows.append([Cell(objective_label(g)),
                     Cell(setting_label(g.objective, g.alpha, g.teacher, short=True)),
                     Cell(runs)] + [cells[i] for _, cells in cols])  # fmt: skip
    headers = ["objective", "setting", "n"] + [col.header for col, _ in cols]
    return Table("Method comparison: every objective, before and after temperature scaling",
                 headers, rows, methods_note(report))  # fmt: skip


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


def _pipe_table(header: list[str], body: list[list[str]]) -> list[str]:
    """A Markdown pipe table, one line per row."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in body),
    ]


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
    return _pipe_table(header, body)


# ---------------------------------------------------------------------------------------
# Block tables: one block of α rows per calibrator (or per confidence score)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """Rows α of one calibrator or score: its label and its columns (same headers in every
    block); the best of a column is marked within the block (the α that does best with
    this calibrator or score)."""

    label: str
    columns: list[Column]


def posthoc_blocks(report: Report) -> list[Block]:
    """'none' (the raw model) and each calibrator the report fitted, POSTHOC_COLUMNS each."""

    def cols(key_of) -> list[Column]:
        return [Column(key_of(k), header, scale, dec, better)
                for k, header, better, scale, dec in POSTHOC_COLUMNS]  # fmt: skip

    blocks = [Block("none", cols(lambda k: k))]
    blocks += [Block(c, cols(lambda k, c=c: posthoc_key(c, k))) for c in report.calibrators]
    return blocks


def selective_blocks() -> list[Block]:
    """One block per confidence score (selective.SCORES), SELECTIVE_COLUMNS each."""
    return [
        Block(
            score,
            [
                Column(f"sel_{score}_{k}", header, 100, dec, better)
                for k, header, better, dec in SELECTIVE_COLUMNS
            ],
        )  # fmt: skip
        for score in SCORES
    ]


def _block_md(groups: list[AlphaGroup], blocks: list[Block], first: str,
              ci_after: set[int]) -> list[str]:  # fmt: skip
    """ci_after: the indices of the columns followed by their 95% interval."""
    header = [first, "α", "n"]
    for j, col in enumerate(blocks[0].columns):
        header.append(col.header)
        if j in ci_after:
            header.append("95% CI")
    body = []
    for b in blocks:
        cells = [column_cells(groups, col) for col in b.columns]
        cis = [_ci_cells(groups, col, c) for col, c in zip(b.columns, cells, strict=True)]
        for i, g in enumerate(groups):
            row = [b.label, f"{g.alpha:g}", str(len(g.runs))]
            for j, (c, ci) in enumerate(zip(cells, cis, strict=True)):
                row.append(_md(c[i]))
                if j in ci_after:
                    row.append(ci[i].replace("-", "−"))
            body.append(row)
    return _pipe_table(header, body)


def _block_html(groups: list[AlphaGroup], blocks: list[Block], first: str, title: str,
                note: str) -> Table:  # fmt: skip
    rows = []
    for b in blocks:
        cells = [column_cells(groups, col) for col in b.columns]
        for i, g in enumerate(groups):
            rows.append([Cell(b.label), Cell(f"{g.alpha:g}"), Cell(str(len(g.runs)))]
                        + [c[i] for c in cells])  # fmt: skip
    return Table(title, [first, "α", "n"] + [c.header for c in blocks[0].columns], rows, note)


def posthoc_rows(report: Report) -> list[dict[str, Any]]:
    """calibrators.csv: per calibrator ('none' = the raw model) and α, each metric's mean,
    sample std and 95% interval over seeds (the report's interval method)."""
    out = []
    for b in posthoc_blocks(report):
        for g in report.groups:
            row: dict[str, Any] = {"calibrator": b.label, "alpha": g.alpha, "n_runs": len(g.runs)}
            for col, (k, *_) in zip(b.columns, POSTHOC_COLUMNS, strict=True):
                st = g.stat(col.metric)
                row.update({f"{k}_mean": st.mean, f"{k}_std": st.std,
                            f"{k}_ci_low": st.ci_low, f"{k}_ci_high": st.ci_high})  # fmt: skip
            out.append(row)
    return out


def _calibrator_words(report: Report) -> str:
    return "; ".join(f"{c}: {CALIBRATORS[c].label} ({CALIBRATORS[c].citation})"
                     for c in report.calibrators)  # fmt: skip


def posthoc_note(report: Report) -> str:
    n_bins = report.config.eval.n_bins
    return (
        "Each calibrator is fitted on the run's validation split and applied to its test "
        f"split; none: the model as trained. {_calibrator_words(report)}. ECE: {n_bins} "
        f"equal-width bins; adaptive ECE: {n_bins} equal-mass bins; accuracy changes only "
        "under vs and ms, which can move the predicted class. hist and iso set a zero "
        "probability on some test examples whose class was wrong in a validation bin of "
        "accuracy 1: their NLL counts each at about 708 nats (the smallest float64), so it "
        "is not comparable with the scaling methods'. Bold: the best α within a calibrator. "
        "Fitted parameters per run: calibrators.json; every number unrounded: "
        "calibrators.csv."
    )


def selective_note(report: Report) -> str:
    return (
        "Selective classification on the test split: accept the most confident examples "
        "first and abstain on the rest. AURC: mean error rate among the accepted over all "
        "coverages (Geifman & El-Yaniv 2017); AUGRC: mean share of all examples that are "
        "accepted and wrong (Traub et al. 2024); E-AURC: AURC minus that of the ideal "
        "ordering (Geifman et al. 2019); coverage at r% risk: the largest share of examples "
        "that can be accepted with an error rate of at most r% among them. Scores: msp, the "
        "max softmax probability (Hendrycks & Gimpel 2017); maxlogit, the largest logit; "
        "pnorm, the largest centred logit over the logits' 2-norm (Cattelan & Silva 2024; "
        "Xia et al. 2025). Lower is better for the areas, higher for coverage; bold: the "
        "best α within a score."
    )


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
    sentence = (
        f"Dataset `{c.data.name}` (val {c.data.val_size} carved from train, split seed "
        f"{c.data.split_seed}), model `{c.model.name}`, {t.epochs} epochs, {recipe}{tta}."
    )
    grid = c.sweep
    others = [o for o in grid.objectives() if o != "label_smoothing"]
    if not others:
        return sentence
    parts = []
    for name in grid.objectives():
        o = OBJECTIVES[name]
        if name == "distillation" and grid.distillation is not None:
            d = grid.distillation
            m = d.model or c.model
            size = f" {list(m.hidden)}" if m.hidden else f" width {m.width}" if m.width else ""
            teachers = ", ".join(setting_label(*k) for k in d.teacher_keys())
            parts.append(f"distillation of a `{m.name}`{size} student from teachers "
                         f"{teachers} (τ = {d.temperature:g}, hard-label weight "
                         f"{d.hard_weight:g})")  # fmt: skip
        elif o.low == o.high:
            parts.append(o.label)
        else:
            values = ", ".join(f"{v:g}" for v in grid.strengths(name))
            parts.append(f"{o.label} {o.symbol} ∈ {{{values}}}")
    seeds = ", ".join(str(s) for s in grid.seeds)
    return (f"{sentence} Objectives: {'; '.join(parts)}; plain cross-entropy is the shared "
            f"baseline; seeds {{{seeds}}}.")  # fmt: skip


def summary_markdown(report: Report, figures: list[str] | None = None) -> str:
    """summary.md. figures: the figure files written (stems), listed at the end."""
    c = report.config
    n_bins = c.eval.n_bins
    groups = report.groups
    lines = [f"# lsexp report: {c.name}", "", setting_sentence(c), ""]
    if report.alternatives:
        lines += [
            "## Method comparison",
            "",
            methods_note(report),
            "",
            *methods_markdown(report),
            "",
            "## Label smoothing",
            "",
            "The rest of this summary is about label smoothing alone: its α values, with "
            "α = 0 the shared cross-entropy baseline.",
            "",
        ]
    lines += [
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
        "",
        "## Post-hoc calibrators",
        "",
        posthoc_note(report),
        "",
        *_block_md(groups, posthoc_blocks(report), "calibrator", ci_after={1, 3}),
        "",
        "## Selective classification",
        "",
        selective_note(report),
        "",
        *_block_md(groups, selective_blocks(), "score", ci_after={0}),
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
    ls = "Label smoothing: " if report.alternatives else ""
    for table, title in HTML_TITLES.items():
        title = ls + (title[0].lower() + title[1:] if ls else title)
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
    # At most 9 columns: conf. − acc. is in summary.md and calibrators.csv only.
    narrow = [Block(b.label, b.columns[:6]) for b in posthoc_blocks(report)]
    out.append(_block_html(groups, narrow, "calibrator", f"{ls}post-hoc calibrators"
                           if ls else "Post-hoc calibrators", posthoc_note(report)))  # fmt: skip
    out.append(_block_html(groups, selective_blocks(), "score", f"{ls}selective classification"
                           if ls else "Selective classification",
                           selective_note(report)))  # fmt: skip
    if report.alternatives:
        out.insert(0, methods_html(report))
    return out
