"""Label margins of emails with a candidate string inserted, for any model kind.

The string goes in as a final paragraph of the email *as the model sees it*: every email
is first cut to the model's window minus room for the longest insertion, so truncation
never removes the insertion, and the unedited margin is measured on the same cut email
(the shift is the insertion's effect alone).

For the causal-lm kind a fast path shares work: each email's prompt prefix runs once
with a KV cache and all insertions (plus the unedited ending) are fed on top of it as one
batch, instead of re-running the whole email per insertion. It uses the model's own
prompt codec, autocast dtype and label rows, so it agrees with score() on the same text
up to tokenisation at the paragraph boundary.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch

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


def insertion_margins(model, texts: Sequence[str], insertions: Sequence[str], *,
                      chunk: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(unedited margins (n,), edited margins (n, len(insertions))); insertions are used verbatim
    (format them with as_sentence first)."""
    texts, insertions = list(texts), list(insertions)
    tok, limit = _tok_window(model)
    if tok is not None:
        reserve = max([_n_tokens(tok, PARAGRAPH + s) for s in insertions] + [0]) + 1
        keep = max(1, limit - reserve)
        texts = [cut_to_window(tok, t, keep) for t in texts]
    if _has_fast_path(model):
        return _causal_lm_margins(model, texts, insertions, chunk)
    edited = [t.rstrip() + PARAGRAPH + s for t in texts for s in insertions]
    scores = model.score(texts + edited)
    n = len(texts)
    return scores[:n].astype(np.float64), scores[n:].reshape(n, len(insertions)).astype(np.float64)


def _has_fast_path(model) -> bool:
    """gapscope's causal-lm kind, or anything exposing the same pieces (backdoor/pair.PromptedLM)."""
    if getattr(model, "kind", "") != "causal-lm" or getattr(getattr(model, "base", None), "quantized", False):
        return False
    return all(hasattr(model, a) for a in ("codec", "decoder", "hf", "device", "compute_dtype"))


def _causal_lm_margins(model, texts, insertions, chunk):
    from gapscope.models import lm_forward as lmf
    from gapscope.models.device import autocast
    from gapscope.models.tokens import pad_id_of

    codec, dec, device = model.codec, model.decoder, model.device
    tok = codec.tokenizer
    suffix = list(codec.suffix)
    endings = [list(tok(PARAGRAPH + s, add_special_tokens=False)["input_ids"]) + suffix for s in insertions]
    endings.append(suffix)  # the unedited email
    pad = pad_id_of(tok)
    out = np.empty((len(texts), len(endings)), dtype=np.float64)
    with torch.no_grad(), autocast(device, model.compute_dtype):
        for i, text in enumerate(texts):
            email = codec.email_ids([text.rstrip()])[0]
            prefix = torch.tensor([list(codec.prefix) + email], device=device)
            P = prefix.shape[1]
            cache = dec(input_ids=prefix, use_cache=True).past_key_values
            for start in range(0, len(endings), chunk):
                part = endings[start:start + chunk]
                width = max(len(e) for e in part)
                ids = torch.full((len(part), width), pad, dtype=torch.long)
                mask = torch.zeros((len(part), P + width), dtype=torch.long)
                mask[:, :P] = 1
                for r, e in enumerate(part):
                    ids[r, : len(e)] = torch.tensor(e)
                    mask[r, P:P + len(e)] = 1
                c = copy.deepcopy(cache)
                c.batch_repeat_interleave(len(part))
                pos = (P + torch.arange(width))[None, :].expand(len(part), -1)
                h = dec(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device),
                        past_key_values=c, use_cache=True).last_hidden_state
                last = lmf.gather_last(h, [len(e) for e in part])
                logits = lmf.label_logits(model.hf, last, codec.label_ids)
                out[i, start:start + len(part)] = (logits[:, 1] - logits[:, 0]).double().cpu().numpy()
    return out[:, -1].copy(), out[:, :-1].copy()
