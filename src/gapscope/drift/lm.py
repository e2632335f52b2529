"""Load the two sides of a drift comparison as plain Hugging Face causal LMs.

`load_lm(spec, base=...)` accepts:
  * a gapscope cell directory (RUN/cells/CELL, or its model/ folder): the cell's LoRA
    adapter over its base, through the causal-lm model kind itself;
  * a PEFT adapter directory (adapter_config.json + adapter_model.safetensors) over
    `base`, or over the base named in adapter_config.json;
  * a Hugging Face model directory, a .gguf file, an embedded name (embedded:smollm2-135m)
    or a Hugging Face id already in the local cache.

Weights are only ever read from safetensors (nothing is unpickled). Models loaded here
are private copies in float32, so a comparison never touches the shared bases that
study cells borrow (gapscope.models.loading).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gapscope.errors import GapscopeError, first_line
from gapscope.models.sources import resolve_source
from gapscope.study.artifacts import read_json


@dataclass
class LoadedLM:
    model: Any  # callable HF causal LM (possibly with LoRA layers injected)
    tokenizer: Any
    name: str  # for reports
    base_source: str | None = None  # the base this model was derived from, when known
    origin: str = "model"  # model | cell | adapter
    _closer: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None


def _cell_model_dir(path: Path) -> Path | None:
    if (path / "causal_lm.json").exists():
        return path
    if (path / "model" / "causal_lm.json").exists():
        return path / "model"
    if (path / "cell.json").exists() and (path / "model").is_dir():
        kind = read_json(path / "cell.json").get("kind")
        raise GapscopeError(f"{path}: cell of kind {kind!r}; the drift audit needs a causal-lm cell")
    return None


def check_tuned(spec: str | Path) -> None:
    """Refuse, before any model is loaded, a --tuned the drift audit cannot compare: a whole run,
    or a cell of another kind (the reason `infer_base` would otherwise hide behind "--base is needed")."""
    path = Path(str(spec)).expanduser()
    if path.is_dir() and (path / "study.toml").is_file() and (path / "cells").is_dir():
        raise GapscopeError(f"{spec}: a run directory; --tuned takes one of its causal-lm cells ({path / 'cells'}/NAME)")
    if path.is_dir():
        _cell_model_dir(path)


def is_adapter_dir(path: Path) -> bool:
    return (path / "adapter_config.json").exists()


def load_hf(source: str, *, what: str = "model") -> LoadedLM:
    """A private float32 copy of a causal LM named by a source string (see module docstring)."""
    from transformers import AutoModelForCausalLM

    from gapscope.models.loading import load_tokenizer, refuse_missing_weights

    src = resolve_source(source, "causal-lm")
    if not any(src.local_dir.glob("*.safetensors")):
        raise GapscopeError(f"{source}: no safetensors weights in {src.local_dir} (gapscope never unpickles weights)")
    try:
        model, info = AutoModelForCausalLM.from_pretrained(str(src.local_dir), dtype=torch.float32,
                                                           local_files_only=True, use_safetensors=True,
                                                           output_loading_info=True)
        refuse_missing_weights(model, info, "causal-lm", src)
        tok = load_tokenizer(src.local_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise GapscopeError(f"cannot load {what} {source!r} as a causal LM: {first_line(exc)}") from exc
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedLM(model, tok, name=source, base_source=source, origin="model")


def _load_adapter(path: Path, base: str | None) -> LoadedLM:
    from peft import PeftModel

    cfg = json.loads((path / "adapter_config.json").read_text())
    base = base or cfg.get("base_model_name_or_path")
    if not base:
        raise GapscopeError(f"{path}: PEFT adapter without a base model; pass --base")
    if not (path / "adapter_model.safetensors").exists():
        raise GapscopeError(f"{path}: no adapter_model.safetensors (gapscope never unpickles weights)")
    lm = load_hf(base, what="base model")
    try:
        with warnings.catch_warnings():  # peft pokes deprecated transformers attributes
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(lm.model, str(path), is_trainable=False)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise GapscopeError(f"{path}: adapter does not fit base {base!r}: {first_line(exc)}") from exc
    model.eval()
    return LoadedLM(model, lm.tokenizer, name=str(path), base_source=base, origin="adapter")


def _load_cell(model_dir: Path, name: str) -> LoadedLM:
    from gapscope.models.base import ModelSpec, create_model

    meta = read_json(model_dir / "causal_lm.json")
    cell = model_dir.parent / "cell.json"
    model_name = read_json(cell).get("model", "causal-lm") if cell.exists() else "causal-lm"
    from gapscope.models.causal_lm import CausalLMOptions

    known = set(CausalLMOptions.__dataclass_fields__)
    opts = {k: v for k, v in (meta.get("options") or {}).items() if k in known}
    opts["prefix_cache"] = False  # the drift audit runs full forwards with its own KV cache
    # ... in float32, like the base it is compared with: a bf16 cell keeps its frozen weights in
    # bf16 on CPU (device.frozen_linear_dtype), which a float32 forward cannot multiply with
    opts["dtype"] = "float32"
    model = create_model(ModelSpec(model_name, "causal-lm", meta["source"], opts))
    try:
        model.load(model_dir)
    except Exception:
        model.close()
        raise
    return LoadedLM(model.hf, model.base.tokenizer, name=name, base_source=meta["source"], origin="cell",
                    _closer=model.close)


def load_lm(spec: str | Path, *, base: str | None = None) -> LoadedLM:
    """The model named by `spec` (a cell, adapter, model directory or source string)."""
    path = Path(str(spec)).expanduser()
    if path.is_dir():
        model_dir = _cell_model_dir(path)
        if model_dir is not None:
            name = path.name if path.name != "model" else path.parent.name
            return _load_cell(model_dir, name)
        if is_adapter_dir(path):
            return _load_adapter(path, base)
    return load_hf(str(spec))


def infer_base(spec: str | Path) -> str | None:
    """The base a cell or adapter directory was trained from, or None."""
    path = Path(str(spec)).expanduser()
    if not path.is_dir():
        return None
    try:
        model_dir = _cell_model_dir(path)
    except GapscopeError:
        return None
    if model_dir is not None:
        return read_json(model_dir / "causal_lm.json").get("source")
    if is_adapter_dir(path):
        return json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
    return None
