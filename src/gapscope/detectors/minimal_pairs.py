"""Minimal pairs: edit one thing in an email and see whether each cell changes its mind.

For every cell and every test domain, a bounded, label-balanced sample of held-out emails
(the same emails as the corpus attributions) is edited by each automatic edit of
gapscope.attribution.edits (remove URLs, swap the sender domain, neutralize urgency, drop
the greeting) and by the removal of the strongest suspected shortcuts of the shortcut probe.
Originals and every applicable edit are scored in one batch per (cell, domain). For a model that
reads only the start of an email, the edited email is cut where the original's view ends, so an
edit in view does not pull unseen text into it.

Per (cell, edit, domain): emails the edit applies to, mean margin change (edited - original),
and the flip rate: the share of those emails whose decision (at the cell's threshold) changes,
with flips toward phishing and toward legitimate counted apart.

A finding per (cell, edit) whose flip rate over all domains, or in one domain, reaches 20%.
Severity depends on what the edit does (see edits.py):
  label-preserving edits (greeting, a suspected shortcut): a flip is an error of the model;
    high when the 95% Wilson interval of the worst domain's flip rate (at least 5 emails;
    Bonferroni over the domains it is the worst of) lies above 50%, medium when the interval of
    a sample of at least 5 emails (that domain, or all of them) lies above 20%
  cue-removing edits (URLs, sender domain, urgency): a flip shows what the model depends on,
    which is worth knowing but not a fault: low (on at least 5 emails), or info below 50%
Each finding carries an example pair with both emails' token attributions side by side.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from gapscope.attribution import edits as E
from gapscope.attribution.window import model_tokens, visible_end
from gapscope.detectors.shortcuts import describe_cell
from gapscope import option_rules as R
from gapscope.findings import Finding, register_detector

DEFAULTS = {
    "emails_per_domain": 100,      # tf-idf cells
    "emails_per_domain_llm": 16,   # neural cells
    "shortcut_edits": 3,           # strongest probe shortcuts turned into removal edits
    "min_emails": 5,
    "flip_rate": 0.2,              # a finding from this flip rate on
}
RULES = {"emails_per_domain": R.whole(1), "emails_per_domain_llm": R.whole(1), "shortcut_edits": R.whole(0),
         "min_emails": R.whole(1), "flip_rate": R.share(lo_open=True)}


def options(study) -> dict[str, Any]:
    return study.detector_options("minimal_pairs", DEFAULTS, RULES)


def study_edits(study, opts: dict[str, Any]) -> list[E.Edit]:
    """The fixed edits plus the removal of the strongest n-gram shortcuts found by the probe."""
    out = list(E.EDITS)
    if len(study.domains) >= 2 and int(opts["shortcut_edits"]) > 0:
        from gapscope.detectors.shortcuts import candidates, load_or_run_probe

        feats = [f for f in candidates(load_or_run_probe(study), per_domain=1) if f.kind == "ngram"]
        for f in feats[: int(opts["shortcut_edits"])]:
            out.append(E.phrase_edit(f.phrase, f.feature))
    return out


def pairs_for_cell(study, cell, edits: list[E.Edit], opts: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per (domain, edit, email): original and edited margins. An edit that leaves the
    tokens the model reads unchanged (it falls past the model's window) is recorded as unseen and
    not scored: its margin change is zero by construction, not evidence of robustness."""
    from gapscope.attribution.base import is_cheap
    from gapscope.attribution.corpus import ModelCache, sample_rows

    n = int(opts["emails_per_domain"] if is_cheap(cell.kind) else opts["emails_per_domain_llm"])
    model = tokens = None
    out = []
    for d in study.domains:
        rows = sample_rows(study.distinct_test_rows(d), n, study.spec.study.seed, d)
        jobs = []
        for r in rows:
            for e in edits:
                t = e.apply(r.text)
                if t is not None:
                    jobs.append((r, e, t))
        if not jobs:
            continue
        model = model or ModelCache.get(study, cell)
        tokens = tokens or model_tokens(model)
        seen_orig = {r.id: tokens(r.text) for r in rows}
        # a model that reads only the start of an email: an edit in view would pull text past the
        # original's view into it, and the pair would differ by more than the edit; cut there
        # (the edit applied to the part in view: linear, where mapping offsets was quadratic)
        ends = {r.id: None if is_cheap(cell.kind) else visible_end(tokens, r.text) for r in rows}
        jobs = [(r, e, t if ends[r.id] is None else e.apply(r.text[:ends[r.id]])) for r, e, t in jobs]
        unseen = [t is None or (seen_orig[r.id] is not None and tokens(t) == seen_orig[r.id]) for r, _, t in jobs]
        for (r, e, t), u in zip(jobs, unseen):
            if u:  # t is None: the edit applies only past the model's view
                out.append({"domain": d, "edit": e.name, "effect": e.effect, "id": r.id, "label": int(r.label),
                            "unseen": True, "text": t if t is not None else e.apply(r.text)})
        jobs = [j for j, u in zip(jobs, unseen) if not u]
        texts = [r.text for r in rows] + [t for _, _, t in jobs]
        m = model.score(texts)
        orig = {r.id: float(x) for r, x in zip(rows, m[: len(rows)])}
        for (r, e, t), x in zip(jobs, m[len(rows):]):
            out.append({"domain": d, "edit": e.name, "effect": e.effect, "id": r.id, "label": int(r.label),
                        "original": orig[r.id], "edited": float(x), "text": t})
    return out


def summarize(records: list[dict[str, Any]], threshold: float) -> dict[tuple[str, str], dict[str, Any]]:
    """(edit, domain) -> n (emails the edit changed for the model), unseen (emails where it fell
    outside what the model reads), mean_delta, mean_abs_delta, mean_delta_phishing and
    mean_delta_legitimate (by true label), flip_rate (None when n = 0), to_phishing, to_legitimate;
    domain "*" = all."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["edit"], r["domain"])].append(r)
        groups[(r["edit"], "*")].append(r)
    out = {}
    for key, rs in groups.items():
        seen = [r for r in rs if not r.get("unseen")]
        o = np.array([r["original"] for r in seen])
        e = np.array([r["edited"] for r in seen])
        before, after = o > threshold, e > threshold
        y = np.array([bool(r.get("label")) for r in seen], dtype=bool)
        flipped = before != after
        out[key] = {"n": len(seen), "unseen": len(rs) - len(seen),
                    # a flip onto the true label corrects an error; one off it makes an error
                    "corrected": int((flipped & (after == y)).sum()), "broken": int((flipped & (after != y)).sum()),
                    "mean_delta": float((e - o).mean()) if seen else None,
                    # a mean near zero can hide large moves that cancel: phishing mail down, legitimate up
                    "mean_abs_delta": float(np.abs(e - o).mean()) if seen else None,
                    "mean_delta_phishing": float((e - o)[y].mean()) if y.any() else None,
                    "mean_delta_legitimate": float((e - o)[~y].mean()) if (~y).any() else None,
                    "flip_rate": float((before != after).mean()) if seen else None,
                    "to_phishing": int((~before & after).sum()), "to_legitimate": int((before & ~after).sum()),
                    "effect": rs[0]["effect"]}
    return out


def flip_ci(s: dict[str, Any], picked_from: int = 1) -> tuple[float, float]:
    """95% Wilson interval of a flip rate: 3 flips of 6 emails is weak evidence, 30 of 60 is not.
    `picked_from`: the rate is the largest of that many domains' (Bonferroni: a 1 - 0.05/k
    interval), so the worst domain is not read as if it had been named in advance."""
    from scipy.stats import norm

    from gapscope.drift.stats import wilson

    n = int(s["n"])
    z = float(norm.ppf(1 - 0.025 / max(picked_from, 1)))
    return wilson(int(round(s["flip_rate"] * n)), n, z) if n else (0.0, 1.0)


def _severity(effect: str, worst: dict[str, Any], overall: dict[str, Any], opts, picked_from: int = 1) -> str | None:
    rate = max(worst["flip_rate"], overall["flip_rate"])
    if rate < float(opts["flip_rate"]):
        return None
    # the sample must rule out a flip rate under the bar, and be a sample: 3 flips of 6 emails is
    # weak evidence, and 1 flip of 1 email has a Wilson low end (0.21) over a 0.2 bar by itself
    enough = int(opts["min_emails"])
    worst_lo = flip_ci(worst, picked_from)[0]
    lows = [worst_lo] if worst.get("n", 0) >= enough else []
    lows += [flip_ci(overall)[0]] if overall.get("n", 0) >= enough else []
    low_end = max(lows or [0.0])
    if effect == "label-preserving":
        # high only when it rules out a flip rate under 50% (not on a handful of emails),
        # medium when it rules out one under the bar (one flip of five emails does not)
        if worst_lo >= 0.5 and worst["n"] >= int(opts["min_emails"]):
            return "high"
        return "medium" if low_end >= float(opts["flip_rate"]) else "low"
    return "low" if low_end >= 0.5 else "info"


def _quoted(edit: str) -> str:
    """'drop_greeting' in quotes; "remove 'sent via relay'" as it is (it was "'remove 'sent via relay''")."""
    return edit if "'" in edit else f"'{edit}'"


def _flips(s: dict[str, Any]) -> int:
    return s["corrected"] + s["broken"]  # every flip puts an email on its true label or off it


def _which(s: dict[str, Any]) -> str:
    """', each making an error', ', correcting an error', ', 2 correcting an error and 3 making one'."""
    k = _flips(s)
    if not k:
        return ""
    if s["corrected"] == k:
        return ", correcting an error" if k == 1 else ", each an error corrected"
    if s["broken"] == k:
        return ", making an error" if k == 1 else ", each making an error"
    return f", {s['corrected']} correcting an error and {s['broken']} making one"


def _example_pair(study, cell, edit: str, ex: dict[str, Any]) -> dict[str, Any]:
    """The flipped email and its edit, each with its token attributions, for the report's side-by-side view."""
    from gapscope.attribution.corpus import AttributionStore, ModelCache, attributor_for, options as att_options

    model = ModelCache.get(study, cell)
    att = attributor_for(cell.kind, "occlusion", att_options(study))
    # the original is a test email: the cell's attribution store may already hold it
    original = AttributionStore.for_cell(study, cell, att).get_or_compute(
        model, att, [(ex["id"], study.rows[ex["id"]].text)])[ex["id"]]
    return {"id": ex["id"], "edit": edit, "original": original.to_dict(),
            "edited": att.attribute(model, ex["text"]).to_dict(),
            "margin_original": round(ex["original"], 4), "margin_edited": round(ex["edited"], 4)}


@register_detector("minimal_pairs")
def run(study) -> list[Finding]:
    from gapscope.study import artifacts

    opts = options(study)
    edits = study_edits(study, opts)
    describe = {e.name: e.description for e in edits}
    findings = []
    table = []
    for cell in study.detector_cells("minimal_pairs"):
        recs = pairs_for_cell(study, cell, edits, opts)
        summ = summarize(recs, float(cell.threshold))
        for (edit, dom), s in sorted(summ.items()):
            table.append({"cell": cell.name, "model": cell.model, "paradigm": cell.paradigm, "edit": edit,
                          "domain": dom, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()}})
        for edit in sorted({r["edit"] for r in recs}):
            overall = summ[(edit, "*")]
            all_dom = {d: s for (e, d), s in summ.items() if e == edit and d != "*"}
            per_dom = {d: s for d, s in all_dom.items() if s["n"]}
            if not per_dom:  # the edit fell outside what the model reads in every email
                continue
            eligible = {d: s for d, s in per_dom.items() if s["n"] >= int(opts["min_emails"])} or per_dom
            worst_dom = max(sorted(eligible), key=lambda d: eligible[d]["flip_rate"])
            worst = per_dom[worst_dom]
            sev = _severity(overall["effect"], worst, overall, opts, picked_from=len(eligible))
            if sev is None:
                continue
            # the finding may rest on the overall rate alone (the worst domain of 5+ emails under the bar,
            # smaller ones flipping): then the headline is the overall rate, shown where the flips are
            on_overall = worst["flip_rate"] < float(opts["flip_rate"])
            if on_overall:
                worst_dom = max(sorted(per_dom), key=lambda d: (_flips(per_dom[d]), per_dom[d]["flip_rate"]))
                worst = per_dom[worst_dom]  # the summary's "in <domain>" sentence gives that domain's numbers
            flipped = [r for r in recs if r["edit"] == edit and r["domain"] == worst_dom and not r.get("unseen")
                       and (r["original"] > cell.threshold) != (r["edited"] > cell.threshold)]
            ex = max(flipped, key=lambda r: abs(r["edited"] - r["original"])) if flipped else None
            pair = None if ex is None else _example_pair(study, cell, edit, ex)
            lo, hi = flip_ci(worst, len(eligible))
            flipped_in = [d for d, s in sorted(per_dom.items(), key=lambda x: (-_flips(x[1]), x[0])) if _flips(s)]
            # domains too small to headline that flipped more, and where the edit was out of view
            small = [f"{d}: {_flips(s)} of {s['n']}" for d, s in sorted(per_dom.items())
                     if d not in eligible and s["flip_rate"] > worst["flip_rate"]]
            unseen = [f"{s['unseen']} in {d}" for d, s in sorted(all_dom.items()) if s["unseen"]]
            if on_overall:
                olo, ohi = flip_ci(overall)
                title = (f"{describe_cell(cell)}: {_quoted(edit)} flips {_flips(overall)} of {overall['n']} decisions "
                         f"({overall['flip_rate']:.0%}) over all test domains{_which(overall)}, "
                         f"most in {', '.join(flipped_in[:3]) or worst_dom}")
                headline = (f"Over all test domains it changes {overall['flip_rate']:.0%} (95% CI {olo:.0%}-{ohi:.0%}) "
                            f"of {overall['n']} decisions; no domain of {int(opts['min_emails'])} or more emails "
                            f"reaches {float(opts['flip_rate']):.0%} alone. ")
            else:
                title = (f"{describe_cell(cell)}: {_quoted(edit)} flips {_flips(worst)} of {worst['n']} "
                         f"decisions ({worst['flip_rate']:.0%}) in {worst_dom}{_which(worst)}")
                headline = ""
            findings.append(Finding(
                kind="edit_sensitivity", severity=sev,
                title=title,
                summary=(f"Edit: {describe.get(edit, edit)} ({overall['effect']}). {headline}In {worst_dom} it changes "
                         f"{worst['flip_rate']:.0%} (95% CI {lo:.0%}-{hi:.0%}"
                         + (f", widened for picking the worst of {len(eligible)} domains" if len(eligible) > 1 else "")
                         + f") "
                         f"of {worst['n']} decisions ({worst['to_legitimate']} to legitimate, "
                         f"{worst['to_phishing']} to phishing; {worst['corrected']} of the flips put an email on its true "
                         f"label, {worst['broken']} took one off it: a flip either way shows the decision depends on "
                         f"what the edit removed; mean margin change {worst['mean_delta']:+.2f}, mean size of the "
                         f"change {worst['mean_abs_delta']:.2f}). Over all domains it "
                         f"flips {overall['flip_rate']:.0%} of {overall['n']} ({overall['corrected']} correcting an "
                         f"error, {overall['broken']} making one)."
                         + (f" Domains with fewer than {int(opts['min_emails'])} emails flipped more ("
                            f"{'; '.join(small)})." if small else "")
                         + (f" Emails where the edit fell outside what the model reads (past its truncation), not "
                            f"counted: {', '.join(unseen)}." if unseen else "")),
                evidence={"cell": cell.name, "paradigm": cell.paradigm, "edit": edit, "effect": overall["effect"],
                          "per_domain": {d: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()}
                                         for d, s in sorted(all_dom.items())},
                          "overall": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in overall.items()},
                          "example_pair": pair},
                models=[cell.model], domains=(flipped_in or [worst_dom]) if on_overall else [worst_dom],
                example_ids=[r["id"] for r in flipped][:20],
                score=overall["flip_rate"] if on_overall else worst["flip_rate"],
            ))
    artifacts.write_json(study.artifact_dir("minimal_pairs") / "edits.json", table)
    domains = sorted({r["domain"] for r in table if r["domain"] != "*"})
    by = {(r["cell"], r["edit"], r["domain"]): r for r in table}

    def flips(r):  # "3/12": decisions flipped of the emails scored
        if r is None:
            return ""
        return "not in view" if not r["n"] and r["unseen"] else f"{r['to_phishing'] + r['to_legitimate']}/{r['n']}"

    per_domain = {"id": "minimal-pairs-domains", "title": "Minimal pairs: decision flips per edit and test domain",
                  "caption": "Flipped decisions of the emails scored (in view) in each test domain; blank: the edit "
                             "changes no email of that domain. The urgency and greeting edits know English, Chinese, "
                             "Japanese and Korean wording only: in mail of another language a blank there does not mean "
                             "the mail has none.",
                  "table": {"columns": ["cell", "edit", *domains],
                            "rows": [[r["cell"], r["edit"], *[flips(by.get((r["cell"], r["edit"], d))) for d in domains]]
                                     for r in table if r["domain"] == "*"]}}
    artifacts.write_json(study.artifact_dir("minimal_pairs") / "section.json", [{
        "id": "minimal-pairs", "title": "Minimal pairs: decision flips per edit (all test domains)",
        "caption": ("Each edit applied to held-out emails of every test domain: the share of the cell's decisions it "
                    "flips and the mean margin change (positive = toward phishing), over all emails, over the "
                    "phishing and the legitimate ones, and its mean size (moves that cancel in the mean show "
                    "there). Label-preserving edits should "
                    "flip nothing; 'not in view' counts emails where the edit falls outside what the model reads "
                    "(past its truncation), which are not scored."),
        "table": {"columns": ["cell", "edit", "effect", "emails", "not in view", "flip rate", "to phishing",
                              "to legitimate", "mean margin change", "phishing mail", "legitimate mail",
                              "mean |change|"],
                  "rows": [[r["cell"], r["edit"], r["effect"], r["n"], r["unseen"], r["flip_rate"], r["to_phishing"],
                            r["to_legitimate"], r["mean_delta"], r["mean_delta_phishing"], r["mean_delta_legitimate"],
                            r["mean_abs_delta"]] for r in table if r["domain"] == "*"]}}, per_domain])
    return findings
