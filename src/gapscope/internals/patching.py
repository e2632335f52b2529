"""Activation patching: one generic routine plus small setters (TransformerLens style).

    run_patched(view, items, {"resid_post.7": replace_at([[12, 13]], values)})

runs the model on `items` with the named activations replaced, and returns margins.
`sweep` builds on it: it records a *source* run (clean: correctly scored, or the variant
carrying a feature) and patches its residual stream into a *target* run (corrupted) at
every (layer, position group), reporting the normalised restoration

    restored = (patched - corrupted) / (clean - corrupted)

1 means the patched positions at that layer carry everything that separates the two runs'
decisions, 0 nothing. Positions of source and target are paired by `align`: the prompt is
aligned from the start, the answer cue from the end, and the email's tokens by matching
token ids (difflib), so pairs of different lengths patch only tokens they share; a
minimal pair of equal length (a feature replaced by as many neutral tokens) is aligned
one to one.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gapscope.internals.hooks import Recorder, Setter
from gapscope.internals.view import Item, ModelView

# -- setters ---------------------------------------------------------------------------


def replace_at(positions: Sequence[Sequence[int] | None], values: Sequence[torch.Tensor | None]) -> Setter:
    """Row r of the batch gets values[r] (P_r, d) written at positions[r]; None rows are untouched."""
    def fn(h: torch.Tensor) -> torch.Tensor:
        out = h.clone()
        for r, (pos, val) in enumerate(zip(positions, values)):
            if pos is None or len(pos) == 0:
                continue
            out[r, list(pos)] = val.to(out.device, out.dtype)
        return out
    return fn


def replace_all(values: torch.Tensor) -> Setter:
    """The whole activation replaced by `values` (same shape)."""
    return lambda h: values.to(h.device, h.dtype).expand_as(h).clone()


def add_at(positions: Sequence[int] | None, vector: torch.Tensor, scale: float = 1.0) -> Setter:
    """Add `scale * vector` at `positions` (every position when None) of every row: steering."""
    def fn(h: torch.Tensor) -> torch.Tensor:
        out = h.clone()
        v = (scale * vector).to(out.device, out.dtype)
        if positions is None:
            out += v
        else:
            out[:, list(positions)] += v
        return out
    return fn


def ablate_at(positions: Sequence[int], mean: torch.Tensor | None = None) -> Setter:
    """Zero (or mean-) ablation of `positions` in every row."""
    def fn(h: torch.Tensor) -> torch.Tensor:
        out = h.clone()
        out[:, list(positions)] = 0.0 if mean is None else mean.to(out.device, out.dtype)
        return out
    return fn


# -- the generic routine ---------------------------------------------------------------


def run_patched(view: ModelView, items: Sequence[Item], setters: dict[str, Setter]) -> np.ndarray:
    """Margins of `items` (one batch) with the named activations replaced by the setters."""
    return view.forward(items, setters=setters).double().numpy()


def record(view: ModelView, item: Item, names: Sequence[str]) -> tuple[float, dict[str, torch.Tensor]]:
    """(margin, {name: (T, d) activation}) of one example."""
    rec = Recorder(view.stack, names, reduce=lambda _n, h: h[0, : len(item)].float().cpu())
    margin = float(view.forward([item], recorder=rec)[0])
    return margin, dict(rec.acts)


# -- positions -------------------------------------------------------------------------


def roles(view: ModelView, item: Item) -> dict[str, list[int]]:
    """Named position groups of one example: prompt / email / cue / answer (causal LM),
    cls / email / sep (encoder)."""
    n = len(item)
    if view.kind == "causal-lm":
        return {"prompt": list(range(0, item.email_start)), "email": list(range(item.email_start, item.email_end)),
                "cue": list(range(item.email_end, n - 1)), "answer": [n - 1]}
    return {"cls": list(range(0, item.email_start)), "email": list(range(item.email_start, item.email_end)),
            "sep": list(range(item.email_end, n))}


def align(source: Item, target: Item, substitution: bool = False) -> dict[int, int]:
    """target position -> source position for the positions the two examples share.
    `substitution`: the target is the source with some tokens replaced by as many others (a
    minimal pair), so equal-length emails align one to one. Two different emails of equal length
    (common where both are cut at the window) share only the tokens they have in common."""
    out: dict[int, int] = {}
    for i in range(min(source.email_start, target.email_start)):  # prompt, from the start
        out[i] = i
    ts, ss = len(target) - target.email_end, len(source) - source.email_end
    for k in range(1, min(ts, ss) + 1):  # cue + answer, from the end
        out[len(target) - k] = len(source) - k
    a = source.ids[source.email_start:source.email_end]
    b = target.ids[target.email_start:target.email_end]
    if a == b:
        for j in range(len(b)):
            out[target.email_start + j] = source.email_start + j
    elif substitution and len(a) == len(b):  # a substitution pair, aligned one to one
        for j in range(len(b)):
            out[target.email_start + j] = source.email_start + j
    else:
        sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        for blk in sm.get_matching_blocks():
            for j in range(blk.size):
                out[target.email_start + blk.b + j] = source.email_start + blk.a + j
    return out


def pair_groups(view: ModelView, source: Item, target: Item, marked: Sequence[int] = (),
                substitution: bool = False) -> dict[str, tuple[list[int], list[int]]]:
    """{group: (target positions, source positions)}. Positions whose token differs between the
    aligned runs, or listed in `marked` (target positions, e.g. a feature's span), form the
    group "edited"; the rest keep their role names."""
    amap = align(source, target, substitution)
    marked = set(marked)
    edited = sorted(t for t, s in amap.items() if source.ids[s] != target.ids[t] or t in marked)
    groups: dict[str, tuple[list[int], list[int]]] = {}
    if edited:
        groups["edited"] = (edited, [amap[t] for t in edited])
    for name, pos in roles(view, target).items():
        keep = [t for t in pos if t in amap and t not in set(edited)]
        if keep:
            groups[name] = (keep, [amap[t] for t in keep])
    return groups


# -- the sweep -------------------------------------------------------------------------


@dataclass
class PatchResult:
    layers: list[int]  # resid_post layer indices patched (-1 = embed)
    groups: list[str]
    clean: float
    corrupted: float
    patched: np.ndarray  # (layers, groups) margins
    n_positions: dict[str, int] = field(default_factory=dict)
    email_tokens: int = 0  # the target's email length: how much of it the "email" group covers

    @property
    def gap(self) -> float:
        return self.clean - self.corrupted

    @property
    def restored(self) -> np.ndarray:
        return (self.patched - self.corrupted) / self.gap if self.gap != 0 else np.full_like(self.patched, np.nan)

    def to_dict(self) -> dict:
        return {"layers": self.layers, "groups": self.groups, "clean": round(self.clean, 4),
                "corrupted": round(self.corrupted, 4), "n_positions": self.n_positions,
                "email_tokens": self.email_tokens,
                "restored": [[None if not np.isfinite(v) else round(float(v), 4) for v in row]
                             for row in self.restored]}


def site_name(layer: int) -> str:
    return "embed" if layer < 0 else f"resid_post.{layer}"


def sweep(view: ModelView, source: Item, target: Item, layers: Sequence[int],
          groups: dict[str, tuple[list[int], list[int]]] | None = None, marked: Sequence[int] = (),
          fast: bool = True, substitution: bool = False) -> PatchResult:
    """Patch the source's residual stream into the target at every (layer, group).

    Variants whose source activations equal the target's at the patched positions (in a
    causal LM, every position before the first edit) cannot change anything and are not
    run: their margin is the corrupted one."""
    groups = groups if groups is not None else pair_groups(view, source, target, marked, substitution)
    names = list(groups)
    layers = list(layers)
    sites = [site_name(l) for l in layers]
    clean, src = record(view, source, sites)
    corrupted, tgt = record(view, target, sites)
    out = np.full((len(layers), len(names)), corrupted)
    variants = []
    for l in layers:
        for g in names:
            tpos, spos = groups[g]
            a, b = src[site_name(l)][spos], tgt[site_name(l)][tpos]
            if not torch.equal(a, b):
                variants.append((l, g))
    if fast and hasattr(view, "run_from"):
        _run_from_layers(view, target, variants, groups, src, tgt, layers, names, out)
        return PatchResult(layers, names, clean, corrupted, out, {g: len(groups[g][0]) for g in names},
                           target.email_end - target.email_start)
    bs = max(2, view.batch_size)
    # Row 0 of every chunk is the unpatched target, so the baseline runs in the same shape.
    per_chunk = bs - 1
    base_seen = False
    for start in range(0, len(variants), per_chunk):
        chunk = variants[start:start + per_chunk]
        rows = [target] * (len(chunk) + 1)
        setters: dict[str, Setter] = {}
        for layer in sorted({l for l, _ in chunk}):
            pos: list[list[int] | None] = [None]
            val: list[torch.Tensor | None] = [None]
            for l, g in chunk:
                if l == layer:
                    tpos, spos = groups[g]
                    pos.append(tpos)
                    val.append(src[site_name(l)][spos])
                else:
                    pos.append(None)
                    val.append(None)
            setters[site_name(layer)] = replace_at(pos, val)
        m = run_patched(view, rows, setters)
        if not base_seen:
            corrupted, base_seen = float(m[0]), True
            out[:] = corrupted
        for (l, g), v in zip(chunk, m[1:]):
            out[layers.index(l), names.index(g)] = v
    return PatchResult(layers, names, clean, corrupted, out, {g: len(groups[g][0]) for g in names},
                           target.email_end - target.email_start)


def _run_from_layers(view, target: Item, variants, groups, src, tgt, layers, names, out) -> None:
    """Decoder fast path: a variant patched at layer l runs only the layers above l, from the
    target's own residual stream with the patched positions overwritten (same numbers as the
    hooked full forward, at a fraction of the cost for late layers)."""
    from gapscope.models.tokens import padded_length

    width = padded_length(len(target), view.pad_multiple)
    bs = max(1, view.batch_size)
    for layer in layers:
        mine = [g for l, g in variants if l == layer]
        for start in range(0, len(mine), bs):
            chunk = mine[start:start + bs]
            base = tgt[site_name(layer)]
            h = torch.zeros((len(chunk), width, base.shape[-1]), dtype=base.dtype)
            for r, g in enumerate(chunk):
                tpos, spos = groups[g]
                h[r, : len(target)] = base
                h[r, tpos] = src[site_name(layer)][spos]
            m = view.run_from(layer, h, [target] * len(chunk))
            for g, v in zip(chunk, m.double().numpy()):
                out[layers.index(layer), names.index(g)] = v


def neutral_variant(view: ModelView, item: Item, positions: Sequence[int], filler: str = " .") -> Item:
    """The same example with `positions` overwritten by a neutral filler token: a minimal pair
    of equal length, so every other position lines up one to one."""
    fid = view.tokenizer(filler, add_special_tokens=False)["input_ids"]
    fid = fid[-1] if fid else 0
    ids = list(item.ids)
    for p in positions:
        ids[p] = fid
    return Item(tuple(ids), item.email_start, item.email_end, item.query, item.offsets, item.text)
