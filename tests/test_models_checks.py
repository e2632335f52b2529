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


def test_states_computed_during_training_are_the_eval_modes(tmp_path):
    # fit() computes the states of evicted texts inside training: with the model in train mode, a
    # base whose config has dropout put noisy states in the shared cache, and later scores read them
    import json

    src = tiny_causal_lm_dir(tmp_path, "llama")
    cfg = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**cfg, "attention_dropout": 0.5}))
    texts, y = toy_emails(1500, seed=0)
    m = make(src, dtype="float32", train_layers=1, epochs=1, prefix_cache_max_mb=1)
    m.fit(texts, y, seed=0)
    cached = m.score(texts[-20:])  # the last training batches' states, put in the cache while training
    m.prefix_cache.clear()  # recomputed now, in eval mode
    np.testing.assert_allclose(cached, m.score(texts[-20:]), atol=1e-6)
    m.close()


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


def _save(out, model):
    model.save_pretrained(out)
    tiny_tokenizer().save_pretrained(out)
    return out


def _check(kind, local, **options):
    from gapscope.models.architecture import check_structure
    from gapscope.models.options import options_class, parse_options
    from gapscope.models.sources import resolve_source

    check_structure(kind, resolve_source(str(local), kind), parse_options(options_class(kind), options, "m"), "m")


def test_lora_targets_that_match_nothing_are_refused_not_dropped(tmp_path, tiny_llama_dir, tiny_bert_dir):
    import transformers as tf

    torch.manual_seed(0)
    mixtral = _save(tmp_path / "mixtral", tf.MixtralForCausalLM(tf.MixtralConfig(
        vocab_size=len(tiny_tokenizer()), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2)))
    # Mixtral's experts are no nn.Linear: lora_mlp adapted attention only, and the log listed the MLP names
    msg = (r"LoRA finds no gate_proj, up_proj, down_proj in layer 2 of this MixtralForCausalLM, which would adapt "
           r"only q_proj, k_proj, v_proj, o_proj; set lora_mlp = false, or lora_targets")
    with pytest.raises(GapscopeError, match=msg):  # before any data is read
        _check("causal-lm", mixtral, lora_mlp=True)
    m = make(mixtral, dtype="float32", lora_mlp=True)
    texts, y = toy_emails(8)
    with pytest.raises(GapscopeError, match=msg):
        m.fit(texts, y)
    assert m.base.adapter is None and not any("lora" in n for n, _ in m.hf.named_modules())
    m.close()
    _check("causal-lm", mixtral)
    with pytest.raises(GapscopeError, match=r"LoRA finds no w9 in layers 2-3 of this LlamaForCausalLM.*"
                                            r"drop them from lora_targets"):
        _check("causal-lm", tiny_llama_dir, lora_targets=["q_proj", "w9"])
    enc = make(tiny_bert_dir, "encoder", dtype="float32", lora_targets=["query", "nope"])
    with pytest.raises(GapscopeError, match="LoRA finds no nope in layer 1 of this BertModel"):
        enc.fit(texts, y)
    enc.close()
    log = make(tiny_llama_dir, dtype="float32", lora_mlp=True).fit(texts, y)
    assert log["lora_targets"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert log["lora_modules"] == 2 * 7  # the top 2 layers of 4


def test_lora_stays_off_a_multimodal_gemma3s_vision_tower(tmp_path):
    import transformers as tf

    tok = tiny_tokenizer()
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=6, num_attention_heads=4,
                num_key_value_heads=2, head_dim=8, max_position_embeddings=512, initializer_range=0.2,
                pad_token_id=0, bos_token_id=2, eos_token_id=3, sliding_window=6)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=6, num_attention_heads=2, image_size=28,
                  patch_size=14)
    torch.manual_seed(0)
    src = _save(tmp_path / "gemma3-mm", tf.Gemma3ForConditionalGeneration(tf.Gemma3Config(
        text_config=text, vision_config=vision, mm_tokens_per_image=4, image_token_index=len(tok) - 1,
        boi_token_index=len(tok) - 2, eoi_token_index=len(tok) - 3)))
    texts, y = toy_emails(8)
    for options in ({}, {"train_layers": "all"}):
        _check("causal-lm", src, **options)
        m = make(src, dtype="float32", **options)
        m.fit(texts, y)
        adapted = {n.rsplit(".lora_A", 1)[0] for n, p in m.hf.named_parameters() if "lora_A" in n}
        layers = range(m.split, m.n_layers)
        assert adapted == {f"model.language_model.layers.{i}.self_attn.{t}" for i in layers
                           for t in ("q_proj", "k_proj", "v_proj", "o_proj")}  # none in model.vision_tower
        m.close()


def _scaled_decoder(root, arch):
    """Tiny Granite (embedding_multiplier, logits_scaling) and Cohere (logit_scale) decoders."""
    import transformers as tf

    out = root / arch
    if (out / "config.json").exists():
        return out
    common = dict(vocab_size=len(tiny_tokenizer()), hidden_size=32, intermediate_size=64, num_hidden_layers=6,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, initializer_range=0.2,
                  pad_token_id=0, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(0)
    if arch == "granite":
        model = tf.GraniteForCausalLM(tf.GraniteConfig(embedding_multiplier=12.0, logits_scaling=8.0,
                                                       residual_multiplier=0.22, attention_multiplier=0.0156,
                                                       tie_word_embeddings=False, **common))
    else:
        model = tf.CohereForCausalLM(tf.CohereConfig(logit_scale=0.0625, tie_word_embeddings=True, **common))
    return _save(out, model.eval())


def _own_forward_margins(model, texts):
    """The HF model's own logits, one unpadded text at a time."""
    legit, phish = model.codec.label_ids
    out = []
    for e in model.codec.encode(texts):
        with torch.no_grad():
            logits = model.hf(input_ids=torch.tensor([list(e.ids)])).logits[0, -1].double()
        out.append(float(logits[phish] - logits[legit]))
    return np.array(out)


@pytest.mark.parametrize("arch, options", [("granite", {"prefix_cache": False}), ("cohere", {}),
                                           ("cohere", {"train_layers": "all"})])
def test_margins_carry_the_models_logit_scaling(tiny_model_root, arch, options):
    # were 8x (Granite, logits / logits_scaling) and 16x (Cohere, logits * logit_scale) the model's own
    texts, _ = toy_emails(6, seed=2)
    m = make(_scaled_decoder(tiny_model_root, arch), dtype="float32", **options)
    np.testing.assert_allclose(m.score(texts), _own_forward_margins(m, texts), atol=1e-5)
    m.close()


def test_a_decoder_scaling_its_embeddings_in_forward_is_refused_with_the_prefix_cache(tiny_model_root):
    granite = _scaled_decoder(tiny_model_root, "granite")
    msg = (r"a GraniteForCausalLM scales its embeddings inside its decoder \(embedding_multiplier = 12\), which the "
           r"prefix cache would apply twice; set prefix_cache = false")
    with pytest.raises(GapscopeError, match=msg):
        _check("causal-lm", granite)
    with pytest.raises(GapscopeError, match=msg):
        make(granite, dtype="float32")
    _check("causal-lm", granite, prefix_cache=False)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_scaling_gapscope_does_not_know_is_caught_by_the_margin_check(tiny_model_root, monkeypatch, dtype):
    import gapscope.models.architecture as arch
    import gapscope.models.lm_forward as lmf

    # as if gapscope knew neither Granite's embedding_multiplier nor Cohere's logit_scale
    monkeypatch.setattr(arch, "forward_embedding_scale", lambda decoder: None)
    with pytest.raises(GapscopeError, match=r"gapscope's margin on a check prompt is -?[\d.]+ but this "
                                            r"GraniteForCausalLM's own forward gives -?[\d.]+ .*layers 0-3 from the "
                                            r"prefix cache\): gapscope does not reproduce this architecture's output; "
                                            r"try prefix_cache = false$"):
        make(_scaled_decoder(tiny_model_root, "granite"), dtype=dtype)
    monkeypatch.setattr(lmf, "output_scale", lambda config: 1.0)
    with pytest.raises(GapscopeError, match=r"this CohereForCausalLM's own forward gives .*\(label logits .*; a full "
                                            r"forward\): gapscope does not reproduce this architecture's output$"):
        make(_scaled_decoder(tiny_model_root, "cohere"), dtype=dtype, train_layers="all")


def test_the_margin_check_passes_every_served_decoder_and_runs_once_per_base_and_path(tiny_model_root,
                                                                                    monkeypatch):
    import transformers as tf

    from gapscope.models.causal_lm import CausalLM

    runs = []
    orig = CausalLM._margin_disagreement
    monkeypatch.setattr(CausalLM, "_margin_disagreement", lambda self: runs.append(self.split) or orig(self))
    common = dict(vocab_size=len(tiny_tokenizer()), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                  num_attention_heads=4, max_position_embeddings=128, initializer_range=0.2)
    others = {"qwen3": tf.Qwen3ForCausalLM(tf.Qwen3Config(head_dim=8, num_key_value_heads=2, **common)),
              "phi3": tf.Phi3ForCausalLM(tf.Phi3Config(num_key_value_heads=2, pad_token_id=0, **common)),
              "gpt_neox": tf.GPTNeoXForCausalLM(tf.GPTNeoXConfig(**common))}
    sources = [tiny_causal_lm_dir(tiny_model_root, a) for a in ("llama", "mistral", "gemma2", "gemma3")]
    sources += [_save(tiny_model_root / f"check-{a}", m) for a, m in others.items()]
    for src in sources:
        for dtype in ("float32", "bfloat16"):
            for options in ({}, {"train_layers": "all"}, {"prefix_cache": False}):
                make(src, dtype=dtype, **options).close()
    # per source and dtype: split 1 or 2 with the cache, split 0 (no cache) for the other two
    assert len(runs) == len(sources) * 2 * 2
    runs.clear()
    a = make(sources[0], dtype="float32")
    b = make(sources[0], dtype="float32")  # a private copy of the lent base: same verdict
    assert runs == [2]
    a.close(), b.close()
