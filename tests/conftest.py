"""Shared fixtures: tiny configs that train in about a second on the bundled data."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lsexp.config import SweepConfig, validate

REPO = Path(__file__).resolve().parent.parent

# The cluster that scripts/slurm-local.sh starts; the `slurm` tests submit only to it (their
# results folders are under this machine's /tmp, and they use its `batch` partition).
SLURM_CLUSTER = "lsexp-local"
# Set by .ci/run, which starts that cluster: there a `slurm` test fails instead of skipping.
REQUIRE_SLURM_ENV = "LSEXP_REQUIRE_SLURM"


@functools.cache
def slurm_unavailable() -> str | None:
    """Why the `slurm` tests cannot run here, or None when the local cluster answers."""
    start = (
        "start one with `sudo scripts/slurm-local.sh install && sudo scripts/slurm-local.sh start`"
    )
    if shutil.which("sinfo") is None:
        return f"no Slurm here (sinfo not on PATH); {start}"
    try:
        sinfo = subprocess.run(["sinfo", "-h", "-o", "%P %a"], capture_output=True, text=True,
                               timeout=30)  # fmt: skip
        if sinfo.returncode != 0:
            return f"no Slurm cluster answers sinfo ({sinfo.stderr.strip()}); {start}"
        config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                                timeout=30)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"sinfo did not answer within 30 s; {start}"
    names = [line.split("=", 1)[1].strip() for line in config.stdout.splitlines()
             if line.startswith("ClusterName")]  # fmt: skip
    if names != [SLURM_CLUSTER]:
        return (f"the Slurm cluster here is {names or 'unknown'}, not {SLURM_CLUSTER} of "
                "scripts/slurm-local.sh; the slurm tests submit only to that one")  # fmt: skip
    return None


def pytest_runtest_setup(item):
    if item.get_closest_marker("slurm") is None:
        return
    reason = slurm_unavailable()
    if reason is not None:
        if os.environ.get(REQUIRE_SLURM_ENV) == "1":
            pytest.fail(f"{REQUIRE_SLURM_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)


def run_lsexp(
    *args: str, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`python -m lsexp ARGS` in a fresh process, as a user runs it (no stdin, wide output)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lsexp", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def tiny_config_dict(**sections) -> dict:
    cfg = {
        "name": "tiny",
        "data": {"name": "fashion_mnist_mini", "val_size": 500},
        "model": {"name": "mlp", "hidden": [32]},
        "train": {"epochs": 2, "batch_size": 256, "lr": 0.05},
        "sweep": {"alpha": [0.0, 0.2], "seeds": [0]},
        "eval": {"n_bins": 10},
    }
    for key, value in sections.items():
        # Sections merge into the defaults, except `model`, whose keys depend on its name.
        merge = isinstance(value, dict) and key != "model"
        cfg[key] = {**cfg.get(key, {}), **value} if merge else value
    return cfg


@pytest.fixture
def tiny_config() -> SweepConfig:
    return validate(tiny_config_dict(), "<test>")


@pytest.fixture
def tiny_config_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict()))
    return path


def fail_runs_at_alpha(monkeypatch, alpha: float):
    """Make `sweep.train_run` raise for one alpha (a simulated OOM); returns the real one."""
    from lsexp.running import sweep

    real = sweep.train_run

    def flaky(config, run_alpha, seed, *args, **kwargs):
        if run_alpha == alpha:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(config, run_alpha, seed, *args, **kwargs)

    monkeypatch.setattr(sweep, "train_run", flaky)
    return real
