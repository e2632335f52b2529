"""Faithfulness of an attribution: does removing the words it ranks highest change the prediction?

All scores read the probability the model gives its own predicted class,
p(x) = sigmoid(s * margin(x)) with s = +1 if margin(text) > 0 (phishing) else -1
(margins are log-odds for every kind: LR decision function, logit differences).
Words are ranked by their weight toward the predicted class, s * weight, highest
first (ties keep text order). Removal is deletion, as in the attribution methods.

deletion AUC       remove the top q of the words, q = 0, 1/steps, ..., 1; area under
                   p against q. Lower is better (the prediction collapses fast).
insertion AUC      start from the empty email and restore the top q; area under p.
                   Higher is better.
comprehensiveness  mean over q in `fractions` of p(x) - p(x without its top q words)
                   (DeYoung et al., ERASER). Higher is better.
sufficiency        mean over q of p(x) - p(only the top q words kept). Lower is better.

Every perturbed text of one email is scored in one batched call.

`compare` reads two methods on the same emails as paired differences with a sign-flip
permutation test: on a handful of emails a gap in the means can be noise, and a verdict on
faithfulness should say which gaps are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from gapscope.attribution.base import Attribution, score_keeps
from gapscope.attribution.words import split_words

FRACTIONS = (0.05, 0.1, 0.2, 0.5)
STEPS = 20
SCORES = ("deletion_auc", "insertion_auc", "comprehensiveness", "sufficiency")
HIGHER_IS_BETTER = {"deletion_auc": False, "insertion_auc": True, "comprehensiveness": True, "sufficiency": False}


@dataclass
class Faithfulness:
    deletion_auc: float
    insertion_auc: float
    comprehensiveness: float
    sufficiency: float
    n_words: int
    p_full: float
    deletion_curve: list[float] = field(default_factory=list)
    insertion_curve: list[float] = field(default_factory=list)

    def to_dict(self, curves: bool = False) -> dict:
        d = asdict(self)
        if not curves:
            d.pop("deletion_curve")
            d.pop("insertion_curve")
        return d


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _k(q: float, n: int) -> int:
    return 0 if q <= 0 else max(1, int(round(q * n)))


def evaluate(model, attribution: Attribution, *, fractions: Sequence[float] = FRACTIONS,
             steps: int = STEPS, order: np.ndarray | None = None) -> Faithfulness:
    """Faithfulness of `attribution` for `model` (the model it explains). `order` overrides the
    ranking (e.g. a random order, the baseline any method should beat)."""
    text = attribution.text
    words = split_words(text)
    n = len(words)
    if n == 0:  # nothing to remove (an empty or whitespace-only email): no scores, left out of summaries
        nan = float("nan")
        return Faithfulness(nan, nan, nan, nan, 0, 0.5)
    if n != len(attribution.tokens):
        raise ValueError("attribution tokens do not match the word cutter")
    weights = attribution.weights
    k = attribution.in_view
    if k is not None and k < n:  # the model reads the first k words: the curves remove and restore those
        words = split_words(text[:words.ends[k - 1]])
        weights = weights[:k]
        if order is not None:
            order = np.asarray([i for i in order if i < k])
        n = k
    qs = np.linspace(0.0, 1.0, steps + 1)
    ks_curve = [_k(q, n) for q in qs]
    ks_frac = [_k(q, n) for q in fractions]
    # The full text is evaluated with everything else, so no margin is read from the attribution.
    margins_needed = ["full"] + [("del", k) for k in ks_curve] + [("ins", k) for k in ks_curve] + \
                     [("del", k) for k in ks_frac] + [("ins", k) for k in ks_frac]
    unique: dict = {}
    for key in margins_needed:
        unique.setdefault(key, len(unique))

    def keeps_for(sign: float) -> np.ndarray:
        rank = order if order is not None else np.argsort(-(sign * weights), kind="stable")
        keeps = np.ones((len(unique), n), dtype=bool)
        for key, row in unique.items():
            if key == "full":
                continue
            what, k = key
            top = rank[:k]
            if what == "del":
                keeps[row, top] = False
            else:
                keeps[row] = False
                keeps[row, top] = True
        return keeps

    # The sign comes from the model's margin on the text; the attribution's recorded margin is
    # the same number for every method here, so use it to build the ranking in one pass.
    full_sign = 1.0 if attribution.margin > 0 else -1.0
    margins = score_keeps(model, words, keeps_for(full_sign))
    if (margins[unique["full"]] > 0) != (full_sign > 0):  # attribution.margin was stale: redo with the true sign
        full_sign = -full_sign
        margins = score_keeps(model, words, keeps_for(full_sign))
    p = _sigmoid(full_sign * margins)
    p_full = float(p[unique["full"]])
    dcurve = np.array([p[unique[("del", k)]] for k in ks_curve])
    icurve = np.array([p[unique[("ins", k)]] for k in ks_curve])
    comp = float(np.mean([p_full - p[unique[("del", k)]] for k in ks_frac]))
    suff = float(np.mean([p_full - p[unique[("ins", k)]] for k in ks_frac]))
    return Faithfulness(deletion_auc=float(np.trapezoid(dcurve, qs)), insertion_auc=float(np.trapezoid(icurve, qs)),
                        comprehensiveness=comp, sufficiency=suff, n_words=n, p_full=p_full,
                        deletion_curve=[round(float(x), 5) for x in dcurve],
                        insertion_curve=[round(float(x), 5) for x in icurve])


def summarize(results: Sequence[Faithfulness]) -> dict[str, float]:
    """Means over emails with words to remove (what the bench and the reports print)."""
    results = [r for r in results if r.n_words]
    if not results:
        return {}
    return {k: round(float(np.mean([getattr(r, k) for r in results])), 4) for k in SCORES} | {"n": len(results)}


MIN_PAIRED = 8  # emails below which a paired comparison gives no reading (see compare)
_EXACT_FLIPS = 12  # up to 2^12 sign patterns enumerated; Monte Carlo beyond


def compare(method: Sequence[Faithfulness], reference: Sequence[Faithfulness], *, seed: int = 0,
            resamples: int = 10_000) -> dict[str, dict]:
    """Per score: the mean paired difference method - reference over the same emails, a 95% t
    interval, the two-sided p-value of a sign-flip permutation test (exact up to 12 emails), and a
    reading: "better" or "worse" when p < 0.05, else "within noise". Below MIN_PAIRED emails there
    is no reading ("too few emails"): a percentile bootstrap over 3-10 paired differences called
    two methods drawn from one distribution different in 10-26% of cases, and with 3 emails no
    permutation test can reach 0.05. Emails without words (n_words 0) are left out."""
    from itertools import product

    from scipy import stats

    if len(method) != len(reference):
        raise ValueError("compare needs the same emails for both methods")
    pairs = [(a, b) for a, b in zip(method, reference) if a.n_words and b.n_words]
    out: dict[str, dict] = {}
    for k in SCORES:
        d = np.array([getattr(a, k) - getattr(b, k) for a, b in pairs], dtype=np.float64)
        n = len(d)
        diff = float(d.mean()) if n else 0.0
        ci, p = None, None
        if n >= 2:
            half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n))
            ci = [round(diff - half, 4), round(diff + half, 4)]
            if n <= _EXACT_FLIPS:
                signs = np.array(list(product((1.0, -1.0), repeat=n)))
            else:
                signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(resamples, n))
            null = np.abs((signs * d).mean(1))
            hits = int(np.sum(null >= abs(diff) - 1e-12))
            # exact: the observed pattern is among the 2^n; Monte Carlo: counted in (never p = 0)
            p = hits / len(signs) if n <= _EXACT_FLIPS else (hits + 1) / (len(signs) + 1)
        reading = "within noise"
        if n < MIN_PAIRED:
            reading = "too few emails"
        elif p is not None and p < 0.05 and diff != 0:
            better = diff > 0 if HIGHER_IS_BETTER[k] else diff < 0
            reading = "better" if better else "worse"
        out[k] = {"difference": round(diff, 4), "ci95": ci, "p": None if p is None else round(p, 4),
                  "reading": reading, "higher_is_better": HIGHER_IS_BETTER[k], "n": n}
    return out


def random_order(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)
