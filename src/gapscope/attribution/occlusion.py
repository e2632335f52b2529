"""Occlusion: remove a word (or a span of words) and read how much the margin moves.

Weight of word j = mean over the windows w covering j of (margin(text) - margin(text without w)) / |w|.
With window = stride = 1 this is leave-one-word-out: each word's weight is exactly how much
the margin falls when that word alone is deleted. With a budget (`max_evals`) longer emails
are cut into contiguous spans of ceil(n_words / max_evals) words, each span's drop shared
evenly by its words (span occlusion): faithful at the span's resolution, and the cost is
bounded whatever the email's length.

All perturbed texts of one email (the full text, the empty text and every window) go to
the model in ONE `score_variants` call, ordered by the window's position. Variant k
leaves text[:start of window k] untouched, so a prefix-caching scorer (the optional
`score_edits` hook, see base.py) can reuse the KV cache of the prompt and text prefix.
"""

from __future__ import annotations

import math

import numpy as np

from gapscope.attribution.base import Attribution, PerturbationAttributor, register_method, score_keeps
from gapscope.attribution.words import Words


def windows(n: int, window: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) word windows covering 0..n-1 (the last one clipped), by position."""
    out = []
    start = 0
    while start < n:
        out.append((start, min(n, start + window)))
        if start + window >= n:
            break
        start += stride
    return out


@register_method("occlusion")
class OcclusionAttributor(PerturbationAttributor):
    def __init__(self, window: int = 1, stride: int | None = None, max_evals: int | None = None):
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = int(window)
        self.stride = int(stride) if stride else self.window
        self.max_evals = int(max_evals) if max_evals else None

    def params(self) -> dict:
        return {"window": self.window, "stride": self.stride, "max_evals": self.max_evals}

    def plan(self, n_words: int) -> list[tuple[int, int]]:
        window, stride = self.window, self.stride
        if self.max_evals and math.ceil(n_words / stride) > self.max_evals:
            stride = math.ceil(n_words / self.max_evals)
            window = max(window, stride)
        return windows(n_words, window, stride)

    def attribute(self, model, text: str) -> Attribution:
        return self._timed(model, text, lambda words: self._attribute(model, words))

    def _attribute(self, model, words: Words) -> Attribution:
        n = len(words)
        plan = self.plan(n)
        keeps = np.ones((len(plan) + 2, n), dtype=bool)
        keeps[1] = False  # the empty email: the baseline every removal moves toward
        for k, (s, e) in enumerate(plan, start=2):
            keeps[k, s:e] = False
        margins = score_keeps(model, words, keeps)
        full, empty = float(margins[0]), float(margins[1])
        total = np.zeros(n)
        count = np.zeros(n)
        for (s, e), m in zip(plan, margins[2:]):
            total[s:e] += (full - m) / (e - s)
            count[s:e] += 1
        weights = total / np.maximum(count, 1)
        return Attribution(tokens=words.segments, weights=weights, margin=full, method=self.name,
                           base_margin=empty, evals=len(keeps))
