"""Inline SVG for the internals section: per-layer line charts (probe curves, logit lens),
grouped bars (attention to token classes) and a layer x position heatmap (patching).

Same conventions as gapscope.report.svg: drawn in Python, no JavaScript, every text that
reaches the SVG (domain names, token-class names, suspected shortcut strings) is escaped
with markupsafe.escape; CSS classes `ax`, `tick`, `grid` come from the report's stylesheet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

PALETTE = ["#0f766e", "#ea580c", "#2563eb", "#9333ea", "#dc2626", "#65a30d", "#0891b2", "#b45309",
           "#db2777", "#475569"]
_CHAR_W = 6.6


def _clip(text: str, n: int) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _svg(w: float, h: float, body: list[str], label: str) -> Markup:
    head = (f'<svg class="chart" viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" role="img" '
            f'aria-label="{escape(label)}">')
    return Markup(head + "".join(body) + "</svg>")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(step))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= step), default=step)
    start = math.ceil(lo / step) * step
    out, v = [], start
    while v <= hi + 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def spread(ys: Sequence[float], *, gap: float, lo: float, hi: float) -> list[float]:
    """Label baselines moved apart to at least `gap` px (lines at near-equal values printed their
    labels on top of each other), kept within [lo, hi] where they fit, in their original order."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    out = [float(y) for y in ys]
    prev = None
    for i in order:  # top to bottom: push each label below the one above it
        if prev is not None and out[i] < out[prev] + gap:
            out[i] = out[prev] + gap
        prev = i
    overflow = (out[order[-1]] - hi) if order else 0.0
    if overflow > 0:  # the stack ran off the bottom: shift it up, but not above `lo`
        shift = min(overflow, max(0.0, out[order[0]] - lo))
        for i in order:
            out[i] -= shift
    return out


def line_chart(x: Sequence[float], series: Sequence[dict], *, title: str, y_label: str = "",
               x_label: str = "layer", y_range: tuple[float, float] | None = None,
               hlines: Sequence[tuple[float, str]] = (), width: int = 560, height: int = 240) -> Markup:
    """series: [{"label", "values" (None = gap), "colour"?, "dash"?: bool, "note"?: str}]."""
    left, right, top, bottom = 52, 16, 30, 40
    legend_h = 16 * ((len(series) + 1) // 2)
    h = height + legend_h
    pw, ph = width - left - right, height - top - bottom
    vals = [v for s in series for v in s["values"] if v is not None and math.isfinite(v)]
    vals += [v for v, _ in hlines]
    if y_range is None:
        lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
        if hi - lo < 1e-9:
            lo, hi = lo - 1, hi + 1
        pad = 0.05 * (hi - lo)
        lo, hi = lo - pad, hi + pad
    else:
        lo, hi = y_range
    x0, x1 = (min(x), max(x)) if len(x) else (0, 1)
    if x1 == x0:
        x1 = x0 + 1
    sx = lambda v: left + pw * (v - x0) / (x1 - x0)  # noqa: E731
    sy = lambda v: top + ph * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))  # noqa: E731
    b = [f'<text x="{left}" y="16" class="ax" font-weight="600">{escape(_clip(title, 80))}</text>']
    for t in _ticks(lo, hi):
        b.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" class="grid"/>'
                 f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" class="tick" text-anchor="end">{t:g}</text>')
    for t in _ticks(x0, x1, min(10, max(1, int(x1 - x0)))):
        b.append(f'<text x="{sx(t):.1f}" y="{top + ph + 14}" class="tick" text-anchor="middle">{t:g}</text>')
    b.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph + 30}" class="tick" text-anchor="middle">'
             f'{escape(x_label)}</text>')
    if y_label:
        b.append(f'<text x="12" y="{top + ph / 2:.1f}" class="tick" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + ph / 2:.1f})">{escape(y_label)}</text>')
    label_ys = spread([sy(v) - 3 for v, _ in hlines], gap=11, lo=top + 8, hi=top + ph)
    for (v, lab), ly in zip(hlines, label_ys):
        b.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#9ca3af" '
                 f'stroke-dasharray="2 3"/><text x="{left + pw - 2}" y="{ly:.1f}" class="tick" '
                 f'text-anchor="end">{escape(lab)}</text>')
    for k, s in enumerate(series):
        colour = s.get("colour") or PALETTE[k % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if s.get("dash") else ""
        runs, cur = [], []
        for xv, yv in zip(x, s["values"]):
            if yv is None or not math.isfinite(yv):
                if cur:
                    runs.append(cur)
                cur = []
            else:
                cur.append((sx(xv), sy(yv), xv, yv))
        if cur:
            runs.append(cur)
        tip = escape(s["label"] + (f" ({s['note']})" if s.get("note") else ""))
        for run in runs:
            pts = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in run)
            b.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}>'
                     f'<title>{tip}</title></polyline>')
            for px, py, xv, yv in run:
                b.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.2" fill="{colour}">'
                         f'<title>{tip}: {escape(f"layer {xv:g}: {yv:.3f}")}</title></circle>')
        lx = left + (k % 2) * (pw / 2)
        ly = height + 4 + 16 * (k // 2)
        b.append(f'<line x1="{lx:.1f}" x2="{lx + 18:.1f}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="{colour}" '
                 f'stroke-width="2"{dash}/><text x="{lx + 24:.1f}" y="{ly + 4:.1f}" class="tick">'
                 f'{escape(_clip(s["label"], 44))}</text>')
    return _svg(width, h, b, title)


def grouped_bars(categories: Sequence[str], series: Sequence[dict], *, title: str, y_label: str = "",
                 width: int = 560, height: int = 220, baseline: float | None = None) -> Markup:
    """One group of bars per category; series: [{"label", "values" (per category, None = missing)}]."""
    left, right, top, bottom = 52, 12, 30, 46
    legend_h = 16 * ((len(series) + 1) // 2)
    pw, ph = width - left - right, height - top - bottom
    vals = [v for s in series for v in s["values"] if v is not None and math.isfinite(v)]
    hi = max(vals + [baseline or 0.0, 1e-6]) * 1.1
    sy = lambda v: top + ph * (1 - min(max(v, 0.0), hi) / hi)  # noqa: E731
    gw = pw / max(len(categories), 1)
    bw = gw * 0.8 / max(len(series), 1)
    b = [f'<text x="{left}" y="16" class="ax" font-weight="600">{escape(_clip(title, 80))}</text>']
    for t in _ticks(0.0, hi):
        b.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" class="grid"/>'
                 f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" class="tick" text-anchor="end">{t:g}</text>')
    if y_label:
        b.append(f'<text x="12" y="{top + ph / 2:.1f}" class="tick" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + ph / 2:.1f})">{escape(y_label)}</text>')
    for j, c in enumerate(categories):
        gx = left + gw * j + gw * 0.1
        b.append(f'<text x="{left + gw * (j + 0.5):.1f}" y="{top + ph + 14}" class="tick" text-anchor="middle">'
                 f'<title>{escape(c)}</title>{escape(_clip(c, max(4, int(gw / _CHAR_W))))}</text>')
        for k, s in enumerate(series):
            v = s["values"][j]
            if v is None or not math.isfinite(v):
                continue
            colour = s.get("colour") or PALETTE[k % len(PALETTE)]
            y = sy(v)
            b.append(f'<rect x="{gx + k * bw:.1f}" y="{y:.1f}" width="{max(bw - 1, 1):.1f}" '
                     f'height="{max(top + ph - y, 0.5):.1f}" fill="{colour}">'
                     f'<title>{escape(s["label"] + f" · {c}: {v:.4f}")}</title></rect>')
    if baseline is not None:
        b.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(baseline):.1f}" y2="{sy(baseline):.1f}" '
                 f'stroke="#111827" stroke-dasharray="3 3"/>')
    for k, s in enumerate(series):
        colour = s.get("colour") or PALETTE[k % len(PALETTE)]
        lx = left + (k % 2) * (pw / 2)
        ly = height - 8 + 16 * (k // 2)
        b.append(f'<rect x="{lx:.1f}" y="{ly - 9:.1f}" width="10" height="10" fill="{colour}"/>'
                 f'<text x="{lx + 14:.1f}" y="{ly:.1f}" class="tick">{escape(_clip(s["label"], 44))}</text>')
    return _svg(width, height + legend_h, b, title)


def _diverging(v: float) -> str:
    """-1 blue ... 0 white ... +1 teal-green (restoration), clipped."""
    v = max(-1.0, min(1.0, v))
    if v >= 0:
        c0, c1 = (255, 255, 255), (15, 118, 110)
    else:
        c0, c1, v = (255, 255, 255), (37, 99, 235), -v
    return "#%02x%02x%02x" % tuple(round(a + v * (b_ - a)) for a, b_ in zip(c0, c1))


def _ink(fill: str) -> str:
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#111827" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def heatmap(rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[float | None]], *,
            title: str, cell_w: int | None = None, cell_h: int = 20) -> Markup:
    """A rows x cols grid of values in [-1, 1] (patching restoration), with the value printed.
    Columns are at least 64 px and wide enough for their labels (default cell_w)."""
    if cell_w is None:
        cell_w = int(max(64, max((len(c) for c in cols), default=0) * _CHAR_W + 10))
    label_w = max((len(r) for r in rows), default=6) * _CHAR_W + 16
    top = 44
    w = label_w + cell_w * len(cols) + 8
    h = top + cell_h * len(rows) + 8
    b = [f'<text x="0" y="16" class="ax" font-weight="600">{escape(_clip(title, 90))}</text>']
    for j, c in enumerate(cols):
        b.append(f'<text x="{label_w + cell_w * (j + 0.5):.1f}" y="{top - 8}" class="tick" text-anchor="middle">'
                 f'<title>{escape(c)}</title>{escape(_clip(c, int(cell_w / _CHAR_W)))}</text>')
    for i, r in enumerate(rows):
        y = top + cell_h * i
        b.append(f'<text x="{label_w - 6:.1f}" y="{y + cell_h / 2 + 4:.1f}" class="tick" text-anchor="end">'
                 f'{escape(r)}</text>')
        for j, c in enumerate(cols):
            v = values[i][j]
            x = label_w + cell_w * j
            if v is None or not math.isfinite(v):
                b.append(f'<rect x="{x + 1:.1f}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" '
                         f'fill="#f3f4f6"/>')
                continue
            fill = _diverging(v)
            b.append(f'<g><title>{escape(f"{r} · {c}: {v:.3f}")}</title>'
                     f'<rect x="{x + 1:.1f}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}"/>'
                     f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="middle" '
                     f'style="font-size:10px;fill:{_ink(fill)}">{v:.2f}</text></g>')
    return _svg(w, h, b, title)
