"""Forward passes of a Hugging Face decoder-only LM, split at a layer.

Generic over Llama / Mistral / Qwen / Gemma 2-3: we never re-implement a layer.
To run only layers [a, b) we temporarily replace `decoder.layers` by that slice
(and slice `config.layer_types`, which Gemma/Qwen index by loop position to pick
sliding vs full attention masks and rotary tables) and call the decoder's own
forward, which rebuilds positions, rotary embeddings and masks from the inputs.
The answer logits are computed from the two label rows of the unembedding only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn


@contextlib.contextmanager
def layer_slice(decoder: nn.Module, start: int, stop: int) -> Iterator[None]:
    layers = decoder.layers
    config = decoder.config
    types = getattr(config, "layer_types", None)
    sliced = isinstance(types, list) and len(types) >= len(layers)
    decoder.layers = nn.ModuleList(list(layers)[start:stop])
    if sliced:
        config.layer_types = types[start:stop]
    try:
        yield
    finally:
        decoder.layers = layers
        if sliced:
            config.layer_types = types


def run_layers(decoder: nn.Module, start: int, stop: int, *, input_ids=None, inputs_embeds=None,
               attention_mask: torch.Tensor) -> torch.Tensor:
    """Residual stream after layer stop-1 (not final-normed unless stop == all layers)."""
    n_layers = len(decoder.layers)
    if stop == n_layers:
        with layer_slice(decoder, start, stop):
            return decoder(input_ids=input_ids, inputs_embeds=inputs_embeds,
                           attention_mask=attention_mask, use_cache=False).last_hidden_state
    captured: dict[str, torch.Tensor] = {}

    def grab(_module, _args, output):  # decoder layers return a tensor (or a tuple in older code)
        captured["h"] = output[0] if isinstance(output, tuple) else output

    hook = decoder.layers[stop - 1].register_forward_hook(grab)
    try:
        with layer_slice(decoder, start, stop):
            decoder(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                    use_cache=False)
    finally:
        hook.remove()
    return captured["h"]


def label_logits(model: nn.Module, last_hidden: torch.Tensor, label_ids: Sequence[int],
                 conservative: bool = False) -> torch.Tensor:
    """(b, 2) logits of the label tokens, computed in float32 from just their unembedding rows.

    float32 matters: a margin is the difference of two logits of magnitude ~20, and bf16
    logits would quantize it in steps of ~0.1.
    """
    head = model.get_output_embeddings()
    h = last_hidden.float()
    weight = head.weight
    if weight.dtype in (torch.float32, torch.float16, torch.bfloat16) and weight.dim() == 2:
        rows = weight[list(label_ids)].float().to(h.device)  # the head may sit on another GPU
        logits = h @ rows.T
        if getattr(head, "bias", None) is not None:
            logits = logits + head.bias[list(label_ids)].float().to(h.device)
    else:  # quantized head (packed weights): fall back to the full projection
        logits = head(last_hidden)[:, list(label_ids)].float()
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    scale = output_scale(config)
    if scale != 1.0:  # linear: the conservative relevance rule needs nothing more
        logits = logits * scale
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:  # Gemma 2 squashes logits; the margin must match what the model would emit
        capped = torch.tanh(logits / cap) * cap
        if conservative:  # the squash ratio held constant (slope 1 at 0, like tanh)
            from gapscope.models.linearized import identity_rule

            capped = identity_rule(logits, capped, at_zero=1.0)
        logits = capped
    return logits


def output_scale(config) -> float:
    """The constant a CausalLM's own forward multiplies its logits by after the head, which the two
    label rows alone miss: Granite divides them by logits_scaling, Cohere multiplies by logit_scale
    (8x and 16x too large a margin on tiny models without it). An unknown one is caught by the margin
    check each causal-lm makes against the model's own forward (CausalLM._check_margin)."""
    model_type = str(getattr(config, "model_type", ""))
    if model_type.startswith("granite") and getattr(config, "logits_scaling", None):
        return 1.0 / float(config.logits_scaling)
    if model_type.startswith("cohere") and getattr(config, "logit_scale", None):
        return float(config.logit_scale)
    return 1.0


def label_margins(model: nn.Module, hidden: torch.Tensor, lengths: Sequence[int], label_ids: Sequence[int]):
    """Margins logit(label 1) - logit(label 0) read at each row's last real position, as float64 numpy."""
    logits = label_logits(model, gather_last(hidden, lengths), label_ids)
    return (logits[:, 1] - logits[:, 0]).double().cpu().numpy()


def gather_last(hidden: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
    idx = torch.as_tensor([n - 1 for n in lengths], device=hidden.device)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]


def pad_states(states: Sequence[torch.Tensor], dtype: torch.dtype, device: torch.device,
               multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad cached (len_i, d) states into (b, T, d) plus the attention mask
    (T rounded up to `multiple`, exactly as tokens.pad_right pads the ids)."""
    from gapscope.models.tokens import padded_length

    width = padded_length(max(s.shape[0] for s in states), multiple)
    out = torch.zeros((len(states), width, states[0].shape[1]), dtype=dtype)
    mask = torch.zeros((len(states), width), dtype=torch.long)
    for i, s in enumerate(states):
        out[i, : s.shape[0]] = s.to(dtype)
        mask[i, : s.shape[0]] = 1
    return out.to(device), mask.to(device)
