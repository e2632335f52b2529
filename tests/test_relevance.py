"""Conservative relevance (models/linearized.py, attribution/relevance.py) and occlusion refined by it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gapscope.attribution.base import get_method
from gapscope.attribution.relevance import word_weights
from gapscope.attribution.words import split_words
from gapscope.errors import GapscopeError
from gapscope.models import ModelSpec, create_model
from gapscope.models.linearized import TokenRelevance
from tests.attribution_helpers import BagModel, make_tfidf, toy_corpus
from tests.tiny_models import (  # noqa: F401  (fixtures)
    ARCHS, fresh_model_caches, tiny_causal_lm_dir, tiny_encoder_dir, tiny_model_root, toy_emails,
)


@pytest.fixture(autouse=True)
def _fresh_caches(fresh_model_caches):
    yield


@pytest.mark.parametrize("arch", ARCHS)
def test_causal_lm_relevance_adds_up_to_the_margin_and_leaves_the_forward_unchanged(tiny_model_root, arch):
    model = create_model(ModelSpec("tiny", "causal-lm", str(tiny_causal_lm_dir(tiny_model_root, arch)),
                                   {"dtype": "float32", "epochs": 1, "train_layers": 2}))
    texts, labels = toy_emails(16, seed=1)
    model.fit(texts, labels, seed=0)  # LoRA on the top layers: the relevance goes through the adapter
    rels = model.token_relevance(texts[:6])
    scores = model.score(texts[:6])
    for text, tr, s in zip(texts, rels, scores):
        assert tr.margin == pytest.approx(s, abs=1e-4)  # the rules change the backward pass only
        # every rule in place: attention, norms, activation, gating (a missing one breaks the sum)
        assert tr.relevance.sum() + tr.rest == pytest.approx(tr.margin, abs=1e-3 * max(1.0, abs(tr.margin)))
        assert len(tr.spans) == len(model.tokenize(text))
        assert all(0 <= a < b <= len(text) for a, b in tr.spans)
    # the module switch is undone: attention is back to what it was, no hooks left behind
    assert all(not m._forward_hooks for m in model.hf.modules())
    assert model.hf.config._attn_implementation != "gapscope_conservative"


def test_encoder_relevance_is_conservative_without_biases(tiny_model_root):
    model = create_model(ModelSpec("tiny", "encoder", str(tiny_encoder_dir(tiny_model_root)), {"dtype": "float32"}))
    with torch.no_grad():  # biases inside the encoder absorb relevance; without them the sum is exact
        for name, p in model.encoder.named_parameters():
            if name.endswith("bias"):
                p.zero_()
        model.head.bias.copy_(torch.tensor([0.3, -0.4]))  # the head's bias is counted in `rest`
    texts, _ = toy_emails(5, seed=2)
    rels = model.token_relevance(texts)
    for tr, s in zip(rels, model.score(texts)):
        assert tr.margin == pytest.approx(s, abs=1e-4)
        assert tr.relevance.sum() + tr.rest == pytest.approx(tr.margin, abs=1e-3 * max(1.0, abs(tr.margin)))


def test_word_weights_sum_tokens_into_their_words():
    text = "Verify your account-now  at https://x.io/a !"
    words = split_words(text)
    # tokens: "Verify", " your", " account", "-", "now", "  at" (leading spaces), " https://x.io", "/a", " !"
    spans = [(0, 6), (6, 11), (11, 19), (19, 20), (20, 23), (23, 27), (27, 40), (40, 42), (42, 44)]
    rel = np.arange(1.0, 10.0)
    w = word_weights(words, spans, rel)
    got = dict(zip(words.cores, w))
    assert got["Verify"] == 1 and got["your"] == 2 and got["account"] == 3 and got["-"] == 4
    assert got["now"] == 5 and got["at"] == 6 and got["https://x.io/a"] == 7 + 8 and got["!"] == 9
    assert w.sum() == pytest.approx(rel.sum())


class RelevantBag(BagModel):
    """An additive model that also reports token relevance: each word's own weight, read per word."""

    kind = "bag"

    def token_relevance(self, texts):
        out = []
        for t in texts:
            words = split_words(t)
            spans = list(zip(words.starts, words.ends))
            rel = np.array([self.weights.get(c.lower(), 0.0) for c in words.cores])
            out.append(TokenRelevance(spans=spans, relevance=rel, margin=float(self.score([t])[0]), rest=self.bias))
        return out


TEXT = "Dear John, your account is suspended. Please verify now or lose access. Thanks, the team"


def test_refined_occlusion_keeps_each_span_total_and_orders_words_inside_it():
    model = RelevantBag({"account": 1.0, "suspended": 2.0, "verify": 1.5, "thanks": -1.0}, bias=0.3)
    spans = get_method("occlusion", max_evals=4).attribute(model, TEXT)
    refined = get_method("occlusion", max_evals=4, refine="relevance").attribute(model, TEXT)
    assert refined.params["refine"] == "relevance" and refined.evals == spans.evals + 1
    # spans are runs of equal weight in the unrefined attribution; their totals are unchanged
    w, start = spans.weights, 0
    n_spans = 0
    while start < len(w):
        end = start + 1
        while end < len(w) and w[end] == w[start]:
            end += 1
        assert refined.weights[start:end].sum() == pytest.approx(w[start:end].sum())
        start, n_spans = end, n_spans + 1
    assert n_spans > 1
    # on an additive model the refined weights are the exact per-word weights
    got = {t.strip(" ,.").lower(): x for t, x in zip(refined.tokens, refined.weights)}
    assert got["suspended"] == pytest.approx(2.0) and got["thanks"] == pytest.approx(-1.0)
    assert got["dear"] == pytest.approx(0.0)
    # a batch prepared up front gives the same numbers as one email at a time
    many = get_method("occlusion", max_evals=4, refine="relevance").attribute_many(model, [TEXT, TEXT + " now"])
    np.testing.assert_allclose(many[0].weights, refined.weights)


def test_relevance_needs_gradients_and_refine_falls_back_without_them():
    texts, labels = toy_corpus(60)
    tfidf = make_tfidf(texts, labels)
    with pytest.raises(GapscopeError, match="relevance"):
        get_method("relevance").attribute(tfidf, "verify your account")
    plain = BagModel({"account": 1.0})
    a = get_method("occlusion", max_evals=3, refine="relevance").attribute(plain, TEXT)
    b = get_method("occlusion", max_evals=3).attribute(plain, TEXT)
    np.testing.assert_allclose(a.weights, b.weights)
    with pytest.raises(ValueError):
        get_method("occlusion", refine="gradient")


def test_bench_study_refuses_a_directory_holding_a_run(tmp_path):
    from gapscope.bench.study import run

    (tmp_path / "run").mkdir()
    with pytest.raises(GapscopeError, match="not empty"):
        run(quick=True, out=tmp_path)


def test_a_truncating_model_is_explained_on_the_words_it_reads(tiny_model_root):
    # deleting a seen word of the full email pulled unseen words into the window (a removal that
    # also inserted words): the seen words' leave-one-out weights moved by up to 3.3 logits, the
    # deletion curve went up and down, and two-sided occlusion weighed words the model never reads
    from gapscope.attribution import faithfulness as F

    model = create_model(ModelSpec("tiny", "causal-lm", str(tiny_causal_lm_dir(tiny_model_root, "llama")),
                                   {"dtype": "float32", "max_length": 12}))
    text = ("meeting lunch tomorrow report agenda team notes project schedule thanks review draft "
            "urgent verify password prize winner bank login confirm wire invoice gift click link")
    words = split_words(text)
    seen = text[:words.ends[11]]
    assert model.score([seen])[0] == pytest.approx(model.score([text])[0], abs=1e-5)  # 12 words in view
    for opts in ({}, {"max_evals": 5, "two_sided": True, "refine": "relevance"}):
        method = get_method("occlusion", **opts)
        full, prefix = method.attribute(model, text), method.attribute(model, seen)
        assert full.in_view == 12 and prefix.in_view is None and full.text == text
        np.testing.assert_allclose(full.weights[:12], prefix.weights, atol=1e-6)
        assert not full.weights[12:].any()
        f, p = F.evaluate(model, full), F.evaluate(model, prefix)
        assert f.n_words == 12 and f.deletion_curve == p.deletion_curve and f.insertion_auc == p.insertion_auc
    shap = get_method("shap", max_evals=60)
    a = shap.attribute(model, text)
    assert a.in_view == 12 and not a.weights[12:].any()
    # relevance too, so the bench scores every method over the same words
    r = get_method("relevance").attribute(model, text)
    assert r.in_view == 12 and F.evaluate(model, r).n_words == 12
    assert a.margin == pytest.approx(model.score([text])[0], abs=1e-4)
    model.close()
