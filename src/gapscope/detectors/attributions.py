"""Corpus-level attributions: what each cell keys on, per test domain, and how that differs.

For every cell x test domain, gapscope.attribution.corpus explains a bounded sample of
held-out emails with occlusion (the same emails for every cell) and aggregates word and
n-gram importance (frequency-aware). Written to diagnostics/attributions/:

  <cell>/<domain>.parquet   the full feature table (feature, n, docs, mean, importance, ...)
  summary.json              top features per cell x domain, in-domain vs out-of-domain
                            differences per cell, and cell vs cell differences per domain

Findings (kind "top_features", severity info: they describe, they do not accuse):
one per cell with its top phishing / legitimate features per domain, the overlap of its
out-of-domain top features with its in-domain ones, a highlighted example email, and the
features whose importance differs most between its training domain(s) and the others.
"""

from __future__ import annotations

from typing import Any

from gapscope import progress
from gapscope.attribution import corpus as C
from gapscope.findings import Finding, register_detector


def _example(atts: dict, rows: dict) -> dict[str, Any] | None:
    """The most confidently phishing email of the sample, as highlighted evidence."""
    best = None
    for rid, a in sorted(atts.items()):
        if rows[rid].label == 1 and (best is None or a.margin > best[1].margin):
            best = (rid, a)
    if best is None:
        return None
    d = best[1].to_dict()
    return {"id": best[0], "text": d["text"], "tokens": d["tokens"], "weights": d["weights"], "margin": d["margin"]}


@register_detector("attributions")
def run(study) -> list[Finding]:
    from gapscope.study import artifacts

    opts = C.options(study)
    out_dir = study.artifact_dir("attributions")
    k = int(opts["top_k"])
    tables: dict[tuple[str, str], Any] = {}
    summary: dict[str, Any] = {"cells": {}, "between_cells": {}, "options": opts}
    findings = []
    for cell in study.detector_cells("attributions"):
        per_dom = {}
        examples = {}
        n_dom = len(study.domains)
        with progress.step(f"attributions: {cell.name} on {n_dom} domains", total=n_dom) as up:
            for j, d in enumerate(study.domains, 1):
                atts = C.cell_domain_attributions(study, cell, d, opts)
                up(j, n_dom)
                if not atts:
                    continue
                table = C.aggregate(list(atts.values()), ngram_max=int(opts["ngram_max"]),
                                    min_docs=int(opts["min_docs"]))
                artifacts.write_parquet(out_dir / cell.name / f"{d}.parquet", table)
                tables[(cell.name, d)] = table
                per_dom[d] = {"n_emails": len(atts), "phishing": C.top_features(table, k, +1),
                              "legitimate": C.top_features(table, k, -1)}
                examples[d] = _example(atts, study.rows)
        ins = [d for d in per_dom if d in cell.train_domains]
        outs = [d for d in per_dom if d not in cell.train_domains]
        shifts = {}
        for d in outs:
            ref = ins[0] if ins else None
            if ref is None:
                continue
            diff = C.compare(tables[(cell.name, ref)], tables[(cell.name, d)], k=5)
            # named for what they are: a = the home domain `vs`, b = this domain d
            shifts[d] = {"vs": ref,
                         "phishing_overlap": round(C.overlap(per_dom[ref]["phishing"], per_dom[d]["phishing"]), 3),
                         "differences": {"more_in_home": diff["more_in_a"], "more_in_this_domain": diff["more_in_b"]}}
        summary["cells"][cell.name] = {"model": cell.model, "paradigm": cell.paradigm, "kind": cell.kind,
                                       "train_domains": cell.train_domains, "per_domain": per_dom, "shifts": shifts}
        if not per_dom:
            continue
        home = ins[0] if ins else next(iter(per_dom))
        top_home = ", ".join(f"'{f['feature']}'" for f in per_dom[home]["phishing"][:5]) or "none"
        ov = [s["phishing_overlap"] for s in shifts.values()]
        ov_txt = (f" Out of domain its top phishing features overlap {sum(ov) / len(ov):.0%} (mean Jaccard) with "
                  f"those in {home}." if ov else "")
        findings.append(Finding(
            kind="top_features", severity="info",
            title=f"{_who(cell)}: top phishing evidence in {home} is {top_home}",
            summary=(f"Occlusion attributions over {sum(v['n_emails'] for v in per_dom.values())} held-out emails "
                     f"in {len(per_dom)} domains (frequency-aware word and n-gram importance).{ov_txt}"),
            evidence={"cell": cell.name, "paradigm": cell.paradigm, "per_domain": per_dom, "shifts": shifts,
                      "example": examples.get(home)},
            models=[cell.model], domains=[home], example_ids=[examples[home]["id"]] if examples.get(home) else [],
            score=0.0,
        ))
    # the same domain seen by different cells
    for d in study.domains:
        cells = [c for c in study.cells if (c.name, d) in tables]
        comps = {}
        for i, a in enumerate(cells):
            for b in cells[i + 1:]:
                if a.model == b.model and a.paradigm != b.paradigm or a.paradigm == b.paradigm:
                    comps[f"{a.name} vs {b.name}"] = C.compare(tables[(a.name, d)], tables[(b.name, d)], k=5)
        summary["between_cells"][d] = comps
    artifacts.write_json(out_dir / "summary.json", summary)
    rows = []
    for name, c in summary["cells"].items():
        for d, v in c["per_domain"].items():
            rows.append([name, d, "yes" if d in c["train_domains"] else "no", v["n_emails"],
                         ", ".join(f["feature"] for f in v["phishing"][:6]),
                         ", ".join(f["feature"] for f in v["legitimate"][:6])])
    artifacts.write_json(out_dir / "section.json", {
        "id": "corpus-attributions", "title": "Corpus-level attributions: top features per cell and test domain",
        "caption": ("Each cell's attributions (occlusion) over a domain's held-out emails (a label-balanced sample where "
                    f"the domain has more than {opts['emails_per_domain_llm']} for neural cells, "
                    f"{opts['emails_per_domain']} for TF-IDF), "
                    "aggregated per word or n-gram: features ranked by mean weight × log(1 + emails they occur in), "
                    "so a feature the cell leans on in many emails outranks a one-off. 'in domain': the cell trained "
                    "on that domain."),
        "table": {"columns": ["cell", "test domain", "in domain", "emails", "top toward phishing",
                              "top toward legitimate"], "rows": rows}})
    return findings


def _who(cell) -> str:
    from gapscope.detectors.shortcuts import _who as who

    return who(cell)
