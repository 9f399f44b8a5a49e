"""Layout checks on a drawn matplotlib Figure, from the bounding boxes matplotlib computes.

`collisions(fig)` lists every piece of text (titles, labels, tick labels, annotations,
legends) whose box covers plotted data (line vertices and segments, markers, error bars,
bars, scatter points) or another piece of text. It reads the artists, not pixels: a
collision it reports is real, and a figure that passes has no text on its data.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox

STEP_PX = 2.0  # segments are sampled every STEP_PX display pixels
SHRINK_PX = 1.0  # a box edge that merely touches is not a collision


def _visible_text(t: Text) -> bool:
    return t.get_visible() and bool(t.get_text().strip())


def _tick_labels(ax: Axes) -> list[Text]:
    out = []
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if not axis.get_visible():
            continue
        lo, hi = min(lo, hi), max(lo, hi)
        span = hi - lo
        for tick in axis.get_major_ticks():
            loc = tick.get_loc()
            if loc is None or not lo - 1e-9 * span <= loc <= hi + 1e-9 * span:
                continue
            out += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    return out


def _all_axes(fig: Figure) -> list[Axes]:
    """Every drawn Axes, secondary (top) axes included."""
    out = []
    for ax in fig.axes:
        if ax.get_visible():
            out.append(ax)
            out += [c for c in ax.child_axes if c.get_visible()]
    return out


def text_items(fig: Figure) -> list[tuple[str, object]]:
    """(description, artist) of every piece of text and every legend that is drawn."""
    items: list[tuple[str, object]] = []
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and _visible_text(sup):
        items.append(("suptitle", sup))
    items += [(f"figure text {t.get_text()!r}", t) for t in fig.texts
              if _visible_text(t) and t is not sup]  # fmt: skip
    items += [("figure legend", leg) for leg in fig.legends]
    for ax in _all_axes(fig):
        texts = [ax.title, ax._left_title, ax._right_title, *ax.texts]
        if ax.axison:
            texts += [ax.xaxis.label, ax.yaxis.label, *_tick_labels(ax)]
        items += [(f"text {t.get_text()!r}", t) for t in texts if _visible_text(t)]
        if ax.get_legend() is not None:
            items.append(("legend", ax.get_legend()))
    return items


def _segments_points(xy: np.ndarray) -> np.ndarray:
    """Display points along a polyline, every STEP_PX pixels (NaN breaks the line)."""
    pts = [xy[np.isfinite(xy).all(axis=1)]] if len(xy) else []
    for a, b in zip(xy[:-1], xy[1:], strict=True):
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            continue
        n = int(np.hypot(*(b - a)) // STEP_PX) + 1
        t = np.linspace(0, 1, n + 1)[:, None]
        pts.append(a + t * (b - a))
    return np.concatenate(pts) if pts else np.empty((0, 2))


def data_geometry(ax: Axes) -> tuple[np.ndarray, list[Bbox]]:
    """(display points of lines, markers and error bars; boxes of bars and markers) of the
    data drawn in `ax`, clipped to the axes (what lies outside is not drawn)."""
    points = []
    boxes = []
    for line in ax.lines:
        if not line.get_visible():
            continue
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        if line.get_linestyle() not in ("None", "", " ", "none"):
            points.append(_segments_points(xy))
        if line.get_marker() not in (None, "None", "", " ", "none"):
            r = line.get_markersize() * ax.figure.dpi / 72 / 2
            boxes += [
                Bbox([[x - r, y - r], [x + r, y + r]]) for x, y in xy if np.isfinite([x, y]).all()
            ]
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        if isinstance(coll, LineCollection):
            for seg in coll.get_segments():
                points.append(_segments_points(coll.get_transform().transform(seg)))
        elif isinstance(coll, PathCollection):
            offsets = coll.get_offset_transform().transform(coll.get_offsets())
            points.append(np.asarray(offsets, dtype=float))
        else:  # any other collection: its path vertices
            for path in coll.get_paths():
                points.append(_segments_points(coll.get_transform().transform(path.vertices)))
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_visible():
            box = patch.get_window_extent()
            if box.width > 0.5 and box.height > 0.5:
                boxes.append(box)
    pts = np.concatenate(points) if points else np.empty((0, 2))
    frame = ax.bbox
    inside = (
        (pts[:, 0] >= frame.x0) & (pts[:, 0] <= frame.x1)
        & (pts[:, 1] >= frame.y0) & (pts[:, 1] <= frame.y1)
    )  # fmt: skip
    clipped = [b for b in (Bbox.intersection(b, frame) for b in boxes) if b is not None]
    return pts[inside], clipped


def _box(artist, renderer) -> Bbox:
    box = artist.get_window_extent(renderer)
    return Bbox.from_extents(box.x0 + SHRINK_PX, box.y0 + SHRINK_PX,
                             box.x1 - SHRINK_PX, box.y1 - SHRINK_PX)  # fmt: skip


def _legend_texts(fig: Figure) -> set[int]:
    legends = [*fig.legends] + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return {id(t) for leg in legends if isinstance(leg, Legend) for t in leg.get_texts()}


def collisions(fig: Figure) -> list[str]:
    """Every text box that covers data or another text box, in words; [] when none."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    inner = _legend_texts(fig)
    items = [(d, a, _box(a, renderer)) for d, a in text_items(fig) if id(a) not in inner]
    data = [(ax, *data_geometry(ax)) for ax in _all_axes(fig)]
    found = []
    for desc, _, box in items:
        if box.width <= 0 or box.height <= 0:
            continue
        for ax, pts, boxes in data:
            where = ax.get_title() if hasattr(ax, "get_title") else "a top axis"
            where = where or ax.get_ylabel() or "an axes"
            hit = pts[
                (pts[:, 0] > box.x0) & (pts[:, 0] < box.x1)
                & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)
            ] if len(pts) else pts  # fmt: skip
            if len(hit):
                found.append(f"{desc} covers {len(hit)} data point(s) in {where!r}")
            if any(box.overlaps(b) for b in boxes):
                found.append(f"{desc} covers a bar or marker in {where!r}")
    for i, (d1, _, b1) in enumerate(items):
        for d2, _, b2 in items[i + 1 :]:
            if b1.width > 0 and b2.width > 0 and b1.overlaps(b2):
                found.append(f"{d1} overlaps {d2}")
    return found


def line_styles(ax: Axes) -> list[tuple[str, str, str]]:
    """(label, marker, line style) of each labelled data line of `ax`."""
    return [
        (line.get_label(), str(line.get_marker()), str(line.get_linestyle()))
        for line in ax.lines
        if isinstance(line, Line2D) and not line.get_label().startswith("_")
    ]
