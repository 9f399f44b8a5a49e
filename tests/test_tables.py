"""The summary tables (summary.md, summary.tex, index.html): units, decimals, best marked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lsexp.config import validate
from lsexp.reporting import report as rp
from lsexp.reporting.report import METRIC_NAMES, AlphaGroup, Report
from tests.conftest import tiny_config_dict


def _group(alpha: float, n: int = 3, **values: list[float]) -> AlphaGroup:
    """An α group of n runs; each metric from `values` (one value per run), else 0.5."""
    g = AlphaGroup(alpha)
    for i in range(n):
        row = {"alpha": alpha, "seed": i}
        row.update({m: values[m][i] if m in values else 0.5 for m in METRIC_NAMES})
        g.runs.append(row)
    return g


def _report(groups: list[AlphaGroup]) -> Report:
    config = validate(tiny_config_dict(), "<test>")
    rows = [r for g in groups for r in g.runs]
    return Report(Path("/nonexistent"), config, groups, rows, 0, 0, [], [], "t")


# Accuracy means 84.5012 % and 84.5049 %: alike at the usual 2 decimals.
FLOOR = [0.01] * 3  # ECE noise floor of 1 %
CLOSE = [
    _group(0.0, accuracy=[0.845012, 0.845012, 0.845012], ece=[0.0912, 0.0931, 0.0950],
           ece_floor=FLOOR),
    _group(0.1, accuracy=[0.845049, 0.845049, 0.845049], ece=[0.0400, 0.0410, 0.0420],
           ece_floor=FLOOR),
    _group(0.2, accuracy=[0.801, 0.802, 0.803], ece=[0.0400, 0.0410, 0.0420],
           ece_floor=FLOOR),
]  # fmt: skip


def test_decimals_grow_until_the_best_is_told_apart():
    cells = rp.column_cells(CLOSE, rp.ACCURACY)
    assert [c.text for c in cells] == ["84.501", "84.505", "80.200"]  # one unit, 3 decimals
    assert [c.best for c in cells] == [False, True, False]
    assert [c.spread for c in cells] == ["0.000", "0.000", "0.100"]


def test_equal_means_are_both_marked():
    cells = rp.column_cells(CLOSE, rp.ECE)  # α 0.1 and 0.2: the same ECE values
    assert [c.text for c in cells] == ["9.31", "4.10", "4.10"]
    assert [c.best for c in cells] == [False, True, True]


def test_ece_means_within_the_noise_floor_of_the_best_are_all_marked():
    # 4.10 % is best; 4.90 % is 0.8 pp away, below a 1 % floor: not ranked against it.
    # 5.60 % is 1.5 pp away: resolvably worse.
    groups = [_group(a, ece=[e] * 3, ece_floor=FLOOR)
              for a, e in ((0.0, 0.049), (0.1, 0.041), (0.2, 0.056))]  # fmt: skip
    assert [c.best for c in rp.column_cells(groups, rp.ECE)] == [True, True, False]


def test_one_seed_has_no_spread_and_missing_is_a_dash():
    groups = [_group(0.0, n=1, accuracy=[0.8]), AlphaGroup(0.1)]
    cells = rp.column_cells(groups, rp.ACCURACY)
    assert [(c.text, c.spread, c.best) for c in cells] == [("80.00", "", True), ("—", "", False)]


def test_latex_says_what_plus_minus_means_and_bolds_only_distinct_bests():
    tex = rp.summary_latex(_report(CLOSE))
    assert "Mean $\\pm$ sample std over $n = 3$ seeds; bold: best." in tex
    rows = [line for line in tex.splitlines() if re.match(r"^0(\.\d+)? & ", line)]
    acc = [row.split(" & ")[2] for row in rows]
    assert acc == ["84.501 $\\pm$ 0.000", "\\textbf{84.505 $\\pm$ 0.000}", "80.200 $\\pm$ 0.100"]
    # No two cells of a column print alike unless both or neither are bold.
    for j in range(2, 7):
        cells = [row.split(" & ")[j].removesuffix(" \\\\") for row in rows]
        plain = [c.removeprefix("\\textbf{").removesuffix("}") for c in cells]
        for a in range(len(cells)):
            for b in range(len(cells)):
                if plain[a] == plain[b]:
                    assert cells[a].startswith("\\textbf") == cells[b].startswith("\\textbf")


def test_latex_one_seed_note():
    tex = rp.summary_latex(_report([_group(0.0, n=1), _group(0.1, n=1)]))
    assert "One seed per $\\alpha$ (no $\\pm$)" in tex and "$\\pm$ 0" not in tex


def test_markdown_one_unit_fixed_decimals_best_in_bold():
    md = rp.summary_markdown(_report(CLOSE), figures=["accuracy_vs_alpha", "reliability"])
    assert "accuracy (%)" in md and "ECE (%)" in md and "conf. − acc. (pp)" in md
    assert "| **84.505** ± 0.000 |" in md and "| 84.501 ± 0.000 |" in md
    assert "| [84.501, 84.501] |" in md  # the interval in the column's unit and decimals
    assert "`accuracy_vs_alpha`, `reliability`" in md and "PDF (vector) and 300-dpi PNG" in md
    assert "projection" not in md  # lists the figures written, no others


def test_html_tables_fit_and_keep_units():
    tables = rp.html_tables(_report(CLOSE))
    assert len(tables) == 7  # 5 summary tables, post-hoc calibrators, selective classification
    for t in tables:
        assert len(t.headers) <= 9  # tables of ≤ 9 columns, not one of 18
        for row in t.rows:
            assert len(row) == len(t.headers)
    headers = [h for t in tables for h in t.headers]
    assert "accuracy (%)" in headers and "ECE (%)" in headers and "conf. − acc. (pp)" in headers
    # Every metric of the old 18-column table is still there.
    for h in ("NLL", "Brier", "adaptive ECE (%)", "classwise ECE (%)", "debiased l2 CE (%)",
              "mean conf. (%)", "logit gap", "T", "NLL after TS", "ECE after TS (%)"):  # fmt: skip
        assert h in headers, h


@pytest.mark.parametrize("col", [rp.ACCURACY, rp.NLL, rp.BRIER, rp.ECE, rp.LOGIT_GAP])
def test_each_column_prints_the_same_decimals(col):
    groups = [_group(a, **{col.metric: [0.1 + a, 0.2 + a / 3, 0.3]}) for a in (0.0, 0.05, 0.5)]
    cells = rp.column_cells(groups, col)
    decimals = {len(c.text.partition(".")[2]) for c in cells} | {
        len(c.spread.partition(".")[2]) for c in cells}  # fmt: skip
    assert decimals == {col.decimals}
