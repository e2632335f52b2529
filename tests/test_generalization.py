"""The generalization detector's comparison of paradigms, read off a small matrix."""

import numpy as np
import pytest

from gapscope.detectors.generalization import paradigm_comparison


def _e(model, paradigm, domain, f1, in_domain):
    return {"model": model, "paradigm": paradigm, "test_domain": domain, "f1": f1, "in_domain": in_domain}


def _matrix(generalist_domains=("a", "b", "c"), lodo=False):
    es = []
    for d, home in (("a", 0.98), ("b", 0.96)):  # specialists on a and b, scored on a, b, c
        for t in "abc":
            es.append(_e("m", f"specialist:{d}", t, home if t == d else 0.5, t == d))
    for t in "abc":
        es.append(_e("m", "generalist", t, 0.9 if t in generalist_domains else 0.7, t in generalist_domains))
    if lodo:
        es += [_e("m", "lodo:a", t, 0.8 if t == "a" else 0.95, t != "a") for t in "abc"]
    return es


def test_the_generalist_is_compared_like_with_like():
    (f,) = paradigm_comparison(_matrix())
    ev = f.evidence
    # on a and b (the domains with a specialist), all seen by the generalist
    assert ev["generalist_f1"] == pytest.approx(0.9) and ev["specialist_home_f1"] == pytest.approx(0.97)
    assert ev["specialists_away_f1"] == pytest.approx(0.5)
    assert "never saw" in f.summary and "lodo = true" in f.summary  # not claimed to generalise
    assert "closes" not in f.summary


def test_unseen_domains_and_lodo_cells_are_the_generalisation_evidence():
    (f,) = paradigm_comparison(_matrix(generalist_domains=("a", "c")))
    assert f.evidence["domains"] == ["a"] and f.evidence["unseen_domains"] == ["b"]
    assert f.domains == ["a", "b"]  # the finding's own domains, not only its evidence
    assert f.evidence["generalist_unseen_f1"] == pytest.approx(0.7)
    assert f.evidence["specialists_unseen_f1"] == pytest.approx(0.5)
    (f,) = paradigm_comparison(_matrix(lodo=True))
    assert f.evidence["lodo_heldout_f1"] == pytest.approx(0.8)
    assert f.evidence["specialists_away_on_lodo_domains_f1"] == pytest.approx(0.5)


def test_no_comparison_without_both_paradigms():
    es = [e for e in _matrix() if e["paradigm"] != "generalist"]
    assert paradigm_comparison(es) == []


def test_costs_and_gains_read_as_words():
    (f,) = paradigm_comparison(_matrix())
    assert "mixing costs 0.07 F1" in f.summary and "in training gains 0.40 F1" in f.summary


def test_a_drop_just_under_a_bar_does_not_read_as_meeting_it():
    from gapscope.detectors.generalization import _severity, f1_drop_text

    assert _severity(0.2976) == "medium" and f1_drop_text(0.2976) == "0.298"
    assert f1_drop_text(0.31) == "0.31" and f1_drop_text(0.2) == "0.20"
    assert _severity(0.3) == "high" and _severity(0.04) is None


def test_a_low_out_of_domain_f1_says_what_it_is_made_of():
    from gapscope.detectors.generalization import why_low

    e = {"auroc": 0.96, "n": 50, "n_positive": 25, "f1": 0.0}
    assert "the threshold does not" in why_low(e, 0.0)
    e = {"auroc": 0.52, "n": 50, "n_positive": 27, "f1": 0.70}
    said = why_low(e, 1.0)
    assert "flagging everything (0.70)" in said and "not skill" in said
    # flagging everything with a perfect ranking is a threshold that does not transfer, not a lack of skill
    said = why_low({"auroc": 1.0, "n": 50, "n_positive": 25, "f1": 0.67}, 1.0)
    assert "not skill" not in said and "the threshold does not" in said and "AUROC 1.00" in said
    assert "fails there too" in why_low({"auroc": 0.55, "n": 50, "n_positive": 25}, 0.4)
    # an F1 of 0 from flagging nothing says so, whatever the ranking
    assert why_low({"auroc": 0.50, "n": 50, "n_positive": 25}, 0.0).startswith("it flags 0% of the emails")


def test_gap_findings_carry_auroc_and_flagged_share(tmp_path):
    from gapscope.data.synth import SynthConfig
    from gapscope.detectors.generalization import run
    from tests.study_helpers import mini_study

    study = mini_study(tmp_path, SynthConfig(seed=0, n_per_domain=400, domains=["fraud", "personal", "alerts"]),
                       specialist=["fraud"])
    gaps = [f for f in run(study) if f.kind == "generalization_gap"]
    assert gaps
    rows = gaps[0].evidence["per_domain"]
    assert all("auroc" in r and r["flagged_share"] is not None and 0 <= r["flagged_share"] <= 1 for r in rows)
    assert "AUROC" in gaps[0].summary
    # a consumer can tell which cell a gap belongs to without parsing its title
    cell = next(c for c in study.cells if c.name == gaps[0].evidence["cell"])
    assert (cell.model, cell.paradigm) == (gaps[0].evidence["model"], gaps[0].evidence["paradigm"])


def test_a_gap_measured_on_a_handful_of_in_domain_rows_stays_low():
    # a 3-row domain: trained on 2 rows, scored on 1 held-out row, F1 1.00 [1.00, 1.00], and the
    # drop elsewhere read as a high, significant gap
    from types import SimpleNamespace

    from gapscope.detectors.generalization import MIN_IN_DOMAIN, run

    def entry(domain, f1, n, in_domain):
        return {"model": "m", "paradigm": "specialist:three", "test_domain": domain, "f1": f1, "n": n,
                "n_positive": n // 2, "in_domain": in_domain, "f1_ci": [f1, f1] if n == 1 else [f1 - 0.1, f1 + 0.1],
                "auroc": 0.6}

    def study(n_in):
        return SimpleNamespace(matrix=[entry("three", 1.0, n_in, True), entry("big", 0.6, 80, False)], cells=[])

    (few,) = run(study(1))
    assert few.severity == "low" and few.evidence["in_domain_n"] == 1
    assert "rests on 1 held-out row(s), too few to measure it" in few.summary and "Significant" not in few.summary
    (enough,) = run(study(MIN_IN_DOMAIN))
    assert enough.severity == "high" and "Significant drops on 1 of 1" in enough.summary


def test_a_drop_within_the_in_domain_interval_is_not_significant():
    # read against the in-domain point estimate, two equal domains measured on a few dozen rows
    # each gave a "significant" drop in a quarter of the cells
    from types import SimpleNamespace

    from gapscope.detectors.generalization import run

    def entry(domain, f1, ci, in_domain):
        return {"model": "m", "paradigm": "specialist:a", "test_domain": domain, "f1": f1, "n": 36,
                "n_positive": 18, "in_domain": in_domain, "f1_ci": ci, "auroc": 0.8}

    home = entry("a", 0.84, [0.70, 0.95], True)
    assert run(SimpleNamespace(matrix=[home, entry("b", 0.66, [0.50, 0.80], False)], cells=[])) == []
    (gap,) = run(SimpleNamespace(matrix=[home, entry("b", 0.50, [0.35, 0.65], False)], cells=[]))
    assert gap.severity == "high" and "Significant drops on 1 of 1" in gap.summary


def _scored(rng, n, flip):
    """Labels, and margins that get `flip` of the n labels wrong (threshold 0)."""
    y = np.array([0, 1] * (n // 2))
    m = np.where(y == 1, 1.0, -1.0)
    wrong = rng.choice(n, size=flip, replace=False)
    m[wrong] *= -1
    return y, m


def _paired_study(n, wrong):
    """Specialists on a and b and a generalist, scored on a and b's n test emails each; `wrong` maps
    (paradigm, domain) to how many of them the cell gets wrong."""
    from gapscope.eval.metrics import compute_metrics

    rng = np.random.default_rng(0)
    entries, scores = [], {}
    for (p, d), k in wrong.items():
        y, m = _scored(rng, n, k)
        ids = np.array([f"{d}-{i:03d}" for i in range(n)])
        scores.setdefault(("m", p), {})[d] = (ids, y, m, 0.0)
        in_domain = p == "generalist" or p == f"specialist:{d}"
        entries.append(_e("m", p, d, compute_metrics(y, m, 0.0).values["f1"], in_domain))
    return entries, scores


def test_paradigm_gain_gets_a_paired_interval_and_is_low_only_when_it_excludes_zero():
    """The generalist against the specialists away from home: a gain of 0.05 F1 or more was "low" on
    its point estimate alone; on 20 emails a domain that is a coin flip away from it is no evidence."""
    wrong = {("specialist:a", "a"): 1, ("specialist:b", "b"): 1, ("specialist:a", "b"): 4,
             ("specialist:b", "a"): 4, ("generalist", "a"): 2, ("generalist", "b"): 2}
    entries, scores = _paired_study(20, wrong)
    (f,) = paradigm_comparison(entries, scores, seed=0, n_resamples=400)
    ev = f.evidence
    assert ev["style_gain"] >= 0.05 and ev["style_gain_ci"][0] < 0 < ev["style_gain_ci"][1]
    assert f.severity == "info" and "paired bootstrap" in f.summary
    assert ev["mixing_change_ci"][0] <= ev["mixing_change"] <= ev["mixing_change_ci"][1]
    # the same cells on 400 emails: the gain is measured, and rated
    entries, scores = _paired_study(400, {k: v * 20 for k, v in wrong.items()})
    (f,) = paradigm_comparison(entries, scores, seed=0, n_resamples=400)
    assert f.evidence["style_gain_ci"][0] > 0 and f.severity == "low"
    # without the scores (a matrix alone) there is no interval: the point estimate rates it
    (f,) = paradigm_comparison(entries)
    assert f.evidence["style_gain_ci"] is None and f.severity == "low" and "paired bootstrap" not in f.summary


def test_a_paired_interval_of_a_cell_against_itself_is_zero():
    from gapscope.detectors.generalization import paired_interval

    y, m = _scored(np.random.default_rng(1), 30, 5)
    s = (np.array([str(i) for i in range(30)]), y, m, 0.0)
    assert paired_interval([("a", [s], [s])], seed=0, n_resamples=200) == [0.0, 0.0]
    other = (np.array([str(i) for i in range(1, 31)]), y, m, 0.0)  # other emails: not paired
    assert paired_interval([("a", [s], [other])], seed=0, n_resamples=200) is None
