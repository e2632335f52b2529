"""Held-out rows that are copies of one email are one piece of evidence, not several.

The split keeps a campaign's copies and near-copies on one side, so a test set can hold one email
several times. Every interval that treated each copy as an independent email was too narrow: the
same 12 emails, each 5 times, gave F1 [0.71, 0.91] against [0.53, 0.95] once (a statistical review).
Intervals therefore resample groups of copies (a cluster bootstrap, bootstrap.resample_cluster_counts;
none from fewer than two groups), and the count-based ones (Jeffreys draws) read their counts at the
set's effective size. Where every row is its own group nothing changes: the same draws, the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def cluster_index(ids: Sequence[Any], groups: Mapping[str, Any] | None) -> np.ndarray | None:
    """Per row, its group's number (0, 1, ... in order of first appearance); None where no two rows
    share a group (the row-level reading is then exact). `groups` maps a row id to its group; an id
    it does not hold is a group of its own."""
    if not groups:
        return None
    number: dict[Any, int] = {}
    out = np.empty(len(ids), dtype=np.int64)
    for i, rid in enumerate(ids):
        key = groups.get(str(rid), ("own", i))
        out[i] = number.setdefault(key, len(number))
    return None if len(number) == len(ids) else out


def clusters_of(keys: Sequence[Any]) -> np.ndarray | None:
    """Per row, the number of its key (equal keys, one cluster); None where every key is distinct."""
    _, c = np.unique(np.asarray([str(k) for k in keys]), return_inverse=True)
    return None if c.size == 0 or int(c.max()) + 1 == c.size else c.astype(np.int64)


def effective_size(outcomes: np.ndarray, cluster: np.ndarray | None) -> float:
    """How many independent rows a proportion over `outcomes` is worth when the rows of one cluster
    are copies of one email: n^2 / sum of squared cluster sizes (Kish), the number of clusters where
    they are of one size, n where every row is its own. It does not read the outcomes: a variance
    estimated from them gave one cluster holding a whole class full weight, and a worse result (one
    copy missed) a narrower interval than a perfect one (a review)."""
    n = int(np.asarray(outcomes).size)
    if n == 0 or cluster is None:
        return float(n)
    _, c = np.unique(cluster, return_inverse=True)
    sizes = np.bincount(c).astype(np.float64)
    return float(n) if sizes.size == n else float(n * n / float((sizes ** 2).sum()))


def n_clusters(cluster: np.ndarray | None, n: int) -> int:
    """How many clusters (groups of copies) `n` rows form."""
    return n if cluster is None else int(np.unique(cluster).size)
