"""What part of an email a model reads: a causal LM cuts the tokens at its window.

Edits and attributions past the cut are not evidence (the model never saw those words), so
minimal pairs and corpus-level attributions both ask for the characters in view.
"""

from __future__ import annotations


def model_tokens(model):
    """text -> the tokens the model reads (after its truncation), or None where it exposes none."""
    from gapscope.models.base import UnsupportedByModel

    tokenize = getattr(model, "tokenize", None)  # optional in the model contract

    def tokens(text: str):
        if not callable(tokenize):
            return None
        try:
            return tokenize(text)
        except UnsupportedByModel:
            return None

    return tokens


def visible_end(tokens, text: str) -> int | None:
    """How many characters of `text` a model that truncates reads (the shortest prefix with the
    same tokens), or None when it reads the whole text (or exposes no tokens)."""
    full = tokens(text)
    body = text.rstrip()
    if full is None or not body or tokens(body[:-1]) != full:
        return None  # the last character is in view
    lo, hi = 0, len(body) - 1
    while lo < hi:  # the prefix's tokens grow with it up to the window, then stay
        mid = (lo + hi) // 2
        if tokens(text[:mid]) == full:
            hi = mid
        else:
            lo = mid + 1
    return lo


def words_in_view(model, words) -> int:
    """How many leading words of `words` (attribution.words.Words) the model reads: all of them
    where it does not truncate or exposes no tokens; else the words that start before its cut (a
    word the window cuts through counts: the model reads its first tokens)."""
    from gapscope.attribution.base import is_cheap

    if not len(words) or is_cheap(model):
        return len(words)
    end = visible_end(model_tokens(model), words.text)
    if end is None:
        return len(words)
    return max(1, sum(1 for s in words.starts if s < end))
