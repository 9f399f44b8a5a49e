"""Soak check by hand: SIGKILL a sweep at random moments N times, then let it finish.

    .venv/bin/python scripts/soak_kill.py [--kills 20] [--out /tmp/lsexp-soak]

Afterwards it checks what the reliability issue promises: the number of finished runs
equals the plan size, every run id appears exactly once, every run folder is complete
(run.json + history.csv + predictions.npz, all readable) and no temp file is left.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

CONFIG = {
    "name": "soak",
    "data": {"name": "fashion_mnist_mini", "val_size": 500},
    "model": {"name": "mlp", "hidden": [128]},
    "train": {"epochs": 20, "batch_size": 128, "lr": 0.05},
    "sweep": {"alpha": [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5], "seeds": [0, 1, 2]},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("/tmp/lsexp-soak"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    cfg = args.out / "soak.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    results = args.out / "results"
    cmd = [sys.executable, "-m", "lsexp", "sweep", str(cfg), "--out", str(results)]

    for i in range(args.kills):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(1.0, 8.0)  # start-up is ~3 s: some kills land before training
        time.sleep(delay)
        proc.kill()
        proc.wait()
        done = len(list(results.glob("runs/*/run.json")))
        print(f"kill {i + 1:2d}/{args.kills} after {delay:4.1f}s: {done} runs finished")

    final = subprocess.run(cmd, capture_output=True, text=True)
    if final.returncode != 0:
        print(final.stdout, final.stderr)
        return 1
    plan_size = len(CONFIG["sweep"]["alpha"]) * len(CONFIG["sweep"]["seeds"])
    run_dirs = sorted(p for p in (results / "runs").iterdir() if p.is_dir())
    ids = [json.loads((d / "run.json").read_text())["run_id"] for d in run_dirs]
    complete = 0
    for d in run_dirs:
        with np.load(d / "predictions.npz", allow_pickle=False) as f:
            ok = f["test_logits"].shape[0] == f["test_labels"].shape[0] > 0
        ok = ok and (d / "history.csv").read_text().count("\n") == CONFIG["train"]["epochs"] + 1
        complete += ok
    temps = list(results.rglob("*.tmp"))
    print(
        f"plan {plan_size}, run folders {len(run_dirs)}, unique ids {len(set(ids))}, "
        f"complete {complete}, temp files {len(temps)}"
    )
    good = len(run_dirs) == len(set(ids)) == complete == plan_size and not temps
    print("OK" if good else "FAILED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
