"""How the cost of `lsexp report` grows with the sweep: a synthetic sweep, timed.

Writes a sweep folder of `--alphas` x `--seeds` runs (default 20 x 10 = 200) with
real-shaped predictions (5,000 validation and 10,000 test examples, 10 classes; one test
set shared by every run, as in a real sweep), then times `lsexp report` on it in a fresh
process with every feature on: all five post-hoc calibrators, the claims with their
bootstrap (1,000 resamples, the default), the estimator panel, every figure. Prints the
total, the cost per run, and the phases (collect: per-run metrics; claims; figures and
files), and writes them as JSON with --json.

    python benchmarks/report_bench.py                 # 200 runs
    python benchmarks/report_bench.py --seeds 2       # 40 runs: how it grows

Nothing here is a test: the numbers depend on the machine. The logits are drawn so that
small α is over-confident and large α under-confident, with accuracy near 0.9; objectives
other than label smoothing do not exist yet, so every run is label smoothing.
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


def write_sweep(out: Path, alphas: list[float], seeds: list[int]) -> int:
    config = validate(
        {
            "name": "report_bench",
            "data": {"name": "fashion_mnist", "val_size": N_VAL},
            "model": {"name": "mlp", "hidden": [32]},
            "train": {"epochs": 3},
            "sweep": {"alpha": alphas, "seeds": seeds},
        },
        "<report_bench>",
    )
    store = ResultsStore(out)
    store.write_sweep_file(config)
    rng0 = np.random.default_rng(0)
    test_labels = rng0.integers(0, K, N_TEST)
    val_labels = rng0.integers(0, K, N_VAL)
    specs = plan_runs(config)
    for spec in specs:
        rng = np.random.default_rng([round(spec.alpha * 1000), spec.seed])
        acc = 0.9 - 0.05 * spec.alpha + rng.normal(0, 0.003)
        preds = {
            "val_logits": _logits(rng, val_labels, spec.alpha, acc),
            "val_labels": val_labels,
            "test_logits": _logits(rng, test_labels, spec.alpha, acc),
            "test_labels": test_labels,
        }
        cap = np.log(K * (1 - spec.alpha) / spec.alpha + 1) if spec.alpha > 0 else 12.0
        preds["train_true_class_gap"] = rng.normal(0.9 * cap, 0.1 * cap, 5000).astype(np.float32)
        record = {
            "run_id": spec.run_id, "config_hash": config_hash(config), "status": "done",
            "alpha": spec.alpha, "seed": spec.seed, "dataset": config.data.name,
            "model": config.model.name, "identity": spec.identity, "provenance": {},
        }  # fmt: skip
        history = [{"epoch": e, "val_logit_gap": cap * (1 - np.exp(-e))} for e in (1, 2, 3)]
        store.write_run(spec, record, history, preds)
    return len(specs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alphas", type=int, default=20, help="α values, 0 to 0.95 [20]")
    ap.add_argument("--seeds", type=int, default=10, help="seeds per α [10]")
    ap.add_argument("--calibrators", default="ts,vs,ms,hist,iso")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    alphas = [round(0.05 * i, 2) for i in range(args.alphas)]
    with tempfile.TemporaryDirectory(prefix="lsexp-report-bench-") as tmp:
        out = Path(tmp) / "sweep"
        t0 = time.perf_counter()
        n = write_sweep(out, alphas, list(range(args.seeds)))
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
            "claims = R.evaluate_report_claims(rep)\n"
            "t.append(time.perf_counter())\n"
            "R.evaluate_report_claims = lambda r, c=claims: c  # evaluated once, timed above\n"
            "with R.building(R.ResultsStore(sys.argv[1]).report_dir) as o:\n"
            "    R._write_files(rep, o)\n"
            "t.append(time.perf_counter())\n"
            "print(json.dumps({'import': t[1]-t[0], 'collect': t[2]-t[1], 'claims': t[3]-t[2],"
            " 'figures_and_files': t[4]-t[3], 'workers': available_cpus()}))\n"
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
        "calibrators": args.calibrators,
        "total_s": round(total, 2),
        "per_run_s": round(total / n, 4),
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in phases.items()},
    }
    print(f"lsexp report, {n} runs, calibrators {args.calibrators}, claims with "
          f"1,000 bootstrap resamples: {total:.1f} s in all, {total / n:.3f} s/run")  # fmt: skip
    steps = ("import", "collect", "claims", "figures_and_files")
    print("  phases (s): " + ", ".join(f"{k} {phases[k]:.1f}" for k in steps))
    print(f"  worker processes for collect: {phases['workers']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
