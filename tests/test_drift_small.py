"""Drift edge cases: a tuned vocabulary wider than the base's (an added pad token), and the
interval of a mean over very few probes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gapscope.drift.audit import DriftOptions, compare
from gapscope.drift.forward import ProbeForward, kl_divergence
from gapscope.drift.probes import Probe, ProbeFamily
from gapscope.drift.stats import mean_ci, significant


def test_a_tuned_vocabulary_with_an_added_token_is_compared_over_the_shared_ids():
    g = torch.Generator().manual_seed(0)
    base = torch.log_softmax(torch.randn(2, 100, generator=g), -1)
    # the tuned model: the same distribution over the first 100 ids, plus an added token
    tuned = torch.log_softmax(torch.cat([base, torch.full((2, 1), -3.0)], -1), -1)
    np.testing.assert_allclose(kl_divergence(base, tuned), 0.0, atol=1e-6)
    fam = [ProbeFamily("f", probes=[Probe("a", "Q", (" x",), (" y",)), Probe("b", "Q2", (" x",), (" y",))])]
    d = compare(fam, ProbeForward(base, [[-1.0, -2.0]] * 2, [[1], [2]], ["a", "b"]),
                ProbeForward(tuned, [[-1.0, -2.0]] * 2, [[1], [2]], ["a", "b"]), DriftOptions(n_bootstrap=100))
    assert d.to_dict()["families"][0]["n_probes"] == 2
    # the added id's share is said, not hidden by a KL of zero
    mass = float(tuned[:, 100].exp().mean())
    assert d.vocab == {"base": 100, "tuned": 101, "shared": 100, "base_mass_outside": 0.0,
                       "tuned_mass_outside": pytest.approx(mass)}


def test_a_vocabulary_difference_is_said_in_the_findings_and_the_section():
    from gapscope.drift.report import drift_findings, section_html

    g = torch.Generator().manual_seed(0)
    base = torch.log_softmax(torch.randn(8, 100, generator=g), -1)
    # the tuned model moves its answers (and its next-token distribution) and adds a token
    tuned = torch.log_softmax(torch.cat([torch.randn(8, 100, generator=g) * 3, torch.full((8, 1), 2.0)], -1), -1)
    fam = [ProbeFamily("f", probes=[Probe(f"p{i}", f"Q{i}", (" x",), (" y",)) for i in range(8)])]
    b = ProbeForward(base, [[-1.0, -2.0]] * 8, [[1]] * 8, ["a"] * 8)
    t = ProbeForward(tuned, [[-3.0, -0.5]] * 8, [[2]] * 8, ["b"] * 8)
    d = compare(fam, b, t, DriftOptions(n_bootstrap=100)).to_dict()
    (f,) = drift_findings(d)
    said = f"the tuned model puts {d['vocab']['tuned_mass_outside']:.1%} of its next-token probability on the ids only it has"
    assert "The vocabularies differ (100 ids in the base, 101 in the tuned model)" in f.summary and said in f.summary
    assert f.evidence["vocab"] == d["vocab"]
    d["families"][0].update(significant=False, changed=False)  # no finding: the section still says it
    assert drift_findings(d) == [] and said in section_html([d])
    same = compare(fam, b, ProbeForward(tuned[:, :100], [[-3.0, -0.5]] * 8, [[2]] * 8, ["b"] * 8),
                   DriftOptions(n_bootstrap=100)).to_dict()
    assert same["vocab"] is None and "vocabularies differ" not in drift_findings(same)[0].summary


def test_few_probes_get_a_t_interval_not_a_narrow_bootstrap():
    # null families (no directional drift, sd 1.5 nats): the percentile bootstrap of 2-5 probes
    # called 7-27% of them drift; a t interval keeps it under the nominal 5%
    rng = np.random.default_rng(1)
    for n in (2, 3, 5):
        hits = np.mean([significant(mean_ci(rng.normal(0, 1.5, n), n_resamples=400, seed=i), 1.0)
                        for i in range(1000)])
        assert hits < 0.05, n
    ci = mean_ci([2.1, 2.3])
    assert ci.mean == pytest.approx(2.2) and ci.hi - ci.lo == pytest.approx(2 * 12.706 * 0.1, rel=1e-3)  # t(0.975, 1) * sd / sqrt(2)
    # from 8 probes on, the bootstrap (seeded resamples: the seed moves it); below, the t interval
    x = np.random.default_rng(3).normal(size=8)
    assert mean_ci(x, seed=0) != mean_ci(x, seed=1) and mean_ci(x[:7], seed=0) == mean_ci(x[:7], seed=1)
