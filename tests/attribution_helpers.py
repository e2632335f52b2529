"""Small stand-in models for the attribution tests (fast, deterministic)."""

from __future__ import annotations

import numpy as np

from gapscope.models.base import ModelSpec


def make_tfidf(texts, labels, **options):
    """A fitted gapscope tfidf-lr model."""
    from gapscope.models.base import create_model

    m = create_model(ModelSpec(name="tfidf", kind="tfidf-lr", options=options))
    m.fit(list(texts), np.asarray(labels))
    return m


class BagModel:
    """margin = bias + sum of per-word weights (lower-cased word cores): additive, so the
    exact attribution of every word is known."""

    kind = "bag"

    def __init__(self, weights: dict[str, float], bias: float = 0.0):
        self.weights = weights
        self.bias = bias
        self.calls = 0
        self.scored = 0

    def score(self, texts, progress=None):
        from gapscope.attribution.words import split_words

        self.calls += 1
        self.scored += len(texts)
        return np.array([self.bias + sum(self.weights.get(c.lower(), 0.0) for c in split_words(t).cores)
                         for t in texts], dtype=np.float64)


def toy_corpus(n=200, seed=0):
    rng = np.random.default_rng(seed)
    phish = ["verify", "account", "suspended", "urgent", "click", "password", "login"]
    legit = ["meeting", "agenda", "lunch", "report", "thanks", "schedule", "project"]
    filler = ["the", "a", "your", "please", "today", "we", "team", "email", "note", "update"]
    texts, labels = [], []
    for i in range(n):
        y = int(i % 2)
        pool = phish if y else legit
        words = list(rng.choice(filler, 12)) + list(rng.choice(pool, 4))
        rng.shuffle(words)
        texts.append("Subject: " + " ".join(words[:4]) + "\n\n" + " ".join(words[4:]) + ".")
        labels.append(y)
    return texts, np.array(labels)
