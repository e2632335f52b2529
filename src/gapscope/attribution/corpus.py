"""Corpus-level attributions: what a cell keys on, per test domain, over many emails.

For one cell x test domain, a bounded, label-balanced sample of the domain's held-out
emails (the same emails for every cell, so cells are compared on identical inputs) is
explained with the fast method (occlusion), and the per-word weights are aggregated:

  feature      a lower-cased word (URLs, addresses, numbers and HTML tags collapsed to
               <url>, <email>, <num>, <html-tag>) or an n-gram of consecutive words; an
               n-gram occurrence weighs the sum of its words' weights. Only words inside
               the model's window count (a causal LM cut at 96 tokens never saw the rest)
  n            occurrences in the sample;  docs: emails it occurs in
  mean         mean weight per occurrence (> 0 toward phishing)
  importance   mean * log(1 + docs): frequency-aware, so a word seen once with a large
               weight does not outrank one the model leans on in every email; features
               seen in fewer than `min_docs` emails are dropped
  phrase       an n-gram each of whose words carries its share of the weight (else it is
               its strongest word renamed, and is not listed)
  covered_by   the stronger listed feature that already holds most of its occurrences
               (the bigrams of one footer line fold into one entry), so one piece of
               evidence is not listed again under the names of its parts
  stability    share of bootstrap resamples of the emails in which it stays in the top k

Cost: a neural cell scores one batch of ~max_evals+2 texts per email, so the sample is
small for them (default 16 per domain) and larger for tf-idf (default 200).

Attributions are cached per cell (keyed by the cell's fingerprint and the method's
settings) under diagnostics/attributions/store/, so every detector that needs the same
email's attribution (shortcuts, minimal pairs, the report) reuses it.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gapscope import option_rules as R
from gapscope.attribution.base import Attribution, Attributor, default_occlusion_options, get_method, is_cheap
from gapscope.attribution.words import display_key, feature_key, is_wordlike, split_words

DEFAULTS = {
    "method": "occlusion",
    "emails_per_domain": 200,      # tf-idf cells
    "emails_per_domain_llm": 16,   # neural cells (causal-lm, encoder)
    "max_evals_llm": 20,           # occlusion spans per email for neural cells
    "ngram_max": 2,
    "min_docs": 3,
    "top_k": 10,
}
RULES = {"method": R.one_of("occlusion", "relevance", "shap"), "emails_per_domain": R.whole(1),
         "emails_per_domain_llm": R.whole(1), "max_evals_llm": R.whole(1), "ngram_max": R.whole(1),
         "min_docs": R.whole(1), "top_k": R.whole(1)}


def options(study) -> dict[str, Any]:
    return study.detector_options("attributions", DEFAULTS, RULES)


# -- aggregation ----------------------------------------------------------------------

# An n-gram is listed as a phrase only when each of its words carries at least half of an equal
# share of its weight, in its direction: "please verify" whose weight is all "verify" is the word
# "verify" renamed, and listing both would count one piece of evidence twice.
PHRASE_MIN_SHARE = 0.5
# A feature whose token occurrences are at least this share of a stronger listed feature's (the
# bigrams of one footer line, a word that only ever occurs inside a listed phrase) is folded into
# that feature (`covered_by`). Decided per feature: a listed word can still share a minority of its
# occurrences with a listed phrase.
COVER_SHARE = 0.5
BOOTSTRAP = 200  # resamples of the emails for each feature's stability
COLUMNS = ["feature", "ngram", "n", "docs", "mean", "total", "importance", "share_positive", "phrase",
           "covered_by", "stability"]


def occurrences(att: Attribution, ngram_max: int = 2, end: int | None = None, counts: list[int] | None = None
                ) -> Iterable[tuple[str, float, list[int], list[float]]]:
    """(feature, weight, token indices, per-word weights) for every word and n-gram occurrence in
    one attribution. `end`: the characters the model reads (a causal LM cut at its window); words
    past it are not occurrences: the model never saw them, their zero weight is not evidence."""
    words = split_words(att.text)
    if len(words) != len(att.tokens):
        raise ValueError("attribution tokens do not match the word cutter")
    cores = words.cores
    idx = [i for i, c in enumerate(cores) if is_wordlike(c) and (end is None or words.starts[i] < end)]
    if counts is not None:  # [words, words in view], for FeatureTable.words_in_view
        counts[0] += sum(map(is_wordlike, cores))
        counts[1] += len(idx)
    keys = [feature_key(cores[i]) for i in idx]
    w = att.weights
    for a in range(len(idx)):
        for n in range(1, ngram_max + 1):
            if a + n > len(idx):
                break
            span = idx[a:a + n]
            parts = [float(w[i]) for i in span]
            yield " ".join(keys[a:a + n]), float(sum(parts)), span, parts


@dataclass
class FeatureTable:
    """One cell x domain's aggregated attributions: the table, and the per-email sums that
    subsamples of the emails are aggregated from (stability, the shift test)."""

    table: pd.DataFrame  # COLUMNS, sorted by importance
    k: int
    n_emails: int = 0
    # the cell's typical attributed margin: median |margin - margin of the empty email| (|sum of the weights|
    # where the empty email was not scored). The weights' sum over-counts on a model that is not additive
    # (span occlusion on MiniLM: 27.7 against a swing of 8.8), which shrank its features between models
    scale: float = 1.0
    words_in_view: float = 1.0  # share of the emails' words inside the model's window
    min_docs: int = 3
    sums: tuple | None = None  # (S, N, P) emails x listable features: weight sums, counts, presence
    names: list[str] = field(default_factory=list)  # the listable features, the columns of `sums`
    signs: np.ndarray | None = None  # each listable feature's direction on the whole sample
    labels: np.ndarray | None = None  # each email's label (the shift test matches the label mix)

    def top(self, direction: int = 1, k: int | None = None) -> list[dict[str, Any]]:
        return top_features(self.table, k or self.k, direction)

    def tops(self, weights: np.ndarray, direction: int = 1) -> list[frozenset]:
        """The top-k listable features toward `direction` of each row of `weights` (subsamples
        as emails x counts), aggregated as the table is (emails drawn twice count once in docs)."""
        if self.sums is None or not self.names:
            return [frozenset() for _ in range(len(weights))]
        S, N, P = self.sums
        W = np.asarray(weights, dtype=float)
        t = np.asarray((S.T @ W.T).T)
        n = np.asarray((N.T @ W.T).T)
        d = np.asarray((P.T @ (W > 0).T.astype(float)).T)
        with np.errstate(invalid="ignore", divide="ignore"):
            imp = np.where((n > 0) & (d >= self.min_docs), t / np.maximum(n, 1) * np.log1p(d), 0.0) * direction
        out = []
        for row in imp:
            cand = np.flatnonzero(row > 0)
            out.append(frozenset(self.names[i] for i in cand[np.argsort(-row[cand], kind="stable")[:self.k]]))
        return out


def shift_test(home: FeatureTable, other: FeatureTable, *, direction: int = 1, draws: int = 100,
               seed: int = 0) -> dict[str, Any] | None:
    """Does the top list differ between two domains beyond what two samples of one domain differ by?

    Each draw takes two disjoint sets of home emails and one set of the other domain's, all three with
    the same number of emails of each label (per label, the smaller of half the home sample's and the
    other sample's): the overlap of the two home sets is what chance gives at that size, the overlap
    of a home set with the other domain's emails is the measurement. The shift is beyond chance when
    the median overlap across lies below the 5th percentile of the overlaps within. (Two bootstrap
    resamples of one sample share its noise and agreed too well: a same-source domain read as shifted
    in 12 of 30 draws. Home halves balanced against an all-legitimate other sample compared top
    phishing lists read from different mail: legitimate mail of the same source read as shifted in
    17 of 20 draws.) Tables without labels draw m emails of any label."""
    from gapscope.study.split import rng_for

    if home.labels is not None and other.labels is not None:
        pools = [(np.flatnonzero(home.labels == c), np.flatnonzero(other.labels == c)) for c in (0, 1)]
        sizes = [min(len(h) // 2, len(o)) for h, o in pools]
    else:
        pools = [(np.arange(home.n_emails), np.arange(other.n_emails))]
        sizes = [min(home.n_emails // 2, other.n_emails)]
    m = sum(sizes)
    if m < home.min_docs:
        return None
    rng = rng_for(seed, "attribution-shift", str(home.n_emails), str(other.n_emails))
    h1, h2 = np.zeros((draws, home.n_emails)), np.zeros((draws, home.n_emails))
    o = np.zeros((draws, other.n_emails))
    for r in range(draws):
        for (hp, op), t in zip(pools, sizes):
            perm = rng.permutation(hp)
            h1[r, perm[:t]] = 1
            h2[r, perm[t:2 * t]] = 1
            o[r, rng.permutation(op)[:t]] = 1
    t1, t2, to = home.tops(h1, direction), home.tops(h2, direction), other.tops(o, direction)
    within = np.asarray([_jaccard(a, b) for a, b in zip(t1, t2)])
    across = np.asarray([_jaccard(a, b) for a, b in zip(t1, to)])
    p05 = float(np.quantile(within, 0.05))
    return {"emails": int(m), **({"by_label": [int(t) for t in sizes]} if len(sizes) == 2 else {}),
            "within_median": round(float(np.median(within)), 3), "within_p05": round(p05, 3),
            "across_median": round(float(np.median(across)), 3),
            "beyond_chance": bool(np.median(across) < p05)}


def _jaccard(a: set | frozenset, b: set | frozenset) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _is_phrase(parts: np.ndarray, total: float) -> bool:
    n = len(parts)
    if n == 1:
        return True
    if total == 0:
        return False
    return bool(np.all(parts * np.sign(total) >= PHRASE_MIN_SHARE * abs(total) / n))


def _extracted(att: Attribution, ngram_max: int, end: int | None, counts: list[int], cache: dict | None):
    """occurrences(), kept in `cache` (keyed by the attribution object) for the next table over
    the same email: a cell trained on 11 domains re-read every email once per domain it set apart."""
    if cache is None:
        return occurrences(att, ngram_max, end, counts)
    hit = cache.get(id(att))
    if hit is None or hit[0] is not att or hit[1] != (ngram_max, end):
        own = [0, 0]
        hit = cache[id(att)] = (att, (ngram_max, end), list(occurrences(att, ngram_max, end, own)), own)
    counts[0] += hit[3][0]
    counts[1] += hit[3][1]
    return hit[2]


def feature_table(attributions: Sequence[Attribution], *, ngram_max: int = 2, min_docs: int = 3, k: int = 10,
                  ends: Sequence[int | None] | None = None, boots: int = BOOTSTRAP, seed: int = 0,
                  cache: dict | None = None, labels: Sequence[int] | None = None) -> FeatureTable:
    """Aggregate per feature (see the module docstring), mark phrases and folded features, and
    resample the emails `boots` times: `stability` is the share of resamples in which a listed
    feature is among the top k of its direction (emails drawn twice count once toward `docs`).
    `cache`: a dict shared by the tables built over the same emails (see _extracted)."""
    from scipy import sparse

    ends = list(ends) if ends is not None else [None] * len(attributions)
    fid: dict[str, int] = {}
    rows_e, cols_f, vals, cnts = [], [], [], []
    parts_sum: dict[int, np.ndarray] = {}
    tokens_of: dict[int, set] = defaultdict(set)
    pos = defaultdict(int)
    counts = [0, 0]
    for e, (att, end) in enumerate(zip(attributions, ends)):
        per: dict[int, list] = {}
        for feat, w, span, parts in _extracted(att, ngram_max, end, counts, cache):
            j = fid.setdefault(feat, len(fid))
            acc = per.setdefault(j, [0.0, 0])
            acc[0] += w
            acc[1] += 1
            pos[j] += w > 0
            ps = parts_sum.get(j)
            parts_sum[j] = np.asarray(parts) if ps is None else ps + parts
            tokens_of[j].update((e, i) for i in span)
        for j, (w, c) in per.items():
            rows_e.append(e)
            cols_f.append(j)
            vals.append(w)
            cnts.append(c)
    E, F = len(attributions), len(fid)
    S = sparse.csr_matrix((vals, (rows_e, cols_f)), shape=(E, F))
    N = sparse.csr_matrix((np.asarray(cnts, float), (rows_e, cols_f)), shape=(E, F))
    P = (N > 0).astype(float)
    total = np.asarray(S.sum(0)).ravel()
    n = np.asarray(N.sum(0)).ravel()
    docs = np.asarray(P.sum(0)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), 0.0)
    imp = mean * np.log1p(docs)
    names = [None] * F
    for f, j in fid.items():
        names[j] = f
    keep = np.flatnonzero(docs >= min_docs)
    phrase = np.zeros(F, bool)
    for j in keep:
        phrase[j] = _is_phrase(parts_sum[j] / n[j], mean[j])
    # fold: strongest first, each token occurrence claimed by the first listed feature holding it
    covered = [""] * F
    claimed: dict[tuple[int, int], int] = {}
    for j in sorted((j for j in keep if phrase[j]), key=lambda j: (-abs(imp[j]), names[j])):
        toks = tokens_of[j]
        owners = [claimed[t] for t in toks if t in claimed]
        owner = j
        if toks and len(owners) >= COVER_SHARE * len(toks):
            owner = max(set(owners), key=lambda o: (owners.count(o), -o))
            covered[j] = names[owner]
        # a folded feature's other words join its owner where the two are one phrase: "via" of "via
        # veloruith", which holds every "veloruith". "verify your" (5 of 35 "your") handed "verify" to
        # "your", and then "verify" itself folded into "your", a word it is no part of
        if owner == j or n[j] >= COVER_SHARE * n[owner]:
            for t in toks:
                claimed.setdefault(t, owner)
    listable = np.zeros(F, bool)
    listable[keep] = phrase[keep] & np.asarray([covered[j] == "" for j in keep], bool)
    stability = np.full(F, np.nan)
    cols = np.flatnonzero(listable)
    ft = FeatureTable(pd.DataFrame(), k, E, 1.0, counts[1] / counts[0] if counts[0] else 1.0, min_docs,
                      (S[:, cols], N[:, cols], P[:, cols]), [names[j] for j in cols], np.sign(imp[cols]),
                      None if labels is None else np.asarray(labels, dtype=int))
    if boots > 0 and E > 0 and len(cols):
        from gapscope.study.split import rng_for

        rng = rng_for(seed, "attribution-bootstrap", str(E))
        C = rng.multinomial(E, np.full(E, 1.0 / E), size=boots).astype(float)  # boots x E draws
        hits = dict.fromkeys(ft.names, 0)
        for d in (1, -1):
            own = {f for f, sg in zip(ft.names, ft.signs) if sg == d}  # a feature counts in its own direction
            for top in ft.tops(C, d):
                for f in top & own:
                    hits[f] += 1
        stability[cols] = [hits[f] / boots for f in ft.names]
    table = pd.DataFrame({
        "feature": [names[j] for j in keep], "ngram": [names[j].count(" ") + 1 for j in keep],
        "n": n[keep].astype(int), "docs": docs[keep].astype(int), "mean": mean[keep], "total": total[keep],
        "importance": imp[keep], "share_positive": [pos[j] / n[j] for j in keep], "phrase": phrase[keep],
        "covered_by": [covered[j] for j in keep], "stability": stability[keep]}, columns=COLUMNS)
    table = table.sort_values(["importance", "feature"], ascending=[False, True], ignore_index=True)
    sums = [abs(float(a.margin - a.base_margin)) if a.base_margin is not None else abs(float(a.weights.sum()))
            for a in attributions]
    ft.table = table
    ft.scale = float(np.median(sums)) if sums and np.median(sums) > 0 else 1.0
    return ft


def aggregate(attributions: Sequence[Attribution], *, ngram_max: int = 2, min_docs: int = 3,
              ends: Sequence[int | None] | None = None) -> pd.DataFrame:
    """One row per feature seen in at least `min_docs` emails (COLUMNS; no resampling)."""
    return feature_table(attributions, ngram_max=ngram_max, min_docs=min_docs, ends=ends, boots=0).table


def _listable(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["phrase"].astype(bool) & (table["covered_by"] == "")]


def top_features(table: pd.DataFrame, k: int = 10, direction: int = 1) -> list[dict[str, Any]]:
    """The k features with the largest importance toward phishing (+1) or legitimate (-1): phrases
    and words not folded into a stronger feature; `also` names what was folded into each."""
    if table.empty:
        return []
    t = _listable(table)
    t = t[t["importance"] * direction > 0]
    t = t.reindex((t["importance"] * direction).sort_values(ascending=False, kind="stable").index).head(k)
    folded: dict[str, list[str]] = defaultdict(list)
    for f, c in zip(table["feature"], table["covered_by"]):
        if c:
            folded[c].append(f)
    out = []
    for r in t.itertuples():
        # the feature as written ('账户', not the keys '账 户'); one name per key, so lists compare as before
        d = {"feature": display_key(r.feature), "importance": round(float(r.importance), 4),
             "mean": round(float(r.mean), 4), "docs": int(r.docs), "n": int(r.n)}
        st = getattr(r, "stability", float("nan"))
        if st == st:
            d["stability"] = round(float(st), 3)
        if folded.get(r.feature):
            d["also"] = [display_key(f) for f in folded[r.feature][:4]]
        out.append(d)
    return out


def compare(a: pd.DataFrame, b: pd.DataFrame, *, k: int = 10, scale_a: float = 1.0,
            scale_b: float = 1.0) -> dict[str, list[dict[str, Any]]]:
    """How two tables differ (two domains of one cell, or two cells on one domain), direction by
    direction and only over features both samples hold in enough emails (a feature absent from
    one side says which vocabulary the domain has, not how the model's use of it changed: those
    are listed apart, `only_in_a` / `only_in_b`). Importances are divided by `scale_a` / `scale_b`
    (each cell's typical attributed margin) where two models with different margin scales meet.

      phishing_more_in_a     toward phishing in a, and more so than in b
      legitimate_more_in_a   toward legitimate in a, and more so than in b (and the same for b)
    """
    la, lb = _listable(a), _listable(b)
    both = pd.merge(a[["feature", "importance", "docs"]], b[["feature", "importance", "docs"]], on="feature",
                    how="inner", suffixes=("_a", "_b"))
    both = both[both["feature"].isin(set(la["feature"]) | set(lb["feature"]))].copy()
    both["importance_a"] = both["importance_a"] / scale_a
    both["importance_b"] = both["importance_b"] / scale_b
    both["diff"] = both["importance_a"] - both["importance_b"]

    def rows(df):
        return [{"feature": display_key(r.feature), "importance_a": round(float(r.importance_a), 4),
                 "importance_b": round(float(r.importance_b), 4), "diff": round(float(r.diff), 4),
                 "docs_a": int(r.docs_a), "docs_b": int(r.docs_b)} for r in df.itertuples()]

    def pick(side: str, direction: int):
        sign = 1 if side == "a" else -1  # a larger than b, or b larger than a, in this direction
        m = both[(both[f"importance_{side}"] * direction > 0) & (both["diff"] * sign * direction > 0)]
        return rows(m.reindex((m["diff"] * sign * direction).sort_values(ascending=False, kind="stable").index)
                    .head(k))

    def only(t, other, scale):
        t = t[~t["feature"].isin(set(other["feature"])) & (t["importance"] != 0)]
        t = t.reindex(t["importance"].abs().sort_values(ascending=False, kind="stable").index).head(k)
        return [{"feature": display_key(r.feature), "importance": round(float(r.importance) / scale, 4),
                 "docs": int(r.docs)}
                for r in t.itertuples()]

    return {"phishing_more_in_a": pick("a", 1), "phishing_more_in_b": pick("b", 1),
            "legitimate_more_in_a": pick("a", -1), "legitimate_more_in_b": pick("b", -1),
            "only_in_a": only(la, b, scale_a), "only_in_b": only(lb, a, scale_b)}


def overlap(a: Sequence[dict], b: Sequence[dict]) -> float:
    """Jaccard overlap of two top-feature lists."""
    return _jaccard({x["feature"] for x in a}, {x["feature"] for x in b})


# -- sampling, caching, and the study glue ---------------------------------------------

def sample_rows(rows: Sequence, n: int, seed: int, key: str) -> list:
    """Up to n rows, half of each label where possible, deterministic in (seed, key)."""
    from gapscope.study.split import rng_for

    rng = rng_for(seed, "attribution-sample", key)
    by_label: dict[int, list] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r.id):
        by_label[int(r.label)].append(r)
    for lab in by_label:
        order = rng.permutation(len(by_label[lab]))
        by_label[lab] = [by_label[lab][i] for i in order]
    labels = sorted(by_label)
    take = {lab: min(len(by_label[lab]), n // max(1, len(labels))) for lab in labels}
    spare = n - sum(take.values())
    for lab in labels:  # fill from the other label when one is short
        extra = min(spare, len(by_label[lab]) - take[lab])
        take[lab] += extra
        spare -= extra
    out = [r for lab in labels for r in by_label[lab][: take[lab]]]
    return sorted(out, key=lambda r: r.id)


def _method_for(kind: str, method: str) -> str:
    # relevance needs gradients: a TF-IDF cell of a mixed study is explained by occlusion, which
    # is exact and cheap there (it failed the whole detector)
    return "occlusion" if method == "relevance" and is_cheap(kind) else method


def method_label(kind: str, method: str) -> str:
    """How findings name the method a cell of `kind` is explained with under `[detectors.attributions] method`."""
    return {"occlusion": "Occlusion", "relevance": "Relevance (gradient)",
            "shap": "SHAP (Partition)"}.get(_method_for(kind, method), method)


def attributor_for(kind: str, method: str = "occlusion", opts: dict[str, Any] | None = None) -> Attributor:
    opts = opts or DEFAULTS
    method = _method_for(kind, method)
    if method == "occlusion":
        params = default_occlusion_options(kind)
        if "max_evals" in params:
            params["max_evals"] = int(opts.get("max_evals_llm", DEFAULTS["max_evals_llm"]))
        return get_method("occlusion", **params)
    return get_method(method)


def emails_per_domain(kind: str, opts: dict[str, Any]) -> int:
    return int(opts["emails_per_domain"] if is_cheap(kind) else opts["emails_per_domain_llm"])


# path -> ((size, mtime), parsed records) of the attribution stores read in this process
_PARSED: dict[str, tuple[tuple[int, int] | None, dict[str, Attribution]]] = {}


# What an attribution of a given method and settings is made of changed: the words in view (0.3.0)
# and words that keep their combining marks; amounts and tags after punctuation as one word (3).
# Stores written before are not read.
STORE_VERSION = 3


class AttributionStore:
    """JSONL cache of attributions for one cell and one method setting (append-only, resumable)."""

    def __init__(self, path: Path):
        self.path = path
        self._data: dict[str, Attribution] | None = None

    @classmethod
    def for_cell(cls, study, cell, attributor: Attributor) -> "AttributionStore":
        from gapscope.study import artifacts

        key = artifacts.fingerprint({"cell": cell.meta.get("fingerprint"), "method": attributor.name,
                                     "params": attributor.params(), "version": STORE_VERSION})
        return cls(study.artifact_dir("attributions") / "store" / cell.name / f"{attributor.name}-{key}.jsonl")

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def load(self) -> dict[str, Attribution]:
        if self._data is None:
            # Detectors open the same store cell after cell; parse each file once per process
            # unless it changed on disk.
            key = str(self.path.resolve())
            stamp = self._stamp()
            hit = _PARSED.get(key)
            if hit is not None and hit[0] == stamp:
                self._data = hit[1]
                return self._data
            self._data = {}
            if stamp is not None:
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    try:
                        rec = json.loads(line)
                        self._data[rec["id"]] = Attribution.from_dict(rec["attribution"])
                    except (ValueError, KeyError):
                        continue  # a line cut short by an interruption
            _PARSED[key] = (stamp, self._data)
        return self._data

    def _remember(self) -> None:  # after appending: the parsed records match the file again
        _PARSED[str(self.path.resolve())] = (self._stamp(), self._data)

    def get_or_compute(self, model, attributor: Attributor, items: Sequence[tuple[str, str]],
                       progress=None) -> dict[str, Attribution]:
        """Attributions for (id, text) pairs, computing and appending the missing ones."""
        data = self.load()
        # a record of another word cutter (its tokens no longer the text's words) is computed again:
        # compared word for word, since a text of a no-space script can be re-cut into as many words
        # ("访paypal.com账": "访paypal" "." "com账" before, "访" "paypal.com" "账" now); text in other
        # scripts is cut as before, so its records stay valid without a new STORE_VERSION
        todo = [(i, t) for i, t in items
                if i not in data or data[i].text != t or data[i].tokens != split_words(t).segments]
        if todo:
            attributor.prepare(model, [t for _, t in todo])
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                for k, (i, t) in enumerate(todo, 1):
                    # kept as written (5 digits): a resumed or later process reads the file, and
                    # full-precision values here made its rankings differ on near-ties
                    saved = attributor.attribute(model, t).to_dict()
                    data[i] = Attribution.from_dict(saved)
                    fh.write(json.dumps({"id": i, "attribution": saved}, ensure_ascii=False) + "\n")
                    fh.flush()
                    if progress:
                        progress(k, len(todo))
            self._remember()
        return {i: data[i] for i, _ in items}


class ModelCache:
    """Keeps the most recently loaded cell model, so detectors that visit the same cell in a row
    (attributions, minimal pairs, shortcuts) load a neural cell once."""

    _key: tuple | None = None
    _model = None

    @classmethod
    def get(cls, study, cell):
        key = (str(Path(study.run_dir).resolve()), cell.name, cell.meta.get("fingerprint"))
        if cls._key != key:
            cls.clear()
            cls._model = study.load_model(cell)
            cls._key = key
        return cls._model

    @classmethod
    def clear(cls) -> None:
        if cls._model is not None:
            with contextlib.suppress(Exception):  # freeing memory must never fail a detector
                cls._model.close()
        cls._model, cls._key = None, None


def cell_domain_attributions(study, cell, domain: str, opts: dict[str, Any] | None = None,
                             progress=None) -> dict[str, Attribution]:
    """Attributions of `cell` on the bounded sample of `domain`'s held-out emails, by row id."""
    opts = opts or options(study)
    attributor = attributor_for(cell.kind, opts["method"], opts)
    rows = sample_rows(study.distinct_test_rows(domain), emails_per_domain(cell.kind, opts), study.spec.study.seed,
                       domain)
    if not rows:
        return {}
    store = AttributionStore.for_cell(study, cell, attributor)
    model = ModelCache.get(study, cell)
    return store.get_or_compute(model, attributor, [(r.id, r.text) for r in rows], progress=progress)


def attributions_for_rows(study, cell, rows: Sequence, opts: dict[str, Any] | None = None) -> dict[str, Attribution]:
    """Attributions of `cell` for given rows (cached in the same store as the corpus sample)."""
    opts = opts or options(study)
    attributor = attributor_for(cell.kind, opts["method"], opts)
    store = AttributionStore.for_cell(study, cell, attributor)
    return store.get_or_compute(ModelCache.get(study, cell), attributor, [(r.id, r.text) for r in rows])
