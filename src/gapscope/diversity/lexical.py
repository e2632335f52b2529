"""Lexical diversity on a common token budget: distinct-n (distinct-1 is the type-token ratio).

Both fall as the sample grows, so every training set is measured on the same number of
tokens: its rows in a seeded random order, concatenated, cut at the budget. `lexical_budget`
gives the budget for several sets: `n_tokens`, or the smallest set's token count when a set
has fewer (as the Vendi scores use the smallest set's size); one set alone with fewer tokens
is measured on all it has, and flagged "short".

Tokens are words of letters and digits of any script (so "vérifiez" or "привет" is one token,
not one per non-ASCII letter) and single punctuation characters; in text of a script written
without spaces (Chinese, Japanese, Thai, ...) each of its characters is a token, as everywhere in
gapscope (a Chinese clause was one token, which no other email repeated).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from gapscope.attribution.words import NO_SPACE_TOKEN_RE, has_no_space_script

TOKEN = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*|\S")  # on ASCII text: [a-z0-9]+(...)* | any other non-space
TOKEN_NS = re.compile(rf"{NO_SPACE_TOKEN_RE}|\S")  # the same, and any other non-space


def token_sample(texts: Sequence[str], n_tokens: int, seed: int = 0) -> list[list[str]]:
    """Per-row token lists (lower-cased), rows in a seeded order, cut at n_tokens in total."""
    order = np.random.default_rng(seed).permutation(len(texts))
    out, total = [], 0
    for i in order:
        toks = [t.lower() for t in (TOKEN_NS if has_no_space_script(texts[i]) else TOKEN).findall(texts[i])]
        if total + len(toks) > n_tokens:
            toks = toks[: n_tokens - total]
        if toks:
            out.append(toks)
        total += len(toks)
        if total >= n_tokens:
            break
    return out


def lexical_budget(sets: Sequence[Sequence[str]], n_tokens: int, seed: int = 0) -> int:
    """The common token budget of several sets: n_tokens, or the fewest tokens any set has."""
    return min((sum(len(r) for r in token_sample(texts, n_tokens, seed)) for texts in sets), default=n_tokens)


def lexical_diversity(texts: Sequence[str], n_tokens: int = 5000, seed: int = 0, ns=(1, 2, 3)) -> dict:
    rows = token_sample(texts, n_tokens, seed)
    total = sum(len(r) for r in rows)
    out = {"tokens": total, "short": total < n_tokens}
    for n in ns:
        grams = [tuple(r[i:i + n]) for r in rows for i in range(len(r) - n + 1)]
        out[f"distinct_{n}"] = (len(set(grams)) / len(grams)) if grams else None
    return out
