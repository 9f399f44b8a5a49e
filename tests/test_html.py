"""The HTML report page: content and escaping (fast), and a real headless-Chromium render.

The browser tests load the page from file:// in Debian's Chromium and read back the
`data-images-ok` flag the page's own script sets, plus Chromium's log of the page console.
Each failure mode the check relies on is shown to fail once (console.error, a broken
image), so a passing check means something.
"""

from __future__ import annotations

import base64
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lsexp.reporting.html_report import Cell, Table, inline_markdown, png_size, render_index

CHROMIUM = Path("/usr/bin/chromium")
# Without these flags Chromium phones home (updates, sync, QUIC), which a closed network
# refuses; a fresh --user-data-dir keeps runs independent.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
# With --enable-logging=stderr Chromium logs every page console message (log, warn, error,
# uncaught exceptions, CSP violations alike) as `[pid:tid:time:INFO:CONSOLE:LINE] "text",
# source: URL (LINE)`; older builds wrote `INFO:CONSOLE(LINE)`. The dbus and GPU ERROR
# lines of a headless container are Chromium's own and are not matched.
CONSOLE_LINE = re.compile(r":CONSOLE[:(]|Uncaught")
EVIL = '<script>alert("x")</script>'


def _png(path: Path, slope: float) -> Path:
    fig = Figure(figsize=(3, 2), dpi=60)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, slope])
    fig.savefig(path, format="png")
    return path


@pytest.fixture(scope="module")
def pngs(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("figs")
    return [_png(d / "a.png", 1.0), _png(d / "b.png", -1.0)]


CLAIMS = [
    {"claim": "Label smoothing lowers ECE", "verdict": "supported",
     "rule": "CI of ECE(α=0.1) − ECE(α=0) below 0", "reason": "−0.021 [−0.030, −0.012]"},
    {"claim": "Label smoothing raises accuracy", "verdict": "refuted",
     "rule": "CI of Δaccuracy above 0", "reason": "+0.001 [−0.004, 0.006]"},
    {"claim": "Smoothing beats temperature scaling", "verdict": "inconclusive",
     "rule": "needs ≥ 3 seeds", "reason": "n = 2"},
]  # fmt: skip
TABLES = [
    Table(
        "Calibration",
        ["α", "n", "ECE (%)", "NLL", "dataset"],
        [
            [Cell("0"), Cell("3"), Cell("4.12", "0.31"), Cell("0.512", "0.020"), Cell("mini")],
            [Cell("0.1"), Cell("3"), Cell("—"), Cell("0.498", "0.011", best=True), Cell("mini")],
            [Cell("0.2"), Cell("1"), Cell("-2.00", best=True), Cell("—"), Cell("mini")],
        ],
        note="Mean ± sample std over seeds.",
    )
]


def _page(pngs: list[Path], **overrides) -> str:
    kwargs = dict(
        title="Label smoothing on fashion_mnist",
        intro_md="Metrics from `predictions.npz` on true labels.\n\nSecond paragraph.",
        claims=CLAIMS,
        tables=TABLES,
        figures=[
            ("ECE vs alpha", pngs[0], "Mean over seeds; error bars are 95% t-intervals."),
            ("Reliability", pngs[1], "Seeds pooled, 15 equal-width bins."),
        ],
        settings_yaml="name: tiny\ntrain:\n  epochs: 2\n",
        provenance={"git commit": "abc1234", "lsexp": "0.1.0", "versions": {"torch": "2.4"}},
    )
    kwargs.update(overrides)
    return render_index(**kwargs)


# ---------------------------------------------------------------------------------------
# Unit tests: content, embedding, escaping, numbers
# ---------------------------------------------------------------------------------------


def test_page_has_every_claim_verdict_and_caption(pngs):
    page = _page(pngs)
    for c in CLAIMS:
        for key in ("claim", "rule", "reason"):
            assert c[key] in page
        assert f">{c['verdict']}</span>" in page
    for cls in ("supported", "refuted", "inconclusive"):
        assert f'class="badge {cls}"' in page
    assert "Mean over seeds; error bars are 95% t-intervals." in page
    assert "Seeds pooled, 15 equal-width bins." in page
    assert page.count("<figure") == 2 and page.count("<figcaption>") == 2
    assert 'alt="ECE vs alpha"' in page
    assert "<code>predictions.npz</code>" in page
    assert "<h2>Settings</h2>" in page and "epochs: 2" in page
    assert "<dt>git commit</dt><dd>abc1234</dd>" in page


def test_page_is_one_standalone_document(pngs):
    page = _page(pngs)
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert '<meta name="viewport"' in page
    assert "http://" not in page and "https://" not in page
    assert "file:" not in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)
    assert '<link rel="stylesheet"' not in page and "<script src" not in page


def test_images_are_the_png_files_as_data_uris(pngs):
    page = _page(pngs)
    uris = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(u) for u in uris] == [p.read_bytes() for p in pngs]
    # The size is declared, so the layout does not jump while images decode: the print
    # size (3 x 2 in, from the PNG's 60 dpi) at 96 CSS px per inch, not 180 x 120 pixels.
    assert 'width="288" height="192"' in page


def test_png_size_reads_the_resolution(tmp_path):
    fig = Figure(figsize=(2, 1), dpi=72)
    FigureCanvasAgg(fig)
    for dpi in (72, 130, 300):
        fig.savefig(tmp_path / "f.png", format="png", dpi=dpi)
        width, height, found = png_size((tmp_path / "f.png").read_bytes())
        assert (width, height) == (2 * dpi, dpi)
        assert found == pytest.approx(dpi, abs=0.02)  # stored as pixels per metre
    # Without a pHYs chunk: no resolution (one CSS pixel per image pixel).
    data = (tmp_path / "f.png").read_bytes()
    i = data.index(b"pHYs") - 4
    assert png_size(data[:i] + data[i + 21 :])[2] is None


def test_user_text_is_escaped(pngs):
    page = _page(
        pngs,
        title=EVIL,
        intro_md=f"before `{EVIL}` after {EVIL}",
        claims=[{"claim": EVIL, "verdict": "supported", "rule": EVIL, "reason": EVIL}],
        tables=[Table(EVIL, [EVIL], [[Cell(EVIL, EVIL)]], note=EVIL)],
        figures=[(EVIL, pngs[0], EVIL)],
        settings_yaml=EVIL,
        provenance={EVIL: EVIL},
    )
    assert page.count("<script") == 1  # the page's own
    assert 'alert("x")' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert '"><script' not in page  # the alt attribute cannot be closed early


def test_summary_cells_as_given_best_bold_numbers_right_aligned(pngs):
    page = _page(pngs)
    summary = page[page.index('<table class="summary">') :]
    summary = summary[: summary.index("</table>")]
    cells = re.findall(r"<td([^>]*)>(.*?)</td>", summary)
    assert [c[1] for c in cells[:5]] == [
        "0", "3", '4.12 <span class="sd">± 0.31</span>', '0.512 <span class="sd">± 0.020</span>',
        "mini"]  # fmt: skip
    assert cells[8][1] == '<strong>0.498</strong> <span class="sd">± 0.011</span>'
    assert cells[12][1] == "<strong>−2.00</strong>"  # a true minus sign
    assert all(attrs == ' class="num"' for attrs, _ in cells[:4]) and cells[4][0] == ""
    assert "<h3>Calibration</h3>" in page and "Mean ± sample std over seeds." in page
    assert "nan" not in summary.lower() and "None" not in summary


def test_intro_allows_only_paragraphs_and_code():
    out = inline_markdown("a `x<y` b ` lone backtick\n\n**not bold** <b>c</b>")
    assert out == (
        "<p>a <code>x&lt;y</code> b ` lone backtick</p>\n<p>**not bold** &lt;b&gt;c&lt;/b&gt;</p>"
    )


def test_claim_rules_fold_away_under_the_evidence(pngs):
    page = _page(pngs)
    claims = page[page.index('<table class="claims">') :]
    claims = claims[: claims.index("</table>")]
    assert "<th>Rule</th>" not in claims  # no column of rules
    for c in CLAIMS:
        rule = c["rule"].replace("<", "&lt;").replace(">", "&gt;")
        assert (
            f'<details class="rule"><summary>Decision rule</summary><p>{rule}</p></details>'
            in claims
        )
    assert "color: var(--muted); font-size: .85em" not in page  # not small grey text
    assert 'addEventListener("beforeprint"' in page  # printed open


def test_claims_section_left_out_without_claims(pngs):
    assert "<h2>Claims</h2>" not in _page(pngs, claims=None)
    assert "<h2>Claims</h2>" in _page(pngs, claims=[])


def test_bad_inputs_are_reported(pngs, tmp_path):
    bad_verdict = [{**CLAIMS[0], "verdict": "proven"}]
    with pytest.raises(ValueError, match=r"claims\[0\]\.verdict: expected one of .* 'proven'"):
        _page(pngs, claims=bad_verdict)
    with pytest.raises(ValueError, match=r"claims\[0\]: .*missing \['rule'\]"):
        _page(pngs, claims=[{"claim": "c", "verdict": "supported", "reason": "r"}])
    not_png = tmp_path / "x.png"
    not_png.write_bytes(b"GIF89a.........................")
    with pytest.raises(ValueError, match="expected a PNG file"):
        _page(pngs, figures=[("x", not_png, "c")])


class _TagBalance(HTMLParser):
    """Every non-void element is closed, in order (a cheap well-formedness check)."""

    VOID = {"meta", "link", "img", "br", "hr", "input", "source", "wbr", "col"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def test_markup_is_balanced(pngs):
    checker = _TagBalance()
    checker.feed(_page(pngs, title=EVIL, intro_md=EVIL))
    checker.close()
    assert checker.errors == [] and checker.stack == []


# ---------------------------------------------------------------------------------------
# Browser tests: headless Chromium renders the file
# ---------------------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed")
browser = pytest.mark.browser  # one attribute access: one unknown-mark warning until registered


def _render(html_path: Path, tmp_path: Path) -> tuple[int, str, list[str]]:
    """(exit code, DOM after load, page console lines) of headless Chromium on a file."""
    profile = tmp_path / f"profile-{html_path.stem}"
    profile.mkdir()
    proc = subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
         "--dump-dom", html_path.as_uri()],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    console = [line for line in proc.stderr.splitlines() if CONSOLE_LINE.search(line)]
    return proc.returncode, proc.stdout, console


def _write(tmp_path: Path, name: str, page: str) -> Path:
    path = tmp_path / name
    path.write_text(page, encoding="utf-8")
    return path


@browser
@needs_chromium
def test_chromium_renders_page_with_images_and_no_console_output(pngs, tmp_path):
    rc, dom, console = _render(_write(tmp_path, "index.html", _page(pngs)), tmp_path)
    assert rc == 0
    assert 'data-images-ok="true"' in dom
    assert console == []
    assert "Label smoothing lowers ECE" in dom


@browser
@needs_chromium
def test_chromium_check_sees_console_errors(pngs, tmp_path):
    page = _page(pngs).replace("<script>\n", '<script>\nconsole.error("x");\n', 1)
    assert 'console.error("x")' in page
    rc, dom, console = _render(_write(tmp_path, "console.html", page), tmp_path)
    assert rc == 0 and 'data-images-ok="true"' in dom
    assert len(console) == 1 and '"x"' in console[0]


@browser
@needs_chromium
def test_chromium_check_sees_a_broken_image(pngs, tmp_path):
    # A real PNG header with the image data cut off: it embeds, but cannot decode.
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(pngs[0].read_bytes()[:64])
    page = _page(pngs, figures=[("ok", pngs[0], "fine"), ("broken", truncated, "cut off")])
    rc, dom, console = _render(_write(tmp_path, "broken.html", page), tmp_path)
    assert rc == 0
    assert 'data-images-ok="false"' in dom
    assert console == []


# Measures the laid-out page from inside Chromium: table wrappers that scroll sideways,
# and images drawn smaller than their declared (print) size.
_MEASURE = """
<script>
window.addEventListener("load", function () {
  var wide = Array.prototype.filter.call(document.querySelectorAll(".table-wrap"),
    function (w) { return w.scrollWidth > w.clientWidth + 1; }).length;
  var shrunk = Array.prototype.filter.call(document.images,
    function (img) {
      return img.getBoundingClientRect().width < 0.99 * img.getAttribute("width");
    });
  document.body.dataset.wideTables = String(wide);
  document.body.dataset.shrunkImages = shrunk.map(function (i) { return i.alt; }).join("|");
  document.body.dataset.bodyWidth = String(document.body.getBoundingClientRect().width);
});
</script>
"""


@browser
@needs_chromium
def test_report_page_fits_a_1400_px_window(tmp_path):
    import warnings

    from lsexp.reporting import report as rp
    from tests.figreport import QUICKSTART_ALPHAS, synthetic_report

    rep = synthetic_report(tmp_path, alphas=QUICKSTART_ALPHAS, seeds=(0, 1))
    out = tmp_path / "report"
    out.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        figs, _ = rp.build_figures(rep)
        for stem, fig in figs:
            rep.files += rp.save_figure(fig, out, stem)
    page = rp.index_html(rep, rp.evaluate_report_claims(rep), out)
    assert page.count("<img") == 9
    page = page.replace("</body>", _MEASURE + "</body>")
    html_path = _write(tmp_path, "index.html", page)
    profile = tmp_path / "profile-1400"
    profile.mkdir()
    proc = subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000",
         "--virtual-time-budget=5000", "--dump-dom", html_path.as_uri()],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0
    dom = proc.stdout
    assert 'data-images-ok="true"' in dom
    assert 'data-wide-tables="0"' in dom  # every column visible without scrolling
    assert 'data-shrunk-images=""' in dom  # every figure at its print size, legend legible
    assert int(float(re.search(r'data-body-width="([\d.]+)"', dom).group(1))) == 1200
