"""Inline SVG charts for the HTML report (no plotting library, no external assets)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Sequence

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")


@dataclass(frozen=True)
class Bar:
    series: str
    value: float  # proportion in [0, 1]
    error: float  # ± (proportion); NaN = none


def bar_chart(groups: Sequence[tuple[str, Sequence[Bar]]], series: Sequence[str], title: str = "") -> str:
    """Horizontal grouped bars in percent with ±error whiskers; one colour per series."""
    label_w, plot_w, bar_h, gap, top = 260, 560, 14, 8, 28
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    rows_h = sum(len(bars) * bar_h + gap for _, bars in groups)
    legend_h = 18 * math.ceil(len(series) / 3) if len(series) > 1 else 0
    height = top + rows_h + 24 + legend_h
    width = label_w + plot_w + 60
    x = lambda p: label_w + plot_w * min(max(p, 0.0), 1.0)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    if title:
        parts.append(f'<text x="4" y="16" class="chart-title">{escape(title)}</text>')
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top - 4}" y2="{top + rows_h}" class="grid"/>'
                     f'<text x="{x(tick):.1f}" y="{top + rows_h + 14}" text-anchor="middle" class="tick">'
                     f'{int(tick * 100)}%</text>')
    y = top
    for label, bars in groups:
        block = len(bars) * bar_h
        parts.append(f'<text x="{label_w - 6}" y="{y + block / 2 + 4:.1f}" text-anchor="end" class="label">'
                     f'{escape(_clip(label))}<title>{escape(label)}</title></text>')
        for bar in bars:
            if math.isfinite(bar.value):
                tip = f"{label} · {bar.series}: {100 * bar.value:.1f}%"
                if math.isfinite(bar.error):
                    tip += f" ± {100 * bar.error:.1f}"
                parts.append(f'<rect x="{label_w}" y="{y + 1}" width="{x(bar.value) - label_w:.1f}" '
                             f'height="{bar_h - 2}" fill="{colours[bar.series]}"><title>{escape(tip)}</title></rect>')
                if math.isfinite(bar.error) and bar.error > 0:
                    lo, hi, mid = x(bar.value - bar.error), x(bar.value + bar.error), y + bar_h / 2
                    parts.append(f'<path d="M{lo:.1f},{mid:.1f}H{hi:.1f}M{lo:.1f},{mid - 4:.1f}V{mid + 4:.1f}'
                                 f'M{hi:.1f},{mid - 4:.1f}V{mid + 4:.1f}" class="whisker"/>')
            y += bar_h
        y += gap
    if len(series) > 1:
        for i, name in enumerate(series):
            lx, ly = label_w + (i % 3) * 190, top + rows_h + 30 + 18 * (i // 3)
            parts.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colours[name]}"/>'
                         f'<text x="{lx + 16}" y="{ly}" class="legend">{escape(_clip(name, 26))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def heat_colour(p: float) -> str:
    """Red (0) → yellow (0.5) → green (1); light grey when undefined."""
    if not math.isfinite(p):
        return "#eeeeee"
    p = min(max(p, 0.0), 1.0)
    hue = 120 * p
    return f"hsl({hue:.0f}, 65%, {78 - 10 * abs(p - 0.5):.0f}%)"


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
