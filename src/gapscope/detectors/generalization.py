"""Generalization gaps read off the cross-domain matrix.

A cell whose F1 on some domain falls clearly below its in-domain F1 (the CI of
that domain's F1 lies entirely below the in-domain point estimate) is a finding;
the generalist cell is compared with the specialists of the same model.
"""

from __future__ import annotations

from collections import defaultdict

from gapscope.findings import Finding, register_detector


def _severity(drop: float) -> str | None:
    if drop >= 0.3:
        return "high"
    if drop >= 0.15:
        return "medium"
    if drop >= 0.05:
        return "low"
    return None


def _who(model: str, paradigm: str) -> str:
    if paradigm.startswith("specialist:"):
        return f"{model} trained on {paradigm.split(':', 1)[1]}"
    if paradigm.startswith("lodo:"):
        return f"{model} trained without {paradigm.split(':', 1)[1]}"
    return f"{model} ({paradigm})"


@register_detector("generalization")
def run(study) -> list[Finding]:
    by_cell: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in study.matrix:
        by_cell[(e["model"], e["paradigm"])].append(e)
    findings = []
    for (model, paradigm), entries in sorted(by_cell.items()):
        ins = [e for e in entries if e["in_domain"] and e.get("f1") is not None]
        outs = [e for e in entries if not e["in_domain"] and e.get("f1") is not None and e.get("n_positive", 1) > 0]
        if not ins or not outs:
            continue
        in_f1 = sum(e["f1"] for e in ins) / len(ins)
        drops = []
        for e in outs:
            hi = (e.get("f1_ci") or [None, None])[1]
            if hi is not None and hi >= in_f1:
                continue  # not distinguishable from the in-domain score
            drops.append((in_f1 - e["f1"], e))
        if not drops:
            continue
        drops.sort(key=lambda x: -x[0])
        worst_drop, worst = drops[0]
        sev = _severity(worst_drop)
        if sev is None:
            continue
        failing = [e["test_domain"] for d, e in drops if _severity(d)]
        findings.append(Finding(
            kind="generalization_gap", severity=sev,
            title=f"{_who(model, paradigm)} loses {worst_drop:.2f} F1 on {worst['test_domain']}",
            summary=(f"In-domain F1 {in_f1:.2f}; on {worst['test_domain']} F1 {worst['f1']:.2f} "
                     f"(95% CI {worst['f1_ci'][0]:.2f}-{worst['f1_ci'][1]:.2f}, n={worst['n']}). "
                     f"Significant drops on {len(failing)} of {len(outs)} other domains: {', '.join(failing)}."),
            evidence={"in_domain_f1": round(in_f1, 4),
                      "per_domain": [{"domain": e["test_domain"], "f1": e["f1"], "f1_ci": e.get("f1_ci"),
                                      "recall": e.get("recall"), "precision": e.get("precision"), "n": e["n"],
                                      "in_domain": e["in_domain"]} for e in sorted(entries, key=lambda e: e["test_domain"])]},
            models=[model], domains=[worst["test_domain"]] + [d for d in failing if d != worst["test_domain"]],
            score=worst_drop,
        ))
    findings += _generalist_vs_specialists(study)
    return findings


def _generalist_vs_specialists(study) -> list[Finding]:
    """Does the size-matched mix close the gap? Mean out-of-domain F1, generalist vs specialists."""
    out = []
    summ = defaultdict(dict)
    for s in study.summary:
        summ[s["model"]][s["paradigm"]] = s
    for model, cells in sorted(summ.items()):
        gen = cells.get("generalist")
        specs = [s for p, s in cells.items() if p.startswith("specialist:") and s.get("out_of_domain_f1") is not None]
        if not gen or not specs:
            continue
        # generalist has no out-of-domain test domains when it saw every domain; compare on mean test F1.
        spec_ood = sum(s["out_of_domain_f1"] for s in specs) / len(specs)
        gen_f1 = gen.get("mean_f1") if gen.get("mean_f1") is not None else gen.get("in_domain_f1")
        if gen_f1 is None:
            continue
        gain = gen_f1 - spec_ood
        out.append(Finding(
            kind="paradigm_comparison", severity="info" if abs(gain) < 0.05 else "low",
            title=f"{model}: the generalist mix scores {gen_f1:.2f} F1 vs {spec_ood:.2f} for specialists out of domain",
            summary=(f"Size-matched generalist training {'closes' if gain > 0 else 'does not close'} the gap: "
                     f"{gain:+.2f} F1 compared with the specialists' mean out-of-domain F1."),
            evidence={"generalist_f1": round(gen_f1, 4), "specialist_out_of_domain_f1": round(spec_ood, 4),
                      "specialists": {s["paradigm"]: s["out_of_domain_f1"] for s in specs}},
            models=[model], score=abs(gain),
        ))
    return out
