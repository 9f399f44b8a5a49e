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

from lsexp import metrics, plots
from lsexp.calibration import apply_temperature, fit_temperature
from lsexp.claims import RunResult as ClaimRun
from lsexp.claims import claims_markdown, evaluate_claims
from lsexp.config import SweepConfig
from lsexp.stats import INTERVAL_METHODS, Summary, summarize
from lsexp.store import (
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


def _fmt(x: float, digits: int = 4) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _pm(s: Summary, digits: int = 4, scale: float = 1.0) -> str:
    if s.n == 0:
        return "—"
    if s.n == 1:
        return f"{s.mean * scale:.{digits}f} (n=1)"
    return f"{s.mean * scale:.{digits}f} ± {s.std * scale:.{digits}f}"


def _ci(s: Summary) -> str:
    return "—" if not math.isfinite(s.ci_low) else f"[{s.ci_low:.4f}, {s.ci_high:.4f}]"


def summary_markdown(report: Report) -> str:
    c = report.config
    n_bins = c.eval.n_bins
    lines = [
        f"# lsexp report: {c.name}",
        "",
        f"Dataset `{c.data.name}` (val {c.data.val_size} carved from train, split seed "
        f"{c.data.split_seed}), model `{c.model.name}`, {c.train.epochs} epochs, "
        f"{c.train.optimizer} lr {c.train.lr:g}, {c.train.schedule} schedule, batch "
        f"{c.train.batch_size}, weight decay {c.train.weight_decay:g}, augment "
        f"{c.train.augment}.",
        "",
        f"Test-set metrics on true labels; mean ± std over seeds (n per row). ECE, MCE and "
        f"classwise ECE use {n_bins} equal-width bins; adaptive ECE uses {n_bins} "
        f"equal-mass bins. Interval column: {INTERVAL_METHODS[report.interval]}.",
        "",
        "| α | n (div/fail) | accuracy | 95% CI | NLL | ECE | 95% CI | adaptive ECE "
        "| classwise ECE | Brier | mean conf. | conf. − acc. | logit gap |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g in report.groups:
        acc, ece = g.stat("accuracy"), g.stat("ece")
        lines.append(
            f"| {g.alpha:g} | {len(g.runs)} ({g.n_diverged}/{g.n_failed}) "
            f"| {_pm(acc)} | {_ci(acc)} "
            f"| {_pm(g.stat('nll'))} | {_pm(ece)} | {_ci(ece)} | {_pm(g.stat('adaptive_ece'))} "
            f"| {_pm(g.stat('classwise_ece'))} | {_pm(g.stat('brier'))} "
            f"| {_pm(g.stat('mean_confidence'))} | {_pm(g.stat('overconfidence'), 4)} "
            f"| {_pm(g.stat('logit_gap'), 2)} |"
        )
    lines += [
        "",
        "conf. − acc. > 0 means over-confident, < 0 under-confident. Logit gap = top logit "
        "minus the mean of the others, averaged over test examples.",
        "",
        "Figures: `accuracy_vs_alpha.png`, `ece_vs_alpha.png`, `ece_ts_vs_alpha.png`, "
        "`reliability.png`, `logit_gap.png`, `projection.png`. Per-run numbers (with a "
        f"{N_BOOT}-resample bootstrap interval of each run's ECE over test examples): "
        "`runs.csv`.",
        "",
        "## Temperature scaling and a less biased ECE",
        "",
        "T minimises the validation NLL of softmax(logits / T) (Guo et al. 2017) and is "
        "applied to the test logits. Debiased ECE: the l2 calibration error estimator of "
        f"Kumar et al. 2019 with {n_bins} equal-mass bins (plug-in ECE is biased upward; "
        "compare small differences with this column).",
        "",
        "| α | T | NLL | NLL after TS | ECE | ECE after TS | adaptive ECE after TS "
        "| debiased ECE (l2) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in report.groups:
        lines.append(
            f"| {g.alpha:g} | {_pm(g.stat('temperature'), 3)} | {_pm(g.stat('nll'))} "
            f"| {_pm(g.stat('nll_ts'))} | {_pm(g.stat('ece'))} | {_pm(g.stat('ece_ts'))} "
            f"| {_pm(g.stat('adaptive_ece_ts'))} | {_pm(g.stat('debiased_ece'))} |"
        )
    if report.warnings:
        lines += ["", "## Notes", ""] + [f"- {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


def summary_latex(report: Report) -> str:
    """booktabs table: mean ± std over seeds; best mean per column in bold."""
    cols = [("accuracy", "Acc. (\\%)", 100.0), ("nll", "NLL", 1.0), ("ece", "ECE (\\%)", 100.0),
            ("adaptive_ece", "AdaECE (\\%)", 100.0), ("brier", "Brier", 1.0)]  # fmt: skip
    best: dict[str, float] = {}
    for name, _, _ in cols:
        means = [g.stat(name).mean for g in report.groups if g.runs]
        if means:
            best[name] = min(means) if name in LOWER_IS_BETTER else max(means)
    lines = [
        "% Generated by lsexp report. Requires \\usepackage{booktabs}.",
        "\\begin{tabular}{r" + "c" * (len(cols) + 1) + "}",
        "\\toprule",
        "$\\alpha$ & $n$ & " + " & ".join(c[1] for c in cols) + " \\\\",
        "\\midrule",
    ]
    for g in report.groups:
        cells = []
        for name, _, scale in cols:
            s = g.stat(name)
            text = "--" if s.n == 0 else (
                f"{s.mean * scale:.2f}" if s.n == 1 else
                f"{s.mean * scale:.2f} $\\pm$ {s.std * scale:.2f}"
            )  # fmt: skip
            if s.n and name in best and s.mean == best[name]:
                text = f"\\textbf{{{text}}}"
            cells.append(text)
        lines.append(f"{g.alpha:g} & {len(g.runs)} & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


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

    text("runs.csv", csv_text(report.run_rows))
    text("summary.csv", csv_text(summary_rows(report)))
    text("summary.md", summary_markdown(report))
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

HTML_COLUMNS = [
    ("alpha", "α"), ("n_runs", "n"), ("n_diverged", "diverged"), ("n_failed", "failed"),
    ("accuracy_mean", "accuracy"), ("accuracy_std", "± std"), ("nll_mean", "NLL"),
    ("ece_mean", "ECE"), ("ece_std", "± std"), ("adaptive_ece_mean", "adaptive ECE"),
    ("classwise_ece_mean", "classwise ECE"), ("debiased_ece_mean", "debiased ECE (l2)"),
    ("brier_mean", "Brier"), ("overconfidence_mean", "conf. − acc."),
    ("temperature_mean", "T"), ("ece_ts_mean", "ECE after TS"), ("nll_ts_mean", "NLL after TS"),
    ("logit_gap_mean", "logit gap"),
]  # fmt: skip


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
    intro = summary_markdown(report).split("\n\n")[1:3]
    return render_index(
        title=f"lsexp report: {report.config.name}",
        intro_md="\n\n".join(intro),
        claims=claims,
        summary_rows=[{**row, "alpha": f"{row['alpha']:g}"} for row in summary_rows(report)],
        summary_columns=HTML_COLUMNS,
        figures=figures,
        settings_yaml=config_to_yaml(report.config),
        provenance=provenance,
    )
