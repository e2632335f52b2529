"""Will a model's structure serve its kind? Asked of a weightless skeleton before any data is read.

A study reads every corpus and then fits cell after cell; an architecture gapscope cannot drive
(GPT-2 keeps its blocks in `h`, not `layers`; a T5 is no decoder; DeBERTa names its projections
`query_proj`) used to fail inside every cell, with a traceback each. The same lookups a cell makes
are run here on the model built from its config.json on the meta device (no weights, no memory,
milliseconds even for an 8B model), so the refusal is one line and comes first.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from gapscope.errors import GapscopeError, first_line
from gapscope.models.sources import ResolvedSource

SERVED_DECODERS = "Llama, Mistral, Gemma, Qwen, Phi-3, GPT-NeoX"


def skeleton(kind: str, src: ResolvedSource) -> nn.Module:
    """The model `kind` would load from `src`, built on the meta device: structure without weights."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    auto = AutoModelForCausalLM if kind == "causal-lm" else AutoModel
    try:
        config = AutoConfig.from_pretrained(str(src.local_dir), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise GapscopeError(f"{src.source}: unreadable config.json ({first_line(exc)})") from None
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return auto.from_config(config)
    except (ValueError, KeyError, ImportError) as exc:
        what = "a decoder language model" if kind == "causal-lm" else "a text encoder"
        raise GapscopeError(f"{src.source}: a {src.arch} (model_type {src.model_type!r}) is not {what} that "
                            f"kind {kind!r} can load ({first_line(exc, 160)})") from None


def decoder_layers(model: nn.Module, source: str, prefix_cache: bool = False) -> nn.ModuleList:
    """The decoder's list of blocks, which the causal-lm kind splits, caches below and adapts above.

    A decoder that adds learned absolute positions inside its own forward (OPT) would get them a
    second time when the cached states re-enter it above the split: its margins came out wrong
    without an error, so it is refused unless the prefix cache is off."""
    arch = type(model).__name__
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise GapscopeError(f"{source}: a {arch} keeps no list of decoder layers where kind 'causal-lm' looks "
                            f"(get_decoder().layers); it serves decoders built like {SERVED_DECODERS}")
    if prefix_cache and any(hasattr(decoder, a) for a in ("embed_positions", "wpe", "project_in")):
        raise GapscopeError(f"{source}: a {arch} adds learned positions inside its decoder, which the prefix "
                            "cache would add twice; set prefix_cache = false for this model")
    scale = forward_embedding_scale(decoder)
    if prefix_cache and scale is not None:
        raise GapscopeError(f"{source}: a {arch} scales its embeddings inside its decoder ({scale}), which the "
                            "prefix cache would apply twice; set prefix_cache = false for this model")
    return layers


# Where a decoder's forward multiplies inputs_embeds itself (Granite, HyperCLOVA X: embedding_multiplier),
# rather than inside its embedding module (Gemma): cached states re-entering the decoder get it again.
_FORWARD_EMBEDDING_SCALES = ("embedding_multiplier", "embedding_scale", "embed_scale", "normalizer")


def forward_embedding_scale(decoder: nn.Module) -> str | None:
    """'name = value' of a scale the decoder applies to its input embeddings in forward, None if none."""
    for name in _FORWARD_EMBEDDING_SCALES:
        value = getattr(decoder, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value != 1:
                return f"{name} = {value:g}"
        elif isinstance(value, torch.Tensor):  # a buffer (unreadable on the meta device): assume it scales
            return name
    return None


def position_limit(model: nn.Module) -> int | None:
    """How many tokens an encoder's learned absolute positions cover (None: no such table).
    RoBERTa's table starts after its padding index, so 514 rows hold 512 positions."""
    emb = getattr(getattr(model, "embeddings", None), "position_embeddings", None)
    if not isinstance(emb, nn.Embedding):
        return None
    return emb.num_embeddings - (emb.padding_idx + 1 if emb.padding_idx is not None else 0)


def check_max_length(model: nn.Module, max_length: int, source: str) -> None:
    limit = position_limit(model)
    if limit is not None and max_length > limit:
        raise GapscopeError(f"{source}: max_length = {max_length} is more than the {limit} positions this "
                            f"{type(model).__name__} has; set max_length <= {limit}")


def module_path(model: nn.Module, module: nn.Module) -> str:
    """The dotted name of `module` inside `model` (the prefix peft sees in its module keys)."""
    return next(name for name, m in model.named_modules() if m is module)


def lora_fix(kind: str, opts: Any) -> str:
    """What the user changes when some LoRA targets name no module of the model."""
    if opts.lora_targets:
        return "drop them from lora_targets"
    return "set lora_mlp = false, or lora_targets" if kind == "causal-lm" and opts.lora_mlp else "set lora_targets"


def check_lora(model: nn.Module, source: str, targets: list[str], layers: list[int] | None,
               within: str | None = None, fix: str = "set lora_targets") -> None:
    """peft's own matching, dry-run on the skeleton: targets that exist in no adapted layer fail here,
    whether none of them match (peft raises) or only some (peft would drop the others silently)."""
    from gapscope.models.lora import attach_lora, require_all_targets

    try:
        adapted = attach_lora(model, r=1, alpha=1.0, dropout=0.0, targets=targets, layers=layers, within=within)
    except (ValueError, RuntimeError):  # peft's NoMatchingPeftModuleError is a ValueError
        where = f"layers {layers[0]}-{layers[-1]}" if layers else "any layer"
        raise GapscopeError(f"{source}: LoRA finds none of {', '.join(targets)} in {where} of this "
                            f"{type(model).__name__}; set lora_targets, or train_layers = \"all\"") from None
    require_all_targets(adapted, targets, source=source, layers=layers, arch=type(model).__name__, fix=fix)


def check_structure(kind: str, src: ResolvedSource, opts: Any, name: str) -> None:
    """Every structural refusal a cell of `kind` would raise on `src`, raised now, without weights."""
    from gapscope.models.lora import default_targets, resolve_train_layers

    model = skeleton(kind, src)
    within = None
    if kind == "causal-lm":
        layers = decoder_layers(model, src.source, opts.prefix_cache)
        n = len(layers)
        within = module_path(model, layers)
        mlp = opts.lora_mlp
    else:
        check_max_length(model, opts.max_length, src.source)
        if opts.finetune != "lora":
            return
        n = int(model.config.num_hidden_layers)
        mlp = False
    k = resolve_train_layers(opts.train_layers, n, name)
    targets = opts.lora_targets or default_targets(model, src.model_type, mlp)
    check_lora(model, src.source, list(targets), list(range(n - k, n)) if k < n else None, within,
               lora_fix(kind, opts))
