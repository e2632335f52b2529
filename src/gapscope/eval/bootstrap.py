"""Percentile bootstrap confidence intervals for every metric, vectorised over resamples.

A resample is a vector of row counts (how often each row was drawn), so all metrics of
all resamples are a few matrix products (see metrics.metric_batch). Resamples on which a
metric is not a measurement (e.g. AUROC on a one-class draw) are skipped and counted.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from gapscope.eval.clusters import n_clusters
from gapscope.eval.metrics import METRIC_NAMES, as_arrays, metric_batch


def domain_seed(seed: int, domain: str) -> int:
    """A seed for one domain's draws, keyed by its name so that its interval does not depend on the
    order in which domains are evaluated."""
    return int(np.random.SeedSequence([seed, zlib.crc32(domain.encode("utf-8"))]).generate_state(1)[0])


# Bounds memory: a chunk of resamples holds at most this many weights (~16 MB of float64).
_CHUNK_ELEMS = 2**21


@dataclass(frozen=True)
class BootstrapCI:
    lo: float | None
    hi: float | None
    n_valid: int
    n_skipped: int

    def as_list(self) -> list[float] | None:
        return None if self.lo is None else [self.lo, self.hi]


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) matrix: how many times each row appears in each resample."""
    idx = rng.integers(0, n, size=(n_resamples, n))
    flat = idx + (np.arange(n_resamples) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)


def resample_cluster_counts(cluster: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, rows) weights of a cluster bootstrap: whole clusters (eval/clusters.py) drawn with
    replacement, each of a cluster's rows weighted by how often its cluster was drawn."""
    return resample_counts(int(cluster.max()) + 1, n_resamples, rng)[:, cluster]


def bootstrap_cis(y, s, threshold: float, *, n_resamples: int = 1000, seed: int = 0,
                  level: float = 0.95, cluster: np.ndarray | None = None) -> dict[str, BootstrapCI]:
    """Percentile CIs for each metric in METRIC_NAMES; (None, None) when no resample defines it.
    `cluster` (eval/clusters.py): rows of one group of copies are resampled together."""
    y, s = as_arrays(y, s)
    n = y.size
    if n == 0 or n_resamples <= 0 or n_clusters(cluster, n) < 2:  # one group: every draw is the sample
        return {m: BootstrapCI(None, None, 0, max(n_resamples, 0)) for m in METRIC_NAMES}
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, _CHUNK_ELEMS // n))
    parts: dict[str, list[np.ndarray]] = {m: [] for m in METRIC_NAMES}
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        w = resample_counts(n, size, rng) if cluster is None else resample_cluster_counts(cluster, size, rng)
        for m, v in metric_batch(y, s, threshold, w).items():
            parts[m].append(v)
    alpha = (1.0 - level) / 2 * 100
    out = {}
    for m in METRIC_NAMES:
        vals = np.concatenate(parts[m])
        ok = vals[~np.isnan(vals)]
        if ok.size == 0:
            out[m] = BootstrapCI(None, None, 0, n_resamples)
        else:
            lo, hi = np.percentile(ok, [alpha, 100 - alpha])
            out[m] = BootstrapCI(float(lo), float(hi), int(ok.size), n_resamples - int(ok.size))
    return out
