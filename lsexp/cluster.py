"""Spreading a sweep over machines: `--shard I/N` and Slurm job arrays through submitit.

lsexp has no scheduler of its own. Runs are independent and their ids deterministic, so
a sweep splits by position in the plan (`--shard I/N`), and every worker writes into one
shared results folder, where per-run claim files (see `store.RunClaim`) keep two workers
off the same run. `submit` hands the pending runs to submitit's `AutoExecutor.map_array`
as one Slurm job array (one task per run); its "local" and "debug" executors run the
same tasks without Slurm, which is how the tests exercise this path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsexp.config import SweepConfig, config_data, validate
from lsexp.errors import LsexpError
from lsexp.store import ResultsStore, plan_runs

EXECUTORS = ("slurm", "local", "debug")


def parse_shard(text: str | None, environ: dict[str, str] | None = None) -> tuple[int, int] | None:
    """`"I/N"` -> (I, N) with 0 <= I < N. Without text, from a Slurm array task, else None.

    Under Slurm, the task's index is SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN (arrays
    may start at 1) and the count SLURM_ARRAY_TASK_COUNT.
    """
    env = os.environ if environ is None else environ
    if text is None:
        if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
            return None
        try:
            index = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            count = int(env["SLURM_ARRAY_TASK_COUNT"])
        except ValueError:
            raise LsexpError(
                "SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT are not integers; pass --shard I/N"
            ) from None
        text = f"{index}/{count}"
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise LsexpError(f"--shard: expected I/N such as 0/4, got '{text}'") from None
    if n < 1 or not 0 <= i < n:
        raise LsexpError(f"--shard: expected 0 <= I < N, got '{text}'")
    return i, n


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int = 2
    timeout_min: int = 240
    array_parallelism: int = 64
    mem_gb: int | None = None


def _array_task(
    data: dict[str, Any], out_dir: str, run_id: str, device: str | None, compile: bool = False
):
    """One job-array task: train one run into the shared folder (claims keep it unique)."""
    from lsexp.sweep import run_sweep

    config = validate(data, f"{out_dir}/sweep.yaml")
    result = run_sweep(config, Path(out_dir), device=device, run_ids={run_id}, compile=compile)
    return [(o.spec.run_id, o.status) for o in result.outcomes]


def submit(
    config: SweepConfig,
    out_dir: Path,
    *,
    executor: str = "slurm",
    options: SlurmOptions | None = None,
    device: str | None = None,
    retry_failed: bool = False,
    force_new: bool = False,
    compile: bool = False,
) -> list[Any]:
    """Submit every pending run as one job array; returns submitit's job objects."""
    from lsexp.sweep import pending_runs

    if executor not in EXECUTORS:
        raise LsexpError(f"--executor: expected one of {', '.join(EXECUTORS)}, got '{executor}'")
    try:
        import submitit
    except ImportError:
        raise LsexpError(
            "--executor needs submitit: pip install 'lsexp[slurm]' (or pip install submitit)"
        ) from None
    options = options or SlurmOptions()
    store = ResultsStore(out_dir)
    store.ensure_writable()
    if not force_new:
        store.check_same_identity(config)
    store.write_sweep_file(config)
    todo = pending_runs(store, plan_runs(config), retry_failed)
    if not todo:
        return []
    ex = submitit.AutoExecutor(
        folder=str(out_dir / "slurm" / "%j"), cluster=None if executor == "slurm" else executor
    )
    params: dict[str, Any] = {
        "timeout_min": options.timeout_min,
        "cpus_per_task": options.cpus_per_task,
        "name": f"lsexp-{config.name}",
    }
    if executor == "slurm":
        params["slurm_array_parallelism"] = options.array_parallelism
        params["gpus_per_node"] = options.gpus_per_task
        if options.partition:
            params["slurm_partition"] = options.partition
        if options.mem_gb:
            params["mem_gb"] = options.mem_gb
    ex.update_parameters(**params)
    data = config_data(config)
    n = len(todo)
    return ex.map_array(_array_task, [data] * n, [str(out_dir)] * n,
                        [s.run_id for s in todo], [device] * n, [compile] * n)  # fmt: skip
