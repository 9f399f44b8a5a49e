"""Inputs that used to write into the wrong place, pass checks too late, or leave results
stale (issue "Nothing written in the wrong place"). Each test ran red on the code before
the fix. Commands run as a user runs them: a real `python -m lsexp` subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from lsexp.running.progress import SweepClock
from tests.conftest import run_lsexp, tiny_config_dict
from tests.fakedata import write_fake_mnist

EXIT_USAGE = 2


def write_config(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump(tiny_config_dict(**sections)))
    return path


def assert_refused(proc: subprocess.CompletedProcess, *needles: str, code: int = EXIT_USAGE):
    text = proc.stderr + proc.stdout
    assert proc.returncode == code, text
    assert "Traceback" not in text
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------
# Writes in the wrong place
# ---------------------------------------------------------------------------------------


def test_out_dot_never_overwrites_the_users_own_sweep_yaml(tmp_path):
    config = tmp_path / "sweep.yaml"
    text = "# my notes, keep them\n" + yaml.safe_dump(tiny_config_dict())
    config.write_text(text)
    proc = run_lsexp("sweep", "sweep.yaml", "--out", ".", cwd=tmp_path)
    assert_refused(proc, "sweep.yaml that lsexp did not write")
    assert config.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml"]


def test_empty_out_is_refused_and_writes_nothing(tmp_path):
    cfg = write_config(tmp_path / "tiny.yaml")
    proc = run_lsexp("sweep", str(cfg), "--out", "", cwd=tmp_path)
    assert_refused(proc, "--out: empty path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_a_non_empty_folder_that_is_not_a_sweep_is_refused(tmp_path):
    cfg = write_config(tmp_path / "tiny.yaml")
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("x")
    for args in ([], ["--dry-run"]):
        proc = run_lsexp("sweep", str(cfg), "--out", str(other), *args, cwd=tmp_path)
        assert_refused(proc, "not empty and holds no lsexp sweep", "chapter1.tex")
    assert sorted(p.name for p in other.iterdir()) == ["chapter1.tex"]


def test_an_out_that_is_a_file_is_refused(tmp_path):
    cfg = write_config(tmp_path / "tiny.yaml")
    (tmp_path / "f").write_text("x")
    proc = run_lsexp("sweep", str(cfg), "--out", str(tmp_path / "f"), cwd=tmp_path)
    assert_refused(proc, "is a file, not a folder")


# ---------------------------------------------------------------------------------------
# Checks before anything is written, in the dry run as in the sweep
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dry", [False, True])
def test_val_size_as_large_as_the_training_split_is_refused_before_writing(tmp_path, dry):
    cfg = write_config(tmp_path / "tiny.yaml", data={"val_size": 5000})
    out = tmp_path / "out"
    args = ["--dry-run"] if dry else []
    proc = run_lsexp("sweep", str(cfg), "--out", str(out), *args, cwd=tmp_path)
    assert_refused(proc, "data.val_size: 5000 leaves no training images")
    assert not out.exists()


def test_batch_larger_than_the_training_part_is_refused_before_writing(tmp_path):
    cfg = write_config(tmp_path / "tiny.yaml", data={"val_size": 4900}, train={"batch_size": 256})
    proc = run_lsexp("sweep", str(cfg), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert_refused(proc, "train.batch_size: 256 is larger than the 100 training images")
    assert not (tmp_path / "out").exists()


def test_dry_run_exits_2_when_the_dataset_is_missing_and_still_shows_the_plan(tmp_path):
    cfg = write_config(tmp_path / "m.yaml", data={"name": "mnist", "val_size": 10})
    proc = run_lsexp("sweep", str(cfg), "--dry-run", cwd=tmp_path,
                     env={"LSEXP_DATA": str(tmp_path / "data")})  # fmt: skip
    assert_refused(proc, "mnist: not found", "lsexp data fetch mnist")
    assert "would train" in proc.stdout and "NOT READY" in proc.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.epochs=true", "train.epochs: Input should be a valid integer, got True"),
        ("train.lr=.inf", "train.lr: Input should be a finite number"),
        ("train.lr=.nan", "train.lr: Input should be a finite number"),
        ("train.epochs=1000000000000", "train.epochs: Input should be less than or equal"),
        ("sweep.seeds=[9223372036854775808]", "sweep.seeds.0: Input should be less than"),
        ("data.split_seed=-1", "data.split_seed: Input should be greater than or equal to 0"),
        ("train.lr='0.1'", "train.lr: Input should be a valid number, got '0.1'"),
        ("train.augment=1", "train.augment: Input should be a valid boolean"),
        ("data.root=''", "data.root: empty path"),
        ("eval.n_bins=0", "eval.n_bins: Input should be greater than 0"),
    ],
)
def test_values_that_used_to_be_accepted_wrongly_are_refused(tmp_path, override, needle):
    cfg = write_config(tmp_path / "tiny.yaml")
    for args in ([], ["--dry-run"]):
        proc = run_lsexp("sweep", str(cfg), override, *args, cwd=tmp_path)
        assert_refused(proc, f"override '{override}'", needle)
    assert not (tmp_path / "results").exists()


def test_a_negative_claim_grace_is_refused(tmp_path):
    cfg = write_config(tmp_path / "tiny.yaml")
    proc = run_lsexp("sweep", str(cfg), "--claim-grace", "-5", cwd=tmp_path)
    assert proc.returncode == EXIT_USAGE and "--claim-grace" in proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.warmup_epochs=5", "train: warmup_epochs must be smaller than epochs"),
        ("eval.tta=2", "eval.tta: 2 averages over mirrored"),
    ],
)
def test_a_check_across_keys_names_the_override_not_a_line_of_the_file(tmp_path, override, needle):
    cfg = write_config(tmp_path / "tiny.yaml")
    proc = run_lsexp("sweep", str(cfg), override, "--dry-run", cwd=tmp_path)
    assert_refused(proc, f"override '{override}' (with {cfg})", needle)
    assert f"{cfg}:" not in proc.stderr  # no line of the file is blamed


# ---------------------------------------------------------------------------------------
# Results that used to stay stale
# ---------------------------------------------------------------------------------------


@pytest.fixture
def finished(tmp_path) -> tuple[Path, Path]:
    cfg = write_config(tmp_path / "tiny.yaml")
    out = tmp_path / "out"
    proc = run_lsexp("sweep", str(cfg), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return cfg, out


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(b"garbage"), "not a .npz archive"),
        (lambda p: p.write_bytes(p.read_bytes()[:300]), "not a .npz archive"),
        (lambda p: np.savez(p, junk=np.zeros(3)), "lacks val_logits"),
        (
            lambda p: np.savez(
                p,
                val_logits=np.zeros((2, 10), np.float32),
                val_labels=np.zeros(2, np.int64),
                test_logits=np.zeros((2, 10), np.float32),
                test_labels=np.zeros(2, np.int64),
            ),
            "was changed after the run wrote it",
        ),  # fmt: skip
    ],
)
def test_an_unreadable_run_is_not_done_and_is_trained_again(finished, damage, reason):
    cfg, out = finished
    run = sorted(out.glob("runs/*a0.20*"))[0]
    damage(run / "predictions.npz")
    status = run_lsexp("status", str(out), "--json")
    states = [r["status"] for r in json.loads(status.stdout)[0]["runs"]]
    assert states == ["done", "pending"], status.stdout
    assert reason in status.stderr

    report = run_lsexp("report", str(out))
    assert report.returncode == 0, report.stderr
    assert reason in report.stderr and "allow_pickle" not in report.stderr + report.stdout
    assert "allow_pickle" not in (out / "report" / "summary.md").read_text()

    again = run_lsexp("sweep", str(cfg), "--out", str(out))
    assert again.returncode == 0, again.stderr
    warning = next(x for x in (again.stdout + again.stderr).splitlines() if "warning" in x)
    assert reason in warning and warning.endswith("it will be trained again")
    assert "1 trained, 1 already finished" in again.stdout
    status = run_lsexp("status", str(out), "--json")
    assert [r["status"] for r in json.loads(status.stdout)[0]["runs"]] == ["done", "done"]


def test_a_new_report_never_keeps_files_of_an_older_one(finished):
    _, out = finished
    assert run_lsexp("report", str(out)).returncode == 0
    stale = out / "report" / "old_figure.png"
    stale.write_bytes(b"from an older report")
    assert run_lsexp("report", str(out)).returncode == 0
    assert not stale.exists()
    assert not list(out.glob(".report-*"))  # the building folder is gone too


def test_one_broken_sweep_does_not_stop_report_or_status_of_the_others(finished, tmp_path):
    _, out = finished
    results = tmp_path / "results"
    results.mkdir()
    os.rename(out, results / "good")
    (results / "broken").mkdir()
    (results / "broken" / "sweep.yaml").write_text("config: [unclosed\n")
    for command in ("status", "report"):
        proc = run_lsexp(command, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "warning: skipped results/broken" in proc.stderr
    assert (results / "good" / "report" / "index.html").exists()
    named = run_lsexp("report", "results/broken", cwd=tmp_path)
    assert_refused(named, "results/broken")


# ---------------------------------------------------------------------------------------
# Data commands leave nothing half-made and name the setting
# ---------------------------------------------------------------------------------------


def test_importing_garbage_leaves_nothing_in_the_data_root(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # fmt: skip
        (src / name).write_bytes(b"not an idx file at all")
    root = tmp_path / "data"
    proc = run_lsexp("data", "import", "mnist", str(src), "--root", str(root))
    assert_refused(proc, "nothing was imported", str(src / "train-images-idx3-ubyte"))
    assert not root.exists()


def test_data_check_calls_broken_files_corrupt_not_missing(tmp_path):
    root = tmp_path / "data"
    write_fake_mnist(root, "MNIST")
    images = next(root.rglob("train-images-idx3-ubyte"))
    images.write_bytes(images.read_bytes()[:-10])
    proc = run_lsexp("data", "check", "--root", str(root))
    line = next(x for x in proc.stdout.splitlines() if x.startswith("mnist "))
    assert "corrupt" in line and "missing" not in line
    assert "truncated" in proc.stdout


def test_fetch_without_network_leaves_no_empty_folder(tmp_path):
    root = tmp_path / "data"
    env = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    proc = run_lsexp("data", "fetch", "mnist", "--root", str(root), env=env)
    assert_refused(proc, "download failed", "nothing was written")
    assert not root.exists()


def test_lsexp_data_pointing_at_a_file_is_named(tmp_path):
    bogus = tmp_path / "file"
    bogus.write_text("x")
    cfg = write_config(tmp_path / "m.yaml", data={"name": "mnist", "val_size": 10})
    for args in (["data", "check"], ["sweep", str(cfg), "--dry-run"]):
        proc = run_lsexp(*args, env={"LSEXP_DATA": str(bogus)}, cwd=tmp_path)
        assert_refused(proc, "$LSEXP_DATA points at", "not a folder")


def test_data_check_does_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from lsexp.cli import app\n"
        "try:\n    app(['data', 'check', '--root', sys.argv[1]])\n"
        "except SystemExit:\n    pass\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.stdout.strip().splitlines()[-1] == "False", proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------
# Progress and output
# ---------------------------------------------------------------------------------------


class _FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_sweep_eta_comes_from_finished_runs_not_a_speed_window():
    now = _FakeTime()
    clock = SweepClock(4, now=now)
    assert clock.eta() is None  # nothing measured yet
    clock.start_run()
    now.t = 30.0
    clock.progress(0.25)  # a quarter of the first run in 30 s: 120 s a run
    assert clock.eta() == pytest.approx(90 + 3 * 120)
    now.t = 100.0
    clock.finish_run()  # the first run took 100 s
    assert clock.eta() == pytest.approx(3 * 100)
    clock.start_run()
    now.t = 160.0  # 60 s into the second run: 40 s of it left, then two more
    assert clock.eta() == pytest.approx(40 + 2 * 100)


def test_resume_shows_stored_metrics_and_an_interrupt_does_not_point_at_report(finished):
    cfg, out = finished
    again = run_lsexp("sweep", str(cfg), "--out", str(out))
    row = next(x for x in again.stdout.splitlines() if "skipped-done" in x)
    assert "—" not in row and "0." in row  # stored accuracy, not a dash
    empty = write_config(cfg.parent / "other.yaml", sweep={"alpha": [0.3], "seeds": [5]})
    proc = subprocess.Popen([sys.executable, "-m", "lsexp", "sweep", str(empty), "--out",
                             str(cfg.parent / "o2")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 60
    while not list((cfg.parent / "o2").glob("runs/*/.claim")):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Next: lsexp report" not in stdout + stderr


def test_report_prints_warnings_before_its_table_and_fits_80_columns(finished):
    _, out = finished
    run = sorted(out.glob("runs/*a0.20*"))[0]
    (run / "run.json").write_text("{broken")
    proc = run_lsexp("report", str(out), env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert "warning: skipped" in proc.stderr
    table = [line for line in proc.stdout.splitlines() if "─" in line or "accuracy" in line]
    assert len(table) >= 2 and all(len(line) <= 80 for line in table)
    assert not any(line.startswith("warning") for line in proc.stdout.splitlines())


# ---------------------------------------------------------------------------------------
# Processes left behind
# ---------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in "ZX":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZX"


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to find the workers")
def test_workers_stop_when_their_parent_is_killed(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", model={"name": "cnn", "width": 8},
                       train={"epochs": 30}, sweep={"alpha": [0.0, 0.1], "seeds": [0]})  # fmt: skip
    out = tmp_path / "out"
    parent = subprocess.Popen([sys.executable, "-m", "lsexp", "sweep", str(cfg), "--workers",
                               "2", "--out", str(out)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while len(list(out.glob("runs/*/.claim"))) < 2:  # both workers are training
        assert time.time() < deadline and parent.poll() is None
        time.sleep(0.05)
    workers = _children(parent.pid)
    assert len(workers) == 2
    parent.kill()
    parent.wait()
    deadline = time.time() + 30
    while any(_alive(w) for w in workers):
        assert time.time() < deadline, "workers still training after their parent died"
        time.sleep(0.1)
    assert not list(out.glob("runs/*/.claim"))  # claims released on the way out
    assert not list(out.glob("runs/*/run.json"))  # stopped mid-run, nothing half-written
