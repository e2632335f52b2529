"""Generalization gaps read off the cross-domain matrix.

A cell whose F1 on some domain falls clearly below what it scores at home is a finding: "at home"
is the F1 its in-domain recall and false-positive rate give at that domain's phishing share (F1
moves with the share alone), and "clearly" means the domain's F1 interval lies below that one's.
A domain without phishing has no F1: there a rise of the false-positive rate is the finding.
The generalist cell is compared with the specialists of the same model, with paired bootstrap
intervals over the test rows the cells share.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from gapscope.eval.matrix import FLAGS_ALL, RANKS_WELL, flag_all_f1
from gapscope.eval.metrics import f1_at_share
from gapscope.findings import Finding, register_detector


BARS = (0.3, 0.15, 0.05)  # F1 drop at which a gap is high, medium, low
# In-domain held-out rows below which a drop stays low: the bootstrap interval of a handful of
# rows collapses (one row: F1 1.00 [1.00, 1.00]), so "significant" would rest on no evidence.
MIN_IN_DOMAIN = 20


def _severity(drop: float) -> str | None:
    for bar, sev in zip(BARS, ("high", "medium", "low")):
        if drop >= bar:
            return sev
    return None


def f1_drop_text(drop: float) -> str:
    """Two decimals, or three where two would round the drop up to a severity bar it is below
    (0.2976 reads 0.298, not 0.30, in a finding rated below the 0.3 bar)."""
    return f"{drop:.3f}" if any(drop < bar <= round(drop, 2) for bar in BARS) else f"{drop:.2f}"


def _who(model: str, paradigm: str) -> str:
    if paradigm.startswith("specialist:"):
        return f"{model} trained on {paradigm.split(':', 1)[1]}"
    if paradigm.startswith("lodo:"):
        return f"{model} trained without {paradigm.split(':', 1)[1]}"
    return f"{model} ({paradigm})"


# The phishing share moves the F1 a cell's in-domain error rates give by at least this much: the
# texts then say what the loss is read against (below it, the in-domain F1 stands for it).
SHARE_SHIFT = 0.02

FLAGS_NONE = 0.05  # a cell flagging this share of a domain's emails or less flags (nearly) nothing


def flagged_shares(scores: dict[tuple[str, str], dict[str, tuple]]) -> dict[tuple[str, str], dict[str, float]]:
    """Per cell (model, paradigm) and test domain: the share of held-out emails it flags as phishing
    (from held_out_scores)."""
    return {cell: {d: float(np.mean(m > thr)) for d, (_, _, m, thr) in per.items()} for cell, per in scores.items()}


def why_low(e: dict, flagged: float | None) -> str:
    """What an out-of-domain F1 is made of: a threshold that does not transfer, or flagging everything."""
    auroc = e.get("auroc")
    p = e["n_positive"] / e["n"] if e.get("n") else None
    ranks = auroc is not None and auroc >= RANKS_WELL
    auc = f" (AUROC {auroc:.2f})" if auroc is not None else ""
    recalibrate = "the ranking transfers, the threshold does not (recalibrate it on that domain)"
    flags = f"it flags {flagged:.0%} of the emails as phishing" if flagged is not None else ""
    if flagged is not None and flagged >= FLAGS_ALL and p is not None:
        everything = f"{flags}, so its F1 is about that of flagging everything ({flag_all_f1(p):.2f})"
        # ranked well, the threshold (not the model) fails
        return f"{everything}, yet it ranks them well{auc}: {recalibrate}" if ranks else f"{everything}, not skill{auc}"
    if flagged is not None and flagged <= FLAGS_NONE:  # an F1 near 0 is then first of all "flags nothing"
        if ranks:
            return f"{flags}, yet ranks them well{auc}: {recalibrate}"
        return f"{flags}, and its ranking fails there too{auc}"
    if ranks:
        return f"its ranking still holds there{auc}: much of the loss is the threshold"
    return f"its ranking fails there too{auc}" if auroc is not None else ""


@dataclass(frozen=True)
class HomeRates:
    """A cell's error rates on its held-out in-domain emails, pooled over its training domains."""
    recall: float
    fpr: float
    share: float  # phishing share of those emails
    n: int
    n_negative: int
    recall_draws: np.ndarray
    fpr_draws: np.ndarray

    def expected_f1(self, share: float, level: float = 0.95) -> tuple[float, float | None]:
        """F1 these rates give at a domain's phishing share, and the lower end of its bootstrap interval."""
        point = float(f1_at_share(self.recall, self.fpr, share))
        draws = f1_at_share(self.recall_draws, self.fpr_draws, share)
        draws = draws[~np.isnan(draws)]
        lo = float(np.percentile(draws, (1.0 - level) / 2 * 100)) if draws.size else None
        return point, lo

    def fpr_high(self, level: float = 0.95) -> float | None:
        """Upper end of the false-positive rate's bootstrap interval."""
        draws = self.fpr_draws[~np.isnan(self.fpr_draws)]
        return float(np.percentile(draws, 100 - (1.0 - level) / 2 * 100)) if draws.size else None


def home_rates(per_domain: dict[str, tuple], domains: list[str], seed: int, n_resamples: int) -> HomeRates | None:
    """HomeRates from a cell's held-out scores (see held_out_scores); None without both classes."""
    from gapscope.eval.bootstrap import error_rate_draws
    from gapscope.eval.matrix import _domain_seed

    if not domains or any(d not in per_domain for d in domains):
        return None
    y = np.concatenate([per_domain[d][1] for d in domains]).astype(bool)
    pred = np.concatenate([per_domain[d][2] > per_domain[d][3] for d in domains])
    if y.all() or not y.any():
        return None  # a recall or a false-positive rate that cannot be measured
    rd, fd = error_rate_draws(y, pred, n_resamples=n_resamples,
                              seed=_domain_seed(seed, "in-domain:" + "|".join(sorted(domains))))
    return HomeRates(float(pred[y].mean()), float(pred[~y].mean()), float(y.mean()), int(y.size),
                     int((~y).sum()), rd, fd)


@register_detector("generalization")
def run(study) -> list[Finding]:
    by_cell: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in study.matrix:
        by_cell[(e["model"], e["paradigm"])].append(e)
    scores = held_out_scores(study)
    shares = flagged_shares(scores)
    names = {(c.model, c.paradigm): c.name for c in study.cells}
    seed = int(study.spec.study.seed) if study.cells else 0
    n_resamples = int(study.spec.study.bootstrap) if study.cells else 0
    findings = []
    for (model, paradigm), entries in sorted(by_cell.items()):
        ins = [e for e in entries if e["in_domain"] and e.get("f1") is not None]
        if not ins:
            continue
        # F1 moves with the phishing share alone: at 5% phishing the error rates that give 0.90 at 50%
        # give 0.47. So each domain is set against the F1 the cell's in-domain recall and
        # false-positive rate give at that domain's share (needs the cells' scores; a matrix alone
        # is read against the in-domain F1 as measured).
        rates = home_rates(scores.get((model, paradigm), {}), sorted({e["test_domain"] for e in ins}),
                           seed, n_resamples) if n_resamples else None
        cell = (model, paradigm, names.get((model, paradigm)))
        findings += _f1_gap(cell, entries, ins, rates, shares.get((model, paradigm), {}))
        findings += _false_alarms(cell, entries, rates)
    if study.cells:
        findings += paradigm_comparison(study.matrix, scores, seed=study.spec.study.seed,
                                        n_resamples=int(study.spec.study.bootstrap))
    else:  # a matrix alone: point estimates only
        findings += paradigm_comparison(study.matrix)
    return findings


def _f1_gap(cell: tuple, entries: list[dict], ins: list[dict], rates: HomeRates | None,
            flagged: dict[str, float]) -> list[Finding]:
    """The cell's worst significant F1 loss on a domain holding phishing (or an info finding where the
    domain's phishing share accounts for a drop as measured)."""
    model, paradigm, name = cell
    outs = [e for e in entries if not e["in_domain"] and e.get("f1") is not None and e.get("n_positive", 1) > 0]
    if not outs:
        return []
    in_f1 = sum(e["f1"] for e in ins) / len(ins)
    # the in-domain F1 is measured too (on a few dozen rows): a drop counts when the other
    # domain's interval lies below the in-domain interval, not below its point estimate; read
    # against the point, equal domains gave a "significant" drop in a quarter of the cells
    # (five other domains, 24 rows each: a statistical review's simulation)
    in_lo = sum(_ci_low(e) for e in ins) / len(ins)
    drops, raw_drops, expected = [], [], {}
    for e in outs:
        hi = (e.get("f1_ci") or [None, None])[1]
        ref, ref_lo = in_f1, in_lo
        if rates is not None and e.get("n"):
            point, lo = rates.expected_f1(e["n_positive"] / e["n"])
            if lo is not None:
                ref, ref_lo = point, lo
                expected[e["test_domain"]] = (point, lo)
        if hi is not None and hi < in_lo:
            raw_drops.append((in_f1 - e["f1"], e))
        if hi is not None and hi >= ref_lo:
            continue  # not distinguishable from what the cell scores at home
        drops.append((ref - e["f1"], e))
    drops = [(d, e) for d, e in sorted(drops, key=lambda x: -x[0]) if _severity(d)]
    if not drops:
        base = _share_not_skill(cell, in_f1, rates, raw_drops, expected)
        return [base] if base else []
    worst_drop, worst = drops[0]
    sev = _severity(worst_drop)
    n_in = sum(e["n"] for e in ins)
    few = n_in < MIN_IN_DOMAIN
    if few:
        sev = "low"
    failing = [e["test_domain"] for _, e in drops]
    why = why_low(worst, flagged.get(worst["test_domain"]))
    wd = worst["test_domain"]
    shifted = wd in expected and abs(expected[wd][0] - in_f1) >= SHARE_SHIFT
    at_share = (f" (recall {rates.recall:.2f}, false-positive rate {rates.fpr:.2f}, {rates.share:.0%} phishing); "
                f"at {_poss(wd)} phishing share ({_share(worst)}) those rates give F1 {expected[wd][0]:.2f}"
                if shifted else "")
    return [Finding(
        kind="generalization_gap", severity=sev,
        title=f"{_who(model, paradigm)} loses {f1_drop_text(worst_drop)} F1 on {wd}" + (
            # where the share moves the reference, the title says against what the loss is read
            f" (F1 {worst['f1']:.2f} against {expected[wd][0]:.2f} expected at {_share(worst)} phishing)"
            if shifted else ""),
        summary=(f"In-domain F1 {in_f1:.2f}" + at_share + f"; on {wd} F1 {worst['f1']:.2f} "
                 f"(95% CI {worst['f1_ci'][0]:.2f}-{worst['f1_ci'][1]:.2f}, n={worst['n']})"
                 + (f": {why}" if why else "") + ". "
                 + (f"In-domain F1 rests on {n_in} held-out row(s), too few to measure it: a drop, not a "
                    "significant one." if few else
                    f"Significant drops on {len(failing)} of {len(outs)} other domains: {', '.join(failing)}.")),
        evidence={"cell": name, "model": model, "paradigm": paradigm,
                  "in_domain_f1": round(in_f1, 4), "in_domain_n": n_in, **_rates_evidence(rates),
                  "per_domain": _per_domain(entries, flagged, expected)},
        models=[model], domains=[wd] + [d for d in failing if d != wd],
        score=worst_drop,
    )]


def _false_alarms(cell: tuple, entries: list[dict], rates: HomeRates | None) -> list[Finding]:
    """Mail of a domain that holds no phishing (a ham archive) has no F1; what fails there is the
    false-positive rate. The worst significant rise over the in-domain rate is a finding."""
    model, paradigm, name = cell
    hams = [e for e in entries if not e["in_domain"] and e.get("n") and e.get("n_positive") == 0
            and e.get("accuracy") is not None]
    if not hams or rates is None:
        return []
    home_hi = rates.fpr_high()
    rises = []
    for e in hams:
        fpr = 1.0 - e["accuracy"]
        lo = 1.0 - (e.get("accuracy_ci") or [None, e["accuracy"]])[1]
        if home_hi is not None and lo > home_hi and _severity(fpr - rates.fpr):
            rises.append((fpr - rates.fpr, fpr, e))
    if not rises:
        return []
    rises.sort(key=lambda x: -x[0])
    rise, fpr, worst = rises[0]
    wd = worst["test_domain"]
    ci = worst.get("accuracy_ci")
    few = rates.n_negative < MIN_IN_DOMAIN
    rows = [{"domain": e["test_domain"], "n": e["n"], "false_positive_rate": _round(1.0 - e["accuracy"]),
             "false_positive_rate_ci": None if not e.get("accuracy_ci") else
             [_round(1.0 - e["accuracy_ci"][1]), _round(1.0 - e["accuracy_ci"][0])]} for e in hams]
    return [Finding(
        kind="generalization_gap", severity="low" if few else _severity(rise),
        title=f"{_who(model, paradigm)} flags {fpr:.0%} of {_poss(wd)} legitimate mail as phishing "
              f"({rates.fpr:.0%} in-domain)",
        summary=(f"{wd} holds no phishing (n={worst['n']}), so it has no F1; there the cell flags {fpr:.0%} of the "
                 f"emails" + (f" (95% CI {1 - ci[1]:.0%}-{1 - ci[0]:.0%})" if ci else "")
                 + f" against a false-positive rate of {rates.fpr:.2f} on the legitimate mail where it trained "
                 f"(upper bound {home_hi:.2f}, {rates.n_negative} emails). "
                 + (f"The in-domain rate rests on {rates.n_negative} legitimate row(s), too few to measure it."
                    if few else f"Significant rises on {len(rises)} of {len(hams)} domains without phishing: "
                    f"{', '.join(e['test_domain'] for _, _, e in rises)}.")),
        evidence={"cell": name, "model": model, "paradigm": paradigm, **_rates_evidence(rates),
                  "in_domain_fpr_high": _round(home_hi), "false_positive_rate_rise": round(rise, 4),
                  "per_domain": rows},
        models=[model], domains=[e["test_domain"] for _, _, e in rises], score=rise,
    )]


def _poss(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _share(e: dict) -> str:
    return f"{e['n_positive'] / e['n']:.0%}"


def _rates_evidence(rates: HomeRates | None) -> dict:
    if rates is None:
        return {}
    return {"in_domain_recall": round(rates.recall, 4), "in_domain_fpr": round(rates.fpr, 4),
            "in_domain_phishing_share": round(rates.share, 4)}


def _per_domain(entries: list[dict], flagged: dict[str, float], expected: dict[str, tuple]) -> list[dict]:
    rows = []
    for e in sorted(entries, key=lambda e: e["test_domain"]):
        d = e["test_domain"]
        rows.append({"domain": d, "f1": e["f1"], "f1_ci": e.get("f1_ci"), "auroc": e.get("auroc"),
                     "flagged_share": _round(flagged.get(d)), "recall": e.get("recall"),
                     "precision": None if "precision" in (e.get("undefined") or {}) else e.get("precision"),
                     "n": e["n"], "phishing_share": _round(e["n_positive"] / e["n"]) if e.get("n") and
                     e.get("n_positive") is not None else None,
                     # what the in-domain error rates give at this domain's phishing share
                     "expected_f1": _round(expected[d][0]) if d in expected else None,
                     "expected_f1_low": _round(expected[d][1]) if d in expected else None,
                     "in_domain": e["in_domain"]})
    return rows


def _share_not_skill(cell: tuple, in_f1: float, rates: HomeRates | None, raw_drops: list,
                     expected: dict[str, tuple]) -> Finding | None:
    """A drop as measured that the domain's phishing share accounts for: an "info" finding, so that a
    red matrix cell is explained rather than passed over in silence."""
    raw = [(d, e) for d, e in sorted(raw_drops, key=lambda x: -x[0]) if _severity(d) and e["test_domain"] in expected]
    if not raw or rates is None:
        return None
    model, paradigm, name = cell
    drop, e = raw[0]
    d = e["test_domain"]
    point, lo = expected[d]
    return Finding(
        kind="generalization_gap", severity="info",
        title=(f"{_who(model, paradigm)} scores {e['f1']:.2f} F1 on {d} against {in_f1:.2f} in-domain: "
               f"{_poss(d)} phishing share, not a failure to transfer"),
        summary=(f"{d} is {_share(e)} phishing against {rates.share:.0%} where the cell trained. Its in-domain "
                 f"recall {rates.recall:.2f} and false-positive rate {rates.fpr:.2f} give F1 {point:.2f} (lower "
                 f"bound {lo:.2f}) at {_poss(d)} share, and it scores {e['f1']:.2f} (95% CI {e['f1_ci'][0]:.2f}-"
                 f"{e['f1_ci'][1]:.2f}, n={e['n']}) there: its error rates carry over; the same rates give a "
                 "lower F1 on mail with less phishing, because each false alarm weighs more against fewer "
                 "catches." + (f" Its precision there is {e['precision']:.2f}." if e.get("precision") is not None
                               else "")),
        evidence={"cell": name, "model": model, "paradigm": paradigm,
                  "in_domain_f1": round(in_f1, 4), "measured_drop": round(drop, 4), **_rates_evidence(rates),
                  "domain": d, "expected_f1": _round(point), "expected_f1_low": _round(lo)},
        models=[model], domains=[d], score=drop,
    )


def _ci_low(e: dict) -> float:
    ci = e.get("f1_ci") or [None]
    return e["f1"] if ci[0] is None else ci[0]


def _round_ci(ci: list[float] | None) -> list[float] | None:
    return None if ci is None else [round(v, 4) for v in ci]


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def held_out_scores(study) -> dict[tuple[str, str], dict[str, tuple]]:
    """(model, paradigm) -> test domain -> (ids, labels, margins, threshold), rows in id order so that
    every cell's arrays of one domain line up for a paired bootstrap. Each cell's predictions are
    read once, here."""
    out: dict[tuple[str, str], dict[str, tuple]] = {}
    for cell in study.cells:
        p = study.predictions(cell)
        p = p[p["split"] == "test"].sort_values("id", kind="stable")
        out[(cell.model, cell.paradigm)] = {
            str(d): (g["id"].to_numpy(), g["label"].to_numpy(), g["margin"].to_numpy(), float(cell.threshold))
            for d, g in p.groupby("domain", sort=True)}
    return out


def paired_interval(parts: list[tuple[str, list[tuple], list[tuple]]], seed: int, n_resamples: int,
                    level: float = 0.95) -> list[float] | None:
    """Percentile interval of mean F1 of the `a` cells minus mean F1 of the `b` cells, resampling each
    domain's test rows once for all cells (paired: the cells are scored on the same emails).
    parts: (domain, a scores, b scores), each score (ids, labels, margins, threshold); the means run
    over every (domain, cell) pair, as the point estimates do. None if the rows do not line up."""
    from gapscope.eval.bootstrap import resample_counts
    from gapscope.eval.matrix import _domain_seed
    from gapscope.eval.metrics import metric_batch

    if not parts or n_resamples <= 0:
        return None
    sums = {"a": np.zeros(n_resamples), "b": np.zeros(n_resamples)}
    counts = {"a": 0, "b": 0}
    for domain, a, b in parts:
        ids = a[0][0] if a else b[0][0]
        if any(len(x[0]) != len(ids) or (x[0] != ids).any() for x in a + b):
            return None
        w = resample_counts(len(ids), n_resamples, np.random.default_rng(_domain_seed(seed, domain)))
        for side, scores in (("a", a), ("b", b)):
            for _, y, m, thr in scores:
                sums[side] += metric_batch(y, m, thr, w)["f1"]
                counts[side] += 1
    diff = sums["a"] / counts["a"] - sums["b"] / counts["b"]
    diff = diff[~np.isnan(diff)]  # a draw without phishing rows has no F1
    if diff.size < n_resamples / 2:
        return None
    alpha = (1.0 - level) / 2 * 100
    return [float(v) for v in np.percentile(diff, [alpha, 100 - alpha])]


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _change(delta: float, ci: list[float] | None = None) -> str:
    """'gains 0.10 F1 [0.06, 0.13]' / 'costs 0.05 F1 [0.03, 0.08]': the interval in the words' sign."""
    if delta < 0 and ci:
        ci = [-ci[1], -ci[0]]
    text = f"gains {delta:.2f} F1" if delta >= 0 else f"costs {-delta:.2f} F1"
    return text + (f" [{round(ci[0], 2) + 0.0:.2f}, {round(ci[1], 2) + 0.0:.2f}]" if ci else "")  # no "-0.00"


def paradigm_comparison(entries: list[dict], scores: dict[tuple[str, str], dict[str, tuple]] | None = None,
                        seed: int = 0, n_resamples: int = 1000) -> list[Finding]:
    """Generalist vs specialists of one model, compared like with like, domain by domain.

    On a domain the generalist trained on, it is compared with that domain's specialist at home
    (what mixing costs at equal size) and with the other specialists there, away from home (what
    seeing the domain's style buys). Neither says whether the mix carries to a domain it never saw:
    that is the generalist's own out-of-domain F1 where it has one, and the leave-one-domain-out
    cells' F1 on their held-out domain, each set against the specialists away from home there.

    With `scores` (the cells' test margins, see held_out_scores) the differences get paired bootstrap
    intervals; the comparison is "low" rather than "info" when what seeing a domain's style buys
    is at least 0.05 F1 and its interval, where there is one, excludes 0.
    """
    by_model: dict[str, list[dict]] = defaultdict(list)
    for e in entries:
        if e.get("f1") is not None and "f1" not in (e.get("undefined") or {}):
            by_model[e["model"]].append(e)
    out = []
    for model, es in sorted(by_model.items()):
        gen = {e["test_domain"]: e for e in es if e["paradigm"] == "generalist"}
        home = {e["test_domain"]: e for e in es if e["paradigm"].startswith("specialist:") and e["in_domain"]}
        if not gen or not home:
            continue
        away: dict[str, list[dict]] = defaultdict(list)
        for e in es:
            if e["paradigm"].startswith("specialist:") and not e["in_domain"]:
                away[e["test_domain"]].append(e)
        seen = [d for d in home if d in gen and gen[d]["in_domain"] and away.get(d)]
        if not seen:
            continue
        g, h = _mean([gen[d]["f1"] for d in seen]), _mean([home[d]["f1"] for d in seen])
        a = _mean([x["f1"] for d in seen for x in away[d]])
        gain = g - a
        mine = {p: v for (m, p), v in (scores or {}).items() if m == model}

        def interval(others: dict[str, list[dict]]) -> list[float] | None:
            """The generalist against `others` (entries per domain) on the seen domains, paired."""
            parts_ = [(d, [mine.get("generalist", {}).get(d)], [mine.get(e["paradigm"], {}).get(d) for e in others[d]])
                      for d in seen]
            if not mine or any(x is None for _, a_, b_ in parts_ for x in a_ + b_):
                return None
            return paired_interval(parts_, seed, n_resamples)

        gain_ci = interval(away)
        mix_ci = interval({d: [home[d]] for d in seen})
        parts = [f"On {len(seen)} domain(s) that have a specialist ({', '.join(seen)}), the generalist, which "
                 f"trained on each of them, scores {g:.2f} F1; each domain's own specialist {h:.2f} "
                 f"(mixing {_change(g - h, mix_ci)} at equal size), the other specialists there "
                 f"{a:.2f} (seeing a domain's style in training {_change(gain, gain_ci)})."
                 + (" Intervals: 95% paired bootstrap over the test emails the cells share (the spread of scoring "
                    "other emails, not of training the cells again)." if gain_ci else
                    " No interval: the cells' test scores were not available to resample." if mine else "")]
        unseen = [d for d, e in gen.items() if not e["in_domain"] and away.get(d)]
        ev: dict = {"domains": seen, "generalist_f1": round(g, 4), "specialist_home_f1": round(h, 4),
                    "specialists_away_f1": round(a, 4), "style_gain": round(gain, 4),
                    "style_gain_ci": _round_ci(gain_ci), "mixing_change": round(g - h, 4),
                    "mixing_change_ci": _round_ci(mix_ci)}
        if unseen:
            gu, au = _mean([gen[d]["f1"] for d in unseen]), _mean([x["f1"] for d in unseen for x in away[d]])
            parts.append(f"On {', '.join(unseen)}, which the mix left out, the generalist scores {gu:.2f} against "
                         f"the specialists' {au:.2f} there: that is how the mix carries to unseen mail.")
            ev.update({"unseen_domains": unseen, "generalist_unseen_f1": round(gu, 4), "specialists_unseen_f1": round(au, 4)})
        lodo = {e["paradigm"].split(":", 1)[1]: e["f1"] for e in es
                if e["paradigm"].startswith("lodo:") and e["test_domain"] == e["paradigm"].split(":", 1)[1]}
        lodo = {d: f for d, f in lodo.items() if away.get(d)}
        if lodo:
            lo, al = _mean(list(lodo.values())), _mean([x["f1"] for d in lodo for x in away[d]])
            parts.append(f"Trained on every other domain, the leave-one-domain-out cells score {lo:.2f} on the "
                         f"domain they left out, against {al:.2f} for single-domain specialists there.")
            ev.update({"lodo_heldout_f1": round(lo, 4), "specialists_away_on_lodo_domains_f1": round(al, 4)})
        elif not unseen:
            parts.append("Whether a mix carries to a domain it never saw is not measured here: the generalist saw "
                         "every domain; leave-one-domain-out cells (`lodo = true`) measure it.")
        out.append(Finding(
            kind="paradigm_comparison",
            # without an interval (a matrix alone) the point estimate rates it, as it always did
            severity="low" if abs(gain) >= 0.05 and (gain_ci is None or gain_ci[0] > 0 or gain_ci[1] < 0) else "info",
            title=(f"{model}: the generalist scores {g:.2f} F1 on domains it trained on, vs {h:.2f} for each "
                   f"domain's specialist and {a:.2f} for specialists from other domains"),
            summary=" ".join(parts), evidence=ev, models=[model], domains=seen + unseen, score=abs(gain),
        ))
    return out
