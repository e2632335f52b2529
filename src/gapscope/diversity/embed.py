"""Sentence embeddings for diversity: sentence-transformers style mean pooling over a BERT
encoder (default the embedded all-MiniLM-L6-v2), L2-normalised, float32.

Loaded privately from safetensors (the study's encoder cells keep their own copies).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from gapscope.errors import GapscopeError, first_line
from gapscope.models.sources import resolve_source


_CACHE: dict[tuple[str, int], "Embedder"] = {}


def get_embedder(source: str = "embedded:minilm-l6", max_length: int = 128) -> "Embedder":
    """One loaded embedder per (source, max_length) per process: studies in one process share it."""
    key = (source, max_length)
    if key not in _CACHE:
        _CACHE.clear()  # keep at most one encoder in memory
        _CACHE[key] = Embedder(source, max_length=max_length)
    return _CACHE[key]


class Embedder:
    def __init__(self, source: str = "embedded:minilm-l6", max_length: int = 128, batch_size: int = 32):
        from transformers import AutoModel

        from gapscope.models.loading import load_tokenizer

        src = resolve_source(source, "encoder")
        if not any(src.local_dir.glob("*.safetensors")):
            raise GapscopeError(f"{source}: no safetensors weights in {src.local_dir}")
        try:
            self.model = AutoModel.from_pretrained(str(src.local_dir), dtype=torch.float32, local_files_only=True,
                                                   use_safetensors=True).eval()
            self.tokenizer = load_tokenizer(src.local_dir)
        except (OSError, ValueError, KeyError) as exc:
            raise GapscopeError(f"cannot load embedder {source!r}: {first_line(exc)}") from exc
        self.source, self.max_length, self.batch_size = source, max_length, batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        # Longest first within the pass keeps padding small; the order is restored at the end.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self.tokenizer([texts[i][: self.max_length * 16] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                h = self.model(**enc).last_hidden_state.float()
                m = enc["attention_mask"].unsqueeze(-1).float()
                e = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
                out.append(torch.nn.functional.normalize(e, dim=-1).numpy())
        emb = np.concatenate(out) if out else np.zeros((0, self.model.config.hidden_size), np.float32)
        result = np.empty_like(emb)
        result[order] = emb
        return result
