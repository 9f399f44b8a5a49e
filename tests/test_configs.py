"""Every shipped config validates, and the one people type first works without its data."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsexp.config import load_config
from tests.conftest import REPO, run_lsexp

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_configs_folder_has_the_documented_configs():
    names = {p.stem for p in CONFIGS}
    assert {"cifar", "cifar10", "cifar100", "cifar10_fast", "quickstart", "fashion_mnist",
            "mnist"} <= names  # fmt: skip
    readme = (REPO / "README.md").read_text()
    for name in names:
        assert f"{name}.yaml" in readme, f"README does not list configs/{name}.yaml"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_validates(path: Path):
    config = load_config(path)
    assert config.name == path.stem  # results go to results/<file name>


def test_cifar_dry_run_without_the_data_shows_the_plan_and_how_to_get_it(tmp_path):
    proc = run_lsexp("sweep", str(REPO / "configs" / "cifar.yaml"), "--dry-run", cwd=tmp_path,
                     env={"LSEXP_DATA": str(tmp_path / "no-data-here")})  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "21 runs, 21 would train" in proc.stdout
    assert "lsexp data fetch cifar10" in proc.stderr
    assert "lsexp data import cifar10" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "results").exists()
