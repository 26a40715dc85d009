"""Small server-rendered SVG charts for the dashboard (no JavaScript, no build step).

Stacked bars, one per day, one colour per series; every bar segment carries a <title> so hovering
shows the exact figure, and the page puts the same numbers in a table for screen readers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# Colour-blind-safe palette (Okabe-Ito), in order of use.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 760, 220, 64, 24, 10


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    color: str


def day_range(days: int, today: dt.date) -> list[str]:
    return [(today - dt.timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]


def series_by_key(
    rows: Sequence[dict], days: Sequence[str], *, key: str, value: str, colors: Sequence[str] = PALETTE
) -> list[Series]:
    """Rows like {"date", key, value} → one Series per distinct key, a value for every day."""
    names = sorted({row[key] for row in rows})
    index = {day: position for position, day in enumerate(days)}
    series = []
    for number, name in enumerate(names):
        values = [0.0] * len(days)
        for row in rows:
            if row[key] == name and row["date"] in index:
                values[index[row["date"]]] += float(row[value])
        series.append(Series(name, values, colors[number % len(colors)]))
    return series


def stacked_bars(
    days: Sequence[str], series: Sequence[Series], *, label: str, fmt: Callable[[float], str]
) -> SafeString:
    totals = [sum(s.values[i] for s in series) for i in range(len(days))]
    peak = max(totals, default=0) or 1
    plot_width, plot_height = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_width / max(len(days), 1)
    bar = max(slot * 0.75, 1)
    parts = [
        format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" class="mr-axis"/>',
            LEFT,
            TOP + plot_height,
            WIDTH - 8,
            TOP + plot_height,
        ),
        format_html('<text x="{}" y="{}" class="mr-tick" text-anchor="end">{}</text>', LEFT - 6, TOP + 8, fmt(peak)),
        format_html('<text x="{}" y="{}" class="mr-tick" text-anchor="end">0</text>', LEFT - 6, TOP + plot_height),
    ]
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar) / 2
        y = TOP + plot_height
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            height = value / peak * plot_height
            y -= height
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} · {}: {}</title></rect>',
                    f"{x:.1f}",
                    f"{y:.1f}",
                    f"{bar:.1f}",
                    f"{height:.1f}",
                    s.color,
                    day,
                    s.name,
                    fmt(value),
                )
            )
    for i in sorted({0, len(days) // 2, len(days) - 1}) if days else []:
        parts.append(
            format_html(
                '<text x="{}" y="{}" class="mr-tick" text-anchor="middle">{}</text>',
                f"{LEFT + i * slot + slot / 2:.1f}",
                HEIGHT - 6,
                days[i][5:],
            )
        )
    legend = format_html_join(
        "", '<li><span class="mr-swatch" style="background:{}"></span>{}</li>', ((s.color, s.name) for s in series)
    )
    svg = format_html(
        '<svg class="mr-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        WIDTH,
        HEIGHT,
        label,
        mark_safe("".join(parts)),  # noqa: S308 - every part was built with format_html
    )
    return format_html('<figure class="mr-figure">{}<ul class="mr-legend">{}</ul></figure>', svg, legend)


def tokens(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def dollars(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def count(value: float) -> str:
    return f"{value:.0f}"
