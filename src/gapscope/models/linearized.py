"""Run a Hugging Face transformer so that gradient x input is a conservative relevance.

Plain gradient x input on a transformer is a poor explanation: the softmax of attention,
the normalisation layers and the gated MLP are non-linear, so gradients are local and
relevance is neither conserved nor faithful. Conservative propagation (Ali et al. 2022,
"XAI for transformers"; Achtibat et al. 2024, AttnLRP) fixes that with a handful of rules
that change only the BACKWARD pass, so every forward value (and so every margin) is
unchanged:

  attention    the softmax probabilities are treated as constants: relevance flows through
               the values, never through the query/key scores;
  normalisation the per-position scale 1/rms (1/std for LayerNorm) is a constant; LayerNorm
               keeps its centring, which is linear;
  activation   act(x) is read as x * (act(x)/x) with the ratio constant (identity rule);
  gating       act(gate) * up splits the product's relevance evenly between its two factors
               (uniform rule), so it is not counted twice.

AttnLRP's alternative for attention (relevance also through the softmax, products split evenly)
was measured on a fine-tuned SmolLM2 (6 emails): better insertion and sufficiency, worse deletion
and comprehensiveness, 1.5x slower and not conservative, so the detached form is the one kept.

With these rules the network is linear in its input embeddings along the backward pass,
and sum over tokens of embedding . gradient recovers the output up to the (small) part
that the normalisation epsilons and biases absorb.

Everything is found generically, never by one architecture's class names: norms are the
modules named like *Norm with a `weight`, activations are the MLP's `act_fn` /
`intermediate_act_fn` / `activation_fn`, gating is an MLP with `gate_proj` and `up_proj`,
and attention goes through transformers' attention-function registry (config switch, the
same switch as internals/hooks.eager_attention: models/attention).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gapscope.models.attention import attention_implementation, register

ATTN_NAME = "gapscope_conservative"
# Rows per relevance backward: the backward keeps every layer's activations, so this bounds memory
# (16 rows of Gemma 3 270M took the demo's peak RSS from 5.6 to 6.3 GB); 4 rows still fill the matmuls.
RELEVANCE_BATCH = 4


@dataclass
class TokenRelevance:
    """Relevance of one text's tokens for its margin (what a model's `token_relevance` returns)."""

    spans: list[tuple[int, int]]  # (start, end) characters of each token of the text the model saw
    relevance: np.ndarray         # per token, same order
    margin: float                 # the model's margin for the text (the forward value)
    rest: float                   # relevance on positions outside the text: prompt, special tokens


_ACT_NAMES = ("act_fn", "intermediate_act_fn", "activation_fn", "act")


def _repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    if groups == 1:
        return x
    b, h, t, d = x.shape
    return x[:, :, None].expand(b, h, groups, t, d).reshape(b, h * groups, t, d)


def conservative_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                           softcap=None, **_kwargs):
    """Eager attention with the probabilities detached (signature of transformers' attention
    functions: (b, heads, q, d) inputs, (b, q, heads, d) output)."""
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    groups = getattr(module, "num_key_value_groups", query.shape[1] // key.shape[1])
    key = _repeat_kv(key, groups)
    value = _repeat_kv(value, groups)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask[..., : key.shape[-2]]
    probs = torch.softmax(scores.float(), dim=-1).to(query.dtype).detach()
    out = torch.matmul(probs, value)
    return out.transpose(1, 2).contiguous(), probs


def identity_rule(x: torch.Tensor, y: torch.Tensor, scale: float = 1.0, at_zero: float = 0.0) -> torch.Tensor:
    """y = f(x) elementwise, read as x * (y / x) with the ratio held constant: the value is y, the
    gradient to x is scale * y / x (`at_zero` where x is 0)."""
    xf = x.float()
    nonzero = xf.abs() > 1e-12
    ratio = torch.where(nonzero, y.float() / torch.where(nonzero, xf, 1.0), at_zero).detach()
    return y.detach() + (scale * (xf - xf.detach()) * ratio).to(y.dtype)


def _norm_hook(module, args, output):
    x = args[0]
    if isinstance(module, nn.LayerNorm) or (getattr(module, "bias", None) is not None and "LayerNorm" in type(module).__name__):
        xf = x.float()
        mu = xf.mean(-1, keepdim=True)
        inv = torch.rsqrt(xf.var(-1, keepdim=True, unbiased=False) + module.eps).detach()
        lin = (xf - mu) * inv
        if module.weight is not None:
            lin = lin * module.weight.float().detach()
        return output.detach() + (lin - lin.detach()).to(output.dtype)
    # RMS-style: output = x * (per-position scale) * (per-channel gain), however it is parametrised,
    # so the elementwise ratio output / x is exactly the Jacobian diagonal with the scale held fixed.
    return identity_rule(x, output)


def _identity_hook(half: bool):
    def hook(_module, args, output):
        return identity_rule(args[0], output, scale=0.5 if half else 1.0)
    return hook


def _half_hook(_module, _args, output):
    return output.detach() + 0.5 * (output - output.detach())


def _is_norm(module: nn.Module) -> bool:
    name = type(module).__name__
    return isinstance(module, nn.LayerNorm) or (name.endswith(("Norm", "RMSNorm", "LayerNorm"))
                                                 and isinstance(getattr(module, "weight", None), torch.Tensor))


@contextlib.contextmanager
def conservative(model: nn.Module) -> Iterator[None]:
    """Inside the block, gradients of `model` follow the conservative rules above."""
    register(ATTN_NAME, conservative_attention)
    handles = []
    try:
        for _name, m in model.named_modules():
            if _is_norm(m):
                handles.append(m.register_forward_hook(_norm_hook))
            gated = isinstance(getattr(m, "gate_proj", None), nn.Module) and isinstance(getattr(m, "up_proj", None), nn.Module)
            for attr in _ACT_NAMES:
                act = getattr(m, attr, None)
                if isinstance(act, nn.Module) and not list(act.parameters()):
                    handles.append(act.register_forward_hook(_identity_hook(half=gated)))
                    break
            if gated:
                handles.append(m.up_proj.register_forward_hook(_half_hook))
        with attention_implementation(model, ATTN_NAME):
            yield
    finally:
        for h in handles:
            h.remove()


def input_relevance(model: nn.Module, first_layer: nn.Module, forward) -> tuple[torch.Tensor, torch.Tensor]:
    """Relevance of each position's input to the first transformer layer for the outputs of
    `forward()` (a (b,) tensor of margins, one per row, rows independent), under the conservative
    rules. Returns (margins, relevance (b, T)), both float32 on the model's device."""
    leaf: dict[str, torch.Tensor] = {}

    def pre(_m, args, kwargs):
        h = args[0] if args else kwargs["hidden_states"]
        x = h.detach().float().requires_grad_(True)
        leaf["x"] = x
        x_in = x.to(h.dtype)
        if args:
            return (x_in,) + tuple(args[1:]), kwargs
        return args, dict(kwargs, hidden_states=x_in)

    handle = first_layer.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        with conservative(model), torch.enable_grad():
            margins = forward()
            (grad,) = torch.autograd.grad(margins.sum(), leaf["x"])
    finally:
        handle.remove()
    return margins.detach().float(), (grad * leaf["x"].detach()).sum(-1)
