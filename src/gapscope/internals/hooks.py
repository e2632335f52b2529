"""Stable activation names over any Hugging Face layer stack, recorded and patched with forward hooks.

Names follow TransformerLens:

    embed              residual stream entering layer 0 (token (+position) embeddings)
    resid_pre.{l}      residual stream entering layer l
    resid_post.{l}     residual stream leaving layer l (never final-normed)
    attn.{l}           what layer l's attention submodule returns as its first output
                       (decoders: the attention's contribution before the residual add;
                       BERT: the attention block after its output LayerNorm)
    pattern.{l}        attention probabilities (batch, heads, query, key); only produced when
                       the model runs eager attention (see `eager_attention`)
    mlp.{l}            layer l's MLP output, where the layer has a child called `mlp`

The layer list is found generically (`find_layers`): model.layers, model.model.layers,
encoder.layer, transformer.h, gpt_neox.layers, ... or, failing those, the largest
ModuleList of identical blocks. Nothing here names one architecture's modules.

Recording is `with Recorder(model, names, reduce=fn) as rec: model(...)`; patching is
`with patching(model, {name: setter}): model(...)`, where a setter maps the activation
tensor to its replacement (small setters live in gapscope.internals.patching).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from gapscope.models.attention import attention_implementation

# Tried in order; the first that resolves to a ModuleList wins.
LAYER_PATHS = (
    "layers", "model.layers", "model.model.layers", "language_model.layers", "model.language_model.layers",
    "encoder.layer", "bert.encoder.layer", "roberta.encoder.layer", "model.encoder.layer",
    "transformer.h", "h", "gpt_neox.layers", "model.decoder.layers", "decoder.layers", "transformer.blocks",
    "blocks",
)
ATTENTION_CHILDREN = ("self_attn", "attention", "attn", "self_attention", "mixer")
MLP_CHILDREN = ("mlp", "feed_forward", "ffn")
FINAL_NORM_CHILDREN = ("norm", "final_layernorm", "ln_f", "final_norm", "norm_f")

_NAME = re.compile(r"^(embed|resid_pre|resid_post|attn|pattern|mlp)(?:\.(\d+))?$")

Setter = Callable[[torch.Tensor], torch.Tensor]


def _get(root: nn.Module, path: str) -> nn.Module | None:
    obj = root
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def find_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """(dotted path, layer list) of the transformer blocks of `model`."""
    for path in LAYER_PATHS:
        obj = _get(model, path)
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return path, obj
    best: tuple[int, str, nn.ModuleList] | None = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) > 0 and len({type(m) for m in mod}) == 1:
            size = sum(p.numel() for p in mod.parameters())
            if best is None or size > best[0]:
                best = (size, name, mod)
    if best is None:
        raise ValueError(f"no transformer layer list found in {type(model).__name__}")
    return best[1], best[2]


def _child(module: nn.Module, names: Sequence[str]) -> nn.Module | None:
    for n in names:
        m = getattr(module, n, None)
        if isinstance(m, nn.Module):
            return m
    return None


def find_attention(layer: nn.Module) -> nn.Module:
    m = _child(layer, ATTENTION_CHILDREN)
    if m is None:
        for name, sub in layer.named_children():
            if "attn" in name.lower() or "attention" in type(sub).__name__.lower():
                return sub
        raise ValueError(f"no attention submodule in {type(layer).__name__}")
    return m


def find_mlp(layer: nn.Module) -> nn.Module | None:
    return _child(layer, MLP_CHILDREN)


def find_final_norm(stack_owner: nn.Module) -> nn.Module | None:
    """The norm applied after the last layer (decoders); None for post-LN encoders such as BERT."""
    m = _child(stack_owner, FINAL_NORM_CHILDREN)
    if m is not None:
        return m
    last = None
    for _, sub in stack_owner.named_children():
        if "norm" in type(sub).__name__.lower():
            last = sub
    return last


def parse_name(name: str) -> tuple[str, int]:
    m = _NAME.match(name)
    if not m:
        raise ValueError(f"unknown activation name {name!r}")
    kind, layer = m.group(1), m.group(2)
    if kind == "embed":
        return "resid_pre", 0
    if layer is None:
        raise ValueError(f"activation {name!r} needs a layer index, e.g. {kind}.0")
    return kind, int(layer)


def activation_names(n_layers: int, kinds: Sequence[str] = ("resid_post",)) -> list[str]:
    return [f"{k}.{l}" for k in kinds for l in range(n_layers)]


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def _with_first(output, value):
    if isinstance(output, tuple):
        return (value,) + tuple(output[1:])
    return value


@dataclass
class _Site:
    module: nn.Module
    pre: bool  # forward-pre hook on the module's hidden_states input
    index: int | None  # output tuple element (None: the first / the tensor itself)


class Stack:
    """The layer stack of one model with its hook sites resolved once."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.path, self.layers = find_layers(model)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def site(self, name: str) -> _Site:
        kind, layer = parse_name(name)
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"{name}: layer out of range (model has {self.n_layers})")
        block = self.layers[layer]
        if kind == "resid_pre":
            return _Site(block, True, None)
        if kind == "resid_post":
            return _Site(block, False, None)
        if kind == "attn":
            return _Site(find_attention(block), False, None)
        if kind == "pattern":
            return _Site(find_attention(block), False, 1)
        mlp = find_mlp(block)
        if mlp is None:
            raise ValueError(f"{name}: layer {layer} has no MLP child")
        return _Site(mlp, False, None)


def _pre_input(args, kwargs):
    if args:
        return args[0]
    return kwargs.get("hidden_states")


class Recorder:
    """Captures named activations during forward passes.

    `reduce(name, tensor)` is applied at capture (e.g. gather two positions) so memory stays
    small; by default the detached tensor is kept. `rec.acts[name]` holds the latest capture;
    with `accumulate=True` captures of successive forwards are kept in `rec.history[name]`.
    """

    def __init__(self, model: nn.Module | Stack, names: Sequence[str],
                 reduce: Callable[[str, torch.Tensor], torch.Tensor] | None = None, accumulate: bool = False):
        self.stack = model if isinstance(model, Stack) else Stack(model)
        self.names = list(names)
        self.reduce = reduce
        self.accumulate = accumulate
        self.acts: dict[str, torch.Tensor] = {}
        self.history: dict[str, list[torch.Tensor]] = {n: [] for n in self.names}
        self._handles: list = []

    def _store(self, name: str, value) -> None:
        if value is None:  # e.g. pattern.{l} under sdpa attention
            return
        value = value.detach()
        if self.reduce is not None:
            value = self.reduce(name, value)
        self.acts[name] = value
        if self.accumulate:
            self.history[name].append(value)

    def __enter__(self) -> "Recorder":
        for name in self.names:
            s = self.stack.site(name)
            if s.pre:
                def pre(_m, args, kwargs, _name=name):
                    self._store(_name, _pre_input(args, kwargs))
                self._handles.append(s.module.register_forward_pre_hook(pre, with_kwargs=True))
            else:
                def post(_m, _args, output, _name=name, _idx=s.index):
                    if _idx is None:
                        self._store(_name, _first(output))
                    elif isinstance(output, tuple) and len(output) > _idx:
                        self._store(_name, output[_idx])
                self._handles.append(s.module.register_forward_hook(post))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


@contextlib.contextmanager
def patching(model: nn.Module | Stack, setters: dict[str, Setter]) -> Iterator[None]:
    """Replace named activations in every forward run inside the block: `setters[name](act) -> new act`.

    Residual-stream sites are the usual targets; attention patterns cannot be patched
    (they are an output of the attention, not an input of what follows)."""
    stack = model if isinstance(model, Stack) else Stack(model)
    handles = []
    try:
        for name, fn in setters.items():
            s = stack.site(name)
            if s.index is not None:
                raise ValueError(f"{name}: attention patterns are read-only; patch attn.{{l}} instead")
            if s.pre:
                def pre(_m, args, kwargs, _fn=fn):
                    if args:
                        return (_fn(args[0]),) + tuple(args[1:]), kwargs
                    kwargs = dict(kwargs)
                    kwargs["hidden_states"] = _fn(kwargs["hidden_states"])
                    return args, kwargs
                handles.append(s.module.register_forward_pre_hook(pre, with_kwargs=True))
            else:
                def post(_m, _args, output, _fn=fn):
                    return _with_first(output, _fn(_first(output)))
                handles.append(s.module.register_forward_hook(post))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Run with eager attention inside the block, so attention modules return their probabilities.

    transformers 5 looks the attention function up from `config._attn_implementation` at
    every forward, so flipping the attribute on every config the modules hold switches the
    same weights to eager and back with no copy (measured on Llama, Mistral, Gemma 3, BERT)."""
    with attention_implementation(model, "eager"):
        yield
