"""Load base models once per process and lend them to cells.

A study fits many cells on the same base model; re-reading the weights for every
cell would dominate small runs. A cell *borrows* the cached base, injects its LoRA
adapter, and on close() unloads the adapter and returns the base. If the base is
already lent out (two live cells at once) the borrower gets a private copy.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gapscope.errors import GapscopeError, first_line
from gapscope.models.sources import ResolvedSource

MAX_CACHED_BASES = 2  # a study usually alternates between at most a couple of bases


@dataclass
class Base:
    model: Any
    tokenizer: Any
    key: tuple
    quantized: bool = False
    owner: Any = None  # weakref to the borrowing ClassifierModel, or None when free
    adapter: Any = None  # the PeftModel wrapping `model` while borrowed
    shared: bool = field(default=True)  # False: a private copy, dropped on release
    # CausalLM._check_margin's verdicts ("" passed, else the refusal) per forward path; copies share it
    margin_checks: dict = field(default_factory=dict)


_CACHE: OrderedDict[tuple, Base] = OrderedDict()
_LOCK = threading.Lock()
_TOKENIZERS: dict[tuple, Any] = {}


def load_tokenizer(local_dir) -> Any:
    """The tokenizer of a local model directory, parsed once per process.

    transformers re-parses tokenizer.json in Python on every load (about 4 s for Gemma's
    262k-entry vocabulary), and detectors reload models cell after cell. gapscope never
    mutates a tokenizer, so one instance per directory is shared.
    """
    from transformers import AutoTokenizer

    path = Path(local_dir).resolve()
    stamp = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size)
                  for f in sorted(path.glob("tokenizer*")) if f.is_file())
    key = (str(path), stamp)
    with _LOCK:
        tok = _TOKENIZERS.get(key)
    if tok is None:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        with _LOCK:
            _TOKENIZERS[key] = tok
    return tok


DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


def load_kwargs(device: torch.device, dtype: torch.dtype, load_in_4bit: bool,
                device_map: str | None = None, cuda_devices: int | None = None) -> dict[str, Any]:
    """from_pretrained arguments: dtype, 4-bit quantization (QLoRA) and the multi-GPU split.

    `device_map` spreads one model's layers over every visible GPU through accelerate
    (transformers' big-model dispatch): each layer runs on its GPU and accelerate's hooks
    move activations between them, so training, scoring and the prefix cache run unchanged.
    """
    # use_safetensors: never fall back to a pickled pytorch_model.bin lying beside the weights
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True, "use_safetensors": True}
    if device_map is not None:
        if device_map not in DEVICE_MAPS:
            raise GapscopeError(f"device_map must be one of {', '.join(DEVICE_MAPS)} (got {device_map!r})")
        n = torch.cuda.device_count() if cuda_devices is None else cuda_devices
        if device.type != "cuda" or n < 1:
            raise GapscopeError("device_map splits a model over CUDA GPUs; none is visible (drop device_map on CPU)")
        kwargs["device_map"] = device_map
    if load_in_4bit:
        if device.type != "cuda":
            raise GapscopeError("load_in_4bit needs a CUDA GPU (bitsandbytes); drop it on CPU")
        try:
            from transformers import BitsAndBytesConfig
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise GapscopeError("load_in_4bit needs the bitsandbytes package") from exc
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs.setdefault("device_map", {"": device.index or 0})
    return kwargs


def frozen_linears(modules: Any, skip: Any = None) -> list[torch.nn.Linear]:
    """Every nn.Linear under `modules` (a module or a list of them), except `skip`."""
    roots = modules if isinstance(modules, (list, tuple, torch.nn.ModuleList)) else [modules]
    return [m for r in roots for m in r.modules() if isinstance(m, torch.nn.Linear) and m is not skip]


def cast_linears(linears: list[torch.nn.Linear], dtype: torch.dtype) -> None:
    for m in linears:
        m.weight.data = m.weight.data.to(dtype)
        if m.bias is not None:
            m.bias.data = m.bias.data.to(dtype)


@contextlib.contextmanager
def float32_linears(modules: Any, dtype: torch.dtype | None) -> Iterator[None]:
    """Inside the block the linear weights under `modules` are float32 again (the values stored
    in `dtype`, upcast exactly); on exit they go back to `dtype`. peft creates a LoRA adapter in
    its base layer's dtype, so attaching inside this block keeps the adapter's initial weights
    float32 as on a float32 base. A no-op when `dtype` is None."""
    if dtype is None:
        yield
        return
    linears = frozen_linears(modules)
    cast_linears(linears, torch.float32)
    try:
        yield
    finally:
        cast_linears(linears, dtype)


def _load(kind: str, src: ResolvedSource, device: torch.device, dtype: torch.dtype,
          load_in_4bit: bool, device_map: str | None = None,
          linear_dtype: torch.dtype | None = None) -> tuple[Any, Any, bool]:
    from transformers import AutoModel, AutoModelForCausalLM

    kwargs = load_kwargs(device, dtype, load_in_4bit, device_map)
    quantized = load_in_4bit
    auto = AutoModelForCausalLM if kind == "causal-lm" else AutoModel
    try:
        model, info = auto.from_pretrained(str(src.local_dir), output_loading_info=True, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise GapscopeError(f"cannot load {src.source!r} as a {kind} model: {first_line(exc)}") from exc
    refuse_missing_weights(model, info, kind, src)
    try:
        tokenizer = load_tokenizer(src.local_dir)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GapscopeError(f"cannot load the tokenizer of {src.source!r} ({src.local_dir}): {first_line(exc)}") from exc
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:  # an id past the table is an IndexError deep inside the first forward
        raise GapscopeError(f"{src.source!r}: its tokenizer has {len(tokenizer)} tokens but the model's embedding "
                            f"table {rows} rows: the tokenizer belongs to another model")
    if quantized:
        from peft import prepare_model_for_kbit_training

        # Casts norms/head to float32 for stable LoRA training on a 4-bit base (QLoRA).
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    elif "device_map" not in kwargs:
        model.to(device)
    if linear_dtype is not None and not quantized:  # see device.frozen_linear_dtype
        cast_linears(frozen_linears(model, skip=model.get_output_embeddings()), linear_dtype)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tokenizer, quantized


# Weights a checkpoint may lack without changing what gapscope computes: an encoder's pooler
# (gapscope mean-pools the last hidden states and never calls it).
_UNUSED = {"encoder": ("pooler.",)}


def refuse_missing_weights(model: Any, info: dict, kind: str, src: ResolvedSource) -> None:
    """transformers fills weights a checkpoint lacks with fresh random values, drawn anew in every
    process: a cell would train and score a model no later command could reproduce. A sequence-
    classification checkpoint (a `score` head, no `lm_head`) given as a causal LM is the usual case."""
    missing = [k for k in info.get("missing_keys", []) if not k.startswith(_UNUSED.get(kind, ()))]
    if not missing:
        return
    unexpected = info.get("unexpected_keys", [])
    hint = (f"; it holds weights a {type(model).__name__} does not use ({', '.join(sorted(unexpected)[:2])}): "
            "is it another kind of checkpoint, such as a classifier?") if unexpected else ""
    raise GapscopeError(f"{src.source!r}: the checkpoint lacks {len(missing)} weight(s) of the "
                        f"{type(model).__name__} ({', '.join(sorted(missing)[:3])}), which would be random "
                        f"and differ in every run{hint}")


def borrow(kind: str, src: ResolvedSource, device: torch.device, dtype: torch.dtype,
           owner: Any, load_in_4bit: bool = False, device_map: str | None = None,
           linear_dtype: torch.dtype | None = None) -> Base:
    """A base model for `owner`: float32-or-compute weights (`dtype`), its frozen linear weights
    stored in `linear_dtype` when given (see device.frozen_linear_dtype)."""
    key = (kind, str(src.local_dir), str(device), str(dtype), load_in_4bit, device_map, str(linear_dtype))
    with _LOCK:
        base = _CACHE.get(key)
        if base is not None:
            _CACHE.move_to_end(key)
            _reclaim_if_abandoned(base)
            if base.owner is None:
                base.owner = weakref.ref(owner)
                return base
            if not base.quantized and device_map is None:  # lent out: a private copy is cheaper than re-reading
                return Base(bare_copy(base), base.tokenizer, key, owner=weakref.ref(owner), shared=False,
                            margin_checks=base.margin_checks)
    model, tokenizer, quantized = _load(kind, src, device, dtype, load_in_4bit, device_map, linear_dtype)
    base = Base(model, tokenizer, key, quantized, owner=weakref.ref(owner))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = base
            while len(_CACHE) > MAX_CACHED_BASES:
                _evict_one()
        else:
            base.shared = False
    return base


def bare_copy(base: Base):
    """A private copy of a lent base without its borrower's adapter: the adapter's LoRA layers sit
    inside the lent modules, so a plain deep copy would carry them, trained and trainable, into the
    next cell."""
    if base.adapter is None:
        return copy.deepcopy(base.model)
    return copy.deepcopy(base.adapter).unload()


def give_back(base: Base) -> None:
    """Detach any adapter and make the base available to the next cell."""
    with _LOCK:
        drop_adapter(base)
        base.owner = None


def _reclaim_if_abandoned(base: Base) -> None:
    # A borrower garbage-collected without close(): strip its adapter, free the base.
    if base.owner is not None and base.owner() is None:
        drop_adapter(base)
        base.owner = None


def _evict_one() -> None:
    for key, base in _CACHE.items():
        _reclaim_if_abandoned(base)
        if base.owner is None:
            del _CACHE[key]
            return
    _CACHE.popitem(last=False)  # all lent out: forget the oldest; its borrower keeps it alive


def clear_base_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def drop_adapter(base: Base) -> None:
    """Remove the borrower's adapter (if any) but keep the base borrowed."""
    if base.adapter is not None:
        base.model = base.adapter.unload()
        base.adapter = None
