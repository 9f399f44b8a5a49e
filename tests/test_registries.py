"""Adding a metric is one row of `runs.METRICS` (plus its function), adding an objective
is one `objectives.OBJECTIVES` entry: a toy of each is found where a user looks."""

from __future__ import annotations

import csv
import dataclasses

import pytest

from lsexp.config import validate
from lsexp.reporting import runs
from lsexp.reporting.report import write_report
from lsexp.running.sweep import run_sweep
from lsexp.training import objectives
from tests.conftest import tiny_config_dict


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("reg") / "out"
    config = validate(tiny_config_dict(sweep={"alpha": [0.0, 0.2], "seeds": [0]}), "<test>")
    run_sweep(config, out)
    return out


def test_a_toy_metric_row_reaches_csv_markdown_and_the_page(finished, monkeypatch):
    toy = runs.Metric("toy_share", "toy share (%)", lambda r: float((r.labels == 0).mean()),
                      "max", 100, 2, md=(1,), html=2)  # fmt: skip
    monkeypatch.setattr(runs, "METRICS", [*runs.METRICS, toy])
    write_report(finished)
    report = finished / "report"
    with (report / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(0 < float(r["toy_share_mean"]) < 1 for r in rows)
    assert "toy share (%)" in (report / "summary.md").read_text()
    assert "toy share (%)" in (report / "index.html").read_text()
    with (report / "runs.csv").open() as f:
        assert all("toy_share" in r for r in csv.DictReader(f))


def test_a_toy_objective_entry_is_trained_by_name(tmp_path, monkeypatch):
    calls = []

    def toy_loss(logits, targets, strength):
        calls.append(strength)
        return objectives.smoothed_cross_entropy(logits, targets, 0.0) * (1 + strength)

    toy = dataclasses.replace(objectives.OBJECTIVES["label_smoothing"], name="toy", loss=toy_loss)
    monkeypatch.setitem(objectives.OBJECTIVES, "toy", toy)
    from lsexp.training.data import load_splits
    from lsexp.training.engine import train_run

    config = validate(tiny_config_dict(train={"epochs": 1}), "<test>")
    splits = load_splits("fashion_mnist_mini", None, 500)
    import torch

    result = train_run(config, 0.5, 0, splits, torch.device("cpu"), objective="toy")
    assert result.status == "done" and calls and set(calls) == {0.5}


def test_the_headline_names_only_settings_the_recipe_uses():
    from lsexp.reporting.tables import setting_sentence

    fast_dict = tiny_config_dict(
        model={"name": "airbench", "width": 16}, train={"recipe": "airbench94", "epochs": 1}
    )
    fast = validate(fast_dict, "<test>")
    text = setting_sentence(fast)
    assert "airbench94" in text
    assert "sgd" not in text and "cosine" not in text and "augment" not in text
    plain = setting_sentence(validate(tiny_config_dict(), "<test>"))
    assert "sgd lr 0.05, cosine schedule" in plain and "no augmentation" in plain
