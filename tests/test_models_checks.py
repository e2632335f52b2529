"""Review fixes of the model layer: margins that match the model's own forward (Granite, Cohere),
bounded fit() memory, float32 masters for full fine-tuning, LoRA targets that match nothing,
LoRA kept off a multimodal model's vision tower, empty inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gapscope.errors import GapscopeError
from gapscope.models import ModelSpec, create_model
from tests.tiny_models import (  # noqa: F401  (fixtures)
    fresh_model_caches, tiny_bert_dir, tiny_causal_lm_dir, tiny_llama_dir, tiny_model_root, tiny_tokenizer,
    toy_emails,
)


@pytest.fixture(autouse=True)
def _fresh_caches(fresh_model_caches):
    yield


def make(source, kind="causal-lm", **options):
    return create_model(ModelSpec("tiny", kind, None if source is None else str(source), options))


def test_scoring_no_texts_gives_an_empty_array(tiny_llama_dir, tiny_bert_dir):
    texts, y = toy_emails(12)
    tfidf = make(None, "tfidf-lr")
    tfidf.fit(texts, y)
    for m in (make(tiny_llama_dir, dtype="float32"), make(tiny_bert_dir, "encoder", dtype="float32"), tfidf):
        s = m.score([])
        assert s.shape == (0,) and s.dtype == np.float64
        m.close()


def test_fit_holds_prefix_states_within_the_cache_budget(tiny_llama_dir, monkeypatch):
    from gapscope.models.causal_lm import CausalLM

    texts, y = toy_emails(100, seed=1)
    texts = [(t + " ") * 12 for t in texts]  # ~150 tokens of 32 float32: ~19 KB of states per text
    held: list[int] = []
    orig = CausalLM._prefix_states

    def spy(self, encs):
        out = orig(self, encs)
        held.append(sum(s.numel() * s.element_size() for s in out))
        return out

    monkeypatch.setattr(CausalLM, "_prefix_states", spy)
    runs = {}
    for mb in (64, 1):
        from gapscope.models.loading import clear_base_cache
        from gapscope.models.prefix_cache import clear_shared_prefix_caches

        clear_base_cache()
        clear_shared_prefix_caches()
        held.clear()
        m = make(tiny_llama_dir, dtype="float32", epochs=1, batch_size=8, prefix_cache_max_mb=mb)
        assert sum(len(e.ids) for e in m.codec.encode(texts)) * 32 * 4 > 1 << 20  # the texts overflow 1 MiB
        log = m.fit(texts, y)
        # the states of one batch at a time, never the corpus's (which once were all held: 1.6 MB)
        assert max(held) <= 8 * 160 * 32 * 4 and m.prefix_cache.nbytes <= mb << 20
        runs[mb] = log["losses"], m.score(texts[:8])
        m.close()
    # states recomputed on a miss are the ones the cache would have given
    assert runs[1][0] == runs[64][0]
    np.testing.assert_allclose(runs[1][1], runs[64][1], atol=1e-6)


def test_full_finetune_keeps_float32_master_weights_where_the_base_is_bf16(tiny_bert_dir, monkeypatch):
    import gapscope.models.encoder as enc

    monkeypatch.setattr(enc, "weights_dtype", lambda device, compute: torch.bfloat16)  # what CUDA picks
    texts, y = toy_emails(32, seed=1)
    m = make(tiny_bert_dir, "encoder", dtype="bfloat16", finetune="full", epochs=1)
    before = {n: p.detach().clone() for n, p in m.encoder.named_parameters()}
    m.fit(texts, y)
    assert {p.dtype for p in m.encoder.parameters()} == {torch.float32}
    # lr 1e-4 moves every matrix weight (on bf16 weights, most of those with |w| >= 0.03 never moved)
    for n, p in m.encoder.named_parameters():
        if "layer." in n and n.endswith("dense.weight"):
            assert (p.detach() != before[n]).all(), n
    m.close()
