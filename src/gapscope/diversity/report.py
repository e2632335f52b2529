"""Finding and report section for training-data diversity."""

from __future__ import annotations

from typing import Any

from markupsafe import escape

from gapscope.diversity.analysis import METRIC_TITLES, METRICS
from gapscope.findings import Finding

HEADLINE = ("embedding_vendi", "gradient_vendi", "distinct_2")


def _said(analysis: dict[str, Any]) -> dict[str, list[str]]:
    """Each headline statement -> the models it holds for, in order. The measures belong to the
    training sets, not the models: models trained on the same sets share one statement, named
    together, instead of repeating its numbers under each name."""
    said: dict[str, list[str]] = {}
    for model, ratios in analysis["ratios"].items():
        for metric in HEADLINE:
            if metric in ratios:
                said.setdefault(ratios[metric]["statement"], []).append(model)
    return said


def diversity_findings(analysis: dict[str, Any]) -> list[Finding]:
    statements, evidence = [], {"ratios": analysis["ratios"], "correlation": analysis["correlation"]}
    for text, models in _said(analysis).items():
        who = models[0] if len(models) == 1 else f"{', '.join(models)} (the same training sets)"
        statements.append(f"{who}, {text}")
    corr = []
    strong = False
    for metric in HEADLINE:
        c = analysis["correlation"].get(metric) or {}
        if c.get("rho") is not None:
            corr.append(f"{METRIC_TITLES[metric]} vs out-of-domain F1: Spearman ρ = {c['rho']:+.2f} "
                        f"(p = {c['p']:.2g}, n = {c['n']})")
            strong |= abs(c["rho"]) >= 0.6 and c["n"] >= 5 and c["p"] < 0.05
        else:
            corr.append(f"{METRIC_TITLES[metric]} vs out-of-domain F1: too few cells with an out-of-domain F1 "
                        f"(n = {c.get('n', 0)})")
    if not statements and not any(c.get("rho") is not None for c in analysis["correlation"].values()):
        return []
    head = statements[0] if statements else "Training-set diversity per cell"
    emb = next((r.get("embedding_vendi") for r in analysis["ratios"].values() if "embedding_vendi" in r), None)
    title = (f"Training data diversity: {emb['statement'].split(': ', 1)[1].split(' (')[0]} (embedding Vendi)"
             if emb and emb.get("ratio") is not None else head)
    return [Finding(kind="data_diversity", severity="low" if strong else "info", title=title,
                    summary=" ".join(s.rstrip(".") + "." for s in statements + corr), evidence=evidence,
                    models=sorted(analysis["ratios"]), score=0.0)]


def section_html(analysis: dict[str, Any]) -> str:
    cells = analysis["cells"]
    if not cells:
        return '<p class="muted">No training sets.</p>'
    # a set shorter than n_tokens lowers every set's budget: say to what
    budget = next((c["metrics"]["lexical_budget"] for c in cells
                   if c["metrics"].get("short") and "lexical_budget" in c["metrics"]), None)
    html = ['<p class="small muted">Diversity of each cell\'s training set. Vendi scores are effective numbers of '
            'distinct rows (embedding: MiniLM cosine kernel; gradient: projected per-example gradients of a tf-idf '
            'proxy) on equal-size samples; lexical measures on a common token budget'
            + (f' ({budget} tokens per set, the shortest set\'s count)' if budget is not None else '') + '.</p>']
    first = {text: models[0] for text, models in _said(analysis).items()}
    for model, ratios in analysis["ratios"].items():
        texts = [ratios[m]["statement"] for m in HEADLINE if m in ratios]
        earlier = {first[t] for t in texts} - {model}
        if texts and len(earlier) == 1 and all(first[t] != model for t in texts):
            # two models with the same cap train on the same rows: the same numbers twice
            html.append(f'<p><b>{escape(model)}</b>: the same training rows as {escape(earlier.pop())} in every '
                        'cell, so the same diversity (its cells differ in out-of-domain F1 only)</p>')
            continue
        for t in texts:
            html.append(f'<p><b>{escape(model)}</b>: {escape(t)}</p>')
    html.append('<div class="scroll"><table class="tbl compact"><thead><tr><th>Model</th><th>Cell</th>'
                '<th class="num">Rows</th>' + "".join(f'<th class="num">{escape(METRIC_TITLES[m])}</th>' for m in METRICS)
                + '<th class="num">Out-of-domain F1</th></tr></thead><tbody>')
    for c in cells:
        m = c["metrics"]
        vals = "".join(f'<td class="num">{"n/a" if m.get(k) is None else f"{m[k]:.3g}"}</td>' for k in METRICS)
        ood = "n/a" if c["out_of_domain_f1"] is None else f'{c["out_of_domain_f1"]:.3f}'
        html.append(f'<tr><td>{escape(c["model"])}</td><td>{escape(c["paradigm"])}</td>'
                    f'<td class="num">{m.get("n_rows", "")}</td>{vals}<td class="num">{ood}</td></tr>')
    html.append('</tbody></table></div><table class="tbl compact"><thead><tr><th>Metric</th>'
                '<th class="num">Spearman ρ with out-of-domain F1</th><th class="num">p</th><th class="num">n</th>'
                '</tr></thead><tbody>')
    for metric in METRICS:
        c = analysis["correlation"].get(metric) or {}
        rho = "n/a" if c.get("rho") is None else f'{c["rho"]:+.2f}'
        p = "n/a" if c.get("p") is None else f'{c["p"]:.2g}'
        html.append(f'<tr><td>{escape(METRIC_TITLES[metric])}</td><td class="num">{rho}</td><td class="num">{p}</td>'
                    f'<td class="num">{c.get("n", 0)}</td></tr>')
    html.append('</tbody></table>')
    html.append(_scatter(cells, "embedding_vendi") + _scatter(cells, "gradient_vendi"))
    return "".join(html)


def _scatter(cells: list[dict[str, Any]], metric: str, w: int = 320, h: int = 200) -> str:
    pts = [(c["metrics"].get(metric), c["out_of_domain_f1"], c) for c in cells
           if c["metrics"].get(metric) is not None and c["out_of_domain_f1"] is not None]
    if len(pts) < 2:
        return ""
    xs = [p[0] for p in pts]
    x0, x1 = min(xs), max(xs)
    x1 = x1 if x1 > x0 else x0 + 1
    y0, y1 = 0.0, 1.0
    L, B = 40, 30

    def X(v):
        return L + (v - x0) / (x1 - x0) * (w - L - 10)

    def Y(v):
        return h - B - (v - y0) / (y1 - y0) * (h - B - 10)

    body = [f'<svg class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="{escape(METRIC_TITLES[metric])} vs out-of-domain F1">',
            f'<line x1="{L}" y1="{h - B}" x2="{w - 10}" y2="{h - B}" stroke="#9ca3af"/>',
            f'<line x1="{L}" y1="10" x2="{L}" y2="{h - B}" stroke="#9ca3af"/>',
            f'<text x="{(w + L) / 2:.0f}" y="{h - 8}" class="ax" text-anchor="middle">{escape(METRIC_TITLES[metric])}</text>',
            f'<text x="12" y="{(h - B) / 2:.0f}" class="ax" transform="rotate(-90 12 {(h - B) / 2:.0f})" '
            'text-anchor="middle">out-of-domain F1</text>']
    for x, y, c in pts:
        colour = "#0f766e" if c["paradigm"] == "generalist" else "#ea580c"
        body.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="4" fill="{colour}"><title>'
                    f'{escape(c["model"])} {escape(c["paradigm"])}: {x:.3g}, F1 {y:.3f}</title></circle>')
    body.append("</svg>")
    return "".join(body)


def section(analysis: dict[str, Any]) -> dict[str, Any]:
    return {"id": "diversity", "title": "Training data diversity", "html": section_html(analysis)}
