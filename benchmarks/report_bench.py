"""How the cost of `lsexp report` grows with the sweep: a synthetic sweep, timed.

Writes a sweep folder of 20 settings x `--seeds` runs (default 10: 200 runs) with
real-shaped predictions (5,000 validation and 10,000 test examples, 10 classes; one test
set shared by every run, as in a real sweep), the penultimate-feature sample and the
training-set logit gaps each run saves: label smoothing at 7 α, focal loss γ = 1, 2, 3,
FLSD-53, confidence penalty β = 0.1, 0.3, mixup a = 0.1, 0.2, 0.4, CutMix a = 0.5, 1 and
distillation from the α = 0 and α = 0.1 teachers. Then it times `lsexp report` on it in a
fresh process with every feature on: all five post-hoc calibrators, claims 1-11 with their
bootstrap (1,000 resamples, the default), the estimator panel, the method comparison,
every figure. Prints the total, the cost per run, and the phases (collect: per-run metrics
in worker processes; claims, figures and files: the claims evaluated while worker
processes draw the figures), and writes them as JSON with --json.

    python benchmarks/report_bench.py                 # 200 runs
    python benchmarks/report_bench.py --seeds 2       # 40 runs: how it grows
    python benchmarks/report_bench.py --alphas 20     # label smoothing alone, 20 α

Nothing here is a test: the numbers depend on the machine. The logits are drawn so that
small α (and weak regularisers) are over-confident and strong ones under-confident, with
accuracy near 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lsexp.config import validate  # noqa: E402
from lsexp.results.store import ResultsStore, config_hash, plan_runs  # noqa: E402

K, N_VAL, N_TEST = 10, 5000, 10_000


def _logits(rng, labels: np.ndarray, alpha: float, acc: float) -> np.ndarray:
    n = labels.size
    pred = np.where(rng.uniform(size=n) < acc, labels, (labels + rng.integers(1, K, n)) % K)
    scale = 9.0 * (1 - alpha) ** 2 + 1.0  # sharper for small α: over-confident
    z = rng.normal(0, 1, (n, K))
    z[np.arange(n), pred] += scale * rng.uniform(0.3, 1.0, n)
    return z.astype(np.float32)


# The mixed sweep: 20 settings, each with the "smoothing-like" strength its logits get.
MIXED_SWEEP = {
    "label_smoothing": [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5],
    "focal": [1.0, 2.0, 3.0],
    "focal_adaptive": [53],
    "confidence_penalty": [0.1, 0.3],
    "mixup": [0.1, 0.2, 0.4],
    "cutmix": [0.5, 1.0],
    "distillation": {"teachers": [{"label_smoothing": 0.0}, {"label_smoothing": 0.1}]},
}
_LIKE_ALPHA = {"focal": 0.05, "focal_adaptive": 0.002, "confidence_penalty": 0.3,
               "mixup": 0.4, "cutmix": 0.3, "distillation": 0.0}  # fmt: skip


def _penultimate(rng, labels: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    idx = np.concatenate([np.flatnonzero(labels == k)[:300] for k in (0, 1, 2)])
    y = labels[idx]
    centres = rng.normal(0, 1, (3, 64))
    spread = 1.0 - 0.5 * alpha  # tighter clusters with more smoothing
    feats = centres[y] + spread * rng.normal(0, 1, (idx.size, 64))
    return {"features": feats.astype(np.float32), "labels": y.astype(np.int64),
            "templates": rng.normal(0, 1, (3, 64)).astype(np.float32),
            "classes": np.array([0, 1, 2], dtype=np.int64)}  # fmt: skip


def write_sweep(out: Path, seeds: list[int], alphas: list[float] | None = None) -> int:
    """The synthetic sweep: the mixed objectives of MIXED_SWEEP, or label smoothing alone
    at `alphas`."""
    grid = {"alpha": alphas} if alphas is not None else dict(MIXED_SWEEP)
    config = validate(
        {
            "name": "report_bench",
            "data": {"name": "fashion_mnist", "val_size": N_VAL},
            "model": {"name": "mlp", "hidden": [32]},
            "train": {"epochs": 3},
            "sweep": {**grid, "seeds": seeds},
        },
        "<report_bench>",
    )
    store = ResultsStore(out)
    store.write_sweep_file(config)
    rng0 = np.random.default_rng(0)
    test_labels = rng0.integers(0, K, N_TEST)
    val_labels = rng0.integers(0, K, N_VAL)
    specs = plan_runs(config)
    for i, spec in enumerate(specs):
        ls = spec.objective == "label_smoothing"
        like = spec.alpha if ls else _LIKE_ALPHA[spec.objective] * max(spec.alpha, 1.0)
        like = min(like, 0.95)
        rng = np.random.default_rng([i, spec.seed])
        acc = 0.9 - 0.05 * like + rng.normal(0, 0.003)
        preds = {
            "val_logits": _logits(rng, val_labels, like, acc),
            "val_labels": val_labels,
            "test_logits": _logits(rng, test_labels, like, acc),
            "test_labels": test_labels,
        }
        cap = np.log(K * (1 - like) / like + 1) if like > 0 else 12.0
        preds["train_true_class_gap"] = rng.normal(0.9 * cap, 0.1 * cap, 5000).astype(np.float32)
        which = {"alpha": spec.alpha} if ls else {"objective": spec.objective,
                                                   "strength": spec.alpha}  # fmt: skip
        record = {
            "run_id": spec.run_id, "config_hash": config_hash(config), "status": "done",
            **which, "seed": spec.seed, "dataset": config.data.name,
            "model": config.model.name, "identity": spec.identity, "provenance": {},
        }  # fmt: skip
        history = [{"epoch": e, "val_logit_gap": cap * (1 - np.exp(-e))} for e in (1, 2, 3)]
        store.write_run(spec, record, history, preds, _penultimate(rng, test_labels, like),
                        weights=b"teacher weights (not read by the report)" if spec.teaches
                        else None)  # fmt: skip
    return len(specs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alphas", type=int, help="label smoothing alone at this many α, 0 to "
                    "0.95 in steps of 0.05 (default: the mixed objectives)")  # fmt: skip
    ap.add_argument("--seeds", type=int, default=10, help="seeds per setting [10]")
    ap.add_argument("--calibrators", default="ts,vs,ms,hist,iso")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    alphas = [round(0.05 * i, 2) for i in range(args.alphas)] if args.alphas else None
    with tempfile.TemporaryDirectory(prefix="lsexp-report-bench-") as tmp:
        out = Path(tmp) / "sweep"
        t0 = time.perf_counter()
        n = write_sweep(out, list(range(args.seeds)), alphas)
        print(f"wrote {n} synthetic runs ({N_VAL:,} val / {N_TEST:,} test, K = {K}) in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
        code = (
            "import time, warnings, sys, json\n"
            "warnings.simplefilter('ignore')\n"
            "t = [time.perf_counter()]\n"
            "from lsexp.reporting import report as R\n"
            "from lsexp.reporting.runs import collect, available_cpus\n"
            "t.append(time.perf_counter())\n"
            f"rep = collect(sys.argv[1], calibrators=tuple({args.calibrators!r}.split(',')))\n"
            "t.append(time.perf_counter())\n"
            "with R.building(R.ResultsStore(sys.argv[1]).report_dir) as o:\n"
            "    R._write_files(rep, o)\n"
            "t.append(time.perf_counter())\n"
            "print(json.dumps({'import': t[1]-t[0], 'collect': t[2]-t[1],"
            " 'claims_figures_files': t[3]-t[2], 'workers': available_cpus(),"
            " 'settings': len(rep.arms)}))\n"
        )  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True,
                              text=True, env=env, check=False)  # fmt: skip
        total = time.perf_counter() - t0
        if proc.returncode:
            sys.exit(f"report failed:\n{proc.stderr}")
        phases = json.loads(proc.stdout.strip().splitlines()[-1])
        shutil.rmtree(out, ignore_errors=True)
    result = {
        "runs": n,
        "sweep": f"label smoothing alone, {args.alphas} alphas"
        if alphas
        else "mixed objectives (20 settings)",
        "calibrators": args.calibrators,
        "total_s": round(total, 2),
        "per_run_s": round(total / n, 4),
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in phases.items()},
    }
    print(f"lsexp report, {n} runs, calibrators {args.calibrators}, claims with "
          f"1,000 bootstrap resamples: {total:.1f} s in all, {total / n:.3f} s/run")  # fmt: skip
    steps = ("import", "collect", "claims_figures_files")
    print("  phases (s): " + ", ".join(f"{k} {phases[k]:.1f}" for k in steps))
    print(f"  {phases['settings']} settings; worker processes for collect, the bootstrap "
          f"and the figures: {phases['workers']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
