"""One contract for every attribution method: `attribute(model, text) -> Attribution`.

An Attribution gives each word of the text a share of the model's label margin
(> 0 pushes toward phishing, < 0 toward legitimate). Methods only talk to the model
through `ClassifierModel.score` (the label margin), so every model kind (tf-idf,
encoder, causal LM) is explained the same way and the methods are comparable.

Class hierarchy (Captum style, one module per method):

    Attributor                      attribute(model, text) / attribute_many(model, texts)
      PerturbationAttributor        words are removed; perturbed texts scored in one batch
        OcclusionAttributor         occlusion.py     leave-one-word-out / span occlusion (fast)
        ShapPartitionAttributor     shap_partition.py SHAP Partition explainer, Text masker (reference)
      RelevanceAttributor           relevance.py     conservative gradient x input, one backward (neural kinds)

Perturbed texts reach the model through `score_variants`. A model kind may implement
the optional hook `score_edits(text, variants)` where each variant is a list of
(start, end, replacement) character edits of `text`, sorted by position; a causal LM
can then encode the shared prompt + text prefix once and reuse its KV cache for every
variant (everything before a variant's first edit is unchanged). Without the hook the
variants are materialised as strings and scored with one `model.score` call.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gapscope.attribution.words import Words, apply_edits, split_words

Edits = list[tuple[int, int, str]]


@dataclass
class Attribution:
    """Per-word contributions to one text's label margin."""

    tokens: list[str]          # word segments; "".join(tokens) == text
    weights: np.ndarray        # one float per token: > 0 toward phishing, < 0 toward legitimate
    margin: float              # the model's margin on the full text
    method: str
    base_margin: float | None = None  # margin with every word removed (the empty email), when known
    evals: int = 0             # texts the model scored to produce this attribution
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    # leading words the model reads (a causal LM cuts at its window); None: all of them. The words
    # past it were never part of any perturbed text and carry weight 0.
    in_view: int | None = None

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=np.float64)
        if len(self.weights) != len(self.tokens):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.weights)} weights")

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    def top(self, k: int = 10, direction: int = 0) -> list[tuple[int, str, float]]:
        """The k most important tokens as (index, token, weight): direction +1 phishing only,
        -1 legitimate only, 0 by absolute weight."""
        w = self.weights
        order = np.argsort(-(w * direction) if direction else -np.abs(w), kind="stable")
        # float noise (-1e-17 from a tf-idf difference) is no direction: "toward legitimate -0.000"
        finite = np.abs(w[np.isfinite(w)])
        tiny = 1e-9 * float(finite.max()) if len(finite) else 0.0
        out = []
        for i in order:
            if direction and not w[i] * direction > tiny:  # a NaN weight has no direction either
                break
            if not self.tokens[i].strip():
                continue
            out.append((int(i), self.tokens[i].strip(), float(w[i])))
            if len(out) == k:
                break
        return out

    def to_dict(self, digits: int = 5) -> dict[str, Any]:
        """JSON-able; {"text", "tokens", "weights"} is the evidence shape the report highlights."""
        return {"text": self.text, "tokens": list(self.tokens),
                "weights": [round(float(x), digits) for x in self.weights],
                "margin": round(float(self.margin), digits), "method": self.method,
                "base_margin": None if self.base_margin is None else round(float(self.base_margin), digits),
                "evals": int(self.evals), "seconds": round(float(self.seconds), 4), "params": dict(self.params),
                **({} if self.in_view is None else {"in_view": int(self.in_view)})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Attribution":
        return cls(tokens=list(d["tokens"]), weights=np.asarray(d["weights"], dtype=np.float64),
                   margin=float(d["margin"]), method=d["method"], base_margin=d.get("base_margin"),
                   evals=int(d.get("evals", 0)), seconds=float(d.get("seconds", 0.0)),
                   params=dict(d.get("params") or {}), in_view=d.get("in_view"))


def score_variants(model, text: str, variants: Sequence[Edits]) -> np.ndarray:
    """Margins of `text` under each list of edits, in ONE call to the model.

    Uses the model's optional `score_edits(text, variants)` (e.g. prefix-cache reuse) when it has
    one, else an exact fast path registered for its kind (edit_scorers.py), else `model.score`.
    """
    hook = getattr(model, "score_edits", None)
    if not callable(hook):
        from gapscope.attribution.edit_scorers import edit_scorer

        hook = edit_scorer(model)
    if callable(hook):
        return np.asarray(hook(text, [list(v) for v in variants]), dtype=np.float64)
    return np.asarray(model.score([apply_edits(text, v) for v in variants]), dtype=np.float64)


def score_keeps(model, words: Words, keeps: np.ndarray) -> np.ndarray:
    """Margins of the text with only the words of each row of `keeps` (bool, (m, n_words)) kept."""
    return score_variants(model, words.text, [words.edits(k) for k in keeps])


class Attributor(abc.ABC):
    """An attribution method. Subclasses set `name` and implement `attribute`."""

    name: str = ""

    @abc.abstractmethod
    def attribute(self, model, text: str) -> Attribution:
        """Per-word contributions to `model.score([text])[0]`."""

    def prepare(self, model, texts: Sequence[str]) -> None:
        """Optional: batch work shared by the coming `attribute` calls on these texts."""

    def attribute_many(self, model, texts: Sequence[str],
                       progress: Callable[[int, int], None] | None = None) -> list[Attribution]:
        self.prepare(model, texts)
        out = []
        for i, t in enumerate(texts, 1):
            out.append(self.attribute(model, t))
            if progress:
                progress(i, len(texts))
        return out

    def params(self) -> dict[str, Any]:
        """The settings that change results (part of cache keys)."""
        return {}


class PerturbationAttributor(Attributor):
    """Methods that remove words and read the margin change.

    A model that truncates (a causal LM keeps its first max_length tokens) is explained on the
    words it reads: every perturbed text is cut there. Deleting a word of the full email pulled
    words of the unseen tail into the window, so a "removal" also inserted words (leave-one-out
    weights of the seen words moved by up to 3.3 logits on a tiny model, and the deletion curve
    went up and down), and kept alone the tail would be read, which the email never is."""

    def _timed(self, model, text: str, fn) -> Attribution:
        from gapscope.attribution.window import words_in_view

        t0 = time.perf_counter()
        words = split_words(text)
        if len(words) == 0:
            m = float(model.score([text])[0])
            return Attribution(tokens=words.segments, weights=np.zeros(len(words.segments)), margin=m,
                               method=self.name, base_margin=m, evals=1, params=self.params())
        k = words_in_view(model, words)
        att = fn(words if k == len(words) else split_words(text[:words.ends[k - 1]]))
        if k < len(words):
            if len(att.tokens) != k:
                raise RuntimeError(f"the {k} words in view were cut into {len(att.tokens)}")
            att = Attribution(tokens=words.segments, weights=np.concatenate([att.weights, np.zeros(len(words) - k)]),
                              margin=att.margin, method=att.method, base_margin=att.base_margin, evals=att.evals,
                              in_view=k)
        att.seconds = time.perf_counter() - t0
        att.params = self.params()
        return att

    def view_text(self, model, text: str) -> str:
        """The part of `text` this attributor explains (what `prepare` should see)."""
        from gapscope.attribution.window import words_in_view

        words = split_words(text)
        k = words_in_view(model, words)
        return text if k == len(words) else text[:words.ends[k - 1]]


_METHODS: dict[str, type[Attributor]] = {}


def register_method(name: str) -> Callable[[type[Attributor]], type[Attributor]]:
    def deco(cls: type[Attributor]) -> type[Attributor]:
        cls.name = name
        _METHODS[name] = cls
        return cls

    return deco


def methods() -> dict[str, type[Attributor]]:
    from gapscope.attribution import occlusion, relevance, shap_partition  # noqa: F401  (registers)

    return dict(_METHODS)


def get_method(name: str, **options: Any) -> Attributor:
    from gapscope.errors import GapscopeError

    known = methods()
    if name not in known:
        raise GapscopeError(f"unknown attribution method {name!r} (known: {', '.join(sorted(known))})")
    return known[name](**options)


def attribute(model, text: str, method: str = "occlusion", **options: Any) -> Attribution:
    """Explain one text with the named method."""
    return get_method(method, **options).attribute(model, text)


# -- defaults per model kind ------------------------------------------------------

CHEAP_KINDS = frozenset({"tfidf-lr"})
# Spans per email for neural kinds: one span per 5% of the words the model sees, the resolution
# at which the faithfulness curves (20 steps) read an attribution.
NEURAL_OCCLUSION_EVALS = 20


def is_cheap(model_or_kind) -> bool:
    """Whether scoring costs next to nothing (tf-idf) or a forward pass per text (neural kinds)."""
    kind = model_or_kind if isinstance(model_or_kind, str) else getattr(model_or_kind, "kind", "")
    return kind in CHEAP_KINDS


def default_occlusion_options(model_or_kind) -> dict[str, Any]:
    """Leave-one-word-out for cheap models; for neural ones a bounded number of two-sided span
    occlusions, split within each span by the model's relevance (removal alone, and spans without
    the split, are measurably less faithful there: README, Performance)."""
    if is_cheap(model_or_kind):
        return {}
    return {"max_evals": NEURAL_OCCLUSION_EVALS, "two_sided": True, "refine": "relevance"}
