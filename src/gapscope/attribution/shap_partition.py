"""SHAP Partition explainer over words: the reference method (slow, principled).

shap.PartitionExplainer computes Owen values over shap's hierarchical clustering of
the words, with `max_evals` model evaluations per email (500 by default), explaining
the label margin directly (identity link). The masker is shap.maskers.Text over the
same word cutter as occlusion (ShapWordTokenizer) with output_type="token_ids": the
explained function receives which words are kept and rebuilds the text with
Words.compose, so masking is deletion, exactly as in occlusion and in the
faithfulness curves (shap's string output would also collapse every newline).
"""

from __future__ import annotations

import numpy as np

from gapscope.attribution.base import Attribution, PerturbationAttributor, register_method, score_keeps
from gapscope.attribution.edit_scorers import repeated_calls
from gapscope.attribution.words import ShapWordTokenizer, Words

_MASK_ID = -1


@register_method("shap")
class ShapPartitionAttributor(PerturbationAttributor):
    def __init__(self, max_evals: int = 500, batch_size: int = 64):
        self.max_evals = int(max_evals)
        self.batch_size = int(batch_size)

    def params(self) -> dict:
        # the batch size changes which coalitions Partition evaluates (up to 20% of the largest
        # weight between 16 and 64 on one email), so it is part of the result's key
        return {"max_evals": self.max_evals, "batch_size": self.batch_size}

    def attribute(self, model, text: str) -> Attribution:
        return self._timed(model, text, lambda words: self._attribute(model, words))

    def _attribute(self, model, words: Words) -> Attribution:
        import shap

        n = len(words)
        if n == 1:  # shap's partition tree needs two words; one word's Shapley value is exact
            full, empty = score_keeps(model, words, np.array([[True], [False]]))
            return Attribution(tokens=words.segments, weights=np.array([full - empty]), margin=float(full),
                               method=self.name, base_margin=float(empty), evals=2)
        calls = {"evals": 0}

        def f(ids: np.ndarray) -> np.ndarray:
            ids = np.atleast_2d(np.asarray(ids))
            keeps = ids != _MASK_ID
            calls["evals"] += len(keeps)
            return score_keeps(model, words, keeps)

        masker = shap.maskers.Text(ShapWordTokenizer(), mask_token=_MASK_ID, output_type="token_ids")
        explainer = shap.explainers.Partition(f, masker)
        with repeated_calls(model):  # shap calls f tens of times on the same text
            exp = explainer([words.text], max_evals=self.max_evals, batch_size=self.batch_size, silent=True)
        values = np.asarray(exp.values[0], dtype=np.float64).reshape(-1)
        if len(values) != n:
            raise RuntimeError(f"shap returned {len(values)} values for {n} words")
        base = float(np.asarray(exp.base_values).reshape(-1)[0])
        # shap's own evaluation of the full text is base + sum(values) (efficiency).
        margin = base + float(values.sum())
        return Attribution(tokens=words.segments, weights=values, margin=margin, method=self.name,
                           base_margin=base, evals=calls["evals"])
