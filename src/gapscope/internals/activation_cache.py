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


def _summaries(h: torch.Tensor, w: torch.Tensor, last: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    h = h.float().cpu()
    return _f16(h[torch.arange(h.shape[0]), last]), _f16(torch.einsum("bt,btd->bd", w, h))


def frozen_split(view: ModelView) -> int:
    """How many bottom layers a causal-LM cell shares with its base model (LoRA only above,
    the prefix cache on), else 0. Their activations are the same for every cell of the model."""
    m = view.model
    if view.kind != "causal-lm" or getattr(m, "prefix_cache", None) is None:
        return 0
    return int(getattr(m, "split", 0) or 0)


def compute(view: ModelView, items: Sequence[Item], progress=None, *, lower: "ActivationCache | None" = None,
            keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The forward with hooks on every layer, gathered per batch (memory O(batch x T x d)).

    With `lower` (a causal LM whose bottom `split` layers are frozen), the sites of those
    layers come from the model's shared `lower` cache (computed there once per model and
    text), and only the layers above run from the cached prefix states: every cell of a
    model after the first pays for its own top layers only.
    """
    L = view.n_layers
    split = frozen_split(view) if lower is not None else 0
    names = ["embed"] + [f"resid_post.{l}" for l in range(L)]
    index = {n: i for i, n in enumerate(names)}
    n = len(items)
    answer = mean = None
    margin = np.zeros(n, dtype=np.float32)
    done = 0
    for bucket in length_buckets([len(it) for it in items], view.batch_size, view.pad_multiple):
        batch = [items[i] for i in bucket]
        last = torch.as_tensor([view.anchor(it) for it in batch])
        width = padded_length(max(len(it) for it in batch), view.pad_multiple)
        w = view.pool_weights(batch, width)
        got: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def reduce(name, h, _w=w, _last=last, _got=got):
            _got[index[name]] = _summaries(h, _w, _last)
            return h[:0]  # nothing kept in the recorder itself

        if split > 0:
            assert lower is not None and keys is not None
            m = _split_forward(view, batch, [keys[i] for i in bucket], split, lower, names, reduce, got, w, last)
        else:
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


def _split_forward(view, batch, bkeys, split, lower, names, reduce, got, w, last) -> torch.Tensor:
    """One batch through the frozen bottom (sites from `lower`, or recorded now and added to it)
    and the cell's own top layers from the prefix states. Returns the margins."""
    from gapscope.models import lm_forward as lmf
    from gapscope.models.tokens import Encoded

    model = view.model
    encs = [Encoded(it.ids, it.email_start, it.email_end) for it in batch]
    low = lower.rows(bkeys)
    if low is None:
        ids, mask = view.batch(batch)
        with Recorder(view.stack, names[: split + 1], reduce=reduce), torch.no_grad(), \
                model.inference_context():
            h = lmf.run_layers(view.module, 0, split, input_ids=ids, attention_mask=mask)
        states = [h[r, : len(it)] for r, it in enumerate(batch)]
        model.keep_prefix_states(encs, states)
        lower.add(bkeys, {"answer": np.stack([got[i][0] for i in range(split + 1)], axis=1),
                          "mean": np.stack([got[i][1] for i in range(split + 1)], axis=1)})
    else:
        states = model.prefix_states(encs)
        for i in range(split + 1):
            got[i] = (low["answer"][:, i], low["mean"][:, i])
    h, mask = lmf.pad_states(states, model.weights_dtype, view.device, view.pad_multiple)
    with Recorder(view.stack, names[split + 1:], reduce=reduce), torch.no_grad():
        with model.inference_context():
            final = lmf.run_layers(view.module, split, view.n_layers, inputs_embeds=h, attention_mask=mask)
        return view.readout(view._pooled_final(batch, final)).float().cpu()  # float32 read-out, as forward()


class ActivationCache:
    """Per-(cell, variant) cache file; `get(view, keys, texts)` computes only what is missing.

    `lower`: the model's shared cache of its frozen bottom layers (see compute()); it holds
    only the "answer" and "mean" sites of layers 0..split.
    """

    def __init__(self, path: Path, fingerprint: str, lower: "ActivationCache | None" = None):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.lower = lower
        self.seconds_computing = 0.0
        self.n_computed = 0
        self._data: dict[str, np.ndarray] | None = None
        self._keys: list[str] = []
        self._dirty = False

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
        self._dirty = False

    def __contains__(self, key: str) -> bool:
        self._load()
        return key in set(self._keys)

    # -- row access, used for the shared lower-layer cache ---------------------------------
    def rows(self, keys: Sequence[str]) -> dict[str, np.ndarray] | None:
        """The stored arrays of `keys`, or None when any of them is missing."""
        self._load()
        have = {k: i for i, k in enumerate(self._keys)}
        if not keys or any(k not in have for k in keys):
            return None
        idx = np.asarray([have[k] for k in keys], dtype=int)
        return {name: arr[idx] for name, arr in self._data.items()}

    def add(self, keys: Sequence[str], arrays: dict[str, np.ndarray]) -> None:
        """Append rows (those already stored are skipped); saved by flush()."""
        self._load()
        have = set(self._keys)
        keep = []
        for j, k in enumerate(keys):
            if k not in have:
                have.add(k)
                keep.append(j)
        if not keep:
            return
        new = {name: arr[keep] for name, arr in arrays.items()}
        self._data = new if not self._data else {k: np.concatenate([self._data[k], new[k]]) for k in new}
        self._keys += [keys[j] for j in keep]
        self._dirty = True

    def flush(self) -> None:
        if self._dirty:
            self._save()

    def get(self, view: ModelView, keys: Sequence[str], texts: Sequence[str], progress=None) -> Activations:
        self._load()
        have = {k: i for i, k in enumerate(self._keys)}
        missing = [j for j, k in enumerate(keys) if k not in have]
        missing = list(dict.fromkeys(missing))
        if missing:
            seen: set[str] = set()
            todo = [j for j in missing if not (keys[j] in seen or seen.add(keys[j]))]
            t0 = time.perf_counter()
            new = compute(view, view.encode([texts[j] for j in todo]), progress, lower=self.lower,
                          keys=[keys[j] for j in todo])
            if self.lower is not None:
                self.lower.flush()
            self.seconds_computing += time.perf_counter() - t0
            self.n_computed += len(todo)
            self.add([keys[j] for j in todo], new)
            self.flush()
            have = {k: i for i, k in enumerate(self._keys)}
        idx = np.asarray([have[k] for k in keys], dtype=int)
        d = self._data
        return Activations(list(keys), d["answer"][idx], d["mean"][idx], d["margin"][idx], d["n_tokens"][idx])
