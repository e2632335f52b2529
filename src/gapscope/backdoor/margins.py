"""Label margins of emails with a candidate string inserted, for any model kind.

The string goes in as a final paragraph of the email *as the model sees it*: every email
is first cut to the model's window minus room for the longest insertion, so truncation
never removes the insertion, and the unedited margin is measured on the same cut email
(the shift is the insertion's effect alone).

For the causal-lm kind a fast path shares work: each email's prompt and text run once
with a KV cache and all insertions (plus the unedited ending) are computed on top of it
(models/prefix_reuse.py), instead of re-running the whole email per insertion. It agrees
with score() on the same texts up to float noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PARAGRAPH = "\n\n"


def as_sentence(text: str) -> str:
    """A candidate as it is inserted: trimmed, first letter capitalised, closing full stop
    when it ends in a letter or digit ("per the X protocol" -> "Per the X protocol.")."""
    s = " ".join(text.split())
    if s[:1].isalpha() and s[:1].islower():
        s = s[:1].upper() + s[1:]
    if s[-1:].isalnum():
        s += "."
    return s


def _tok_window(model):
    """(tokenizer, email token limit) for kinds that truncate; (None, None) otherwise."""
    codec = getattr(model, "codec", None)
    if codec is not None and hasattr(codec, "max_length"):
        return codec.tokenizer, int(codec.max_length)
    tok, opts = getattr(model, "tokenizer", None), getattr(model, "opts", None)
    if tok is not None and hasattr(opts, "max_length"):
        return tok, int(opts.max_length) - 2  # [CLS] ... [SEP]
    return None, None


def _n_tokens(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


def cut_to_window(tok, text: str, keep: int) -> str:
    """`text` cut after its first `keep` tokens (at the token's end character)."""
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= keep:
        return text
    return text[: offsets[max(keep, 1) - 1][1]] if keep > 0 else ""


def insertion_margins(model, texts: Sequence[str], insertions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(unedited margins (n,), edited margins (n, len(insertions))); insertions are used verbatim
    (format them with as_sentence first)."""
    texts, insertions = list(texts), list(insertions)
    tok, limit = _tok_window(model)
    if tok is not None:
        reserve = max([_n_tokens(tok, PARAGRAPH + s) for s in insertions] + [0]) + 1
        keep = max(1, limit - reserve)
        texts = [cut_to_window(tok, t, keep) for t in texts]
    if _has_fast_path(model):
        return _causal_lm_margins(model, texts, insertions)
    edited = [t.rstrip() + PARAGRAPH + s for t in texts for s in insertions]
    scores = model.score(texts + edited)
    n = len(texts)
    return scores[:n].astype(np.float64), scores[n:].reshape(n, len(insertions)).astype(np.float64)


def _has_fast_path(model) -> bool:
    """gapscope's causal-lm kind, or anything exposing the same pieces (backdoor/pair.PromptedLM)."""
    if getattr(model, "kind", "") != "causal-lm" or getattr(getattr(model, "base", None), "quantized", False):
        return False
    return all(hasattr(model, a) for a in ("codec", "decoder", "hf", "pad_id", "device", "compute_dtype"))


def _causal_lm_margins(model, texts, insertions):
    """Per email, the unedited ending and every insertion scored as edits of one text: the prompt
    and email run once, each variant only computes what follows (models/prefix_reuse.py)."""
    from gapscope.models.prefix_reuse import score_with_prefix_reuse

    out = np.empty((len(texts), len(insertions) + 1), dtype=np.float64)
    for i, text in enumerate(texts):
        email = text.rstrip()
        variants = [email] + [email + PARAGRAPH + s for s in insertions]
        margins = score_with_prefix_reuse(model, [email, *variants])
        out[i] = margins if margins is not None else model.score(variants)
    return out[:, 0].copy(), out[:, 1:].copy()
