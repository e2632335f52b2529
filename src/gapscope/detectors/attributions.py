"""Corpus-level attributions: what each cell keys on, per test domain, and how that differs.

For every cell x test domain, gapscope.attribution.corpus explains a bounded sample of
held-out emails with occlusion (neural cells explain the first part of the tf-idf cells'
sample, so cells compare on shared emails) and aggregates word and phrase importance
(frequency-aware, only words inside the model's window, with a bootstrap stability per
feature). Written to diagnostics/attributions/:

  <cell>/<domain>.parquet   the full feature table (feature, n, docs, mean, importance, phrase,
                            covered_by, stability)
  summary.json              top features per cell x domain; per cell, how its phishing
                            evidence shifts from its training domain to each other domain
                            (corpus.shift_test: halves of the home emails against each other and
                            against the other domain; direction by direction differences over
                            shared features; features only one side holds); between_cells:
                            two models trained the same way, and each cell against its model's
                            generalist, on each domain (shared emails, margin-scaled where the
                            models differ), and one line per pair over the domains
  section.json              the report sections (top features, shifts, cell against cell where
                            any pair was compared, example emails)

Findings (kind "top_features", severity info: they describe, they do not accuse):
one per cell with its top phishing / legitimate features per domain, whether its out-of-domain
top features differ from its in-domain ones beyond chance, the home domain's most confident
phishing email beside the out-of-domain phishing email it scores lowest, and the shifts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gapscope import progress
from gapscope.attribution import corpus as C
from gapscope.attribution.base import is_cheap
from gapscope.attribution.window import model_tokens, visible_end
from gapscope.detectors.shortcuts import describe_cell
from gapscope.findings import Finding, register_detector

_NAMED = 3  # training domains a finding's texts list by name; more are counted


def _example(atts: dict, rows: dict) -> dict[str, Any] | None:
    """The most confidently phishing email of the sample, as highlighted evidence."""
    best = None
    for rid, a in sorted(atts.items()):
        if rows[rid].label == 1 and (best is None or a.margin > best[1].margin):
            best = (rid, a)
    return _shown(*best) if best else None


def _worst_miss(atts_by_domain: dict[str, dict], rows: dict, threshold: float) -> dict[str, Any] | None:
    """The out-of-domain phishing email the cell scores least phishing (a miss when below its
    threshold): where the evidence it keys on at home is absent, side by side with the home example."""
    worst = None
    for d, atts in sorted(atts_by_domain.items()):
        for rid, a in sorted(atts.items()):
            if rows[rid].label == 1 and (worst is None or a.margin < worst[1].margin):
                worst = (rid, a, d)
    if worst is None:
        return None
    out = _shown(worst[0], worst[1])
    out.update({"domain": worst[2], "missed": bool(worst[1].margin <= threshold)})
    return out


def _shown(rid: str, a) -> dict[str, Any]:
    d = a.to_dict()
    return {"id": rid, **{k: d[k] for k in ("text", "tokens", "weights", "margin", "in_view") if k in d}}


def _fmt_features(fs: list[dict], n: int = 5) -> str:
    """'via veloruith' 0.41 (12, 95%): importance, emails, stability."""
    out = []
    for f in fs[:n]:
        st = f" {f['stability']:.0%}" if "stability" in f else ""
        out.append(f"{f['feature']} {f['importance']:+.2f} ({f['docs']}{st})")
    return "; ".join(out) or "none"


def _span(values: list, fmt: str) -> str:
    """'25' or '3-25' (formatted with fmt)."""
    return fmt.format(values[0]) if len(values) == 1 else f"{fmt.format(values[0])}-{fmt.format(values[-1])}"


def _names(rows: list[dict], n: int = 4) -> str:
    return ", ".join(r["feature"] for r in rows[:n]) or "none"


@register_detector("attributions")
def run(study) -> list[Finding]:
    from gapscope.study import artifacts

    opts = C.options(study)
    out_dir = study.artifact_dir("attributions")
    k = int(opts["top_k"])
    agg = {"ngram_max": int(opts["ngram_max"]), "min_docs": int(opts["min_docs"]), "k": k}
    seed = study.spec.study.seed
    tables: dict[tuple[str, str], C.FeatureTable] = {}
    samples: dict[tuple[str, str], tuple[dict, dict]] = {}  # (cell, domain) -> (attributions, in-view ends)
    summary: dict[str, Any] = {"cells": {}, "between_cells": {}, "options": opts}
    findings = []
    pairs: dict[str, dict] = {}  # cell -> its two example emails, for the report
    for cell in study.detector_cells("attributions"):
        per_dom = {}
        examples = {}
        n_dom = len(study.domains)
        tokens = None if is_cheap(cell.kind) else model_tokens(C.ModelCache.get(study, cell))
        cache: dict = {}  # each email's features, extracted once for all of this cell's tables
        with progress.step(f"attributions: {cell.name} on {n_dom} domains", total=n_dom) as up:
            for j, d in enumerate(study.domains, 1):
                atts = C.cell_domain_attributions(study, cell, d, opts)
                up(j, n_dom)
                if not atts:
                    continue
                ends = {rid: None if tokens is None else visible_end(tokens, a.text) for rid, a in atts.items()}
                ft = C.feature_table(list(atts.values()), ends=[ends[r] for r in atts], seed=seed, cache=cache,
                                     labels=[study.rows[r].label for r in atts], **agg)
                artifacts.write_parquet(out_dir / cell.name / f"{d}.parquet", ft.table)
                tables[(cell.name, d)] = ft
                samples[(cell.name, d)] = (atts, ends)
                per_dom[d] = {"n_emails": len(atts), "words_in_view": round(ft.words_in_view, 3),
                              "phishing": ft.top(+1), "legitimate": ft.top(-1)}
                examples[d] = _example(atts, study.rows)
        ins = [d for d in per_dom if d in cell.train_domains]
        outs = [d for d in per_dom if d not in cell.train_domains]
        # home: the cell's training domains pooled (a leave-one-out or generalist cell was read
        # against its first training domain alone); without any, the first domain explained
        home = (ins[0] if len(ins) == 1 else _pool_name(ins)) if ins else (next(iter(per_dom)) if per_dom else None)
        if len(ins) > 1:
            tables[(cell.name, home)] = _pooled(tables, samples, cell, ins, agg, seed, cache=cache)
            ft = tables[(cell.name, home)]
            per_dom_home = {"n_emails": ft.n_emails, "words_in_view": round(ft.words_in_view, 3),
                            "phishing": ft.top(+1), "legitimate": ft.top(-1)}
            examples[home] = max((examples[d] for d in ins if examples.get(d)), key=lambda e: e["margin"], default=None)
        elif home is not None:
            per_dom_home = per_dom[home]
        shifts = {d: _shift(tables[(cell.name, home)], tables[(cell.name, d)], home, seed) for d in outs} if ins else {}
        # within the training domains: does the cell key on other evidence in one of them than in the rest?
        # Its own line: it re-reads the other domains' emails once per domain (19 of a 24 s leave-one-out
        # cell of 12 domains, silent and left out of the cell's time)
        contrasts = {}
        if len(ins) > 1:
            with progress.step(f"attributions: {cell.name}, each training domain against the rest"):
                contrasts = {d: _shift(_pooled(tables, samples, cell, [x for x in ins if x != d], agg, seed, boots=0,
                                               cache=cache),
                                       tables[(cell.name, d)], _pool_name([x for x in ins if x != d]), seed)
                             for d in ins}
        summary["cells"][cell.name] = {"model": cell.model, "paradigm": cell.paradigm, "kind": cell.kind,
                                       "train_domains": cell.train_domains, "per_domain": per_dom, "shifts": shifts,
                                       "contrasts": contrasts,
                                       **({"home": {"domains": ins, **per_dom_home}} if len(ins) > 1 else {})}
        if not per_dom:
            continue
        in_home, of_home = _home_words(home, ins)
        top_home = ", ".join(f"'{f['feature']}'" for f in per_dom_home["phishing"][:5]) or "none"
        ov_txt = ""
        if shifts:
            ov = [s["phishing_overlap"] for s in shifts.values()]
            beyond = [d for d, s in shifts.items() if s["beyond_chance"]]
            tested = [s["shift_test"] for s in shifts.values() if s["shift_test"]]
            ov_txt = (f" Out of domain its top phishing features overlap {sum(ov) / len(ov):.0%} (mean Jaccard) with "
                      f"those in {in_home}")
            if tested:
                within = sorted({t["within_median"] for t in tested})
                sizes = sorted({t["emails"] for t in tested})
                ov_txt += (f"; two disjoint samples of {of_home} emails ({_span(sizes, '{}')} each, set against as "
                           f"many of the other domain's, with the same number of each label in every set) overlap "
                           f"{_span(within, '{:.0%}')} (median), so the "
                           + (f"shift is beyond chance in {len(beyond)} of {len(tested)} domains tested "
                              f"({', '.join(beyond)})." if beyond else
                              f"shift is beyond chance in none of the {len(tested)} domains tested."))
            else:
                ov_txt += ("; too few emails to tell a shift from chance (a test needs "
                           f"{agg['min_docs']} emails in each of two halves of {of_home} sample and in the other's).")
        if contrasts:
            called = [d for d, c in contrasts.items() if c["beyond_chance"]]
            ov_txt += (f" Within its training domains, its phishing evidence in {', '.join(called)} differs from "
                       f"that in the others beyond chance ({len(called)} of {len(contrasts)} domains)." if called else
                       f" Within its training domains, none's phishing evidence differs from the others' beyond "
                       f"chance ({len(contrasts)} tested).")
        view = per_dom_home.get("words_in_view", 1.0)
        view_txt = (f" {1 - view:.0%} of the words in {of_home} sample lie past the model's window and are not counted."
                    if view < 0.995 else "")
        miss = _worst_miss({d: samples[(cell.name, d)][0] for d in outs if d != home}, study.rows,
                           float(cell.threshold))
        if miss and examples.get(home):
            # with the cell's threshold: a margin of -0.81 is phishing for a cell whose threshold is -1.38
            t = f", threshold {float(cell.threshold):+.2f}"
            pairs[cell.name] = {f"most confident phishing at home ({home}, margin {examples[home]['margin']:+.2f}{t})":
                                examples[home],
                                f"lowest-scored phishing out of domain ({miss['domain']}, margin {miss['margin']:+.2f}{t}"
                                f"{', missed' if miss['missed'] else ''})": miss}
        findings.append(Finding(
            kind="top_features", severity="info",
            title=f"{describe_cell(cell)}: top phishing evidence in {in_home} is {top_home}",
            summary=(f"{C.method_label(cell.kind, opts['method'])} attributions over "
                     f"{sum(v['n_emails'] for v in per_dom.values())} held-out emails "
                     f"in {len(per_dom)} domains (frequency-aware word and phrase importance).{ov_txt}{view_txt}"),
            evidence={"cell": cell.name, "paradigm": cell.paradigm, "per_domain": per_dom, "shifts": shifts,
                      "contrasts": contrasts, "example": examples.get(home), "example_out_of_domain": miss},
            models=[cell.model], domains=ins or [home],
            example_ids=[x["id"] for x in (examples.get(home), miss) if x],
            score=0.0,
        ))
    with progress.step("attributions: cells compared on each domain"):
        summary["between_cells"] = _between_cells(study, tables, samples, agg, seed)
    artifacts.write_json(out_dir / "summary.json", summary)
    artifacts.write_json(out_dir / "section.json", _sections(summary, opts, pairs))
    return findings


def _home_words(home: str, ins: list[str]) -> tuple[str, str]:
    """How texts name the home: "in ..." and the possessive. A pool of more than _NAMED domains is
    counted (a leave-one-out cell of 12 domains listed 11 names in its title; the names are in the
    finding's `domains` and evidence)."""
    if len(ins) > _NAMED:
        return f"its {len(ins)} training domains", f"its {len(ins)} training domains'"
    return _in(home), _of(home)


def _in(home: str) -> str:
    return f"its {home}" if home.startswith("training domains (") else home


def _of(home: str) -> str:
    """The possessive: "personal's", "its training domains' (a, b)"."""
    if home.startswith("training domains ("):
        return "its training domains' (" + home[len("training domains ("):]
    return f"{home}'s"


def _pool_name(domains: list[str]) -> str:
    return domains[0] if len(domains) == 1 else "training domains (" + ", ".join(domains) + ")"


def _pooled(tables, samples, cell, domains: list[str], agg, seed, boots: int = C.BOOTSTRAP,
            cache: dict | None = None) -> C.FeatureTable:
    """One table over the emails of several domains the cell explained."""
    if len(domains) == 1:
        return tables[(cell.name, domains[0])]
    atts = [a for d in domains for a in samples[(cell.name, d)][0].values()]
    ends = [samples[(cell.name, d)][1][r] for d in domains for r in samples[(cell.name, d)][0]]
    labels = [tables[(cell.name, d)].labels for d in domains]
    return C.feature_table(atts, ends=ends, seed=seed, boots=boots, cache=cache, **agg,
                           labels=None if any(x is None for x in labels) else np.concatenate(labels))


def _shift(home: C.FeatureTable, other: C.FeatureTable, home_name: str, seed: int) -> dict[str, Any]:
    """How a cell's phishing evidence on `other` differs from that on `home`: overlap of the top
    lists, the halves test, and the features each side holds more."""
    diff = C.compare(home.table, other.table, k=5)
    test = C.shift_test(home, other, seed=seed)
    return {"vs": home_name, "phishing_overlap": round(C.overlap(home.top(+1), other.top(+1)), 3),
            # halves of the home emails against each other (chance) and against the other domain
            "shift_test": test, "beyond_chance": bool(test and test["beyond_chance"]),
            "differences": {"more_in_home": diff["phishing_more_in_a"],
                            "more_in_this_domain": diff["phishing_more_in_b"],
                            "legitimate_more_in_home": diff["legitimate_more_in_a"],
                            "legitimate_more_in_this_domain": diff["legitimate_more_in_b"],
                            "only_in_home": diff["only_in_a"], "only_in_this_domain": diff["only_in_b"]}}


_COMPARED = {"models": "two models", "paradigms": "against the generalist"}


def _compared(cells) -> list[tuple[Any, Any, str]]:
    """The cell pairs set side by side on a domain: two models trained the same way ("models", how
    the models differ), and each of a model's cells against that model's generalist ("paradigms",
    what the mix changed). Every pair of one model's cells had been compared: that grew with the
    square of the cells (3,600 comparisons and 9 MB at 12 domains with leave-one-out), mostly two
    leave-one-out cells a domain apart."""
    out = []
    for i, a in enumerate(cells):
        for b in cells[i + 1:]:
            if a.paradigm == b.paradigm and a.model != b.model:
                out.append((a, b, "models"))
            elif a.model == b.model and "generalist" in (a.paradigm, b.paradigm):
                out.append((b, a, "paradigms") if a.paradigm == "generalist" else (a, b, "paradigms"))
    return out


def _between_cells(study, tables, samples, agg, seed) -> dict[str, Any]:
    """The same domain seen by two cells (`_compared`), on the emails both explained; where the
    models differ, importances are in units of each cell's typical attributed margin (a tf-idf
    margin and an LLM's are on different scales). `by_domain`: every comparison; `pairs`: one line
    per pair of cells over the domains, with the domain where their top phishing features overlap
    least (the report's table)."""
    by_domain: dict[str, dict] = {}
    pairs = []
    cells = [c for c in study.cells if any((c.name, d) in tables for d in study.domains)]
    for a, b, what in _compared(cells):
        per = {}
        for d in study.domains:
            if (a.name, d) not in tables or (b.name, d) not in tables:
                continue
            ta, tb = (_restricted(tables, samples, c, d, b if c is a else a, agg, seed) for c in (a, b))
            if ta is None or tb is None:
                continue
            scaled = a.model != b.model
            per[d] = {"emails": ta.n_emails, "scaled": scaled,
                      "phishing_overlap": round(C.overlap(ta.top(+1), tb.top(+1)), 3),
                      **C.compare(ta.table, tb.table, k=5, scale_a=ta.scale if scaled else 1.0,
                                  scale_b=tb.scale if scaled else 1.0)}
            by_domain.setdefault(d, {})[f"{a.name} vs {b.name}"] = per[d]
        if per:
            ov = [v["phishing_overlap"] for v in per.values()]
            lows = [d for d in per if per[d]["phishing_overlap"] == min(ov)]
            least = lows[0]  # its differences are shown; the domains tied with it are named
            pairs.append({"compared": what, "a": a.name, "b": b.name, "domains": len(per),
                          "overlap_mean": round(sum(ov) / len(ov), 3), "overlap_min": min(ov),
                          "overlap_max": max(ov), "least_alike": least, "tied_with": lows[1:],
                          "emails": per[least]["emails"],
                          "phishing_more_in_a": per[least]["phishing_more_in_a"],
                          "phishing_more_in_b": per[least]["phishing_more_in_b"],
                          "only_in_a": per[least]["only_in_a"], "only_in_b": per[least]["only_in_b"]})
    pairs.sort(key=lambda p: p["compared"] != "models")  # stable: the study's cell order within each
    return {"by_domain": by_domain, "pairs": pairs}


def _restricted(tables, samples, cell, d, other, agg, seed) -> C.FeatureTable | None:
    """`cell`'s table on `d` over only the emails `other` explained too (the smaller sample of a
    neural cell is part of a tf-idf cell's, both drawn by the same seeded order)."""
    atts, ends = samples[(cell.name, d)]
    common = sorted(set(atts) & set(samples[(other.name, d)][0]))
    if len(common) < agg["min_docs"]:
        return None
    if len(common) == len(atts):
        return tables[(cell.name, d)]
    own = tables[(cell.name, d)].labels
    order = {r: i for i, r in enumerate(atts)}
    return C.feature_table([atts[r] for r in common], ends=[ends[r] for r in common], boots=0, seed=seed, **agg,
                           labels=None if own is None else own[[order[r] for r in common]])


def _sections(summary: dict, opts: dict, pairs: dict) -> list[dict[str, Any]]:
    tops, shifts = [], []
    for name, c in summary["cells"].items():
        for d, v in c["per_domain"].items():
            view = v.get("words_in_view", 1.0)
            tops.append([name, d, "yes" if d in c["train_domains"] else "no", v["n_emails"],
                         f"{view:.0%}", _fmt_features(v["phishing"]), _fmt_features(v["legitimate"])])
        for d, s in [*c["shifts"].items(), *(c.get("contrasts") or {}).items()]:
            ch = s["shift_test"] or {}
            diff = s["differences"]
            shifts.append([name, s["vs"], d, f"{s['phishing_overlap']:.0%}",
                           f"{ch['across_median']:.0%} vs {ch['within_median']:.0%} (5th pct {ch['within_p05']:.0%}), "
                           f"{ch['emails']} emails" if ch else "too few emails",
                           "yes" if s["beyond_chance"] else "no", _names(diff["more_in_home"]),
                           _names(diff["more_in_this_domain"]), _signed(diff["only_in_home"])])
    return [
        {"id": "corpus-attributions", "title": "Corpus-level attributions: top features per cell and test domain",
         "caption": (f"Each cell's attributions ({C.method_label('causal-lm', opts['method']).lower()}"
                     + (", occlusion for TF-IDF cells" if opts["method"] == "relevance" else "")
                     + ") over a domain's held-out emails (a label-balanced sample "
                     f"where the domain has more than {opts['emails_per_domain_llm']} for neural cells, "
                     f"{opts['emails_per_domain']} for TF-IDF), aggregated per word or phrase: importance = mean weight × "
                     "log(1 + emails it occurs in), so a feature the cell leans on in many emails outranks a one-off. "
                     "Each feature reads 'importance (emails, stability)': stability is the share of 200 resamples "
                     "of the emails in which it stays in the top list. A two-word phrase is listed only when both "
                     "words carry its weight, and a feature whose occurrences a stronger one already holds is "
                     "folded into it. 'words in view': the share of the sample's words inside the model's window "
                     "(the rest are not counted). 'in domain': the cell trained on that domain."),
         "table": {"columns": ["cell", "test domain", "in domain", "emails", "words in view",
                               "top toward phishing", "top toward legitimate"], "rows": tops}},
        {"id": "corpus-attribution-shifts", "title": "How each cell's phishing evidence shifts out of its training domain",
         "caption": ("Overlap: Jaccard of the top phishing features at home and in the other domain. Halves: over 100 "
                     "draws, the median overlap of half the home emails with as many of the other domain's, against "
                     "the overlap of two disjoint halves of the home emails (what chance gives at that size); a shift is "
                     "beyond chance when the first lies below the 5th percentile of the second. The feature columns compare only features both samples "
                     "hold in enough emails; 'only at home' lists strong home features the other domain's sample "
                     "lacks, with their importance (+ toward phishing, - toward legitimate): a vocabulary "
                     "difference, not a change in how the model uses them."),
         "table": {"columns": ["cell", "home", "test domain", "overlap", "halves: across vs within", "beyond chance",
                               "stronger toward phishing at home", "stronger toward phishing here", "only at home"],
                   "rows": shifts}},
        *_between_section(summary["between_cells"].get("pairs", [])),
        {"id": "corpus-attribution-examples", "title": "Attributions, email by email: home and out of domain",
         "caption": ("For each cell, the phishing email of its training domain it scores most confidently, beside the "
                     "out-of-domain phishing email it scores lowest, both with their word attributions on one colour "
                     "scale: what the cell keys on at home, and whether the other email has it."),
         "evidence": pairs},
    ]


def _between_section(pairs: list[dict]) -> list[dict[str, Any]]:
    """The cell-against-cell table; none where nothing was compared (one model without a generalist)."""
    if not pairs:
        return []
    kinds = {p["compared"] for p in pairs}
    title = {frozenset({"models"}): "How the models differ on the same emails",
             frozenset({"paradigms"}): "What the generalist's mix changed, on the same emails"}.get(
        frozenset(kinds), "How the models differ, and what the generalist's mix changed, on the same emails")
    who = " and ".join(w for k, w in (("models", "two models trained the same way"),
                                      ("paradigms", "each cell against its model's generalist")) if k in kinds)
    return [{"id": "corpus-attribution-between-cells", "title": title,
             "caption": (f"Two cells on the same held-out emails of each domain: {who}, among the cells the "
                         "attributions detector explained (`cells_per_model`). Overlap: Jaccard of the two top "
                         "phishing lists on each domain; the mean over the domains compared, then the lowest and "
                         "highest (not an interval). 'Least alike on': the domain of the lowest overlap (others "
                         "tied with it in brackets) and its sample; on a few emails an overlap varies a lot by "
                         "chance (the shift table above tests that for each cell), so read it as where to look. "
                         "There, each feature reads 'A's importance | B's' (positive: toward phishing"
                         + ("; between models, in units of each cell's typical attributed margin"
                            if "models" in kinds else "")
                         + "): 'more toward phishing for A' lists features A weighs toward phishing more than B "
                         "does (B may weigh them toward legitimate), among features both hold in enough emails; "
                         "'only A lists' are strong features, of either sign, that B's sample lacks. Every "
                         "domain's comparison: diagnostics/attributions/summary.json, key between_cells."),
             "table": {"columns": ["compared", "cell A", "cell B", "domains compared",
                                   "top phishing overlap: mean (lowest–highest)", "least alike on",
                                   "more toward phishing for A", "more toward phishing for B", "only A lists",
                                   "only B lists"],
                       "rows": [[_COMPARED[p["compared"]], p["a"], p["b"], p["domains"],
                                 f"{p['overlap_mean']:.0%} ({p['overlap_min']:.0%}–{p['overlap_max']:.0%})",
                                 p["least_alike"] + (f" (also {', '.join(p['tied_with'])})" if p.get("tied_with")
                                                     else "") + f": {p['emails']} emails",
                                 _pair_values(p["phishing_more_in_a"]), _pair_values(p["phishing_more_in_b"]),
                                 _signed(p["only_in_a"]), _signed(p["only_in_b"])]
                                for p in pairs]}}]


def _pair_values(rows: list[dict], n: int = 4) -> str:
    """'are (+0.01 | -0.55)': both cells' importance, so a feature listed for A because B pushes it
    toward legitimate does not read as one A relies on."""
    return ", ".join(f"{r['feature']} ({_v(r['importance_a'])} | {_v(r['importance_b'])})" for r in rows[:n]) or "none"


def _signed(rows: list[dict], n: int = 4) -> str:
    return ", ".join(f"{r['feature']} ({_v(r['importance'])})" for r in rows[:n]) or "none"


def _v(x: float) -> str:
    return f"{round(x, 2) + 0.0:+.2f}"  # + 0.0: no '-0.00'
