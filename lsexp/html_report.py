"""One self-contained HTML page for a report: claims, summary table, figures, settings.

The page loads nothing: CSS and the one script are inline, figures are embedded as
`data:image/png;base64,...`, and a Content-Security-Policy forbids every other source, so
it opens the same from a laptop, an e-mail attachment or a closed network, and prints.
Every piece of user text goes through `html.escape`; the only markup taken from the
caller's text is the `code` span of the intro.

The inline script sets `<body data-images-ok="true">` once the window has loaded and every
`<img>` decoded (`complete` and `naturalWidth > 0`), `"false"` otherwise; the browser test
reads it from Chromium's `--dump-dom`.
"""

from __future__ import annotations

import base64
import json
import math
import numbers
import re
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

VERDICTS = ("supported", "not supported", "inconclusive")
CLAIM_KEYS = ("claim", "verdict", "rule", "reason")
SIGNIFICANT_DIGITS = 4
MISSING = "—"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# default-src 'none' blocks every fetch the page could make; inline style and script are
# the page's own, and images may only be the embedded data URIs.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

_CSS = """
:root { color-scheme: light; --ink: #1a1a1a; --muted: #5c5c5c; --rule: #d0d0d0; }
* { box-sizing: border-box; }
html { background: #f4f3ef; }
body {
  margin: 2rem auto; padding: 2.5rem 3rem; max-width: 60rem; background: #fff; color: var(--ink);
  font: 16px/1.55 Georgia, "Times New Roman", Times, serif;
  box-shadow: 0 1px 4px rgba(0, 0, 0, .12);
}
h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 1rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .8rem; padding-bottom: .2rem;
     border-bottom: 1px solid var(--rule); }
p { margin: 0 0 .9rem; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85em; }
code { background: #f1f1ee; padding: 0 .25em; border-radius: 3px; }
pre code { background: none; padding: 0; font-size: inherit; }
pre { background: #f7f7f4; border: 1px solid var(--rule); padding: .8rem 1rem;
      overflow-x: auto; white-space: pre-wrap; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
.note { color: var(--muted); font-size: .85rem; }
th, td { padding: .35rem .6rem; vertical-align: top; text-align: left; }
thead th { border-top: 2px solid var(--ink); border-bottom: 1px solid var(--ink); }
tbody tr:last-child td { border-bottom: 2px solid var(--ink); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.claims td:first-child { min-width: 14rem; }
table.claims .rule { font-size: .85em; color: var(--muted); }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: 1rem; font-size: .8rem;
         font-family: Helvetica, Arial, sans-serif; font-weight: bold; white-space: nowrap;
         border: 1px solid; }
.badge.supported { color: #14532d; background: #dcfce7; border-color: #15803d; }
.badge.not-supported { color: #7f1d1d; background: #fee2e2; border-color: #b91c1c; }
.badge.inconclusive { color: #713f12; background: #fef3c7; border-color: #b45309; }
figure { margin: 1.5rem 0; text-align: center; }
figure img { max-width: 100%; height: auto; }
figcaption { margin-top: .4rem; font-size: .9rem; color: var(--muted); text-align: left; }
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

_SCRIPT = """
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


def format_value(value: Any) -> str:
    """A table cell: floats to 4 significant digits, NaN and None as an em dash, ±inf as ∞.

    Integers (and bools) print as they are; |x| < 1e-4 and |x| >= 1e6 use exponent form so
    a small ECE difference never rounds to 0.0000.
    """
    if value is None:
        return MISSING
    if isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x):
            return MISSING
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x == 0:
            return "0"
        # Round first, so 0.99996 gives 1.000 (4 digits), not 1.0000.
        x = float(f"{x:.{SIGNIFICANT_DIGITS - 1}e}")
        if not 1e-4 <= abs(x) < 1e6:
            return f"{x:.{SIGNIFICANT_DIGITS - 1}e}"
        decimals = max(0, SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(x))))
        return f"{x:.{decimals}f}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real)


# ---------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------


def _claims_table(claims: list[dict]) -> str:
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
            f'<td><span class="rule">{escape(str(claim["rule"]))}</span></td>'
            f"<td>{escape(str(claim['reason']))}</td></tr>"
        )
    return (
        '<div class="table-wrap"><table class="claims">\n'
        "<thead><tr><th>Claim</th><th>Verdict</th><th>Rule</th><th>Reason</th></tr></thead>\n"
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table></div>"
    )


def _summary_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    # A column is right-aligned when every value it shows is a number (or missing).
    align = {
        key: ' class="num"' if all(r.get(key) is None or _is_number(r[key]) for r in rows) else ""
        for key, _ in columns
    }
    head = "".join(f'<th scope="col"{align[key]}>{escape(h)}</th>' for key, h in columns)
    body = []
    for row in rows:
        cells = (f"<td{align[key]}>{escape(format_value(row.get(key)))}</td>" for key, _ in columns)
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<div class="table-wrap"><table class="summary">\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n"
        "</table></div>\n"
        f'<p class="note">Numbers to {SIGNIFICANT_DIGITS} significant digits; '
        f"{MISSING} = not available.</p>"
    )


def _png_data_uri(path: Path) -> tuple[str, int, int]:
    """(data URI, width, height) of a PNG file; the size comes from its IHDR chunk."""
    data = Path(path).read_bytes()
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 24:
        raise ValueError(f"{path}: expected a PNG file, got {data[:8]!r}...")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
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
    summary_rows: list[dict],
    summary_columns: list[tuple[str, str]],
    figures: list[tuple[str, Path, str]],
    settings_yaml: str,
    provenance: dict,
) -> str:
    """The whole report as one self-contained HTML5 document.

    claims: dicts with `claim`, `verdict` (one of VERDICTS), `rule` and `reason`; None
    leaves the section out. summary_columns: (row key, header) pairs, in order.
    figures: (title, PNG path, caption); each PNG is read and embedded. Raises ValueError
    for an unknown verdict, a claim without one of its keys, or a figure that is not a PNG.
    """
    sections = [f"<h1>{escape(title)}</h1>", inline_markdown(intro_md)]
    if claims is not None:
        sections += ["<h2>Claims</h2>", _claims_table(claims)]
    sections += ["<h2>Summary</h2>", _summary_table(summary_rows, summary_columns)]
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
