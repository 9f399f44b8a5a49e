"""The prepared device check for the GPU targets of `cifar10_fast` (one short script).

Run on a machine with a GPU: `python benchmarks/gpu_check.py --out $OUT/gpu.json`.
Smoke-test it anywhere: `python benchmarks/gpu_check.py --quick --device cpu` (what
tests/test_gpu_check.py runs, with one process and no compile).

What it measures, on synthetic CIFAR-10-sized tensors (45k train / 5k val / 10k test,
3x32x32, 10 classes: one random smooth template per class plus noise), so that it needs no
dataset files (the device machine has no network and CIFAR-10 is larger than what
travels). Accuracy on this data means nothing; kernel time per run is that of real
CIFAR-10, because shapes, not pixel values, set it:

1. seconds per run of configs/cifar10_fast.yaml (airbench94 recipe, TTA 2) with the
   engine's settings for the device (bf16 autocast + channels_last on CUDA), without and
   with torch.compile, each after one warm-up run (cuDNN autotuning, compilation);
2. runs per hour when P worker processes share the device (P = 1, 2, 4), which is what
   `lsexp sweep --workers P` does: the packing that wins is the one to recommend;
3. the projected time of the 21-run sweep at the best packing (target: <= 3 minutes on
   one H100).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lsexp.config import load_config  # noqa: E402
from lsexp.training import engine  # noqa: E402
from lsexp.training.data import DATASETS, Splits  # noqa: E402


def synthetic_splits(device: torch.device, sizes: tuple[int, int, int]) -> Splits:
    gen = torch.Generator().manual_seed(0)
    templates = torch.nn.functional.avg_pool2d(torch.randn(10, 3, 36, 36, generator=gen), 5, 1)
    templates = templates / templates.std()

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 10, (n,), generator=gen)
        x = templates[y] + torch.randn(n, 3, 32, 32, generator=gen)
        return x.to(device), y.to(device)

    (tx, ty), (vx, vy), (sx, sy) = (split(n) for n in sizes)
    return Splits(tx, ty, vx, vy, sx, sy, DATASETS["cifar10"], (0.0,) * 3, (1.0,) * 3)


def _config(quick: bool):
    overrides = ["train.epochs=2", "train.batch_size=256", "model.width=8"] if quick else []
    return load_config(REPO / "configs" / "cifar10_fast.yaml", overrides)


def _sizes(quick: bool) -> tuple[int, int, int]:
    return (1024, 256, 256) if quick else (45000, 5000, 10000)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_runs(device_name: str, quick: bool, n_runs: int, compile: bool, seed0: int) -> list:
    """Wall seconds of each of `n_runs` runs after one warm-up run, in this process."""
    device = torch.device(device_name)
    config = _config(quick)
    splits = synthetic_splits(device, _sizes(quick))
    settings = engine.engine_settings(device, config.model.name, compile)
    times = []
    for i in range(n_runs + 1):
        _sync(device)
        t0 = time.perf_counter()
        result = engine.train_run(config, 0.2, seed0 + i, splits, device, settings=settings)
        _sync(device)
        if result.status != "done":
            raise RuntimeError(f"run {i} ended {result.status}")
        if i:  # the first run warms up cuDNN / the compiler
            times.append(time.perf_counter() - t0)
    return times


def _worker(args: tuple, queue) -> None:
    device, quick, n_runs, threads, seed0 = args
    torch.set_num_threads(threads)
    try:
        queue.put(("ok", time_runs(device, quick, n_runs, False, seed0)))
    except Exception as e:  # reported, not swallowed
        queue.put(("error", f"{type(e).__name__}: {e}"))


def packed_throughput(device: str, quick: bool, procs: int, runs_each: int) -> dict:
    """P processes at once, each doing a warm-up and `runs_each` timed runs."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // procs)
    workers = [ctx.Process(target=_worker, args=((device, quick, runs_each, threads, 100 * p),
                                                  queue)) for p in range(procs)]  # fmt: skip
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    errors = [r[1] for r in results if r[0] == "error"]
    if errors:
        raise RuntimeError("; ".join(errors))
    # Steady state: each process's mean run time; P of them run side by side.
    per_run = [sum(r[1]) / len(r[1]) for r in results]
    runs_per_hour = sum(3600 / t for t in per_run)
    return {"processes": procs, "threads_each": threads, "seconds_per_run_each": per_run,
            "runs_per_hour": runs_per_hour}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of this script")
    p.add_argument("--runs", type=int, default=3, help="timed runs per measurement")
    p.add_argument("--procs", default="1,2,4")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile timing")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp")) / "gpu.json")
    a = p.parse_args()
    device = torch.device(a.device)
    info = {"torch": torch.__version__, "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else "cpu", "quick": a.quick}  # fmt: skip
    print(json.dumps(info))
    report: dict = {"machine": info}
    plain = time_runs(a.device, a.quick, a.runs, False, 0)
    report["seconds_per_run"] = plain
    print(f"cifar10_fast, 1 process: {sum(plain) / len(plain):.2f} s/run  {plain}", flush=True)
    if not a.no_compile:
        compiled = time_runs(a.device, a.quick, a.runs, True, 0)
        report["seconds_per_run_compiled"] = compiled
        print(f"  with torch.compile: {sum(compiled) / len(compiled):.2f} s/run", flush=True)
    packing = []
    for procs in [int(x) for x in a.procs.split(",")]:
        row = packed_throughput(a.device, a.quick, procs, a.runs)
        packing.append(row)
        print(f"  {procs} processes: {row['runs_per_hour']:.0f} runs/h", flush=True)
    report["packing"] = packing
    best = max(packing, key=lambda r: r["runs_per_hour"])
    report["best_processes"] = best["processes"]
    report["sweep_21_runs_minutes"] = 21 / best["runs_per_hour"] * 60
    print(f"best: {best['processes']} processes -> 21-run sweep in "
          f"{report['sweep_21_runs_minutes']:.1f} min (synthetic data, steady state)")  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
