"""Occlusion: remove a word (or a span of words) and read how much the margin moves.

Weight of word j = mean over the windows w covering j of (margin(text) - margin(text without w)) / |w|.
With window = stride = 1 this is leave-one-word-out: each word's weight is exactly how much
the margin falls when that word alone is deleted. With a budget (`max_evals`: spans, not model
evaluations: the full and empty email add two, and two-sided occlusion keeps each span alone
too, about twice as many) longer emails
are cut into contiguous spans of ceil(n_words / max_evals) words, each span's drop shared
evenly by its words (span occlusion): faithful at the span's resolution, and the cost is
bounded whatever the email's length.

Models that truncate their input (a causal LM keeps its first max_length tokens) ignore
the tail of a long email: the budget is spent on the words the model reads, and every
perturbed text is cut there (PerturbationAttributor), so the tail gets weight 0.

Two-sided (`two_sided=True`, the default for neural kinds): a window's value is the mean of
its drop (margin(text) - margin(text without w)) and its gain (margin(w alone) -
margin(empty email)): its marginal contribution at the two extreme coalitions, the first
and last terms of its Shapley average. Removal alone misses redundant evidence (two
phishing cues that each suffice: deleting either moves nothing); the gain sees each cue
on its own. A window kept alone is a short text, so the gain side costs little
(measured with `gapscope bench attribution`, see the README).

Refined by relevance (`refine="relevance"`, the default for neural kinds): a span's total is
what occlusion measured, and it is split among the span's words by the model's conservative
token relevance (attribution/relevance.py: one extra forward and backward): word j of span w
gets value(w) / |w| + (r_j - mean of r over w). Span occlusion alone ties every word of a span,
so the top 5% of words are picked in text order inside the best span; the relevance orders
them without changing any span's measured total.

All perturbed texts of one email (the full text, the empty text and every window) go to
the model in ONE `score_variants` call, ordered by the window's position. Variant k
leaves text[:start of window k] untouched, so a prefix-caching scorer (the optional
`score_edits` hook, see base.py) can reuse the KV cache of the prompt and text prefix.
"""

from __future__ import annotations

import math

import numpy as np

from gapscope.attribution.base import Attribution, PerturbationAttributor, register_method, score_variants
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


MAX_WINDOWS = 1000


@register_method("occlusion")
class OcclusionAttributor(PerturbationAttributor):
    def __init__(self, window: int = 1, stride: int | None = None, max_evals: int | None = None,
                 two_sided: bool = False, refine: str | None = None):
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = int(window)
        self.stride = int(stride) if stride else self.window
        self.max_evals = int(max_evals) if max_evals else None
        self.two_sided = bool(two_sided)
        if refine not in (None, "relevance"):
            raise ValueError(f"refine must be None or 'relevance', not {refine!r}")
        self.refine = refine
        self._prepared: dict = {}  # text -> token relevance, filled by prepare()

    def params(self) -> dict:
        p = {"window": self.window, "stride": self.stride, "max_evals": self.max_evals,
             "two_sided": self.two_sided}
        if self.refine:
            p["refine"] = self.refine
        return p

    def plan(self, n_words: int, budget_offset: int = 0) -> list[tuple[int, int]]:
        window, stride = self.window, self.stride
        # without a budget: one window per word up to MAX_WINDOWS words, spans beyond, so a
        # megabyte-long row costs seconds rather than hours (and memory linear in its length)
        budget = max(1, (self.max_evals or MAX_WINDOWS) - budget_offset)
        if math.ceil(n_words / stride) > budget:
            stride = math.ceil(n_words / budget)
            window = max(window, stride)
        return windows(n_words, window, stride)

    def attribute(self, model, text: str) -> Attribution:
        return self._timed(model, text, lambda words: self._attribute(model, words))

    def _attribute(self, model, words: Words) -> Attribution:
        n = len(words)  # the words in view (PerturbationAttributor cuts the rest)
        plan = self.plan(n)
        # the full email, the empty email (the baseline every removal moves toward), each window
        variants = [[], words.range_edits([(0, n)])] + [words.range_edits([(s, e)]) for s, e in plan]
        # each window alone (two-sided): its gain over the empty email
        alone = plan if self.two_sided else []
        variants += [words.range_edits([r for r in ((0, s), (e, n)) if r[1] > r[0]]) for s, e in alone]
        margins = score_variants(model, words.text, variants)
        full, empty = float(margins[0]), float(margins[1])
        values = full - margins[2:2 + len(plan)]
        if alone:
            gains = margins[2 + len(plan):] - empty
            values[:len(alone)] = 0.5 * (values[:len(alone)] + gains)
        rel = self._relevance(model, words)
        total = np.zeros(n)
        count = np.zeros(n)
        for (s, e), v in zip(plan, values):
            total[s:e] += v / (e - s)
            if rel is not None:
                total[s:e] += rel[s:e] - rel[s:e].mean()
            count[s:e] += 1
        weights = total / np.maximum(count, 1)
        return Attribution(tokens=words.segments, weights=weights, margin=full, method=self.name,
                           base_margin=empty, evals=len(variants) + (rel is not None))

    def prepare(self, model, texts) -> None:
        """Relevance of every text in one batched call (the model groups them by length)."""
        from gapscope.attribution import relevance

        self._prepared = {}
        if self.refine == "relevance" and relevance.supports(model) and texts:
            unique = list(dict.fromkeys(self.view_text(model, t) for t in texts))
            self._prepared = dict(zip(unique, model.token_relevance(unique)))

    def _relevance(self, model, words: Words) -> np.ndarray | None:
        """Per-word conservative relevance when refining (None when off or the model has no gradients)."""
        from gapscope.attribution import relevance

        if self.refine != "relevance" or not relevance.supports(model):
            return None
        tr = self._prepared.pop(words.text, None)
        if tr is None:
            (tr,) = model.token_relevance([words.text])
        return relevance.word_weights(words, tr.spans, tr.relevance)
