"""Inline SVG charts for the report, drawn in Python so the page needs no JavaScript or CDN.

Every piece of text that reaches the SVG goes through `markupsafe.escape`: domain and
model names come from user files and are as untrusted as email text.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from gapscope.eval.matrix import phishing_shares

# F1 colour scale: saturated warm for failure, calm teal for success, so bad cells draw the eye.
_STOPS = [(0.0, (127, 29, 29)), (0.5, (220, 38, 38)), (0.7, (249, 146, 60)),
          (0.8, (252, 211, 77)), (0.9, (153, 225, 200)), (1.0, (15, 118, 110))]
_GREY = "#e5e7eb"
_CHAR_W = 6.6  # average glyph width at 12px in the system font stack, for layout only
MAX_ROWS, MAX_COLS, MAX_BARS = 40, 30, 60

IN_COLOUR, OUT_COLOUR = "#0f766e", "#ea580c"


def f1_colour(v: float | None) -> str:
    if v is None:
        return _GREY
    v = min(max(v, 0.0), 1.0)
    for (x0, c0), (x1, c1) in zip(_STOPS, _STOPS[1:]):
        if v <= x1:
            a = (v - x0) / (x1 - x0)
            return "#%02x%02x%02x" % tuple(round(p + a * (q - p)) for p, q in zip(c0, c1))
    return "#%02x%02x%02x" % _STOPS[-1][1]


def _ink(fill: str) -> str:
    """Dark or light text, whichever reads better on the fill."""
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#111827" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _fmt(v: float | None, nd: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def _svg(w: float, h: float, body: list[str], label: str) -> Markup:
    head = (f'<svg class="chart" viewBox="0 0 {w:.0f} {h:.0f}" '
            f'width="{w:.0f}" role="img" aria-label="{escape(label)}">')
    return Markup(head + "".join(body) + "</svg>")


def _ordered(values) -> list[str]:
    return list(dict.fromkeys(values))


def heatmap(entries: list[dict[str, Any]], model: str) -> Markup:
    """Cells (rows) x test domains (columns) for one model, coloured by F1; in-domain cells outlined."""
    es = [e for e in entries if e.get("model") == model]
    rows = _ordered(e["paradigm"] for e in es)[:MAX_ROWS]
    cols = _ordered(e["test_domain"] for e in es)[:MAX_COLS]
    by = {(e["paradigm"], e["test_domain"]): e for e in es}
    label_w = min(max((len(r) for r in rows), default=8), 30) * _CHAR_W + 20
    col_w = min(max(max((len(c) for c in cols), default=6) * _CHAR_W + 14, 78), 140)
    row_h, top = 42, 46
    w, h = label_w + col_w * len(cols) + 8, top + row_h * len(rows) + 6
    # F1 moves with a domain's phishing share, so each column says its share under its name
    shares = phishing_shares(es)
    b: list[str] = []
    for j, c in enumerate(cols):
        x = label_w + col_w * (j + 0.5)
        b.append(f'<text x="{x:.1f}" y="{top - 22}" class="ax" text-anchor="middle">'
                 f'<title>{escape(c)}</title>{escape(_clip(c, int((col_w - 8) / _CHAR_W)))}</text>')
        if c in shares:
            b.append(f'<text x="{x:.1f}" y="{top - 8}" class="ci" fill="#6b7280" text-anchor="middle">'
                     f'{shares[c]:.0%} phishing</text>')
    for i, r in enumerate(rows):
        y = top + row_h * i
        b.append(f'<text x="{label_w - 10:.1f}" y="{y + row_h / 2 + 4:.1f}" class="ax" text-anchor="end">'
                 f'<title>{escape(r)}</title>{escape(_clip(r, 30))}</text>')
        for j, c in enumerate(cols):
            x, e = label_w + col_w * j, by.get((r, c))
            b.append(_heat_cell(x, y, col_w, row_h, e, model, r, c))
    return _svg(w, h, b, f"F1 heatmap for {model}")


def _heat_cell(x: float, y: float, w: float, h: float, e: dict | None, model: str, row: str, col: str) -> str:
    if e is None:
        return (f'<rect x="{x + 2:.1f}" y="{y + 2}" width="{w - 4:.1f}" height="{h - 4}" rx="4" fill="#f9fafb" '
                f'stroke="#e5e7eb"><title>{escape(f"{model} · {row} → {col}: not evaluated")}</title></rect>')
    f1, ci = e.get("f1"), e.get("f1_ci")
    reason = (e.get("undefined") or {}).get("f1")
    fill = _GREY if (f1 is None or reason) else f1_colour(f1)
    ink = _ink(fill)
    tip = [f"{model} · {row} → {col}",
           f"F1 {_fmt(f1, 3)}" + (f"  95% CI [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""),
           f"n = {e.get('n')}" + (f" ({e['n_positive']} phishing)" if e.get("n_positive") is not None else ""),
           "in-domain (trained on this domain)" if e.get("in_domain") else "out-of-domain"]
    if reason:
        tip.append(f"F1: {reason}")
    stroke = ' stroke="#111827" stroke-width="2.5"' if e.get("in_domain") else ""
    value = _fmt(f1) + ("†" if reason else "")
    ci_text = f"{ci[0]:.2f}–{ci[1]:.2f}" if ci else ("undefined" if reason else "")
    if e.get("n_positive") == 0 and e.get("accuracy") is not None:
        # no phishing, no F1: what the cell does there is flag legitimate mail (0.00† read the same
        # whether it flagged none of it or all of it)
        fpr, acc_ci = 1.0 - e["accuracy"], e.get("accuracy_ci")
        value = f"{fpr:.0%} flagged†"
        ci_text = "no phishing"
        tip.append(f"false-positive rate {fpr:.1%}" + (f" (95% CI {1 - acc_ci[1]:.1%}-{1 - acc_ci[0]:.1%})"
                                                         if acc_ci else ""))
    return (f'<g><title>{escape(chr(10).join(tip))}</title>'
            f'<rect x="{x + 2:.1f}" y="{y + 2}" width="{w - 4:.1f}" height="{h - 4}" rx="4" fill="{fill}"{stroke}/>'
            f'<text x="{x + w / 2:.1f}" y="{y + h / 2 + 1:.1f}" class="v" fill="{ink}" text-anchor="middle">{value}</text>'
            f'<text x="{x + w / 2:.1f}" y="{y + h / 2 + 13:.1f}" class="ci" fill="{ink}" text-anchor="middle">'
            f'{escape(ci_text)}</text></g>')


def colour_legend() -> Markup:
    """The F1 colour bar and the in-domain outline key shared by all heatmaps."""
    b = []
    b = ['<text x="0" y="16" class="ax">F1</text>']
    for k in range(100):
        b.append(f'<rect x="{24 + k * 4}" y="6" width="4.5" height="12" fill="{f1_colour(k / 99)}"/>')
    for v in (0, 0.25, 0.5, 0.7, 0.8, 0.9, 1.0):
        b.append(f'<text x="{24 + v * 400:.1f}" y="32" class="tick" text-anchor="middle">{v:g}</text>')
    b.append('<rect x="450" y="5" width="22" height="14" rx="3" fill="#fff" stroke="#111827" stroke-width="2.5"/>'
             '<text x="478" y="16" class="ax">in-domain (trained on)</text>'
             f'<rect x="630" y="5" width="22" height="14" rx="3" fill="{_GREY}"/>'
             '<text x="658" y="16" class="ax">† F1 not a measurement</text>')
    return _svg(820, 40, b, "F1 colour scale")


def gap_bars(summary: list[dict[str, Any]]) -> Markup:
    """In-domain vs out-of-domain mean F1 per cell, with the gap labelled."""
    rows = summary[:MAX_BARS]
    names = [f"{s['model']} · {s['paradigm']}" for s in rows]
    label_w = min(max((len(n) for n in names), default=10), 40) * _CHAR_W + 16
    bar_w, row_h, top = 360, 38, 28
    w, h = label_w + bar_w + 330, top + row_h * len(rows) + 8
    b = [f'<rect x="{label_w}" y="6" width="10" height="10" fill="{IN_COLOUR}"/>'
         f'<text x="{label_w + 14}" y="15" class="ax">in-domain F1</text>'
         f'<rect x="{label_w + 110}" y="6" width="10" height="10" fill="{OUT_COLOUR}"/>'
         f'<text x="{label_w + 124}" y="15" class="ax">out-of-domain F1</text>']
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + bar_w * t
        b.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{h - 6}" class="grid"/>'
                 f'<text x="{x:.1f}" y="{h}" class="tick" text-anchor="middle">{t:g}</text>')
    h += 6
    for i, (s, name) in enumerate(zip(rows, names)):
        y = top + row_h * i
        b.append(f'<text x="{label_w - 10}" y="{y + 19}" class="ax" text-anchor="end">'
                 f'<title>{escape(name)}</title>{escape(_clip(name, 40))}</text>')
        for k, (key, colour) in enumerate((("in_domain_f1", IN_COLOUR), ("out_of_domain_f1", OUT_COLOUR))):
            v = s.get(key)
            by = y + 5 + k * 14
            if v is None:
                b.append(f'<text x="{label_w + 4}" y="{by + 10}" class="tick">none</text>')
                continue
            b.append(f'<rect x="{label_w}" y="{by}" width="{max(bar_w * v, 1):.1f}" height="12" rx="2" '
                     f'fill="{colour}"><title>{escape(f"{name}: {key} = {v:.3f}")}</title></rect>')
        gap = s.get("gap")
        if gap is not None:
            worst = s.get("worst_domain")
            note = f"gap {gap:+.2f}" + (f" · worst {_clip(worst, 24)} {_fmt(s.get('worst_domain_f1'))}" if worst else "")
            cls = "gap hi" if gap >= 0.1 else "gap"
            b.append(f'<text x="{label_w + bar_w + 10}" y="{y + 20}" class="{cls}">{escape(note)}</text>')
    return _svg(w, h, b, "generalisation gap per cell")
