"""Corpus-level attributions: what a cell keys on, per test domain, over many emails.

For one cell x test domain, a bounded, label-balanced sample of the domain's held-out
emails (the same emails for every cell, so cells are compared on identical inputs) is
explained with the fast method (occlusion), and the per-word weights are aggregated:

  feature      a lower-cased word (URLs, addresses, numbers and HTML tags collapsed to
               <url>, <email>, <num>, <html-tag>) or an n-gram of consecutive words; an
               n-gram occurrence weighs the sum of its words' weights
  n            occurrences in the sample;  docs: emails it occurs in
  mean         mean weight per occurrence (> 0 toward phishing)
  importance   mean * log(1 + docs): frequency-aware, so a word seen once with a large
               weight does not outrank one the model leans on in every email; features
               seen in fewer than `min_docs` emails are dropped

Cost: a neural cell scores one batch of ~max_evals+2 texts per email, so the sample is
small for them (default 16 per domain) and larger for tf-idf (default 200).

Attributions are cached per cell (keyed by the cell's fingerprint and the method's
settings) under diagnostics/attributions/store/, so every detector that needs the same
email's attribution (shortcuts, minimal pairs, the report) reuses it.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from gapscope import option_rules as R
from gapscope.attribution.base import Attribution, Attributor, default_occlusion_options, get_method, is_cheap
from gapscope.attribution.words import feature_key, is_wordlike, split_words

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

def occurrences(att: Attribution, ngram_max: int = 2) -> Iterable[tuple[str, float, list[int]]]:
    """(feature, weight, token indices) for every word and n-gram occurrence in one attribution."""
    words = split_words(att.text)
    if len(words) != len(att.tokens):
        raise ValueError("attribution tokens do not match the word cutter")
    cores = words.cores
    idx = [i for i, c in enumerate(cores) if is_wordlike(c)]
    keys = [feature_key(cores[i]) for i in idx]
    for a in range(len(idx)):
        for n in range(1, ngram_max + 1):
            if a + n > len(idx):
                break
            span = idx[a:a + n]
            yield " ".join(keys[a:a + n]), float(att.weights[span].sum()), span


def aggregate(attributions: Sequence[Attribution], *, ngram_max: int = 2, min_docs: int = 3) -> pd.DataFrame:
    """One row per feature: feature, ngram, n, docs, mean, total, importance, share_positive."""
    total: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    pos: dict[str, int] = defaultdict(int)
    docs: dict[str, int] = defaultdict(int)
    for att in attributions:
        seen = set()
        for feat, w, _ in occurrences(att, ngram_max):
            total[feat] += w
            count[feat] += 1
            pos[feat] += w > 0
            if feat not in seen:
                docs[feat] += 1
                seen.add(feat)
    rows = []
    for feat, n in count.items():
        if docs[feat] < min_docs:
            continue
        mean = total[feat] / n
        rows.append({"feature": feat, "ngram": feat.count(" ") + 1, "n": n, "docs": docs[feat], "mean": mean,
                     "total": total[feat], "importance": mean * math.log1p(docs[feat]),
                     "share_positive": pos[feat] / n})
    cols = ["feature", "ngram", "n", "docs", "mean", "total", "importance", "share_positive"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["importance", "feature"], ascending=[False, True], ignore_index=True)


def top_features(table: pd.DataFrame, k: int = 10, direction: int = 1) -> list[dict[str, Any]]:
    """The k features with the largest importance toward phishing (+1) or legitimate (-1)."""
    if table.empty:
        return []
    t = table[table["importance"] * direction > 0]
    t = t.reindex((t["importance"] * direction).sort_values(ascending=False, kind="stable").index).head(k)
    return [{"feature": r.feature, "importance": round(float(r.importance), 4), "mean": round(float(r.mean), 4),
             "docs": int(r.docs), "n": int(r.n)} for r in t.itertuples()]


def compare(a: pd.DataFrame, b: pd.DataFrame, *, k: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Features whose importance differs most between two tables (two domains of one cell, or
    two cells on one domain). A feature missing from one side counts as importance 0 there."""
    m = pd.merge(a[["feature", "importance", "docs"]], b[["feature", "importance", "docs"]], on="feature",
                 how="outer", suffixes=("_a", "_b")).fillna({"importance_a": 0.0, "importance_b": 0.0,
                                                              "docs_a": 0, "docs_b": 0})
    m["diff"] = m["importance_a"] - m["importance_b"]

    def rows(df):
        return [{"feature": r.feature, "importance_a": round(float(r.importance_a), 4),
                 "importance_b": round(float(r.importance_b), 4), "diff": round(float(r.diff), 4),
                 "docs_a": int(r.docs_a), "docs_b": int(r.docs_b)} for r in df.itertuples()]

    return {"more_in_a": rows(m.sort_values("diff", ascending=False, kind="stable").head(k)),
            "more_in_b": rows(m.sort_values("diff", ascending=True, kind="stable").head(k))}


def overlap(a: Sequence[dict], b: Sequence[dict]) -> float:
    """Jaccard overlap of two top-feature lists."""
    fa, fb = {x["feature"] for x in a}, {x["feature"] for x in b}
    return len(fa & fb) / len(fa | fb) if fa | fb else 1.0


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


def attributor_for(kind: str, method: str = "occlusion", opts: dict[str, Any] | None = None) -> Attributor:
    opts = opts or DEFAULTS
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


class AttributionStore:
    """JSONL cache of attributions for one cell and one method setting (append-only, resumable)."""

    def __init__(self, path: Path):
        self.path = path
        self._data: dict[str, Attribution] | None = None

    @classmethod
    def for_cell(cls, study, cell, attributor: Attributor) -> "AttributionStore":
        from gapscope.study import artifacts

        key = artifacts.fingerprint({"cell": cell.meta.get("fingerprint"), "method": attributor.name,
                                     "params": attributor.params()})
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
        todo = [(i, t) for i, t in items if i not in data or data[i].text != t]
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
    rows = sample_rows(study.test_rows(domain), emails_per_domain(cell.kind, opts), study.spec.study.seed, domain)
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
