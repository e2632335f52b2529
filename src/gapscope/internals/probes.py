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


@dataclass
class ProbeCurves:
    train_domain: str
    layers: list[int]  # cached layer indices (0 = embed, l+1 = resid_post.l)
    transfer: dict[str, list[float | None]] = field(default_factory=dict)
    oracle: dict[str, list[float | None]] = field(default_factory=dict)
    n_train: int = 0
    n_test: dict[str, int] = field(default_factory=dict)

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
                "n_test": self.n_test, "selected": self.selected_layer(),
                "transfer": {d: r(v) for d, v in self.transfer.items()},
                "oracle": {d: r(v) for d, v in self.oracle.items()}}


def probe_curves(train_X: np.ndarray, train_y: np.ndarray, tests: dict[str, tuple[np.ndarray, np.ndarray]],
                 layers: Sequence[int], train_domain: str, C: float = 0.5, folds: int = 5,
                 oracle: bool = True, seed: int = 0) -> ProbeCurves:
    """train_X: (n, L+1, d); tests: {domain: ((m, L+1, d), labels)}."""
    out = ProbeCurves(train_domain, list(layers), n_train=len(train_y),
                      n_test={d: len(y) for d, (_, y) in tests.items()})
    for d in tests:
        out.transfer[d] = []
        out.oracle[d] = []
    ok = len(np.unique(train_y)) == 2
    for l in layers:
        f = _fit(train_X[:, l].astype(np.float32), train_y, C, seed)[0] if ok else None
        for d, (X, y) in tests.items():
            Xl = X[:, l].astype(np.float32)
            out.transfer[d].append(auroc(y, f(Xl)) if f is not None and len(y) else None)
            out.oracle[d].append(cv_auroc(Xl, y, C, folds, seed) if oracle and len(y) else None)
    return out
