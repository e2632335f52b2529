"""Conservative relevance: one forward and one backward pass per email, summed per word.

The model computes, for each token it sees, embedding . gradient of the margin under the
conservative propagation rules (models/linearized.py: attention probabilities, norm scales
and activation ratios held constant, gated products split evenly). Along that backward pass
the network is linear in its input, so the token relevances add up to the margin, less what
the prompt around the email carries (`base_margin` here). A word's weight is the sum over its
tokens; words past the model's truncation get 0 (the model never saw them).

Cost: about three forward passes' worth of compute per email, batched by length, against
hundreds of perturbed forwards for SHAP; faithfulness is measured, not assumed
(`gapscope bench attribution`, README).

Needs a model that exposes `token_relevance(texts)` (the causal-lm and encoder kinds).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence

import numpy as np

from gapscope.attribution.base import Attribution, Attributor, register_method
from gapscope.attribution.window import words_in_view
from gapscope.attribution.words import Words, split_words
from gapscope.errors import GapscopeError

CHUNK = 16  # emails per call: progress granularity (the model batches by length inside)


def supports(model) -> bool:
    return callable(getattr(model, "token_relevance", None))


def word_weights(words: Words, spans: Sequence[tuple[int, int]], relevance: np.ndarray) -> np.ndarray:
    """Token relevances summed into the word segment holding each token's last non-space character."""
    weights = np.zeros(len(words))
    if not len(words):
        return weights
    bounds = [0, *words.starts[1:]]
    text = words.text
    for (s, e), r in zip(spans, relevance):
        if e <= s:
            continue
        p = e - 1
        while p > s and text[p].isspace():
            p -= 1
        weights[max(0, bisect.bisect_right(bounds, p) - 1)] += float(r)
    return weights


@register_method("relevance")
class RelevanceAttributor(Attributor):
    def params(self) -> dict:
        return {"rules": "conservative"}

    def attribute(self, model, text: str) -> Attribution:
        return self.attribute_many(model, [text])[0]

    def attribute_many(self, model, texts: Sequence[str],
                       progress: Callable[[int, int], None] | None = None) -> list[Attribution]:
        if not supports(model):
            raise GapscopeError(f"attribution method 'relevance' needs a neural model with gradients "
                                f"(causal-lm, encoder); {getattr(model, 'kind', type(model).__name__)} has none: "
                                f"use occlusion")
        out: list[Attribution] = []
        for lo in range(0, len(texts), CHUNK):
            chunk = list(texts[lo:lo + CHUNK])
            t0 = time.perf_counter()
            rels = model.token_relevance(chunk)
            per = (time.perf_counter() - t0) / max(1, len(chunk))
            for text, tr in zip(chunk, rels):
                words = split_words(text)
                weights = word_weights(words, tr.spans, tr.relevance)
                segs = words.segments
                if not len(words):
                    weights = np.zeros(len(segs))
                # the words the model reads, as the perturbation methods say it, so faithfulness scores
                # every method over the same words (past the window relevance is 0 anyway)
                k = words_in_view(model, words)
                weights[k:] = 0.0
                out.append(Attribution(tokens=segs, weights=weights, margin=tr.margin, method=self.name,
                                       base_margin=tr.rest, evals=1, seconds=per, params=self.params(),
                                       in_view=k if k < len(words) else None))
            if progress:
                progress(len(out), len(texts))
        return out
