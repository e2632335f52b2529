"""Inside the model: why a neural cell fails out of domain, read from its activations.

Runs gapscope.internals.analyse over the neural cells (specialists by default; option
`cells = "all"`), then turns the numbers into findings:

  readout_failure          a probe trained on the cell's domain still separates another
                           domain's classes (AUROC >= 0.75) while the model does not (>= 0.10
                           lower, and the paired bootstrap bound of the difference above 0,
                           Bonferroni over the cell's comparisons): the representation
                           transfers, the read-out does not (or, where the last layer's probe
                           falls short, the layers above the probe's lose it)
  representation_failure   the model fails on a domain (AUROC < 0.75 on the sample and, where
                           the matrix has it, on all of the domain's test emails) and no layer's
                           probe does better: the
                           representation does not carry a transferable label signal (`oracle`
                           tells whether it carries one at all); high when the matrix, on all
                           of that domain's test emails, has the model below 0.65 with its 95%
                           AUROC interval below 0.75, else medium
  domain_aligned_decision  at the read-out layer the label direction points along the
                           domain direction, class-balanced or within one class (|cos| >= 0.3
                           in the noise-whitened, cross-validated metric of domain_direction.py,
                           and above the permuted-label null), and the decision coordinate
                           sorts emails by domain (AUROC >= 0.75)
  late_overwrite           out-of-domain label evidence is decodable by the logit lens at an
                           intermediate layer and lost by the output
  shortcut_attention       a suspected shortcut string (planted, per the manifest, or found
                           by the shortcuts detector) draws the decision position's attention
                           far beyond its token share and beyond what the same positions get
                           holding neutral tokens (heads are ranked by that excess), fine-tuning
                           made a head attend to it (the head that gained most now passes the
                           same bar), and the model's margin depends on it (minimal pairs,
                           patching); high when all three hold, the rise measured on emails
                           not used to pick the head (untested: at most medium)
  shortcut_out_of_view     (info) a suspected shortcut string lies past the model's truncation in
                           every email that carries it: the model cannot key on it
  decision_layers          (info) where patching shows the decision travelling: the last layer
                           at which the edited positions still carry it, and the first at
                           which the answer position does

Options: [detectors.internals] in the spec (see internals.analyse.InternalsOptions).
Writes diagnostics/internals/section.json (one section per cell: probe curves, domain
direction, logit lens, attention bars, patching heatmap, similarity) and timings.json.
"""

from __future__ import annotations

import time

import numpy as np
from markupsafe import escape

from gapscope import progress
from gapscope.eval.metrics import auroc_se
from gapscope.findings import Finding, possessive, register_detector
from gapscope.internals import plots
from gapscope.internals.analyse import InternalsOptions, analyse_cell
from gapscope.internals.domain_direction import DIRECTIONS
from gapscope.internals.patching import site_name
from gapscope.study import artifacts

NEURAL = ("causal-lm", "encoder")

# thresholds (named so the report's numbers can be traced here)
PROBE_OK = 0.75
READOUT_GAP = 0.10
MODEL_FAILS = 0.75
MODEL_SEVERE = 0.65  # a representation failure's AUROC for high severity (with the interval below MODEL_FAILS)
ALIGN_COS = 0.3
ALIGN_DOMAIN_AUROC = 0.75
OVERWRITE_DROP = 0.15
ATTN_ENRICH = 3.0
ATTN_OVER_CONTROL = 0.05
ATTN_RISE = 0.05


def suspected_strings(study) -> list[dict]:
    """Strings to test for shortcut attention: the manifest's planted shortcut, then the
    high/medium `shortcut` findings of the shortcuts detector (if it has run)."""
    out: list[dict] = []
    m = study.manifest or {}
    sc = m.get("shortcut") if isinstance(m, dict) else None
    if isinstance(sc, dict) and sc.get("string"):
        out.append({"string": str(sc["string"]), "domain": sc.get("domain"), "source": "manifest"})
    p = study.run_dir / "diagnostics" / "shortcuts" / "findings.json"
    if p.exists():
        try:
            saved = artifacts.read_json(p)
        except ValueError:
            saved = {}
        for f in saved.get("findings", []) if isinstance(saved, dict) else []:
            if f.get("kind") != "shortcut" or f.get("severity") not in ("high", "medium"):
                continue
            feat = (f.get("evidence") or {}).get("feature")
            if feat and not any(feat.lower() in s["string"].lower() for s in out):
                out.append({"string": str(feat), "domain": (f.get("domains") or [None])[0],
                            "source": "shortcuts detector"})
    return out


def _cells(study, o: InternalsOptions):
    """The cells analysed: specialists first (by default), then the N with the largest gap of each
    model among them. Ranked over every cell first, a model whose largest gap was its generalist or
    a leave-one-out cell had no cell analysed at cells_per_model = 1."""
    cells = [c for c in study.cells if c.kind in NEURAL and (o.cells != "specialist" or c.is_specialist)]
    return study.focus_cells(cells, per_model=o.cells_per_model)


@register_detector("internals", after=("shortcuts",))  # reads its findings: suspected strings
def run(study) -> list[Finding]:
    o = InternalsOptions.from_dict((study.options or {}).get("internals"))
    cells = _cells(study, o)
    if not cells:
        return []
    strings = suspected_strings(study)
    findings: list[Finding] = []
    sections, timings = [], {}
    for cell in cells:
        with progress.step(f"internals: {cell.name}"):
            t0 = time.perf_counter()
            res = analyse_cell(study, cell, o, strings)
            res["timings"]["total"] = round(time.perf_counter() - t0, 2)
        artifacts.write_json(study.artifact_dir("internals") / f"{cell.name}.json", res)
        timings[cell.name] = res["timings"]
        findings += cell_findings(res)
        sections.append(section(res))
    artifacts.write_json(study.artifact_dir("internals") / "timings.json", timings)
    artifacts.write_json(study.artifact_dir("internals") / "section.json", sections)
    return merge_out_of_view(findings)


def merge_out_of_view(findings: list[Finding]) -> list[Finding]:
    """One shortcut_out_of_view finding per model and string, naming its cells (the window is the
    model's, so every cell of it says the same thing)."""
    groups: dict[tuple, list[Finding]] = {}
    for f in findings:
        if f.kind == "shortcut_out_of_view":
            groups.setdefault((tuple(f.models), f.evidence["string"]), []).append(f)
    out = []
    for f in findings:
        if f.kind != "shortcut_out_of_view":
            out.append(f)
            continue
        group = groups.pop((tuple(f.models), f.evidence["string"]), None)
        if group is None:
            continue  # merged into the first of its group
        if len(group) == 1:
            out.append(f)
            continue
        ev = f.evidence
        cells = {g.evidence["cell"]: g.evidence["carriers"] for g in group}
        window = _window(ev.get("max_length"))
        model = ", ".join(f.models)
        out.append(Finding(
            kind="shortcut_out_of_view", severity="info",
            title=f"{model} never sees '{ev['string']}' in any of its {len(cells)} analysed cells: it lies "
                  f"beyond {window} in every email that carries it",
            summary=(f"'{ev['string']}' (source: {ev.get('source')}) occurs in the emails analysed for "
                     f"{len(cells)} cells of {model} ({', '.join(f'{c}: {n}' for c, n in cells.items())}), always "
                     f"after the last token the model reads, so no cell of it can key on the string and their "
                     f"errors out of domain have other causes. A longer max_length would let the model see it "
                     f"(and possibly learn it as a shortcut)."),
            evidence={"cells": cells, "string": ev["string"], "max_length": ev.get("max_length"),
                      "source": ev.get("source")},
            models=list(f.models), domains=list(dict.fromkeys(d for g in group for d in g.domains)), score=0.0))
    return out


# -- findings ---------------------------------------------------------------------------


def _who(res: dict) -> str:
    return f"{res['model']} ({res['paradigm']})"


def _cached_to_name(idx: int) -> str:
    return "embed" if idx == 0 else f"resid_post.{idx - 1}"


def cell_findings(res: dict) -> list[Finding]:
    out: list[Finding] = []
    out += probe_findings(res)
    out += direction_findings(res)
    out += lens_findings(res)
    out += attention_findings(res)
    out += patching_findings(res)
    return out


def probe_findings(res: dict) -> list[Finding]:
    out = []
    model_au = res.get("model_auroc", {})
    for pc in res.get("probes", []):
        a = pc["train_domain"]
        sel = pc["selected"]
        layer = pc["layers"][sel]
        for b, curve in pc["transfer"].items():
            if b in res["train_domains"] or pc["n_test"].get(b, 0) < 10:
                continue
            m, p = model_au.get(b), curve[sel]
            if m is None or p is None:
                continue
            best = max((v for v in curve if v is not None), default=None)
            oracle = pc["oracle"].get(b) or []
            oracle_best = max((v for v in oracle if v is not None), default=None)
            ev = {"cell": res["cell"], "train_domain": a, "test_domain": b, "model_auroc": m,
                  "probe_auroc": p, "probe_layer": _cached_to_name(layer), "probe_auroc_best_layer": best,
                  "oracle_auroc_best": oracle_best, "in_domain_probe_auroc": pc["transfer"][a][sel]
                  if a in pc["transfer"] else None, "n_train": pc["n_train"], "n_test": pc["n_test"].get(b),
                  "matrix_auroc": res.get("matrix_auroc", {}).get(b)}
            n_b, full = pc["n_test"].get(b), res.get("matrix_auroc", {}).get(b)
            # probe and model are compared on the same sample; the matrix read every test email
            on_sample = (f"on the same {n_b} held-out {b} emails" +
                         (f"; the matrix, on all of {possessive(b)} test emails, has the model at {full:.2f}"
                          if full is not None else ""))
            counts = _class_counts(pc, b)
            ci_b = (res.get("matrix_auroc_ci") or {}).get(b)
            # "inverted" where the whole domain's interval is below 0.5 (or, without one, the sample's):
            # the model at 0.49 on 30 emails (matrix 0.43, 95% CI 0.28-0.60) read "a systematic error"
            below = m < 0.5 and (ci_b[1] < 0.5 if full is not None and ci_b and ci_b[1] is not None
                                 else _below_chance(m, counts))
            inverted = (f" Below 0.5 the model's ranking is inverted: it scores {possessive(b)} legitimate mail above "
                        f"its phishing, a systematic error rather than noise." if below else "")
            lower = (pc.get("gap_lower") or {}).get(b)
            ev.update({"probe_minus_model_lower": lower, "alpha": pc.get("alpha"),
                       "n_test_by_class": (pc.get("n_test_by_class") or {}).get(b)})
            if p >= PROBE_OK and p - m >= READOUT_GAP and _readout_significant(pc, b):
                gap = p - m
                # high only where every test email of b has the model failing, as representation failures
                # are read (the sample's own AUROC set it before)
                fails = m < MODEL_FAILS and (full is None or full < MODEL_FAILS)
                sev = "high" if gap >= 0.2 and fails else "medium" if gap >= 0.15 else "low"
                last = curve[-1]
                ev["probe_auroc_last_layer"] = last
                bound = ("" if lower is None else
                         f" The difference's lower {100 * (1 - pc['alpha']):.1f}% bound is {lower:+.2f} (paired "
                         f"bootstrap over those emails, Bonferroni over the cell's {_n_compared(res)} comparisons).")
                at_readout = sel == len(curve) - 1 or (last is not None and last >= PROBE_OK and last - m >= READOUT_GAP)
                if at_readout:
                    why = (f"The label information transfers to {b}; the model's read-out (the label tokens / head) "
                           f"is tuned to {a}-specific directions. Re-fitting only the read-out, or regularising it, "
                           f"should close much of the gap.")
                else:  # present mid-network, gone by the last layer: not the read-out's fault alone
                    why = (f"At the last analysed layer the same probe reaches only "
                           f"{'n/a' if last is None else f'{last:.2f}'}: the label information that transfers to {b} "
                           f"at {_cached_to_name(layer)} is lost by the layers above it, so re-fitting the read-out "
                           f"alone would not recover it.")
                out.append(Finding(
                    kind="readout_failure", severity=sev,
                    # present mid-network and gone at the top: the title said "the read-out does not" beside
                    # a summary saying re-fitting the read-out would not recover it
                    title=(f"{_who(res)}: the representation separates {b} but the read-out does not "
                           f"(probe AUROC {p:.2f} vs model {m:.2f})" if at_readout else
                           f"{_who(res)}: the label signal that transfers to {b} at {_cached_to_name(layer)} "
                           f"{'is lost' if last is None or last < PROBE_OK else 'weakens'} by the last layer (probe "
                           f"AUROC {p:.2f} there, {'n/a' if last is None else f'{last:.2f}'} at the last, model "
                           f"{m:.2f})"),
                    summary=(f"A linear probe trained on {possessive(a)} training rows at {_cached_to_name(layer)} "
                             f"(layer chosen on {a} alone) reaches AUROC {p:.2f} on {possessive(b)} held-out emails, "
                             f"while the model's own margin reaches {m:.2f} ({on_sample}).{inverted}{bound} " + why),
                    evidence=ev, models=[res["model"]], domains=[a, b], score=gap))
            elif (m < MODEL_FAILS and (best is None or best <= m + 0.05)
                  and (full is None or full < MODEL_FAILS)  # all of b's test emails confirm the failure
                  and min(counts) >= MIN_PER_CLASS):  # one legitimate email among 29 phishing made a high
                # "in the representation, along other directions" only where a probe within b beats the
                # model by the read-out bar: 0.79 against the model's 0.73 said so of a weak signal
                present = oracle_best is not None and oracle_best >= PROBE_OK and oracle_best - m >= READOUT_GAP
                weak = oracle_best is not None and oracle_best >= PROBE_OK and not present
                # high when every test email of b shows a severe failure (the matrix's AUROC below
                # MODEL_SEVERE) beyond noise (its interval below MODEL_FAILS); the bar had been read on
                # the 30-email sample alone, which made 0.649 high and 0.658 medium
                ci = (res.get("matrix_auroc_ci") or {}).get(b)
                ev["matrix_auroc_ci"] = ci
                ci = ci if full is not None and ci and None not in ci[:2] else None  # usable beside `full`
                sev = "high" if ci and full < MODEL_SEVERE and ci[1] < MODEL_FAILS else "medium"
                detail = (f"Within {b} itself a probe does reach {oracle_best:.2f} (cross-validated), so "
                          f"{possessive(b)} label is in the representation but along directions neither a probe "
                          f"trained on {a} nor the model's read-out uses." if present else
                          f"Within {b} itself a probe reaches {oracle_best:.2f} (cross-validated), less than "
                          f"{READOUT_GAP:.2f} above the model's {m:.2f}: {possessive(b)} label is only weakly in the "
                          f"representation, whichever direction reads it." if weak else
                          f"No probe was trained within {b} (not measured), so whether {possessive(b)} label is in "
                          f"the representation along other directions is not known." if oracle_best is None else
                          f"Even a probe trained within {b} reaches only {oracle_best:.2f}: the representation "
                          f"barely encodes {possessive(b)} label distinction.")
                # every layer ranks b's classes the wrong way round, beyond the sample's noise: a signal,
                # inverted. The best layer at 0.48 on 30 emails was called reversed: that is chance
                reversed_ = best is not None and _below_chance(best, counts)
                if reversed_:
                    detail = (f"Below 0.5 at every analysed layer, {possessive(a)} label direction ranks {possessive(b)} classes the "
                              f"wrong way round (flipped, the best layer would read {1 - best:.2f}; its 95% upper "
                              f"bound {_upper(best, counts):.2f}): what marks phishing in {a} marks legitimate mail "
                              f"in {b}. " + detail)
                if reversed_:
                    title = f"the label signal from {a} is reversed on {b} at every layer (best probe {best:.2f}"
                elif best is not None:
                    # the model's margin is itself read off the last layer: probes at or below it show no
                    # direction that transfers better than the model's own, not that no layer carries a
                    # signal (a review: "no layer carries a label signal that transfers" beside 0.74)
                    title = (f"no layer carries a label signal from {a} that transfers to {b} "
                             + ("better than" if best <= m else "more than 0.05 above")
                             + f" the model's own read-out (best probe {best:.2f}")
                else:
                    title = f"no layer carries a label signal that transfers from {a} to {b} (best probe n/a"
                out.append(Finding(
                    kind="representation_failure", severity=sev,
                    title=f"{_who(res)}: {title}, model {m:.2f})",
                    summary=(f"The model fails on {b} (AUROC {m:.2f}, {on_sample}"
                             + (f"; 95% CI {ci[0]:.2f}-{ci[1]:.2f}" if ci else "")
                             + f") and probes trained on {a} "
                             f"at every analysed layer do no better than 0.05 above it (best "
                             f"{'n/a' if best is None else f'{best:.2f}'})."
                             f"{inverted} " + detail),
                    evidence=ev, models=[res["model"]], domains=[a, b], score=MODEL_FAILS - m))
    return out


MIN_PER_CLASS = 5  # each class of a domain's sample, for a probe-versus-model comparison


def _class_counts(pc: dict, b: str) -> tuple[int, int]:
    """(legitimate, phishing) emails of b's sample; an even split of n_test where results predate the counts."""
    counts = (pc.get("n_test_by_class") or {}).get(b)
    if counts:
        return int(counts[0]), int(counts[1])
    n = int(pc["n_test"].get(b, 0))
    return n - n // 2, n // 2


def _upper(a: float, counts: tuple[int, int]) -> float:
    n_neg, n_pos = counts
    return a + 1.96 * auroc_se(a, n_pos, n_neg) if n_neg and n_pos else 1.0


def _below_chance(a: float, counts: tuple[int, int]) -> bool:
    """The AUROC's 95% upper bound (Hanley-McNeil, on the sample's class counts) is below 0.5."""
    return _upper(a, counts) < 0.5


def _n_compared(res: dict) -> int:
    return sum(1 for pc in res.get("probes", []) for b in pc["transfer"] if b not in res["train_domains"])


def _readout_significant(pc: dict, b: str) -> bool:
    """The probe beats the model beyond the noise of the sample: the paired bound above zero and
    enough emails of each class. Results from before the bound was measured keep the point rule."""
    if "gap_lower" not in pc:
        return True
    counts = (pc.get("n_test_by_class") or {}).get(b)
    lower = pc["gap_lower"].get(b)
    return lower is not None and lower > 0 and (counts is None or min(counts) >= MIN_PER_CLASS)


# What the by_layer columns of a domain_aligned_decision finding mean (internals/domain_direction.py)
DIRECTION_COLUMNS = {
    "cos, cos_phishing, cos_legitimate": "cosine of the label direction with the target-vs-rest domain "
                                         "direction (class-balanced, phishing only, legitimate only)",
    "cos_max / aligned_with": "the largest of the three in size, and which one it is",
    "null95": "95th percentile of that largest |cos| when the training labels are permuted: what a "
              "direction carrying no label reads",
    "domain_auroc": "how well the projection on the label direction tells the target domain from the "
                    "others within each class, signed (above 0.5: the target sits higher)",
    "domain_separability": "the same, unsigned per class (max(AUROC, 1 - AUROC)): the number the summary quotes",
    "label_auroc": "how well the projection on the label direction ranks the classes of the target "
                   "domain's held-out emails",
    "decodability / chance": "cross-validated balanced accuracy of predicting the domain from the layer "
                             "(linear), and 1 / number of domains; measured at the middle and last layers "
                             "only (a classifier per layer), so '—' elsewhere",
}


def direction_findings(res: dict) -> list[Finding]:
    out = []
    for target, per_layer in (res.get("direction") or {}).items():
        if not per_layer:
            continue
        last = per_layer[-1]
        # results written before per-class directions: the balanced cosine is the only one
        cos = last.get("cos_max", last.get("cos"))
        which = last.get("aligned_with") or "balanced"
        null, dauc = last.get("null95"), last.get("domain_separability")
        if cos is None or dauc is None:
            continue
        balanced = last.get("cos")
        if which != "balanced" and balanced is not None and abs(balanced) >= ALIGN_COS and abs(balanced) > (null or 0):
            cos, which = balanced, "balanced"  # the direction itself is the domain's: what the finding is about
        if abs(cos) >= ALIGN_COS and abs(cos) > (null or 0) and dauc >= ALIGN_DOMAIN_AUROC:
            sev = "high" if abs(cos) >= 0.5 and dauc >= 0.85 else "medium"
            mirror = ""
            if which != "balanced":
                # One class's contrast holds the label gap too: where the other domains separate their classes
                # less along this direction (any label signal that transfers weakly), their phishing sits lower
                # and their legitimate mail higher, phishing reading +g and legitimate -g with no domain
                # direction at all (a review: +0.76 beside a balanced +0.08; every demo cell read so). Only the
                # balanced cosine shows the direction itself is a domain's, so a one-class reading is low, and
                # none where it adds no errors.
                harm = ("missed phishing" if which == "phishing" and cos > 0 else
                        "false alarms" if which == "legitimate" and cos < 0 else "no added errors")
                if harm == "no added errors":
                    continue
                sev = "low"
                other_class = last.get("cos_legitimate" if which == "phishing" else "cos_phishing")
                mirror = (f" Only the {which} class reads beyond the bar; the class-balanced cosine is "
                          f"{'n/a' if balanced is None else format(balanced, '+.2f')}"
                          + (f" and the other class {other_class:+.2f}" if other_class is not None else "")
                          + ". A label signal that transfers weakly to the other domains gives this pattern by itself "
                          "(their classes sit closer together along the label direction), so it shows a "
                          "class-specific contrast, not that the direction is a domain's.")
            if which == "balanced":
                what = f"the direction from the other domains' class-balanced centroid to {target}'s"
                side = ("other domains sit on the legitimate side: their phishing is missed" if cos > 0 else
                        "other domains sit on the phishing side: their legitimate mail raises false alarms")
            else:
                what = f"the direction from the other domains' {which} emails to {possessive(target)} {which} emails"
                side = (f"other domains' {which} mail sits toward the "
                        f"{'legitimate' if cos > 0 else 'phishing'} side of {possessive(target)} ({harm})")
            three = {k: last.get("cos" if k == "balanced" else f"cos_{k}") for k in DIRECTIONS}
            others = ", ".join(f"{k} {v:+.2f}" for k, v in three.items() if v is not None)
            out.append(Finding(
                kind="domain_aligned_decision", severity=sev,
                title=(f"{_who(res)}: its decision direction is a {target}-vs-rest domain direction "
                       f"(cos {cos:+.2f}, {which})" if which == "balanced" else
                       f"{_who(res)}: its decision direction separates {possessive(target)} {which} mail from the "
                       f"other domains' (cos {cos:+.2f}, {which} only)"),
                summary=(f"At the read-out layer ({_cached_to_name(last['layer'])}) the label direction (difference "
                         f"of class means on the training rows) has cosine {cos:+.2f} with {what}, in the "
                         f"noise-whitened metric with cross-validated lengths (all three: "
                         f"{others}; 95th percentile with permuted training labels: "
                         f"{null if null is None else round(null, 2)}). Projected on the label direction, emails "
                         f"of one class are told apart by domain with AUROC {dauc:.2f}; {side}.{mirror}"),
                evidence={"cell": res["cell"], "target_domain": target, "aligned_with": which,
                          "by_layer": [{**p, "layer": _cached_to_name(p["layer"])} for p in per_layer],
                          "columns": DIRECTION_COLUMNS},
                models=[res["model"]], domains=[target], score=abs(cos) * dauc))
    return out


def lens_findings(res: dict) -> list[Finding]:
    ow = (res.get("lens") or {}).get("overwrite")
    if not ow or ow["drop"] < OVERWRITE_DROP or ow["best"] < PROBE_OK:
        return []
    picked = ow.get("layers_picked") or [ow["layer"]]
    # the cross-fitted AUROC is read where each half of the emails picked the layer
    layer = " / ".join(dict.fromkeys(_cached_to_name(l) for l in picked))
    how = (" (Cross-fitted: the layer picked on half of the emails and read on the other half, both ways round, so "
           "the peak is not the largest of many noisy layers.)" if ow.get("crossfit") else
           " (Read on the emails that picked the layer: too few of a class to cross-fit, so the peak may be "
           "the largest of many noisy layers.)")
    return [Finding(
        kind="late_overwrite",
        severity=("medium" if ow["drop"] >= 0.2 else "low") if ow.get("crossfit", True) else "low",
        title=f"{_who(res)}: out-of-domain label evidence at {layer} (lens AUROC {ow['best']:.2f}) is lost "
              f"by the output ({ow['final']:.2f})",
        summary=(f"Reading the label tokens off each layer's residual stream (logit lens), out-of-domain emails "
                 f"are ranked with AUROC {ow['best']:.2f} at {layer} but only {ow['final']:.2f} at the output: "
                 f"the layers above overwrite evidence the model had." + how),
        evidence={"cell": res["cell"], **ow, "layer": _cached_to_name(ow["layer"]),
                  "layers_picked": [_cached_to_name(l) for l in picked]}, models=[res["model"]],
        domains=[d for d in res.get("n_test", {}) if d not in res["train_domains"]], score=ow["drop"])]


def _causal(res: dict, string: str) -> dict | None:
    for e in (res.get("patching") or {}).get("shortcut", []):
        if e["string"] == string:
            rest = []
            for p in e["pairs"]:
                if "edited" in p["groups"]:
                    j = p["groups"].index("edited")
                    col = [row[j] for row in p["restored"]]
                    rest.append(col)
            # layer names as everywhere else in the evidence (embed, resid_post.N)
            return {"mean_gap": e["mean_gap"], "flips": e["flips"], "n": e["n"], "restored_edited": rest,
                    "layers": [site_name(l) for l in res["patching"]["layers"]]}
    return None


def attention_findings(res: dict) -> list[Finding]:
    out = []
    for e in (res.get("attention") or {}).get("strings", []):
        if e.get("n", 0) == 0 and e.get("carriers"):
            if not e.get("unlocated"):  # not located (no offsets) is not out of view
                out.append(_out_of_view(res, e))
            continue
        if e.get("n", 0) < 3 or not e.get("top_heads"):
            continue
        frac = e.get("frac") or 0.0
        head = e.get("max_gain_head") or dict(e["top_heads"][0])
        top = e["top_heads"][0]
        share, ctrl = top["tuned"], top["control"]
        enrich = share / frac if frac > 0 else 0.0
        if "heldout_tuned" in head:  # head chosen on half the emails, measured on the other half
            rise = head["heldout_tuned"] - head["heldout_base"]
            gained_share, gained_ctrl = head["heldout_tuned"], head["heldout_control"]
        else:
            rise = (head["tuned"] - head["base"]) if "base" in head else None
            gained_share, gained_ctrl = head.get("tuned", 0.0), head.get("control", 0.0)
        causal = _causal(res, e["string"])
        gap = abs(causal["mean_gap"]) if causal else 0.0
        # restoration by the string's own positions at the middle of the network
        mid = None
        if causal and causal["restored_edited"]:
            L = len(causal["layers"])
            cols = np.asarray([[np.nan if v is None else v for v in c] for c in causal["restored_edited"]])
            mid = float(np.nanmean(cols[:, L // 2])) if cols.size else None
        attends = enrich >= ATTN_ENRICH and share - ctrl >= ATTN_OVER_CONTROL
        # Fine-tuning must have made a head attend to the string: the head that gained most
        # must now attend by the same bar, not just move up a little below it.
        gained_attends = (frac > 0 and gained_share / frac >= ATTN_ENRICH
                          and gained_share - gained_ctrl >= ATTN_OVER_CONTROL)
        # the rise counts only when measured on emails not used to pick the head (no base model, or
        # under 4 carriers, leaves it untested: then the finding is at most medium)
        rise_tested = rise is not None and "heldout_tuned" in head
        rose = rise_tested and rise >= ATTN_RISE and gained_attends
        scale = res.get("margin_scale") or 1.0  # median |margin - threshold| of the held-out emails
        # the margin must move by a quarter of a typical distance to the threshold; flips alone
        # are not enough (a weak model flips near-threshold emails on any edit)
        depends = gap >= max(0.5, 0.25 * scale)
        score = sum([attends, rose, depends])
        if attends and rose and depends:
            sev = "high"
        elif (attends and depends) or (attends and rose):
            sev = "medium"
        elif attends or depends:
            sev = "low"
        else:
            continue
        s = e["string"]
        # the title claims only the tests that passed
        if attends:
            title = f"{_who(res)} attends to '{s}'" + (" and its decision depends on it" if depends else "")
        else:
            title = f"{_who(res)}: its decision depends on '{s}' (its attention to it is within the bar)"
        # a string of a domain the cell never trained on cannot be a shortcut it learned: what it
        # shows is a reaction to odd text, worth a look but not a learned reliance
        elsewhere = e.get("domain") and res.get("train_domains") and e["domain"] not in res["train_domains"]
        if elsewhere:
            sev = "low"
            title += f" (a string of {e['domain']}, which it did not train on)"
        where = ("From the answer position" if res.get("site", "answer") == "answer" else
                 "Averaged over the positions the decision is pooled from (a mean-pooled encoder)")
        summary = (f"{where}, head {top['layer']}.{top['head']} puts {share:.2f} of its attention "
                   f"on the email onto '{s}' ({enrich:.1f}x its {frac:.2f} token share; {ctrl:.2f} when the same "
                   f"positions hold neutral tokens)")
        if rise_tested:
            summary += (f"; head {head['layer']}.{head['head']} rose from {head['base']:.2f} in the base model to "
                        f"{head['tuned']:.2f} after fine-tuning (rise {rise:+.2f} on emails not used to pick it)")
        elif rise is not None:
            summary += (f"; what fine-tuning changed is not measured: {head.get('n', 0)} emails carry the string, "
                        f"too few to pick a head on some and measure its rise on others")
        else:
            summary += "; what fine-tuning changed is not measured: no base model was compared"
        if causal:
            # mean_gap is margin(with the string) - margin(neutral tokens); the edit moves it by minus that
            move = -causal["mean_gap"]
            toward = " (toward phishing)" if move > 0 else " (toward legitimate)" if move < 0 else ""
            summary += (f". Replacing the string with as many neutral tokens moves the margin by {move:+.2f}{toward} "
                        f"on average and flips {causal['flips']} of {causal['n']} decisions")
            if mid is not None:
                summary += (f"; patching its positions back restores {mid:.2f} of the margin at mid-depth"
                            + (" (over 1: the patched positions alone push the margin past where the string left it)"
                               if mid > 1.05 else ""))
        summary += f" (source: {e.get('source')})."
        out.append(Finding(
            kind="shortcut_attention", severity=sev, title=title, summary=summary,
            evidence={"cell": res["cell"], "string": s, "token_share": frac, "top_head": top, "max_gain_head": head,
                      "enrichment": enrich, "rise": rise, "rise_tested": rise_tested, "causal": causal, "mid_restoration": mid,
                      "source": e.get("source")},
            models=[res["model"]], domains=[e["domain"]] if e.get("domain") else [],
            example_ids=e.get("example_ids", [])[:10], score=score + min(enrich, 10) / 10))
    return out


def _window(max_length: int | None) -> str:
    return f"its {max_length}-token window" if max_length else "the part of the email it reads"


def _out_of_view(res: dict, e: dict) -> Finding:
    """A suspected string that sits past the model's truncation in every email carrying it: the
    model cannot key on it, whatever it does elsewhere (a fact about the window, not the model)."""
    s, n = e["string"], e["carriers"]
    window = _window(e.get("max_length"))
    return Finding(
        kind="shortcut_out_of_view", severity="info",
        title=f"{_who(res)} never sees '{s}': it lies beyond {window} in all {n} emails that carry it",
        summary=(f"'{s}' (source: {e.get('source')}) occurs in {n} of the emails analysed for this cell, always "
                 f"after the last token the model reads, so the model cannot key on it and its errors out of "
                 f"domain have other causes. A longer max_length would let it see the string (and possibly "
                 f"learn it as a shortcut)."),
        evidence={"cell": res["cell"], "string": s, "carriers": n, "max_length": e.get("max_length"),
                  "source": e.get("source")},
        models=[res["model"]], domains=[e["domain"]] if e.get("domain") else [], score=0.0)


def _median_curve(pairs: list[dict], group: str) -> list[float | None] | None:
    cols = []
    for p in pairs:
        if group in p["groups"]:
            j = p["groups"].index(group)
            cols.append([np.nan if row[j] is None else row[j] for row in p["restored"]])
    if not cols:
        return None
    med = np.nanmedian(np.asarray(cols, dtype=float), axis=0)
    return [None if not np.isfinite(v) else float(v) for v in med]


def decision_summary(res: dict) -> dict | None:
    pt = res.get("patching") or {}
    layers = pt.get("layers") or []
    pairs = [p for e in pt.get("shortcut", []) for p in e["pairs"]] + list(pt.get("errors", []))
    if not pairs:
        return None
    answer = _median_curve(pairs, "answer")
    group = "answer"
    if answer is None:
        answer, group = _median_curve(pairs, "cls"), "cls"
    edited = _median_curve(pairs, "edited")
    # the answer position carries the decision from the first sampled layer where it does and keeps
    # doing so (a dip back below 0.5 later means it had not moved yet); the layer sampled just
    # before bounds where the move happened
    a = list(answer or [])
    first = next((i for i in range(len(a)) if all(v is not None and v >= 0.5 for v in a[i:])), None)
    last = None
    for i, v in enumerate(edited or []):
        if v is not None and v >= 0.5:
            last = i
    return {"pairs": len(pairs), "answer_curve": answer, "edited_curve": edited, "layers": [site_name(l) for l in layers],
            "first_answer_layer": None if first is None else site_name(layers[first]),
            "answer_layer_before": None if not first else site_name(layers[first - 1]),
            "last_edited_layer": None if last is None else site_name(layers[last]),
            "edited_before_answer": last is not None and first is not None and last < first,
            "answer_group": group}


def patching_findings(res: dict) -> list[Finding]:
    d = decision_summary(res)
    if d is None or (d["first_answer_layer"] is None and d["last_edited_layer"] is None):
        return []
    parts = []
    first, last, before = d["first_answer_layer"], d["last_edited_layer"], d.get("answer_layer_before")
    if last:
        parts.append(f"the edited tokens' own positions carry the decision up to {last}")
    # a causal LM reads its decision at the answer position; a mean-pooled encoder reads every
    # position, and [CLS] is only one of them
    cls = d.get("answer_group") == "cls"
    if first:
        parts.append(f"the {'[CLS]' if cls else 'answer'} position carries it from {first} on"
                     + (f", not yet at {before}" if before else "")
                     + (" (one of the positions the encoder's head averages)" if cls else ""))
        # "moves ... between A and B" read as a claim about the edited positions too, which may let
        # go far earlier (up to resid_post.3 against between 10 and 14): the title says what it measured
        where = f"from {first} on (not yet at {before}; sampled layers)" if before else f"from {first} on"
        title = f"{_who(res)}: the {'[CLS]' if cls else 'read-out'} position carries the decision {where}"
    else:  # e.g. a mean-pooled encoder: the decision is read from every position at once
        parts.append("no single read-out position carries it at any layer (restoration below 0.5)")
        title = f"{_who(res)}: the edited tokens' own positions carry the decision up to {last}"
    tail = (" The layers in between move the evidence to where it is read." if d.get("edited_before_answer") else
            " The two overlap: both carry it at the same sampled layers." if first and last else "")
    return [Finding(
        kind="decision_layers", severity="info", title=title,
        summary=(f"Activation patching over {d['pairs']} pair(s) (median normalised restoration): "
                 + "; ".join(parts) + "." + tail),
        evidence={"cell": res["cell"], **d}, models=[res["model"]], score=0.0)]


# -- the report section ---------------------------------------------------------------------


def _layer_axis(res: dict) -> list[int]:
    return [l - 1 for l in res["layers"]]  # cached index -> layer number (embed = -1)


def section(res: dict) -> dict:
    parts: list[str] = []
    x = _layer_axis(res)
    esc = escape
    parts.append(f"<p class=\"muted small\">{esc(res['kind'])} · {res['n_layers']} layers · decision read at the "
                 f"{esc('answer token' if res['site'] == 'answer' else 'mean-pooled stream')} · layer -1 = "
                 f"embeddings · {res['n_rows']} emails cached; analysis after the cache took "
                 f"{res['timings'].get('analysis_after_cache', 0):.1f}s</p>")
    for pc in res.get("probes", []):
        series = []
        for k, (d, vals) in enumerate(pc["transfer"].items()):
            series.append({"label": f"probe {pc['train_domain']} → {d}", "values": vals,
                           "colour": plots.PALETTE[k % len(plots.PALETTE)]})
        hl = [(v, f"model on {d}: {v:.2f}") for d, v in res.get("model_auroc", {}).items()
              if v is not None and d not in res["train_domains"]]
        # the axis reaches 0: a probe below 0.5 is an inverted signal, not noise to clip away
        parts.append(str(plots.line_chart(x, series, title=f"Probe AUROC per layer (trained on {pc['train_domain']})",
                                          y_label="AUROC", y_range=(0.0, 1.0), hlines=hl)))
        if any(v is not None for vals in pc["oracle"].values() for v in vals):
            series = [{"label": f"within {d} (cross-validated)", "values": vals, "dash": True,
                       "colour": plots.PALETTE[k % len(plots.PALETTE)]}
                      for k, (d, vals) in enumerate(pc["oracle"].items())]
            parts.append(str(plots.line_chart(x, series, title="Is the label decodable within each domain?",
                                              y_label="AUROC", y_range=(0.3, 1.0))))
    for target, per_layer in (res.get("direction") or {}).items():
        # short legend entries (the shared part is the title): long ones were cut where they differ
        series = [{"label": "cos, class-balanced", "values": [p.get("cos") for p in per_layer]}]
        series += [{"label": f"cos, {c} only", "values": [p.get(f"cos_{c}") for p in per_layer], "dash": True}
                   for c in ("phishing", "legitimate") if any(p.get(f"cos_{c}") is not None for p in per_layer)]
        series += [{"label": "null (95%, permuted labels)", "values": [p.get("null95") for p in per_layer],
                    "dash": True, "colour": "#9ca3af"},
                  {"label": "domain AUROC on the label dir", "values": [p.get("domain_separability") for p in per_layer]}]
        parts.append(str(plots.line_chart(x, series, title=f"cos(label direction, {target}-vs-rest domain direction)",
                                          y_range=(-1.0, 1.0))))
    lens = res.get("lens") or {}
    if lens.get("groups"):
        # from layer 0: read off the raw embeddings the lens gives margins an order of magnitude
        # larger (-60 against +-7), which flattens every layer that carries the story
        xs = list(range(0, res["n_layers"]))
        series = [{"label": f"{g} (n={v['n']})", "values": v["signed_margin"][1:], "dash": "wrong" in g,
                   "colour": "#0f766e" if g.startswith("in-") else "#ea580c"} for g, v in lens["groups"].items()]
        parts.append(str(plots.line_chart(xs, series, title="Logit lens: margin toward the true label per layer",
                                          y_label="signed margin", hlines=[(0.0, "")])))
    att = res.get("attention") or {}
    if att.get("unavailable"):
        parts.append(f'<p class="muted small">Attention not measured: {esc(att["unavailable"])}.</p>')
    prof = att.get("profile") or {}
    cats = [c for c in att.get("classes", []) if any(c in p for p in prof.values())]
    if cats:
        series = []
        for k, (g, p) in enumerate(prof.items()):
            series.append({"label": f"{g}: best head's share", "values": [
                (p[c]["top_heads"][0][2] if c in p and p[c]["top_heads"] else None) for c in cats],
                "colour": "#0f766e" if g == "in-domain" else "#ea580c"})
            series.append({"label": f"{g}: token share", "values": [p[c]["frac"] if c in p else None for c in cats],
                           "colour": "#99e1c8" if g == "in-domain" else "#fcd34d"})
        where = "Answer-position" if res.get("site", "answer") == "answer" else "Mean-pooled"
        parts.append(str(plots.grouped_bars(cats, series, title=f"{where} attention to token classes",
                                            y_label="share of attention on the email")))
    for e in att.get("strings", []):
        if not e.get("n") or "tuned_by_layer" not in e:
            continue
        series = [{"label": "fine-tuned (max over heads)", "values": e["tuned_by_layer_max"], "colour": "#dc2626"},
                  {"label": "neutral minimal pair (mean over heads)", "values": e["control_by_layer"],
                   "colour": "#9ca3af", "dash": True},
                  {"label": "fine-tuned (mean over heads)", "values": e["tuned_by_layer"], "colour": "#f97316"}]
        if "base_by_layer_max" in e:
            series.append({"label": "base model (max over heads)", "values": e["base_by_layer_max"],
                           "colour": "#2563eb", "dash": True})
        parts.append(str(plots.line_chart(list(range(res["n_layers"])), series,
                                          title=f"Attention to '{e['string']}' (n={e['n']})",
                                          y_label="share of attention on the email",
                                          hlines=[(e.get("frac") or 0.0, "token share")])))
    pt = res.get("patching") or {}
    for kind, title in (("shortcut", "shortcut"), ("errors", "mis-scored")):
        pairs = [p for e in pt.get("shortcut", []) for p in e["pairs"]] if kind == "shortcut" else pt.get(kind, [])
        if not pairs:
            continue
        groups = list(dict.fromkeys(g for p in pairs for g in p["groups"]))
        rows = ["embed" if l < 0 else f"layer {l}" for l in pt["layers"]]
        vals = []
        for i in range(len(pt["layers"])):
            row = []
            for g in groups:
                v = [p["restored"][i][p["groups"].index(g)] for p in pairs if g in p["groups"]]
                v = [u for u in v if u is not None]
                row.append(float(np.median(v)) if v else None)
            vals.append(row)
        labels = groups
        note = ""
        if kind == "errors" and "email" in groups:
            # two different emails share only some tokens: the "email" column patches those alone
            shared = [p["n_positions"].get("email", 0) for p in pairs if p.get("n_positions")]
            total = [p["email_tokens"] for p in pairs if p.get("email_tokens")]
            if shared and total:
                k, n = int(np.median(shared)), int(np.median(total))
                labels = [f"email {k}/{n}" if g == "email" else g for g in groups]
                note = (f'<p class="small muted" style="max-width:420px">Each pair: a mis-scored out-of-domain email '
                        f'patched from a correctly scored in-domain email of the same label. Only positions the two '
                        f'share can be patched: the prompt, the answer cue and the email tokens they have in common '
                        f'(the column "email {k}/{n}": a median of {k} of the email\'s {n} tokens), so a low email column says those few tokens carry little, not that the '
                        f'email\'s content does not matter.</p>')
        parts.append(note + str(plots.heatmap(rows, labels, vals,
                                              title=f"Restored margin, {title} ({len(pairs)} pairs)")))
    sim = res.get("similarity") or {}
    if sim.get("separation"):
        series = [{"label": f"separation {k.replace('|', ' vs ')}", "values": v}
                  for k, v in list(sim["separation"].items())[:6]]
        parts.append(str(plots.line_chart(x, series, title="Domain centroid distance / within-domain spread")))
    if sim.get("cka_base"):
        series = [{"label": f"{d}{' (trained on)' if d in res['train_domains'] else ''}", "values": v,
                   "dash": d not in res["train_domains"]} for d, v in sim["cka_base"].items()]
        parts.append(str(plots.line_chart(x, series, title="Linear CKA, fine-tuned vs base, per domain",
                                          y_range=(0.0, 1.05))))
    t = res.get("timings", {})
    head, charts = parts[0], parts[1:]
    foot = "<p class=\"muted small\">timings (s): " + str(esc(", ".join(f"{k} {v:.1f}" for k, v in t.items()))) + "</p>"
    body = head + '<div style="display:flex;flex-wrap:wrap;gap:14px 22px;align-items:flex-start">' + \
        "".join(f"<div>{c}</div>" for c in charts) + "</div>" + foot
    return {"id": f"internals-{res['cell']}", "title": f"Inside the model: {res['model']} · {res['paradigm']}",
            "html": body}
