"""Pack a sweep folder for committing to a repository: what `lsexp report` needs, compact.

    python scripts/pack_results.py SRC [DEST]      # DEST defaults to SRC (in place)

Copies sweep.yaml and, for each finished run (done, diverged or failed), run.json and
history.csv; done runs keep their val/test logits and labels as float16 / int16 in a
compressed .npz (about 0.3 MB for 5,000 val + 10,000 test examples of 10 classes,
instead of 0.6 MB), with the training-set true-class gaps (`train_true_class_gap`, where
the run saved them) as float16 too, and penultimate.npz compressed likewise. A
distillation teacher's weights (model.pt) are copied unchanged, so its students can be
rebuilt and a rerun does not train the teacher again. run.json
records the new files' SHA-256 (so `lsexp status` and `lsexp report` accept them as
written) and `"packed": "float16"`. Left out: the lock, claims, temp files, Slurm logs
and report/
(rebuild it with `lsexp report DEST`).

float16 keeps about 3 significant digits of a logit: metrics recomputed from packed logits
differ from the float32 ones in the 4th decimal at most on the committed sweeps (the
report of a packed folder is rebuilt from the packed files, so it is self-consistent).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lsexp.results.store import (  # noqa: E402
    HISTORY_FILE,
    PENULTIMATE_FILE,
    PREDICTIONS_FILE,
    RUN_FILE,
    SWEEP_FILE,
    WEIGHTS_FILE,
    atomic_write_bytes,
    read_predictions,
    write_json,
)


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _compact(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, a in arrays.items():
        if a.dtype.kind == "f":
            out[key] = a.astype(np.float16)
        elif a.dtype.kind in "iu" and a.size and a.min() >= -(2**15) and a.max() < 2**15:
            out[key] = a.astype(np.int16)
        else:
            out[key] = a
    return out


def pack_run(src: Path, dest: Path) -> str:
    record = json.loads((src / RUN_FILE).read_text())
    dest.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if (src / HISTORY_FILE).exists():
        data = (src / HISTORY_FILE).read_bytes()
        atomic_write_bytes(dest / HISTORY_FILE, data)
        files[HISTORY_FILE] = hashlib.sha256(data).hexdigest()
    if record.get("status") == "done":
        data = _npz(_compact(read_predictions(src / PREDICTIONS_FILE)))
        atomic_write_bytes(dest / PREDICTIONS_FILE, data)
        files[PREDICTIONS_FILE] = hashlib.sha256(data).hexdigest()
        if (src / PENULTIMATE_FILE).exists():
            with np.load(src / PENULTIMATE_FILE, allow_pickle=False) as f:
                pen = {k: f[k] for k in f.files}
            data = _npz(_compact(pen))
            atomic_write_bytes(dest / PENULTIMATE_FILE, data)
            files[PENULTIMATE_FILE] = hashlib.sha256(data).hexdigest()
        if WEIGHTS_FILE in (record.get("files") or {}) and (src / WEIGHTS_FILE).exists():
            data = (src / WEIGHTS_FILE).read_bytes()
            atomic_write_bytes(dest / WEIGHTS_FILE, data)
            files[WEIGHTS_FILE] = hashlib.sha256(data).hexdigest()
    write_json(dest / RUN_FILE, {**record, "files": files, "packed": "float16"})
    return str(record.get("status"))


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    src = Path(argv[0])
    dest = Path(argv[1]) if len(argv) == 2 else src
    if not (src / SWEEP_FILE).is_file():
        print(f"error: {src} holds no sweep.yaml; give a sweep folder", file=sys.stderr)
        return 2
    dest.mkdir(parents=True, exist_ok=True)
    if dest.resolve() != src.resolve():
        shutil.copy2(src / SWEEP_FILE, dest / SWEEP_FILE)
    counts: dict[str, int] = {}
    for run in sorted((src / "runs").glob(f"*/{RUN_FILE}")):
        try:
            status = pack_run(run.parent, dest / "runs" / run.parent.name)
        except (OSError, ValueError) as e:
            print(f"warning: skipped {run.parent.name}: {e}", file=sys.stderr)
            continue
        counts[status] = counts.get(status, 0) + 1
    size = sum(p.stat().st_size for p in (dest / "runs").rglob("*") if p.is_file())
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"packed {summary} into {dest} ({size / 1e6:.1f} MB of runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
