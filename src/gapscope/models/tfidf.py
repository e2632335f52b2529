"""Kind `tfidf-lr`: word 1-2 gram tf-idf + logistic regression, the classic baseline.

Its margin is the decision function (log-odds of phishing). Persistence stores the
vocabulary and idf (JSON + safetensors) and the linear weights (safetensors) and
rebuilds the vectorizer from them; nothing is pickled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from gapscope import option_rules as R
from gapscope.errors import GapscopeError
from gapscope.models.base import ClassifierModel, ModelSpec, ProgressFn, register_model_kind
from gapscope.models.options import choice, parse_options, ranged


@dataclass
class TfidfOptions:
    min_df: int | float = ranged(1, R.count_or_share())  # int: documents, float: fraction of documents
    max_df: float = ranged(1.0, R.share(lo_open=True))
    ngram_max: int = ranged(2, R.whole(1))  # word n-grams 1..ngram_max
    sublinear_tf: bool = True
    lowercase: bool = True
    max_features: int | None = ranged(200_000, R.whole(1))  # bounds memory on large corpora
    C: float = ranged(1.0, R.number(0, lo_open=True))
    solver: str = choice("liblinear", "liblinear", "lbfgs")
    class_weight: str | None = choice(None, None, "balanced")
    max_iter: int = ranged(1000, R.whole(1))


TOKENS = "no-space-characters"  # the tokenizer new models use; saved models name theirs


@register_model_kind("tfidf-lr")
class TfidfLR(ClassifierModel):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.opts = parse_options(TfidfOptions, spec.options, spec.name)
        self.vectorizer = None
        self.coef: np.ndarray | None = None  # (n_features,) float64
        self.intercept = 0.0
        self.tokens = TOKENS

    def _new_vectorizer(self, vocabulary: dict[str, int] | None = None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        from gapscope.attribution.words import RunTokenizer

        o = self.opts
        # sklearn's default tokens, except that no-space scripts are read a character at a time
        # (their n-grams are then character n-grams); "runs": a model saved before that, whose
        # vocabulary holds whole runs ("您的账户已被暂停"), keeps reading text as it was trained
        tokens = {"tokenizer": RunTokenizer(2), "token_pattern": None} if self.tokens == TOKENS else {}
        return TfidfVectorizer(
            ngram_range=(1, o.ngram_max), sublinear_tf=o.sublinear_tf, lowercase=o.lowercase,
            min_df=o.min_df, max_df=o.max_df, max_features=o.max_features, vocabulary=vocabulary,
            dtype=np.float64, **tokens,
        )

    def fit(self, texts: Sequence[str], labels: np.ndarray, *, seed: int = 0,
            progress: ProgressFn | None = None) -> dict[str, Any]:
        import time

        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(labels).astype(int)
        if len(set(labels.tolist())) < 2:
            raise GapscopeError(f"model {self.spec.name!r}: training data has a single class")
        t0 = time.perf_counter()
        self.vectorizer = self._new_vectorizer()
        o = self.opts
        try:
            X = self.vectorizer.fit_transform(list(texts))
        except ValueError as exc:  # e.g. empty vocabulary after min_df pruning
            raise GapscopeError(f"model {self.spec.name!r}: tf-idf on {len(texts)} training rows (min_df = {o.min_df}, "
                                f"max_df = {o.max_df}) kept no term: {exc}") from exc
        clf = LogisticRegression(C=o.C, solver=o.solver, class_weight=o.class_weight,
                                 max_iter=o.max_iter, random_state=seed)
        clf.fit(X, labels)
        # classes_ is sorted, so coef_ points towards label 1 (phishing).
        self.coef = clf.coef_[0].astype(np.float64)
        self.intercept = float(clf.intercept_[0])
        if progress:
            progress(1, 1)
        seconds = time.perf_counter() - t0
        return {"features": int(X.shape[1]), "n": int(X.shape[0]), "seconds": round(seconds, 3),
                "iterations": int(np.max(clf.n_iter_))}

    def _require_fitted(self) -> None:
        if self.vectorizer is None or self.coef is None:
            raise RuntimeError(f"{self.spec.name}: fit() or load() first")

    def score(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        self._require_fitted()
        if len(texts) == 0:  # sklearn refuses an empty batch
            return np.empty(0, dtype=np.float64)
        X = self.vectorizer.transform(list(texts))
        # Same arithmetic as LogisticRegression.decision_function, done here so a
        # reloaded model (no sklearn estimator) gives bit-identical margins.
        margins = np.asarray(X @ self.coef).ravel() + self.intercept
        if progress:
            progress(len(texts), len(texts))
        return margins.astype(np.float64)

    def save(self, directory: Path) -> None:
        self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vocab = self.vectorizer.vocabulary_
        terms = [""] * len(vocab)
        for term, index in vocab.items():
            terms[index] = term
        save_file({"idf": np.ascontiguousarray(self.vectorizer.idf_, dtype=np.float64),
                   "coef": np.ascontiguousarray(self.coef),
                   "intercept": np.array([self.intercept], dtype=np.float64)},
                  str(directory / "tfidf_lr.safetensors"))
        meta = {"kind": self.kind, "options": asdict(self.opts), "tokens": self.tokens, "terms": terms}
        (directory / "tfidf_lr.json").write_text(json.dumps(meta, ensure_ascii=False))

    def load(self, directory: Path) -> None:
        from gapscope.study.artifacts import read_json, read_tensors

        directory = Path(directory)
        meta = read_json(directory / "tfidf_lr.json")
        arrays = read_tensors(directory / "tfidf_lr.safetensors", numpy=True)
        self.opts = TfidfOptions(**meta["options"])
        self.tokens = meta.get("tokens", "runs")  # saved by earlier versions: sklearn's default pattern
        if self.tokens not in (TOKENS, "runs"):
            raise GapscopeError(f"model {self.spec.name!r}: {directory} names an unknown tokenizer {self.tokens!r}")
        self.vectorizer = self._new_vectorizer({t: i for i, t in enumerate(meta["terms"])})
        self.vectorizer.idf_ = arrays["idf"]  # public setter: rebuilds the idf transform
        self.coef = arrays["coef"]
        self.intercept = float(arrays["intercept"][0])

    def tokenize(self, text: str) -> list[str]:
        self._require_fitted()
        return list(self.vectorizer.build_analyzer()(text))

    def feature_weights(self) -> dict[str, float]:
        """Logistic-regression weight per tf-idf feature (> 0 pushes towards phishing)."""
        self._require_fitted()
        return {t: float(self.coef[i]) for t, i in self.vectorizer.vocabulary_.items()}
