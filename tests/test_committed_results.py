"""The committed Fashion-MNIST report is what `lsexp report` rebuilds from the committed
logits (results/README.md's promise): same per-α numbers, same verdicts."""

from __future__ import annotations

import csv
import json
import shutil
import warnings
from pathlib import Path

import pytest

from lsexp.reporting.report import write_report
from tests.conftest import REPO

COMMITTED = REPO / "results" / "fashion_mnist"


@pytest.mark.skipif(not (COMMITTED / "report").is_dir(), reason="no committed report")
def test_fashion_mnist_report_rebuilds_from_the_committed_logits(tmp_path: Path):
    folder = tmp_path / "fashion_mnist"
    shutil.copytree(COMMITTED, folder, ignore=shutil.ignore_patterns("report"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        write_report(folder)
    new, old = folder / "report", COMMITTED / "report"

    def rows(path: Path) -> list[dict[str, str]]:
        with path.open() as f:
            return list(csv.DictReader(f))

    a, b = rows(new / "summary.csv"), rows(old / "summary.csv")
    assert [r.keys() for r in a] == [r.keys() for r in b]
    for ra, rb in zip(a, b, strict=True):
        for key, va in ra.items():
            vb = rb[key]
            if va == vb:
                continue
            assert float(va) == pytest.approx(float(vb), rel=1e-9, abs=1e-12), key
    ca = json.loads((new / "claims.json").read_text())
    cb = json.loads((old / "claims.json").read_text())
    assert [(c["id"], c["verdict"], c["key_numbers"]) for c in ca] == [
        (c["id"], c["verdict"], c["key_numbers"]) for c in cb
    ]
