"""Label-noise audit: confident learning, Wilson intervals, out-of-fold sources, the detector."""

import json

import numpy as np
import pytest

from gapscope.data.synth import SynthConfig
from gapscope.detectors import label_noise as L
from tests.study_helpers import mini_study


def test_wilson_interval():
    lo, hi = L.wilson(10, 100)
    assert lo == pytest.approx(0.0552, abs=1e-3) and hi == pytest.approx(0.1744, abs=1e-3)
    assert L.wilson(0, 0) == (0.0, 1.0)
    assert L.wilson(0, 50)[0] == 0.0


def test_confident_learning_finds_confidently_contradicted_labels():
    rng = np.random.default_rng(0)
    n = 400
    truth = rng.integers(0, 2, n)
    p1 = np.where(truth == 1, rng.uniform(0.75, 0.99, n), rng.uniform(0.01, 0.25, n))
    given = truth.copy()
    flips = rng.choice(n, 40, replace=False)
    given[flips] = 1 - given[flips]
    for filter_by in ("both", "confident_learning"):
        res = L.confident_learning(given, p1, filter_by)
        got = set(np.flatnonzero(res.flagged).tolist())
        # separable probabilities: nothing clean is flagged, most flips are
        assert got <= set(flips.tolist()), filter_by
        assert len(got) >= 0.5 * len(flips), filter_by
    # prune_by_noise_rate takes the estimated count of the most contradicted rows per direction
    pruned = set(np.flatnonzero(L.confident_learning(given, p1, "prune_by_noise_rate").flagged).tolist())
    assert len(pruned & set(flips.tolist())) >= 0.8 * len(flips)
    res = L.confident_learning(given, p1)
    # per-class thresholds are the mean self-confidence of each given label
    assert res.thresholds[1] == pytest.approx(p1[given == 1].mean())
    assert sum(res.joint[0]) + sum(res.joint[1]) <= n


def test_single_class_domain_flags_nothing():
    res = L.confident_learning(np.ones(10, dtype=int), np.full(10, 0.1))
    assert not res.flagged.any()


def _backdrop(n: int = 30, p_phish: float = 0.85):
    """Rows a source ranks well: a source must tell a domain's classes apart before it may flag."""
    labels = np.arange(n) % 2
    return labels, np.where(labels == 1, p_phish, 1 - p_phish)


def test_audit_combines_sources_per_domain():
    bl, bp = _backdrop()
    labels = np.r_[[1, 1, 0, 0], bl, [1, 1, 0, 0], bl]
    s1 = np.r_[[0.9, 0.1, 0.1, 0.2], bp, [0.9, 0.8, 0.2, 0.1], bp]
    s2 = np.r_[[0.8, 0.2, 0.2, np.nan], bp, [0.95, 0.9, 0.1, 0.9], bp]
    n = len(labels)
    res = L.audit([f"r{i}" for i in range(n)], ["a"] * (n // 2) + ["b"] * (n // 2), labels, {"s1": s1, "s2": s2})
    assert res.combined[3] == pytest.approx(0.2)  # missing source ignored
    assert res.flagged[1]  # labelled phishing, both sources say legitimate
    assert set(res.per_domain) == {"a", "b"}
    assert res.per_domain["a"]["n"] == 34


def test_a_row_is_flagged_only_when_a_source_flags_it_on_its_own():
    # the averaged evidence has its own per-class thresholds: row 5 (p = 0.5, scored by s1 alone)
    # passes them although s1 on its own does not flag it; nothing on its own contradicts it
    bl, bp = _backdrop(40, 0.7)
    labels = np.r_[[0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0], bl]
    s1 = np.r_[[0.8, 0.4, 0.5, 0.0, 0.8, 0.5, 0.3, 0.8, 0.3, 0.5, 0.1, 0.4], bp]
    s2 = np.r_[[0.5, 0.1, np.nan, 0.8, np.nan, np.nan, np.nan, np.nan, np.nan, 0.1, 0.6, np.nan], bp]
    res = L.audit([f"r{i}" for i in range(len(labels))], ["a"] * len(labels), labels, {"s1": s1, "s2": s2})
    assert res.flagged.any()
    for i in np.flatnonzero(res.flagged):
        assert any(f[i] for f in res.per_source_flags.values()), i
    assert not res.flagged[5]
    assert res.per_domain["a"]["flagged"] == int(res.flagged.sum())


def test_a_row_the_model_agrees_with_is_never_contradicted():
    """With a rare class its threshold is low: a legitimate-labelled row at p(legitimate) = 0.6 can sit
    off the confident joint's diagonal. At c51d90c it was flagged as 'confidently contradicted'."""
    rng = np.random.default_rng(0)
    labels = (np.arange(200) < 20).astype(int)  # 10% phishing
    p1 = np.where(labels == 1, rng.uniform(0.2, 0.5, 200), rng.uniform(0.0, 0.15, 200))
    p1[30:40] = 0.4  # legitimate rows the model calls legitimate, at 0.6, above phishing's low threshold
    res = L.confident_learning(labels, p1, "confident_learning")
    assert not res.flagged[30:40].any()
    p_given = np.where(labels == 1, p1, 1 - p1)
    assert (p_given[res.flagged] < 0.5).all()


def test_a_model_that_cannot_tell_the_classes_apart_flags_nothing():
    rng = np.random.default_rng(1)
    labels = np.arange(100) % 2
    p1 = 0.5 + rng.uniform(-0.01, 0.01, 100)  # no skill
    res = L.audit([f"r{i}" for i in range(100)], ["a"] * 100, labels, {"s": p1})
    assert not res.flagged.any() and res.per_domain["a"]["informative"] is False
    assert res.per_domain["a"]["chance_sources"] == ["s"]
    f = L._unaudited("a", res.per_domain["a"])
    assert f.severity == "info" and "no better than chance" in f.title


def test_a_domain_with_one_row_of_a_class_is_not_called_chance():
    """One phishing row among 30, ranked perfectly: there is no ranking to measure, and the info
    finding said the models rank its labels 'no better than chance' (a statistical review)."""
    labels = np.array([1] + [0] * 29)
    p1 = np.where(labels == 1, 0.99, 0.01)
    res = L.audit([f"r{i}" for i in range(30)], ["d"] * 30, labels, {"tfidf": p1})
    info = res.per_domain["d"]
    assert info["informative"] is None and info["chance_sources"] == [] and not res.flagged.any()
    f = L._unaudited("d", info)
    assert "chance" not in f.title and "fewer than two of a class (1 phishing, 29 legitimate)" in f.title
    assert "a sample of the other class from the same source" in f.summary and "cross_fit" not in f.summary
    assert L._unaudited_short(info) == "fewer than two rows of a class"


def test_the_noise_estimate_holds_where_phishing_is_rare():
    """10% phishing, 10% of labels flipped: a flipped legitimate row (now 'phishing') sits among
    phishing rows whose mean confidence is low, so the flagged share runs well below the planted
    rate; confident learning's calibrated estimate, and its interval, do not."""
    rng = np.random.default_rng(2)
    n = 1000
    truth = (rng.uniform(size=n) < 0.1).astype(int)
    given = truth.copy()
    flip = rng.choice(n, 100, replace=False)
    given[flip] = 1 - given[flip]
    p1 = 1 / (1 + np.exp(-(3.0 * (2 * truth - 1) - 1.0 + rng.normal(0, 1.2, n))))
    res = L.audit([f"r{i}" for i in range(n)], ["a"] * n, given, {"s": p1}, seed=0)
    info = res.per_domain["a"]
    lo, hi = info["noise_estimate_ci"]
    assert lo <= 0.1 <= hi
    assert info["ci"][1] < 0.1  # the flagged share's interval misses it
    assert L.noise_rate(truth, p1) < 0.03  # the true labels: little noise read


def _word_mail(n: int = 120) -> tuple[list[str], list[int]]:
    """n short emails, alternately legitimate (office words) and phishing (scam words)."""
    rng = np.random.default_rng(3)
    words = ["invoice", "meeting", "lunch", "report", "agenda", "team", "notes", "friday"]
    scam = ["verify", "account", "password", "suspended", "urgent", "login", "bank", "click"]
    texts, labels = [], []
    for i in range(n):
        y = i % 2
        texts.append(" ".join(rng.choice(scam if y else words, 6)) + f" r{i}")
        labels.append(y)
    return texts, labels


def _tfidf():
    from gapscope.models.base import ModelSpec, create_model

    return create_model(ModelSpec(name="t", kind="tfidf-lr"))


def test_copies_of_one_email_stay_in_one_fold():
    """A mislabelled email sent three times: with a copy in the training folds, its twin vouches for
    the wrong label out of fold."""
    texts, labels = _word_mail()
    wrong = "verify your password now or the account is suspended, click the bank login"
    texts += [wrong] * 3
    labels += [0, 0, 0]  # a phishing campaign labelled legitimate three times
    p = L._sigmoid(L.oof_margins(_tfidf, texts, np.array(labels), 5, 0))
    assert (p[-3:] > 0.5).all()  # each copy is scored by a model that saw none of them


def test_variants_of_one_email_stay_in_one_fold():
    """A mislabelled campaign sent in four variants (one word apart, not exact copies): grouped as
    the split groups near-copies, no variant vouches for another's wrong label out of fold."""
    texts, labels = _word_mail()
    wrong = ("dear customer we noticed unusual activity so verify your password now or the account is "
             "suspended within the hour, click the bank login below to confirm your identity and keep access")
    texts += [f"{wrong} ref {v}" for v in ("kq7", "zt2", "mw9", "pb4")]
    labels += [0, 0, 0, 0]  # a phishing campaign labelled legitimate, four variants
    groups = L.copy_groups(texts)
    assert len({groups[-k] for k in range(1, 5)}) == 1 and groups[0] != groups[-1]
    p = L._sigmoid(L.oof_margins(_tfidf, texts, np.array(labels), 5, 0, groups=groups))
    assert (p[-4:] > 0.5).all()  # each variant is scored by a model that saw none of them
    # exact copies only: the variants in the training folds vouch for the wrong label
    alone = L._sigmoid(L.oof_margins(_tfidf, texts, np.array(labels), 5, 0))
    assert (alone[-4:] < 0.5).any()


def test_audit_flags_a_mislabelled_campaign_sent_in_variants(tmp_path):
    """The detector groups its folds as the split does: a corporate phishing email replaced by four
    variants labelled legitimate (exact-copy folds: p 0.48-0.55, none flagged)."""
    import json

    from gapscope.data.synth import generate
    from gapscope.study.context import Study
    from gapscope.study.runner import run_study
    from gapscope.validate import write_spec

    corpus = generate(SynthConfig(seed=1, n_per_domain=200, domains=["fraud", "corporate"]))
    corpus.write(tmp_path / "corpus")
    f = tmp_path / "corpus" / "corporate.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines()]
    base = rows.pop(next(i for i, r in enumerate(rows) if r["label"] == 1))
    rows += [{**base, "id": f"variant-{v}", "text": base["text"] + f"\nref {v}", "label": 0}
             for v in ("kq7", "zt2", "mw9", "pb4")]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = write_spec(tmp_path / "corpus" / "spec.toml", name="t", seed=1, domains=corpus.domains,
                      models=[{"name": "tfidf", "kind": "tfidf-lr"}], specialist=corpus.domains, generalist=[],
                      test_fraction=0.3)
    run_study(spec, tmp_path / "run", detectors=False)
    audit = L.run_audit(Study(tmp_path / "run"))
    idx = [i for i, x in enumerate(audit.ids) if x.startswith("variant-")]
    assert len(idx) == 4
    assert (audit.sources["tfidf-lr (out of fold)"][idx] > 0.7).all() and audit.flagged[idx].all()


def test_a_class_that_is_one_campaign_is_still_audited():
    """A domain whose phishing is 20 variants of one email: grouped as near-copies, no fold can hold
    them out and train on the rest, so every row went unscored; its folds keep exact copies then, and say so."""
    from gapscope.data.rows import Row

    wrong = ("dear customer we noticed unusual activity so verify your password now or the account is "
             "suspended within the hour, click the bank login below to confirm your identity and keep access")
    rows = [Row(id=f"l{i}", domain="d", text=f"the {w} meeting {i} moved to friday, notes attached", label=0)
            for i, w in enumerate(["budget", "team", "design", "sales", "hiring"] * 8)]
    rows += [Row(id=f"p{i}", domain="d", text=f"{wrong} ref {i:03d}", label=1) for i in range(20)]
    near = L.copy_groups([r.text for r in rows])
    assert len({near[k] for k in range(40, 60)}) == 1
    keys, note = L._fold_groups(rows, near)
    assert note == ("its phishing rows are variants of one email, so its folds keep only exact copies together "
                    "and those variants vouch for one another's label out of fold")
    labels = np.array([r.label for r in rows])
    assert np.isnan(L.oof_margins(L.tfidf_factory(), [r.text for r in rows], labels, 5, 0, groups=near)).all()
    assert not np.isnan(L.oof_margins(L.tfidf_factory(), [r.text for r in rows], labels, 5, 0, groups=keys)).any()
    # two campaigns a class: near-copy groups, no note
    assert L._fold_groups(rows[:40] + rows[40:50] + [Row(id="q", domain="d", text="win a prize now", label=1)],
                          near[:50] + [-1]) == (near[:50] + [-1], None)


def test_rates_read_as_what_they_are():
    assert L.percent(0.0046) == "0.5%" and L.percent(0.041) == "4%" and L.percent(0.0) == "0%"
    assert L.percent(2 / 8000) == "<0.1%" and L.percent(8 / 8000) == "0.1%"  # 2 of 8,000 read '0.0%'


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    cfg = SynthConfig(seed=1, n_per_domain=300, domains=["fraud", "corporate"], label_noise={"rate": 0.1})
    study = mini_study(tmp_path_factory.mktemp("noisy"), cfg)
    return study, L.run(study)


def test_detector_flags_planted_noise_with_evidence(noisy):
    from gapscope.study import artifacts

    study, findings = noisy
    audit = artifacts.read_json(study.run_dir / "diagnostics" / "label_noise" / "audit.json")
    flipped = {f["id"] for f in study.manifest["label_noise"]["flipped"]}
    flagged = {r["id"] for r in audit["flagged"]}
    tp = len(flagged & flipped)
    assert tp / len(flagged) > 0.6 and tp / len(flipped) > 0.6
    assert "tfidf-lr (out of fold)" in audit["sources"] and "tfidf (held-out cells)" in audit["sources"]
    row = audit["flagged"][0]
    assert {"id", "location", "given_label", "p_given", "sources", "flagged_by", "cells_disagreeing", "split"} <= set(row)
    # each flagged row says where to fix it: the file and the line that holds it
    import json

    for r in audit["flagged"][:20]:
        name, line = r["location"].rsplit(":", 1)
        held = json.loads((study.run_dir.parent / "corpus" / name).read_text().splitlines()[int(line) - 1])
        assert (held["id"], held["domain"]) == (r["id"], r["domain"])
    assert row["p_given"] < 0.5
    # held-out cells only score held-out rows
    scored = set(audit["per_source"]["tfidf (held-out cells)"]["scored"])
    assert scored <= set(study.splits["test"])
    assert {f.kind for f in findings} == {"label_noise"}
    f = max(findings, key=lambda f: f.score)
    assert f.evidence["rate"] == pytest.approx(f.evidence["flagged"] / f.evidence["n"], abs=1e-3)
    assert f.evidence["ci"][0] <= f.evidence["rate"] <= f.evidence["ci"][1]
    assert "text" in f.evidence["rows"][0] and f.example_ids
    # a finding says what a contradicted label may be, and counts agreement where it is possible
    assert "mislabelled or hard cases" in f.title and "look wrong" not in f.title
    assert "scored by more than one source" in f.summary
    assert f"of the {f.evidence['n']} labels audited in" in f.summary and "training and held-out test rows" in f.summary
    assert all(r["flagged_by"] for r in audit["flagged"])
    # the rate is read from one source, named, with the rows it scored; disagreeing cells say whether
    # they trained on the row's domain (another domain's cell disagrees by its generalization gap)
    assert f.evidence["estimate_source"] == "tfidf-lr (out of fold)"
    assert f"From the scores of tfidf-lr (out of fold), which scored all {f.evidence['n']}" in f.summary
    assert all("trained_on_domain" in c for r in audit["flagged"] for c in r["cells_disagreeing"])
    # the report draws the thresholds and the confident joint by class name ('0 | 0.63' and an
    # unlabelled [[61, 4], [2, 69]] before)
    assert set(f.evidence["thresholds"]) == {"legitimate", "phishing"}
    joint = f.evidence["confident_joint"]
    assert set(joint) == {"given legitimate", "given phishing"}
    assert all(set(v) == {"likely legitimate", "likely phishing"} for v in joint.values())
    assert sum(n for v in joint.values() for n in v.values()) <= f.evidence["n"]


def test_clean_corpus_is_not_high_severity(tmp_path):
    cfg = SynthConfig(seed=1, n_per_domain=300, domains=["fraud", "corporate"])
    study = mini_study(tmp_path, cfg)
    assert all(f.severity != "high" for f in L.run(study))


def test_a_domain_too_small_to_cross_fit_is_said_not_skipped():
    texts = ["verify your account now", "lunch at noon", "team notes attached", "agenda for friday"]
    labels = np.array([1, 0, 0, 0])  # one phishing row: no two folds can hold both classes
    p = L._sigmoid(L.oof_margins(L.tfidf_factory(), texts, labels, 5, 0))
    assert np.isnan(p).all()
    res = L.audit([f"r{i}" for i in range(4)], ["tiny"] * 4, labels, {"tfidf": p})
    f = L._unaudited("tiny", res.per_domain["tiny"])
    assert f is not None and "no source scored its rows" in f.title


def test_folds_are_counted_in_distinct_emails():
    """One phishing email sent six times is one email: no fold split can score it out of fold, and
    the domain is left unscored rather than the audit failing (sklearn: more splits than groups)."""
    make = L.tfidf_factory()
    legit = [f"meeting notes {w} friday" for w in "alpha bravo charlie delta echo foxtrot golf hotel india".split()]
    texts = legit + ["verify your account now at the bank"] * 6
    labels = np.array([0] * len(legit) + [1] * 6)
    assert np.isnan(L.oof_margins(make, texts, labels, 5, 0)).all()
    texts = ["lunch at noon"] * 3 + ["team notes"] * 3 + ["verify now"] * 6
    assert np.isnan(L.oof_margins(make, texts, np.array([0] * 6 + [1] * 6), 5, 0)).all()


def test_agreement_names_the_source_that_alone_scored_a_row():
    # the demo's alerts finding: "Of the 0 flagged rows scored by more than one source, 0 are flagged by
    # every source that scored them; 4 are scored by one source alone (sources: <all five sources>)"
    from gapscope.detectors.label_noise import _agreement_text

    oof, cell = "tfidf-lr (out of fold)", "gemma3 (held-out cells)"
    alone = {"sources": {oof: 0.2, cell: None}, "flagged_by": [oof]}
    both = {"sources": {oof: 0.2, cell: 0.3}, "flagged_by": [oof]}
    said = _agreement_text([alone] * 4)
    assert said == f"All 4 flagged rows are scored by one source alone ({oof}), which no other source can confirm."
    assert "Of the 0" not in said and cell not in said
    said = _agreement_text([both, both, alone])
    assert said.startswith("Of the 2 flagged rows scored by more than one source, 0 are flagged by every source")
    assert f"the other is scored by one source alone ({oof})" in said
    assert _agreement_text([{**both, "flagged_by": [oof, cell]}]) == (
        "Of the 1 flagged row scored by more than one source, 1 is flagged by every source that scored it.")


def test_a_held_out_cell_is_read_at_its_own_threshold():
    """p(phishing) from a cell is sigmoid(margin - threshold): a margin of -0.81 is phishing for a cell
    whose threshold is -1.38, and read as sigmoid(-0.81) = 0.31 it counted against a phishing label."""
    from types import SimpleNamespace

    import pandas as pd

    cell = SimpleNamespace(model="m", train_domains=["d"], threshold=-1.38)
    preds = pd.DataFrame({"id": ["a", "b"], "split": ["test", "test"], "domain": ["d", "d"],
                          "margin": [-0.81, -2.0], "label": [1, 0]})
    study = SimpleNamespace(cells=[cell], predictions=lambda c: preds)
    (p,) = L.held_out_cell_sources(study, {"a": 0, "b": 1}, 2).values()
    assert p[0] > 0.5 > p[1] and p[0] == pytest.approx(1 / (1 + np.exp(-(-0.81 + 1.38))))


def test_a_clean_domain_with_rare_phishing_is_not_read_as_noisy_by_mixing_sources(tmp_path):
    """2% phishing, no label flipped: the held-out cells score the test rows at their own threshold
    (far from 0 where a class is rare) and tf-idf every row at 0. Confident learning on their
    average set its thresholds over both scales: 175 clean held-out rows fell off the diagonal and
    the domain read 31% wrong labels, a high finding, while 2 rows were flagged."""
    cfg = SynthConfig(seed=1, n_per_domain=600, domains=["corporate", "fraud"], phishing_share=0.02)
    study = mini_study(tmp_path, cfg)
    found = L.run(study)
    assert all(f.severity not in ("high", "medium") for f in found if f.kind == "label_noise")
    audit = json.loads((study.run_dir / "diagnostics" / "label_noise" / "audit.json").read_text())
    for d, info in audit["per_domain"].items():
        assert info["estimate_source"] == "tfidf-lr (out of fold)" and info["estimate_rows"] == info["n"]
        assert info["noise_estimate"] is None or info["noise_estimate"] < 0.1, (d, info["noise_estimate"])
        assert set(info["noise_estimate_by_source"]) <= set(audit["sources"])


def test_a_cross_fitted_model_is_read_at_its_own_threshold():
    """A model whose margins all sit 3 below 0 (a LoRA LLM deciding at -3) read at 0 called every
    row legitimate; read at its training-F1 threshold, its decisions are what count."""
    texts, labels = _word_mail()

    class Shifted:
        def __init__(self):
            self.m = _tfidf()

        def fit(self, x, y, seed=0):
            self.m.fit(x, y, seed=seed)

        def score(self, x):
            return np.asarray(self.m.score(x)) - 3.0

        def close(self):
            self.m.close()

    y = np.asarray(labels)
    at0 = L.oof_margins(Shifted, texts, y, 3, 0)
    at_thr = L.oof_margins(Shifted, texts, y, 3, 0, at_threshold=True)
    plain = L.oof_margins(_tfidf, texts, y, 3, 0, at_threshold=True)
    assert (at0 < 0).all()  # read at 0, no row is phishing
    assert ((at_thr > 0) == (y == 1)).mean() > 0.9
    # the shift is gone: each fold decides at 0 as the unshifted model does (thresholds tied on training
    # F1 may differ inside the tie)
    assert ((at_thr > 0) == (plain > 0)).mean() >= 0.95
