"""The Vendi score: the effective number of distinct items in a sample.

VS = exp(H(lambda)), where lambda are the eigenvalues of K/n for a positive semi-definite
similarity kernel K with K_ii = 1 (here: cosine similarity of row vectors), and H is the
Shannon entropy. n identical items give 1; n orthogonal items give n.

For n rows of dimension d < n the non-zero eigenvalues of X X^T / n equal those of
X^T X / n, so the score is computed from the smaller of the two Gram matrices.
"""

from __future__ import annotations

import numpy as np


def normalise_rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    keep = norms[:, 0] > 0
    out = np.zeros_like(X)
    out[keep] = X[keep] / norms[keep]
    return out[keep]


def entropy_exp(eigenvalues: np.ndarray) -> float:
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    total = lam.sum()
    if total <= 0:
        return 0.0
    lam = lam / total  # trace(K/n) = 1 for a unit-diagonal kernel; renormalise round-off
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def vendi_score(X: np.ndarray) -> float:
    """Vendi score of the rows of X under the cosine-similarity kernel (zero rows dropped)."""
    Z = normalise_rows(X)
    n, d = Z.shape
    if n == 0:
        return 0.0
    gram = (Z.T @ Z) / n if d < n else (Z @ Z.T) / n
    return entropy_exp(np.linalg.eigvalsh(gram))


def vendi_from_kernel(K: np.ndarray) -> float:
    """Vendi score of a given similarity matrix with unit diagonal."""
    K = np.asarray(K, dtype=np.float64)
    return entropy_exp(np.linalg.eigvalsh(K / K.shape[0]))
