"""A cell's error rates on a set of emails, from its confusion counts, and their uncertainty.

F1 depends on the phishing share as well as on the error rates, so two domains are compared at one
share: the rates measured on each, carried to that share (metrics.f1_at_share). The uncertainty of a
rate is drawn from its Jeffreys posterior, Beta(k + 1/2, n - k + 1/2): unlike a bootstrap of the rows,
it does not collapse when a rate is observed at 0 or 1 (6 of 6 phishing emails caught, no false alarm
among 30), which made "significant" gaps out of a handful of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gapscope.eval.metrics import f1_at_share

N_DRAWS = 20_000  # per rate: the Bonferroni tail of 5 compared domains holds 100 draws, of 25 still 20


def at_size(k: int, total: int, eff: float | None) -> tuple[float, float]:
    """(hits, misses) of a Jeffreys posterior at an effective size: the rate k / total kept, the
    evidence scaled to `eff` rows (None: the counts as they are)."""
    return (k, total - k) if eff is None or not total else (k * eff / total, (total - k) * eff / total)


@dataclass(frozen=True)
class Rates:
    tp: int
    fn: int
    fp: int
    tn: int
    # effective numbers of phishing and legitimate rows where copies of one email were held out
    # together (eval/clusters.py): the draws read the counts at these sizes; None: every row counts
    eff_pos: float | None = None
    eff_neg: float | None = None

    @classmethod
    def from_entry(cls, e: dict) -> "Rates | None":
        """The counts behind a matrix entry, recovered from its recall and accuracy (gapscope writes them as
        exact ratios of counts); None where the entry does not carry them, or carries rounded values that
        no counts reproduce."""
        n, n_pos = e.get("n"), e.get("n_positive")
        if not n or n_pos is None or e.get("accuracy") is None or (n_pos and e.get("recall") is None):
            return None
        tp = round((e.get("recall") or 0.0) * n_pos)  # recall is 0 by convention without phishing rows
        tn = round(e["accuracy"] * n) - tp
        if not (0 <= tp <= n_pos and 0 <= tn <= n - n_pos):
            return None
        if abs((tp + tn) / n - e["accuracy"]) > 1e-9 or (n_pos and abs(tp / n_pos - e["recall"]) > 1e-9):
            return None
        eff = e.get("n_effective") or {}
        return cls(tp, n_pos - tp, n - n_pos - tn, tn, eff.get("phishing"), eff.get("legitimate"))

    @classmethod
    def pooled(cls, parts: list["Rates"]) -> "Rates":
        counts = (sum(getattr(p, f) for p in parts) for f in ("tp", "fn", "fp", "tn"))
        pos = None if all(p.eff_pos is None for p in parts) else sum(
            p.n_pos if p.eff_pos is None else p.eff_pos for p in parts)
        neg = None if all(p.eff_neg is None for p in parts) else sum(
            p.n_neg if p.eff_neg is None else p.eff_neg for p in parts)
        return cls(*counts, pos, neg)

    @property
    def n_pos(self) -> int:
        return self.tp + self.fn

    @property
    def n_neg(self) -> int:
        return self.fp + self.tn

    @property
    def n(self) -> int:
        return self.n_pos + self.n_neg

    @property
    def share(self) -> float:
        return self.n_pos / self.n

    @property
    def recall(self) -> float:
        return self.tp / self.n_pos if self.n_pos else float("nan")

    @property
    def fpr(self) -> float:
        return self.fp / self.n_neg if self.n_neg else float("nan")

    def f1_at(self, share: float) -> float:
        """F1 these rates give at a phishing share (at the set's own share: its F1 as counted)."""
        return float(f1_at_share(self.recall, self.fpr if self.n_neg else 0.0, share))

    def draws(self, rng: np.random.Generator, n: int = N_DRAWS) -> tuple[np.ndarray, np.ndarray]:
        """Jeffreys draws of (recall, false-positive rate), each at its class's effective size."""
        (a, b), (c, d) = at_size(self.tp, self.n_pos, self.eff_pos), at_size(self.fp, self.n_neg, self.eff_neg)
        return (rng.beta(a + 0.5, b + 0.5, n), rng.beta(c + 0.5, d + 0.5, n))


def f1_loss_draws(home: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray],
                  share: float) -> np.ndarray:
    """Draws of (F1 of the home rates − F1 of the other set's rates), both at `share`."""
    return f1_at_share(home[0], home[1], share) - f1_at_share(other[0], other[1], share)
