"""Representation similarity across domains, per layer.

    separation(a, b)   distance between the class-balanced centroids of domains a and b,
                       divided by the root-mean-square within-domain spread: ~0 when the
                       layer mixes the domains, large when it sorts emails by origin
    linear CKA         (Kornblith et al. 2019) between two representations of the SAME
                       examples: used to compare the fine-tuned model with its base per
                       domain (how much fine-tuning rewrote a layer for in-domain vs
                       out-of-domain emails)
"""

from __future__ import annotations

import itertools

import numpy as np

from gapscope.internals.domain_direction import balanced_centroid


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float | None:
    """Linear CKA of (n, d1) and (n, d2) representations of the same n examples."""
    if len(X) < 3:
        return None
    X = X.astype(np.float64) - X.mean(0)
    Y = Y.astype(np.float64) - Y.mean(0)
    # ||X^T Y||_F^2 / (||X^T X||_F ||Y^T Y||_F), computed through the n x n Gram matrices
    Kx, Ky = X @ X.T, Y @ Y.T
    num = float((Kx * Ky).sum())
    den = float(np.sqrt((Kx * Kx).sum() * (Ky * Ky).sum()))
    return num / den if den > 0 else None


def separation(X: np.ndarray, y: np.ndarray, dom: np.ndarray) -> dict[str, float]:
    """{"a|b": centroid distance / within-domain RMS spread} for every domain pair."""
    doms = sorted(set(dom.tolist()))
    cent, spread = {}, []
    for d in doms:
        m = dom == d
        cent[d] = balanced_centroid(X[m], y[m])
        spread.append(((X[m] - X[m].mean(0)) ** 2).sum(1).mean())
    rms = float(np.sqrt(np.mean(spread))) if spread else 0.0
    out = {}
    for a, b in itertools.combinations(doms, 2):
        out[f"{a}|{b}"] = float(np.linalg.norm(cent[a] - cent[b]) / rms) if rms > 0 else 0.0
    return out
