"""LoRA adapters via peft: which modules to target, attach, and detach.

Adapters are injected into a shared base model and removed again with peft's
`unload()` (no merge), so one loaded base serves many cells. Module names come
from a small table keyed by config.model_type, with a generic fallback that looks
for Linear layers with the usual projection names, so Llama/Mistral/Qwen/Gemma/BERT
and most relatives work without architecture-specific code.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from gapscope.errors import GapscopeError

_DECODER_ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
_DECODER_MLP = ["gate_proj", "up_proj", "down_proj"]
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    # model_type: (attention targets, MLP targets)
    **{t: (_DECODER_ATTN, _DECODER_MLP) for t in (
        "llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text")},
    "phi3": (["qkv_proj", "o_proj"], ["gate_up_proj", "down_proj"]),
    "bert": (["query", "value"], ["intermediate.dense", "output.dense"]),
    "deberta-v2": (["query_proj", "value_proj"], ["intermediate.dense", "output.dense"]),
}
# Fallback search, most specific first.
_ATTN_NAMES = ["q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "query", "value", "query_proj", "value_proj",
               "query_key_value", "Wqkv", "c_attn"]
_MLP_NAMES = ["gate_proj", "up_proj", "down_proj", "gate_up_proj", "fc1", "fc2", "c_fc",
              "dense_h_to_4h", "dense_4h_to_h", "w1", "w2", "w3"]


def _linear_leaf_names(model: nn.Module) -> set[str]:
    # bitsandbytes' Linear4bit subclasses nn.Linear, so QLoRA bases are covered too.
    return {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def default_targets(model: nn.Module, model_type: str, mlp: bool) -> list[str]:
    if model_type in TARGETS:
        attn, mlp_names = TARGETS[model_type]
        return list(attn) + (list(mlp_names) if mlp else [])
    leaves = _linear_leaf_names(model)
    found = [n for n in _ATTN_NAMES if n in leaves]
    if mlp:
        found += [n for n in _MLP_NAMES if n in leaves]
    if not found:
        raise GapscopeError(f"no LoRA target modules found for model_type {model_type!r} (none of "
                            f"{', '.join(_ATTN_NAMES)}); set lora_targets")
    return found


def resolve_train_layers(value: int | str, n_layers: int, model_name: str) -> int:
    """How many top layers get LoRA: an int, "auto" (the top third) or "all"."""
    if value == "auto":
        k = max(1, math.ceil(n_layers / 3))
    elif value == "all":
        k = n_layers
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        k = value
    else:
        raise GapscopeError(f"model {model_name!r}: train_layers must be a positive int, 'auto' or 'all'")
    return min(int(k), n_layers)


def attach_lora(model: nn.Module, *, r: int, alpha: float, dropout: float, targets: Sequence[str],
                layers: Sequence[int] | None, task_type: str | None = None, within: str | None = None):
    """Wrap `model` with a fresh LoRA adapter (initialised from torch's current RNG).

    `within`: the module path of the layer list LoRA may touch (a decoder's `model.layers`); peft's
    exclude_modules keeps it off every other module, such as a multimodal model's vision tower,
    whose blocks also hold q_proj/k_proj/v_proj and also sit in a list called `layers`."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets),
                        layers_to_transform=list(layers) if layers is not None else None,
                        exclude_modules=rf"(?!{re.escape(within)}\.\d+\.).*" if within else None,
                        bias="none", task_type=task_type)
    with warnings.catch_warnings():  # peft pokes deprecated transformers attributes
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, config)


def unmatched_targets(peft_model, targets: Sequence[str]) -> list[str]:
    """The requested targets that name none of the modules peft adapted (peft itself only raises
    when no target matches at all). Same suffix rule as peft's list matching."""
    names = peft_model.targeted_module_names
    return [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]


def require_all_targets(peft_model, targets: Sequence[str], *, source: str, layers: Sequence[int] | None,
                        arch: str, fix: str) -> None:
    """Refuses a partly matching target list: the adapter would silently adapt less than the log says."""
    missing = unmatched_targets(peft_model, targets)
    if missing:
        where = ("any layer" if not layers else f"layer {layers[0]}" if len(layers) == 1
                 else f"layers {layers[0]}-{layers[-1]}")
        found = [t for t in targets if t not in missing]
        raise GapscopeError(f"{source}: LoRA finds no {', '.join(missing)} in {where} of this {arch}, which "
                            f"would adapt only {', '.join(found)}; {fix}")


def detach_lora(peft_model) -> nn.Module:
    """Remove the adapter and return the untouched base (weights never merged)."""
    return peft_model.unload()


def lora_state_dict(peft_model) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(peft_model).items()}


def load_lora_state_dict(peft_model, state: dict[str, torch.Tensor]) -> None:
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(peft_model, state)
    unexpected = getattr(result, "unexpected_keys", None) or []
    if unexpected:
        raise ValueError(f"adapter does not fit the base model (unexpected keys: {unexpected[:3]})")
