"""causal-lm kind on tiny random Llama / Mistral / Gemma2 / Gemma3 models (fast, offline)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gapscope.errors import GapscopeError
from gapscope.models import ModelSpec, create_model
from gapscope.models.loading import clear_base_cache
from gapscope.models.prefix_cache import clear_shared_prefix_caches
from tests.tiny_models import (  # noqa: F401  (fixtures)
    ARCHS, fresh_model_caches, tiny_causal_lm_dir, tiny_llama_dir, tiny_model_root, toy_emails,
)

FP32 = {"dtype": "float32"}


@pytest.fixture(autouse=True)
def _fresh_caches(fresh_model_caches):
    yield


def make(source, **options):
    return create_model(ModelSpec("tiny", "causal-lm", str(source), options))


def reference_margins(model, texts):
    """Plain HF forward, full-vocabulary logits, LEFT-padded batch with explicit positions."""
    encs = model.codec.encode(texts)
    width = max(len(e.ids) for e in encs)
    ids = torch.tensor([[model.pad_id] * (width - len(e.ids)) + list(e.ids) for e in encs])
    mask = torch.tensor([[0] * (width - len(e.ids)) + [1] * len(e.ids) for e in encs])
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model.hf(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1].double()
    legit, phish = model.codec.label_ids
    return (logits[:, phish] - logits[:, legit]).numpy()


def test_score_shape_dtype_and_labels(tiny_llama_dir):
    texts, _ = toy_emails(7)
    m = make(tiny_llama_dir, **FP32)
    s = m.score(texts)
    assert s.shape == (7,) and s.dtype == np.float64 and np.isfinite(s).all()
    assert m.codec.single_token_labels
    assert np.std(s) > 1e-3  # a random model still gives varied margins
    m.close()


@pytest.mark.parametrize("arch", ARCHS)
def test_cached_prefix_equals_full_forward(tiny_model_root, arch):
    """Top-layer slice fed with cached lower-layer states == plain full forward (incl. Gemma's
    per-layer sliding/full attention with a window shorter than the texts, Gemma2 soft-capping),
    and both equal HF's own full-vocabulary logits with left padding."""
    src = tiny_causal_lm_dir(tiny_model_root, arch)
    texts, _ = toy_emails(9, seed=1)
    cached = make(src, train_layers=2, **FP32)
    assert cached.prefix_cache is not None and cached.split == 2
    s_cached = cached.score(texts)
    full = make(src, prefix_cache=False, **FP32)
    s_full = full.score(texts)
    np.testing.assert_allclose(s_cached, s_full, atol=1e-5)
    np.testing.assert_allclose(s_full, reference_margins(full, texts), atol=1e-4)
    assert max(len(e.ids) for e in full.codec.encode(texts)) > 6  # longer than the sliding window
    cached.close()
    full.close()


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_cached_prefix_equals_full_forward_bf16(tiny_model_root, arch):
    # The cache keeps the residual stream's own dtype, so even under bf16 autocast it is lossless.
    src = tiny_causal_lm_dir(tiny_model_root, arch)
    texts, _ = toy_emails(9, seed=2)
    a = make(src, train_layers=2, dtype="bfloat16").score(texts)
    b = make(src, prefix_cache=False, dtype="bfloat16").score(texts)
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_batch_size_invariance(tiny_model_root, dtype):
    src = tiny_causal_lm_dir(tiny_model_root, "gemma3")
    texts, _ = toy_emails(11, seed=3)
    scores = [make(src, dtype=dtype, eval_batch_size=bs).score(texts) for bs in (1, 3, 16)]
    for s in scores[1:]:
        np.testing.assert_allclose(s, scores[0], atol=1e-3)
    # scoring one text alone gives the same margin as inside a batch
    alone = make(src, dtype=dtype).score(texts[4:5])[0]
    assert alone == pytest.approx(scores[2][4], abs=1e-3)


def test_fit_separates_toy_set_and_logs(tiny_llama_dir):
    texts, y = toy_emails(40)
    m = make(tiny_llama_dir, epochs=6, lr=5e-3, **FP32)
    log = m.fit(texts, y, seed=0)
    assert log["steps"] == 6 * 5 and len(log["losses"]) == log["steps"]
    assert np.mean(log["losses"][-5:]) < np.mean(log["losses"][:5])
    assert log["tokens"] > 0 and log["tokens_per_s"] > 0 and log["prefix_cache"] is True
    assert log["train_layers"] == 2 and log["trainable_params"] > 0
    json.dumps(log)  # JSON-able
    s = m.score(texts)
    assert ((s > 0) == y).mean() >= 0.9
    m.close()


def test_same_seed_same_scores(tiny_llama_dir):
    texts, y = toy_emails(16)
    opts = dict(epochs=2, lr=5e-3, **FP32)
    runs = []
    for seed in (0, 0, 1):
        m = make(tiny_llama_dir, **opts)
        m.fit(texts, y, seed=seed)
        runs.append(m.score(texts))
        m.close()
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.abs(runs[0] - runs[2]).max() > 1e-6


def test_save_load_roundtrip_and_base_unchanged(tiny_llama_dir, tmp_path):
    texts, y = toy_emails(16)
    probe, _ = toy_emails(6, seed=9)
    base_model = make(tiny_llama_dir, **FP32)
    s_base = base_model.score(probe)
    base_model.close()

    m = make(tiny_llama_dir, epochs=2, lr=5e-3, **FP32)
    m.fit(texts, y, seed=0)
    s_fit = m.score(probe)
    m.save(tmp_path / "cell")
    m.close()  # unloads the adapter from the shared base
    assert sorted(p.name for p in (tmp_path / "cell").iterdir()) == ["adapter.safetensors", "causal_lm.json"]

    again = make(tiny_llama_dir, **FP32)
    assert not any("lora" in n for n, _ in again.hf.named_modules())
    np.testing.assert_array_equal(again.score(probe), s_base)  # base untouched by the fit
    again.load(tmp_path / "cell")
    np.testing.assert_array_equal(again.score(probe), s_fit)
    again.close()


def test_load_takes_structure_from_the_save(tiny_llama_dir, tmp_path):
    texts, y = toy_emails(12)
    m = make(tiny_llama_dir, train_layers="all", lora_r=4, lora_mlp=True, max_length=8, **FP32)
    assert m.prefix_cache is None  # nothing frozen below the adapter: no cache
    m.fit(texts, y, seed=0)
    s = m.score(texts)
    m.save(tmp_path / "a")
    m.close()
    other = make(tiny_llama_dir, **FP32)  # default options in the spec
    other.load(tmp_path / "a")
    assert other.opts.max_length == 8 and other.train_layers == 4
    np.testing.assert_array_equal(other.score(texts), s)


def test_two_live_cells_do_not_share_adapters(tiny_llama_dir):
    texts, y = toy_emails(12)
    a = make(tiny_llama_dir, lr=5e-3, **FP32)
    b = make(tiny_llama_dir, lr=5e-3, **FP32)  # base already lent to `a`: gets a private copy
    assert a.hf is not b.hf
    before = b.score(texts)
    a.fit(texts, y, seed=0)
    np.testing.assert_array_equal(b.score(texts), before)
    a.close()
    b.close()


def test_a_copy_of_a_lent_base_carries_no_adapter(tiny_llama_dir):
    """A base lent to a cell that has its adapter in place: the next borrower gets a private copy,
    and that copy must be the bare base (a deep copy of the lent modules would carry the first
    cell's LoRA layers into the second cell, trainable and scoring)."""
    texts, y = toy_emails(12)
    bare = make(tiny_llama_dir, **FP32)
    s_base = bare.score(texts)
    bare.close()
    a = make(tiny_llama_dir, lr=5e-3, **FP32)
    a.fit(texts, y, seed=0)  # a's LoRA layers now sit in the lent base
    b = make(tiny_llama_dir, **FP32)
    assert a.hf is not b.hf
    assert not any("lora" in n for n, _ in b.hf.named_modules())
    np.testing.assert_array_equal(b.score(texts), s_base)
    b.fit(texts, y, seed=0)
    n_trainable = sum(p.numel() for p in b.hf.parameters() if p.requires_grad)
    a.close()
    b.close()
    c = make(tiny_llama_dir, **FP32)  # the shared base again, alone
    c.fit(texts, y, seed=0)
    assert sum(p.numel() for p in c.hf.parameters() if p.requires_grad) == n_trainable
    c.close()


def test_prefix_cache_shared_between_cells(tiny_llama_dir, tmp_path):
    texts, _ = toy_emails(8)
    a = make(tiny_llama_dir, **FP32)
    s = a.score(texts)
    a.close()
    b = make(tiny_llama_dir, **FP32)
    assert b.prefix_cache is a.prefix_cache and len(b.prefix_cache) == 8
    hits = b.prefix_cache.hits
    np.testing.assert_array_equal(b.score(texts), s)
    assert b.prefix_cache.hits == hits + 8
    b.prefix_cache.save(tmp_path / "prefix.safetensors")
    clear_shared_prefix_caches()
    c = make(tiny_llama_dir, **FP32)
    c.prefix_cache.load(tmp_path / "prefix.safetensors")
    np.testing.assert_array_equal(c.score(texts), s)
    assert c.prefix_cache.misses == 0


def test_truncation_cuts_the_email_not_the_prompt(tiny_llama_dir):
    m = make(tiny_llama_dir, max_length=5, **FP32)
    long_text = " ".join(["urgent verify password"] * 20)
    (enc,) = m.codec.encode([long_text])
    assert enc.email_end - enc.email_start == 5
    assert list(enc.ids[-len(m.codec.suffix):]) == m.codec.suffix
    assert list(enc.ids[: len(m.codec.prefix)]) == m.codec.prefix
    assert m.tokenize(long_text) == ["urgent", "verify", "password", "urgent", "verify"]


def test_hidden_states_shapes(tiny_llama_dir):
    texts, _ = toy_emails(5)
    m = make(tiny_llama_dir, **FP32)
    hs = m.hidden_states(texts + [""])
    assert set(hs) == {"answer", "mean"}
    for v in hs.values():
        assert v.shape == (6, 4 + 1, 32) and v.dtype == np.float16 and np.isfinite(v).all()
    assert not np.allclose(hs["answer"], hs["mean"])


def test_unknown_option_is_a_one_line_error(tiny_llama_dir):
    with pytest.raises(GapscopeError, match="did you mean 'lora_r'"):
        make(tiny_llama_dir, lora_rr=4)
    with pytest.raises(GapscopeError, match="dtype"):
        make(tiny_llama_dir, dtype="float16")
    with pytest.raises(GapscopeError, match="train_layers"):
        make(tiny_llama_dir, train_layers=0)


# -- one model over several GPUs (device_map through accelerate) ----------------------------


def test_device_map_is_refused_without_cuda_in_one_line(tiny_llama_dir):
    from gapscope.models.loading import load_kwargs

    with pytest.raises(GapscopeError, match="device_map splits a model over CUDA GPUs"):
        make(tiny_llama_dir, device_map="auto", **FP32)
    with pytest.raises(GapscopeError, match="device_map must be one of"):
        load_kwargs(torch.device("cuda"), torch.bfloat16, False, "everywhere", cuda_devices=2)
    kw = load_kwargs(torch.device("cuda"), torch.bfloat16, False, "balanced", cuda_devices=2)
    assert kw["device_map"] == "balanced" and kw["dtype"] is torch.bfloat16


def test_layers_behind_accelerate_dispatch_hooks_score_and_train_unchanged(tiny_llama_dir):
    """What device_map does on several GPUs, on one CPU: accelerate's dispatch puts a hook on
    every layer that moves its inputs to the layer's device. The split forward (prefix cache,
    layer slices, label rows of the head) must run through those hooks unchanged."""
    from accelerate import dispatch_model

    texts, labels = toy_emails(12, seed=3)
    plain = make(tiny_llama_dir, train_layers=2, **FP32)
    plain.fit(texts, labels, seed=0)
    want = plain.score(texts)
    plain.close()
    clear_base_cache()
    clear_shared_prefix_caches()

    hooked = make(tiny_llama_dir, train_layers=2, **FP32)
    names = ["model.embed_tokens", "model.rotary_emb", "model.norm", "lm_head"]
    names += [f"model.layers.{i}" for i in range(hooked.n_layers)]
    dispatch_model(hooked.hf, device_map={n: "cpu" for n in names}, force_hooks=True)
    assert hasattr(hooked.hf.model.layers[0], "_hf_hook")
    hooked.fit(texts, labels, seed=0)
    got = hooked.score(texts)
    hooked.close()
    np.testing.assert_allclose(got, want, atol=1e-5)
