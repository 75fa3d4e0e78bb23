"""Bar charts as inline SVG, drawn on the server: the dashboard's charts need no script
library, and a page shows its figures even before (or without) its script running."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH = 960
HEIGHT = 160
PAD_LEFT = 40
PAD_BOTTOM = 18


def bars(values: Sequence[float], *, label: str, first: str, last: str, unit: str) -> Markup:
    """``values`` left (oldest) to right as bars, scaled to the largest; ``first`` and
    ``last`` label the ends of the time axis, ``unit`` what one bar counts.  The SVG's
    title and description carry the figures for screen readers."""
    top = max(values, default=0)
    scale = top or 1
    inner_w = WIDTH - PAD_LEFT
    inner_h = HEIGHT - PAD_BOTTOM - 8
    step = inner_w / max(len(values), 1)
    width = max(step - (1 if step > 3 else 0), 0.5)
    shapes = []
    for i, value in enumerate(values):
        if value <= 0:
            continue
        h = max(inner_h * value / scale, 1)
        x = PAD_LEFT + i * step
        y = 8 + inner_h - h
        shapes.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}">'
            f"<title>{value:g}</title></rect>"
        )
    total = sum(values)
    summary = f"{label}: at most {top:g} {unit}"
    axis = (
        f'<text class="axis" x="{PAD_LEFT - 4}" y="16" text-anchor="end">{top:g}</text>'
        f'<text class="axis" x="{PAD_LEFT - 4}" y="{HEIGHT - PAD_BOTTOM}" '
        'text-anchor="end">0</text>'
        f'<text class="axis" x="{PAD_LEFT}" y="{HEIGHT - 4}">{escape(first)}</text>'
        f'<text class="axis" x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end">{escape(last)}</text>'
    )
    return Markup(  # noqa: S704 - every text in it is escaped above, the rest are numbers
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(summary)}" data-total="{total:g}">'
        f"<title>{escape(summary)}</title>{axis}{''.join(shapes)}</svg>"
    )
