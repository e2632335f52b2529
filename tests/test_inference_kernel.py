"""The causal LM's CPU inference path: gapscope's attention kernel and the frozen linear weights
stored in bf16 (tiny random models, fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gapscope.models.attention import INFERENCE, attention_implementation, inference_attention, register
from gapscope.models.loading import cast_linears, frozen_linears
from gapscope.models.prefix_reuse import score_with_prefix_reuse
from tests.test_models_causal_lm import make, reference_margins
from tests.tiny_models import (  # noqa: F401  (fixtures)
    ARCHS, fresh_model_caches, tiny_causal_lm_dir, tiny_llama_dir, tiny_model_root, toy_emails,
)


@pytest.fixture(autouse=True)
def _fresh_caches(fresh_model_caches):
    yield


def _reuse(m, texts):
    """Margins of `texts` from the KV cache of texts[0] (queries shorter than keys); None where a
    sliding window shorter than the texts rules the cache out."""
    return score_with_prefix_reuse(m, [texts[0]] + list(texts))


def _all_paths(m, texts):
    """Right-padded scoring, HF's own left-padded forward, and the KV-cache reuse path."""
    reuse = _reuse(m, texts)
    return np.concatenate([m.score(texts), reference_margins(m, texts)] + ([] if reuse is None else [reuse]))


@pytest.mark.parametrize("arch", ARCHS)
def test_inference_kernel_equals_sdpa_in_float32(tiny_model_root, arch):
    """Grouped-query heads, sliding windows shorter than the texts, Gemma 2's attention soft-cap,
    left padding (fully masked pad rows) and cached keys: the kernel's margins are sdpa's."""
    src = tiny_causal_lm_dir(tiny_model_root, arch)
    texts, _ = toy_emails(9, seed=4)
    m = make(src, dtype="float32", prefix_cache=False)
    assert m.hf.config.num_key_value_heads < m.hf.config.num_attention_heads
    sdpa = _all_paths(m, texts)
    register(INFERENCE, inference_attention)
    with attention_implementation(m.hf, INFERENCE):
        ours = _all_paths(m, texts)
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, sdpa, atol=2e-5)
    assert np.abs(sdpa).max() > 1e-2  # not trivially zero
    m.close()


def test_bf16_cpu_path_uses_the_kernel_and_every_no_grad_path_agrees(tiny_model_root):
    src = tiny_causal_lm_dir(tiny_model_root, "llama")  # no sliding window: the KV path applies
    texts, _ = toy_emails(9, seed=5)
    m = make(src, dtype="bfloat16", train_layers=2)
    seen = []

    def spy(*args, **kwargs):
        seen.append(1)
        return inference_attention(*args, **kwargs)

    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    register(INFERENCE, inference_attention)
    ALL_ATTENTION_FUNCTIONS[INFERENCE] = spy
    try:
        cached = m.score(texts)
        reuse = _reuse(m, texts)
    finally:
        ALL_ATTENTION_FUNCTIONS[INFERENCE] = inference_attention
    assert seen
    assert m.hf.config._attn_implementation == "sdpa"  # switched back after the call
    # cached lower layers + top layers, and the full forward with a KV cache: same kernel, same margins
    np.testing.assert_allclose(cached, reuse, atol=1e-4)
    # left padding gives pad rows with every key masked: finite, and the real rows unaffected
    with m.inference_context():
        left = reference_margins(m, texts)
    assert np.isfinite(left).all()
    np.testing.assert_allclose(left, cached, atol=2 ** -6 * np.abs(cached).max())  # two bf16 ulps
    m.close()


def test_frozen_linears_are_bf16_with_identical_margins_and_float32_lora(tiny_llama_dir):
    texts, y = toy_emails(24)
    m = make(tiny_llama_dir, dtype="bfloat16", epochs=1, lr=5e-3)
    head = m.hf.get_output_embeddings()
    linears = frozen_linears(m.hf, skip=head)
    assert linears and all(lin.weight.dtype == torch.bfloat16 for lin in linears)
    assert head.weight.dtype == torch.float32 and m.hf.get_input_embeddings().weight.dtype == torch.float32

    torch.manual_seed(0)
    m._attach_adapter()  # what fit() starts with
    # the adapter was created on float32 weights: its random A matrices are not bf16-rounded
    # (peft creates an adapter in its base layer's dtype; all of them would be)
    a = torch.cat([p.detach().flatten() for n, p in m.hf.named_parameters() if "lora_A" in n])
    assert (a == a.to(torch.bfloat16).float()).float().mean() < 0.5
    m.fit(texts, y, seed=0)
    lora = [p for n, p in m.hf.named_parameters() if "lora_" in n]
    assert lora and all(p.dtype == torch.float32 and p.requires_grad for p in lora)
    base_linears = [lin for lin in frozen_linears(m.hf, skip=head) if lin.weight.dtype == torch.bfloat16]
    assert len(base_linears) == len(linears)  # the attach left the base weights in bf16

    stored = m.score(texts)
    cast_linears(base_linears, torch.float32)  # what autocast used to cast at every call
    recast = m.score(texts)
    np.testing.assert_array_equal(stored, recast)  # the stored value is the same rounding
    m.close()
