"""The `lsexp` command end to end, as a user runs it (a real subprocess, no terminal)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from lsexp.config import validate
from lsexp.running.sweep import run_sweep
from tests.conftest import REPO, run_lsexp, tiny_config_dict
from tests.fakedata import write_fake_cifar, write_fake_mnist

FASHION = Path("/usr/share/datasets/fashion-mnist")


def lsexp(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_lsexp(*args, cwd=cwd, env=env)


def assert_clean_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("error: ")
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def write_config(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump(tiny_config_dict(**sections)))
    return path


def test_version_and_help(tmp_path):
    proc = lsexp("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("lsexp 0.")
    proc = lsexp("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for word in ("sweep", "report", "status", "data", "Examples", "Exit codes"):
        assert word in proc.stdout


@pytest.mark.slow
def test_sweep_report_status_end_to_end_and_resume(tmp_path):
    cfg = write_config(tmp_path / "tiny.yaml")
    proc = lsexp("sweep", str(cfg), "sweep.seeds=[0,1]", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout  # not a terminal: plain lines, no ANSI escapes
    assert "[4/4]" in proc.stdout and "4 trained, 0 already finished" in proc.stdout
    out = tmp_path / "results" / "tiny"
    assert len(list(out.glob("runs/*/run.json"))) == 4

    again = lsexp("sweep", str(cfg), "sweep.seeds=[0,1]", cwd=tmp_path)
    assert again.returncode == 0
    assert "0 trained, 4 already finished" in again.stdout

    rep = lsexp("report", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert (out / "report" / "summary.md").exists()
    assert "15 equal-width" not in rep.stdout and "10 equal-width bins" in rep.stdout

    st = lsexp("status", "--json", cwd=tmp_path)
    data = json.loads(st.stdout)
    assert [r["status"] for r in data[0]["runs"]] == ["done"] * 4


def test_dry_run_writes_nothing(tmp_path):
    cfg = write_config(tmp_path / "tiny.yaml")
    proc = lsexp("sweep", str(cfg), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 runs, 2 would train" in proc.stdout
    assert not (tmp_path / "results").exists()


def test_config_errors_exit_2_with_file_line_and_nothing_created(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "name: bad\ndata: {name: fashion_mnist_mini}\nmodel: {name: mlp}\n"
        "train:\n  epoch: 3\nsweep: {alpha: [0, 1.0], seeds: [0]}\n"
    )
    proc = lsexp("sweep", str(cfg), cwd=tmp_path)
    assert_clean_error(proc, 2, f"{cfg}:5: train.epoch: unknown key (did you mean 'epochs'?)")
    assert "[0, 1)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 3  # epoch, missing epochs, alpha
    assert not (tmp_path / "results").exists()


def test_bad_override_and_bad_device_exit_2(tmp_path):
    cfg = write_config(tmp_path / "tiny.yaml")
    assert_clean_error(lsexp("sweep", str(cfg), "train.epochs=ten", cwd=tmp_path), 2,
                       "override 'train.epochs=ten'")  # fmt: skip
    assert_clean_error(lsexp("sweep", str(cfg), "--device", "tpu", cwd=tmp_path), 2, "--device")
    assert_clean_error(lsexp("sweep", str(tmp_path / "nope.yaml"), cwd=tmp_path), 2, "not found")


def test_locked_folder_exits_3(tmp_path):
    from lsexp.results.store import ResultsStore

    cfg = write_config(tmp_path / "tiny.yaml")
    with ResultsStore(tmp_path / "results" / "tiny").lock():
        proc = lsexp("sweep", str(cfg), cwd=tmp_path)
    assert_clean_error(proc, 3, "in use by another sweep", f"pid {os.getpid()}")


def test_missing_dataset_exit_2_says_how_to_get_it(tmp_path):
    cfg = write_config(tmp_path / "m.yaml", data={"name": "mnist", "val_size": 10})
    proc = lsexp("sweep", str(cfg), cwd=tmp_path, env={"LSEXP_DATA": str(tmp_path / "none")})
    assert_clean_error(proc, 2, "lsexp data fetch mnist")
    assert not (tmp_path / "results").exists()


def test_report_without_results_exit_2(tmp_path):
    assert_clean_error(lsexp("report", cwd=tmp_path), 2, "lsexp sweep")


@pytest.mark.slow
def test_fake_mnist_through_the_cli(tmp_path):
    """The real torchvision loading path (IDX files) under a sweep, via `data import`."""
    root = tmp_path / "data"
    write_fake_mnist(tmp_path / "src", "MNIST", n_train=300, n_test=100, gz_dir=tmp_path / "gz")
    env = {"LSEXP_DATA": str(root)}
    proc = lsexp("data", "import", "mnist", str(tmp_path / "gz"), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    check = lsexp("data", "check", cwd=tmp_path, env=env)
    assert check.returncode == 0 and "mnist" in check.stdout
    cfg = write_config(tmp_path / "m.yaml", data={"name": "mnist", "val_size": 50},
                       model={"name": "cnn", "width": 4}, train={"batch_size": 50})  # fmt: skip
    proc = lsexp("sweep", str(cfg), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(list(tmp_path.glob("results/tiny/runs/*/predictions.npz"))) == 2


def test_fake_cifar10_and_cifar100_through_a_sweep(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    for which, k in (("cifar10", 10), ("cifar100", 100)):
        write_fake_cifar(tmp_path / "data", which, n_per_batch=20)
        config = validate(tiny_config_dict(
            data={"name": which, "root": str(tmp_path / "data"), "val_size": 8},
            model={"name": "resnet", "depth": 8, "width": 4},
            train={"epochs": 1, "batch_size": 4, "augment": True},
            sweep={"alpha": [0.1], "seeds": [0]},
        ), "<test>")  # fmt: skip
        result = run_sweep(config, tmp_path / which)
        assert [o.status for o in result.outcomes] == ["done"], result.outcomes
        import numpy as np

        with np.load(next((tmp_path / which).glob("runs/*/predictions.npz"))) as f:
            assert f["test_logits"].shape[1] == k


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.skipif(not FASHION.exists(), reason="needs Debian's dataset-fashion-mnist")
def test_real_fashion_mnist_import_and_sweep(tmp_path):
    env = {"LSEXP_DATA": str(tmp_path / "data")}
    proc = lsexp("data", "import", "fashion_mnist", str(FASHION), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    proc = lsexp(
        "sweep", str(REPO / "configs" / "fashion_mnist.yaml"), "train.epochs=1",
        "sweep.alpha=[0.1]", "sweep.seeds=[0]", "model.name=mlp", "model.width=null",
        "--out", str(tmp_path / "out"), cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads(next((tmp_path / "out").glob("runs/*/run.json")).read_text())
    assert record["status"] == "done"
    assert record["test_metrics"]["accuracy"] > 0.75  # an MLP after one epoch on 55k images
    import numpy as np

    with np.load(next((tmp_path / "out").glob("runs/*/predictions.npz"))) as f:
        assert f["test_labels"].shape == (10000,)


def test_compile_flag_reaches_every_run(tmp_path, monkeypatch, tiny_config_file):
    from typer.testing import CliRunner

    from lsexp.cli import app
    from lsexp.training import engine

    monkeypatch.setattr(engine, "COMPILE_BACKEND", "eager")  # no C++ compiler needed
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(tiny_config_file), "--out", str(out),
                                      "--compile", "sweep.alpha=[0.1]"])  # fmt: skip
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(p.read_text()) for p in out.glob("runs/*/run.json")]
    assert record["provenance"]["engine"]["compile"] is True


@pytest.mark.parametrize(
    ("option", "needle"),
    [(["--margin", "-1"], "--margin: expected percentage points"),
     (["--margin", "nan"], "--margin: expected percentage points"),
     (["--claims-interval", "wild"], "--claims-interval: expected one of combined")],
)  # fmt: skip
def test_report_bad_claim_options_exit_2_and_write_nothing(tmp_path, option, needle):
    # Checked before any folder is read: the missing folder is never reached.
    proc = lsexp("report", str(tmp_path / "nowhere"), *option, cwd=tmp_path)
    assert_clean_error(proc, 2, needle)
    assert not (tmp_path / "nowhere").exists()
