"""A cell's losses on other domains, read against its in-domain error rates at each domain's share.

F1 moves with the phishing share alone, so a domain is compared with the F1 the cell's in-domain
recall and false-positive rate give at that domain's share; a domain without phishing has no F1, and
there the false-positive rate's rise is the loss. A loss is beyond noise when its lower confidence
bound (Jeffreys draws of the rates, eval/rates.py; Bonferroni over the domains the cell is compared
on) is above zero. The generalization detector's findings and the run's summary both read this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gapscope.eval.bootstrap import domain_seed
from gapscope.eval.metrics import f1_at_share
from gapscope.eval.rates import Rates, f1_loss_draws

MIN_LOSS = 0.05  # the smallest loss reported (the generalization findings' "low" bar)
ALPHA = 0.05  # one-sided at ALPHA / 2, Bonferroni over the domains a cell is compared on


@dataclass(frozen=True)
class Compared:
    """One other domain set against a cell's in-domain rates."""
    entry: dict
    rates: Rates
    drop: float  # F1 lost at the domain's phishing share; on a domain without phishing, false-positive rate gained
    lower: float  # lower confidence bound of `drop` (Bonferroni over the cell's domains)
    expected: float | None  # F1 the in-domain rates give at the domain's share (None without phishing)
    raw_lower: float | None  # lower bound of the drop as measured, each side at its own share

    @property
    def domain(self) -> str:
        return self.entry["test_domain"]


def compare_domains(home: Rates, others: list[tuple[dict, Rates]], seed: int, key: str) -> list[Compared]:
    """Each other domain against the in-domain rates: F1 at the domain's phishing share, or the
    false-positive rate where the domain holds no phishing. Jeffreys draws, seeded per cell (`key`)
    and domain, so the bounds do not depend on the order of the matrix."""
    q = 100 * ALPHA / 2 / max(len(others), 1)
    hd = home.draws(np.random.default_rng(domain_seed(seed, f"home|{key}")))
    out = []
    for e, r in others:
        od = r.draws(np.random.default_rng(domain_seed(seed, f"{key}|{e['test_domain']}")))
        if r.n_pos:
            s = r.share
            expected = home.f1_at(s)
            raw = f1_at_share(hd[0], hd[1], home.share) - f1_at_share(od[0], od[1], s)
            out.append(Compared(e, r, expected - r.f1_at(s), float(np.percentile(f1_loss_draws(hd, od, s), q)),
                                expected, float(np.percentile(raw, q))))
        else:
            out.append(Compared(e, r, r.fpr - home.fpr, float(np.percentile(od[1] - hd[1], q)), None, None))
    return out


def in_domain_rates(entries: list[dict]) -> tuple[Rates | None, list[str], list[str]]:
    """The cell's in-domain rates, the domains they pool, and the single-class in-domain domains
    left out. A phishing-only corpus in a training mix adds recall and no false alarm (a
    legitimate-only one the reverse): pooled in, recall 46 of 46 on it buried 4 of 16 on the mix's
    one two-class domain, and the held-out domain "lost 0.21 F1" against rates no real domain has.
    Where no in-domain domain holds both classes, all are pooled (and the pool's classes decide)."""
    ins = [(e["test_domain"], Rates.from_entry(e)) for e in entries if e["in_domain"] and e.get("n")]
    if not ins or any(r is None for _, r in ins):
        return None, [d for d, _ in ins], []
    both = [(d, r) for d, r in ins if r.n_pos and r.n_neg]
    use = both or ins
    kept = [d for d, _ in use]
    return Rates.pooled([r for _, r in use]), kept, [d for d, _ in ins if d not in kept]


def compare_cell(entries: list[dict], seed: int) -> tuple[Rates, list[str], list[str], list[Compared]] | None:
    """One cell's matrix entries: its in-domain rates (with the domains pooled and those left out) and
    every other domain compared against them; None where the entries lack the counts behind them or
    the in-domain pool holds one class (no rates to carry to another share)."""
    home, ref, left_out = in_domain_rates(entries)
    others = [(e, Rates.from_entry(e)) for e in entries if not e["in_domain"] and e.get("n")]
    if home is None or not home.n_pos or not home.n_neg or any(r is None for _, r in others):
        return None
    e0 = entries[0]
    return home, ref, left_out, compare_domains(home, others, seed, f"{e0['model']}|{e0['paradigm']}")


def beyond_noise(compared: list[Compared], min_drop: float = MIN_LOSS) -> list[Compared]:
    """Losses whose lower bound is above zero and that reach `min_drop`, largest first."""
    return sorted([c for c in compared if c.lower > 0 and c.drop >= min_drop], key=lambda c: -c.drop)
