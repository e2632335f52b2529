"""Generalization gaps read off the cross-domain matrix.

A cell whose F1 on some domain falls clearly below what it scores at home is a finding. "At home" is
the F1 its in-domain recall and false-positive rate give at that domain's phishing share (F1 moves
with the share alone); "clearly" means the loss's lower confidence bound, from Jeffreys draws of the
four rates and Bonferroni over the domains the cell is compared on, is above zero. A domain without
phishing has no F1: there a rise of the false-positive rate is the finding. The generalist cell is
compared with the specialists of the same model, with paired bootstrap intervals over the test rows
the cells share.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from gapscope.detectors.paradigms import paradigm_comparison
from gapscope.eval.held_out import held_out_scores
from gapscope.eval.gaps import MIN_LOSS, Compared, beyond_noise, compare_cell
from gapscope.eval.matrix import FLAGS_ALL, RANKS_WELL, flag_all_f1, ranking_text
from gapscope.eval.rates import Rates
from gapscope.findings import Finding, register_detector


BARS = (0.3, 0.15, MIN_LOSS)  # F1 drop at which a gap is high, medium, low
# A matrix without the counts behind its entries is read against the in-domain F1's bootstrap interval,
# which collapses on a handful of rows (one row: F1 1.00 [1.00, 1.00]): below this many in-domain rows a
# drop stays low there. (With the counts, the Jeffreys bounds carry the small sample themselves.)
MIN_IN_DOMAIN = 20


def _severity(drop: float) -> str | None:
    for bar, sev in zip(BARS, ("high", "medium", "low")):
        if drop >= bar:
            return sev
    return None


def f1_drop_text(drop: float) -> str:
    """Two decimals, or more where two would round the drop up to a severity bar it is below
    (0.2976 reads 0.298, not 0.30, and 0.2998 reads 0.2998, in a finding rated below the 0.3 bar)."""
    for digits in (2, 3, 4, 5):
        text = f"{drop:.{digits}f}"
        if not any(drop < bar <= float(text) for bar in BARS):
            return text
    return text


def _graded(drop: float) -> str:
    """Which number sets the severity: the loss itself, once its bound has shown it beyond noise (a
    reader took "at least 0.14" for the graded number and saw 0.14 high beside 0.16 medium)."""
    return (f"the severity follows the loss itself ({BARS[0]:.2f} F1 or more: high; {BARS[1]:.2f}: medium; "
            f"{BARS[2]:.2f}: low)")


def _bonferroni(k: int) -> str:
    return f", Bonferroni over the {k} domains compared" if k > 1 else ""


def _of(a: int, b: int, what: str) -> str:
    """'2 of 5 other domains' / '1 of 1 other domain'."""
    return f"{a} of {b} {what}" + ("s" if b != 1 else "")


def _who(model: str, paradigm: str) -> str:
    if paradigm.startswith("specialist:"):
        return f"{model} trained on {paradigm.split(':', 1)[1]}"
    if paradigm.startswith("lodo:"):
        return f"{model} trained without {paradigm.split(':', 1)[1]}"
    return f"{model} ({paradigm})"


FLAGS_NONE = 0.05  # a cell flagging this share of a domain's emails or less flags (nearly) nothing


def flagged_shares(scores: dict[tuple[str, str], dict[str, tuple]]) -> dict[tuple[str, str], dict[str, float]]:
    """Per cell (model, paradigm) and test domain: the share of held-out emails it flags as phishing
    (from held_out_scores)."""
    return {cell: {d: float(np.mean(m > thr)) for d, (_, _, m, thr) in per.items()} for cell, per in scores.items()}


def why_low(e: dict, flagged: float | None) -> str:
    """What an out-of-domain F1 is made of: a threshold that does not transfer, or flagging everything."""
    auroc = e.get("auroc")
    p = e["n_positive"] / e["n"] if e.get("n") and e.get("n_positive") is not None else None
    ranks = auroc is not None and auroc >= RANKS_WELL
    auc = f" (AUROC {auroc:.2f})" if auroc is not None else ""
    recalibrate = "the ranking transfers, the threshold does not (recalibrate it on that domain)"
    flags = f"it flags {flagged:.0%} of the emails as phishing" if flagged is not None else ""
    ranking = "" if ranks else ranking_text(e)
    if flagged is not None and flagged >= FLAGS_ALL and p is not None:
        everything = f"{flags}, so its F1 is about that of flagging everything ({flag_all_f1(p):.2f})"
        # ranked well, the threshold (not the model) fails
        if ranks:
            return f"{everything}, yet it ranks them well{auc}: {recalibrate}"
        return f"{everything}, not skill" + (f"; {ranking}" if e.get("auroc_ci") else auc)
    if flagged is not None and flagged <= FLAGS_NONE:  # an F1 near 0 is then first of all "flags nothing"
        if ranks:
            return f"{flags}, yet ranks them well{auc}: {recalibrate}"
        return f"{flags}, and {ranking}" if ranking else flags
    if ranks:
        return f"its ranking still holds there{auc}: much of the loss is the threshold"
    return ranking


@register_detector("generalization")
def run(study) -> list[Finding]:
    by_cell: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in study.matrix:
        by_cell[(e["model"], e["paradigm"])].append(e)
    scores = held_out_scores(study)
    shares = flagged_shares(scores)
    names = {(c.model, c.paradigm): c.name for c in study.cells}
    # the spec's seed whenever there is a spec: summary.json reads its losses with it
    spec = getattr(study, "spec", None)
    seed = int(spec.study.seed) if spec is not None and getattr(spec, "study", None) is not None else 0
    findings = []
    for (model, paradigm), entries in sorted(by_cell.items()):
        cell = (model, paradigm, names.get((model, paradigm)))
        flagged = shares.get((model, paradigm), {})
        got = compare_cell(entries, seed)
        if got is None:
            # entries without the counts behind them, or an in-domain pool of one class
            findings += _f1_gap_as_measured(cell, entries, flagged)
            continue
        home, ref, left_out, compared = got
        f1s = [c for c in compared if c.expected is not None]
        gap = _f1_gap(cell, entries, home, f1s, flagged, len(compared))
        mine = (gap or _drop_explained(cell, home, f1s, len(compared), flagged)
                or _drop_within_noise(cell, home, f1s, len(compared), flagged))
        mine += _false_alarms(cell, home, [c for c in compared if c.expected is None], len(compared))
        for f in mine:
            f.evidence["in_domain_reference"] = ref
            if left_out:
                f.evidence["single_class_in_domain"] = left_out
                f.summary += (f" The in-domain rates are {_of_names(ref)}'s; {_of_names(left_out)} "
                              f"({'hold' if len(left_out) > 1 else 'holds'} one class) "
                              "left out: there a rate measures recognising the corpus, not the label.")
        findings += mine
    if study.cells:
        findings += paradigm_comparison(study.matrix, scores, seed=study.spec.study.seed,
                                        n_resamples=int(study.spec.study.bootstrap),
                                        groups=(getattr(study, "splits", None) or {}).get("copy_groups"),
                                        train_sizes={(c.model, c.paradigm): (getattr(c, "meta", None) or {}).get("n_train")
                                                     for c in study.cells})
    else:  # a matrix alone: point estimates only
        findings += paradigm_comparison(study.matrix)
    return findings


def _of_names(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def _ci_text(ci: list[float] | None, n: int, pct: bool = False) -> str:
    if not ci:
        return f"n={n}"
    return f"95% CI {ci[0]:.0%}-{ci[1]:.0%}, n={n}" if pct else f"95% CI {ci[0]:.2f}-{ci[1]:.2f}, n={n}"


def _home_text(home: Rates) -> str:
    return (f"recall {home.recall:.2f}, false-positive rate {home.fpr:.2f} on its {home.n} held-out in-domain "
            f"emails, {home.share:.0%} phishing")


def _copies_text(e: dict) -> str:
    """'; its 12 phishing emails count as 3.4 (copies of one email held out together)': where copies of
    one email make up a domain's held-out phishing, its F1 counts that email as often as it was sent."""
    eff, n_pos = (e.get("n_effective") or {}).get("phishing"), e.get("n_positive")
    if eff is None or not n_pos or eff >= n_pos - 0.05:
        return ""
    return (f"; its {n_pos} phishing emails count as {eff:.1f} (copies of one email held out together: the F1 "
            f"counts each copy, the interval each email once)")


def _how_it_scores(d: str, e: dict, flagged: float | None) -> str:
    """' On alerts it flags 100% of the emails ...': what the F1 of an unproven drop is made of. A cell that
    calls a whole domain phishing has the F1 of flagging everything, which can sit near its in-domain F1
    where the domain is mostly phishing; the drop then proves nothing while the cell does no work there."""
    if flagged is None or FLAGS_NONE < flagged < FLAGS_ALL:  # only "it flags (nearly) all / nothing there"
        return ""
    why = why_low(e, flagged)
    return f" On {d} {why}." if why else ""


def _drop_within_noise(cell: tuple, home: Rates, f1s: list[Compared], k: int,
                       flagged: dict[str, float] | None = None) -> list[Finding]:
    """A drop of a medium bar's worth or more (a red matrix cell) that no bound shows to be a loss, and
    that the phishing share does not account for: an info finding, so that it is not passed over in
    silence (a review: F1 0.67 against 0.96 in-domain, the misses six copies of one campaign, and
    nothing said)."""
    model, paradigm, name = cell
    in_f1 = home.f1_at(home.share)
    cands = [c for c in f1s if in_f1 - c.entry["f1"] >= BARS[1] and c.lower <= 0]
    if not cands:
        return []
    c = max(cands, key=lambda c: in_f1 - c.entry["f1"])
    e, d = c.entry, c.domain
    return [Finding(
        kind="generalization_gap", severity="info",
        title=(f"{_who(model, paradigm)} scores {e['f1']:.2f} F1 on {d} against {in_f1:.2f} in-domain: a drop "
               "these emails cannot tell from chance"),
        summary=(f"On {d} F1 {e['f1']:.2f} ({_ci_text(e.get('f1_ci'), e['n'])}){_copies_text(e)}. At {_poss(d)} "
                 f"phishing share ({_share(e)}) its in-domain rates ({_home_text(home)}) give F1 {c.expected:.2f}; "
                 f"the loss there has a 95% lower bound of {c.lower:.2f}{_bonferroni(k)}, so no loss is shown. "
                 f"More distinct held-out {d} emails would tell." + _how_it_scores(d, e, (flagged or {}).get(d))),
        evidence={"cell": name, "model": model, "paradigm": paradigm, "in_domain_f1": round(in_f1, 4),
                  "measured_drop": round(in_f1 - e["f1"], 4), **_rates_evidence(home), "domain": d,
                  "expected_f1": _round(c.expected), "drop_at_share": _round(c.drop),
                  "drop_at_share_lower": _round(c.lower), "n_effective": e.get("n_effective")},
        models=[model], domains=[d], score=in_f1 - e["f1"],
    )]


def _f1_gap(cell: tuple, entries: list[dict], home: Rates, f1s: list[Compared], flagged: dict[str, float],
            k: int) -> list[Finding]:
    """The cell's worst significant F1 loss on a domain that holds phishing, read at that domain's share."""
    model, paradigm, name = cell
    sig = beyond_noise(f1s)  # the low bar is MIN_LOSS
    if not sig:
        return []
    worst, e, wd = sig[0], sig[0].entry, sig[0].domain
    in_f1 = home.f1_at(home.share)
    # where the share moves the reference, the summary says against what the loss is read, and the
    # title too once it moves by a bar's worth (at near-equal shares the in-domain F1 stands for it)
    shifted = round(worst.expected, 2) != round(in_f1, 2)
    why = why_low(e, flagged.get(wd))
    return [Finding(
        kind="generalization_gap", severity=_severity(worst.drop),
        title=f"{_who(model, paradigm)} loses {f1_drop_text(worst.drop)} F1 on {wd}" + (
            f" (F1 {e['f1']:.2f} against {worst.expected:.2f} expected at {_share(e)} phishing)"
            if abs(worst.expected - in_f1) >= BARS[-1] else ""),
        summary=(f"In-domain F1 {in_f1:.2f} ({_home_text(home)})"
                 + (f"; at {_poss(wd)} phishing share ({_share(e)}) those rates give F1 {worst.expected:.2f}"
                    if shifted else "")
                 + f"; on {wd} F1 {e['f1']:.2f} ({_ci_text(e.get('f1_ci'), e['n'])}){_copies_text(e)}"
                 + (f": {why}" if why else "")
                 + f". The loss is at least {worst.lower:.2f} (95% lower bound{_bonferroni(k)}), so it is beyond "
                 f"noise; {_graded(worst.drop)}. Significant drops "
                 f"on {_of(len(sig), len(f1s), 'other domain')}: {', '.join(c.domain for c in sig)}."),
        evidence={"cell": name, "model": model, "paradigm": paradigm, "in_domain_f1": round(in_f1, 4),
                  "in_domain_n": home.n, **_rates_evidence(home), "domains_compared": k,
                  "per_domain": _per_domain(entries, flagged, f1s)},
        models=[model], domains=[c.domain for c in sig], score=worst.drop,
    )]


def _drop_explained(cell: tuple, home: Rates, f1s: list[Compared], k: int,
                    flagged: dict[str, float] | None = None) -> list[Finding]:
    """A drop as measured (each side at its own phishing share) that is no significant loss at the
    domain's share: an "info" finding, so that a red matrix cell is explained rather than passed over in
    silence. Where the domain's F1 is less than 0.05 below what the in-domain rates give at its share,
    the share accounts for the drop; otherwise the share accounts for part of it and the rest is not
    measurable on these emails (said so, not called the share's)."""
    model, paradigm, name = cell
    in_f1 = home.f1_at(home.share)
    cands = [c for c in f1s if c.raw_lower > 0 and _severity(in_f1 - c.entry["f1"]) and c.lower <= 0
             and in_f1 - c.expected >= BARS[-1]]  # the share moves the F1 by a bar's worth or more
    if not cands:
        return []
    c = max(cands, key=lambda c: in_f1 - c.entry["f1"])
    e, d = c.entry, c.domain
    share_only = c.drop < BARS[-1]  # below a bar's worth, or better than the in-domain rates give there
    measured = in_f1 - e["f1"]
    opening = (f"{d} is {_share(e)} phishing against {home.share:.0%} where the cell trained. At {_poss(d)} share "
               f"its in-domain recall {home.recall:.2f} and false-positive rate {home.fpr:.2f} give F1 "
               f"{c.expected:.2f}, and it scores {e['f1']:.2f} there ({_ci_text(e.get('f1_ci'), e['n'])}; recall "
               f"{c.rates.recall:.2f}, false-positive rate {c.rates.fpr:.2f}). ")
    if share_only:
        title = f"{_poss(d)} phishing share, not a failure to transfer"
        body = ("The share accounts for the drop: a lower share gives a lower F1 at the same rates, because each "
                "false alarm weighs more against fewer catches.")
    else:
        title = f"{in_f1 - c.expected:.2f} of the drop is {_poss(d)} phishing share, the rest not measurable here"
        body = (f"So {in_f1 - c.expected:.2f} of the {measured:.2f} drop is the share; the remaining {c.drop:.2f} "
                f"has a 95% lower bound of {c.lower:.2f}{_bonferroni(k)}: too few emails ({home.n} held out "
                f"in-domain, {e['n']} on {d}) to tell it from chance.")
    return [Finding(
        kind="generalization_gap", severity="info",
        title=f"{_who(model, paradigm)} scores {e['f1']:.2f} F1 on {d} against {in_f1:.2f} in-domain: {title}",
        summary=opening + body + _how_it_scores(d, e, (flagged or {}).get(d)),
        evidence={"cell": name, "model": model, "paradigm": paradigm, "in_domain_f1": round(in_f1, 4),
                  "measured_drop": round(measured, 4), **_rates_evidence(home), "domain": d,
                  "expected_f1": _round(c.expected), "drop_at_share": _round(c.drop),
                  "drop_at_share_lower": _round(c.lower), "share_accounts_for_it": share_only},
        models=[model], domains=[d], score=measured,
    )]


def _false_alarms(cell: tuple, home: Rates, hams: list[Compared], k: int) -> list[Finding]:
    """Mail of a domain that holds no phishing (a ham archive) has no F1; what fails there is the
    false-positive rate. The worst significant rise over the in-domain rate is a finding."""
    model, paradigm, name = cell
    sig = beyond_noise(hams)
    if not sig:
        return []
    worst, e, wd = sig[0], sig[0].entry, sig[0].domain
    acc_ci = e.get("accuracy_ci")
    fpr_ci = [1.0 - acc_ci[1], 1.0 - acc_ci[0]] if acc_ci else None
    rows = [{"domain": c.domain, "n": c.entry["n"], "false_positive_rate": _round(c.rates.fpr),
             "rise": _round(c.drop), "rise_lower": _round(c.lower)} for c in hams]
    return [Finding(
        kind="generalization_gap", severity=_severity(worst.drop),
        title=(f"{_who(model, paradigm)} flags {worst.rates.fpr:.0%} of {_poss(wd)} legitimate mail as phishing "
               f"({home.fpr:.0%} in-domain)"),
        summary=(f"{wd} holds no phishing, so it has no F1; there the cell flags {worst.rates.fpr:.0%} of the emails "
                 f"({_ci_text(fpr_ci, e['n'], pct=True)}) against {home.fpr:.0%} of the {home.n_neg} legitimate "
                 f"emails it was tested on in-domain. The rise is at least {worst.lower * 100:.0f} percentage points "
                 f"(95% lower bound{_bonferroni(k)}). Significant rises on "
                 f"{_of(len(sig), len(hams), 'domain')} without phishing: {', '.join(c.domain for c in sig)}."),
        evidence={"cell": name, "model": model, "paradigm": paradigm, **_rates_evidence(home),
                  "domains_compared": k, "per_domain": rows},
        models=[model], domains=[c.domain for c in sig], score=worst.drop,
    )]


def _f1_gap_as_measured(cell: tuple, entries: list[dict], flagged: dict[str, float]) -> list[Finding]:
    """Entries without the counts behind them (a matrix from elsewhere) are read against the in-domain
    F1 as measured: a drop counts when the domain's F1 interval lies below the in-domain interval."""
    model, paradigm, name = cell
    ins = [e for e in entries if e["in_domain"] and e.get("f1") is not None and "f1" not in (e.get("undefined") or {})]
    outs = [e for e in entries if not e["in_domain"] and e.get("f1") is not None
            and (e.get("n_positive") is None or e["n_positive"] > 0)]  # null: not counted, as absent
    if not ins or not outs:
        return []
    in_f1 = sum(e["f1"] for e in ins) / len(ins)
    # against the in-domain point estimate, equal domains gave a "significant" drop in a quarter of
    # the cells (five other domains, 24 rows each: a statistical review's simulation)
    in_lo = sum(_ci_low(e) for e in ins) / len(ins)
    drops = sorted([(in_f1 - e["f1"], e) for e in outs if (e.get("f1_ci") or [None, None])[1] is not None
                    and e["f1_ci"][1] < in_lo and _severity(in_f1 - e["f1"])], key=lambda x: -x[0])
    if not drops:
        return []
    worst_drop, worst = drops[0]
    n_in = sum(e["n"] for e in ins)
    few = n_in < MIN_IN_DOMAIN
    failing = [e["test_domain"] for _, e in drops]
    why = why_low(worst, flagged.get(worst["test_domain"]))
    return [Finding(
        kind="generalization_gap", severity="low" if few else _severity(worst_drop),
        title=f"{_who(model, paradigm)} loses {f1_drop_text(worst_drop)} F1 on {worst['test_domain']}",
        summary=(f"In-domain F1 {in_f1:.2f}; on {worst['test_domain']} F1 {worst['f1']:.2f} "
                 f"({_ci_text(worst.get('f1_ci'), worst['n'])})" + (f": {why}" if why else "") + ". "
                 + (f"In-domain F1 rests on {n_in} held-out row(s), too few to measure it: a drop, not a "
                    "significant one." if few else
                    f"Significant drops on {len(failing)} of {len(outs)} other domains: {', '.join(failing)}.")),
        evidence={"cell": name, "model": model, "paradigm": paradigm, "in_domain_f1": round(in_f1, 4),
                  "in_domain_n": n_in, "per_domain": _per_domain(entries, flagged, [])},
        models=[model], domains=failing, score=worst_drop,
    )]


def _poss(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _share(e: dict) -> str:
    return f"{e['n_positive'] / e['n']:.0%}"


def _rates_evidence(home: Rates) -> dict:
    return {"in_domain_recall": round(home.recall, 4), "in_domain_fpr": round(home.fpr, 4),
            "in_domain_phishing_share": round(home.share, 4)}


def _per_domain(entries: list[dict], flagged: dict[str, float], f1s: list[Compared]) -> list[dict]:
    by = {c.domain: c for c in f1s}
    rows = []
    for e in sorted(entries, key=lambda e: e["test_domain"]):
        d, c = e["test_domain"], by.get(e["test_domain"])
        rows.append({"domain": d, "f1": e["f1"], "f1_ci": e.get("f1_ci"), "auroc": e.get("auroc"),
                     "flagged_share": _round(flagged.get(d)), "recall": e.get("recall"),
                     "precision": None if "precision" in (e.get("undefined") or {}) else e.get("precision"),
                     "n": e["n"], "phishing_share": _round(e["n_positive"] / e["n"]) if e.get("n") and
                     e.get("n_positive") is not None else None,
                     # what the in-domain error rates give at this domain's phishing share, and the loss
                     "expected_f1": _round(c.expected) if c else None, "drop": _round(c.drop) if c else None,
                     "drop_lower": _round(c.lower) if c else None, "in_domain": e["in_domain"],
                     "n_effective": e.get("n_effective")})
    return rows


def _ci_low(e: dict) -> float:
    ci = e.get("f1_ci") or [None]
    return e["f1"] if ci[0] is None else ci[0]


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
