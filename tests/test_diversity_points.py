"""Diversity vs out-of-domain F1: one point per choice of training domains. Models that train
on different-size subsamples of the same domain have different training sets, but not
independent ones: counting each as a point overstates n and the evidence."""

from __future__ import annotations

import numpy as np
import pytest

from gapscope.diversity.analysis import METRICS, CellDiversity, analyse


def _cells(rng, n_domains, models=("tfidf", "minilm", "llm")):
    """A null world: a domain's diversity and its out-of-domain F1 are unrelated; each model
    trains on its own subsample of the domain (its own set), measuring nearly the domain's value."""
    xd, fd = rng.normal(20, 3, n_domains), rng.normal(0.6, 0.15, n_domains)
    cells = [CellDiversity(f"{m}__specialist-d{d}", m, f"specialist:d{d}", f"{m}-d{d}",
                           fd[d] + rng.normal(0, 0.05) + 0.1 * i, {k: xd[d] + rng.normal(0, 0.5) for k in METRICS})
             for i, m in enumerate(models) for d in range(n_domains)]
    for c in cells:
        c.train_domains = [c.paradigm.removeprefix("specialist:")]  # as the detector passes them
    return cells


def test_subsamples_of_one_domain_are_one_point():
    cells = _cells(np.random.default_rng(1), 4)
    c = analyse(cells)["correlation"]["embedding_vendi"]
    assert c["n"] == 4  # four domains, not twelve sets
    # the point is the mean over the domain's subsamples
    one = analyse([c_ for c_ in cells if c_.paradigm == "specialist:d0"] + cells[1:2])  # d0 (3 sets) and d1
    assert one["correlation"]["distinct_1"]["n"] == 2
    # without train_domains the paradigm names the domains: the same points
    bare = [CellDiversity(c_.cell, c_.model, c_.paradigm, c_.set_key, c_.out_of_domain_f1, c_.metrics) for c_ in cells]
    assert analyse(bare)["correlation"]["embedding_vendi"] == c


def test_null_worlds_are_significant_at_about_the_nominal_rate():
    # 400 seeded null worlds, 8 domains x 3 models: counting each model's subsample as a point
    # gave p < 0.05 in 16% of them; one point per domain keeps it near 5% (binomial sd 1.1%)
    rng = np.random.default_rng(0)
    hits = [analyse(_cells(rng, 8))["correlation"]["embedding_vendi"] for _ in range(400)]
    assert np.mean([h["p"] < 0.05 for h in hits]) < 0.08
    assert all(h["n"] == 8 for h in hits)


def test_a_true_relation_across_domains_is_still_found():
    rng = np.random.default_rng(2)
    cells = _cells(rng, 6)
    for c in cells:  # F1 now rises with the domain's diversity
        c.out_of_domain_f1 = 0.02 * c.metrics["embedding_vendi"]
    c = analyse(cells)["correlation"]["embedding_vendi"]
    assert c["n"] == 6 and c["rho"] == pytest.approx(1.0) and c["p"] < 0.05
