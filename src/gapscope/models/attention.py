"""Which attention function a Hugging Face model runs, switched per block of code.

transformers 5 looks the attention function up from `config._attn_implementation` at every
forward, so setting the attribute on every config the modules hold switches the same weights
to another implementation and back with no copy (measured on Llama, Mistral, Gemma 2/3, BERT).
gapscope registers two functions of its own in transformers' attention registry:

  gapscope_conservative  probabilities detached, for conservative relevance (models/linearized);
  gapscope_inference     a no-grad CPU kernel for bf16 scoring (below).

Why an inference kernel: on this project's 2-core AVX-512-bf16 CPU, PyTorch's CPU flash
attention took 20% of a bf16 scoring pass on SmolLM2 (prompts of ~130 tokens, batches of 16):
5.2 ms per layer call against 2.1 ms for two batched matmuls with the softmax in bf16, with
the grouped key/value heads broadcast instead of copied (`gapscope bench score` shows the
effect). CPU softmax accumulates in float32 internally even for bf16 tensors; the output
error against a float32 reference is 0.014 vs flash's 0.010 (same order as the bf16 matmuls).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator

import torch
from torch import nn

from gapscope.models.device import autocast

INFERENCE = "gapscope_inference"


_CONFIGS: "weakref.WeakKeyDictionary[nn.Module, list]" = weakref.WeakKeyDictionary()


def attention_configs(model: nn.Module) -> list:
    """Every config (and text/decoder sub-config) held by the model's modules: transformers 5 reads
    `_attn_implementation` from them at each forward, so setting it there switches attention.

    Remembered per model (a model keeps its config objects; adapters add modules, not configs):
    walking a LoRA-wrapped model's modules took 5 ms, paid by every forward call, a tenth of a
    small call's time on the CPU."""
    if model in _CONFIGS:
        return _CONFIGS[model]
    seen, out = set(), []
    for m in model.modules():
        cfg = getattr(m, "config", None)
        if cfg is None or not hasattr(cfg, "_attn_implementation"):
            continue
        for c in (cfg, getattr(cfg, "text_config", None), getattr(cfg, "decoder", None)):
            if c is not None and hasattr(c, "_attn_implementation") and id(c) not in seen:
                seen.add(id(c))
                out.append(c)
    _CONFIGS[model] = out
    return out


@contextlib.contextmanager
def attention_implementation(model: nn.Module, name: str, replacing: str | None = None) -> Iterator[None]:
    """Run `model` with the attention function registered as `name` inside the block. With
    `replacing`, switch only when every config currently runs that implementation (so one chosen
    on purpose around this block stays)."""
    cfgs = attention_configs(model)
    saved = [c._attn_implementation for c in cfgs]
    if replacing is not None and any(v != replacing for v in saved):
        yield
        return
    try:
        for c in cfgs:
            c._attn_implementation = name
        yield
    finally:
        for c, v in zip(cfgs, saved):
            c._attn_implementation = v


def register(name: str, fn: Callable) -> None:
    """Put `fn` in transformers' attention registry under `name`, with the eager (additive) mask."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if name not in ALL_ATTENTION_FUNCTIONS:
        ALL_ATTENTION_FUNCTIONS.register(name, fn)
        ALL_MASK_ATTENTION_FUNCTIONS.register(name, eager_mask)


def inference_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                        softcap=None, **_kwargs):
    """Attention for no-grad forwards in the compute dtype (transformers' attention-function
    signature: (b, heads, q, d) inputs, (b, q, heads, d) output, no probabilities returned).

    Query heads are grouped onto their shared key/value head by a view, so grouped-query models
    never copy keys and values; the additive mask is cast to the compute dtype once per call."""
    b, h, q, d = query.shape
    kv = key.shape[1]
    g = h // kv
    if scaling is None:
        scaling = d ** -0.5
    qg = query.reshape(b, kv, g * q, d)
    scores = torch.matmul(qg, key.transpose(2, 3)).view(b, kv, g, q, key.shape[2])
    scores = scores * scaling
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        mask = attention_mask[..., : key.shape[2]]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask.unsqueeze(1), torch.finfo(scores.dtype).min)
        else:
            # float32's mask minimum overflows bf16 to -inf: a fully masked (left-pad) row would
            # turn to NaN and 0 * NaN would leak it into real rows through the values
            mask = mask.to(scores.dtype).clamp(min=torch.finfo(scores.dtype).min)
            scores = scores + mask.unsqueeze(1)
    probs = torch.softmax(scores, dim=-1).view(b, kv, g * q, key.shape[2])
    out = torch.matmul(probs, value).view(b, h, q, d)
    return out.transpose(1, 2).contiguous(), None


def pays_off(device: torch.device, compute: torch.dtype) -> bool:
    """Where `inference_attention` beats the fused kernels: CPU in bf16 (see the module note).
    float32 compute and CUDA keep transformers' default attention."""
    return device.type == "cpu" and compute == torch.bfloat16


def inference_context(model: nn.Module, device: torch.device, compute: torch.dtype) -> contextlib.ExitStack:
    """What a no-grad forward of a causal LM runs under: autocast to `compute` and, where it pays
    off, the inference attention kernel. Every no-grad path of a model uses the same context, so
    their margins agree to float noise."""
    stack = contextlib.ExitStack()
    stack.enter_context(autocast(device, compute))
    if pays_off(device, compute):
        register(INFERENCE, inference_attention)
        # only transformers' sdpa is replaced: an implementation chosen on purpose around this
        # call (eager for the attention probabilities, the conservative one for relevance) stays
        stack.enter_context(attention_implementation(model, INFERENCE, replacing="sdpa"))
    return stack
