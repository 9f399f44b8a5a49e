"""`lsexp report`: a sweep folder -> report/ (tables, figures, claims, index.html).

`write_report` is the entry point: `runs.collect` computes the numbers, `tables`,
`figures` and `html_report` turn them into files, built in a temporary folder and
swapped in whole. Nothing here trains; every number is recomputed from saved logits.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lsexp.analysis.claims import ClaimRun, ClaimSettings, claims_markdown, evaluate_claims
from lsexp.analysis.claims_alternatives import Setting, evaluate_alternative_claims
from lsexp.fsutil import current_umask
from lsexp.parallel import PARALLEL_MIN_RUNS, available_cpus, can_fork, process_pool
from lsexp.reporting.figures import (
    FIG_DPI,
    Series,
    build_figures,
    figure_captions,
    figure_plan,
    metric_series,
    projection_alphas,
    projection_points,
    reliability_grid,
    save_figure,
)
from lsexp.reporting.runs import (
    METRIC_NAMES,
    AlphaGroup,
    Report,
    collect,
    num_classes,
    run_metrics,
)
from lsexp.reporting.tables import (
    ACCURACY,
    BRIER,
    ECE,
    LOGIT_GAP,
    NLL,
    Column,
    column_cells,
    html_tables,
    methods_rows,
    posthoc_rows,
    setting_sentence,
    summary_latex,
    summary_markdown,
    summary_rows,
)
from lsexp.results.store import (
    ResultsStore,
    atomic_write_text,
    csv_text,
)

__all__ = [
    "ACCURACY", "BRIER", "ECE", "LOGIT_GAP", "NLL", "projection_alphas", "reliability_grid",
    "save_figure", "FIG_DPI", "METRIC_NAMES", "AlphaGroup", "Column", "Report", "Series",
    "build_figures", "collect", "column_cells", "evaluate_report_claims",
    "figure_captions", "html_tables", "index_html", "metric_series", "num_classes",
    "projection_points", "run_metrics", "summary_latex", "summary_markdown", "summary_rows",
    "write_report",
]  # fmt: skip

# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------


def write_report(
    sweep_dir: str | Path,
    interval: str = "t",
    n_bins: int | None = None,
    margin: float | None = None,
    claims_interval: str | None = None,
    calibrators: tuple[str, ...] | None = None,
) -> Report:
    """Compute everything and write it to <sweep_dir>/report/. Returns what was computed.

    `margin` (percentage points) and `claims_interval` override the config's `claims:`
    section for the verdicts; `interval` is the per-α interval of the summary tables;
    `calibrators` the post-hoc calibrators fitted for every run (default: ts).

    The report is built in a temporary folder beside it and swapped in whole, so the
    folder always holds one complete report: never files of an earlier one (a figure
    that is no longer drawn, say) and never half of a new one.
    """
    sweep_dir = Path(sweep_dir)
    report = collect(sweep_dir, interval, n_bins, calibrators)
    update = {k: v for k, v in (("margin", margin), ("interval", claims_interval)) if v is not None}
    if update:
        claims = report.config.claims.model_copy(update=update)
        report.config = report.config.model_copy(update={"claims": claims})
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
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it 0700
        old = final.parent / f"{tmp.name}.old"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_files(report: Report, out: Path) -> None:

    def text(name: str, content: str) -> None:
        atomic_write_text(out / name, content)
        report.files.append(out / name)

    # The figures are drawn while the claims are evaluated (worker processes for a large
    # sweep); summary.md and index.html then list only the figures written.
    with _render_figures(report, out) as rendered:
        claims = evaluate_report_claims(report)
    stems = []
    for stem, paths, note in rendered:
        if paths:
            report.files += paths
            stems.append(stem)
        elif note:
            report.warnings.append(note)
    if not rendered:
        report.warnings.append("no finished runs: no figures written")
    text("runs.csv", csv_text(report.run_rows))
    text("summary.csv", csv_text(summary_rows(report)))
    text("summary.md", summary_markdown(report, stems))
    text("summary.tex", summary_latex(report))
    text("calibrators.csv", csv_text(posthoc_rows(report)))
    if report.alternatives:
        text("methods.csv", csv_text(methods_rows(report)))
    params = {"calibrators": list(report.calibrators), "runs": report.fitted_params}
    text("calibrators.json", json.dumps(params, indent=1, allow_nan=False) + "\n")
    text("claims.json", json.dumps(claims, indent=2, allow_nan=False) + "\n")
    text("claims.md", claims_markdown(claims))
    text("index.html", index_html(report, claims, out))


PARALLEL_FIGURE_RUNS = PARALLEL_MIN_RUNS  # from this many runs: figures in worker processes


def _draw_and_save(report: Report, out: Path, stem: str, draw) -> list[Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # layout-engine chatter
        fig = draw()
        return [] if fig is None else save_figure(fig, out, stem)


_FIGURE_JOB: tuple | None = None  # (report, out, plan) for the forked figure workers


def _figure_worker(i: int) -> list[Path]:
    assert _FIGURE_JOB is not None
    report, out, plan = _FIGURE_JOB
    return _draw_and_save(report, out, plan[i][0], plan[i][1])


@contextlib.contextmanager
def _render_figures(report: Report, out: Path) -> Iterator[list[tuple[str, list[Path], str]]]:
    """Draw and save every figure of `figure_plan` into `out`; on exit the yielded list
    holds (stem, files written, note if none) in the report's order. For a sweep of
    PARALLEL_FIGURE_RUNS runs or more, on a system that can fork, the figures are drawn
    by worker processes (they inherit the report) while the body runs; else here first."""
    global _FIGURE_JOB
    plan = figure_plan(report)
    result: list[tuple[str, list[Path], str]] = []
    n_runs = sum(len(g.runs) for g in report.arms or report.groups)
    jobs = min(available_cpus(), len(plan))
    if jobs < 2 or n_runs < PARALLEL_FIGURE_RUNS or not can_fork():
        for stem, draw, note in plan:
            result.append((stem, _draw_and_save(report, out, stem, draw), note))
        yield result
        return
    _FIGURE_JOB = (report, out, plan)
    try:
        # forked: the workers inherit the report (nothing large is pickled); the parent has
        # no figure open, and each worker draws with one BLAS thread
        with process_pool(jobs) as pool:
            futures = [pool.submit(_figure_worker, i) for i in range(len(plan))]
            yield result
            for (stem, _, note), future in zip(plan, futures, strict=True):
                result.append((stem, future.result(), note))
    finally:
        _FIGURE_JOB = None


def claim_settings(report: Report) -> ClaimSettings:
    c = report.config.claims
    return ClaimSettings(margin=c.margin / 100.0, interval=c.interval, n_boot=c.n_boot,
                         seed=c.seed, n_bins=report.config.eval.n_bins)  # fmt: skip


def evaluate_report_claims(report: Report) -> list[dict[str, Any]]:
    """Verdicts on the folk claims from the done runs (diverged/failed counted, excluded):
    each run's test logits (and temperature-scaled logits) and its runs.csv row."""
    runs = [r for g in report.groups for r in _claim_runs(g)]
    if not runs:
        return []
    excluded = {g.alpha: g.n_diverged + g.n_failed for g in report.groups}
    train = report.config.train
    schedule = "triangle" if train.recipe == "airbench94" else train.schedule
    settings = claim_settings(report)
    claims = evaluate_claims(runs, num_classes(report), excluded, settings, schedule)
    if report.alternatives:
        claims += evaluate_alternative_claims(
            [Setting(g.objective, g.alpha, g.label, _claim_runs(g), g.teacher,
                     g.n_diverged + g.n_failed) for g in report.arms],
            num_classes(report), settings)  # fmt: skip
    order = {cid: i for i, cid in enumerate(CLAIM_ORDER)}
    return sorted(claims, key=lambda c: order.get(c["id"], len(order)))


# Claims in reading order: label smoothing's own (1-6, 10, 11), the alternatives' (7-9).
CLAIM_ORDER = (1, "2a", "2b", "2c", 3, 4, 5, 6, 7, 8, 9, 10, 11)


def _claim_runs(g: AlphaGroup) -> list[ClaimRun]:
    return [
        ClaimRun(alpha=g.alpha, seed=row["seed"], logits=lg.logits, labels=lg.labels,
                 values={k: v for k, v in row.items() if isinstance(v, float | int)},
                 logits_ts=lg.logits_ts, train_gap=lg.train_gap)
        for row, lg in zip(g.runs, g.logits, strict=True)
    ]  # fmt: skip


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
    intro = [setting_sentence(report.config)]
    return render_index(
        title=f"lsexp report: {report.config.name}",
        intro_md="\n\n".join(intro),
        claims=claims,
        tables=html_tables(report),
        figures=figures,
        settings_yaml=config_to_yaml(report.config),
        provenance=provenance,
    )
