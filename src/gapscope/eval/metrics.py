"""Classification metrics on label margins, with explicit behaviour on degenerate test sets.

Every metric is written once, as a weighted formula over a batch of row weights:
the point estimate uses weight 1 per row, and the bootstrap uses resample counts,
so a CI and its point estimate can never disagree about what a metric means.

Inputs: labels `y` (1 = phishing, 0 = legitimate), margins `s` (> 0 leans phishing)
and a threshold `t` chosen on training data; predictions are `s > t`, and the
calibrated probability is `sigmoid(s - t)`.

Degenerate sets. A metric listed in `MetricSet.undefined` is not a measurement on
this set, and the reason says why:
- empty set: every metric is None;
- one class (e.g. a phishing-only corpus): AUROC is None, "one class in test set";
- no phishing rows: recall and F1 are reported as 0.0, no predicted phishing rows:
  precision is 0.0 -- scikit-learn's `zero_division=0` convention, so the numbers
  match sklearn while the reason marks them as conventions, not measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

METRIC_NAMES = ("f1", "precision", "recall", "accuracy", "auroc", "ece")
ECE_BINS = 10
# Metrics that take sklearn's zero_division=0 value instead of None when undefined.
_ZERO_DIVISION = {"f1", "precision", "recall"}


@dataclass(frozen=True)
class MetricSet:
    values: dict[str, float | None]
    undefined: dict[str, str] = field(default_factory=dict)
    n: int = 0
    n_positive: int = 0


def as_arrays(y, s) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert labels/margins; bad scores are a bug upstream, so fail loudly."""
    y = np.asarray(y).astype(np.int64).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y, s


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def auroc_se(a: float, n_pos: int, n_neg: int) -> float:
    """Hanley and McNeil's (1982) standard error of an AUROC `a` measured on n_pos and n_neg emails:
    for a bound where only the AUROC and the class counts were kept, not the scores."""
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    return float(np.sqrt(max(a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a), 0.0)
                         / (n_pos * n_neg)))


def f1_at_share(recall, fpr, share):
    """F1 that a classifier with this recall and false-positive rate reaches, in expectation, on mail of
    which `share` is phishing: 2·s·R / (s·R + s + (1 − s)·FPR). F1 depends on the phishing share as
    well as on the error rates; this moves a cell's rates from one domain to another's share."""
    recall, fpr, share = (np.asarray(v, dtype=np.float64) for v in (recall, fpr, share))
    return _ratio(2 * share * recall, share * recall + share + (1 - share) * fpr)


def _weighted_auroc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUROC per weight row; tied scores count one half (as sklearn's trapezoid)."""
    order = np.argsort(s, kind="stable")
    s_sorted, y_sorted = s[order], y[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, np.diff(s_sorted) != 0])
    ws = w[:, order]
    pos = np.add.reduceat(ws * y_sorted, starts, axis=1)
    neg = np.add.reduceat(ws * (1.0 - y_sorted), starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    return _ratio(wins, pos.sum(axis=1) * neg.sum(axis=1))


def metric_batch(y, s, threshold: float, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric for each row of `weights` (shape B x n); NaN where not a measurement."""
    y, s = as_arrays(y, s)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    pred = (s > threshold).astype(np.float64)
    yf = y.astype(np.float64)
    tp = w @ (yf * pred)
    fp = w @ ((1 - yf) * pred)
    fn = w @ (yf * (1 - pred))
    tn = w @ ((1 - yf) * (1 - pred))
    pos, total = tp + fn, tp + fp + fn + tn
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    f1[pos == 0] = np.nan  # only ever 0 without positives: a convention, not a measurement

    # ECE = sum over bins of |sum(y) - sum(p)| / n, equal to the usual weighted gap form.
    p = expit(s - threshold)
    bins = np.minimum((p * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    onehot = np.zeros((s.size, ECE_BINS))
    onehot[np.arange(s.size), bins] = 1.0
    gap = np.abs(w @ (onehot * yf[:, None]) - w @ (onehot * p[:, None])).sum(axis=1)

    return {
        "f1": f1,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, pos),
        "accuracy": _ratio(tp + tn, total),
        "auroc": _weighted_auroc(y, s, w) if s.size else np.full(w.shape[0], np.nan),
        "ece": _ratio(gap, total),
    }


def undefined_reasons(y, s, threshold: float) -> dict[str, str]:
    """Why each degenerate metric is not a measurement on this set (empty when all are)."""
    y, s = as_arrays(y, s)
    if y.size == 0:
        return {m: "empty test set" for m in METRIC_NAMES}
    n_pos = int(y.sum())
    reasons: dict[str, str] = {}
    if n_pos in (0, y.size):
        only = "phishing" if n_pos else "legitimate"
        reasons["auroc"] = f"one class in test set (only {only})"
    if n_pos == 0:
        note = "no phishing rows in test set; reported as 0 (zero_division=0)"
        reasons["recall"] = note
        reasons["f1"] = note
    if not (s > threshold).any():
        reasons["precision"] = "no rows predicted phishing; reported as 0 (zero_division=0)"
    return reasons


def compute_metrics(y, s, threshold: float) -> MetricSet:
    """Point estimates of every metric in METRIC_NAMES, with reasons for degenerate ones."""
    y, s = as_arrays(y, s)
    batch = metric_batch(y, s, threshold, np.ones((1, y.size)))
    values: dict[str, float | None] = {}
    for name in METRIC_NAMES:
        v = float(batch[name][0])
        if np.isnan(v):
            values[name] = 0.0 if (name in _ZERO_DIVISION and y.size) else None
        else:
            values[name] = v
    return MetricSet(values, undefined_reasons(y, s, threshold), int(y.size), int(y.sum()))


def choose_threshold(y_train, s_train) -> float:
    """The threshold maximising training F1 (predictions s > t); ties go to the one closest to 0.

    Candidates are 0, the midpoints between consecutive distinct scores (a margin on
    both sides, rather than sitting on a training score), and one below the minimum
    (everything phishing). Deterministic: no randomness, stable tie-breaking.
    """
    y, s = as_arrays(y_train, s_train)
    if y.size == 0:
        return 0.0
    u = np.unique(s)
    cands = np.unique(np.r_[0.0, (u[:-1] + u[1:]) / 2, u[0] - 1.0])
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    pos_cum = np.r_[0, np.cumsum(y[order])]
    n_pos = int(y.sum())
    below = np.searchsorted(s_sorted, cands, side="right")  # rows predicted legitimate
    tp = n_pos - pos_cum[below]
    pred_pos = y.size - below
    den = pred_pos + n_pos  # 2tp + fp + fn
    f1 = np.where(den > 0, 2.0 * tp / np.maximum(den, 1), 0.0)
    best = np.flatnonzero(f1 == f1.max())
    # Equal rationals give bit-identical floats (IEEE division is correctly rounded).
    return float(cands[best[np.argmin(np.abs(cands[best]))]])
