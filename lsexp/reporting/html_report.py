"""One self-contained HTML page for a report: claims, summary table, figures, settings.

The page loads nothing: CSS and the one script are inline, figures are embedded as
`data:image/png;base64,...`, and a Content-Security-Policy forbids every other source, so
it opens the same from a laptop, an e-mail attachment or a closed network, and prints.
Every piece of user text goes through `html.escape`; the only markup taken from the
caller's text is the `code` span of the intro.

The inline script opens every folded section (the claims' decision rules) before printing,
and sets `<body data-images-ok="true">` once the window has loaded and every `<img>`
decoded (`complete` and `naturalWidth > 0`), `"false"` otherwise; the browser test reads
it from Chromium's `--dump-dom`.

Figures are shown at their printed size (a PNG's own dots per inch, at 96 CSS px per inch)
and shrink only when the page column is narrower.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from lsexp.analysis.claims import VERDICTS

CLAIM_KEYS = ("claim", "verdict", "rule", "reason")
MISSING = "—"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CSS_PX_PER_INCH = 96  # CSS reference pixel: 1in = 96px (CSS Values and Units, Level 3)
PAGE_MAX_WIDTH_PX = 1200  # the page column, padding included; a laptop screen holds it
PAGE_PADDING_PX = 48  # left and right, each: the content is 1104 px wide at most


@dataclass(frozen=True)
class Cell:
    """A table cell as printed: `text` (a mean, or any text), `spread` (the number after
    ±, or ""), `best` (marked bold)."""

    text: str
    spread: str = ""
    best: bool = False


@dataclass(frozen=True)
class Table:
    """A summary table: a title, column headers, rows of cells, and a note under it."""

    title: str
    headers: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""


# default-src 'none' blocks every fetch the page could make; inline style and script are
# the page's own, and images may only be the embedded data URIs.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

_CSS = (
    """
:root { color-scheme: light; --ink: #1a1a1a; --muted: #555; --rule: #d0d0d0; }
* { box-sizing: border-box; }
html { background: #f4f3ef; }
body {
  margin: 2rem auto; padding: 2.5rem PADpx; max-width: MAXpx; background: #fff;
  color: var(--ink); font: 16px/1.55 Georgia, "Times New Roman", Times, serif;
  box-shadow: 0 1px 4px rgba(0, 0, 0, .12);
}
@media (max-width: 50rem) { body { margin: 0; padding: 1.2rem 1rem; box-shadow: none; } }
h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 1rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .8rem; padding-bottom: .2rem;
     border-bottom: 1px solid var(--rule); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .3rem; }
p { margin: 0 0 .9rem; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85em; }
code { background: #f1f1ee; padding: 0 .25em; border-radius: 3px; }
pre code { background: none; padding: 0; font-size: inherit; }
pre { background: #f7f7f4; border: 1px solid var(--rule); padding: .8rem 1rem;
      overflow-x: auto; white-space: pre-wrap; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
.note { color: var(--muted); font-size: .9rem; }
th, td { padding: .35rem .6rem; vertical-align: top; text-align: left; }
thead th { border-top: 2px solid var(--ink); border-bottom: 1px solid var(--ink);
           vertical-align: bottom; }
tbody tr:last-child td { border-bottom: 2px solid var(--ink); }
table.summary th { font-weight: normal; font-style: italic; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums lining-nums; }
td.num { white-space: nowrap; }
td.num strong { font-weight: bold; }
td.num .sd { color: var(--muted); }
table.claims { width: 100%; }
table.claims td:first-child { width: 30%; }
table.claims details { margin-top: .4rem; }
table.claims summary { cursor: pointer; color: var(--muted); font-size: .9rem; }
table.claims details p { margin: .3rem 0 0; font-size: .9rem; max-width: 45rem; }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: 1rem; font-size: .8rem;
         font-family: Helvetica, Arial, sans-serif; font-weight: bold; white-space: nowrap;
         border: 1px solid; }
.badge.supported { color: #14532d; background: #dcfce7; border-color: #15803d; }
.badge.refuted { color: #7f1d1d; background: #fee2e2; border-color: #b91c1c; }
.badge.inconclusive { color: #713f12; background: #fef3c7; border-color: #b45309; }
figure { margin: 1.8rem 0; text-align: center; }
figure img { max-width: 100%; height: auto; }
figcaption { margin: .5rem auto 0; font-size: .9rem; color: var(--muted); text-align: left;
             max-width: 48rem; }
figcaption .fig-title { color: var(--ink); font-weight: bold; }
dl.provenance { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.provenance dt { font-weight: bold; }
dl.provenance dd { margin: 0; overflow-wrap: anywhere; }
@media print {
  html { background: #fff; }
  body { margin: 0; padding: 0; max-width: none; box-shadow: none; font-size: 11pt; }
  h2 { break-after: avoid; }
  figure, table, pre { break-inside: avoid; }
  .table-wrap { overflow: visible; }
  .badge { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
""".strip()
    .replace("MAXpx", f"{PAGE_MAX_WIDTH_PX}px")
    .replace("PADpx", f"{PAGE_PADDING_PX}px")
)

_SCRIPT = """
window.addEventListener("beforeprint", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
});
window.addEventListener("load", function () {
  var ok = Array.prototype.every.call(document.images, function (img) {
    return img.complete && img.naturalWidth > 0;
  });
  document.body.dataset.imagesOk = ok ? "true" : "false";
});
""".strip()


# ---------------------------------------------------------------------------------------
# Text and numbers
# ---------------------------------------------------------------------------------------


def inline_markdown(text: str) -> str:
    """Escaped HTML for plain text with `code` spans; blank lines separate paragraphs.

    Deliberately tiny: anything that is not a backtick pair stays literal text, so no
    input can produce markup other than <p> and <code>.
    """
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    out = []
    for para in paragraphs:
        # Split keeps the code spans at odd indices; an unpaired backtick stays literal.
        parts = re.split(r"`([^`\n]+)`", " ".join(para.split()))
        body = "".join(
            f"<code>{escape(part)}</code>" if i % 2 else escape(part)
            for i, part in enumerate(parts)
        )
        out.append(f"<p>{body}</p>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------


def _claims_table(claims: list[dict]) -> str:
    """Claim, verdict, and the numbers behind it; the decision rule (long, and the same
    for every sweep) folds away under the numbers, opened for printing."""
    rows = []
    for i, claim in enumerate(claims):
        missing = [k for k in CLAIM_KEYS if k not in claim]
        if missing:
            raise ValueError(f"claims[{i}]: expected keys {list(CLAIM_KEYS)}, missing {missing}")
        verdict = str(claim["verdict"])
        if verdict not in VERDICTS:
            raise ValueError(f"claims[{i}].verdict: expected one of {VERDICTS}, got {verdict!r}")
        badge = f'<span class="badge {verdict.replace(" ", "-")}">{escape(verdict)}</span>'
        rows.append(
            f"<tr><td>{escape(str(claim['claim']))}</td><td>{badge}</td>"
            f"<td>{escape(str(claim['reason']))}"
            f'<details class="rule"><summary>Decision rule</summary>'
            f"<p>{escape(str(claim['rule']))}</p></details></td></tr>"
        )
    return (
        '<div class="table-wrap"><table class="claims">\n'
        "<thead><tr><th>Claim</th><th>Verdict</th><th>Evidence</th></tr></thead>\n"
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table></div>"
    )


def _cell(cell: Cell, numeric: bool) -> str:
    text = escape(cell.text.replace("-", "−") if numeric else cell.text)
    if cell.best:
        text = f"<strong>{text}</strong>"
    if cell.spread:
        text += f' <span class="sd">± {escape(cell.spread.replace("-", "−"))}</span>'
    return f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"


def _summary_table(table: Table) -> str:
    # Every column but one of words is numbers: right-aligned, tabular figures.
    numeric = [
        all(_looks_numeric(row[j].text) for row in table.rows) for j in range(len(table.headers))
    ]
    num_class = ' class="num"'
    head = "".join(
        f'<th scope="col"{num_class if num else ""}>{escape(h)}</th>'
        for h, num in zip(table.headers, numeric, strict=True)
    )
    body = [
        "<tr>" + "".join(_cell(c, num) for c, num in zip(row, numeric, strict=True)) + "</tr>"
        for row in table.rows
    ]
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (
        f"<h3>{escape(table.title)}</h3>\n"
        '<div class="table-wrap"><table class="summary">\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n"
        f"</table></div>\n{note}"
    )


def _looks_numeric(text: str) -> bool:
    return text == MISSING or bool(re.fullmatch(r"[-+]?[0-9][0-9.,e+\-]*( \(.*\))?", text))


def png_size(data: bytes) -> tuple[int, int, float | None]:
    """(width, height, dots per inch or None) of a PNG: IHDR, and the pHYs chunk if any.

    PNG spec (ISO/IEC 15948, 11.2.2 and 11.3.5.3): IHDR comes first; pHYs holds pixels per
    metre for x and y, and a unit byte (1 = metre).
    """
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 24:
        raise ValueError(f"expected a PNG file, got {data[:8]!r}...")
    width, height = struct.unpack(">II", data[16:24])
    pos, dpi = 8, None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"pHYs" and length == 9 and pos + 17 <= len(data):
            ppm_x, _, unit = struct.unpack(">IIB", data[pos + 8 : pos + 17])
            dpi = ppm_x * 0.0254 if unit == 1 and ppm_x > 0 else None
            break
        if kind in (b"IDAT", b"IEND"):  # pHYs must come before the image data
            break
        pos += 12 + length
    return width, height, dpi


def _png_data_uri(path: Path) -> tuple[str, int, int]:
    """(data URI, CSS width, CSS height) of a PNG file: its printed size at 96 px per inch
    when it records its resolution (a 300-dpi figure of 6 in shows 576 px wide, as large
    as on paper), else one CSS pixel per image pixel."""
    data = Path(path).read_bytes()
    try:
        width, height, dpi = png_size(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if dpi:
        width, height = round(width * CSS_PX_PER_INCH / dpi), round(height * CSS_PX_PER_INCH / dpi)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii"), width, height


def _figure(number: int, title: str, path: Path, caption: str) -> str:
    uri, width, height = _png_data_uri(path)
    return (
        f'<figure id="fig-{number}">\n'
        f'<img src="{uri}" alt="{escape(title)}" width="{width}" height="{height}">\n'
        f'<figcaption><span class="fig-title">Figure {number}: {escape(title)}.</span> '
        f"{escape(caption)}</figcaption>\n</figure>"
    )


def _provenance_list(provenance: Mapping[str, Any]) -> str:
    items = []
    for key, value in provenance.items():
        if isinstance(value, str):
            text = value
        elif isinstance(value, Mapping | list | tuple):
            text = json.dumps(value, default=str, ensure_ascii=False)
        else:
            text = str(value)
        items.append(f"<dt>{escape(str(key))}</dt><dd>{escape(text)}</dd>")
    return '<dl class="provenance">\n' + "\n".join(items) + "\n</dl>"


# ---------------------------------------------------------------------------------------
# Page
# ---------------------------------------------------------------------------------------


def render_index(
    *,
    title: str,
    intro_md: str,
    claims: list[dict] | None,
    tables: list[Table],
    figures: list[tuple[str, Path, str]],
    settings_yaml: str,
    provenance: dict,
) -> str:
    """The whole report as one self-contained HTML5 document.

    claims: dicts with `claim`, `verdict` (one of VERDICTS), `rule` and `reason`; None
    leaves the section out. tables: the summary, cells already formatted.
    figures: (title, PNG path, caption); each PNG is read and embedded. Raises ValueError
    for an unknown verdict, a claim without one of its keys, or a figure that is not a PNG.
    """
    sections = [f"<h1>{escape(title)}</h1>", inline_markdown(intro_md)]
    if claims is not None:
        sections += ["<h2>Claims</h2>", _claims_table(claims)]
    sections += ["<h2>Summary</h2>", *(_summary_table(t) for t in tables)]
    if figures:
        sections.append("<h2>Figures</h2>")
        sections += [_figure(i, t, p, c) for i, (t, p, c) in enumerate(figures, start=1)]
    sections += [
        "<h2>Settings</h2>",
        f"<pre><code>{escape(settings_yaml.rstrip())}</code></pre>",
        "<h2>Provenance</h2>",
        _provenance_list(provenance),
    ]
    body = "\n".join(s for s in sections if s)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{escape(title)}</title>
<link rel="icon" href="data:,">
<style>
{_CSS}
</style>
</head>
<body>
<main>
{body}
</main>
<script>
{_SCRIPT}
</script>
</body>
</html>
"""
