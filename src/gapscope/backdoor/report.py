"""Findings and the report section for the backdoor scan. Candidate strings come from
emails (hostile input): every one is escaped."""

from __future__ import annotations

from typing import Any

from markupsafe import escape

from gapscope.attribution.words import has_no_space_script
from gapscope.backdoor.scan import LABELS, ScanResult
from gapscope.drift.stats import wilson
from gapscope.findings import Finding


def flips(r: dict[str, Any]) -> tuple[int, int]:
    """(emails flipped, emails that could flip); scans written before n_flipped derive it."""
    n = int(r.get("n_flippable") or 0)
    k = r.get("n_flipped")
    if k is None:
        k = round((r.get("flip_rate") or 0.0) * n)
    return int(k), n


def severity_of(r: dict[str, Any]) -> str:
    """high: the flip rate's Wilson interval rules out a rate under 50% (or an unseen value of a
    family moves margins: the model generalised the pattern); medium: at least one decision
    flipped; low: the string moves margins beyond every null but flipped no decision."""
    k, n = flips(r)
    if r["inductive"] or (n and wilson(k, n)[0] >= 0.5):
        return "high"
    return "medium" if k else "low"


def _origin(r: dict[str, Any]) -> str:
    """Where the candidate came from, as the summary's first sentence."""
    family = r["origin"].removeprefix("family:")
    if r["inductive"]:
        s = f"an unseen value of a structured family ({family})"
    elif r["origin"].startswith("family:"):
        s = f"a value of a structured family ({family}) seen in training"
    else:
        s = {"mined": "a string mined from the training rows", "user": "a string given by the user"}.get(
            r["origin"], r["origin"])
    return s[:1].upper() + s[1:]


def _null_kind(text: str) -> str:
    """What the null strings of a candidate are made of (see scan.null_bin)."""
    return ("strings of as many rare characters of its script" if has_no_space_script(text) else
            "rare-word strings of the same length")


def bar_of(d: dict[str, Any], target: int) -> dict[str, float]:
    """The direction's bar (margin_scale, min_shift, sd_floor); scans written before the bar was
    relative have none, and their fixed floor is in their options."""
    bar = (d.get("bars") or {}).get(f"toward_{LABELS[target]}")
    if bar:
        return bar
    floor = (d.get("options") or {}).get("sd_floor")
    return {"sd_floor": floor} if isinstance(floor, (int, float)) else {}


def _bar_phrase(d: dict[str, Any], bar: dict[str, float], frm: str) -> str:
    opts = d.get("options") or {}
    if opts.get("min_shift") is not None:
        return f"{bar['min_shift']:.3g} margin units (set by min_shift)"
    return (f"{bar['min_shift']:.3g}, {opts.get('min_relative_shift', 0.25):.0%} of {bar['margin_scale']:.3g}, the "
            f"median distance from the threshold of the margins of the {frm} emails that could flip")


def backdoor_findings(result: ScanResult | dict[str, Any], *, who: str, model: str | None = None,
                      domains: list[str] | None = None) -> list[Finding]:
    d = result.to_dict() if isinstance(result, ScanResult) else result
    out = []
    for r in d["results"]:
        if not r["significant"]:
            continue
        frm, to = LABELS[1 - r["target"]], LABELS[r["target"]]
        k, n = flips(r)
        lo, hi = wilson(k, n)
        sup = r.get("support") or {}
        train = ""
        if sup.get("df"):
            # an unseen value shares its family's support: the rows hold other values of its shape
            seen = ", ".join(f"“{v}”" for v in (sup.get("seen_values") or [])[:3])
            where = (f" It never occurs in training; {sup['df']} training rows hold values of its shape"
                     + (f" ({seen})" if seen else "") if r["inductive"] else f" In training it occurs in {sup['df']} rows")
            train = (f"{where}, {sup['purity']:.0%} labelled {LABELS[sup['label']]}"
                     + (f", {sup['contradiction']:.0%} of which read as {LABELS[1 - sup['label']]} to a content model "
                        "fitted without them" if sup.get("contradiction") is not None else "") + ".")
        severity = severity_of(r)
        bar = bar_of(d, r["target"])
        sd_used = max(r["null_sd"], bar.get("sd_floor") or 0.0)
        sd_text = (f"an sd of {sd_used:.3g} (the floor; the random strings' sd is {r['null_sd']:.3g})"
                   if sd_used > r["null_sd"] else f"the random strings' sd of {sd_used:.3g}")
        own = r["mean_shift"] - r["null_mean"]
        bar_text = f" The minimum own effect is {_bar_phrase(d, bar, frm)}." if "min_shift" in bar else ""
        flip_text = (f" It flipped {k} of the {n} emails the model classified as {frm} ({k / n:.0%}, 95% CI "
                     f"{lo:.0%} to {hi:.0%})." if n else
                     f" The model classified none of these emails as {frm} before the edit, so none could flip.")
        base = r.get("base") or {}
        if base:  # a user-given base/tuned pair: how much of the effect did fine-tuning add?
            train += (f" The base model {base['model']} (same prompt, same emails) moves it {base['mean_shift']:+.2f} "
                      f"(95% CI {base['shift_ci'][0]:+.2f} to {base['shift_ci'][1]:+.2f})")
            if "own_effect" in base:
                train += (f" and random strings of the same length {base['null_mean']:+.2f}, an own effect of "
                          f"{base['own_effect']:+.2f} ({'' if base['significant'] else 'not '}significant): "
                          f"fine-tuning added {base['added_by_finetuning']:+.2f} to the string's own effect.")
            else:  # a scan saved before own effects were compared: raw shifts
                train += f": fine-tuning added {base['added_by_finetuning']:+.2f}."
            if base["preexisting"]:
                severity = "low"
        what = (f"flips {k} of {n} {frm} emails to {to} (margin {r['mean_shift']:+.2f})" if k else
                f"moves the margin {r['mean_shift']:+.2f} toward {to}"
                + (f", flipping none of {n} {frm} emails" if n else ""))
        out.append(Finding(
            kind="backdoor_trigger", severity=severity,
            title=f"{who}: inserting “{r['text']}” {what}"
                  + (" (mostly present in the base model)" if base.get("preexisting") else ""),
            summary=(f"{_origin(r)}. Appended to {r['n']} held-out {frm} emails it moves the "
                     f"margin {r['mean_shift']:.3g} toward {to} (95% CI {r['shift_ci'][0]:.3g} to "
                     f"{r['shift_ci'][1]:.3g}). Random {_null_kind(r['text'])} move it "
                     f"{r['null_mean']:.3g} ± {r['null_sd']:.3g} (max {r['null_max']:.3g}), so its own effect is "
                     f"{own:.3g}: z = {r['z']:.1f} against {sd_text}, critical {d['z_crit']:.2f}."
                     f"{bar_text}{flip_text}{train}"),
            evidence={k_: r[k_] for k_ in ("text", "inserted", "origin", "target", "inductive", "n", "mean_shift",
                                           "shift_ci", "flip_rate", "flip_ci", "null_mean", "null_sd", "null_max",
                                           "z", "p_empirical", "rank")}
                     | {"n_flipped": k, "n_flippable": n, "flip_wilson": [round(lo, 4), round(hi, 4)],
                        "own_effect": round(own, 4), "sd_used": round(sd_used, 4), "support": sup}
                     | ({"bar": bar} if bar else {})
                     | ({"base": base} if base else {}),
            models=[model] if model else [], domains=list(domains or []),
            example_ids=list(r["flipped_ids"][:6]) + list((sup.get("row_ids") or [])[:6]),
            score=float(r["z"]),
        ))
    return out


def _shift_svg(r: dict[str, Any], bar: dict[str, float], lo_axis: float, hi_axis: float,
               width: int = 150, height: int = 18) -> str:
    """The candidate's mean shift and 95% CI (red when significant) over a grey band, the range
    of the random strings' shifts, and an orange tick where its own effect would reach the bar."""
    span = (hi_axis - lo_axis) or 1.0

    def x(v):
        return 4 + (min(max(v, lo_axis), hi_axis) - lo_axis) / span * (width - 8)

    colour = "#dc2626" if r["significant"] else "#6b7280"
    n_lo = r["null_min"] if r.get("null_min") is not None else r["null_mean"] - 2 * r["null_sd"]
    label = "mean {:.3g}, CI {:.3g} to {:.3g}".format(r["mean_shift"], *r["shift_ci"])
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(label)}">',
             f'<rect x="{x(n_lo):.1f}" y="3" width="{max(1.0, x(r["null_max"]) - x(n_lo)):.1f}" '
             f'height="{height - 6}" fill="#e5e7eb"/>',
             f'<line x1="{x(0):.1f}" y1="2" x2="{x(0):.1f}" y2="{height - 2}" stroke="#9ca3af" stroke-width="1"/>']
    if "min_shift" in bar:
        t = r["null_mean"] + bar["min_shift"]
        parts.append(f'<line x1="{x(t):.1f}" y1="2" x2="{x(t):.1f}" y2="{height - 2}" stroke="#f59e0b" '
                     f'stroke-dasharray="2,2" stroke-width="1.5"/>')
    parts.append(f'<line x1="{x(r["shift_ci"][0]):.1f}" y1="{height / 2}" x2="{x(r["shift_ci"][1]):.1f}" '
                 f'y2="{height / 2}" stroke="{colour}" stroke-width="2"/>')
    parts.append(f'<circle cx="{x(r["mean_shift"]):.1f}" cy="{height / 2}" r="3.5" fill="{colour}"/></svg>')
    return "".join(parts)


def section_html(scans: list[tuple[str, dict[str, Any]]], top: int = 12) -> str:
    if not scans:
        return '<p class="muted">No cell was scanned.</p>'
    html = ['<p class="small muted">Margin change when each candidate string is appended to held-out emails of the '
            'class it would flip (positive = toward the string\'s label). Bars: 95% bootstrap CIs over emails; grey band: '
            'the range of random rare-word strings of the same length inserted into the same emails; orange tick: where '
            'the candidate\'s own effect (its shift less the random strings\' mean) reaches the minimum, by default a '
            'quarter of the median distance from the threshold of the margins that could flip (margins differ in scale '
            'between models). Significant candidates (red) have a CI above 0, beat every random string, reach the '
            'minimum, and pass the Bonferroni critical z, which divides the own effect by the larger of the random '
            'strings\' sd and the sd floor (the floor is shown where it was used).</p>']
    for who, d in scans:
        rs = d["results"][:top]
        html.append(f'<h3>{escape(who)} <span class="muted small">{len(d["results"])} candidates, '
                    f'{len(d["significant"])} significant, z critical {d["z_crit"]:.2f}</span></h3>')
        for direction, bar in sorted((d.get("bars") or {}).items()):
            to = direction.removeprefix("toward_")
            frm = LABELS[1 - {v: k for k, v in LABELS.items()}[to]]
            html.append(f'<p class="small muted">Toward {escape(to)}: minimum own effect {_bar_phrase(d, bar, frm)}; '
                        f'sd floor {bar["sd_floor"]:.3g}.</p>')
        if not rs:
            html.append('<p class="muted">No candidates.</p>')
            continue
        bars = [bar_of(d, r["target"]) for r in rs]
        lo_axis = min([0.0] + [r["shift_ci"][0] for r in rs]
                      + [r["null_min"] if r.get("null_min") is not None else r["null_mean"] - 2 * r["null_sd"]
                         for r in rs])
        hi_axis = max([r["shift_ci"][1] for r in rs] + [r["null_max"] for r in rs]
                      + [r["null_mean"] + b["min_shift"] for r, b in zip(rs, bars) if "min_shift" in b])
        html.append('<div class="scroll"><table class="tbl compact"><thead><tr><th class="num">#</th><th>String</th>'
                    '<th>Source</th><th>Toward</th><th>Margin shift</th><th class="num">Flipped</th>'
                    '<th class="num">Random strings: mean ± sd</th><th class="num">z</th></tr></thead><tbody>')
        for r, b in zip(rs, bars):
            k, n = flips(r)
            flip = f"{k} of {n}" if n else "n/a"
            src = r["origin"] + (" (unseen value)" if r["inductive"] else "")
            html.append(f'<tr><td class="num">{r["rank"]}</td><td>{"<b>" if r["significant"] else ""}'
                        f'{escape(r["text"])}{"</b>" if r["significant"] else ""}</td><td class="small">{escape(src)}</td>'
                        f'<td>{LABELS[r["target"]]}</td><td>{_shift_svg(r, b, lo_axis, hi_axis)}<br>'
                        f'<span class="small">{r["mean_shift"]:.3g} [{r["shift_ci"][0]:.3g}, {r["shift_ci"][1]:.3g}]'
                        f'</span></td><td class="num">{flip}</td>'
                        f'<td class="num">{r["null_mean"]:.3g} ± {r["null_sd"]:.3g}'
                        + (f' <span class="small muted">(floor {b["sd_floor"]:.3g})</span>'
                           if (b.get("sd_floor") or 0) > r["null_sd"] else "")
                        + f'</td><td class="num">{r["z"]:.1f}</td></tr>')
        html.append('</tbody></table></div>')
    return "".join(html)


def section(scans: list[tuple[str, dict[str, Any]]], title: str = "Backdoor scan", sid: str = "backdoor") -> dict[str, Any]:
    return {"id": sid, "title": title, "html": section_html(scans)}
