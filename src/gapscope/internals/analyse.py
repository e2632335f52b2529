"""Every internals analysis of one cell, strung together over one activation cache.

    rows      the cell's training rows per training domain (probe / label-direction
              fits) and every domain's held-out rows, sampled per class and capped
    cache     one hooked full forward per row (activation_cache), reused below and on reruns
    probes    per training domain: in-domain and cross-domain probe AUROC per layer
    direction label vs domain direction per layer (domain_direction)
    lens      logit lens per layer, in- vs out-of-domain, correct vs wrong (logit_lens)
    similarity domain separation per layer; CKA of the fine-tuned model vs its base
    attention answer-position attention to token classes, in- vs out-of-domain; for each
              suspected shortcut string: fine-tuned vs base, and vs its neutral minimal pair
    patching  shortcut minimal pairs (string -> same-length neutral filler) and mis-scored
              out-of-domain emails patched from correctly scored in-domain ones

`analyse_cell` returns a JSON-able dict; findings and plots are built from it by
gapscope.detectors.internals, so the numbers in the report come from here.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from gapscope import option_rules as R
from gapscope.internals import patching as P
from gapscope.internals.activation_cache import ActivationCache, Activations, frozen_split, row_key
from gapscope.internals.attention import AttentionUnavailable, attention_stats, class_profile, top_heads
from gapscope.internals.domain_direction import analyse_layer
from gapscope.internals.logit_lens import lens_margins, lens_summary, overwrite_crossfit
from gapscope.internals.probes import auroc, probe_curves
from gapscope.internals.similarity import linear_cka, separation
from gapscope.internals.token_classes import CLASSES, token_classes
from gapscope.internals.view import Item, ModelView, view_for


@dataclass
class InternalsOptions:
    cells: str = "specialist"  # "specialist" (specialist cells only) | "all" neural cells
    # cells per model, largest gap first (0: every cell); None: the study's [detectors] cells_per_model
    cells_per_model: int | None = None
    max_train: int = 96  # probe / label-direction rows per training domain of a cell
    max_test_per_domain: int = 60  # held-out rows per domain
    max_train_domains: int = 3  # probes fitted per cell (one per training domain)
    layers: int = 16  # cached layers analysed by probes/direction/similarity (evenly spaced; 0 = all)
    probe_C: float = 0.5
    oracle: bool = True  # within-domain cross-validated probes (is the label there at all?)
    attention_examples: int = 12  # per domain, for the token-class profile
    shortcut_examples: int = 12  # emails carrying a suspected string
    max_strings: int = 3
    patch_pairs: int = 3  # shortcut minimal pairs patched per suspected string
    error_pairs: int = 3  # mis-scored out-of-domain emails patched from correctly scored in-domain ones
    patch_layers: int = 8  # resid_post layers patched (evenly spaced, last included) + embed
    min_gap: float = 0.5  # |clean - corrupted| margin below which a pair is not normalised
    base_compare: bool = True  # fine-tuned vs base: attention and CKA
    base_examples: int = 24  # per domain, for CKA (0: no CKA; base attention is still compared)
    seed: int = 0

    RULES: ClassVar[dict] = {
        "cells": R.one_of("specialist", "all"), "cells_per_model": R.whole(0, none_ok=True), "max_train": R.whole(2),
        "max_test_per_domain": R.whole(1), "max_train_domains": R.whole(1), "layers": R.whole(0),
        "probe_C": R.number(0, lo_open=True), "oracle": R.flag(), "attention_examples": R.whole(1),
        "shortcut_examples": R.whole(1), "max_strings": R.whole(0), "patch_pairs": R.whole(0), "error_pairs": R.whole(0),
        "patch_layers": R.whole(0), "min_gap": R.number(0), "base_compare": R.flag(), "base_examples": R.whole(0),
        "seed": R.whole(0)}

    def __post_init__(self):
        R.check_fields(self, self.RULES, "[detectors.internals]")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "InternalsOptions":
        known = {f.name for f in fields(cls)}
        d = dict(d or {})
        unknown = sorted(set(d) - known - {"enabled"})
        if unknown:
            from gapscope.errors import GapscopeError

            from gapscope.suggest import with_hints

            raise GapscopeError(f"[detectors.internals]: unknown option(s) {with_hints(unknown, known)} "
                                f"(known: {', '.join(sorted(known))})")
        cpm = d.get("cells_per_model")
        if cpm is not None and (not isinstance(cpm, int) or isinstance(cpm, bool) or cpm < 0):
            from gapscope.errors import GapscopeError

            raise GapscopeError(f"[detectors.internals] cells_per_model must be 0 (every cell) or more, got {cpm!r}")
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Selected:
    train: dict[str, list]  # training domain -> rows
    test: dict[str, list]  # domain -> held-out rows


def _rng(seed: int, *parts: str) -> np.random.Generator:
    h = hashlib.blake2b(":".join([str(seed), *parts]).encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(h, "little"))


def sample_rows(rows: Sequence, k: int, rng: np.random.Generator) -> list:
    """Up to k rows, half per class where possible, in a seeded order independent of input order."""
    rows = sorted(rows, key=lambda r: r.id)
    if k <= 0 or len(rows) <= k:
        return rows
    by = {c: [r for r in rows if r.label == c] for c in (0, 1)}
    for c in by:
        by[c] = [by[c][i] for i in rng.permutation(len(by[c]))]
    half = k // 2
    take0 = min(len(by[0]), max(half, k - len(by[1])))
    take1 = min(len(by[1]), k - take0)
    return sorted(by[0][:take0] + by[1][:take1], key=lambda r: r.id)


def select_rows(study, cell, o: InternalsOptions) -> Selected:
    train_rows = study.train_rows(cell)
    train = {}
    for d in cell.train_domains[: o.max_train_domains]:
        train[d] = sample_rows([r for r in train_rows if r.domain == d], o.max_train, _rng(o.seed, cell.name, d))
    test = {d: sample_rows(study.test_rows(d), o.max_test_per_domain, _rng(o.seed, "test", d))
            for d in study.domains}
    return Selected(train, {d: v for d, v in test.items() if v})


def layer_subset(n_cached: int, k: int) -> list[int]:
    if k <= 0 or n_cached <= k:
        return list(range(n_cached))
    return sorted(set(np.linspace(0, n_cached - 1, k).round().astype(int).tolist()))


def _round(x, nd=4):
    if isinstance(x, float):
        return round(x, nd) if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _round(v, nd) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v, nd) for v in x]
    if isinstance(x, np.generic):
        return _round(x.item(), nd)
    return x


class _Timer:
    """Wall-clock seconds per step, plus CPU seconds (process time: on a shared machine the
    wall clock measures the neighbours too)."""

    def __init__(self):
        self.t: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def __call__(self, name: str):
        timer = self

        class _C:
            def __enter__(self):
                self.t0, self.c0 = time.perf_counter(), time.process_time()

            def __exit__(self, *a):
                timer.t[name] = timer.t.get(name, 0.0) + time.perf_counter() - self.t0
                timer.cpu[name] = timer.cpu.get(name, 0.0) + time.process_time() - self.c0
        return _C()


def analyse_cell(study, cell, o: InternalsOptions, strings: Sequence[dict] = (), model=None) -> dict[str, Any]:
    """All analyses of one neural cell. `strings`: suspected shortcut strings
    [{"string", "domain", "source"}]. `model`: an already loaded model (else study.load_model)."""
    timer = _Timer()
    own = model is None
    with timer("load"):
        model = study.load_model(cell) if own else model
    try:
        view = view_for(model)
        return _analyse(study, cell, o, strings, view, timer)
    finally:
        if own:
            model.close()


def _shared_lower(study, cell, view: ModelView) -> ActivationCache | None:
    """The cache of the layers every cell of this model shares with its base (frozen below
    the LoRA layers), one file per model; None when the model has no frozen bottom."""
    split = frozen_split(view)
    if split <= 0:
        return None
    fp = hashlib.blake2b(f"{study.model_spec(cell.model)}|{view.kind}|lower{split}".encode(),
                         digest_size=10).hexdigest()
    return ActivationCache(study.artifact_dir("internals") / "cache" / f"{cell.model}__lower.safetensors", fp)


def _analyse(study, cell, o, strings, view: ModelView, timer: _Timer) -> dict[str, Any]:
    sel = select_rows(study, cell, o)
    rows = [r for d in sel.train for r in sel.train[d]] + [r for d in sel.test for r in sel.test[d]]
    keys = [row_key(r.id, r.text) for r in rows]
    fp = hashlib.blake2b(f"{cell.meta.get('fingerprint')}|{view.kind}".encode(), digest_size=10).hexdigest()
    lower = _shared_lower(study, cell, view)
    cache = ActivationCache(study.artifact_dir("internals") / "cache" / f"{cell.name}.safetensors", fp, lower)
    with timer("cache"):
        acts = cache.get(view, keys, [r.text for r in rows])
    pos = {k: i for i, k in enumerate(keys)}
    L = view.n_layers
    layers = layer_subset(L + 1, o.layers)
    site = view.readout_site
    threshold = float(cell.threshold)

    def part(rs) -> tuple[Activations, np.ndarray]:
        a = acts.take([pos[row_key(r.id, r.text)] for r in rs])
        return a, np.asarray([r.label for r in rs], dtype=int)

    test_parts = {d: part(rs) for d, rs in sel.test.items()}
    out: dict[str, Any] = {
        "cell": cell.name, "model": cell.model, "paradigm": cell.paradigm, "kind": view.kind,
        "train_domains": list(cell.train_domains), "n_layers": L, "layers": layers, "site": site,
        "threshold": threshold, "n_rows": len(rows), "cache": {"computed": cache.n_computed,
                                                                "seconds": round(cache.seconds_computing, 2)},
    }
    out["model_auroc"] = {d: auroc(y, a.margin) for d, (a, y) in test_parts.items()}
    out["matrix_auroc"] = {e["test_domain"]: e.get("auroc") for e in study.matrix
                           if e.get("model") == cell.model and e.get("paradigm") == cell.paradigm}
    out["matrix_auroc_ci"] = {e["test_domain"]: e.get("auroc_ci") for e in study.matrix
                              if e.get("model") == cell.model and e.get("paradigm") == cell.paradigm}
    out["n_test"] = {d: len(y) for d, (_, y) in test_parts.items()}
    all_m = np.concatenate([a.margin for a, _ in test_parts.values()]) if test_parts else np.zeros(0)
    out["margin_scale"] = float(np.median(np.abs(all_m - threshold))) if len(all_m) else None

    # -- probes ----------------------------------------------------------------------
    with timer("probes"):
        tests = {d: (a.site(site), y) for d, (a, y) in test_parts.items()}
        margins = {d: a.margin for d, (a, _) in test_parts.items()}
        # probe-versus-model comparisons this cell makes: Bonferroni over them, one-sided 2.5%
        k = len(sel.train) * sum(1 for d in test_parts if d not in cell.train_domains)
        out["probes"] = []
        for d, rs in sel.train.items():
            a, y = part(rs)
            out["probes"].append(probe_curves(a.site(site), y, tests, layers, d, C=o.probe_C, oracle=o.oracle,
                                              seed=o.seed, model_scores=margins,
                                              alpha=0.025 / max(k, 1)).to_dict())

    # -- domain direction --------------------------------------------------------------
    with timer("direction"):
        all_train = [r for rs in sel.train.values() for r in rs]
        tr_a, tr_y = part(all_train)
        te_rows = [r for rs in sel.test.values() for r in rs]
        te_a, te_y = part(te_rows)
        te_dom = np.asarray([r.domain for r in te_rows])
        tr_dom = np.asarray([r.domain for r in all_train])
        direction = {}
        if len(set(te_dom.tolist())) > 1:
            for target in list(sel.train)[:o.max_train_domains]:
                res = []
                for l in layers:
                    res.append(analyse_layer(l, tr_a.layer(site, l), tr_y, te_a.layer(site, l), te_y, te_dom,
                                             target, decode=(l in (layers[len(layers) // 2], layers[-1])),
                                             seed=o.seed, train_dom=tr_dom).to_dict())
                direction[target] = res
        out["direction"] = direction

    # -- logit lens ----------------------------------------------------------------------
    with timer("lens"):
        lens = lens_margins(view, te_a)
        in_dom = np.isin(te_dom, list(cell.train_domains))
        correct = (te_a.margin > threshold).astype(int) == te_y
        summ = lens_summary(lens, te_y, in_dom, correct)
        summ["overwrite"] = overwrite_crossfit(lens[~in_dom], te_y[~in_dom], seed=o.seed) if (~in_dom).any() else None
        summ["final_vs_margin"] = float(np.abs(lens[:, -1] - te_a.margin).max()) if len(te_y) else None
        out["lens"] = summ

    # -- similarity ------------------------------------------------------------------------
    with timer("similarity"):
        sep: dict[str, list] = {}
        for l in layers:
            for pair, v in separation(te_a.layer(site, l), te_y, te_dom).items():
                sep.setdefault(pair, []).append(v)
        out["similarity"] = {"separation": sep, "cka_base": {}}
    if o.base_compare and view.has_base and o.base_examples > 0:
        with timer("base_cache"):
            base_rows = []
            for d, rs in sel.test.items():
                base_rows += sample_rows(rs, o.base_examples, _rng(o.seed, "base", d))
            bkeys = [row_key(r.id, r.text) for r in base_rows]
            bfp = hashlib.blake2b(f"{study.model_spec(cell.model)}|{view.kind}|base".encode(),
                                  digest_size=10).hexdigest()
            bcache = ActivationCache(study.artifact_dir("internals") / "cache" / f"{cell.model}__base.safetensors",
                                     bfp, lower)
            with view.as_base():
                b_acts = bcache.get(view, bkeys, [r.text for r in base_rows])
        with timer("similarity"):
            t_acts = acts.take([pos[k] for k in bkeys])
            bdom = np.asarray([r.domain for r in base_rows])
            cka = {}
            for d in sorted(set(bdom.tolist())):
                m = bdom == d
                cka[d] = [linear_cka(t_acts.layer(site, l)[m], b_acts.layer(site, l)[m]) for l in layers]
            out["similarity"]["cka_base"] = cka

    # -- attention -----------------------------------------------------------------------
    with timer("attention"):
        try:
            out["attention"] = _attention(view, cell, o, sel, strings)
        except AttentionUnavailable as e:  # probes, lens and patching do not need it
            out["attention"] = {"classes": list(CLASSES), "profile": {}, "strings": [], "unavailable": str(e)}
    # -- patching ------------------------------------------------------------------------
    with timer("patching"):
        out["patching"] = _patching(view, cell, o, sel, strings, acts, pos, threshold)

    t = timer.t
    out["timings"] = {k: round(v, 2) for k, v in t.items()}
    out["timings"]["analysis_after_cache"] = round(sum(v for k, v in t.items() if k not in ("load", "cache")), 2)
    out["cpu_seconds"] = {k: round(v, 2) for k, v in timer.cpu.items()}
    out["cpu_seconds"]["analysis_after_cache"] = round(
        sum(v for k, v in timer.cpu.items() if k not in ("load", "cache")), 2)
    return _round(out)


def _string_items(view: ModelView, rows: Sequence, s: str, k: int
                  ) -> tuple[list[tuple[Any, Item, list[int]]], int, int]:
    """Up to k rows whose tokens (after truncation) contain the string: (row, item, positions), how
    many rows carry the string in their text (when none is found, all of those were read), and how
    many of those read could not be located: a tokenizer without character offsets maps no span to
    tokens, and such a string was reported out of view while it sat in the first tokens."""
    from gapscope.internals.token_classes import phrase_pattern

    pat = phrase_pattern(s)
    cand = [r for r in rows if pat.search(r.text)]
    out, unlocated = [], 0
    for r in cand:
        (it,) = view.encode([r.text])
        if it.offsets is None:
            unlocated += 1
            continue
        p = token_classes(it, [s])["shortcut"]
        if p:
            out.append((r, it, p))
        if len(out) >= k:
            break
    return out, len(cand), unlocated


def _profile_dict(prof: dict) -> dict:
    return {c: {k: v for k, v in p.items()} for c, p in prof.items()}


def _attention(view: ModelView, cell, o: InternalsOptions, sel: Selected, strings: Sequence[dict]) -> dict:
    res: dict[str, Any] = {"classes": list(CLASSES), "profile": {}, "strings": []}
    all_strings = [s["string"] for s in strings]
    rows, groups = [], []
    for d, rs in sel.test.items():
        take = sample_rows(rs, o.attention_examples, _rng(o.seed, "attn", d))
        rows += take
        groups += ["in-domain" if d in cell.train_domains else "out-of-domain"] * len(take)
    if rows:
        items = view.encode([r.text for r in rows])
        classes = [token_classes(it, all_strings) for it in items]
        st = attention_stats(view, items, classes, CLASSES)
        g = np.asarray(groups)
        for name in ("in-domain", "out-of-domain"):
            if (g == name).any():
                res["profile"][name] = _profile_dict(class_profile(st, g == name))
    pool = [r for rs in sel.test.values() for r in rs] + [r for rs in sel.train.values() for r in rs]
    for s in strings[: o.max_strings]:
        found, carriers, unlocated = _string_items(view, pool, s["string"], o.shortcut_examples)
        entry: dict[str, Any] = {"string": s["string"], "domain": s.get("domain"), "source": s.get("source"),
                                 "n": len(found), "carriers": carriers, "unlocated": unlocated,
                                 "example_ids": [r.id for r, _, _ in found],
                                 "max_length": getattr(getattr(view.model, "opts", None), "max_length", None)}
        if found:
            items = [it for _, it, _ in found]
            cls = [{"shortcut": p} for _, _, p in found]
            neutral = [P.neutral_variant(view, it, p) for _, it, p in found]
            tuned = attention_stats(view, items, cls, ["shortcut"])
            control = attention_stats(view, neutral, cls, ["shortcut"])
            ms = tuned.mean_share("shortcut")
            ctrl = control.mean_share("shortcut")
            # Heads ranked by attention to the string beyond what the same positions get when they
            # hold neutral tokens: a positional head (e.g. one that always looks at the email's
            # end) is not attending to the string, however large its share.
            heads = [(l, h, float(ms[l, h])) for l, h, _ in top_heads(ms - ctrl, 3)]
            entry.update({"frac": tuned.mean_frac("shortcut"), "tuned_by_layer": np.nanmean(ms, 1).tolist(),
                          "tuned_by_layer_max": np.nanmax(ms, 1).tolist(),
                          "control_by_layer": np.nanmean(ctrl, 1).tolist(),
                          "top_heads": [{"layer": l, "head": h, "tuned": v, "control": float(ctrl[l, h])}
                                        for l, h, v in heads]})
            if o.base_compare and view.has_base:
                with view.as_base():
                    b_stats = attention_stats(view, items, cls, ["shortcut"])
                base = b_stats.mean_share("shortcut")
                entry["base_by_layer"] = np.nanmean(base, 1).tolist()
                entry["base_by_layer_max"] = np.nanmax(base, 1).tolist()
                for th in entry["top_heads"]:
                    th["base"] = float(base[th["layer"], th["head"]])
                entry["max_gain_head"] = _gain_head(tuned.share[..., 0], b_stats.share[..., 0], control.share[..., 0])
        res["strings"].append(entry)
    return res


def _gain_head(tuned: np.ndarray, base: np.ndarray, control: np.ndarray) -> dict:
    """The head whose attention to the string rose most with fine-tuning. Chosen on the even
    examples and measured on the odd ones as well (`heldout_*`), so the rise reported is not
    just the largest of many noisy differences."""
    def pick(idx):
        g = np.nan_to_num(tuned[idx].mean(0) - base[idx].mean(0), nan=-1.0)
        return np.unravel_index(int(np.argmax(g)), g.shape)

    n = tuned.shape[0]
    l, h = pick(np.arange(n))
    out = {"layer": int(l), "head": int(h), "tuned": float(tuned[:, l, h].mean()), "base": float(base[:, l, h].mean()),
           "control": float(control[:, l, h].mean()), "n": int(n)}
    if n >= 4:
        even, odd = np.arange(0, n, 2), np.arange(1, n, 2)
        l2, h2 = pick(even)
        out.update({"heldout_head": f"{int(l2)}.{int(h2)}", "heldout_tuned": float(tuned[odd, l2, h2].mean()),
                    "heldout_base": float(base[odd, l2, h2].mean()),
                    "heldout_control": float(control[odd, l2, h2].mean())})
    return out


def _patch_layers(L: int, k: int) -> list[int]:
    idx = layer_subset(L, k) if k > 0 else list(range(L))
    return [-1] + idx


def _patching(view: ModelView, cell, o: InternalsOptions, sel: Selected, strings: Sequence[dict],
              acts: Activations, pos: dict, threshold: float) -> dict:
    layers = _patch_layers(view.n_layers, o.patch_layers)
    res: dict[str, Any] = {"layers": layers, "shortcut": [], "errors": []}
    pool = [r for rs in sel.test.values() for r in rs] + [r for rs in sel.train.values() for r in rs]
    # (a) shortcut minimal pairs: the email with the string (clean) vs the string replaced by as
    # many neutral tokens (corrupted); pairs whose margins barely differ are not normalisable.
    for s in strings[: o.max_strings]:
        found, _, _ = _string_items(view, pool, s["string"], o.shortcut_examples)
        if not found:
            continue
        items = [it for _, it, _ in found]
        neutral = [P.neutral_variant(view, it, p) for _, it, p in found]
        clean = view.margins(items)
        corr = view.margins(neutral)
        gaps = clean - corr
        entry: dict[str, Any] = {"string": s["string"], "n": len(found), "mean_gap": float(np.mean(gaps)),
                                 "gaps": gaps.tolist(), "flips": int(((clean > threshold) != (corr > threshold)).sum()),
                                 "pairs": []}
        order = [i for i in np.argsort(-np.abs(gaps)) if abs(gaps[i]) >= o.min_gap][: o.patch_pairs]
        for i in order:
            r = P.sweep(view, items[i], neutral[i], layers, marked=found[i][2], substitution=True)
            d = r.to_dict()
            d["id"] = found[i][0].id
            entry["pairs"].append(d)
        res["shortcut"].append(entry)
    # (b) mis-scored out-of-domain emails patched from a correctly scored in-domain email of the
    # same label (positions aligned: prompt, answer cue, shared email tokens).
    in_rows = [r for d, rs in sel.test.items() if d in cell.train_domains for r in rs]
    out_rows = [r for d, rs in sel.test.items() if d not in cell.train_domains for r in rs]

    def margin(r):
        return float(acts.margin[pos[row_key(r.id, r.text)]])

    def ok(r):
        return (margin(r) > threshold) == bool(r.label)

    wrong = sorted([r for r in out_rows if not ok(r)], key=lambda r: -abs(margin(r) - threshold))
    right = [r for r in in_rows if ok(r)]
    used = 0
    for tgt in wrong:
        if used >= o.error_pairs:
            break
        cands = [r for r in right if r.label == tgt.label]
        if not cands:
            continue
        (t_it,) = view.encode([tgt.text])
        src = min(cands, key=lambda r: (abs(len(view.encode([r.text])[0]) - len(t_it)), r.id))
        (s_it,) = view.encode([src.text])
        r = P.sweep(view, s_it, t_it, layers)
        if abs(r.gap) < o.min_gap:
            continue
        d = r.to_dict()
        d.update({"id": tgt.id, "source_id": src.id, "label": int(tgt.label)})
        res["errors"].append(d)
        used += 1
    return res
