"""Training-set diversity per cell, and whether it tracks out-of-domain F1.

For each distinct training set (cells sharing the same ids are measured once):
  embedding_vendi  Vendi score of MiniLM sentence embeddings (cosine kernel)
  gradient_vendi   Vendi score of projected per-example gradients of a tf-idf LR proxy
  distinct_1..3    lexical diversity on a common token budget (distinct-1 is the type-token ratio):
                   n_tokens, or the smallest set's token count ("lexical_budget"; sets with fewer
                   than n_tokens are flagged "short")
Vendi scores use a seeded sample of the same size for every set (the smallest set's
size, capped at `sample_size`), since the score grows with n.

Across training sets, each metric is correlated with the out-of-domain F1 of the cells
trained on the set (their mean over models; Spearman). A point is one choice of training
domains: subsamples of the same domains (models with different max_train) are nested draws of
one data source, not independent sets, so they are merged (the mean of their measures) and n
counts distinct training-domain sets. The generalist set is compared with the specialist sets
as a ratio: "the generalist set is only 1.3x as diverse as the specialist set".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from gapscope import option_rules as R
from gapscope.data.rows import Row
from gapscope.diversity.gradient import GradientProxy
from gapscope.diversity.lexical import lexical_budget, lexical_diversity
from gapscope.diversity.vendi import vendi_score

METRICS = ("embedding_vendi", "gradient_vendi", "distinct_1", "distinct_2", "distinct_3")
METRIC_TITLES = {"embedding_vendi": "embedding Vendi", "gradient_vendi": "gradient Vendi (G-Vendi)",
                 "distinct_1": "distinct-1 (type-token ratio)", "distinct_2": "distinct-2",
                 "distinct_3": "distinct-3"}


@dataclass
class DiversityOptions:
    sample_size: int = 256  # rows per set for the Vendi scores (capped by the smallest set)
    n_tokens: int = 5000  # token budget for the lexical measures
    proj_dim: int = 256  # gradient projection
    embedder: str = "embedded:minilm-l6"
    embed_max_length: int = 128
    embeddings: bool = True  # False skips the embedding Vendi (no encoder needed)
    seed: int = 0

    RULES: ClassVar[dict] = {
        "sample_size": R.whole(2), "n_tokens": R.whole(1), "proj_dim": R.whole(1), "embedder": R.text(),
        "embed_max_length": R.whole(1), "embeddings": R.flag(), "seed": R.whole(0)}

    def __post_init__(self):
        R.check_fields(self, self.RULES)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "DiversityOptions":
        d = dict(d or {})
        R.check_keys("diversity options", d, cls)
        return cls(**d)


def set_key(rows: Sequence[Row]) -> str:
    return hashlib.sha1("\n".join(sorted(r.id for r in rows)).encode()).hexdigest()[:16]


def _sample(rows: Sequence[Row], m: int, seed: int) -> list[Row]:
    rows = sorted(rows, key=lambda r: r.id)
    if len(rows) <= m:
        return rows
    idx = np.random.default_rng([seed, 99]).choice(len(rows), m, replace=False)
    return [rows[i] for i in sorted(idx)]


def measure_sets(sets: dict[str, Sequence[Row]], opts: DiversityOptions | None = None,
                 embedder=None) -> dict[str, dict[str, Any]]:
    """Diversity metrics for each named training set (see the module docstring)."""
    opts = opts or DiversityOptions()
    sets = {k: list(v) for k, v in sets.items() if v}
    if not sets:
        return {}
    m = min(opts.sample_size, min(len(v) for v in sets.values()))
    samples = {k: _sample(v, m, opts.seed) for k, v in sets.items()}
    union = {r.id: r for v in sets.values() for r in v}
    out: dict[str, dict[str, Any]] = {k: {"n_rows": len(sets[k]), "vendi_sample": m} for k in sets}
    # Gradient space shared by all sets.
    try:
        proxy = GradientProxy([r.text for r in union.values()], [r.label for r in union.values()],
                              dim=opts.proj_dim, seed=opts.seed)
    except ValueError:
        proxy = None
    # distinct-n falls as the token count grows: a set shorter than n_tokens measured on all it
    # has would look more diverse than the others, so every set gets the shortest set's count
    texts = {k: [r.text for r in v] for k, v in sets.items()}
    have = {k: lexical_budget([t], opts.n_tokens, opts.seed) for k, t in texts.items()}
    budget = min(have.values())
    for k, rows in samples.items():
        out[k]["gradient_vendi"] = proxy.vendi([r.text for r in rows], [r.label for r in rows]) if proxy else None
        out[k].update(lexical_diversity(texts[k], budget, opts.seed))
        out[k]["short"] = have[k] < opts.n_tokens  # this set lowered the budget below n_tokens
        out[k]["lexical_budget"] = budget
    if opts.embeddings:
        if embedder is None:
            from gapscope.diversity.embed import get_embedder

            embedder = get_embedder(opts.embedder, opts.embed_max_length)
        ids = sorted({r.id for v in samples.values() for r in v})
        vecs = embedder.embed([union[i].text for i in ids])
        pos = {i: j for j, i in enumerate(ids)}
        for k, rows in samples.items():
            out[k]["embedding_vendi"] = vendi_score(vecs[[pos[r.id] for r in rows]])
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    from scipy.stats import spearmanr

    pairs = [(a, b) for a, b in zip(x, y) if a is not None and b is not None]
    n = len(pairs)
    if n < 3 or len({a for a, _ in pairs}) < 2 or len({b for _, b in pairs}) < 2:
        return {"rho": None, "p": None, "n": n}
    res = spearmanr([a for a, _ in pairs], [b for _, b in pairs])
    return {"rho": round(float(res.statistic), 4), "p": round(float(res.pvalue), 4), "n": n}


def ratio_statement(metric: str, generalist: float, specialists: Sequence[float]) -> dict[str, Any]:
    spec = float(np.mean(specialists))
    ratio = generalist / spec if spec > 0 else None
    if ratio is None:
        text = f"{METRIC_TITLES.get(metric, metric)}: the specialist sets have no measurable diversity"
    else:
        only = "only " if ratio < 1.5 else ""
        text = (f"{METRIC_TITLES.get(metric, metric)}: the generalist set is {only}{ratio:.1f}× as diverse as the "
                f"specialist set ({generalist:.3g} vs {spec:.3g} on average over {len(specialists)})")
    return {"generalist": round(generalist, 4), "specialist_mean": round(spec, 4),
            "ratio": None if ratio is None else round(ratio, 3), "statement": text}


@dataclass
class CellDiversity:
    cell: str
    model: str
    paradigm: str
    set_key: str
    out_of_domain_f1: float | None
    metrics: dict[str, Any]
    train_domains: Sequence[str] | None = None  # None: the paradigm names them (one paradigm, one domain set)

    @property
    def point(self) -> tuple[str, ...]:
        return tuple(sorted(self.train_domains)) if self.train_domains else (self.paradigm,)


def analyse(cells: Sequence[CellDiversity]) -> dict[str, Any]:
    """Correlations with out-of-domain F1 and generalist/specialist ratios, per metric and model."""
    out: dict[str, Any] = {"cells": [asdict(c) for c in cells], "correlation": {}, "ratios": {}}
    # One point per choice of training domains: the cells of every model trained on those domains
    # share (nearly) one diversity, whether on one set or on nested subsamples of different sizes,
    # so counting each would repeat the same x (and overstate n: a false "strong" correlation in
    # about one null world in six with three models on four domains). Its x is the mean over its
    # distinct sets, its y the mean out-of-domain F1 of its cells.
    points: dict[tuple[str, ...], list[CellDiversity]] = {}
    for c in cells:
        points.setdefault(c.point, []).append(c)
    for metric in METRICS:
        xs, ys = [], []
        for members in points.values():
            f1 = [c.out_of_domain_f1 for c in members if c.out_of_domain_f1 is not None]
            per_set = {c.set_key: c.metrics.get(metric) for c in members}
            vals = [v for v in per_set.values() if v is not None]
            xs.append(float(np.mean(vals)) if vals and len(vals) == len(per_set) else None)
            ys.append(float(np.mean(f1)) if f1 else None)
        out["correlation"][metric] = spearman(xs, ys)
    for model in sorted({c.model for c in cells}):
        mine = [c for c in cells if c.model == model]
        gen = next((c for c in mine if c.paradigm == "generalist"), None)
        specs = [c for c in mine if c.paradigm.startswith("specialist:")]
        if gen is None or not specs:
            continue
        out["ratios"][model] = {
            metric: ratio_statement(metric, gen.metrics[metric], [c.metrics[metric] for c in specs])
            for metric in METRICS if gen.metrics.get(metric) is not None
            and all(c.metrics.get(metric) is not None for c in specs)}
    return out
