"""Accuracy curves as SVG, written with the standard library alone (no plotting dependency).

Every ``darnax train`` run directory gets ``accuracy.svg`` (train vs test per epoch) after every
epoch, and ``darnax train --seeds`` gets ``seeds.svg`` (the mean test accuracy with a band of
one standard deviation). SVG is text: any browser or image viewer shows it, it diffs, and it
needs neither matplotlib nor fonts on the machine that trains.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from darnax.cli.checkpoint import atomic_write

_W, _H = 640, 400
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 120, 40, 52
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


@dataclass(frozen=True)
class Series:
    """One curve: ``ys`` over ``xs`` and, optionally, a shaded band ``lows``..``highs``."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    lows: Sequence[float] | None = None
    highs: Sequence[float] | None = None


def plot_accuracy(records: list[dict[str, Any]], path: Path) -> None:
    """Write ``path``: train and test accuracy (%) per epoch of ``records`` (nothing if empty)."""
    if not records:
        return
    epochs = [r["epoch"] for r in records]
    curves = [Series(name, epochs, [100 * r[f"{name}_accuracy"] for r in records]) for name in ("train", "test")]
    atomic_write(path, line_chart(curves, title="darnax: train vs test accuracy", ylabel="accuracy (%)"))


def line_chart(series: Sequence[Series], *, title: str, ylabel: str, xlabel: str = "epoch") -> str:
    """An SVG line chart of ``series`` (markers at the points, bands shaded, legend on the right).

    Args:
        series: the curves, drawn in order (at least one point in all).
        title: text above the chart.
        ylabel: the vertical axis' label.
        xlabel: the horizontal axis' label.

    Returns:
        The SVG document.
    """
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in (*s.ys, *(s.lows or ()), *(s.highs or ()))]
    x0, x1 = min(xs), max(xs)
    if x0 == x1:
        x0, x1 = x0 - 0.5, x1 + 0.5
    y0, y1 = 10 * math.floor(min(ys) / 10), 10 * math.ceil(max(ys) / 10)
    if y0 == y1:
        y0, y1 = y0 - 10, y1 + 10

    def px(x: float) -> float:
        return _LEFT + (x - x0) / (x1 - x0) * (_W - _LEFT - _RIGHT)

    def py(y: float) -> float:
        return _H - _BOTTOM - (y - y0) / (y1 - y0) * (_H - _TOP - _BOTTOM)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_W / 2:.0f}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for y in range(int(y0), int(y1) + 1, max(10, 10 * math.ceil((y1 - y0) / 100))):
        out.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y}</text>')
    step = max(1, math.ceil((x1 - x0) / 10))
    for x in range(math.ceil(x0), math.floor(x1) + 1, step):
        out.append(f'<text x="{px(x):.1f}" y="{_H - _BOTTOM + 18}" text-anchor="middle">{x}</text>')
    out += [
        f'<rect x="{_LEFT}" y="{_TOP}" width="{_W - _LEFT - _RIGHT}" height="{_H - _TOP - _BOTTOM}" '
        'fill="none" stroke="#444"/>',
        f'<text x="{(_LEFT + _W - _RIGHT) / 2:.0f}" y="{_H - 12}" text-anchor="middle">{escape(xlabel)}</text>',
        f'<text transform="translate(18 {(_TOP + _H - _BOTTOM) / 2:.0f}) rotate(-90)" text-anchor="middle">'
        f"{escape(ylabel)}</text>",
    ]
    for k, s in enumerate(series):
        colour = _COLOURS[k % len(_COLOURS)]
        if s.lows is not None and s.highs is not None:
            ring = [*zip(s.xs, s.highs), *reversed(list(zip(s.xs, s.lows)))]
            points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in ring)
            out.append(f'<polygon points="{points}" fill="{colour}" fill-opacity="0.2" stroke="none"/>')
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(s.xs, s.ys))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in zip(s.xs, s.ys)]
        ly = _TOP + 12 + 20 * k
        out.append(
            f'<line x1="{_W - _RIGHT + 12}" x2="{_W - _RIGHT + 32}" y1="{ly}" y2="{ly}" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        out.append(f'<text x="{_W - _RIGHT + 38}" y="{ly + 4}">{escape(s.label)}</text>')
    out.append("</svg>\n")
    return "\n".join(out)


__all__ = ["Series", "line_chart", "plot_accuracy"]
