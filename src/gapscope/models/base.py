"""The one contract every model kind answers, and the registry of kinds.

score() returns the label margin: a real number per text, > 0 leaning phishing.
For a causal LM it is logit("phishing") - logit("legitimate") at the answer
position; for an encoder the head's logit difference; for tf-idf + logistic
regression the decision function. Everything downstream (metrics, attributions,
detectors) only sees margins, so it works the same for every kind.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gapscope.errors import GapscopeError


class UnsupportedByModel(GapscopeError):
    """An analysis asked a model kind for something it does not have (e.g. hidden states of tf-idf)."""


@dataclass
class ModelSpec:
    """A [[models]] entry of the study spec. `options` holds kind-specific settings
    (lora_r, epochs, lr, max_length, batch_size, max_train, ...)."""

    name: str
    kind: str
    source: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


ProgressFn = Callable[[int, int], None]  # (done, total)


class ClassifierModel(abc.ABC):
    """A binary classifier that exposes a label margin and, where it has them, internals."""

    kind: str = ""

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    # -- training and scoring -------------------------------------------------
    @abc.abstractmethod
    def fit(self, texts: Sequence[str], labels: np.ndarray, *, seed: int = 0,
            progress: ProgressFn | None = None) -> dict[str, Any]:
        """Train on (texts, labels in {0,1}). Returns a JSON-able train log."""

    @abc.abstractmethod
    def score(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        """Label margin per text, float64 array of shape (n,). Independent of batching."""

    # -- persistence (safetensors / JSON only: nothing is pickled) -------------
    @abc.abstractmethod
    def save(self, directory: Path) -> None:
        """Write what fit() learned into `directory`."""

    @abc.abstractmethod
    def load(self, directory: Path) -> None:
        """Restore what save() wrote, on top of a freshly constructed model of the same spec."""

    # -- internals for the diagnosis layer (optional per kind) -----------------
    def tokenize(self, text: str) -> list[str]:
        """The model's own tokens for `text` (what attributions are reported over)."""
        raise UnsupportedByModel(f"model kind {self.kind!r} does not expose tokens")

    def hidden_states(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-layer representations: {"answer": (n, layers+1, d), "mean": (n, layers+1, d)}."""
        raise UnsupportedByModel(f"model kind {self.kind!r} does not expose hidden states")

    def close(self) -> None:
        """Free memory (large weights) when a cell is done."""


_KINDS: dict[str, type[ClassifierModel]] = {}


def register_model_kind(name: str) -> Callable[[type[ClassifierModel]], type[ClassifierModel]]:
    def deco(cls: type[ClassifierModel]) -> type[ClassifierModel]:
        cls.kind = name
        _KINDS[name] = cls
        return cls

    return deco


def model_kinds() -> dict[str, type[ClassifierModel]]:
    # Importing the modules registers the built-in kinds.
    from gapscope.models import causal_lm, encoder, tfidf  # noqa: F401

    return dict(_KINDS)


def create_model(spec: ModelSpec) -> ClassifierModel:
    from gapscope.errors import GapscopeError

    kinds = model_kinds()
    if spec.kind not in kinds:
        raise GapscopeError(
            f"model {spec.name!r}: unknown kind {spec.kind!r} (known: {', '.join(sorted(kinds))})"
        )
    return kinds[spec.kind](spec)
