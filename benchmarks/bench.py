"""`make bench`: lsexp's sweep against the naive baseline, side by side in one invocation.

Both train the same model (`cnn`, width 16), recipe, epochs, batch size, train/val split
and alpha list on the real Fashion-MNIST. They run alternately (baseline, lsexp, lsexp
with `--workers 2`, baseline, ...) so drift on a shared machine hits all. Reported per
side: runs per hour, peak resident memory (of its largest process: with `--workers 2`
the machine holds about two of those), mean test accuracy; then the ratios,
and the floor: bare forward/backward/step time of the same model on pre-made batches,
so the overhead left in each model-epoch is visible (measured just before and just after
each lsexp sweep, since this machine's speed drifts by 10-20 % over minutes); the whole
run (the sweep's wall time per run) and the training epoch alone, each against that floor;
and where the rest of a run goes, phase by phase, from the clocks every run records in
its run.json (`timings`: data loading, model build, training, per-epoch validation, final
evaluation, writing files; start-up is the sweep's wall time left over). Numbers go to a
JSON file too.

    python benchmarks/bench.py [--epochs 1] [--alphas 0,0.1,0.2,0.3] [--repeats 1]

The default of 4 runs splits evenly over 2 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FASHION = Path("/usr/share/datasets/fashion-mnist")


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"bench: command failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0, proc.stdout


def _peak_of(cmd: list[str], env: dict[str, str]) -> tuple[float, str, float]:
    """Wall time, stdout and peak RSS of one command (measured in a fresh helper process,
    because RUSAGE_CHILDREN only ever grows)."""
    wrapper = [sys.executable, "-c",
               "import resource, subprocess, sys, time, json\n"
               "t=time.perf_counter(); p=subprocess.run(sys.argv[1:], capture_output=True, "
               "text=True)\n"
               "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr)\n"
               "print(json.dumps({'__peak_mb': resource.getrusage(resource.RUSAGE_CHILDREN)"
               ".ru_maxrss/1024, '__wall': time.perf_counter()-t}))\n"
               "sys.exit(p.returncode)", *cmd]  # fmt: skip
    _, out = _run(wrapper, env)
    lines = out.strip().splitlines()
    meta = json.loads(lines[-1])
    return meta["__wall"], "\n".join(lines[:-1]), meta["__peak_mb"]


def pick_workers(root: str, env: dict[str, str]) -> tuple[int, dict[int, float]]:
    """The baseline's faster DataLoader setting on this machine (0 or 2 workers)."""
    times = {}
    for w in (0, 2):
        cmd = [sys.executable, str(HERE / "naive.py"), "--root", root, "--alpha", "0.1",
               "--epochs", "1", "--workers", str(w), "--max-batches", "60"]  # fmt: skip
        times[w], _ = _run(cmd, env)
    return min(times, key=times.get), times


def floor_seconds_per_epoch(root: str, batch_size: int, width: int, steps: int = 200) -> float:
    """Bare forward/backward/step of the same model on pre-made batches of the real training
    images (no indexing, no eval), in the memory layout lsexp's engine picks for this
    device, so the floor is its own. 20 distinct batches, cycled; `steps` timed steps after
    5 warm-up steps, scaled to one epoch of the 55k training images."""
    from lsexp.training.data import load_splits
    from lsexp.training.engine import engine_settings
    from lsexp.training.models import build_model
    from lsexp.training.objectives import smoothed_cross_entropy

    splits = load_splits("fashion_mnist", Path(root), val_size=5000)
    torch.manual_seed(0)
    fmt = torch.channels_last if engine_settings(torch.device("cpu"), "cnn").channels_last \
        else torch.contiguous_format  # fmt: skip
    model = build_model("cnn", in_channels=1, image_size=28, num_classes=10, width=width)
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    cuts = [slice(i * batch_size, (i + 1) * batch_size) for i in range(20)]
    batches = [(splits.train_x[c].contiguous(memory_format=fmt), splits.train_y[c]) for c in cuts]
    for i in range(steps + 5):
        if i == 5:
            t0 = time.perf_counter()
        x, y = batches[i % len(batches)]
        loss = smoothed_cross_entropy(model(x), y, 0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps * (len(splits.train_x) // batch_size)


PHASE_NAMES = {
    "start_up": "start-up (imports, checks, plan)",
    "load_data": "data loading, to the device",
    "build": "model and optimizer build",
    "train": "training steps",
    "validate": "per-epoch validation",
    "evaluate": "final evaluation",
    "write": "writing files",
}


def phase_breakdown(sweeps: list[dict]) -> dict[str, float]:
    """Mean seconds per run in each phase, from the runs' recorded `timings`; start-up is
    what the sweep's wall time leaves after the data load and every run's phases. The
    phases add up to the sweep's wall time per run."""
    totals = dict.fromkeys(PHASE_NAMES, 0.0)
    n_runs = sum(len(s["timings"]) for s in sweeps)
    for sweep in sweeps:
        load = max(t["load_data"] for t in sweep["timings"])  # one load per sweep process
        per_run = ("build", "train", "validate", "evaluate", "write")
        inside = sum(t[k] for t in sweep["timings"] for k in per_run)
        totals["load_data"] += load
        totals["start_up"] += sweep["wall"] - load - inside
        for t in sweep["timings"]:
            for k in per_run:
                totals[k] += t[k]
    return {k: v / n_runs for k, v in totals.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--alphas", default="0,0.1,0.2,0.3")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    a = p.parse_args()
    if not FASHION.exists():
        sys.exit("bench: needs Debian's dataset-fashion-mnist (apt-get install "
                 "dataset-fashion-mnist)")  # fmt: skip
    alphas = [float(x) for x in a.alphas.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="lsexp-bench-"))
    root = str(tmp / "data")
    env = {**os.environ, "LSEXP_DATA": root, "PYTHONPATH": str(REPO)}
    lsexp = [sys.executable, "-m", "lsexp"]
    _run([*lsexp, "data", "import", "fashion_mnist", str(FASHION)], env)

    workers, worker_times = pick_workers(root, env)
    print(f"baseline DataLoader: {workers} workers (60 batches: "
          + ", ".join(f"{w} workers {t:.1f}s" for w, t in worker_times.items()) + ")")  # fmt: skip

    sides: dict[str, dict] = {
        side: {"seconds": 0.0, "acc": [], "peak_mb": 0.0, "train_epoch_s": [], "eval_s": [],
               "timings": [], "sweeps": []}
        for side in ("naive", "lsexp", "lsexp-w2")
    }  # fmt: skip
    n_runs = 0
    floors: list[float] = []  # measured right before and after each lsexp sweep: side by side
    for rep in range(a.repeats):
        for side in sides:
            if side == "lsexp":
                floors.append(floor_seconds_per_epoch(root, 128, 16))
            if side == "naive":
                wall = 0.0
                for alpha in alphas:
                    cmd = [sys.executable, str(HERE / "naive.py"), "--root", root,
                           "--alpha", str(alpha), "--epochs", str(a.epochs),
                           "--workers", str(workers)]  # fmt: skip
                    w, out, peak = _peak_of(cmd, env)
                    wall += w
                    sides[side]["acc"].append(json.loads(out.strip().splitlines()[-1])
                                              ["test_accuracy"])  # fmt: skip
                    sides[side]["peak_mb"] = max(sides[side]["peak_mb"], peak)
            else:
                out_dir = tmp / f"{side}-{rep}"
                cmd = [*lsexp, "sweep", str(REPO / "configs" / "fashion_mnist.yaml"),
                       f"train.epochs={a.epochs}", f"sweep.alpha=[{a.alphas}]",
                       "sweep.seeds=[0]", "--out", str(out_dir), "--device", "cpu"]  # fmt: skip
                if side == "lsexp-w2":
                    cmd += ["--workers", "2"]
                wall, _, peak = _peak_of(cmd, env)
                timings = []
                for run in out_dir.glob("runs/*/run.json"):
                    record = json.loads(run.read_text())
                    sides[side]["acc"].append(record["test_metrics"]["accuracy"])
                    # The engine's own clock: training steps only, per epoch, and evaluation.
                    sides[side]["train_epoch_s"].append(record["train_seconds"] / a.epochs)
                    sides[side]["eval_s"].append(record["eval_seconds"])
                    timings.append(record["timings"])
                sides[side]["timings"] += timings
                sides[side]["sweeps"].append({"wall": wall, "timings": timings})
                sides[side]["peak_mb"] = max(sides[side]["peak_mb"], peak)
            sides[side]["seconds"] += wall
            if side == "lsexp":
                floors.append(floor_seconds_per_epoch(root, 128, 16))
            print(f"repeat {rep + 1}: {side:8s} {len(alphas)} runs in {wall:6.1f}s")
        n_runs += len(alphas)

    floor = sum(floors) / len(floors)
    rows = {}
    for side, s in sides.items():
        per_run = s["seconds"] / n_runs
        rows[side] = {
            "runs_per_hour": 3600 / per_run,
            "seconds_per_run": per_run,
            "seconds_per_model_epoch": per_run / a.epochs,
            "peak_rss_mb": s["peak_mb"],
            "mean_test_accuracy": sum(s["acc"]) / len(s["acc"]),
        }
    for side in ("lsexp", "lsexp-w2"):
        lx = sides[side]
        rows[side]["train_seconds_per_epoch"] = sum(lx["train_epoch_s"]) / len(lx["train_epoch_s"])
        rows[side]["eval_seconds_per_run"] = sum(lx["eval_s"]) / len(lx["eval_s"])
    ratio = rows["lsexp"]["runs_per_hour"] / rows["naive"]["runs_per_hour"]
    ratio_w2 = rows["lsexp-w2"]["runs_per_hour"] / rows["naive"]["runs_per_hour"]
    w2_vs_1 = rows["lsexp-w2"]["runs_per_hour"] / rows["lsexp"]["runs_per_hour"]
    acc_gap = abs(rows["lsexp"]["mean_test_accuracy"] - rows["naive"]["mean_test_accuracy"])
    acc_gap_w2 = abs(rows["lsexp-w2"]["mean_test_accuracy"] - rows["naive"]["mean_test_accuracy"])
    print()
    print(f"{'':8s} {'runs/h':>8s} {'s/run':>7s} {'s/model-epoch':>14s} {'peak MB':>8s} "
          f"{'test acc':>9s}")  # fmt: skip
    for side, r in rows.items():
        print(f"{side:8s} {r['runs_per_hour']:8.1f} {r['seconds_per_run']:7.1f} "
              f"{r['seconds_per_model_epoch']:14.1f} {r['peak_rss_mb']:8.0f} "
              f"{100 * r['mean_test_accuracy']:8.2f}%")  # fmt: skip
    print(f"{'floor':8s} {'':8s} {'':7s} {floor:14.1f}   (bare forward/backward/step; "
          f"measured {', '.join(f'{f:.1f}' for f in floors)})")  # fmt: skip
    print(f"\nspeed-up lsexp / naive: {ratio:.2f}x  (accuracy gap {100 * acc_gap:.2f} points; "
          f"counts only if <= 1)")  # fmt: skip
    print(f"speed-up lsexp --workers 2 / naive: {ratio_w2:.2f}x  (accuracy gap "
          f"{100 * acc_gap_w2:.2f} points); --workers 2 / 1 worker: {w2_vs_1:.2f}x")  # fmt: skip
    train_epoch = rows["lsexp"]["train_seconds_per_epoch"]
    whole = rows["lsexp"]["seconds_per_model_epoch"]
    print(f"lsexp whole run per epoch (sweep wall / runs / epochs): {whole:.1f}s = "
          f"{whole / floor:.2f}x the floor")  # fmt: skip
    print(f"lsexp training epoch alone (engine clock, data indexing + augmentation + steps): "
          f"{train_epoch:.1f}s = {train_epoch / floor:.2f}x the floor")  # fmt: skip
    phases = phase_breakdown(sides["lsexp"]["sweeps"])
    print(f"\nwhere an lsexp run's time goes (1 process, mean of {n_runs} runs; start-up and "
          f"data loading are paid once per sweep and shown per run):")  # fmt: skip
    print(f"  {'phase':34s} {'s/run':>7s} {'x floor':>8s}")
    for name, sec in phases.items():
        print(f"  {PHASE_NAMES[name]:34s} {sec:7.2f} {sec / (floor * a.epochs):8.3f}")
    print(f"  {'whole run':34s} {sum(phases.values()):7.2f} "
          f"{sum(phases.values()) / (floor * a.epochs):8.3f}")  # fmt: skip
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "settings": {"dataset": "fashion_mnist", "model": "cnn width 16", "epochs": a.epochs,
                     "alphas": alphas, "repeats": a.repeats, "batch_size": 128,
                     "baseline_workers": workers},
        "naive": rows["naive"], "lsexp": rows["lsexp"], "lsexp_workers2": rows["lsexp-w2"],
        "floor_seconds_per_epoch": floor, "floor_measurements": floors,
        "speedup": ratio, "accuracy_gap": acc_gap, "accuracy_parity": acc_gap <= 0.01,
        "speedup_workers2": ratio_w2, "accuracy_gap_workers2": acc_gap_w2,
        "workers2_vs_1": w2_vs_1,
        "train_epoch_vs_floor": train_epoch / floor,
        "whole_run_vs_floor": whole / floor,
        "phase_seconds_per_run": phases,
    }  # fmt: skip
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
