"""Is the decision direction a domain direction?

Per layer, in coordinates standardised per dimension (residual streams have a few huge
dimensions that would otherwise dominate every direction):

    label direction    difference of class means on the cell's training rows
    domain direction   class-balanced centroid of the target domain (the cell's training
                       domain) minus the class-balanced centroid of the other domains, on
                       held-out rows. Class-balancing removes label composition, so what
                       is left is where the model puts a domain regardless of labels.
    per-class domain   the same within one class: target's phishing centroid minus the other
    directions         domains' phishing centroid (and for legitimate). A shortcut that lives
                       in one class of one domain (a footer on its phishing only) is a class x
                       domain interaction: it shifts one class' centroid and not the other's,
                       so the balanced direction averages it with the other class' shift and
                       can cancel it (the out-of-domain classes squeezed from both sides).
    cos                cosine of the label direction with the balanced domain direction;
                       `cos_phishing` / `cos_legitimate` with the per-class ones; `cos_max` the
                       one of the three largest in size (`aligned_with` names it)
    null95             95th percentile of max(|cos|, |cos_phishing|, |cos_legitimate|) when the
                       training labels are permuted (within each training domain): how aligned
                       a direction that carries no label would be, given how anisotropic the
                       representation is (random splits of the rows differ along its dominant
                       axes). Taking the max over the three keeps the 5% level for `cos_max`.
                       Shuffling the domain labels instead does not give a null: when the
                       domains are well separated, a random split's mean difference is
                       dominated by its chance imbalance of true domains, so that "null"
                       reproduces the real domain direction and hides alignment of any size.
    domain AUROC       how well the projection on the label direction tells the target
                       domain from the others, within each class (averaged): a decision
                       coordinate that also sorts emails by origin. `domain_auroc` is
                       signed (target above the others); `domain_separability` takes each
                       class' max(AUROC, 1 - AUROC), so opposite shifts of the two classes
                       (an out-of-domain class gap squeezed from both sides) do not cancel
    decodability       cross-validated balanced accuracy of predicting the domain from the
                       representation (linear), against chance 1/#domains

A positive cos means the target domain sits on the phishing side of the decision
direction: emails from other domains are pushed toward "legitimate" (missed phishing);
negative, toward "phishing" (false alarms).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from gapscope.internals.probes import auroc


def standardizer(X: np.ndarray):
    mu, sd = X.mean(0), X.std(0) + 1e-6
    return lambda Z: (Z - mu) / sd


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def label_direction(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _unit(X[y == 1].mean(0) - X[y == 0].mean(0))


def balanced_centroid(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    parts = [X[y == c].mean(0) for c in (0, 1) if (y == c).any()]
    return np.mean(parts, axis=0)


def domain_direction(X: np.ndarray, y: np.ndarray, dom: np.ndarray, target: str,
                     cls: int | None = None) -> np.ndarray | None:
    """Class-balanced (cls None) or within-class target-minus-others direction; None when a side is empty."""
    t, o = dom == target, dom != target
    if cls is not None:
        t, o = t & (y == cls), o & (y == cls)
    if not t.any() or not o.any():
        return None
    if cls is not None:
        return _unit(X[t].mean(0) - X[o].mean(0))
    return _unit(balanced_centroid(X[t], y[t]) - balanced_centroid(X[o], y[o]))


DIRECTIONS = ("balanced", "phishing", "legitimate")


@dataclass
class DirectionResult:
    layer: int
    cos: float | None  # with the class-balanced domain direction
    null95: float | None  # label-permutation null of the largest |cos| of the three
    domain_auroc: float | None  # along the label direction, class-balanced, signed
    domain_separability: float | None  # per class max(AUROC, 1 - AUROC), averaged
    label_auroc: float | None  # along the label direction, on held-out rows of the target domain
    decodability: float | None
    chance: float
    cos_phishing: float | None = None
    cos_legitimate: float | None = None
    cos_max: float | None = None
    aligned_with: str | None = None

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def domain_decodability(X: np.ndarray, dom: np.ndarray, folds: int = 4, seed: int = 0) -> float | None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold

    labels, codes = np.unique(dom, return_inverse=True)
    if len(labels) < 2:
        return None
    k = int(min(folds, np.bincount(codes).min()))
    if k < 2:
        return None
    pred = np.zeros(len(codes), dtype=int)
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(X, codes):
        z = standardizer(X[tr])
        clf = LogisticRegression(C=0.5, max_iter=400)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(z(X[tr]), codes[tr])
        pred[te] = clf.predict(z(X[te]))
    return float(balanced_accuracy_score(codes, pred))


def _permuted(y: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = y.copy()
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        out[idx] = y[rng.permutation(idx)]
    return out


def analyse_layer(layer: int, train_X: np.ndarray, train_y: np.ndarray, test_X: np.ndarray, test_y: np.ndarray,
                  test_dom: np.ndarray, target: str, n_null: int = 100, decode: bool = True,
                  seed: int = 0, train_dom: np.ndarray | None = None) -> DirectionResult:
    z = standardizer(np.concatenate([train_X, test_X]))
    tr, te = z(train_X), z(test_X)
    chance = 1.0 / max(len(np.unique(test_dom)), 1)
    if len(np.unique(train_y)) < 2:
        return DirectionResult(layer, None, None, None, None, None, None, chance)
    lab = label_direction(tr, train_y)
    dirs = {name: domain_direction(te, test_y, test_dom, target, cls)
            for name, cls in zip(DIRECTIONS, (None, 1, 0))}
    cosines = {name: (float(lab @ d) if d is not None else None) for name, d in dirs.items()}
    present = {name: d for name, d in dirs.items() if d is not None}
    null95 = cos_max = aligned_with = None
    if present:
        aligned_with = max(present, key=lambda n: abs(cosines[n]))
        cos_max = cosines[aligned_with]
        if n_null:
            D = np.stack(list(present.values()))
            groups = train_dom if train_dom is not None else np.zeros(len(train_y))
            rng = np.random.default_rng(seed)
            sims = []
            for _ in range(n_null):
                yp = _permuted(train_y, groups, rng)
                if len(np.unique(yp)) < 2:
                    continue
                sims.append(float(np.abs(D @ label_direction(tr, yp)).max()))
            null95 = float(np.quantile(sims, 0.95)) if sims else None
    proj = te @ lab
    is_t = (test_dom == target).astype(int)
    per_class = [auroc(is_t[test_y == c], proj[test_y == c]) for c in (0, 1)]
    per_class = [a for a in per_class if a is not None]
    dom_auc = float(np.mean(per_class)) if per_class else None
    dom_sep = float(np.mean([max(a, 1 - a) for a in per_class])) if per_class else None
    lab_auc = auroc(test_y[test_dom == target], proj[test_dom == target])
    dec = domain_decodability(te, test_dom, seed=seed) if decode else None
    return DirectionResult(layer, cosines["balanced"], null95, dom_auc, dom_sep, lab_auc, dec, chance,
                           cosines["phishing"], cosines["legitimate"], cos_max, aligned_with)
