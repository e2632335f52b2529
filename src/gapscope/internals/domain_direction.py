"""Is the decision direction a domain direction?

Per layer, in the noise-whitened metric with cross-validated lengths (the "crossnobis"
estimate of representational similarity analysis):

    metric             rows are scaled per dimension by the spread of their residuals around
                       their group means (training rows per class, held-out rows per domain x
                       class), then whitened by the shrunk (Ledoit-Wolf) covariance of those
                       residuals: the noise metric, which class and domain shifts do not enter. Residual
                       streams are anisotropic: in plain coordinates any two mean differences,
                       even of randomly split rows, share their few dominant axes (the
                       permuted-label null measured 0.35-0.54 there on SmolLM2), which hides
                       alignment of the size a shortcut leaves. Whitened, noise is isotropic.
    label contrast     difference of class means on the cell's training rows
    domain contrasts   balanced: class-balanced centroid of the target domain (the cell's
                       training domain) minus that of the other domains, on held-out rows.
                       per class: target's phishing centroid minus the other domains'
                       phishing centroid (and for legitimate). A shortcut that lives in one
                       class of one domain (a footer on its phishing only) is a class x domain
                       interaction: it shifts that class' centroid and not the other's, and
                       the balanced contrast averages it with the other class' shift.
    cos                <label, domain> / sqrt(|label|^2 |domain|^2), where each squared length
                       is cross-validated: the mean of <contrast on half A, contrast on half B>
                       over random half splits of every group. Plain squared lengths are
                       inflated by the noise of every dimension (whitened, d dimensions of
                       unit noise), which would shrink every cosine toward 0; the
                       cross-validated ones are unbiased. The numerator needs no correction:
                       the label contrast (training rows) and the domain contrast (held-out
                       rows) come from disjoint rows. `cos_phishing` / `cos_legitimate` use the
                       per-class contrasts; `cos_max` is the one of the three largest in size
                       (`aligned_with` names it). None when a contrast carries no signal
                       (cross-validated squared length <= 0).
    null95             95th percentile of max over the three of |<permuted label, domain>|
                       / sqrt(|label|^2 |domain|^2), training labels permuted within each
                       training domain: how aligned a direction that carries no label would
                       read. Shuffling the domain labels instead does not give a null: when
                       the domains are well separated, a random split's mean difference is
                       dominated by its chance imbalance of true domains.
    domain AUROC       how well the projection on the label direction (class-mean difference in
                       standardised coordinates) tells the target domain from the others, within each class
                       (averaged): a decision coordinate that also sorts emails by origin.
                       `domain_auroc` is signed (target above the others); `domain_separability`
                       takes each class' max(AUROC, 1 - AUROC), so opposite shifts of the two
                       classes (an out-of-domain class gap squeezed from both sides) do not cancel
    decodability       cross-validated balanced accuracy of predicting the domain from the
                       representation (linear), against chance 1/#domains

A positive cos means the target domain sits on the phishing side of the decision
direction: emails from other domains are pushed toward "legitimate" (missed phishing);
negative, toward "phishing" (false alarms).

Measured on SmolLM2 specialists over a footer planted in one domain's phishing
(`gapscope validate --checks internals`, seeds 0-4): at the read-out the phishing-class cosine
is 0.24-0.54 (permuted-label null 0.07-0.14), against -0.01 to 0.12 for a control specialist
whose footer sits in both classes; the legitimate-class cosine is about the same with and
without the footer (-0.25 to +0.03 vs -0.23 to 0.00: out-of-domain legitimate mail sits toward
phishing either way). In plain standardised coordinates the null was 0.35-0.54, the footer
showed only through the legitimate-class direction (2 of 3 seeds), and at seed 3 the control
passed its null while the planted cell did not.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from gapscope.internals.probes import auroc

Parts = list[tuple[np.ndarray, float]]  # (row indices, weight): a contrast of group means


def standardizer(X: np.ndarray):
    mu, sd = X.mean(0), X.std(0) + 1e-6
    return lambda Z: (Z - mu) / sd


def balanced_centroid(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    parts = [X[y == c].mean(0) for c in (0, 1) if (y == c).any()]
    return np.mean(parts, axis=0)


def _group_residuals(X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    R = X.copy()
    for g in np.unique(groups):
        m = groups == g
        R[m] -= X[m].mean(0)
    return R


def noise_whitener(residuals: np.ndarray):
    """Z -> Z whitened by the Ledoit-Wolf shrunk covariance of `residuals` (Cholesky, no inverse)."""
    from scipy.linalg import solve_triangular
    from sklearn.covariance import LedoitWolf

    C = LedoitWolf(assume_centered=True, store_precision=False).fit(residuals).covariance_
    scale = np.trace(C) / len(C)
    if not np.isfinite(scale) or scale <= 1e-12:  # no variation at all (e.g. one token's embedding)
        return lambda Z: np.asarray(Z, dtype=np.float64)
    L = np.linalg.cholesky(C + 1e-9 * scale * np.eye(len(C)))
    return lambda Z: solve_triangular(L, np.asarray(Z, dtype=np.float64).T, lower=True).T


def contrast(X: np.ndarray, parts: Parts) -> np.ndarray:
    return sum(w * X[idx].mean(0) for idx, w in parts)


def cv_norm2(X: np.ndarray, parts: Parts, rng: np.random.Generator, reps: int = 16) -> float | None:
    """Unbiased squared length of a contrast: mean over random half splits of every group (by
    distinct row) of <contrast(half A), contrast(half B)>. None when a group has < 2 distinct rows."""
    uniq = [np.unique(idx) for idx, _ in parts]
    if any(len(u) < 2 for u in uniq):
        return None
    vals = []
    for _ in range(reps):
        A, B = [], []
        for (idx, w), u in zip(parts, uniq):
            inA = np.isin(idx, rng.permutation(u)[: len(u) // 2])
            A.append((idx[inA], w))
            B.append((idx[~inA], w))
        vals.append(float(contrast(X, A) @ contrast(X, B)))
    return float(np.mean(vals))


def _cos(num: float, n1: float | None, n2: float | None) -> float | None:
    if n1 is None or n2 is None or n1 <= 0 or n2 <= 0:
        return None
    return float(np.clip(num / np.sqrt(n1 * n2), -1.0, 1.0))


MIN_GROUP = 5  # rows of one class on one side: two legitimate emails made a "high" direction (a review)


def _side(mask: np.ndarray, classes: list[np.ndarray], sign: float) -> Parts:
    """The class-balanced centroid of the rows in `mask` (each class present weighted equally)."""
    present = [mask & c for c in classes if (mask & c).any()]
    return [(np.flatnonzero(m), sign / len(present)) for m in present]


def label_parts(y: np.ndarray) -> Parts:
    return [(np.flatnonzero(y == 1), 1.0), (np.flatnonzero(y == 0), -1.0)]


def domain_parts(y: np.ndarray, dom: np.ndarray, target: str) -> dict[str, Parts | None]:
    """The three domain contrasts over held-out rows, target minus the others (None when a side is
    empty); the balanced one averages over the classes each side has."""
    t, o = dom == target, dom != target
    P, L = y == 1, y == 0
    out: dict[str, Parts | None] = {}
    for name, classes in (("balanced", [P, L]), ("phishing", [P]), ("legitimate", [L])):
        # a class counts only with MIN_GROUP rows on both sides: kept on one side alone, the balanced
        # contrast became target phishing against the others' two classes, half the label direction
        classes = [c for c in classes if (t & c).sum() >= MIN_GROUP and (o & c).sum() >= MIN_GROUP]
        pos, neg = _side(t, classes, 1.0), _side(o, classes, -1.0)
        out[name] = pos + neg if pos and neg else None
    return out


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
    metric: str = "crossnobis"

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
    chance = 1.0 / max(len(np.unique(test_dom)), 1)
    if len(np.unique(train_y)) < 2:
        return DirectionResult(layer, None, None, None, None, None, None, chance)
    X_tr, X_te = train_X.astype(np.float64), test_X.astype(np.float64)
    groups_tr = np.asarray([f"train|{c}" for c in train_y])
    groups_te = np.char.add(np.char.add(np.asarray(test_dom, dtype=str), "|"), np.asarray(test_y).astype(str))
    # Scale by the within-group (residual) spread, so the shrinkage below pulls the noise
    # correlations toward 0 without rescaling dimensions by how much domains or classes move them.
    resid = np.concatenate([_group_residuals(X_tr, groups_tr), _group_residuals(X_te, groups_te)])
    sd = resid.std(0) + 1e-6 * (resid.std() + 1e-12)
    white = noise_whitener(resid / sd)
    mu = np.concatenate([X_tr, X_te]).mean(0)
    tr, te = white((X_tr - mu) / sd), white((X_te - mu) / sd)
    rng = np.random.default_rng(seed)
    lab_parts = label_parts(train_y)
    lab = contrast(tr, lab_parts)
    lab_n2 = cv_norm2(tr, lab_parts, rng)
    dparts = domain_parts(np.asarray(test_y), np.asarray(test_dom), target)
    present = {n: p for n, p in dparts.items() if p is not None}
    dvec = {n: contrast(te, p) for n, p in present.items()}
    dn2 = {n: cv_norm2(te, p, rng) for n, p in present.items()}
    cosines = {n: (_cos(float(lab @ dvec[n]), lab_n2, dn2[n]) if n in present else None) for n in DIRECTIONS}
    null95 = cos_max = aligned_with = None
    valid = {n: c for n, c in cosines.items() if c is not None}
    if valid:
        aligned_with = max(valid, key=lambda n: abs(valid[n]))
        cos_max = valid[aligned_with]
        if n_null:
            D = np.stack([dvec[n] / np.sqrt(lab_n2 * dn2[n]) for n in valid])
            groups = train_dom if train_dom is not None else np.zeros(len(train_y))
            sims = []
            for _ in range(n_null):
                yp = _permuted(train_y, groups, rng)
                if len(np.unique(yp)) < 2:
                    continue
                sims.append(float(np.abs(D @ contrast(tr, label_parts(yp))).max()))
            null95 = float(np.quantile(sims, 0.95)) if sims else None
    # The decision coordinate is read in plain standardised coordinates: whitened, nearly any
    # direction tells well-separated domains apart (the noise dimensions are scaled up too).
    z = standardizer(np.concatenate([X_tr, X_te]))
    proj = z(X_te) @ contrast(z(X_tr), lab_parts)
    is_t = (test_dom == target).astype(int)
    per_class = [auroc(is_t[test_y == c], proj[test_y == c]) for c in (0, 1)]
    per_class = [a for a in per_class if a is not None]
    dom_auc = float(np.mean(per_class)) if per_class else None
    dom_sep = float(np.mean([max(a, 1 - a) for a in per_class])) if per_class else None
    lab_auc = auroc(test_y[test_dom == target], proj[test_dom == target])
    dec = domain_decodability(X_te, test_dom, seed=seed) if decode else None
    return DirectionResult(layer, cosines["balanced"], null95, dom_auc, dom_sep, lab_auc, dec, chance,
                           cosines["phishing"], cosines["legitimate"], cos_max, aligned_with)
