"""One full forward per (model, example), kept on disk and reused by every internals analysis.

For each example the cache keeps, per layer, the residual stream at the readout position
("answer": the last token of a causal LM, [CLS] of an encoder) and mean-pooled over the
email's tokens ("mean"; for an encoder, the head's pooling over every real token), plus
the margin of that same forward. Layer index 0 is `embed` (the stream entering layer 0),
index l+1 is `resid_post.{l}`; nothing is final-normed, so the logit lens can apply the
final norm itself and lens(last layer) reproduces the margin.

Storage: float16 (clipped to its range: Gemma carries outliers beyond it) in one
safetensors file per (cell, variant) under diagnostics/internals/cache/, with the row keys
and the cell's fingerprint in the file's metadata. Row keys hash the row id and text, so an
edited row is recomputed; a cell refitted with another fingerprint starts afresh; rows
asked for later are appended. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gapscope.internals.hooks import Recorder
from gapscope.internals.view import Item, ModelView
from gapscope.models.tokens import length_buckets, padded_length

VERSION = "1"
F16_MAX = 65504.0


def row_key(row_id: str, text: str) -> str:
    return f"{row_id}:{hashlib.blake2b(text.encode('utf-8'), digest_size=6).hexdigest()}"


@dataclass
class Activations:
    keys: list[str]
    answer: np.ndarray  # (n, L+1, d) float16
    mean: np.ndarray  # (n, L+1, d) float16
    margin: np.ndarray  # (n,) float32, from the same full forward
    n_tokens: np.ndarray  # (n,) int32

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def n_layers(self) -> int:
        return self.answer.shape[1] - 1

    def site(self, name: str) -> np.ndarray:
        return {"answer": self.answer, "mean": self.mean}[name]

    def layer(self, site: str, layer: int) -> np.ndarray:
        """(n, d) float32 at one cached layer index (0 = embed, l+1 = resid_post.l)."""
        return self.site(site)[:, layer].astype(np.float32)

    def take(self, idx) -> "Activations":
        idx = np.asarray(idx, dtype=int)
        return Activations([self.keys[i] for i in idx], self.answer[idx], self.mean[idx], self.margin[idx],
                           self.n_tokens[idx])


def _f16(x: torch.Tensor) -> np.ndarray:
    return x.float().clamp(-F16_MAX, F16_MAX).cpu().numpy().astype(np.float16)


def compute(view: ModelView, items: Sequence[Item], progress=None) -> dict[str, np.ndarray]:
    """The full forward with hooks on every layer, gathered per batch (memory O(batch x T x d))."""
    L = view.n_layers
    names = ["embed"] + [f"resid_post.{l}" for l in range(L)]
    index = {n: i for i, n in enumerate(names)}
    n = len(items)
    d = None
    answer = mean = None
    margin = np.zeros(n, dtype=np.float32)
    done = 0
    for bucket in length_buckets([len(it) for it in items], view.batch_size, view.pad_multiple):
        batch = [items[i] for i in bucket]
        rows = torch.arange(len(batch))
        last = torch.as_tensor([view.anchor(it) for it in batch])
        width = padded_length(max(len(it) for it in batch), view.pad_multiple)
        w = view.pool_weights(batch, width)
        got: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def reduce(name, h, _w=w, _last=last, _rows=rows, _got=got):
            h = h.float().cpu()
            _got[index[name]] = (_f16(h[_rows, _last]), _f16(torch.einsum("bt,btd->bd", _w, h)))
            return h[:0]  # nothing kept in the recorder itself

        rec = Recorder(view.stack, names, reduce=reduce)
        m = view.forward(batch, recorder=rec)
        if answer is None:
            d = got[0][0].shape[1]
            answer = np.zeros((n, L + 1, d), dtype=np.float16)
            mean = np.zeros((n, L + 1, d), dtype=np.float16)
        for li, (a, mu) in got.items():
            answer[bucket, li] = a
            mean[bucket, li] = mu
        margin[bucket] = m.numpy()
        done += len(bucket)
        if progress:
            progress(done, n)
    if answer is None:
        answer = mean = np.zeros((0, L + 1, 0), dtype=np.float16)
    return {"answer": answer, "mean": mean, "margin": margin,
            "n_tokens": np.asarray([len(it) for it in items], dtype=np.int32)}


class ActivationCache:
    """Per-(cell, variant) cache file; `get(view, keys, texts)` computes only what is missing."""

    def __init__(self, path: Path, fingerprint: str):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.seconds_computing = 0.0
        self.n_computed = 0
        self._data: dict[str, np.ndarray] | None = None
        self._keys: list[str] = []

    def _load(self) -> None:
        if self._data is not None:
            return
        self._data, self._keys = {}, []
        if not self.path.exists():
            return
        from safetensors import safe_open
        from safetensors.numpy import load_file

        with safe_open(str(self.path), framework="numpy") as f:
            meta = f.metadata() or {}
        if meta.get("fingerprint") != self.fingerprint or meta.get("version") != VERSION:
            return
        self._data = load_file(str(self.path))
        self._keys = json.loads(meta["keys"])

    def _save(self) -> None:
        from safetensors.numpy import save_file

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        save_file({k: np.ascontiguousarray(v) for k, v in self._data.items()}, str(tmp),
                  metadata={"fingerprint": self.fingerprint, "version": VERSION, "keys": json.dumps(self._keys)})
        os.replace(tmp, self.path)

    def __contains__(self, key: str) -> bool:
        self._load()
        return key in set(self._keys)

    def get(self, view: ModelView, keys: Sequence[str], texts: Sequence[str], progress=None) -> Activations:
        self._load()
        have = {k: i for i, k in enumerate(self._keys)}
        missing = [j for j, k in enumerate(keys) if k not in have]
        missing = list(dict.fromkeys(missing))
        if missing:
            seen: set[str] = set()
            todo = [j for j in missing if not (keys[j] in seen or seen.add(keys[j]))]
            t0 = time.perf_counter()
            new = compute(view, view.encode([texts[j] for j in todo]), progress)
            self.seconds_computing += time.perf_counter() - t0
            self.n_computed += len(todo)
            if not self._data:
                self._data = new
            else:
                self._data = {k: np.concatenate([self._data[k], new[k]]) for k in new}
            for j in todo:
                have[keys[j]] = len(self._keys)
                self._keys.append(keys[j])
            self._save()
        idx = np.asarray([have[k] for k in keys], dtype=int)
        d = self._data
        return Activations(list(keys), d["answer"][idx], d["mean"][idx], d["margin"][idx], d["n_tokens"][idx])
