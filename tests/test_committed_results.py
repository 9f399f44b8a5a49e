"""The committed Fashion-MNIST reports are what `lsexp report` rebuilds from the committed
logits (results/README.md's promise): same per-α and per-method numbers, same verdicts."""

from __future__ import annotations

import csv
import json
import shutil
import warnings
from pathlib import Path

import pytest

from lsexp.reporting.report import write_report
from tests.conftest import REPO

COMMITTED = ("fashion_mnist", "alternatives_fashion_mnist")


@pytest.mark.parametrize("name", COMMITTED)
def test_a_committed_report_rebuilds_from_the_committed_logits(tmp_path: Path, name: str):
    committed = REPO / "results" / name
    if not (committed / "report").is_dir():
        pytest.skip(f"no committed report in results/{name}")
    folder = tmp_path / name
    shutil.copytree(committed, folder, ignore=shutil.ignore_patterns("report"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        write_report(folder)
    new, old = folder / "report", committed / "report"

    def rows(path: Path) -> list[dict[str, str]]:
        with path.open() as f:
            return list(csv.DictReader(f))

    tables = ["summary.csv"] + (["methods.csv"] if (old / "methods.csv").exists() else [])
    for table in tables:
        a, b = rows(new / table), rows(old / table)
        assert [r.keys() for r in a] == [r.keys() for r in b], table
        for ra, rb in zip(a, b, strict=True):
            for key, va in ra.items():
                vb = rb[key]
                if va == vb:
                    continue
                assert float(va) == pytest.approx(float(vb), rel=1e-9, abs=1e-12), (table, key)
    ca = json.loads((new / "claims.json").read_text())
    cb = json.loads((old / "claims.json").read_text())
    assert [(c["id"], c["verdict"], c["key_numbers"]) for c in ca] == [
        (c["id"], c["verdict"], c["key_numbers"]) for c in cb
    ]
