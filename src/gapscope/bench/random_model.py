"""`gapscope bench random-model`: a randomly initialised model directory with a real model's shape.

The GPU benchmarks need a 7–9B model, and this project's machines can fetch no weights. Speed and
memory depend on the shape (layers, widths, heads, vocabulary), not on the values, so a directory
in Hugging Face layout with a named model's config and seeded random bf16 weights measures the same
code path a user's Llama 3.1 8B takes: the benches load it like any other directory source.

The tokenizer comes from another source (the embedded SmolLM2 by default): the vocabulary is kept
at least as large as the tokenizer's, so every id it produces has an embedding row.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from gapscope.errors import GapscopeError

# The published configs' shapes (rope scaling and generation settings left out: they do not
# change the cost of a forward pass over a few hundred tokens).
PRESETS: dict[str, dict[str, Any]] = {
    "llama-3.1-8b": dict(
        model_type="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-5,
        rope_theta=500000.0, max_position_embeddings=8192, tie_word_embeddings=False),
    "mistral-7b": dict(
        model_type="mistral", vocab_size=32768, hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-5,
        rope_theta=1000000.0, max_position_embeddings=8192, sliding_window=None, tie_word_embeddings=False),
    "gemma-2-9b": dict(
        model_type="gemma2", vocab_size=256000, hidden_size=3584, intermediate_size=14336,
        num_hidden_layers=42, num_attention_heads=16, num_key_value_heads=8, head_dim=256,
        query_pre_attn_scalar=256, sliding_window=4096, final_logit_softcapping=30.0,
        attn_logit_softcapping=50.0, max_position_embeddings=8192, tie_word_embeddings=True),
}

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model")


def tokenizer_dir(source: str) -> Path:
    """A directory holding tokenizer files: `source` itself when it is one, else the resolved model's."""
    path = Path(source)
    if path.is_dir() and (path / "tokenizer.json").exists():
        return path
    from gapscope.models.sources import resolve_source

    return resolve_source(source, "causal-lm").local_dir


def build_config(preset: str, vocab_floor: int, overrides: dict[str, Any] | None = None):
    from transformers import AutoConfig

    if preset not in PRESETS:
        raise GapscopeError(f"unknown preset {preset!r} (use {', '.join(PRESETS)})")
    fields = dict(PRESETS[preset], **(overrides or {}))
    fields["vocab_size"] = max(int(fields["vocab_size"]), vocab_floor)
    model_type = fields.pop("model_type")
    return AutoConfig.for_model(model_type, **fields)


def write(preset: str, out: Path, *, tokenizer: str = "embedded:smollm2-135m", seed: int = 0,
          layers: int | None = None, device: str = "auto", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write `out/` (config.json, bf16 safetensors, tokenizer files); returns a summary."""
    from transformers import AutoModelForCausalLM

    from gapscope.models.device import resolve_device
    from gapscope.models.loading import load_tokenizer

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise GapscopeError(f"{out}: exists and is not empty (pick a new directory)")
    tok_dir = tokenizer_dir(tokenizer)
    tok = load_tokenizer(tok_dir)
    fields = dict(overrides or {})
    if layers is not None:
        if layers < 1:
            raise GapscopeError(f"--layers must be at least 1 (got {layers})")
        fields["num_hidden_layers"] = layers
    config = build_config(preset, len(tok), fields)
    config.architectures = [AutoModelForCausalLM._model_mapping[type(config)].__name__]
    dev = resolve_device(device)
    torch.manual_seed(seed)
    # Initialised where it will run: an 8B model's init takes seconds on a GPU, minutes on a CPU.
    with torch.device(dev):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    for name in TOKENIZER_FILES:
        if (tok_dir / name).exists():
            shutil.copy2(tok_dir / name, out / name)
    params = sum(p.numel() for p in model.parameters())
    summary = {"preset": preset, "out": str(out), "parameters": params, "layers": config.num_hidden_layers,
               "hidden_size": config.hidden_size, "vocab_size": config.vocab_size, "dtype": "bfloat16",
               "seed": seed, "tokenizer": str(tok_dir), "initialised_on": str(dev)}
    (out / "gapscope_random.json").write_text(json.dumps(summary, indent=2))
    del model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return summary


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("preset", r["preset"], f"{r['layers']} layers, hidden {r['hidden_size']}, vocab {r['vocab_size']}"),
        ("parameters", f"{r['parameters'] / 1e9:.2f} B", f"random, seed {r['seed']}, {r['dtype']}"),
        ("written to", r["out"], f"tokenizer from {r['tokenizer']}"),
    ]
