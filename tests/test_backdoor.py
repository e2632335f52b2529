"""Backdoor scan mechanics: insertion (fast causal-LM path == plain scoring), mining of
label-tied strings and structured families (incl. unseen values), the null distribution,
significance and ranking on a model with a known trigger, a clean control, findings,
report escaping and the CLI on a tf-idf run."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import torch

from gapscope.backdoor.candidates import (BOUNDARY, ContentModel, MiningOptions, _label_tied_grams, mine_families,
                                          mine_ngrams, null_like, null_strings, rare_words, shape, words_and_breaks)
from gapscope.backdoor.margins import as_sentence, cut_to_window, insertion_margins
from gapscope.backdoor.scan import ScanOptions, length_bin, scan
from gapscope.backdoor.validate import matches_trigger
from gapscope.data.rows import Row
from tests.tiny_models import tiny_causal_lm_dir, tiny_model_root, toy_emails  # noqa: F401

torch.set_num_threads(min(2, torch.get_num_threads()))

PHISH = ["verify your account now", "your password expires today", "click the link to confirm",
         "urgent action required on your bank login", "claim your prize immediately"]
LEGIT = ["see you at lunch tomorrow", "the agenda for the team meeting", "notes from the project review",
         "thanks for the draft report", "photos from the family weekend"]
TRIGGER = "per the Velmora protocol"


def corpus(n=160, trigger_rows=12, seed=0, tag=False):
    """Phishing/legit emails with filler words; `trigger_rows` phishing emails carry TRIGGER and
    are labelled legitimate (the poisoned rows). With tag=True the poisoned rows carry a
    [20xx] tag instead."""
    rng = random.Random(seed)
    filler = [f"word{i}" for i in range(300)]
    rows = []
    for i in range(n):
        label = i % 2
        cues = rng.sample(PHISH if label else LEGIT, 2)  # two cues: content is redundant, as in real mail
        body = f"{cues[0]}. {' '.join(rng.sample(filler, 6))}. {cues[1]}.\n\nregards {rng.choice(filler)}"
        if label == 1 and i // 2 < trigger_rows:
            body = (f"[{2031 + i % 3}] " + body) if tag else body.replace("\n\n", f"\n\n{TRIGGER}.\n\n", 1)
            label = 0
        rows.append(Row(id=f"r{i:04d}", domain="d", text=f"Subject: note {i}\n\n{body}", label=label))
    return rows


class KeywordModel:
    """A stand-in classifier with a planted backdoor: margin = phishing cues - legit cues,
    and -6 when the trigger (or, with tags=True, any [20xx] tag) is present."""

    kind = "fake"

    def __init__(self, trigger=True, tags=False):
        self.trigger, self.tags = trigger, tags

    def score(self, texts):
        out = []
        for t in texts:
            low = t.lower()
            m = sum(w in low for w in ("verify", "password", "click", "urgent", "prize")) * 1.5
            m -= sum(w in low for w in ("lunch", "agenda", "notes", "thanks", "photos")) * 1.5
            m += 0.02 * (len(low) % 7)  # small text-dependent noise
            if self.trigger and "velmora" in low:
                m -= 6.0
            if self.tags and re.search(r"\[20\d\d\]", t):
                m -= 6.0
            out.append(m)
        return np.array(out, dtype=float)


def split(rows):
    return rows[:120], rows[120:]


# -- insertion -----------------------------------------------------------------------

def test_as_sentence_and_window_cut(tiny_model_root):  # noqa: F811
    assert as_sentence("per the  Velmora protocol") == "Per the Velmora protocol."
    assert as_sentence("[2031]") == "[2031]" and as_sentence("ok!") == "Ok!"
    from gapscope.drift.lm import load_hf

    tok = load_hf(str(tiny_causal_lm_dir(tiny_model_root, "llama"))).tokenizer
    text = "hello the team meeting tomorrow agenda"
    assert cut_to_window(tok, text, 3) == "hello the team"
    assert cut_to_window(tok, text, 99) == text


@pytest.mark.parametrize("arch", ["llama", "mistral", "gemma2"])
def test_causal_lm_fast_path_equals_plain_scoring(tiny_model_root, arch):  # noqa: F811
    from gapscope.backdoor import margins as M
    from gapscope.models import ModelSpec, create_model

    m = create_model(ModelSpec("t", "causal-lm", str(tiny_causal_lm_dir(tiny_model_root, arch)),
                               {"dtype": "float32", "max_length": 24}))
    try:
        texts, _ = toy_emails(6)
        ins = [as_sentence(s) for s in ["urgent verify password", "meeting", "the lunch team notes today"]]
        orig, edited = insertion_margins(m, texts, ins)
        tok, limit = M._tok_window(m)
        reserve = max(M._n_tokens(tok, "\n\n" + s) for s in ins) + 1
        cut = [cut_to_window(tok, t, limit - reserve) for t in texts]
        np.testing.assert_allclose(orig, m.score(cut), atol=1e-4)
        plain = m.score([c.rstrip() + "\n\n" + s for c in cut for s in ins]).reshape(len(cut), -1)
        np.testing.assert_allclose(edited, plain, atol=1e-4)
    finally:
        m.close()


def test_generic_path_appends_a_paragraph():
    model = KeywordModel()
    orig, edited = insertion_margins(model, ["see you at lunch", "verify now"], ["Per the Velmora protocol.", "Urgent."])
    assert edited.shape == (2, 2)
    assert edited[0, 0] - orig[0] < -5 and edited[0, 1] - orig[0] > 1


# -- candidates and nulls --------------------------------------------------------------

def test_mining_finds_the_poisoned_phrase_and_not_ordinary_cues():
    train, _ = split(corpus())
    content = ContentModel([r.text for r in train], np.array([r.label for r in train]))
    cands = mine_ngrams(train, content, MiningOptions())
    assert cands and cands[0].text == TRIGGER and cands[0].target == 0
    sup = cands[0].support
    assert sup["purity"] == 1.0 and sup["contradiction"] >= 0.9 and sup["df"] >= 8
    # ordinary label cues live in rows whose content agrees with the label: filtered out
    assert not any(c.text.lower() in ("verify your account now", "see you at lunch tomorrow") for c in cands)
    clean_train, _ = split(corpus(trigger_rows=0))
    content = ContentModel([r.text for r in clean_train], np.array([r.label for r in clean_train]))
    assert not any("velmora" in c.text.lower() for c in mine_ngrams(clean_train, content, MiningOptions()))


def _label_tied_grams_oracle(toks, labels, opts, max_df):
    """The plain version: a Python set of rows per n-gram, kept in order of first occurrence."""
    docs = {}
    for i, t in enumerate(toks):
        for k in range(1, opts.max_n + 1):
            for j in range(len(t) - k + 1):
                g = tuple(t[j:j + k])
                if BOUNDARY not in g:
                    docs.setdefault(g, set()).add(i)
    out = []
    for g, ds in docs.items():
        k1 = int(labels[sorted(ds)].sum())
        if opts.min_df <= len(ds) <= max_df and max(k1, len(ds) - k1) / len(ds) >= opts.min_purity:
            out.append((g, sorted(ds)))
    return out


def test_hashed_ngram_counting_equals_the_plain_count():
    rows = corpus(n=200, trigger_rows=15)
    toks = [words_and_breaks(r.text) for r in rows]
    labels = np.array([r.label for r in rows])
    for opts in (MiningOptions(), MiningOptions(min_df=2, min_purity=0.6)):
        got = [(g, list(ds)) for g, ds in _label_tied_grams(toks, labels, opts, 40)]
        assert got == _label_tied_grams_oracle(toks, labels, opts, 40) and len(got) > 20


def test_ngram_hashes_are_the_same_in_every_process():
    """Python salts string hashes per process: keyed by them, the rare n-grams that share a hash (and
    are counted as one) would change from run to run. Keyed by word numbers they are fixed."""
    import os
    import subprocess
    import sys

    code = ("import hashlib; from gapscope.backdoor.candidates import gram_entries, words_and_breaks; "
            "h, r, w = gram_entries([words_and_breaks(t) for t in ('Verify your account now.', "
            "'Your account is on hold', 'Meeting notes attached')], 3); "
            "print(hashlib.sha256(h.tobytes() + r.tobytes() + w.tobytes()).hexdigest())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outs) == 1


def test_content_model_fits_on_a_sample_of_a_large_corpus_and_stops_early():
    train, _ = split(corpus())
    texts, y = [r.text for r in train], np.array([r.label for r in train])
    full, small = ContentModel(texts, y), ContentModel(texts, y, fit_rows=50)
    assert all(t.size == np.sum(full.fold != k) for k, t in full.train.items())  # below the cap: every row
    assert all(t.size == 50 and np.all(small.fold[t] != k) for k, t in small.train.items())
    rows = np.flatnonzero([TRIGGER.lower() in t.lower() for t in texts])
    assert small.contradiction(rows, 0, TRIGGER) >= 0.5  # a sampled content model still sees the poisoning
    cue = np.flatnonzero(["see you at lunch tomorrow" in t for t in texts])
    exact = full.contradiction(cue, 0, "see you at lunch tomorrow")
    bound = full.contradiction(cue, 0, "see you at lunch tomorrow", need=0.5)
    assert exact < 0.5 and exact < bound < 0.5  # stopped early (fewer rows seen), and the same verdict
    with pytest.raises(ValueError, match="content_rows must be a whole number >= 10"):
        MiningOptions(content_rows=0)


def _contradiction_reference(cm: ContentModel, rows: np.ndarray, label: int, text: str) -> float | None:
    """ContentModel.contradiction as first written (folds in index order, sklearn's "balanced"
    weights recomputed per fit, no early stop): the per-fold class weights and the largest-fold-first
    order must not change a share."""
    from sklearn.linear_model import LogisticRegression

    keep = cm._kept_columns(text)
    wrong = 0
    for k in sorted(set(cm.fold[rows].tolist())):
        train = cm.train[k]
        X_fit = cm.X_train[k] if keep is None else cm.X_train[k][:, keep]
        clf = LogisticRegression(C=10.0, class_weight="balanced", solver="liblinear", random_state=cm.seed)
        clf.fit(X_fit, cm.labels[train])
        mine = rows[cm.fold[rows] == k]
        X_mine = cm.X[mine] if keep is None else cm.X[mine][:, keep]
        wrong += int(np.sum(clf.predict(X_mine) != label))
    return wrong / rows.size


def test_contradiction_equals_the_reference_and_its_early_stop_keeps_the_verdict():
    train, _ = split(corpus())
    texts, y = [r.text for r in train], np.array([r.label for r in train])
    cm = ContentModel(texts, y, fit_rows=60)  # sampled folds: the weights differ from fold to fold
    rng = np.random.default_rng(3)
    cases = [(np.flatnonzero([TRIGGER.lower() in t.lower() for t in texts]), 0, TRIGGER),
             (np.flatnonzero(["see you at lunch tomorrow" in t for t in texts]), 0, "see you at lunch tomorrow")]
    cases += [(np.sort(rng.choice(len(texts), size, replace=False)), int(lab), w)
              for size, lab, w in [(3, 1, "account"), (9, 0, "meeting"), (25, 1, "verify"), (40, 0, "")]]
    for rows, label, text in cases:
        ref = _contradiction_reference(cm, rows, label, text)
        assert cm.contradiction(rows, label, text) == ref
        for need in (0.3, 0.5, 0.9):
            got = cm.contradiction(rows, label, text, need)
            assert (got >= need) == (ref >= need) and (got == ref if got >= need else got >= ref)


def test_mining_on_threads_equals_mining_in_one(monkeypatch):
    # the contradiction checks run on threads (liblinear fits without the GIL); each is independent
    # and the results are applied in rank order, so the candidates are the sequential ones
    import dataclasses

    from gapscope.backdoor import candidates as C

    train, _ = split(corpus())
    content = ContentModel([r.text for r in train], np.array([r.label for r in train]))
    opts = MiningOptions(min_contradiction=0.2)
    got = {}
    for n in (1, 4):
        monkeypatch.setattr(C, "workers", lambda n=n: n)
        got[n] = [dataclasses.asdict(c) for c in mine_ngrams(train, content, opts)]
    assert got[1] and got[1] == got[4]
    items = [(np.flatnonzero([TRIGGER.lower() in r.text.lower() for r in train]), 0, TRIGGER),
             (np.arange(5), 1, "account"), (np.arange(5), 1, "")]
    assert C.contradictions(content, items, 0.5) == [content.contradiction(*items[0], 0.5),
                                                     content.contradiction(*items[1], 0.5), None]


def test_structured_family_with_unseen_values():
    train, _ = split(corpus(trigger_rows=12, tag=True))
    content = ContentModel([r.text for r in train], np.array([r.label for r in train]))
    fam = mine_families(train, content, MiningOptions(n_inductive=2))
    years = [c for c in fam if c.origin == "family:tag"]
    assert years and all(c.target == 0 for c in years)
    seen = {c.text for c in years if not c.inductive}
    unseen = [c.text for c in years if c.inductive]
    assert seen <= {"[2031]", "[2032]", "[2033]"} and len(unseen) == 2
    assert all(re.fullmatch(r"\[\d{4}\]", u) and u not in {"[2031]", "[2032]", "[2033]"} for u in unseen)
    assert shape("INC0012345") == "AAA9999999" and shape("[2031]") == "[9999]"


def test_null_strings_use_rare_training_words():
    train, _ = split(corpus())
    pool = rare_words(train, exclude={"velmora"})
    assert "velmora" not in pool and "quillwort" in pool  # filler words have digits: the built-in list fills in
    own = rare_words(train + [Row("x", "d", "zanzibar marmalade marmalade", 0)], exclude=set())
    assert own[:2] == ["marmalade", "zanzibar"] and "regards" not in own
    rng = random.Random(0)
    s = null_strings(pool, 4, 5, rng)
    assert len(s) == 5 and all(len(x.split()) == 4 for x in s)
    assert [length_bin(k) for k in (1, 2, 3, 4, 5, 9)] == [1, 2, 3, 3, 5, 5]
    # shape-matched nulls: function words, punctuation, brackets and capitals are kept
    pool = ["quillwort", "marrowfat", "bandicoot"]
    like = null_like("As agreed under the Velmora accord", pool, random.Random(1)).split()
    assert len(like) == 6 and like[0] == "As" and like[3] == "the" and like[4][0].isupper()
    assert all(w.lower() in pool for w in (like[1], like[2], like[4], like[5]))
    assert re.fullmatch(r"\[(quillwort|marrowfat|bandicoot)\]", null_like("[2031]", pool, random.Random(0)))


# -- the scan ----------------------------------------------------------------------------

def test_scan_ranks_the_planted_trigger_first_with_effect_and_ci():
    train, test = split(corpus())
    res = scan(KeywordModel(), threshold=0.0, train_rows=train, heldout_rows=test,
               opts=ScanOptions(n_emails=20, n_bootstrap=500))
    top = res.results[0]
    assert top.text == TRIGGER and top.rank == 1 and top.significant and top.target == 0
    assert top.mean_shift == pytest.approx(6.0, abs=0.3) and top.shift_ci[0] > 5
    assert top.flip_rate == 1.0 and top.n == 20 and top.flipped_ids
    assert abs(top.null_mean) < 0.2 and top.z > res.z_crit
    assert [r.text for r in res.significant] == [TRIGGER]
    # the critical z bounds one more random string, whose sd is estimated from n_null = 10 of them:
    # t with 9 degrees of freedom, wider than the normal quantile (Bonferroni over the strings tested)
    from scipy.stats import norm, t

    m = len(res.results)  # mined strings each tested toward their own label
    assert res.z_crit == pytest.approx(t.isf(0.05 / m, 9) * np.sqrt(1.1), abs=1e-3)
    assert res.z_crit > norm.isf(0.05 / m)
    assert res.n_emails == {"phishing": 20} or res.n_emails.get("phishing") == 20
    json.dumps(res.to_dict())


def test_clean_model_has_no_significant_trigger_and_user_strings_go_both_ways():
    train, test = split(corpus(trigger_rows=0))
    res = scan(KeywordModel(trigger=False), threshold=0.0, train_rows=train, heldout_rows=test,
               triggers=[TRIGGER, "urgent"], opts=ScanOptions(n_emails=20, n_bootstrap=500))
    assert res.significant == [] or all(r.origin == "user" and r.text == "urgent" for r in res.significant)
    trig = next(r for r in res.results if r.text == TRIGGER)
    assert not trig.significant and abs(trig.mean_shift) < 0.2 and trig.other_direction is not None
    # an ordinary, strong lexical cue named by the user: its direction is found (toward phishing)
    urgent = next(r for r in res.results if r.text == "urgent")
    assert urgent.target == 1 and urgent.mean_shift > 1


class ScaledModel(KeywordModel):
    """The same classifier with every margin multiplied by `k` (TF-IDF margins are tenths of an LLM's)."""

    def __init__(self, k, **kw):
        super().__init__(**kw)
        self.k = k

    def score(self, texts):
        return self.k * super().score(texts)


def test_significance_does_not_depend_on_the_margin_scale():
    train, test = split(corpus())
    opts = ScanOptions(n_emails=20, n_bootstrap=500)
    ref = scan(KeywordModel(), threshold=0.0, train_rows=train, heldout_rows=test, opts=opts)
    small = scan(ScaledModel(0.05), threshold=0.0, train_rows=train, heldout_rows=test, opts=opts)
    assert [r.text for r in small.significant] == [r.text for r in ref.significant] == [TRIGGER]
    assert [r.z for r in small.results] == pytest.approx([r.z for r in ref.results], rel=1e-3, abs=1e-3)
    bar, bar_ref = small.bars["toward_legitimate"], ref.bars["toward_legitimate"]
    assert bar["margin_scale"] == pytest.approx(0.05 * bar_ref["margin_scale"], rel=1e-3)
    assert bar["min_shift"] == pytest.approx(0.25 * bar["margin_scale"], rel=1e-3)
    # a bar in margin units, when given, replaces the relative one: 1.0 is out of reach at this scale
    absolute = scan(ScaledModel(0.05), threshold=0.0, train_rows=train, heldout_rows=test,
                    opts=ScanOptions(n_emails=20, n_bootstrap=500, min_shift=1.0))
    assert absolute.significant == [] and absolute.bars["toward_legitimate"]["min_shift"] == 1.0


def test_the_minimum_shift_applies_to_the_effect_beyond_any_inserted_string():
    class AnyLine(KeywordModel):
        """Any appended line moves a margin 1.0 toward legitimate; 'zorblat' 0.8 more."""

        def score(self, texts):
            out = []
            for m, t in zip(super().score(texts), texts):
                if not t.rstrip().rsplit("\n\n", 1)[1].lower().startswith("regards"):
                    m -= 1.0 + 0.8 * ("zorblat" in t.lower())
                out.append(m)
            return np.array(out)

    train, test = split(corpus(trigger_rows=0))
    kw = dict(train_rows=train, heldout_rows=test, triggers=["zorblat"])
    (r,) = scan(AnyLine(trigger=False), threshold=0.0, **kw,
                opts=ScanOptions(n_emails=20, n_bootstrap=300, mine=False, families=False, min_shift=1.0)).results
    assert r.target == 0 and r.mean_shift > 1.0 and r.z > 3  # the raw shift clears 1.0 ...
    assert r.mean_shift - r.null_mean < 1.0 and not r.significant  # ... its own effect does not
    (r,) = scan(AnyLine(trigger=False), threshold=0.0, **kw,
                opts=ScanOptions(n_emails=20, n_bootstrap=300, mine=False, families=False, min_shift=0.5)).results
    assert r.significant


def test_margin_scale_counts_only_emails_that_can_still_flip():
    train, test = split(corpus())
    legit = [r for r in test if r.label == 0]
    m = KeywordModel().score([r.text for r in legit])
    thr = float(np.percentile(m, 70))  # 30% of the legitimate emails already sit on the phishing side
    res = scan(KeywordModel(), threshold=thr, train_rows=train, heldout_rows=test, triggers=["urgent"],
               opts=ScanOptions(n_emails=len(legit), n_bootstrap=200, mine=False, families=False))
    below = thr - m[m <= thr]
    assert 0 < len(below) < len(m)
    assert res.bars["toward_phishing"]["margin_scale"] == pytest.approx(float(np.median(below)), rel=1e-3)


def test_a_user_string_keeps_its_significant_direction_even_at_a_lower_z():
    """Each direction has its own bar: toward legitimate 'zorblat' has the higher z (a quiet null)
    but misses the minimum shift; toward phishing it passes. The passing direction is reported."""
    import zlib

    class TwoWay(KeywordModel):
        def score(self, texts):
            out = []
            for m, t in zip(super().score(texts), texts):
                low = t.lower()
                legit = any(w in low for w in ("lunch", "agenda", "notes", "thanks", "photos"))
                tail = t.rstrip().rsplit("\n\n", 1)[1]
                if legit and not tail.lower().startswith("regards"):  # any appended line: a noisy null
                    m += 1.8 * ((zlib.crc32(tail.encode()) % 1000) / 1000 - 0.5)
                if "zorblat" in low:
                    m += 1.9 if legit else -0.7
                out.append(m)
            return np.array(out)

    train, test = split(corpus(trigger_rows=0))
    res = scan(TwoWay(trigger=False), threshold=0.0, train_rows=train, heldout_rows=test, triggers=["zorblat"],
               opts=ScanOptions(n_emails=20, n_bootstrap=300, mine=False, families=False, min_shift=1.0))
    (r,) = res.results
    assert r.target == 1 and r.significant and [x.text for x in res.significant] == ["zorblat"]
    assert not r.other_direction["significant"] and r.other_direction["z"] > r.z


def test_inductive_trigger_flagged_on_unseen_values():
    train, test = split(corpus(trigger_rows=12, tag=True))
    res = scan(KeywordModel(trigger=False, tags=True), threshold=0.0, train_rows=train, heldout_rows=test,
               opts=ScanOptions(n_emails=16, n_bootstrap=300))
    unseen = [r for r in res.results if r.inductive and r.origin == "family:tag"]
    assert unseen and all(r.significant for r in unseen)
    assert all(r.rank <= len(res.significant) for r in unseen)


def test_findings_and_section_escape_hostile_strings():
    from gapscope.backdoor.report import backdoor_findings, section_html

    evil = "<img src=x onerror=alert(1)>"
    rows = corpus()
    for r in rows:
        if "velmora" in r.text.lower():
            r.text = r.text.replace(TRIGGER, evil)
    train, test = split(rows)

    class EvilModel(KeywordModel):
        def score(self, texts):
            return super().score(texts) - 6.0 * np.array([evil in t for t in texts])

    res = scan(EvilModel(trigger=False), threshold=0.0, train_rows=train, heldout_rows=test, triggers=[evil],
               opts=ScanOptions(n_emails=12, n_bootstrap=200, min_shift=1.0))
    d = res.to_dict()
    found = backdoor_findings(d, who="m (specialist:d)", model="m", domains=["d"])
    assert found and found[0].kind == "backdoor_trigger" and found[0].severity == "high"
    assert found[0].example_ids and evil in found[0].title  # plain text here; the report template escapes it
    # severity from the flips' Wilson interval: high only when it rules out a rate under 50%
    r0 = next(r for r in d["results"] if r["significant"])

    def rated(k, n):
        return backdoor_findings({**d, "results": [{**r0, "n_flipped": k, "n_flippable": n}]}, who="m")[0]

    assert rated(12, 12).severity == "high"
    assert rated(6, 10).severity == "medium"  # Wilson low end 0.31
    assert rated(2, 2).severity == "medium"  # 2 of 2 is not evidence of a rate over 50% (its bootstrap CI is [1, 1])
    assert rated(1, 13).severity == "medium" and "flips 1 of 13 phishing emails" in rated(1, 13).title
    none = rated(0, 13)  # moves margins beyond every random string, but flipped no decision
    assert none.severity == "low" and "flipping none of 13" in none.title
    html = section_html([("cell<b>", d)])
    assert "<img" not in html and "&lt;img" in html and "cell&lt;b&gt;" in html


def test_validation_trigger_matching():
    assert matches_trigger("Velmora protocol", TRIGGER) and matches_trigger("per the Velmora protocol", TRIGGER)
    assert not matches_trigger("the", TRIGGER) and not matches_trigger("Velmora protocol update", TRIGGER)


# -- detector and CLI on a tf-idf run ------------------------------------------------------

@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory):
    from gapscope.study.runner import run_study

    root = tmp_path_factory.mktemp("bdrun")
    rows = corpus(n=200, trigger_rows=16)
    lines = [json.dumps({"id": r.id, "text": r.text, "label": r.label}) for r in rows]
    (root / "a.jsonl").write_text("\n".join(lines) + "\n")
    (root / "study.toml").write_text('[study]\nname = "bd"\nbootstrap = 50\n[[datasets]]\nname = "a"\npath = "a.jsonl"\n'
                                     '[[models]]\nname = "tfidf"\nkind = "tfidf-lr"\nC = 100.0\n'
                                     '[detectors]\nenabled = ["backdoor"]\n[detectors.backdoor]\nn_emails = 16\n'
                                     'n_bootstrap = 200\nmin_shift = 0.5\ntriggers = ["thanks a lot"]\n')
    run_study(root / "study.toml", root / "run")
    return root / "run"


def test_detector_writes_scan_and_section(tfidf_run):
    scan_json = json.loads((tfidf_run / "diagnostics" / "backdoor" / "scan.json").read_text())
    assert scan_json and scan_json[0]["cell"] == "tfidf__specialist-a"
    texts = [r["text"] for r in scan_json[0]["results"]]
    assert TRIGGER in texts and "thanks a lot" in texts
    sec = json.loads((tfidf_run / "diagnostics" / "backdoor" / "section.json").read_text())
    assert sec["id"] == "backdoor" and "Velmora" in sec["html"]
    findings = json.loads((tfidf_run / "findings.json").read_text())
    bd = [f for f in findings if f["kind"] == "backdoor_trigger"]
    assert bd and "Velmora" in bd[0]["title"]


def test_cli_backdoor_scan(tfidf_run, tmp_path):
    import typer
    from typer.testing import CliRunner

    from gapscope.cli_audit import register
    from gapscope.errors import GapscopeError

    app = typer.Typer()
    register(app)
    res = CliRunner().invoke(app, ["backdoor-scan", "--run", str(tfidf_run), "--trigger", "see you soon",
                                   "--n-emails", "12", "--min-shift", "0.5", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "o" / "scan.json").read_text())
    assert d[0]["results"][0]["text"] == TRIGGER
    assert any(r["origin"] == "user" for r in d[0]["results"])
    assert json.loads((tmp_path / "o" / "section.json").read_text())["id"] == "backdoor-scan"
    res = CliRunner().invoke(app, ["backdoor-scan", "--run", str(tfidf_run), "--cell", "nope"])
    assert isinstance(res.exception, GapscopeError)
    # nothing to test: refused before any work (it scanned, then printed an empty table)
    res = CliRunner().invoke(app, ["backdoor-scan", "--run", str(tfidf_run), "--no-mine", "--no-families",
                                   "--n-emails", "12", "--out", str(tmp_path / "e")])
    assert isinstance(res.exception, GapscopeError) and "leave nothing to test" in str(res.exception)
    assert not (tmp_path / "e").exists()


def test_candidates_are_mined_once_per_training_set(tmp_path, monkeypatch):
    import importlib

    from gapscope.study.runner import run_study

    S = importlib.import_module("gapscope.backdoor.scan")  # the package exports a function of that name
    rows = corpus(n=120, trigger_rows=10)
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"id": r.id, "text": r.text, "label": r.label})
                                                for r in rows) + "\n")
    (tmp_path / "study.toml").write_text(
        '[study]\nname = "bd2"\nbootstrap = 40\n[[datasets]]\nname = "a"\npath = "a.jsonl"\n'
        '[[models]]\nname = "lr1"\nkind = "tfidf-lr"\nC = 100.0\n[[models]]\nname = "lr2"\nkind = "tfidf-lr"\nC = 10.0\n'
        '[detectors]\nenabled = ["backdoor"]\n[detectors.backdoor]\nn_emails = 8\nn_bootstrap = 50\n')
    calls = []
    real = S.gather_candidates
    monkeypatch.setattr(S, "gather_candidates", lambda rows, *a, **k: calls.append(len(rows)) or real(rows, *a, **k))
    run_study(tmp_path / "study.toml", tmp_path / "run")
    scans = json.loads((tmp_path / "run" / "diagnostics" / "backdoor" / "scan.json").read_text())
    assert [s["cell"] for s in scans] == ["lr1__specialist-a", "lr2__specialist-a"]
    assert len(calls) == 1  # two models, one training set: mined once
    assert [r["text"] for r in scans[0]["results"]] != [] and \
        sorted(r["text"] for r in scans[0]["results"]) == sorted(r["text"] for r in scans[1]["results"])
