"""Score many edited copies of one text with a causal LM, reusing the KV cache of what they share.

Every variant of an attribution or faithfulness run is the same prompt with some words of
the email removed. In a causal LM the keys and values of a token depend only on the tokens
before it, so a variant's tokens up to its first difference from the full text are exactly
the full text's: the full text is run once with the KV cache on, and each variant only
computes its own tail, from its longest common token prefix with the full text onward
(at least its last token, where the answer is read). The instruction prefix is shared by
every variant, so even a one-word email costs a handful of tokens.

Variants are batched by the span they recompute (plan_batches); a batch starts at the
smallest shared prefix of its rows (rows sharing more recompute a few tokens: same margins).
Tails are right-padded, so real tokens never attend to padding.

Margins agree with `model.score` on the materialised texts up to float noise: within 1e-4 in
float32; under bfloat16 autocast the matmul shapes differ and a margin can move by ~0.1.
The unedited text's margin is exactly `model.score`'s (its forward is padded the same way).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from gapscope.models import lm_forward as lmf
from gapscope.models.tokens import pad_right

# Tokens recomputed per batch (padded tail length x rows): big enough to keep matmuls efficient,
# small enough to bound the attention buffers of one batch.
TOKENS_PER_BATCH = 2048
MAX_ROWS = 64
# Positions per batch including the reused prefix (rows x (prefix + tail)): each row gets its own
# copy of the prefix's keys and values, so this bounds that memory (SmolLM2: ~46 KB per position).
CONTEXT_PER_BATCH = 4096
SECOND_ANCHOR_FROM = 8  # variants
# The fixed cost of one forward call, in tokens of a large batch: per-layer Python and kernel
# dispatch that a call pays whatever its size. Measured on the 2-core CPU with SmolLM2 (30
# layers): t = 38 ms + 0.31 ms x tokens, so a 5-token call costs what ~120 batched tokens do
# (on a GPU the fixed part likely weighs more; not measured). A batch may pad this many tokens
# more than `waste` allows before a separate call is cheaper; a second anchor must save more.
CALL_TOKENS = 96


# The unedited text's forward (margin and KV cache) per (model, tokens), kept across calls inside
# keep_anchors(); None outside it.
_ANCHORS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("gapscope_prefix_anchors", default=None)


@contextlib.contextmanager
def keep_anchors() -> Iterator[None]:
    """Inside this block the unedited text's forward is run once, not once per call: SHAP's
    Partition explainer asks for its coalitions in tens of calls per email, and each call re-ran
    the full email as its anchor (about 13% of SHAP's time on SmolLM2). Scoped to one explanation,
    so the model cannot change under a kept cache; the margins are the same computation's."""
    token = _ANCHORS.set({})
    try:
        yield
    finally:
        _ANCHORS.reset(token)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plan_batches(starts: Sequence[int], lengths: Sequence[int], tokens: int = TOKENS_PER_BATCH,
                 max_rows: int = MAX_ROWS, waste: float = 1.25, context: int = CONTEXT_PER_BATCH,
                 call_tokens: int = CALL_TOKENS) -> list[list[int]]:
    """Variant indices grouped into batches that waste little compute.

    Row i needs positions [starts[i], lengths[i]); a batch computes rows x [lo, lo + width)
    with lo its smallest start. Rows are taken in order of tail length (then start), so
    neighbours need similar spans, and a batch is closed when it would exceed `tokens`,
    `max_rows`, `context` positions (prefix included), or compute more than `waste` x the tokens
    its rows need plus `call_tokens` (the fixed cost of the call a new batch would add)."""
    order = sorted(range(len(starts)), key=lambda i: (lengths[i] - starts[i], -starts[i]))
    batches: list[list[int]] = []
    cur: list[int] = []
    lo = width = useful = 0
    for i in order:
        tail = lengths[i] - starts[i]
        if cur:
            lo2 = min(lo, starts[i])
            width2 = max(lengths[i], lo + width) - lo2
            cost = (len(cur) + 1) * width2
            if len(cur) + 1 > max_rows or cost > tokens or cost > waste * (useful + tail) + call_tokens or \
                    (len(cur) + 1) * (lo2 + width2) > context:
                batches.append(cur)
                cur = []
        if not cur:
            lo, width, useful = starts[i], tail, 0
        else:
            new_lo = min(lo, starts[i])
            width = max(lengths[i], lo + width) - new_lo
            lo = new_lo
        cur.append(i)
        useful += tail
    if cur:
        batches.append(cur)
    return batches


def cache_is_reusable(cache, model, length: int) -> bool:
    """Whether `cache` holds every position of a `length`-token sequence and can be cut back:
    a sliding-window layer keeps only its last `sliding_window` positions, so a longer text
    is scored plainly."""
    if not all(hasattr(cache, m) for m in ("crop", "batch_repeat_interleave")):
        return False
    if any(getattr(cache, "is_sliding", None) or []):
        config = model.hf.config.get_text_config() if hasattr(model.hf.config, "get_text_config") else model.hf.config
        window = getattr(config, "sliding_window", None)
        if not window or length > int(window):
            return False
    return True


@torch.no_grad()
def score_with_prefix_reuse(model, texts: Sequence[str]) -> np.ndarray | None:
    """Margins of texts[1:], reusing the KV cache of texts[0] (the unedited text); None when
    the model's cache cannot be cropped (the caller then scores the texts plainly).

    With many variants the shortest one may be a second anchor: variants that keep a superset of
    its few words (the nested keeps of an insertion curve) share more with it than with the full
    text. It is used only when that saves more than its own forward costs (`_anchor_saves`)."""
    seqs = [list(e.ids) for e in model.codec.encode(list(texts))]
    anchors = [0]
    shared = {0: [common_prefix(seqs[0], s) for s in seqs]}  # per anchor: each variant's shared prefix
    if len(seqs) > SECOND_ANCHOR_FROM:
        shortest = 1 + int(np.argmin([len(s) for s in seqs[1:]]))
        if len(seqs[shortest]) < len(seqs[0]) // 2:
            shared[shortest] = [common_prefix(seqs[shortest], s) for s in seqs]
            if _anchor_saves(shared[0], shared[shortest], len(seqs[shortest])):
                anchors.append(shortest)
    margins = np.empty(len(seqs), dtype=np.float64)
    caches = {}
    pad = int(getattr(getattr(model, "opts", None), "pad_multiple", 1) or 1)
    kept = _ANCHORS.get()
    for a in anchors:
        key = (id(model), pad, tuple(seqs[a]))
        if kept is not None and key in kept:
            margins[a], caches[a] = kept[key]
            continue
        # padded to its length bucket as model.score pads it, so the anchor's margin is model.score's
        ids, mask = pad_right([seqs[a]], model.pad_id, pad)
        h, caches[a] = _forward(model, ids, mask)
        if not cache_is_reusable(caches[a], model, ids.shape[1]):
            return None
        margins[a] = lmf.label_margins(model.hf, h, [len(seqs[a])], model.codec.label_ids)[0]
        if kept is not None and a == 0:  # only the unedited text recurs across calls
            kept[key] = (margins[a], caches[a])
    same = {}  # variants whose tokens equal an anchor's (e.g. an edit past the truncation) or each other's
    for i in range(1, len(seqs)):
        same.setdefault(tuple(seqs[i]), i)
    for a in anchors:
        same[tuple(seqs[a])] = a
    groups: dict[int, tuple[list[int], list[int], list[int]]] = {a: ([], [], []) for a in anchors}
    for i in range(1, len(seqs)):
        if i in caches or same[tuple(seqs[i])] != i:
            continue
        common = [shared[a][i] for a in anchors]
        a = anchors[int(np.argmax(common))]
        rows, starts, lengths = groups[a]
        rows.append(i)
        starts.append(min(max(common), len(seqs[i]) - 1))  # the answer token is always recomputed
        lengths.append(len(seqs[i]))
    for a, (rows, starts, lengths) in groups.items():
        for batch in plan_batches(starts, lengths):
            lo = min(starts[j] for j in batch)
            tails = [seqs[rows[j]][lo:] for j in batch]
            width = max(len(t) for t in tails)
            ids = torch.full((len(batch), width), model.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), lo + width), dtype=torch.long)
            mask[:, :lo] = 1
            for r, t in enumerate(tails):
                ids[r, : len(t)] = torch.tensor(t, dtype=torch.long)
                mask[r, lo: lo + len(t)] = 1
            past = copy.deepcopy(caches[a])
            # transformers >= 5 crops by a negative count of tokens to drop (padding included)
            past.crop(lo - past.get_seq_length())
            past.batch_repeat_interleave(len(batch))
            h, _ = _forward(model, ids, mask, past)
            margins[[rows[j] for j in batch]] = lmf.label_margins(model.hf, h, [len(t) for t in tails],
                                                                 model.codec.label_ids)
    for i in range(1, len(seqs)):
        margins[i] = margins[same[tuple(seqs[i])]]
    return margins[1:]


def _anchor_saves(with_full: Sequence[int], with_anchor: Sequence[int], anchor_length: int) -> bool:
    """Whether a second anchor saves more tokens than its own forward costs, from each text's
    shared prefix with the full text (first entry: the full text itself) and with the anchor:
    only the variants that share more with the anchor gain."""
    saved = sum(max(0, b - a) for a, b in zip(with_full[1:], with_anchor[1:]))
    return saved > anchor_length + CALL_TOKENS


def _forward(model, ids: torch.Tensor, mask: torch.Tensor, past=None):
    with model.inference_context():
        out = model.decoder(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                            past_key_values=past, use_cache=True)
    return out.last_hidden_state, out.past_key_values
