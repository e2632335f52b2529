"""Findings and the report section for the drift audit. All probe and answer text is escaped."""

from __future__ import annotations

from typing import Any

from markupsafe import escape

from gapscope.drift.audit import MEASURE_TITLES, DriftReport
from gapscope.findings import Finding

UNITS = {"kl": "nats", "logprob_shift": "nats", "greedy_change": "of probes", "judge_drop": ""}


def _fmt(v: float | None, nd: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def _describe(measure: str, m: dict[str, Any], fam: dict[str, Any]) -> str:
    ci = f"95% CI {_fmt(m['lo'])} to {_fmt(m['hi'])}, n={m['n']}"
    if measure == "logprob_shift":
        toward = fam["contrast_label"] if m["mean"] > 0 else fam["reference_label"]
        return f"answers moved toward the {toward} ones by {abs(m['mean']):.2f} nats ({ci})"
    if measure == "kl":
        return f"next-token KL(base‖tuned) {m['mean']:.2f} nats ({ci})"
    if measure == "greedy_change":  # a share: its interval in percent too
        pct = "n/a" if m["lo"] is None else f"{m['lo']:.0%} to {m['hi']:.0%}"
        return f"{m['mean']:.0%} of greedy answers changed (95% CI {pct}, n={m['n']})"
    return f"judge agreement with the reference answer fell by {m['mean']:.2f} ({ci})"


def _severity(fam: dict[str, Any]) -> str:
    ms = fam["measures"]
    shift = ms.get("logprob_shift")
    if shift and shift["significant"] and shift["mean"] > 0:  # toward outdated / misaligned / incorrect
        return "high" if shift["mean"] >= 2 * shift["min_effect"] else "medium"
    return "medium" if any(ms[k]["significant"] for k in ("logprob_shift", "judge_drop") if k in ms) else "low"


def vocab_text(vocab: dict[str, Any] | None) -> str:
    """One sentence for a finding's summary ('' where the vocabularies are the same size)."""
    if not vocab:
        return ""
    own = "tuned" if vocab["tuned"] > vocab["shared"] else "base"
    return (f" The vocabularies differ ({vocab['base']:,} ids in the base, {vocab['tuned']:,} in the tuned model): "
            f"KL is over the {vocab['shared']:,} ids both have, each renormalised there; the {own} model puts "
            f"{vocab[own + '_mass_outside']:.1%} of its next-token probability on the ids only it has, on average.")


def _examples(fam: dict[str, Any], k: int = 6) -> list[dict[str, Any]]:
    probes = sorted(fam["probes"], key=lambda p: -abs(p["logprob_shift"] or 0) - p["kl"])[:k]
    return [{"probe": p["id"], "prompt": p["prompt"], "base_answer": p["base_answer"], "tuned_answer": p["tuned_answer"],
             "logprob_shift": p["logprob_shift"], "kl": round(p["kl"], 4)} for p in probes]


def _measures(fam: dict[str, Any]) -> dict[str, Any]:
    return {k: {kk: v[kk] for kk in ("mean", "lo", "hi", "n", "min_effect", "significant")}
            for k, v in fam["measures"].items()}


def drift_findings(report: DriftReport | dict[str, Any], *, model: str | None = None, who: str | None = None,
                   domains: list[str] | None = None) -> list[Finding]:
    """One `behaviour_drift` finding per probe family whose answers moved in a direction (log-prob
    shift or judge), naming the family; one `behaviour_change` finding listing the families where
    only the non-directional measures (KL, greedy answers) changed."""
    d = report.to_dict() if isinstance(report, DriftReport) else report
    who = who or d["tuned"]
    models = [model] if model else []
    vocab = vocab_text(d.get("vocab"))
    out = []
    for fam in d["families"]:
        if not fam["significant"]:
            continue
        sig = fam["significant_measures"]
        lead = "logprob_shift" if "logprob_shift" in sig else "judge_drop"
        m = fam["measures"][lead]
        parts = [_describe(k, fam["measures"][k], fam) for k in sig]
        if lead == "logprob_shift":
            toward = fam["contrast_label"] if m["mean"] > 0 else fam["reference_label"]
            title = f"{who}: fine-tuning moved the {fam['family']} probes toward {toward} answers ({m['mean']:+.2f} nats)"
        else:
            title = f"{who}: fine-tuning made the {fam['family']} answers disagree with the reference (judge)"
        out.append(Finding(
            kind="behaviour_drift", severity=_severity(fam), title=title,
            summary=(f"Compared with its base ({d['base']}) on {fam['n_probes']} {fam['family']} probes "
                     f"({fam['description'].rstrip('.')}), the fine-tuned model shows significant drift: "
                     + "; ".join(parts) + ". None of these prompts is about the fine-tuning task." + vocab),
            evidence={"family": fam["family"], "base": d["base"], "tuned": d["tuned"], "measures": _measures(fam),
                      "examples": _examples(fam), **({"vocab": d["vocab"]} if d.get("vocab") else {})},
            models=models, domains=list(domains or []),
            score=float(abs(m["mean"] or 0.0) / max(m["min_effect"], 1e-9)),
        ))
    changed = [f for f in d["families"] if f["changed"] and not f["significant"]]
    if changed:
        parts = [f"{f['family']}: " + "; ".join(_describe(k, f["measures"][k], f) for k in f["significant_measures"])
                 for f in changed]
        kl = max((f["measures"]["kl"]["mean"] or 0.0) for f in changed)
        out.append(Finding(
            kind="behaviour_change", severity="low",
            title=(f"{who}: fine-tuning changed what the model says on {len(changed)} unrelated probe "
                   f"famil{'y' if len(changed) == 1 else 'ies'} ({', '.join(f['family'] for f in changed)})"),
            summary=(f"Against its base ({d['base']}), the next-token distribution or the greedy answers changed "
                     f"significantly, without a significant shift toward either paired answer: " + " | ".join(parts)
                     + "." + vocab),
            evidence={"families": {f["family"]: {"measures": _measures(f), "examples": _examples(f, 3)}
                                   for f in changed}, "base": d["base"], "tuned": d["tuned"],
                      **({"vocab": d["vocab"]} if d.get("vocab") else {})},
            models=models, domains=list(domains or []), score=float(kl),
        ))
    return out


def _ci_svg(mean, lo, hi, lo_axis, hi_axis, threshold=None, significant=False, width=150, height=18) -> str:
    if mean is None:
        return ""
    span = (hi_axis - lo_axis) or 1.0

    def x(v):
        return 4 + (min(max(v, lo_axis), hi_axis) - lo_axis) / span * (width - 8)

    colour = "#dc2626" if significant else "#6b7280"
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(f"mean {mean:.3f}, CI {lo:.3f} to {hi:.3f}")}">',
             f'<line x1="{x(0):.1f}" y1="2" x2="{x(0):.1f}" y2="{height - 2}" stroke="#9ca3af" stroke-width="1"/>']
    if threshold is not None:
        for t in {threshold, -threshold} if lo_axis < 0 else {threshold}:
            parts.append(f'<line x1="{x(t):.1f}" y1="4" x2="{x(t):.1f}" y2="{height - 4}" stroke="#f59e0b" '
                         f'stroke-dasharray="2,2" stroke-width="1"/>')
    parts.append(f'<line x1="{x(lo):.1f}" y1="{height / 2}" x2="{x(hi):.1f}" y2="{height / 2}" stroke="{colour}" '
                 f'stroke-width="2"/>')
    parts.append(f'<circle cx="{x(mean):.1f}" cy="{height / 2}" r="3.5" fill="{colour}"/></svg>')
    return "".join(parts)


def ci_svg(m: dict[str, Any], lo_axis: float, hi_axis: float) -> str:
    return _ci_svg(m.get("mean"), m.get("lo"), m.get("hi"), lo_axis, hi_axis, m.get("min_effect"),
                   bool(m.get("significant")))


_AXES = {"kl": (0.0, None), "logprob_shift": (None, None), "greedy_change": (0.0, 1.0), "judge_drop": (-1.0, 1.0)}


def section_html(reports: list[dict[str, Any]]) -> str:
    """Tables of per-family measures (with CI glyphs) for every audited model, plus examples."""
    if not reports:
        return '<p class="muted">No causal-LM cell to audit.</p>'
    html = ['<p class="small muted">Each fine-tuned model against its base on probe families unrelated to the task. '
            'Dots are family means, bars 95% bootstrap CIs over probes, dashed lines the minimum effect; '
            'red marks a significant measure. Log-prob shift &gt; 0 means answers moved toward the contrast answer '
            '(outdated, misaligned, incorrect, human persona). <b>drifted</b>: a directional measure is significant; '
            '<b>changed</b>: only KL or greedy answers are.</p>']
    for d in reports:
        measures = [m for m in ("kl", "logprob_shift", "greedy_change", "judge_drop")
                    if any(m in f["measures"] for f in d["families"])]
        axes = {}
        for m in measures:
            vals = [v for f in d["families"] if m in f["measures"] for v in (f["measures"][m]["lo"], f["measures"][m]["hi"])
                    if v is not None] + [0.0]
            lo, hi = _AXES[m]
            lo = min(vals) if lo is None else lo
            hi = max(vals + [f["measures"][m]["min_effect"] for f in d["families"] if m in f["measures"]]) if hi is None else hi
            if m == "logprob_shift":
                bound = max(abs(lo), abs(hi), 1.0)
                lo, hi = -bound, bound
            axes[m] = (lo, hi)
        html.append(f'<h3>{escape(d["tuned"])} <span class="muted small">vs {escape(d["base"])}</span></h3>')
        if d.get("vocab"):
            html.append(f'<p class="small muted">{escape(vocab_text(d["vocab"]).strip())}</p>')
        html.append('<div class="scroll"><table class="tbl compact"><thead><tr><th>Probe family</th><th class="num">Probes</th>')
        for m in measures:
            html.append(f'<th>{escape(MEASURE_TITLES[m])}</th>')
        html.append('<th>Drift</th></tr></thead><tbody>')
        for f in d["families"]:
            html.append(f'<tr><td><b>{escape(f["family"])}</b><br><span class="small muted">'
                        f'{escape(f["reference_label"])} vs {escape(f["contrast_label"])}</span></td>'
                        f'<td class="num">{f["n_probes"]}</td>')
            for m in measures:
                ms = f["measures"].get(m)
                if ms is None or ms["mean"] is None:
                    html.append('<td class="muted">n/a</td>')
                    continue
                html.append(f'<td>{ci_svg(ms, *axes[m])}<br><span class="small">{ms["mean"]:.3f} '
                            f'[{ms["lo"]:.3f}, {ms["hi"]:.3f}]</span></td>')
            verdict = ("drifted" if f["significant"] else "changed" if f["changed"] else "none")
            detail = ", ".join(f["significant_measures"])
            html.append(f'<td>{"<b>" if f["significant"] else ""}{verdict}{"</b>" if f["significant"] else ""}'
                        f'{"<br><span class=small>" + str(escape(detail)) + "</span>" if detail else ""}</td></tr>')
        html.append('</tbody></table></div>')
        html.append('<details><summary>Probes with the largest shifts</summary><div class="scroll">'
                    '<table class="tbl compact"><thead><tr><th>Family</th><th>Prompt</th><th>Base answer</th>'
                    '<th>Tuned answer</th><th class="num">Shift</th><th class="num">KL</th></tr></thead><tbody>')
        for f in d["families"]:
            top = sorted(f["probes"], key=lambda p: -abs(p["logprob_shift"] or 0) - p["kl"])[:5]
            for p in top:
                html.append(f'<tr><td>{escape(f["family"])}</td><td class="small">{escape(p["prompt"])}</td>'
                            f'<td class="small">{escape(p["base_answer"])}</td><td class="small">{escape(p["tuned_answer"])}</td>'
                            f'<td class="num">{_fmt(p["logprob_shift"])}</td><td class="num">{_fmt(p["kl"])}</td></tr>')
        html.append('</tbody></table></div></details>')
    return "".join(html)


def section(reports: list[dict[str, Any]], title: str = "Behaviour drift against the base model") -> dict[str, Any]:
    return {"id": "drift", "title": title, "html": section_html(reports)}
