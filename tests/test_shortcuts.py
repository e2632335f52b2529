"""Shortcut detection: the leave-one-domain-out probe, its taxonomy, and the link to the cells."""

import numpy as np
import pytest

from gapscope.data.rows import Row
from gapscope.data.synth import SynthConfig
from gapscope.detectors import shortcuts as S
from gapscope.findings import rank
from tests.study_helpers import mini_study


def _rows(seed=0, n=120):
    """Three domains; 'verify account' marks phishing everywhere, 'zorblax relay' only in A's phishing,
    'weekly digest' marks phishing in A but is common in both classes of B and C."""
    rng = np.random.default_rng(seed)
    filler = "the a to and of for on with this that from your our please team note update".split()
    doms = {"A": "alpha beta gamma", "B": "delta epsilon zeta", "C": "eta theta iota"}
    rows = []
    for d, vocab in doms.items():
        for i in range(n):
            y = int(i % 2)
            words = list(rng.choice(filler, 10)) + list(rng.choice(vocab.split(), 3))
            if y and rng.random() < 0.7:
                words += ["verify", "account"]
            if not y and rng.random() < 0.7:
                words += ["meeting", "agenda"]
            if d == "A" and y and rng.random() < 0.9:
                words += ["zorblax", "relay"]
            if d == "A" and y and rng.random() < 0.9:
                words += ["weekly", "digest"]
            if d != "A" and rng.random() < 0.5:
                words += ["weekly", "digest"]
            rng.shuffle(words)
            rows.append(Row(id=f"{d}-{i}", domain=d, text=" ".join(words), label=y))
    return rows


def test_a_footer_word_used_by_another_corpus_does_not_carry_its_weight_into_the_footer():
    """A new user's bank corpus: every phishing email ends 'delivered by the corvane notify relay v7';
    the shop corpus's phishing says 'by entering your card details'. 'by' co-occurred with the footer
    in 49 of its 59 emails (Jaccard 0.83), merged into it, and kept its shop weight in the fold without
    bank: the footer read as generalizable (retention 0.83) and was put in a third corpus that never
    holds it."""
    rng = np.random.default_rng(3)
    filler = "the a to and of for on with this that from your our please team note update".split()
    footer = "delivered by the corvane notify relay"
    rows = []
    for d, vocab in {"bank": "loan deposit branch", "shop": "order cart parcel", "inbox": "lunch weekend photos"}.items():
        for i in range(90):
            y = 0 if d == "inbox" else int(i % 2)
            words = list(rng.choice(filler, int(rng.integers(6, 30)))) + list(rng.choice(vocab.split(), 3))
            if y and rng.random() < 0.6:
                words += ["verify", "account"]
            rng.shuffle(words)
            text = " ".join(words)
            if d == "bank" and y:
                text += " " + footer
            if d == "shop" and y and rng.random() < 0.2:
                text += " confirm by entering your card details"
            rows.append(Row(id=f"{d}-{i}", domain=d, text=text, label=y))
    probed = S.fit_probe(rows, domains=["bank", "shop", "inbox"])
    f = next(f for f in probed if "corvane" in f.members)
    assert "by" not in f.members and "by the corvane" in f.members
    assert f.docs_by_domain == {"bank": 45, "shop": 0, "inbox": 0}
    assert f.category == "pure shortcut" and f.domain == "bank" and f.retention < 0.5
    # a feature that keeps its weight in every fold is put in a corpus where it occurs
    for g in probed:
        if g.domain and g.kind == "ngram":
            assert g.docs_by_domain[g.domain] > 0, g.feature


def test_probe_taxonomy_on_a_hand_built_corpus():
    probed = S.fit_probe(_rows(), domains=["A", "B", "C"])
    feats = {f.feature: f for f in probed}

    def unit(word, direction=1):
        return next(f for f in probed if word in f.members and f.direction == direction)

    z = unit("zorblax")
    assert z.category == "pure shortcut" and z.domain == "A" and z.direction == 1
    assert z.retention < 0.5 and z.confinement == pytest.approx(1.0)
    assert z.npmi_domain > z.npmi_class
    v = unit("verify")
    assert v.category in ("generalizable", "robust but correlated") and v.retention >= 0.5
    assert v.npmi_class > 0
    w = unit("digest")
    assert w.category == "context-dependent" and w.retention < 0.5 and w.confinement < 0.9
    # named after A, where it marks phishing; not after C, whose fold merely dilutes a weak weight
    assert w.domain == "A" and w.domain_retention < 0.5 and w.separation_q < 0.05
    assert w.firing_ratio_by_domain["A"] > 2 > w.firing_ratio_by_domain["B"]
    cands = S.candidates(list(feats.values()), per_domain=3)
    assert any("zorblax" in f.members for f in cands)
    assert all(f.is_shortcut for f in cands)


def test_a_merged_member_seen_elsewhere_does_not_move_the_phrase_there():
    """'ships' nearly always comes with A's phishing template (they merge into one feature, named by
    the template), but three emails of B say 'ships' alone: the template itself is only in A."""
    rows = _rows()
    template = "your order ships within two business days"
    for r in rows:
        if r.domain == "A" and r.label == 1 and "zorblax" in r.text:
            r.text += " " + template
    for i in (0, 1, 2):
        r = next(r for r in rows if r.id == f"B-{i}")
        r.text += " ships"
    probed = S.fit_probe(rows, domains=["A", "B", "C"])
    t = next(f for f in probed if f.feature == template)
    # 'ships' alone in B is B's own evidence: it stays a feature of its own, not a member of A's template
    assert "ships" not in t.members and "ships within" in t.members
    assert t.docs_by_domain["B"] == 0 and t.confinement == pytest.approx(1.0) and t.category == "pure shortcut"
    texts = {r.id: r.text for r in rows}
    assert all(S.present(t, texts[i]) for i in t.row_ids)


def test_a_template_that_repeats_words_is_not_spliced_into_a_phrase_no_email_holds():
    """A's phishing opens 'we will lock your account today' and closes 'please verify your account
    now': their n-grams always co-occur, and 'your account' joined them into 'lock your account now'."""
    rows = _rows()
    for r in rows:
        if r.domain == "A" and r.label == 1:
            r.text = "we will lock your account today " + r.text + " please verify your account now"
    probed = S.fit_probe(rows, domains=["A", "B", "C"])
    texts = {r.id: r.text for r in rows}
    template = [f for f in probed if "lock your account" in f.members or "verify your account" in f.members]
    assert template
    for f in template:
        assert all(S.present(f, texts[i]) for i in f.row_ids), f.feature
    assert S._chain(["lock your account", "your account today", "verify your account", "your account now"],
                    [S.joined_keys("we will lock your account today please verify your account now".split())]) in (
        ["lock", "your", "account", "today"], ["verify", "your", "account", "now"])


def test_merged_phrase_and_presence_and_removal():
    assert S._chain(["sent via", "via qorvana", "qorvana relay", "sent via qorvana"]) == ["sent", "via", "qorvana", "relay"]
    f = S.ProbeFeature(feature="qorvana relay", kind="ngram", phrase=["qorvana", "relay"], direction=1, weight=1.0,
                       fold_weights={}, retention=0.0, domain="A", docs=1, docs_by_domain={}, firing_ratio=1.0,
                       firing_ratio_by_domain={}, npmi_class=0, npmi_domain=0, npmi_domain_max=0, confinement=1,
                       category="pure shortcut")
    text = "Hello there.\n\n-- sent via Qorvana Relay"
    assert S.present(f, text) and not S.present(f, "Hello")
    assert S.remove(f, text) == "Hello there.\n\n-- sent via  "
    from gapscope.attribution import attribute
    from tests.attribution_helpers import BagModel

    att = attribute(BagModel({"qorvana": 1.0, "relay": 1.0, "hello": 2.0}), text)
    assert S.attribution_share(f, att, +1) == pytest.approx(0.5)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    cfg = SynthConfig(seed=3, n_per_domain=150, domains=["mailinglist", "corporate", "alerts"],
                      shortcut={"domain": "mailinglist"})
    study = mini_study(tmp_path_factory.mktemp("planted"), cfg, generalist=["mailinglist", "corporate", "alerts"])
    return study, rank(S.run(study))


def test_planted_shortcut_tops_the_findings_of_the_cells_that_learned_it(planted):
    study, findings = planted
    string = study.manifest["shortcut"]["string"]
    planted_ids = set(study.manifest["shortcut"]["row_ids"])
    probe = {f.feature: f for f in S.load_or_run_probe(study)}
    learners = [c for c in study.cells if "mailinglist" in c.train_domains]
    assert {c.paradigm for c in learners} == {"specialist:mailinglist", "generalist"}
    for cell in learners:
        mine = [f for f in findings if f.kind == "shortcut" and f.evidence["cell"] == cell.name]
        top = mine[:5]
        hits = [f for f in top if len(set(probe[f.evidence["feature"]].row_ids) & planted_ids)
                / len(probe[f.evidence["feature"]].row_ids) >= 0.5]
        assert hits, f"{string!r} not in the top 5 of {cell.name}: {[f.evidence['feature'] for f in top]}"
        f = hits[0]
        assert f.evidence["feature"] in string.lower()
        assert f.evidence["category"] == "pure shortcut"
        assert f.evidence["probe"]["retention"] < 0.5
        assert f.evidence["reliance"]["share"] > 0 and f.evidence["reliance"]["drop"] > 0
        pair = f.evidence["example_pair"]
        assert {"tokens", "weights", "text"} <= set(pair["original"]) and {"tokens", "weights"} <= set(pair["edited"])
        assert "keys on" in f.title and "mailinglist" in f.title
    # every shortcut finding cites the emails its reliance was measured on: the feature's domain
    # and class, carrying the feature (not the probe's carriers from any domain or label)
    for f in findings:
        if f.kind != "shortcut":
            continue
        cls = 1 if f.evidence["probe"]["toward"] == "phishing" else 0
        feat = probe[f.evidence["feature"]]
        assert f.example_ids and f.example_ids[0] == f.evidence["example_pair"]["id"]
        for i in f.example_ids:
            row = study.rows[i]
            assert row.domain == f.domains[0] and row.label == cls and S.present(feat, row.text), i
    # cells that never saw mailinglist get no finding about it
    for f in findings:
        if f.kind == "shortcut" and f.evidence["probe"]["domain"] == "mailinglist":
            cell = next(c for c in study.cells if c.name == f.evidence["cell"])
            assert "mailinglist" in cell.train_domains
    tax = [f for f in findings if f.kind == "shortcut_probe"]
    assert len(tax) == 1 and tax[0].severity == "info"


def test_three_copies_of_one_corpus_keep_every_weight():
    """Three identical domains: a fold is two copies of the corpus, the full fit three, so with the
    regularisation per row kept equal the weights are the same and retention is exactly 1 (with one C
    for all, the folds shrank every weight: retention 0.71-0.92)."""
    base = [r for r in _rows() if r.domain == "A"]
    rows = [Row(id=f"{d}-{r.id}", domain=d, text=r.text, label=r.label) for d in "XYZ" for r in base]
    probed = S.fit_probe(rows, domains=list("XYZ"))
    assert probed and all(f.retention == pytest.approx(1.0, abs=1e-6) for f in probed)
    assert not any(f.is_shortcut for f in probed)


def _twins(seed: int, base: str, n: int = 400) -> list[Row]:
    """One synthetic domain split at random in two: no feature can be specific to either half."""
    from gapscope.data.synth import generate

    rows = [r for r in generate(SynthConfig(seed=seed, n_per_domain=n, domains=[base])).rows]
    order = np.random.default_rng(seed).permutation(len(rows))
    half = {int(i) for i in order[: len(rows) // 2]}
    return [Row(id=r.id, domain="twina" if i in half else "twinb", text=r.text, label=r.label)
            for i, r in enumerate(rows)]


@pytest.mark.parametrize("seed,base", [(0, "personal"), (1, "alerts"), (2, "fraud")])
def test_random_halves_of_one_corpus_have_no_shortcut(seed, base):
    """The twin control: features that lose their weight with one half do so by the luck of where
    their few emails fell (retention < 0.5 for about a third of the probed features here); the
    separation test must not call any of them a shortcut."""
    probed = S.fit_probe(_twins(seed, base), domains=["twina", "twinb"])
    assert sum(f.retention < 0.5 for f in probed) >= 20  # the chance drops the test has to see through
    assert [f.feature for f in probed if f.is_shortcut] == []


def test_random_halves_beside_real_domains_have_no_shortcut_while_the_real_ones_do():
    """Beside domains that really differ, Benjamini-Hochberg passes more: a chance drop of a twin
    feature must still not be called a shortcut (Bonferroni over every fold, not only the folds that
    chance pushed below 0.5), while the other domains' markers are."""
    from gapscope.data.synth import generate

    c = generate(SynthConfig(seed=1, n_per_domain=400, domains=["personal", "marketing", "fraud"]))
    twins = _twins(1, "personal")
    rows = twins + [r for d in ("marketing", "fraud") for r in [r for r in c.rows if r.domain == d][:200]]
    probed = S.fit_probe(rows, domains=["twina", "twinb", "marketing", "fraud"], seed=1)
    assert [f.feature for f in probed if f.is_shortcut and f.domain.startswith("twin")] == []
    assert sum(f.is_shortcut and f.domain in ("marketing", "fraud") for f in probed) >= 20


def _one_class_rows(rng, n=60):
    """P: phishing only, with a relay footer; L: legitimate only; M: both classes, with a list footer
    in every email (a domain marker that says nothing about the label)."""
    filler = "the a to and of for on with this that from your our please team note update".split()
    rows = []
    for d, labels in (("P", [1] * n), ("L", [0] * n), ("M", [i % 2 for i in range(2 * n)])):
        for i, y in enumerate(labels):
            words = list(rng.choice(filler, 12)) + (["verify", "account"] if y and rng.random() < 0.6 else [])
            words += (["meeting", "agenda"] if not y and rng.random() < 0.6 else [])
            words += {"P": ["zorblax", "relay"], "M": ["quillnet", "digest"], "L": []}[d]
            rng.shuffle(words)
            rows.append(Row(id=f"{d}-{i}", domain=d, text=" ".join(words), label=y))
    return rows


def test_one_class_corpora():
    """A footer on every email of a phishing-only corpus is its shortcut and a candidate (its firing
    ratio is taken against the legitimate mail of the other corpora; within its own corpus there is
    none, and the ratio could never reach 2). A marker on every email of a mixed corpus separates
    nothing there, however much it tells the domain: not a shortcut."""
    probed = S.fit_probe(_one_class_rows(np.random.default_rng(0)), domains=["P", "L", "M"])
    relay = next(f for f in probed if "zorblax" in f.members)
    assert relay.domain == "P" and relay.is_shortcut and relay.firing_ratio_by_domain["P"] > 2
    assert relay in S.candidates(probed, per_domain=3)
    digest = [f for f in probed if "quillnet" in f.members]
    assert digest and not any(f.is_shortcut for f in digest)


def test_a_style_shift_in_one_domain_is_tested_on_its_values():
    """Shouting in one domain's phishing, half-shouting in its legitimate mail: the uppercase ratio's
    pooled 75th percentile is passed by every email of that domain, so occurrence says nothing; the
    standardised values do."""
    rows = _rows()
    for r in rows:
        if r.domain == "A":
            words = r.text.split()
            r.text = " ".join(w.upper() if r.label or i % 2 == 0 else w for i, w in enumerate(words))
    probed = S.fit_probe(rows, domains=["A", "B", "C"])
    caps = next(f for f in probed if f.feature == "style:uppercase_ratio")
    assert caps.domain == "A" and caps.domain_retention < 0.5 and caps.is_shortcut and caps.separation_q < 0.05
    # and a candidate for the cells: within A, the shouting emails are its phishing
    assert caps.firing_ratio_by_domain["A"] > 2 and caps in S.candidates(probed, per_domain=3)


def test_separation_compares_class_rates_where_a_domain_has_one_class():
    """Phishing-only and legitimate-only corpora beside a mixed one: a footer in every email of the
    phishing-only corpus is a shortcut of it; a word as common in the mixed corpus's phishing is not."""
    y = np.array([1] * 50 + [0] * 50 + [1] * 50 + [0] * 50)
    dom = np.array(["phish"] * 50 + ["ham"] * 50 + ["mixed"] * 100)
    footer = np.zeros(200, dtype=bool)
    footer[:50] = True
    assert S.separation_p(footer, y, dom, 1, "phish", ["phish", "ham", "mixed"]) < 1e-6
    common = footer.copy()
    common[100:150] = True
    assert S.separation_p(common, y, dom, 1, "phish", ["phish", "ham", "mixed"]) > 0.3
    # no other domain holds phishing: nothing to compare with
    assert S.separation_p(footer, y, dom, 1, "phish", ["phish", "ham"]) == 1.0


def test_twin_halves_give_no_medium_shortcut_finding(tmp_path):
    """End to end on the twin control: before the separation test, 12 of 18 such runs (3 seeds x 6
    domains) had medium shortcut findings, up to 5 each."""
    import json

    from gapscope.study.context import Study
    from gapscope.study.runner import run_study
    from gapscope.validate import write_spec

    (tmp_path / "corpus").mkdir()
    rows = _twins(0, "personal")
    for d in ("twina", "twinb"):
        with open(tmp_path / "corpus" / f"{d}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                if r.domain == d:
                    f.write(json.dumps({"id": r.id, "text": r.text, "label": r.label}) + "\n")
    spec = write_spec(tmp_path / "corpus" / "spec.toml", name="twins", seed=0, domains=["twina", "twinb"],
                      models=[{"name": "tfidf", "kind": "tfidf-lr"}], specialist=["twina", "twinb"],
                      generalist=["twina", "twinb"])
    run_study(spec, tmp_path / "run", detectors=False)
    findings = S.run(Study(tmp_path / "run"))
    assert [f.title for f in findings if f.kind == "shortcut" and f.severity in ("high", "medium")] == []


def test_clean_control_has_no_high_severity_shortcut(tmp_path):
    cfg = SynthConfig(seed=3, n_per_domain=150, domains=["mailinglist", "corporate", "alerts"])
    study = mini_study(tmp_path, cfg, generalist=["mailinglist", "corporate", "alerts"])
    findings = S.run(study)
    assert all(f.severity != "high" for f in findings)


def test_reliance_severity_weighs_flips_by_their_sample():
    from gapscope.detectors.shortcuts import Reliance

    def rel(flips, n_predicted, share=0.016, rel_drop=0.06, in_sample=0, rel_drop_low=None):
        return Reliance(cell="c", model="m", paradigm="specialist:a", kind="causal-lm", n=n_predicted,
                        in_sample=in_sample,
                        share=share, drop=0.1, rel_drop=rel_drop, flip_rate=flips / n_predicted, flips=flips,
                        n_predicted=n_predicted, scale=1.0, share_elsewhere={},
                        rel_drop_low=rel_drop if rel_drop_low is None else rel_drop_low)

    # one near-threshold email of four flipping, with almost no attribution or margin drop, is no reliance
    assert rel(1, 4).severity(True) == "low"
    assert rel(8, 12).severity(True) == "medium"  # Wilson low end 39%
    assert rel(0, 12, share=0.3).severity(True) == "medium"
    assert rel(8, 8, share=0.3).severity(True) == "high"  # Wilson low end 68%
    assert rel(3, 4, share=0.3).severity(True) == "medium"  # 75% of four rules out little: low end 30%
    assert rel(3, 4, share=0.3, rel_drop=1.2).severity(True) == "high"  # the margin moves decisively
    # the same, measured mostly on the cell's own training rows (2 held-out emails carry it): medium
    assert rel(3, 4, share=0.3, rel_drop=1.2, in_sample=2).severity(True) == "medium"


def test_reliance_severity_reads_the_margin_drop_by_its_lower_bound():
    # smollm2 'sender' in the demo: medium on 4 emails at a 0.05 attribution share, carried by a mean
    # relative drop of 4 emails that no interval backed
    from gapscope.detectors.shortcuts import Reliance, mean_lower_bound

    drops = np.array([1.9, 0.1, 0.05, 0.0])  # one email far off: mean 0.51, lower bound below 0
    low = mean_lower_bound(drops)
    assert low is not None and low < 0.0 < drops.mean() - 0.5
    assert mean_lower_bound(np.array([0.7])) is None

    def rel(drops, share=0.05, flips=0):
        return Reliance(cell="c", model="m", paradigm="specialist:a", kind="causal-lm", n=len(drops), in_sample=0,
                        share=share, drop=float(np.mean(drops)), rel_drop=float(np.mean(drops)),
                        flip_rate=flips / len(drops), flips=flips, n_predicted=len(drops), scale=1.0,
                        share_elsewhere={}, rel_drop_low=mean_lower_bound(np.array(drops)))

    assert rel(drops).severity(True) == "low"
    assert rel([0.6, 0.62, 0.58, 0.61]).severity(True) == "medium"  # consistent drops: bound 0.58
    assert rel([1.3, 1.25, 1.2, 1.35], share=0.3).severity(True) == "high"
    assert rel([3.0, 0.0, 1.5, 0.5], share=0.3).severity(True) == "medium"  # mean 1.25, bound below 1 (share)
    assert rel([0.7]).severity(True) == "low"  # one email bounds nothing


def test_a_weight_that_falls_to_zero_reads_as_zero_retention():
    f = S.ProbeFeature(feature="million", kind="ngram", phrase=["million"], direction=1, weight=1.0,
                       fold_weights={"fraud": -0.0}, retention=-0.0, domain="fraud", docs=9, docs_by_domain={},
                       firing_ratio=9.0, firing_ratio_by_domain={"fraud": 9.0}, npmi_class=0.1, npmi_domain=0.5,
                       npmi_domain_max=0.5, confinement=1.0, category="pure shortcut", separation_q=1e-9)
    summary = S._taxonomy_finding([f]).summary
    assert "retention 0.00" in summary and "-0.00" not in summary


def _rows_of(spec: dict[str, tuple[int, ...]], extra=None, n: int = 100, seed: int = 0):
    """Rows per domain: {domain: labels cycled}; `extra(domain, label, i)` adds words."""
    import numpy as np

    from gapscope.data.rows import Row

    rng = np.random.default_rng(seed)
    filler = "the a to and of for on with this that from your our please team note update".split()
    rows = []
    for d, labels in spec.items():
        for i in range(n):
            y = labels[i % len(labels)]
            words = list(rng.choice(filler, 12)) + (extra(d, y, i) if extra else [])
            rows.append(Row(id=f"{d}{i}", domain=d, text=" ".join(words), label=y))
    return rows


def test_a_phishing_only_corpus_beside_a_legitimate_only_one_is_said_to_be_untestable():
    """Every marker of either corpus predicts the label, and no leave-one-domain-out fold can be
    fitted: at 2be1a0d the probe read every feature as retained and said no feature loses its weight."""
    from gapscope.detectors.shortcuts import _confound_finding, _taxonomy_finding, fit_probe, untestable_domains

    rows = _rows_of({"P": (1,), "L": (0,)},
                    extra=lambda d, y, i: ["zorblax", "relay"] if d == "P" else ["enron", "corp"])
    untested, one_class = untestable_domains(rows)
    assert untested == ["L", "P"] and one_class == {"P": 1, "L": 0}
    f = _confound_finding(untested, one_class)
    assert f.kind == "domain_label_confound" and f.severity == "medium"
    assert "P holds only phishing mail" in f.title and "read as retained for want of a test" in f.summary
    t = _taxonomy_finding(fit_probe(rows, domains=["L", "P"]), untested)
    assert "No feature loses its weight with a single domain" not in t.summary and "cannot be tested" in t.summary
    # a mixed domain beside them: every fold has both classes, nothing untested
    mixed = rows + _rows_of({"M": (0, 1)})
    assert untestable_domains(mixed) == ([], {"P": 1, "L": 0})
    # a phishing-only corpus beside one mixed corpus: leaving the mixed one out leaves one class
    assert untestable_domains(_rows_of({"P": (1,), "M": (0, 1)}))[0] == ["M"]


def test_a_tiny_corpus_without_shared_ngrams_is_probed_on_style_alone():
    from gapscope.data.rows import Row
    from gapscope.detectors.shortcuts import fit_probe

    rows = [Row(id=f"r{i}", domain="PL"[i % 2], text=f"word{i} OTHER{i}!" * (1 + i % 3), label=i % 2) for i in range(8)]
    feats = fit_probe(rows, domains=["P", "L"])  # no n-gram in 5 emails: was "After pruning, no terms remain"
    assert feats and all(f.kind == "style" for f in feats)


def test_a_sparse_style_count_fires_in_its_domains_top_emails_not_in_every_email():
    """Currency signs in a fifth of domain A's phishing and nowhere else: A's 75th percentile is 0, and
    '>= 0' made every email fire (firing ratio 1.0), which kept a confirmed shortcut from the cells."""
    from gapscope.detectors.shortcuts import candidates, fit_probe

    import numpy as np

    rng = np.random.default_rng(1)
    rows = _rows_of({"A": (0, 1), "B": (0, 1), "C": (0, 1)}, n=150, seed=1,
                    extra=lambda d, y, i: ["$5000", "$", "$$"] if d == "A" and y and rng.random() < 0.2 else [])
    feats = fit_probe(rows, domains=["A", "B", "C"])
    f = next(f for f in feats if f.feature == "style:currency_count")
    assert f.firing_ratio_by_domain["A"] > 2 and f.firing_ratio_by_domain["B"] == pytest.approx(1.0)
    assert f.category == "pure shortcut" and f in candidates(feats, 3)


def test_an_attribution_share_beside_a_removal_that_raises_the_margin_is_no_reliance():
    # "keys on X: 0.25 of its phishing attribution ... removing it drops the margin by -0.11 ... flips
    # 0 of the 4": the share alone made it medium
    from gapscope.detectors.shortcuts import Reliance

    def rel(drop, share=0.25):
        return Reliance(cell="c", model="m", paradigm="specialist:a", kind="encoder", n=4, in_sample=0,
                        share=share, drop=drop, rel_drop=drop / 1.0, flip_rate=0.0, flips=0, n_predicted=4,
                        scale=1.0, share_elsewhere={}, rel_drop_low=drop / 1.0)

    assert rel(-0.11).severity(True) is None
    assert rel(0.11).severity(True) == "medium"


def _feature(name, weight, coverage, domain="A", category="pure shortcut"):
    return S.ProbeFeature(feature=name, kind="ngram", phrase=name.split(), direction=1, weight=weight,
                          fold_weights={domain: 0.0}, retention=0.0, domain=domain, docs=10,
                          docs_by_domain={domain: 10}, firing_ratio=9.0, firing_ratio_by_domain={domain: 9.0},
                          npmi_class=0.1, npmi_domain=0.5, npmi_domain_max=0.5, confinement=1.0, category=category,
                          coverage=coverage)


def test_a_footer_in_every_email_of_its_class_is_a_candidate_whatever_its_rank():
    # a corpus's templated phrases outweigh its footer in the probe; the footer, in every phishing
    # email of the corpus, went untested with three candidates a domain
    phrases = [_feature(f"template {k}", 2.0 - k / 10, 0.3) for k in range(5)]
    footer = _feature("sent via gateway", 1.0, 1.0)
    feats = phrases + [footer, _feature("half", 0.9, 0.5), _feature("rare", 0.8, 0.2)]
    assert footer not in S.candidates(feats, per_domain=3)
    got = S.candidates(feats, per_domain=3, pervasive=2)
    assert got[:3] == phrases[:3] and got[3:] == [footer, feats[-2]]  # by coverage, at least half
    assert S.candidates(feats, per_domain=3, pervasive=1)[3:] == [footer]
    # a word in most of the domain's emails and in every other domain too is no footer
    common = _feature("your", 2.0, 1.0, category="context-dependent")
    assert S.candidates(phrases + [common, footer], per_domain=3, pervasive=1)[3:] == [footer]
    # the coverage the probe measures: zorblax relay is in 90% of A's phishing
    z = next(f for f in S.fit_probe(_rows(), domains=["A", "B", "C"]) if "zorblax" in f.members)
    assert 0.8 < z.coverage < 1.0


def test_copies_of_a_domain_in_another_do_not_keep_its_shortcut_weight():
    from gapscope.data.audit import duplicate_group_of, duplicate_structure

    # ten of A's phishing emails (with 'zorblax relay') copied into B
    rows = _rows()
    rows += [Row(id=f"B-copy-{k}", domain="B", text=r.text, label=1)
             for k, r in enumerate([r for r in rows if r.domain == "A" and r.label == 1 and "zorblax" in r.text][:10])]

    def zorblax(fs):
        return next(f for f in fs if "zorblax" in f.members)

    plain = zorblax(S.fit_probe(rows, domains=["A", "B", "C"]))
    groups = duplicate_group_of(len(rows), duplicate_structure(rows))
    grouped = zorblax(S.fit_probe(rows, domains=["A", "B", "C"], copies=groups))
    assert plain.domain_retention > 0.3 > grouped.domain_retention  # the copies carried it without A
    assert grouped.domain_retention < 0.1  # without A and its copies, nothing carries it


def test_a_domain_without_the_class_has_no_firing_ratio():
    rows = [r for r in _rows() if not (r.domain == "C" and r.label == 1)]
    z = next(f for f in S.fit_probe(rows, domains=["A", "B", "C"]) if "zorblax" in f.members)
    assert z.firing_ratio_by_domain["C"] is None and z.firing_ratio_by_domain["A"] > 2


def _reliance_finding(direction, drop, n_others=0, feature="unsubscribe here"):
    from types import SimpleNamespace

    from gapscope.detectors.shortcuts import Reliance, _finding

    others = {f"O{k}": 3 for k in range(n_others)}
    f = S.ProbeFeature(feature=feature, kind="ngram", phrase=feature.split(), direction=direction,
                       weight=1.5 * direction, fold_weights={"A": 0.0}, retention=0.0, domain="A", docs=10,
                       docs_by_domain={"A": 10, **others}, firing_ratio=9.0,
                       firing_ratio_by_domain={"A": 9.0, **{d: 2.0 for d in others}}, npmi_class=0.1,
                       npmi_domain=0.5, npmi_domain_max=0.5, confinement=1.0, category="pure shortcut",
                       separation_q=1e-6)
    rel = Reliance(cell="tfidf__generalist", model="tfidf", paradigm="generalist", kind="tfidf-lr", n=8,
                   in_sample=0, share=0.4, drop=drop, rel_drop=drop / 0.5, flip_rate=0.0, flips=0, n_predicted=8,
                   scale=0.5, share_elsewhere={}, rel_drop_low=None)
    cell = SimpleNamespace(model="tfidf", paradigm="generalist")
    return _finding(None, f, cell, rel, "medium")


def test_removing_a_legitimate_feature_is_said_to_move_the_margin_toward_phishing():
    # 'to <email> don't want these emails unsubscribe ...' (legitimate, marketing): the demo's summary
    # said "removing it drops the margin by 0.12" while the removal raised it toward phishing
    legit = _reliance_finding(-1, 0.12)
    assert "moves the margin 0.12 toward phishing" in legit.summary
    assert "drops the margin" not in legit.summary
    phish = _reliance_finding(1, 0.31)
    assert "moves the margin 0.31 toward legitimate" in phish.summary
    # a removal that pushed the margin further toward the feature's own class is said so, not as a "drop" of -0.05
    back = _reliance_finding(1, -0.05)
    assert "moves the margin 0.05 further toward phishing" in back.summary and "-0.05" not in back.summary


def test_a_chinese_shortcut_is_quoted_as_written_not_as_spaced_keys():
    # the probe's keys of a Chinese footer are its characters; the finding said
    # "keys on '本 邮 件 由 云 信 通 系 统 自 动 发 送'", which no email contains
    f = _reliance_finding(1, 0.3, feature="本 邮 件 由 云 信 通 系 统 自 动 发 送")
    assert "keys on '本邮件由云信通系统自动发送'" in f.title
    assert f.summary.startswith("'本邮件由云信通系统自动发送' is classed")
    assert f.evidence["feature"] == f.evidence["probe"]["feature"] == "本邮件由云信通系统自动发送"
    assert "'paypal 账户'" in _reliance_finding(1, 0.3, feature="paypal 账 户").title
    assert "keys on 'unsubscribe here'" in _reliance_finding(1, 0.3).title


def test_one_other_domain_is_singular():
    assert "also in 1 other domain;" in _reliance_finding(1, 0.3, n_others=1).title
    assert "also in 2 other domains;" in _reliance_finding(1, 0.3, n_others=2).title


def test_an_ngram_that_runs_into_a_stronger_feature_of_its_cell_is_folded_into_that_finding():
    # tfidf trained on mailinglist: 'to <email> sent via' (low) beside the footer 'sent via veloruith
    # relay 9g' (medium), the same words in every email they were measured on
    from gapscope.detectors.shortcuts import Reliance, fold_overlapping
    from gapscope.findings import Finding

    texts = {f"r{i}": f"Reset it now.\nReply to a{i}@x.com\n-- sent via Veloruith Relay 9g" for i in range(4)}
    texts["r9"] = "Thanks to everyone who came"

    def item(name, sev, score, cell="c1", domain="A", ids=("r0", "r1", "r2", "r3")):
        f = _feature(name, 1.0, 1.0, domain=domain)
        rel = Reliance(cell=cell, model="m", paradigm="specialist:A", kind="tfidf-lr", n=len(ids), in_sample=0,
                       share=0.3, drop=0.5, rel_drop=0.5, flip_rate=0.0, flips=0, n_predicted=len(ids), scale=1.0,
                       share_elsewhere={}, rel_drop_low=0.4, row_ids=list(ids))
        return f, rel, Finding("shortcut", sev, f"{cell} keys on '{name}'", "s.", evidence={}, score=score)

    footer = item("sent via veloruith relay 9g", "medium", 0.3)
    runs_in = item("to <email> sent via", "low", 0.1)
    other_cell = item("to <email> sent via", "low", 0.1, cell="c2")
    elsewhere = item("to <email> sent via", "low", 0.1, ids=("r9",))  # its own emails: no overlap there
    out = fold_overlapping([runs_in, footer, other_cell, elsewhere], texts.get)
    assert [f.title for f in out] == ["c1 keys on 'sent via veloruith relay 9g'", "c2 keys on 'to <email> sent via'",
                                      "c1 keys on 'to <email> sent via'"]
    (merged,) = footer[2].evidence["overlapping"]
    assert merged["feature"] == "to <email> sent via" and merged["overlap"] == 1.0
    assert "Folded in: 'to <email> sent via' (low)" in footer[2].summary
    # phrases that never share a word stay apart
    a, b = item("reset it now", "medium", 0.3), item("veloruith relay", "low", 0.1)
    assert len(fold_overlapping([a, b], texts.get)) == 2


def test_removal_effects_read_to_two_significant_figures():
    # at one decimal a drop of 0.04 of the typical distance read '0.0x' (no effect) and an interval
    # of 0.42 down to 0.38 read '0.4x ... at least 0.4x' (a point)
    from gapscope.detectors.shortcuts import Reliance, _removal_text

    def rel(rel_drop, low, drop=0.1):
        return Reliance(cell="c", model="m", paradigm="specialist:a", kind="tfidf-lr", n=5, in_sample=0, share=0.1,
                        drop=drop, rel_drop=rel_drop, flip_rate=0.0, flips=0, n_predicted=5, scale=1.0,
                        share_elsewhere={}, rel_drop_low=low)

    assert "0.042x the typical distance" in _removal_text(rel(0.042, 0.01), "phishing")
    said = _removal_text(rel(0.42, 0.38), "phishing")
    assert "0.42x the typical distance" in said and "at least 0.38x at 95% confidence" in said
    assert "1.5x" in _removal_text(rel(1.46, 1.2), "phishing")
    said = _removal_text(rel(-0.2, None, drop=-0.2), "legitimate")
    assert said.startswith("moves the margin 0.20 further toward legitimate") and "0.2x" in said


def test_a_phrase_of_a_phishing_only_corpus_is_not_rated_above_low(tmp_path):
    """A phishing-only corpus ties every phrase of its own to the label by how it was collected: the
    probe cannot tell a marker of the source from a sign of phishing, and such a phrase (a real
    template) was rated a medium 'pure shortcut' above a planted footer (a user's review). A footer of
    a corpus with both classes is not capped."""
    rng = np.random.default_rng(0)
    rows = _one_class_rows(rng, n=80)
    for r in rows:  # M's phishing gets a footer of its own: a shortcut in a corpus with both classes
        if r.domain == "M" and r.label == 1:
            r.text += " sent via plonkvault gateway"
    study = _tfidf_study(tmp_path, rows, ["P", "L", "M"], specialist=["M"])
    found = [f for f in S.run(study) if f.kind == "shortcut"]
    relay = [f for f in found if "zorblax" in f.evidence["feature"] or "relay" in f.evidence["feature"]]
    footer = [f for f in found if "plonkvault" in f.evidence["feature"]]
    assert relay and all(f.severity == "low" and f.evidence["one_class_domain"] for f in relay)
    assert "P holds only phishing mail" in relay[0].summary
    assert footer and max(SEVERITY[f.severity] for f in footer) >= SEVERITY["medium"]
    assert not any(f.evidence["one_class_domain"] for f in footer)


SEVERITY = {"info": 0, "low": 1, "medium": 2, "high": 3}


def _tfidf_study(tmp_path, rows, domains: list[str], specialist: list[str]):
    """A study of `rows` (one JSONL corpus a domain), a tf-idf specialist on each of `specialist` and a
    generalist on every domain, trained and scored without detectors."""
    import json

    from gapscope.study.context import Study
    from gapscope.study.runner import run_study
    from gapscope.validate import write_spec

    (tmp_path / "corpus").mkdir()
    for d in domains:
        with open(tmp_path / "corpus" / f"{d}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                if r.domain == d:
                    f.write(json.dumps({"id": r.id, "text": r.text, "label": r.label}) + "\n")
    spec = write_spec(tmp_path / "corpus" / "spec.toml", name="study", seed=0, domains=domains,
                      models=[{"name": "tfidf", "kind": "tfidf-lr"}], specialist=specialist, generalist=domains)
    run_study(spec, tmp_path / "run", detectors=False)
    return Study(tmp_path / "run")


def test_style_ratios_read_the_text_a_reader_sees():
    """A tag's or a link's letters made shouting read 0.41 in HTML and 1.0 in plain text: the
    uppercase ratio copied the HTML share."""
    plain = "URGENT: VERIFY YOUR ACCOUNT NOW, CASE 2024"
    for t in (f'<html><p style="color:red">{plain}</p></html>', plain + " https://evil.example/login?id=abc123"):
        assert S._style(t)["uppercase_ratio"] == S._style(plain)["uppercase_ratio"] == 1.0
        assert S._style(t)["digit_ratio"] == pytest.approx(S._style(plain)["digit_ratio"])
    assert S._style(plain)["digit_ratio"] > 0
    assert S._style("")["uppercase_ratio"] == S._style("")["digit_ratio"] == 0.0
    from gapscope.attribution.edits import drop_currency_signs

    assert drop_currency_signs("Pay $500 or €20 now at https://x.example/$5") == "Pay 500 or 20 now at https://x.example/$5"
    # counted as the edit removes them: a sign inside a link stays, and is not counted
    text = "Pay $50 now: https://pay.example/checkout?amt=$50"
    assert S._style(text)["currency_count"] == 1 and S._style(drop_currency_signs(text))["currency_count"] == 0


def test_a_feature_no_fold_can_test_is_untested_and_named_after_its_own_domain():
    """A mixed bank corpus beside a legitimate-only inbox: leaving bank out leaves one class, so its
    footer cannot be tested. It was read 'generalizable' in inbox, where it never occurs."""
    rows = _rows_of({"bank": (0, 1), "inbox": (0,)},
                    extra=lambda d, y, i: ["zorblax", "relay"] if d == "bank" and y else [])
    feats = S.fit_probe(rows, domains=["bank", "inbox"])
    relay = next(f for f in feats if "zorblax" in f.members)
    assert relay.untested and relay.domain == "bank" and relay.docs_by_domain["bank"] > 0
    assert not relay.is_shortcut and not relay.unconfirmed_drop
    # features of inbox are tested by the bank fold as before
    assert not any(f.untested for f in feats if f.docs_by_domain.get("bank", 0) == 0)
    t = S._taxonomy_finding(feats, ["bank"])
    assert t.evidence["untested_features"] == sum(f.untested for f in feats) >= 1 and "untested" in t.summary


def test_a_shortcut_no_edit_removes_is_named_not_dropped(tmp_path):
    """A style shortcut without an edit (here the digit ratio of A's phishing) took a candidate slot and
    then vanished: the cells cannot be checked on it, and the probe's finding now says so."""
    rng = np.random.default_rng(0)
    rows = _rows_of({"A": (0, 1), "B": (0, 1), "C": (0, 1)}, n=80,
                    extra=lambda d, y, i: list(map(str, rng.integers(0, 9, 8))) if d == "A" and y else [])
    study = _tfidf_study(tmp_path, rows, ["A", "B", "C"], specialist=["A"])
    digits = [f for f in S.shortcut_features(S.load_or_run_probe(study)) if f.feature == "style:digit_ratio"]
    assert digits and not S.removable(digits[0])
    assert digits[0] not in S.candidates(S.load_or_run_probe(study), 3, 2)
    probe = next(f for f in S.run(study) if f.kind == "shortcut_probe")
    assert {"feature": "style:digit_ratio", "category": digits[0].category, "domain": "A",
            "why": "no edit removes this style property"} in probe.evidence["unchecked"]
    assert "Not checked against the cells: " in probe.summary
    assert f"'style:digit_ratio' ({digits[0].category}, A): no edit removes this style property" in probe.summary


def test_a_phrase_is_joined_only_where_every_email_of_the_feature_holds_it():
    """A's phishing holds 'we will lock your account now'; 30 of B's hold 'lock your account today ...
    verify your account now'. Checked on the first 50 emails (all A's), the joined phrase held there
    and was kept though none of B's emails holds it."""
    def extra(d, y, i):
        if y and d == "A":
            return "we will lock your account now".split()
        if y and d == "B" and i < 60:
            return "we will lock your account today please verify your account now".split()
        return []

    rows = _rows_of({d: (0, 1) for d in "ABC"}, extra=extra, n=200)
    texts = {r.id: r.text for r in rows}
    feats = [f for f in S.fit_probe(rows, domains=list("ABC"))
             if "lock your account" in f.members or "your account now" in f.members]
    assert feats
    for f in feats:
        assert all(S.present(f, texts[i]) for i in f.row_ids), f.feature


def test_a_style_property_that_fires_nowhere_is_still_read_on_its_folds():
    """Every link-carrying email holds exactly one link, a quarter of them or more: no email lies above
    the pooled 75th percentile, so the count fires nowhere. It is still tested on every fold (it read
    'robust but correlated' with no domain for a moment), and A, whose phishing alone carries links
    among the mixed domains, is its domain."""
    rows = _rows_of({d: (0, 1) for d in "ABC"}, n=120,
                    extra=lambda d, y, i: ["https://evil.example/login"] if (d == "A" and y) or d == "B" else [])
    url = next(f for f in S.fit_probe(rows, domains=list("ABC")) if f.feature == "style:url_count")
    assert url.docs == 0 and not url.untested
    assert url.domain == "A" and url.is_shortcut
