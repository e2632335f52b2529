"""The generalist against the specialists of the same model, domain by domain (part of the
generalization detector: its findings carry that detector's name)."""

from __future__ import annotations

from collections import defaultdict

from gapscope.eval.held_out import paired_interval
from gapscope.findings import Finding


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _change(delta: float, ci: list[float] | None = None) -> str:
    """'gains 0.10 F1 [0.06, 0.13]' / 'costs 0.05 F1 [0.03, 0.08]': the interval in the words' sign."""
    if delta < 0 and ci:
        ci = [-ci[1], -ci[0]]
    text = f"gains {delta:.2f} F1" if delta >= 0 else f"costs {-delta:.2f} F1"
    return text + (f" [{_bound(ci[0])}, {_bound(ci[1])}]" if ci else "")


def _bound(x: float) -> str:
    """Two decimals, more where two would show a bound that excludes 0 as 0.00 ('[0.00, 0.13]' for a
    lower bound of 0.0045, which reads as touching zero); never '-0.00'."""
    for digits in (2, 3, 4):
        text = f"{round(x, digits) + 0.0:.{digits}f}"
        if float(text) != 0:
            return text
    return "0.00"  # within 0.0001 of zero, either side


def paradigm_comparison(entries: list[dict], scores: dict[tuple[str, str], dict[str, tuple]] | None = None,
                        seed: int = 0, n_resamples: int = 1000,
                        train_sizes: dict[tuple[str, str], int] | None = None,
                        groups: dict[str, int] | None = None) -> list[Finding]:
    """Generalist vs specialists of one model, compared like with like, domain by domain.

    On a domain the generalist trained on, it is compared with that domain's specialist at home
    (what mixing costs; `generalist_size = "match"` sizes the mix to the median specialist, and
    `train_sizes`, (model, paradigm) -> training rows, lets the text say the sizes) and with the other specialists there, away from home (what
    seeing the domain's style buys). Neither says whether the mix carries to a domain it never saw:
    that is the generalist's own out-of-domain F1 where it has one, and the leave-one-domain-out
    cells' F1 on their held-out domain, each set against the specialists away from home there.

    With `scores` (the cells' test margins, see held_out_scores) the differences get paired bootstrap
    intervals (`groups`, row id -> group of copies, resampled together); the comparison is "low"
    rather than "info" when seeing a domain's style in training
    moves F1 by at least 0.05, up or down, and its interval, where there is one, excludes 0 (a
    generalist below specialists that never saw the domain is as worth reading as one above them).
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
            return paired_interval(parts_, seed, n_resamples, groups=groups)

        gain_ci = interval(away)
        mix_ci = interval({d: [home[d]] for d in seen})
        parts = [f"On {len(seen)} domain(s) that have a specialist ({', '.join(seen)}), the generalist, which "
                 f"trained on each of them, scores {g:.2f} F1; each domain's own specialist {h:.2f} "
                 f"(mixing {_change(g - h, mix_ci)}{_sizes(model, seen, train_sizes)}), the other specialists there "
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


def _sizes(model: str, seen: list[str], train_sizes: dict[tuple[str, str], int] | None) -> str:
    """' on 168 training rows against 120-240 for the specialists': the mix is sized to the median
    specialist, so where the specialists differ in size the comparison is not at equal size."""
    sizes = train_sizes or {}
    g = sizes.get((model, "generalist"))
    sp = [sizes.get((model, f"specialist:{d}")) for d in seen]
    if g is None or None in sp:
        return ""
    lo, hi = min(sp), max(sp)
    if lo == hi == g:
        return f", each on {g} training rows"
    return f": the generalist on {g} training rows, the specialists on {lo if lo == hi else f'{lo}-{hi}'}"


def _round_ci(ci: list[float] | None) -> list[float] | None:
    return None if ci is None else [round(v, 4) for v in ci]
