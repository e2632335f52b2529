"""Layer-wise linear probes with cross-domain transfer.

At every cached layer a logistic-regression probe is trained on the representations of
the cell's training rows of domain A and scored on the held-out rows of every domain B:

    transfer[B][l]  AUROC on B's held-out rows of the probe trained on A at layer l
                    (B = A: the in-domain curve)
    oracle[B][l]    cross-validated AUROC of a probe trained and tested within B's
                    held-out rows: is B's label linearly decodable at all at layer l?

Read against the model's own AUROC on B: a representation whose A-probe transfers to B
while the model does not points at the read-out; a probe that does not transfer either
points at the representation (and `oracle` says whether B's label is there at all,
encoded along another direction).

A layer whose features do not vary over the training rows (a causal LM's embedding of the answer
token, the same token in every email) has no probe: its AUROC would read 0.5 by construction, a
floor under "the best layer" that hides a signal reversed at every real layer.

With the model's own scores on B, `gap_lower[B]` is the lower confidence bound of the selected
layer's probe AUROC minus the model's on B's rows: a paired bootstrap (both score the same emails),
resampled within each class, one-sided at `alpha`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def auroc(y: np.ndarray, s: np.ndarray) -> float | None:
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def _fit(X: np.ndarray, y: np.ndarray, C: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    mu, sd = X.mean(0), X.std(0) + 1e-6
    clf = LogisticRegression(C=C, max_iter=400, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit((X - mu) / sd, y)
    return lambda Z: clf.decision_function((Z - mu) / sd), clf.coef_[0] / sd


def cv_auroc(X: np.ndarray, y: np.ndarray, C: float, folds: int = 5, seed: int = 0) -> float | None:
    """Out-of-fold AUROC of a probe within one set of rows (None with too few of a class)."""
    y = np.asarray(y)
    counts = np.bincount(y, minlength=2)
    k = int(min(folds, counts.min()))
    if k < 2:
        return None
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros(len(y))
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(X, y):
        f, _ = _fit(X[tr], y[tr], C, seed)
        oof[te] = f(X[te])
    return auroc(y, oof)


def paired_auroc_gap_lower(y: np.ndarray, s1: np.ndarray, s2: np.ndarray, alpha: float, n_boot: int | None = None,
                           seed: int = 0) -> float | None:
    """Lower `alpha` bound of AUROC(s1) - AUROC(s2) on the same rows: the rows resampled within each
    class (so every draw has both), the same draw for both scores. None with under 2 of a class.
    The draws scale with the level (at least 50 in the tail: a Bonferroni level of 0.5% read off
    2,000 draws would rest on 10 of them and move with the seed), made in chunks of 2,000."""
    from scipy.stats import rankdata

    y = np.asarray(y)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) < 2 or len(neg) < 2:
        return None
    n_boot = n_boot or max(2000, int(np.ceil(50 / alpha)))
    rng = np.random.default_rng(seed)
    s1, s2 = np.asarray(s1, dtype=np.float64), np.asarray(s2, dtype=np.float64)
    n1, n0 = len(pos), len(neg)

    def aurocs(s: np.ndarray, ip: np.ndarray, ineg: np.ndarray) -> np.ndarray:
        # Mann-Whitney per draw from mid-ranks (ties count half), O(n log n) per draw
        r = rankdata(np.concatenate([s[ip], s[ineg]], axis=1), axis=1)
        return (r[:, :n1].sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0)

    d = []
    for start in range(0, n_boot, 2000):
        k = min(2000, n_boot - start)
        ip, ineg = rng.choice(pos, size=(k, n1)), rng.choice(neg, size=(k, n0))
        d.append(aurocs(s1, ip, ineg) - aurocs(s2, ip, ineg))
    return float(np.quantile(np.concatenate(d), alpha))


@dataclass
class ProbeCurves:
    train_domain: str
    layers: list[int]  # cached layer indices (0 = embed, l+1 = resid_post.l)
    transfer: dict[str, list[float | None]] = field(default_factory=dict)
    oracle: dict[str, list[float | None]] = field(default_factory=dict)
    n_train: int = 0
    n_test: dict[str, int] = field(default_factory=dict)
    n_test_by_class: dict[str, list[int]] = field(default_factory=dict)  # [legitimate, phishing]
    gap_lower: dict[str, float | None] = field(default_factory=dict)
    alpha: float | None = None

    def selected_layer(self) -> int:
        """Position (into `layers`) chosen on the in-domain curve only: the best in-domain
        AUROC, ties (within 0.01) going to the deeper layer. Never chosen on a target domain."""
        cur = self.transfer.get(self.train_domain) or []
        vals = [v if v is not None else -1.0 for v in cur]
        if not vals:
            return len(self.layers) - 1
        best = max(vals)
        return max(i for i, v in enumerate(vals) if v >= best - 0.01)

    def to_dict(self) -> dict:
        r = lambda xs: [None if x is None else round(x, 4) for x in xs]  # noqa: E731
        return {"train_domain": self.train_domain, "layers": self.layers, "n_train": self.n_train,
                "n_test": self.n_test, "n_test_by_class": self.n_test_by_class, "selected": self.selected_layer(),
                "transfer": {d: r(v) for d, v in self.transfer.items()},
                "oracle": {d: r(v) for d, v in self.oracle.items()},
                "gap_lower": {d: None if v is None else round(v, 4) for d, v in self.gap_lower.items()},
                "alpha": self.alpha}


def probe_curves(train_X: np.ndarray, train_y: np.ndarray, tests: dict[str, tuple[np.ndarray, np.ndarray]],
                 layers: Sequence[int], train_domain: str, C: float = 0.5, folds: int = 5,
                 oracle: bool = True, seed: int = 0, model_scores: dict[str, np.ndarray] | None = None,
                 alpha: float = 0.025) -> ProbeCurves:
    """train_X: (n, L+1, d); tests: {domain: ((m, L+1, d), labels)}; model_scores: {domain: the
    model's margins on those rows}, for `gap_lower`."""
    out = ProbeCurves(train_domain, list(layers), n_train=len(train_y),
                      n_test={d: len(y) for d, (_, y) in tests.items()},
                      n_test_by_class={d: np.bincount(np.asarray(y, dtype=int), minlength=2).tolist()
                                       for d, (_, y) in tests.items()})
    for d in tests:
        out.transfer[d] = []
        out.oracle[d] = []
    ok = len(np.unique(train_y)) == 2
    scores: dict[str, list[np.ndarray | None]] = {d: [] for d in tests}
    for l in layers:
        Xt = train_X[:, l].astype(np.float32)
        varies = bool(len(Xt)) and bool(np.ptp(Xt, axis=0).max() > 0)
        f = _fit(Xt, train_y, C, seed)[0] if ok and varies else None
        for d, (X, y) in tests.items():
            Xl = X[:, l].astype(np.float32)
            s = f(Xl) if f is not None and len(y) else None
            scores[d].append(s)
            out.transfer[d].append(auroc(y, s) if s is not None else None)
            out.oracle[d].append(cv_auroc(Xl, y, C, folds, seed) if oracle and varies and len(y) else None)
    if model_scores is not None:
        out.alpha = alpha
        sel = out.selected_layer()
        for d, (_, y) in tests.items():
            s = scores[d][sel] if scores[d] else None
            out.gap_lower[d] = (paired_auroc_gap_lower(y, s, model_scores[d], alpha, seed=seed)
                                if s is not None and d in model_scores else None)
    return out
