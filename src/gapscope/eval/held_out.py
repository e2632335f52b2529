"""The cells' test margins on every domain, and paired bootstrap intervals over them.

Cells scored on the same emails are compared on the same resampled rows (paired), so the interval
is that of the difference, not of two independent spreads.
"""

from __future__ import annotations

import numpy as np

from gapscope.eval.bootstrap import domain_seed, resample_cluster_counts, resample_counts
from gapscope.eval.clusters import cluster_index, n_clusters
from gapscope.eval.metrics import metric_batch


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
                    level: float = 0.95, groups: dict[str, int] | None = None) -> list[float] | None:
    """Percentile interval of mean F1 of the `a` cells minus mean F1 of the `b` cells, resampling each
    domain's test rows once for all cells (paired: the cells are scored on the same emails).
    parts: (domain, a scores, b scores), each score (ids, labels, margins, threshold); the means run
    over every (domain, cell) pair, as the point estimates do. None if the rows do not line up.
    `groups` (row id -> group of copies): a group's rows are resampled together (eval/clusters.py)."""
    if not parts or n_resamples <= 0:
        return None
    sums = {"a": np.zeros(n_resamples), "b": np.zeros(n_resamples)}
    counts = {"a": 0, "b": 0}
    for domain, a, b in parts:
        ids = a[0][0] if a else b[0][0]
        if any(len(x[0]) != len(ids) or (x[0] != ids).any() for x in a + b):
            return None
        rng = np.random.default_rng(domain_seed(seed, domain))
        cluster = cluster_index(ids, groups)
        if n_clusters(cluster, len(ids)) < 2:  # one group of copies: every draw would be the sample
            return None
        w = resample_counts(len(ids), n_resamples, rng) if cluster is None else \
            resample_cluster_counts(cluster, n_resamples, rng)
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
