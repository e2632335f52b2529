"""Attribution methods: the word cutter, occlusion, SHAP Partition, faithfulness, corpus aggregation."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from gapscope.attribution import faithfulness
from gapscope.attribution.base import Attribution, attribute, get_method, score_variants
from gapscope.attribution.corpus import (aggregate, compare, feature_table, sample_rows, shift_test,
                                         top_features)
from gapscope.attribution.words import apply_edits, feature_key, split_words
from gapscope.data.rows import Row
from tests.attribution_helpers import BagModel, make_tfidf, toy_corpus

TEXT = "Dear John,\n\nYour account is suspended. Verify now at https://evil.example.com/login?x=1 !\nThanks, team"


def test_segments_rebuild_the_text_and_removal_keeps_whitespace():
    w = split_words("  " + TEXT)
    assert "".join(w.segments) == "  " + TEXT
    assert "https://evil.example.com/login?x=1" in w.cores
    keep = np.array([c != "https://evil.example.com/login?x=1" for c in w.cores])
    out = w.compose(keep)
    assert "evil" not in out and "\n\nYour account" in out and out.count("\n") == TEXT.count("\n")
    glued = split_words("foo-bar baz")
    assert glued.compose(np.array([c != "-" for c in glued.cores])) == "foo bar baz"  # no new word 'foobar'
    assert apply_edits("abcdef", [(1, 2, ""), (4, 5, "X")]) == "acdXf"
    assert feature_key("https://x.io/a") == "<url>" and feature_key("2024") == "<num>" and feature_key("Verify") == "verify"


def test_occlusion_is_exact_for_an_additive_model_in_one_batched_call():
    model = BagModel({"account": 1.0, "suspended": 2.0, "verify": 1.5, "thanks": -1.0}, bias=0.3)
    att = attribute(model, TEXT, method="occlusion")
    assert model.calls == 1  # ONE batched score call per email
    assert "".join(att.tokens) == TEXT
    got = {t.strip().lower(): w for t, w in zip(att.tokens, att.weights)}
    assert got["suspended"] == pytest.approx(2.0) and got["thanks"] == pytest.approx(-1.0)
    assert got["dear"] == pytest.approx(0.0)
    assert att.margin == pytest.approx(model.score([TEXT])[0])
    assert att.base_margin == pytest.approx(0.3)
    assert att.evals == len(att.tokens) + 2
    # additive model: weights sum to margin - empty margin
    assert att.weights.sum() == pytest.approx(att.margin - att.base_margin)
    assert [t for _, t, _ in att.top(2, direction=1)] == ["suspended", "Verify"]


def test_span_occlusion_respects_the_budget_and_shares_each_span_drop():
    model = BagModel({"account": 1.0, "suspended": 2.0, "verify": 1.5})
    att = get_method("occlusion", max_evals=5).attribute(model, TEXT)
    assert att.evals <= 5 + 2
    assert att.weights.sum() == pytest.approx(att.margin - att.base_margin)  # spans tile the text
    # the span holding 'suspended' outweighs spans without any weighted word
    i = [t.strip() for t in att.tokens].index("suspended.") if "suspended." in [t.strip() for t in att.tokens] \
        else [t.strip() for t in att.tokens].index("suspended")
    assert att.weights[i] > 0 and att.weights[i] == pytest.approx(att.weights.max())


def test_two_sided_occlusion_equals_removal_on_an_additive_model_and_sees_redundant_cues():
    additive = BagModel({"account": 1.0, "suspended": 2.0, "verify": 1.5, "thanks": -1.0}, bias=0.3)
    one = attribute(additive, TEXT, method="occlusion")
    two = get_method("occlusion", two_sided=True).attribute(additive, TEXT)
    np.testing.assert_allclose(two.weights, one.weights)  # additive: drop == gain for every word
    assert additive.calls == 2 and two.evals == 2 * len(two.tokens) + 2

    class EitherCue(BagModel):
        """margin 2 when 'suspended' OR 'verify' is present: each cue alone suffices."""

        def score(self, texts, progress=None):
            from gapscope.attribution.words import split_words

            self.calls += 1
            return np.array([2.0 if {"suspended", "verify"} & {c.lower() for c in split_words(t).cores} else 0.0
                             for t in texts])

    model = EitherCue({})
    words = [t.strip().lower().rstrip(".") for t in TEXT.split()]
    removal = attribute(model, TEXT, method="occlusion")
    both = get_method("occlusion", two_sided=True).attribute(model, TEXT)
    got_removal = {t.strip().lower(): w for t, w in zip(removal.tokens, removal.weights)}
    got_both = {t.strip().lower(): w for t, w in zip(both.tokens, both.weights)}
    assert "suspended" in " ".join(words)
    assert got_removal["suspended"] == 0.0 and got_removal["verify"] == 0.0  # removal alone misses both
    assert got_both["suspended"] == pytest.approx(1.0) and got_both["verify"] == pytest.approx(1.0)
    assert got_both["dear"] == 0.0


def test_score_edits_hook_is_used_and_agrees_with_plain_scoring():
    class PrefixModel(BagModel):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.hook_calls = 0

        def score_edits(self, text, variants):
            self.hook_calls += 1
            for v in variants:  # sorted, non-overlapping edits: what a KV-cache scorer relies on
                assert all(v[i][1] <= v[i + 1][0] for i in range(len(v) - 1))
            return self.score([apply_edits(text, v) for v in variants])

    w = {"account": 1.0, "suspended": 2.0}
    a = attribute(PrefixModel(w), TEXT)
    b = attribute(BagModel(w), TEXT)
    np.testing.assert_allclose(a.weights, b.weights)
    m = PrefixModel(w)
    score_variants(m, TEXT, [[], [(0, 4, "")]])
    assert m.hook_calls == 1


def test_shap_partition_recovers_an_additive_model():
    model = BagModel({"account": 1.0, "suspended": 2.0, "verify": 1.5, "thanks": -1.0}, bias=0.3)
    att = attribute(model, TEXT, method="shap", max_evals=500)
    got = {t.strip().lower(): w for t, w in zip(att.tokens, att.weights)}
    # Owen values of an additive game are the per-player contributions
    assert got["suspended"] == pytest.approx(2.0, abs=1e-6)
    assert got["thanks"] == pytest.approx(-1.0, abs=1e-6)
    assert att.margin == pytest.approx(model.score([TEXT])[0])
    assert att.evals <= 500


def test_attribution_roundtrip_and_evidence_shape():
    att = attribute(BagModel({"account": 1.0}), TEXT)
    d = att.to_dict()
    assert {"text", "tokens", "weights"} <= set(d)
    back = Attribution.from_dict(d)
    assert back.text == TEXT and np.allclose(back.weights, att.weights, atol=1e-5)


@pytest.fixture(scope="module")
def tfidf_model():
    texts, y = toy_corpus(200)
    return make_tfidf(texts, y), texts


def test_occlusion_and_shap_agree_and_beat_random_on_tfidf(tfidf_model):
    model, texts = tfidf_model
    occ, shp, rnd = [], [], []
    for k, t in enumerate(texts[:6]):
        a = attribute(model, t, method="occlusion")
        s = attribute(model, t, method="shap")
        assert a.margin == pytest.approx(model.score([t])[0])
        # the two methods rank words alike
        assert spearmanr(a.weights, s.weights).statistic > 0.6
        occ.append(faithfulness.evaluate(model, a))
        shp.append(faithfulness.evaluate(model, s))
        rnd.append(faithfulness.evaluate(model, a, order=faithfulness.random_order(len(a.tokens), k)))
    so, sr = faithfulness.summarize(occ), faithfulness.summarize(rnd)
    assert so["deletion_auc"] < sr["deletion_auc"]
    assert so["insertion_auc"] > sr["insertion_auc"]
    assert so["comprehensiveness"] > sr["comprehensiveness"]
    assert so["sufficiency"] < sr["sufficiency"]
    assert faithfulness.summarize(shp)["n"] == 6
    # paired over the same emails, occlusion's lead over a random ranking is beyond the noise
    # (from 8 emails: below, no reading)
    assert faithfulness.compare(occ, rnd)["deletion_auc"]["reading"] == "too few emails"
    for k, t in enumerate(texts[6:10], 6):
        a = attribute(model, t, method="occlusion")
        occ.append(faithfulness.evaluate(model, a))
        rnd.append(faithfulness.evaluate(model, a, order=faithfulness.random_order(len(a.tokens), k)))
    cmp = faithfulness.compare(occ, rnd)
    assert cmp["deletion_auc"]["reading"] == "better" and cmp["deletion_auc"]["ci95"][1] < 0
    assert cmp["insertion_auc"]["reading"] == "better" and cmp["insertion_auc"]["ci95"][0] > 0


def _faith(d, i, c, s):
    return faithfulness.Faithfulness(deletion_auc=d, insertion_auc=i, comprehensiveness=c, sufficiency=s,
                                     n_words=10, p_full=0.9)


def test_compare_reads_paired_differences_by_each_scores_direction():
    rng = np.random.default_rng(0)
    ref = [_faith(*rng.uniform(0.2, 0.8, 4)) for _ in range(10)]
    noise = rng.normal(0, 0.01, size=(10, 4))
    # lower deletion (better), lower insertion (worse), comprehensiveness unchanged up to noise,
    # higher sufficiency (worse)
    shifted = [_faith(r.deletion_auc - 0.1 + e[0], r.insertion_auc - 0.1 + e[1], r.comprehensiveness + e[2],
                      r.sufficiency + 0.1 + e[3]) for r, e in zip(ref, noise)]
    cmp = faithfulness.compare(shifted, ref)
    assert {k: v["reading"] for k, v in cmp.items()} == {
        "deletion_auc": "better", "insertion_auc": "worse", "comprehensiveness": "within noise", "sufficiency": "worse"}
    assert cmp["deletion_auc"]["difference"] == pytest.approx(-0.1, abs=0.01)
    lo, hi = cmp["deletion_auc"]["ci95"]
    assert lo < cmp["deletion_auc"]["difference"] < hi
    # deterministic for a seed
    assert faithfulness.compare(shifted, ref) == cmp
    # one email: a difference, but no interval and no reading
    one = faithfulness.compare(shifted[:1], ref[:1])
    assert one["deletion_auc"]["ci95"] is None and one["deletion_auc"]["reading"] == "too few emails"
    with pytest.raises(ValueError):
        faithfulness.compare(shifted[:2], ref[:3])


def test_two_methods_of_one_distribution_are_rarely_read_as_different():
    # a percentile bootstrap over 3-10 paired differences read "better" or "worse" in 10-26% of
    # such pairs; the permutation test keeps to its 5%, and below 8 emails there is no reading
    rng = np.random.default_rng(0)
    called = {3: 0, 8: 0, 10: 0}
    for _ in range(300):
        for n in called:
            a = [_faith(*rng.uniform(0.2, 0.8, 4)) for _ in range(n)]
            b = [_faith(*rng.uniform(0.2, 0.8, 4)) for _ in range(n)]
            cmp = faithfulness.compare(a, b)
            called[n] += cmp["deletion_auc"]["reading"] in ("better", "worse")
            if n == 3:
                assert cmp["deletion_auc"]["reading"] == "too few emails"
    assert called[3] == 0 and called[8] / 300 <= 0.07 and called[10] / 300 <= 0.07
    # past 12 emails the signs are drawn: the observed pattern counts among them, so p is never 0
    far = [_faith(0.9, 0.5, 0.5, 0.5) for _ in range(20)]
    near = [_faith(0.1, 0.5, 0.5, 0.5) for _ in range(20)]
    p = faithfulness.compare(near, far, resamples=500)["deletion_auc"]["p"]
    assert 0 < p <= 1 / 501 + 1e-4


def test_an_email_without_words_has_no_scores_and_is_left_out():
    # a whitespace-only email: its one token is not a word (the check raised), and all-zero scores
    # averaged in read as a perfect deletion AUC
    model = BagModel({"account": 1.0})
    blank = attribute(model, "  \n ")
    f = faithfulness.evaluate(model, blank)
    assert f.n_words == 0 and np.isnan(f.deletion_auc)
    real = faithfulness.evaluate(model, attribute(model, TEXT))
    assert faithfulness.summarize([real, f]) == faithfulness.summarize([real])


def test_faithfulness_curves_by_hand():
    model = BagModel({"bad": 4.0, "meh": 1.0}, bias=-2.0)
    text = "bad meh x y"
    att = attribute(model, text)  # margin 3 -> predicted phishing
    f = faithfulness.evaluate(model, att, fractions=(0.25,), steps=4)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    # deletion removes 'bad' first: margins 3, -1, -2, -2, -2
    assert f.deletion_curve == pytest.approx([sig(3), sig(-1), sig(-2), sig(-2), sig(-2)], abs=1e-4)
    assert f.insertion_curve[1] == pytest.approx(sig(2), abs=1e-4)
    assert f.comprehensiveness == pytest.approx(sig(3) - sig(-1))
    assert f.sufficiency == pytest.approx(sig(3) - sig(2))


def test_corpus_aggregation_ranks_frequent_features():
    model = BagModel({"verify": 2.0, "rare": 5.0, "agenda": -1.0})
    texts = [f"please verify item {i} agenda" for i in range(6)] + ["rare token here"] * 1
    table = aggregate([attribute(model, t) for t in texts], ngram_max=2, min_docs=2)
    assert "rare" not in set(table["feature"])  # below min_docs
    row = table.set_index("feature").loc["verify"]
    assert row["mean"] == pytest.approx(2.0) and row["docs"] == 6
    assert row["importance"] == pytest.approx(2.0 * np.log1p(6))
    assert top_features(table, k=1, direction=-1)[0]["feature"] == "agenda"


def test_top_lists_count_each_occurrence_once():
    # "please verify" is "verify" renamed (please weighs nothing); the footer's bigrams are one
    # piece of evidence: listing them all filled the top lists with restatements
    model = BagModel({"verify": 2.0, "via": 1.0, "veloruith": 1.0, "relay": 1.0, "agenda": -1.0})
    texts = [f"please verify item {i} sent via veloruith relay agenda" for i in range(6)]
    table = aggregate([attribute(model, t) for t in texts], ngram_max=2, min_docs=2)
    top = top_features(table, k=10, direction=1)
    names = [f["feature"] for f in top]
    assert "verify" in names and "please verify" not in names and "verify item" not in names
    footer = [f for f in top if f["feature"] in ("via veloruith", "veloruith relay", "via", "veloruith", "relay")]
    assert len(footer) == 1, names
    assert {"via veloruith", "veloruith relay"} - {footer[0]["feature"]} <= set(footer[0]["also"])
    assert names == ["veloruith relay", "verify"]  # nothing else pushes toward phishing
    # only the words a model reads count: cut after the item number, the footer is not evidence
    atts = [attribute(model, t) for t in texts]
    cut = [t.index(" sent") for t in texts]
    seen = aggregate(atts, ngram_max=2, min_docs=2, ends=cut)
    assert "veloruith" not in set(seen["feature"]) and "agenda" not in set(seen["feature"])
    assert seen.set_index("feature").loc["verify", "docs"] == 6


def test_a_word_is_not_folded_into_a_generic_word_it_only_sometimes_precedes():
    # "verify your" (5 of the 35 "your") folded into "your" and handed it "verify", which then folded
    # into "your" too: a separate cue vanished from the list. Only a phrase that is its owner's (the
    # footer's "via veloruith", above) passes on its other words
    model = BagModel({"your": 1.0, "verify": 0.6, "meeting": -1.0})
    texts = ([f"please verify your item {i}" for i in range(5)] + [f"update your note {i}" for i in range(30)]
             + [f"meeting {i} today" for i in range(15)])
    ft = feature_table([attribute(model, t) for t in texts], boots=0)
    assert [f["feature"] for f in ft.top(+1)] == ["your", "verify"]
    assert ft.table.set_index("feature").loc["verify", "covered_by"] == ""


def test_a_cells_scale_is_its_margin_swing_not_its_weights_sum():
    # span occlusion on a model that is not additive gives weights summing to 3x its margin swing (MiniLM
    # in the demo: 27.7 against 8.8); scaled by the sum, its features shrank against tf-idf's
    atts = [Attribution(["verify ", "now ", "please"], np.array([3.0, 2.0, 1.0]), 1.5, "occlusion", base_margin=-0.5)
            for _ in range(4)]
    assert feature_table(atts, boots=0).scale == pytest.approx(2.0)
    for a in atts:
        a.base_margin = None  # the empty email not scored: the sum stands in
    assert feature_table(atts, boots=0).scale == pytest.approx(6.0)


def test_compare_keeps_directions_apart_and_absent_features_aside():
    texts_a = [f"please verify item {i} agenda" for i in range(6)]
    texts_b = [f"please verify now {i} kind regards agenda" for i in range(6)]
    a = aggregate([attribute(BagModel({"verify": 2.0, "agenda": -1.0}), t) for t in texts_a], min_docs=2)
    b = aggregate([attribute(BagModel({"verify": 1.0, "agenda": -3.0, "regards": -4.0}), t) for t in texts_b],
                  min_docs=2)
    diff = compare(a, b, k=5)
    phish_a = [r["feature"] for r in diff["phishing_more_in_a"]]
    assert phish_a == ["verify"]  # a legitimate cue only b holds is not phishing evidence of a
    assert [r["feature"] for r in diff["legitimate_more_in_b"]] == ["agenda"]
    assert diff["phishing_more_in_b"] == [] and diff["legitimate_more_in_a"] == []
    assert [r["feature"] for r in diff["only_in_b"]] == ["regards agenda"]  # "regards" folded into it
    assert all("regards" not in r["feature"] for k in ("phishing_more_in_a", "legitimate_more_in_b")
               for r in diff[k])
    # two models on the same emails, one with every weight ten times the other's: scaled by
    # their typical margin they do not differ
    atts1 = [attribute(BagModel({"verify": 2.0, "agenda": -1.0}), t) for t in texts_a]
    atts10 = [attribute(BagModel({"verify": 20.0, "agenda": -10.0}), t) for t in texts_a]
    f1, f10 = (feature_table(x, min_docs=2, boots=0) for x in (atts1, atts10))
    raw = compare(f1.table, f10.table)
    assert raw["phishing_more_in_b"] and raw["legitimate_more_in_b"]
    scaled = compare(f1.table, f10.table, scale_a=f1.scale, scale_b=f10.scale)
    assert all(abs(r["diff"]) < 1e-9 for k in scaled if "more" in k for r in scaled[k])


def _domain_texts(rng, vocab, n, words=8):
    return [" ".join(rng.choice(vocab, size=words, replace=False)) for _ in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_shift_is_beyond_chance_only_where_the_evidence_differs(seed):
    # A planted difference (each domain's phishing evidence in its own words) is beyond what two
    # disjoint halves of one domain differ by; a second sample of the same source is not, also when
    # it is much smaller than the home sample (against two bootstrap resamples of the home sample,
    # which share its noise, a same-source domain read as shifted in 12 of 30 draws)
    rng = np.random.default_rng(seed)
    a_words, b_words = [f"a{i}" for i in range(12)], [f"b{i}" for i in range(12)]
    weights = {w: float(x) for w, x in zip(a_words + b_words, rng.uniform(0.5, 2.0, 24))}
    model = BagModel(weights)

    def table(texts):
        return feature_table([attribute(model, t) for t in texts], ngram_max=1, min_docs=2, k=5, seed=seed)

    home = table(_domain_texts(rng, a_words, 32))
    shifted = shift_test(home, table(_domain_texts(rng, b_words, 16)), seed=seed)
    assert shifted["beyond_chance"] and shifted["across_median"] < shifted["within_p05"]
    for n in (32, 6):
        same = shift_test(home, table(_domain_texts(rng, a_words, n)), seed=seed)
        assert not same["beyond_chance"] and same["emails"] == min(16, n)
    assert shift_test(home, table(_domain_texts(rng, a_words, 1)), seed=seed) is None  # too few to test
    st = home.table.set_index("feature")["stability"]
    assert ((st >= 0) & (st <= 1)).all() and st.max() > 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_domain_of_one_label_is_compared_with_home_emails_of_that_label(seed):
    # a review: home halves balanced between the labels against an all-legitimate domain of the same
    # source compared a top phishing list read off phishing mail with one read off legitimate mail,
    # and called the shift beyond chance in 17 of 20 draws; each set now has the other's label mix
    rng = np.random.default_rng(seed)
    p_words, l_words, s_words = ([f"{c}{i}" for i in range(12)] for c in "pls")
    weights = {**{w: float(x) for w, x in zip(p_words, rng.uniform(1.0, 2.0, 12))},
               **{w: -float(x) for w, x in zip(l_words, rng.uniform(1.0, 2.0, 12))},
               **{w: float(x) for w, x in zip(s_words, rng.uniform(-0.5, 0.5, 12))}}
    model = BagModel(weights)

    def emails(label, n):
        own = p_words if label else l_words
        return [" ".join([*rng.choice(own, 4, replace=False), *rng.choice(s_words, 4, replace=False)])
                for _ in range(n)]

    def table(texts, labels):
        return feature_table([attribute(model, t) for t in texts], ngram_max=1, min_docs=2, k=5, seed=seed,
                             labels=labels)

    home = table(emails(1, 25) + emails(0, 25), [1] * 25 + [0] * 25)
    legit = table(emails(0, 30), [0] * 30)
    same = shift_test(home, legit, seed=seed)
    assert not same["beyond_chance"] and same["by_label"] == [12, 0] and same["emails"] == 12
    # unlabelled, the halves are drawn from both labels: the comparison the review caught
    home.labels = legit.labels = None
    assert shift_test(home, legit, seed=seed)["beyond_chance"]


def test_a_same_source_domain_of_noisy_evidence_is_not_called_shifted():
    # 30 words carry equal phishing weight under noise: the top lists of any two samples differ a
    # lot, and what decides is whether the other domain differs more than two halves of home do
    import random

    vocab = [f"w{i}" for i in range(400)]
    rnd = random.Random(7)

    def att():
        words = [rnd.choice(vocab) for _ in range(60)]
        w = [(1.0 if int(x[1:]) < 30 else 0.0) + rnd.gauss(0, 1.0) for x in words]
        return Attribution([x + " " for x in words], np.asarray(w), 1.0, "occlusion")

    home = feature_table([att() for _ in range(120)], k=10, boots=0)
    for n in (120, 20):
        assert not shift_test(home, feature_table([att() for _ in range(n)], k=10, boots=0))["beyond_chance"]


def test_sample_rows_is_balanced_and_deterministic():
    rows = [Row(id=f"r{i}", domain="d", text=str(i), label=int(i < 5)) for i in range(40)]
    a = sample_rows(rows, 8, 0, "d")
    assert len(a) == 8 and sum(r.label for r in a) == 4
    assert [r.id for r in a] == [r.id for r in sample_rows(rows, 8, 0, "d")]
    assert len(sample_rows(rows, 30, 0, "d")) == 30  # short class filled from the other


def test_shap_explains_a_one_word_email_exactly():
    # shap's partition tree needs two words: a one-word email ended in a traceback
    model = BagModel({"verify": 1.5}, bias=-0.5)
    a = attribute(model, "verify", method="shap")
    assert a.weights.tolist() == [1.5] and a.margin == 1.0 and a.base_margin == -0.5
    assert get_method("shap", batch_size=16).params() != get_method("shap", batch_size=64).params()


def test_combining_marks_stay_inside_their_words():
    # \w leaves out vowel signs and combining accents: "आपका" was cut into "आपक" + "ा", and removing
    # the fragment made a new word
    assert split_words("आपका खाता बंद").cores == ["आपका", "खाता", "बंद"]
    assert split_words("Cafe\u0301 Пе\u0301рвый").cores == ["Cafe\u0301", "Пе\u0301рвый"]  # Thai: test_words_nospace.py
    w = split_words("आपका खाता")
    assert w.compose([False, True]) == " खाता"


def test_an_address_or_link_in_angle_brackets_is_no_html_tag():
    """'From: Bank <service@bank.top>' cut the address as one HTML tag: features read
    'from support <html-tag>', the html_share style counted it and the strip-HTML edit removed it."""
    from gapscope.attribution import edits as E
    from gapscope.detectors.shortcuts import _style

    keys = [feature_key(c) for c in split_words("From: Bank <service@cmb-safe.top>, see <https://x.io/a>").cores]
    assert "<html-tag>" not in keys and "<email>" in keys and "<url>" in keys
    assert _style("Support <help@bank.top>")["html_share"] == 0.0
    assert E.strip_html("Reply to <help@bank.top> today") is None  # nothing to strip
    html = '<div class="x">Hi</div><br/><o:p></o:p><p >x</p>'
    assert [feature_key(c) for c in split_words(html).cores].count("<html-tag>") == 7
    assert E.strip_html(html) == "Hix"


def test_a_tag_name_with_an_underscore_is_still_a_tag():
    """Tag names with '_' (custom and XML elements: '<my_tag>', '<o:p_x>') were tags before the
    address fix and were then cut as '<', 'my_tag', '>'; an address with '_' stays no tag."""
    from gapscope.attribution import edits as E

    for tag in ("<my_tag>", "</my_tag>", "<x_list id=1>", "<ns:el_name/>"):
        assert [feature_key(c) for c in split_words(tag).cores] == ["<html-tag>"], tag
    assert E.strip_html("a<my_tag>b</my_tag>") == "ab"
    keys = [feature_key(c) for c in split_words("From: <john_doe@bank.top>").cores]
    assert "<html-tag>" not in keys and "<email>" in keys


def test_a_shared_extraction_cache_changes_no_table():
    """Tables over overlapping sets of emails (a cell's domains pooled, each left out in turn) share
    each email's extracted features; every table equals the one built without the cache."""
    import random

    rnd = random.Random(4)

    def att():
        words = [f"w{rnd.randrange(40)}" for _ in range(rnd.randrange(5, 30))]
        return Attribution([x + " " for x in words], np.asarray([rnd.gauss(0, 1) for _ in words]), 1.0, "occlusion")

    emails = [att() for _ in range(60)]
    ends = [None if i % 3 else 40 for i in range(60)]  # some cut at a window: counted apart
    cache: dict = {}
    for lo, hi in ((0, 60), (0, 40), (20, 60), (0, 60)):
        kw = dict(ngram_max=2, min_docs=2, k=5, seed=1, boots=20, ends=ends[lo:hi])
        plain = feature_table(emails[lo:hi], **kw)
        cached = feature_table(emails[lo:hi], cache=cache, **kw)
        pd.testing.assert_frame_equal(plain.table, cached.table)
        assert plain.words_in_view == cached.words_in_view and plain.n_emails == cached.n_emails
    assert len(cache) == 60
    # the same email read with another window is extracted again, not served the first reading
    first = feature_table(emails[:1], ngram_max=2, min_docs=1, ends=[None], cache=cache, boots=0)
    cut = feature_table(emails[:1], ngram_max=2, min_docs=1, ends=[5], cache=cache, boots=0)
    assert cut.table["n"].sum() < first.table["n"].sum()


def test_an_amount_is_one_word_and_a_tag_after_punctuation_is_a_tag():
    # '$27,750,000.00' was cut at every separator: four <num> words, so '<num> <num>' headed a fraud
    # cell's top features and occlusion removed '27' alone; ',<br>' was the punctuation ',<' then 'br'
    from gapscope.attribution.words import feature_key, split_words

    cores = split_words("Pay $27,750,000.00 (or 3.5%) by 3:30 today.").cores
    assert "27,750,000.00" in cores and "3.5" in cores and [feature_key(c) for c in cores].count("<num>") == 4
    assert split_words("请支付1,000.00元").cores == ["请", "支", "付", "1,000.00", "元"]
    assert split_words("abc1,5 and 5.Then").cores == ["abc1", ",", "5", "and", "5", ".", "Then"]
    # glued to letters, no amount is cut inside its digits ('1,000' '.' '00USD' before the pattern was atomic)
    assert "1,000" not in split_words("1,000.00USD").cores and "12,34" not in split_words("12,34,56abc").cores
    keys = [feature_key(c) for c in split_words("Dear customer,<br><br>Hi!<b>x</b>)<p> <!DOCTYPE html><!-- c -->").cores]
    assert keys == ["dear", "customer", ",", "<html-tag>", "<html-tag>", "hi", "!", "<html-tag>", "x", "<html-tag>", ")",
                    "<html-tag>", "<html-tag>", "<html-tag>"]
