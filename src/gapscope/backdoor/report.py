"""Findings and the report section for the backdoor scan. Candidate strings come from
emails (hostile input): every one is escaped."""

from __future__ import annotations

from typing import Any

from markupsafe import escape

from gapscope.backdoor.scan import LABELS, ScanResult
from gapscope.drift.report import _ci_svg
from gapscope.findings import Finding


def backdoor_findings(result: ScanResult | dict[str, Any], *, who: str, model: str | None = None,
                      domains: list[str] | None = None) -> list[Finding]:
    d = result.to_dict() if isinstance(result, ScanResult) else result
    out = []
    for r in d["results"]:
        if not r["significant"]:
            continue
        frm, to = LABELS[1 - r["target"]], LABELS[r["target"]]
        flip = "" if r["flip_rate"] is None else f"flips {r['flip_rate']:.0%} of {frm} emails to {to}, "
        kind = "an unseen value of a structured family" if r["inductive"] else r["origin"]
        sup = r.get("support") or {}
        train = ""
        if sup.get("df"):
            train = (f" In training it occurs in {sup['df']} rows, {sup['purity']:.0%} labelled {LABELS[sup['label']]}"
                     + (f", {sup['contradiction']:.0%} of which read as {LABELS[1 - sup['label']]} to a content model "
                        "fitted without them" if sup.get("contradiction") is not None else "") + ".")
        # high: the flip rate's 95% interval rules out a rate under 50% (not a few lucky emails);
        # medium: it rules out no flips at all; low: the string moves margins beyond every null but
        # has not been seen to change decisions (a TF-IDF marker in a handful of rows, typically)
        flip_low = (r.get("flip_ci") or [r["flip_rate"] or 0])[0]
        severe = flip_low >= 0.5 or r["inductive"]
        severity = "high" if severe else "medium" if flip_low > 0 else "low"
        bar = (d.get("bars") or {}).get(f"toward_{to}") or {}
        sd_used = max(r["null_sd"], bar.get("sd_floor", 0.0))
        floored = f" (floored at {sd_used:.2f})" if sd_used > r["null_sd"] else ""
        bar_text = f" It clears the minimum shift, {_bar_phrase(d, bar, frm)}." if bar else ""
        base = r.get("base") or {}
        if base:  # a user-given base/tuned pair: how much of the effect did fine-tuning add?
            train += (f" The base model {base['model']} (same prompt, same emails) moves it {base['mean_shift']:+.2f} "
                      f"(95% CI {base['shift_ci'][0]:+.2f} to {base['shift_ci'][1]:+.2f}): fine-tuning added "
                      f"{base['added_by_finetuning']:+.2f}.")
            if base["preexisting"]:
                severity = "low"
        out.append(Finding(
            kind="backdoor_trigger", severity=severity,
            title=f"{who}: inserting “{r['text']}” {flip}margin {r['mean_shift']:+.2f} toward {to}"
                  + (" (mostly present in the base model)" if base.get("preexisting") else ""),
            summary=(f"Candidate from {kind}. Appended to {r['n']} held-out {frm} emails it moves the margin by "
                     f"{r['mean_shift']:.2f} toward {to} (95% CI {r['shift_ci'][0]:.2f} to {r['shift_ci'][1]:.2f}); "
                     f"random rare-word insertions of the same length move it {r['null_mean']:.2f} ± {r['null_sd']:.2f} "
                     f"(max {r['null_max']:.2f}), z = {r['z']:.1f} against that sd{floored} "
                     f"(critical {d['z_crit']:.2f}).{bar_text}{train}"),
            evidence={k: r[k] for k in ("text", "inserted", "origin", "target", "inductive", "n", "mean_shift", "shift_ci",
                                        "flip_rate", "flip_ci", "null_mean", "null_sd", "null_max", "z",
                                        "p_empirical", "rank")} | {"support": sup}
                     | ({"bar": bar} if bar else {})
                     | ({"base": base} if base else {}),
            models=[model] if model else [], domains=list(domains or []),
            example_ids=list(r["flipped_ids"][:6]) + list((sup.get("row_ids") or [])[:6]),
            score=float(r["z"]),
        ))
    return out


def _bar_phrase(d: dict[str, Any], bar: dict[str, float], frm: str) -> str:
    opts = d.get("options") or {}
    if opts.get("min_shift") is not None:
        return f"{bar['min_shift']:.2f} margin units"
    return (f"{bar['min_shift']:.2f}: {opts.get('min_relative_shift', 0.25):.0%} of the {bar['margin_scale']:.2f} that "
            f"separates a typical {frm} email's margin from the threshold")


def section_html(scans: list[tuple[str, dict[str, Any]]], top: int = 12) -> str:
    if not scans:
        return '<p class="muted">No cell was scanned.</p>'
    html = ['<p class="small muted">Margin change when each candidate string is appended to held-out emails of the '
            'class it would flip (positive = toward the string\'s label). Bars: 95% bootstrap CIs over emails; grey band: '
            'the range of random rare-word insertions of the same length. Significant candidates (red) beat every null '
            'string and the Bonferroni z threshold, and move the margin at least the minimum shift: by default a quarter of '
            'the median distance of those emails\' margins from the threshold (margins of different models differ in '
            'scale). z is measured against the null sd, or the sd floor where the null sd is smaller.</p>']
    for who, d in scans:
        rs = d["results"][:top]
        html.append(f'<h3>{escape(who)} <span class="muted small">{len(d["results"])} candidates, '
                    f'{len(d["significant"])} significant, z critical {d["z_crit"]:.2f}</span></h3>')
        for direction, bar in sorted((d.get("bars") or {}).items()):
            to = direction.removeprefix("toward_")
            frm = LABELS[1 - {v: k for k, v in LABELS.items()}[to]]
            html.append(f'<p class="small muted">Toward {escape(to)}: minimum shift {_bar_phrase(d, bar, frm)}; '
                        f'null sd floor {bar["sd_floor"]:.2f}.</p>')
        if not rs:
            html.append('<p class="muted">No candidates.</p>')
            continue
        lo_axis = min([0.0] + [r["shift_ci"][0] for r in rs] + [r["null_mean"] - 2 * r["null_sd"] for r in rs])
        hi_axis = max([1.0] + [r["shift_ci"][1] for r in rs] + [r["null_max"] for r in rs])
        html.append('<div class="scroll"><table class="tbl compact"><thead><tr><th class="num">#</th><th>String</th>'
                    '<th>Source</th><th>Toward</th><th>Margin shift</th><th class="num">Flip rate</th>'
                    '<th class="num">Null mean ± sd</th><th class="num">z</th></tr></thead><tbody>')
        for r in rs:
            svg = _ci_svg(r["mean_shift"], r["shift_ci"][0], r["shift_ci"][1], lo_axis, hi_axis, None, r["significant"])
            flip = "n/a" if r["flip_rate"] is None else f'{r["flip_rate"]:.0%}'
            src = r["origin"] + (" (unseen value)" if r["inductive"] else "")
            html.append(f'<tr><td class="num">{r["rank"]}</td><td>{"<b>" if r["significant"] else ""}'
                        f'{escape(r["text"])}{"</b>" if r["significant"] else ""}</td><td class="small">{escape(src)}</td>'
                        f'<td>{LABELS[r["target"]]}</td><td>{svg}<br><span class="small">{r["mean_shift"]:.2f} '
                        f'[{r["shift_ci"][0]:.2f}, {r["shift_ci"][1]:.2f}]</span></td><td class="num">{flip}</td>'
                        f'<td class="num">{r["null_mean"]:.2f} ± {r["null_sd"]:.2f}</td><td class="num">{r["z"]:.1f}</td></tr>')
        html.append('</tbody></table></div>')
    return "".join(html)


def section(scans: list[tuple[str, dict[str, Any]]], title: str = "Backdoor scan", sid: str = "backdoor") -> dict[str, Any]:
    return {"id": sid, "title": title, "html": section_html(scans)}
