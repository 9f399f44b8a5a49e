"""Runs -> numbers: read a sweep folder's runs and compute every per-run metric from the
saved logits (float64, true labels), grouped by alpha.

Nothing here trains or draws. Only runs of the folder's settings are used (see
`results.store.same_settings`); runs that diverged or failed are counted per alpha and
left out of the means. `METRICS` is the one table of per-run numbers: a new metric is one
row there plus its function in `analysis/metrics.py` (docs/architecture.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from lsexp.analysis import metrics, selective
from lsexp.analysis.calibration import apply_temperature, fit_temperature
from lsexp.analysis.posthoc import CALIBRATORS, DEFAULT_CALIBRATORS, Fitted, calibrated_metrics
from lsexp.analysis.stats import Summary, summarize
from lsexp.config import SweepConfig, baseline_of
from lsexp.errors import CalibrationError
from lsexp.parallel import PARALLEL_MIN_RUNS, available_cpus, process_pool
from lsexp.results.store import (
    ResultsStore,
    RunFileError,
    StoredRun,
    UnreadableRun,
    plan_runs,
    same_settings,
)
from lsexp.training.objectives import DEFAULT_OBJECTIVE, OBJECTIVES


class RunLogits:
    """One run's saved logits and what several metrics share, computed once: the test
    probabilities and the temperature-scaled test logits (T fitted on validation)."""

    def __init__(self, preds: dict[str, np.ndarray], n_bins: int,
                 calibrators: tuple[str, ...] = (),
                 penultimate: dict[str, np.ndarray] | None = None) -> None:  # fmt: skip
        self.logits, self.labels = preds["test_logits"], preds["test_labels"]
        self.penultimate = penultimate  # the saved sample of penultimate features, if any
        self.val_logits, self.val_labels = preds.get("val_logits"), preds.get("val_labels")
        self.train_gap = preds.get("train_true_class_gap")
        self.n_bins = n_bins
        self.calibrators = calibrators  # post-hoc calibrators to fit (posthoc.CALIBRATORS)
        self._fitted: dict[str, Fitted | None] = {}
        self._posthoc: dict[str, dict[str, float]] = {}
        self._selective: dict[str, selective.RiskCoverage] = {}
        self._selective_summary: dict[str, dict[str, float]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Fitted calibrators hold closures (not picklable); their numbers are already in
        # `_posthoc` and their parameters in the report, and `fitted` refits on demand. The
        # penultimate features stay in the worker: only their R² (computed) is needed.
        return {**self.__dict__, "_fitted": {}, "penultimate": None}

    def fitted(self, name: str) -> Fitted | None:
        """Calibrator `name` fitted on the validation split (None without one). Raises
        `CalibrationError` where it cannot be fitted (too few validation examples)."""
        if name not in self._fitted:
            cal = CALIBRATORS[name]
            self._fitted[name] = cal.fit(self.val_logits, self.val_labels) if self.has_val else None
        return self._fitted[name]

    def posthoc(self, name: str) -> dict[str, float]:
        """`posthoc.calibrated_metrics` of calibrator `name` on the test split (NaN without a
        validation split)."""
        if name not in self._posthoc:
            f = self.fitted(name)
            self._posthoc[name] = (
                {k: math.nan for k, *_ in POSTHOC_COLUMNS} if f is None
                else calibrated_metrics(f, self.logits, self.labels, self.n_bins)
            )  # fmt: skip
        return self._posthoc[name]

    def risk_coverage(self, score: str) -> selective.RiskCoverage:
        """The test split's risk-coverage curve under confidence score `score`."""
        if score not in self._selective:
            z = np.asarray(self.logits, dtype=np.float64)
            self._selective[score] = selective.risk_coverage(
                selective.confidence_scores(z, score), z.argmax(axis=1) == self.labels
            )
        return self._selective[score]

    def selective_value(self, score: str, key: str) -> float:
        """One number of `RiskCoverage.summary` (aurc, coverage_at_1pct_risk, ...)."""
        if score not in self._selective_summary:
            self._selective_summary[score] = self.risk_coverage(score).summary()
        return self._selective_summary[score][key]

    @cached_property
    def class_separation(self) -> float:
        """Class separation R² of the saved penultimate sample (NaN without one)."""
        pen = self.penultimate
        if pen is None or len(np.unique(pen["labels"])) < 2:
            return math.nan
        return M.class_separation_r2(pen["features"], pen["labels"])

    @property
    def has_val(self) -> bool:
        return self.val_labels is not None and len(self.val_labels) > 0

    @cached_property
    def panel(self) -> dict[str, float]:
        """The estimator panel (``metrics.calibration_panel``) on the test set."""
        return M.calibration_panel(self.probs, self.labels, self.n_bins)

    @cached_property
    def panel_ts(self) -> dict[str, float]:
        """The estimator panel after temperature scaling (NaN without a validation split)."""
        if self.probs_ts is None:
            return {k: math.nan for k in M.calibration_panel_labels(self.n_bins)}
        return M.calibration_panel(self.probs_ts, self.labels, self.n_bins)

    @cached_property
    def probs(self) -> np.ndarray:
        return metrics.softmax(self.logits)

    @cached_property
    def temperature(self) -> float:
        """T of temperature scaling (Guo et al. 2017); NaN without a validation split."""
        if not self.has_val:
            return math.nan
        return fit_temperature(self.val_logits, self.val_labels)

    @cached_property
    def logits_ts(self) -> np.ndarray | None:
        t = self.temperature
        return None if math.isnan(t) else apply_temperature(self.logits, t)

    @cached_property
    def probs_ts(self) -> np.ndarray | None:
        return None if self.logits_ts is None else metrics.softmax(self.logits_ts)


def _ts(fn: Callable[[RunLogits], float]) -> Callable[[RunLogits], float]:
    """A metric after temperature scaling: NaN where no T could be fitted."""
    return lambda r: math.nan if r.logits_ts is None else fn(r)


@dataclass(frozen=True)
class Metric:
    """One per-run number of the report and how every table shows it.

    `key` names it in runs.csv and summary.csv (`<key>_mean`, ...); `compute` gets the
    run's `RunLogits`; `better` marks the best mean ("max", "min", or "" for a number
    that has no better direction); `scale` 100 shows a fraction in % (pp for a signed
    one); `md` lists the summary.md tables it is in (1: the main table, 2: temperature
    scaling), `html` the index.html table, `tex` whether summary.tex has it.
    """

    key: str
    header: str
    compute: Callable[[RunLogits], float]
    better: str = ""
    scale: float = 1.0
    decimals: int = 2
    md: tuple[int, ...] = (1,)
    html: int = 2
    tex: str = ""  # its header in summary.tex ("" = not in summary.tex)
    cli: str = ""  # its header in the table `lsexp report` prints ("" = not there)
    floor: str = ""  # the key of its noise floor: means within it of the best tie as best


M = metrics
FLOOR_DRAWS = 200  # label draws of the ECE noise floor (metrics.ece_noise_floor), seed 0
METRICS: list[Metric] = [
    Metric("accuracy", "accuracy (%)", lambda r: M.accuracy(r.probs, r.labels), "max", 100, 2,
           md=(1,), html=1, tex="Acc. (\\%)", cli="accuracy"),
    Metric("val_accuracy", "val. accuracy (%)",
           lambda r: M.accuracy(M.softmax(r.val_logits), r.val_labels) if r.has_val else math.nan,
           "max", 100, 2, md=(2,), html=2),
    Metric("nll", "NLL", lambda r: M.nll_from_logits(r.logits, r.labels), "min", 1, 3,
           md=(1, 2), html=1, tex="NLL", cli="NLL"),
    Metric("brier", "Brier", lambda r: M.brier(r.probs, r.labels), "min", 1, 4, md=(1,),
           html=1, tex="Brier"),
    Metric("ece", "ECE (%)", lambda r: M.ece(r.probs, r.labels, r.n_bins), "min", 100, 2,
           md=(1, 2), html=1, tex="ECE (\\%)", cli="ECE", floor="ece_floor"),
    Metric("ece_floor", "ECE floor (%)",
           lambda r: M.ece_noise_floor(r.probs, r.n_bins, FLOOR_DRAWS).mean, "", 100, 2,
           md=(1, 2), html=1),
    Metric("mce", "MCE (%)", lambda r: M.mce(r.probs, r.labels, r.n_bins), "min", 100, 2,
           md=(), html=0),
    Metric("adaptive_ece", "adaptive ECE (%)",
           lambda r: M.adaptive_ece(r.probs, r.labels, r.n_bins), "min", 100, 2, md=(1,),
           html=1, tex="AdaECE (\\%)", floor="ece_floor"),
    Metric("classwise_ece", "classwise ECE (%)",
           lambda r: M.classwise_ece(r.probs, r.labels, r.n_bins), "min", 100, 2, md=(1,),
           html=0, floor="ece_floor"),
    Metric("mean_confidence", "mean conf. (%)", lambda r: M.mean_confidence(r.probs), "", 100,
           2, md=(1,)),
    Metric("overconfidence", "conf. − acc. (pp)", lambda r: M.overconfidence(r.probs, r.labels),
           "", 100, 2, md=(1,), html=1, cli="conf − acc"),
    Metric("logit_gap", "logit gap", lambda r: M.logit_gap(r.logits), "", 1, 2, md=(1,)),
    Metric("temperature", "T", lambda r: r.temperature, "", 1, 2, md=(2,)),
    Metric("nll_ts", "NLL after TS", _ts(lambda r: M.nll_from_logits(r.logits_ts, r.labels)),
           "min", 1, 3, md=(2,)),
    Metric("ece_ts", "ECE after TS (%)", _ts(lambda r: M.ece(r.probs_ts, r.labels, r.n_bins)),
           "min", 100, 2, md=(2,), cli="ECE (TS)", floor="ece_ts_floor"),
    Metric("ece_ts_floor", "ECE floor after TS (%)",
           _ts(lambda r: M.ece_noise_floor(r.probs_ts, r.n_bins, FLOOR_DRAWS).mean), "", 100, 2,
           md=(2,), html=2),
    Metric("adaptive_ece_ts", "adaptive ECE after TS (%)",
           _ts(lambda r: M.adaptive_ece(r.probs_ts, r.labels, r.n_bins)), "min", 100, 2,
           md=(2,), html=0, floor="ece_ts_floor"),
]  # fmt: skip
# The estimator panel (every calibration verdict says whether it holds under each): raw in
# summary.md table 3, after temperature scaling in table 4. Nothing is marked best in it:
# it is there to show whether the estimators agree, not to rank.
PANEL_HEADERS = {
    **{f"ece_width_{m}": f"ECE {m} eq.-width (%)" for m in M.PANEL_BINS},
    **{f"ece_mass_{m}": f"ECE {m} eq.-mass (%)" for m in M.PANEL_BINS},
    "classwise_ece": "classwise ECE (%)",
    "smooth_ece": "smooth ECE (%)",
    "debiased_l2_ce": "debiased l2 CE (%)",
}
assert list(PANEL_HEADERS) == list(M.calibration_panel_labels())
# index.html splits them into tables of at most 9 columns: binned ECEs (3), the other
# estimators before and after TS (4), binned ECEs after TS (5).
METRICS += [
    Metric(f"panel_{key}", header, (lambda r, k=key: r.panel[k]), "", 100, 2, md=(3,),
           html=3 if key.startswith("ece_") else 4)
    for key, header in PANEL_HEADERS.items()
]  # fmt: skip
METRICS += [
    Metric(f"panel_ts_{key}", header + (" TS" if not key.startswith("ece_") else ""),
           (lambda r, k=key: r.panel_ts[k]), "", 100, 2, md=(4,),
           html=5 if key.startswith("ece_") else 4)
    for key, header in PANEL_HEADERS.items()
]  # fmt: skip
METRICS += [
    Metric("brier_ts", "Brier after TS", _ts(lambda r: M.brier(r.probs_ts, r.labels)), "min", 1,
           4, md=(), html=0),
    # Class separation R² (Kornblith et al. 2021) of the penultimate features saved per run
    # (the test examples of the projection's 3 classes: `engine.penultimate_sample`).
    Metric("class_separation", "class separation R²", lambda r: r.class_separation, "", 1, 3,
           md=(), html=0),
]  # fmt: skip
METRICS.append(
    Metric("train_gap", "train true-class gap",
           lambda r: math.nan if r.train_gap is None else float(np.mean(r.train_gap)), "", 1,
           2, md=(), html=0)
)  # fmt: skip


# Selective classification (summary.md and index.html "Selective classification"): per score,
# the numbers of `analysis.selective.RiskCoverage`, in % (coverage at a risk: higher is
# better; the areas: lower).
SELECTIVE_COLUMNS = (
    ("aurc", "AURC (%)", "min", 2),
    ("augrc", "AUGRC (%)", "min", 2),
    ("eaurc", "E-AURC (%)", "min", 2),
    ("coverage_at_1pct_risk", "cov. at 1% risk (%)", "max", 1),
    ("coverage_at_5pct_risk", "cov. at 5% risk (%)", "max", 1),
)
SCORE_SHORT = {"msp": "MSP", "maxlogit": "max logit", "pnorm": "p-norm"}
METRICS += [
    Metric(f"sel_{score}_{key}", f"{header[:-4]} {SCORE_SHORT[score]} (%)",
           (lambda r, s=score, k=key: r.selective_value(s, k)), better, 100, dec, md=(),
           html=0)
    for score in selective.SCORES
    for key, header, better, dec in SELECTIVE_COLUMNS
]  # fmt: skip

# Metrics after each post-hoc calibrator ("Post-hoc calibrators", calibrators.csv): the panel of
# `posthoc.calibrated_metrics`, per calibrator chosen with `lsexp report --calibrators`.
POSTHOC_COLUMNS = (
    ("accuracy", "accuracy (%)", "max", 100, 2),
    ("nll", "NLL", "min", 1, 3),
    ("brier", "Brier", "min", 1, 4),
    ("ece", "ECE (%)", "min", 100, 2),
    ("adaptive_ece", "adaptive ECE (%)", "min", 100, 2),
    ("classwise_ece", "classwise ECE (%)", "min", 100, 2),
    ("overconfidence", "conf. − acc. (pp)", "", 100, 2),
)


def posthoc_key(calibrator: str, key: str) -> str:
    """runs.csv column of metric `key` after `calibrator`, e.g. post_vs_ece."""
    return f"post_{calibrator}_{key}"


def posthoc_metrics(calibrators: tuple[str, ...]) -> list[Metric]:
    """The per-run numbers after each calibrator, as `Metric` rows (runs.csv columns, not
    in the summary tables: the calibrators are a report option, not a fixed column set)."""
    return [
        Metric(
            posthoc_key(c, key),
            header,
            (lambda r, c=c, k=key: r.posthoc(c)[k]),
            better,
            scale,
            dec,
            md=(),
            html=0,
        )  # fmt: skip
        for c in calibrators
        for key, header, better, scale, dec in POSTHOC_COLUMNS
    ]


def metric_table() -> list[Metric]:
    """`METRICS` as it is now (tests register a row by replacing it)."""
    return METRICS


def metric(key: str) -> Metric:
    return next(m for m in metric_table() if m.key == key)


def metric_names() -> tuple[str, ...]:
    return tuple(m.key for m in metric_table())


METRIC_NAMES = metric_names()  # as registered at import; `metric_names()` sees later rows
N_BOOT = 200  # bootstrap resamples of the test set for each run's ECE interval


@dataclass
class AlphaGroup:
    """The runs of one setting: an objective at one strength (`alpha`: label smoothing's α,
    focal's γ, ...; for distillation 0, the setting being its `teacher`)."""

    alpha: float
    runs: list[dict[str, Any]] = field(default_factory=list)  # per-run rows of done runs
    n_diverged: int = 0
    n_failed: int = 0
    histories: list[list[dict[str, float]]] = field(default_factory=list)
    stored: list[StoredRun] = field(default_factory=list)
    logits: list[RunLogits] = field(default_factory=list)  # per done run, as `runs`
    interval: str = "t"  # how `stat` builds its 95 % interval: "t" or "bootstrap"
    objective: str = DEFAULT_OBJECTIVE
    teacher: tuple[str, float] | None = None  # distillation: the teacher's setting

    @property
    def key(self) -> tuple[str, float, tuple[str, float] | None]:
        return (self.objective, self.alpha, self.teacher)

    @property
    def is_baseline(self) -> bool:
        """Plain cross-entropy: the shared baseline of every objective."""
        return self.objective == DEFAULT_OBJECTIVE and self.alpha == 0

    @property
    def label(self) -> str:
        """How tables name the setting: "α=0.1", "focal loss γ=2", "distillation, teacher
        α=0.1", "cross-entropy" for the baseline."""
        return setting_label(self.objective, self.alpha, self.teacher)

    @property
    def pooled_logits(self) -> list[np.ndarray]:
        """Each done run's test logits, in the order of `runs`."""
        return [lg.logits for lg in self.logits]

    @property
    def pooled_labels(self) -> list[np.ndarray]:
        return [lg.labels for lg in self.logits]

    def stat(self, name: str) -> Summary:
        """Summary over the done runs; a run without this number counts as NaN (a
        calibrator that report did not fit)."""
        return summarize([r.get(name, math.nan) for r in self.runs], self.interval)


def setting_label(objective: str, strength: float, teacher: tuple[str, float] | None = None,
                  short: bool = False) -> str:  # fmt: skip
    """A setting in words (see AlphaGroup.label); `short` drops the objective's name."""
    o = OBJECTIVES[objective]
    if objective == DEFAULT_OBJECTIVE and strength == 0:
        return "cross-entropy"
    if objective == "distillation":
        assert teacher is not None
        inner = setting_label(*teacher)
        return f"teacher {inner}" if short else f"distillation, teacher {inner}"
    if o.low == o.high:  # FLSD-53: the strength only names it
        return "FLSD-53"
    value = f"{o.symbol}={strength:g}"
    if objective == DEFAULT_OBJECTIVE or short:
        return value
    return f"{o.label} {value}"


@dataclass
class Report:
    sweep_dir: Path
    config: SweepConfig
    groups: list[AlphaGroup]
    """Label smoothing's settings (with the shared baseline α = 0), by α: every part of the
    report about label smoothing reads these."""
    run_rows: list[dict[str, Any]]
    n_unreadable: int
    n_other_settings: int
    files: list[Path]
    warnings: list[str]
    interval: str = "t"
    calibrators: tuple[str, ...] = DEFAULT_CALIBRATORS
    """Post-hoc calibrators fitted for every run (`lsexp report --calibrators`)."""
    fitted_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """run folder name -> {calibrator: its fitted parameters} (report/calibrators.json)."""
    arms: list[AlphaGroup] = field(default_factory=list)
    """Every setting of every objective, in plan order: the baseline, label smoothing, the
    other objectives, distillation students. Equal to `groups` for a sweep of label
    smoothing alone."""

    @property
    def alternatives(self) -> bool:
        """Whether the sweep trained objectives other than label smoothing."""
        return any(g.objective != DEFAULT_OBJECTIVE for g in self.arms)

    @property
    def interval_label(self) -> str:
        return {"t": "95% t-interval", "bootstrap": "95% bootstrap interval"}[self.interval]


def run_metrics(
    preds: dict[str, np.ndarray], n_bins: int, calibrators: tuple[str, ...] = ()
) -> dict[str, float]:
    """Every per-run number of the report, from saved logits (test; val for fitting T and
    the calibrators): one value per `METRICS` row and per `posthoc_metrics(calibrators)`
    row, the run's ECE bootstrap interval over test examples, and the test-set size."""
    return _metrics(RunLogits(preds, n_bins, calibrators))


def _metrics(run: RunLogits) -> dict[str, float]:
    n_bins = run.n_bins
    table = metric_table() + posthoc_metrics(run.calibrators)
    row = {m.key: float(m.compute(run)) for m in table}
    low, high = metrics.ece_bootstrap_interval(run.probs, run.labels, n_bins=n_bins,
                                               n_boot=N_BOOT)  # fmt: skip
    row["ece_boot_low"], row["ece_boot_high"] = low, high
    row["n_test"] = len(run.labels)
    return row


def _run_row(
    run: StoredRun, n_bins: int, calibrators: tuple[str, ...] = ()
) -> tuple[dict[str, Any], RunLogits]:
    logits = RunLogits(run.predictions(), n_bins, calibrators, run.penultimate())
    row: dict[str, Any] = {"status": run.status}
    try:
        row.update(_metrics(logits))
    except CalibrationError as e:
        raise CalibrationError(f"run {run.path.name}: {e}") from None
    row["run_dir"] = run.path.name
    return row, logits


ReadRun = tuple[dict[str, Any], RunLogits, list[dict[str, float]], dict[str, Any] | None] | str


def _read_one(run: StoredRun, n_bins: int, calibrators: tuple[str, ...], named: bool) -> ReadRun:
    """One done run: (its runs.csv row, its RunLogits, its history, the fitted parameters
    of each calibrator or None without a validation split), or why it cannot be read."""
    try:
        run.check()
        row, logits = _run_row(run, n_bins, calibrators)
        history = run.history()
    except (OSError, RunFileError) as e:
        return f"{e}; the next `lsexp sweep` trains it again"
    params = None
    if calibrators and logits.has_val:
        params = {c: logits.fitted(c).params for c in calibrators}  # type: ignore[union-attr]
    elif calibrators and named:
        raise CalibrationError(
            f"run {run.path.name} has no validation split, so no calibrator can be fitted; "
            "set data.val_size > 0 and rerun the sweep, or leave out --calibrators"
        )
    return row, logits, history, params


def _read_in_worker(args: tuple) -> ReadRun:
    return _read_one(*args)


def _read_all(
    pending: list[tuple[AlphaGroup, StoredRun]],
    n_bins: int,
    calibrators: tuple[str, ...],
    named: bool,
    jobs: int | None,
) -> list[ReadRun]:
    jobs = available_cpus() if jobs is None else max(1, int(jobs))
    jobs = min(jobs, len(pending))
    args = [(run, n_bins, calibrators, named) for _, run in pending]
    if jobs < 2 or len(pending) < PARALLEL_MIN_RUNS:
        return [_read_one(*a) for a in args]
    # fork on Linux: spawn re-runs the caller's __main__ script in every worker, so a
    # script calling lsexp without an `if __name__ == "__main__":` guard would break. The
    # parent has drawn nothing yet (figures come after collect), and numpy's BLAS re-forms
    # its thread pool after a fork; the workers use one BLAS thread each.
    with process_pool(jobs) as pool:
        return list(pool.map(_read_in_worker, args, chunksize=max(1, len(args) // (4 * jobs))))


def collect(
    sweep_dir: Path,
    interval: str = "t",
    n_bins: int | None = None,
    calibrators: tuple[str, ...] | None = None,
    jobs: int | None = None,
) -> Report:
    """Read a sweep folder and compute per-run metrics and per-alpha groups.

    The runs are independent: with `jobs` > 1 (default: the CPUs this process may use,
    when there are at least `PARALLEL_MIN_RUNS` runs) they are read in that many worker
    processes (forked on Linux), each with one BLAS thread; the numbers are the same
    either way.

    `n_bins` (default: the config's eval.n_bins) sets every binned metric; it is a report
    setting, recomputed from the saved logits, never a reason to retrain. `calibrators`
    (names of `posthoc.CALIBRATORS`) are fitted on each run's validation split; named ones
    must be fittable on every run (`CalibrationError`, exit 2, otherwise: nothing is
    written), the default (None: temperature scaling) is skipped where a run has no
    validation split.
    """
    named = calibrators is not None
    calibrators = tuple(calibrators) if named else DEFAULT_CALIBRATORS
    fitted_params: dict[str, dict[str, Any]] = {}
    store = ResultsStore(sweep_dir)
    config = store.load_config()
    if n_bins is not None:
        config = config.model_copy(
            update={"eval": config.eval.model_copy(update={"n_bins": n_bins})}
        )
    runs, unreadable = store.scan()
    notes: list[str] = [f"skipped {u.path.name}: {u.reason}" for u in unreadable]
    n_bins = config.eval.n_bins
    groups: dict[tuple, AlphaGroup] = {}
    rows: list[dict[str, Any]] = []
    pending: list[tuple[AlphaGroup, StoredRun]] = []  # done runs, read below
    other = 0
    arm_of = _arm_finder(config, runs)
    multi = any(run.objective != DEFAULT_OBJECTIVE for run in runs)
    for run in runs:
        key = arm_of(run) if same_settings(run.record, config) else None
        if key is None:
            other += 1
            continue
        g = groups.setdefault(key, AlphaGroup(key[1], objective=key[0], teacher=key[2]))
        head = _row_head(g, run.seed, multi)
        if run.status == "diverged":
            g.n_diverged += 1
            rows.append({**head, "status": "diverged", "run_dir": run.path.name})
            continue
        if run.status != "done":
            g.n_failed += 1
            rows.append({**head, "status": run.status, "run_dir": run.path.name})
            continue
        pending.append((g, run))
    for (g, run), read in zip(pending, _read_all(pending, n_bins, calibrators, named, jobs),
                              strict=True):  # fmt: skip
        if isinstance(read, str):
            notes.append(f"skipped {run.path.name}: {read}")
            unreadable.append(UnreadableRun(run.path, read))
            continue
        row, logits, history, params = read
        row = {**_row_head(g, run.seed, multi), **row}
        if params is not None:
            fitted_params[run.path.name] = params
        g.runs.append(row)
        g.logits.append(logits)
        g.histories.append(history)
        g.stored.append(run)
        rows.append(row)
    if other:
        notes.append(f"ignored {other} run(s) of other settings (different config_hash)")
    arms = sorted(groups.values(), key=_arm_order)
    position = {id(g): i for i, g in enumerate(arms)}
    order = {id(row): (position[id(row.pop("_group"))], row["seed"]) for row in rows}
    rows.sort(key=lambda row: order[id(row)])
    for g in arms:
        g.interval = interval
    ls = [g for g in arms if g.objective == DEFAULT_OBJECTIVE]
    return Report(sweep_dir, config, ls, rows, len(unreadable), other, [], notes, interval,
                  calibrators, fitted_params, arms)  # fmt: skip


def _row_head(g: AlphaGroup, seed: int, multi: bool) -> dict[str, Any]:
    """The first columns of a runs.csv row: alpha and seed for a sweep of label smoothing
    alone (as always), else objective, strength, teacher and seed."""
    if not multi:
        return {"_group": g, "alpha": g.alpha, "seed": seed}
    teacher = "" if g.teacher is None else setting_label(*g.teacher)
    return {"_group": g, "objective": g.objective, "strength": g.alpha, "teacher": teacher,
            "setting": g.label, "seed": seed}  # fmt: skip


def _arm_order(g: AlphaGroup) -> tuple:
    teacher = (
        () if g.teacher is None else _arm_order(AlphaGroup(g.teacher[1], objective=g.teacher[0]))
    )
    return (not g.is_baseline, list(OBJECTIVES).index(g.objective), teacher, g.alpha)


def _arm_finder(config: SweepConfig, runs: list[StoredRun]):
    """run -> its setting (objective, strength, teacher), with strength 0 of any objective
    as the shared baseline; None for a distillation student whose distillation settings
    (τ, hard-label weight, student model) are not the config's, or whose teacher is unknown."""
    known: dict[str, tuple[str, float]] = {}
    for run in runs:
        if isinstance(run.record.get("run_id"), str):
            known[run.record["run_id"]] = baseline_of(run.objective, run.strength)
    expected = None
    if config.sweep.distillation is not None:
        for spec in plan_runs(config):
            known.setdefault(spec.run_id, baseline_of(spec.objective, spec.alpha))
            if spec.objective == "distillation":
                expected = spec.identity["distillation"]

    def arm_of(run: StoredRun) -> tuple | None:
        if run.objective != "distillation":
            return (*baseline_of(run.objective, run.strength), None)
        identity = run.record.get("identity") or {}
        teacher = known.get(str(run.teacher))
        if expected is None or identity.get("distillation") != expected or teacher is None:
            return None
        return ("distillation", 0.0, teacher)

    return arm_of


def num_classes(report: Report) -> int:
    for g in report.groups:
        if g.pooled_logits:
            return int(g.pooled_logits[0].shape[1])
    return {"cifar100": 100}.get(report.config.data.name, 10)
