"""Frozen-prefix activation cache for causal LMs trained on their top layers only.

When LoRA touches only the top k layers, everything below them is frozen: the
residual stream entering the first trainable layer depends only on the token ids.
It is computed once per text and reused for every epoch, for scoring, and by every
cell of a study that shares the base model and the split point. Entries are kept in
the compute dtype (bfloat16 under autocast) and evicted least-recently-used beyond
a byte budget; the cache can be saved to / loaded from safetensors.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

DEFAULT_MAX_BYTES = 2 << 30


def ids_key(ids: Sequence[int]) -> str:
    # The token ids already encode (prompt, text, max_length, tokenizer).
    return hashlib.blake2b(np.asarray(ids, dtype=np.int64).tobytes(), digest_size=16).hexdigest()


class PrefixCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: str) -> bool:  # no LRU touch, no hit/miss count
        with self._lock:
            return key in self._data

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def get(self, key: str) -> torch.Tensor | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: torch.Tensor) -> None:
        value = value.detach().cpu().contiguous()
        size = value.numel() * value.element_size()
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old.numel() * old.element_size()
            self._data[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._data.popitem(last=False)
                self._bytes -= dropped.numel() * dropped.element_size()

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        with self._lock:
            save_file(dict(self._data), str(path))

    def load(self, path: Path) -> None:
        from safetensors.torch import load_file

        for key, value in load_file(str(path)).items():
            self.put(key, value)


MAX_SHARED_CACHES = 2  # caches of other (base, split) pairs are dropped LRU
_SHARED: OrderedDict[tuple, PrefixCache] = OrderedDict()
_SHARED_LOCK = threading.Lock()


def shared_prefix_cache(key: tuple, max_bytes: int = DEFAULT_MAX_BYTES) -> PrefixCache:
    """The process-wide cache for (base model, split layer, dtype); cells share it."""
    with _SHARED_LOCK:
        cache = _SHARED.get(key)
        if cache is None:
            cache = _SHARED[key] = PrefixCache(max_bytes)
            while len(_SHARED) > MAX_SHARED_CACHES:
                _SHARED.popitem(last=False)
        _SHARED.move_to_end(key)
        return cache


def clear_shared_prefix_caches() -> None:
    with _SHARED_LOCK:
        _SHARED.clear()
