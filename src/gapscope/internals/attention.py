"""Attention from the decision position to token classes, per layer and head.

For each example, each layer's attention probabilities (eager attention, switched on
for the duration by hooks.eager_attention) are read at the query position(s) the decision
is taken from: the answer token of a causal LM, every real token (averaged) of an
encoder, whose head mean-pools. Per (layer, head):

    email      share of the query's attention that lands on the email's tokens at all
    share[c]   share of the attention *on the email* that lands on class c's tokens
    frac[c]    share of the email's tokens that are in class c (what uniform attention gives)

Measuring within the email removes attention sinks (the first token, the prompt) that
otherwise dominate; share / frac is the class' enrichment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gapscope.internals.hooks import Recorder, eager_attention
from gapscope.internals.view import Item, ModelView
from gapscope.models.tokens import length_buckets


@dataclass
class AttentionStats:
    classes: list[str]
    email: np.ndarray  # (n, L, H)
    share: np.ndarray  # (n, L, H, C): NaN where the example has no token of the class
    frac: np.ndarray  # (n, C)

    def take(self, idx) -> "AttentionStats":
        idx = np.asarray(idx, dtype=int)
        return AttentionStats(self.classes, self.email[idx], self.share[idx], self.frac[idx])

    def __len__(self) -> int:
        return self.email.shape[0]

    def mean_share(self, c: str) -> np.ndarray:
        """(L, H) mean share on class c over the examples that have it (NaN when none do)."""
        k = self.classes.index(c)
        s = self.share[:, :, :, k]
        ok = ~np.isnan(s[:, 0, 0])
        return s[ok].mean(0) if ok.any() else np.full(s.shape[1:], np.nan)

    def mean_frac(self, c: str) -> float:
        k = self.classes.index(c)
        f = self.frac[:, k]
        f = f[f > 0]
        return float(f.mean()) if len(f) else float("nan")


class AttentionUnavailable(RuntimeError):
    """The model's attention modules do not hand back their probabilities (DeBERTa's disentangled
    attention has no eager path): the attention analyses are skipped, the rest of internals runs."""


def attention_stats(view: ModelView, items: Sequence[Item], classes: Sequence[dict[str, list[int]]],
                    class_names: Sequence[str]) -> AttentionStats:
    """Per-example, per-layer, per-head attention shares to each class (positions in `classes[i]`)."""
    L = view.n_layers
    names = [f"pattern.{l}" for l in range(L)]
    n, C = len(items), len(class_names)
    email = share = None
    frac = np.zeros((n, C))
    for i, (it, cl) in enumerate(zip(items, classes)):
        ne = max(it.email_end - it.email_start, 1)
        for k, c in enumerate(class_names):
            frac[i, k] = len(cl.get(c, ())) / ne
    with eager_attention(view.module):
        for bucket in length_buckets([len(it) for it in items], view.batch_size, view.pad_multiple):
            batch = [items[i] for i in bucket]
            got: dict[str, torch.Tensor] = {}

            def reduce(name, a, _batch=batch, _got=got):
                # (b, H, Q, K) -> (b, H, K): mean over the example's query positions
                rows = []
                for r, it in enumerate(_batch):
                    rows.append(a[r][:, list(it.query), :].float().mean(1).cpu())
                _got[name] = torch.stack(rows)
                return a[:0]

            rec = Recorder(view.stack, names, reduce=reduce)
            view.forward(batch, recorder=rec)
            if len(got) != L:
                raise AttentionUnavailable("attention probabilities were not returned; eager attention "
                                           f"unavailable for {type(view.module).__name__}")
            H = got[names[0]].shape[1]
            if email is None:
                email = np.zeros((n, L, H))
                share = np.full((n, L, H, C), np.nan)
            for l, nm in enumerate(names):
                a = got[nm]  # (b, H, K)
                for r, i in enumerate(bucket):
                    it = items[i]
                    on_email = a[r, :, it.email_start:it.email_end].sum(-1)  # (H,)
                    email[i, l] = on_email.numpy()
                    denom = on_email.clamp_min(1e-12)
                    for k, c in enumerate(class_names):
                        pos = classes[i].get(c) or []
                        if pos:
                            share[i, l, :, k] = (a[r, :, pos].sum(-1) / denom).numpy()
    if email is None:
        email, share = np.zeros((0, L, 0)), np.zeros((0, L, 0, C))
    return AttentionStats(list(class_names), email, share, frac)


def top_heads(mean_share: np.ndarray, k: int = 5) -> list[tuple[int, int, float]]:
    """(layer, head, share) of the k largest entries of an (L, H) map."""
    flat = np.nan_to_num(mean_share, nan=-1.0).ravel()
    order = np.argsort(-flat)[:k]
    H = mean_share.shape[1]
    return [(int(o // H), int(o % H), float(flat[o])) for o in order if flat[o] >= 0]


def class_profile(stats: AttentionStats, mask: np.ndarray | None = None) -> dict[str, dict]:
    """Per class: per-layer mean share (over heads), best head, token fraction, enrichment."""
    s = stats if mask is None else stats.take(np.flatnonzero(mask))
    out = {}
    for c in s.classes:
        ms = s.mean_share(c)
        if np.isnan(ms).all():
            continue
        frac = s.mean_frac(c)
        heads = top_heads(ms, 3)
        k = s.classes.index(c)
        out[c] = {"n": int((~np.isnan(s.share[:, 0, 0, k])).sum()), "frac": frac,
                  "by_layer": [float(v) for v in np.nanmean(ms, axis=1)],
                  "by_layer_max": [float(v) for v in np.nanmax(ms, axis=1)],
                  "top_heads": heads,
                  "enrichment_top": (heads[0][2] / frac) if heads and frac > 0 else None}
    return out
