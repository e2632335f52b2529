"""How often the generalization detector calls a gap where there is none, and how often it finds one
that is there: simulated cells with known recall and false-positive rate, read by the detector's own
test (`compare_domains`) and by the earlier one (the domain's F1 bootstrap interval below the in-domain
F1 interval). Usage: .venv/bin/python scripts/gap_null.py [--reps N]

Each setting is (in-domain rows, in-domain phishing share, rows per other domain, their share); five
other domains, recall 0.9 and false-positive rate 0.1 everywhere (the null), or recall `r` on one of
them (power). A cell counts when any domain gives a gap of at least 0.05 F1 that its test calls
significant.
"""

from __future__ import annotations

import argparse

import numpy as np

from gapscope.eval.gaps import MIN_LOSS, compare_domains
from gapscope.eval.bootstrap import bootstrap_cis
from gapscope.eval.rates import Rates

SETTINGS = [(40, 0.5, 24, 0.5), (40, 0.5, 24, 0.9), (40, 0.5, 24, 0.1), (200, 0.03, 100, 0.5),
            (200, 0.3, 200, 0.05), (100, 0.5, 100, 0.5)]
POWER = [((40, 0.5, 24, 0.5), 0.5), ((100, 0.5, 100, 0.5), 0.7), ((100, 0.5, 400, 0.05), 0.4)]


def _draw(rng, n, share, recall, fpr):
    n_pos = rng.binomial(n, share)
    tp, fp = rng.binomial(n_pos, recall), rng.binomial(n - n_pos, fpr)
    y = np.r_[np.ones(n_pos), np.zeros(n - n_pos)]
    margin = np.r_[np.where(np.arange(n_pos) < tp, 1.0, -1.0), np.where(np.arange(n - n_pos) < fp, 1.0, -1.0)]
    return y, margin, Rates(tp, n_pos - tp, fp, n - n_pos - fp)


def one_cell(rng, setting, weak_recall=None, k=5):
    home_n, home_s, n, s = setting
    yh, mh, home = _draw(rng, home_n, home_s, 0.9, 0.1)
    if not home.n_pos or not home.n_neg:
        return None
    others = []
    for j in range(k):
        y, m, r = _draw(rng, n, s, weak_recall if (weak_recall and j == 0) else 0.9, 0.1)
        if r.n_pos:
            others.append(({"test_domain": f"d{j}", "y": y, "m": m}, r))
    seed = int(rng.integers(2**31))
    new = any(c.lower > 0 and c.drop >= MIN_LOSS for c in compare_domains(home, others, seed, "sim"))
    in_f1 = home.f1_at(home.share)
    in_lo = bootstrap_cis(yh, mh, 0.0, n_resamples=400, seed=seed)["f1"].lo
    old = any((hi := bootstrap_cis(e["y"], e["m"], 0.0, n_resamples=400, seed=seed + 1)["f1"].hi) is not None
              and hi < in_lo and in_f1 - r.f1_at(r.share) >= MIN_LOSS for e, r in others)
    return new, old


def rate(setting, reps, weak_recall=None, seed=0):
    rng = np.random.default_rng(seed)
    runs = [x for x in (one_cell(rng, setting, weak_recall) for _ in range(reps)) if x is not None]
    return sum(n for n, _ in runs) / len(runs), sum(o for _, o in runs) / len(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=400)
    reps = ap.parse_args().reps
    print("null (equal rates): share of cells with a significant gap, new test / earlier test")
    for st in SETTINGS:
        new, old = rate(st, reps)
        print(f"  in-domain {st[0]} @ {st[1]:.0%}, 5 x {st[2]} @ {st[3]:.0%}: {new:.3f} / {old:.3f}")
    print("power (recall 0.9 -> r on one domain): share of cells with the gap found, new / earlier")
    for st, r in POWER:
        new, old = rate(st, reps, r)
        print(f"  in-domain {st[0]} @ {st[1]:.0%}, 5 x {st[2]} @ {st[3]:.0%}, r = {r}: {new:.3f} / {old:.3f}")


if __name__ == "__main__":
    main()
