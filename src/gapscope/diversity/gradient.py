"""Gradient diversity (G-Vendi style): the Vendi score of projected per-example loss
gradients of a small proxy model.

Proxy: tf-idf (word 1-2 grams; a no-space script's characters are its words) + logistic regression,
fitted once on the union of the sets being compared, so every set is measured in the same gradient
space. For a row
(x, y) the log-loss gradient with respect to (w, b) is (p - y) * [x, 1]; it is randomly
projected (seeded Gaussian, `dim` columns), L2-normalised, and the set's Vendi score is
taken over those vectors: how many distinct directions the set would push the proxy in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gapscope.diversity.vendi import vendi_score


class GradientProxy:
    def __init__(self, texts: Sequence[str], labels: Sequence[int], *, dim: int = 256, seed: int = 0,
                 max_features: int = 20_000):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        from gapscope.attribution.words import RunTokenizer

        # sklearn's default tokens, except a no-space script's characters one by one (as the tfidf-lr kind)
        self.vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=max_features,
                                   dtype=np.float64, tokenizer=RunTokenizer(2), token_pattern=None)
        X = self.vec.fit_transform(list(texts))
        y = np.asarray(labels).astype(int)
        self.clf = LogisticRegression(C=1.0, solver="liblinear", random_state=seed)
        if len(set(y.tolist())) < 2:
            raise ValueError("the proxy needs both labels")
        self.clf.fit(X, y)
        rng = np.random.default_rng([seed, 4242])
        self.R = rng.standard_normal((X.shape[1] + 1, dim)) / np.sqrt(dim)

    def projected_gradients(self, texts: Sequence[str], labels: Sequence[int]) -> np.ndarray:
        X = self.vec.transform(list(texts))
        y = np.asarray(labels).astype(float)
        r = self.clf.predict_proba(X)[:, 1] - y  # dL/dlogit of the log-loss
        G = X @ self.R[:-1] + self.R[-1][None, :]
        return np.asarray(G) * r[:, None]

    def vendi(self, texts: Sequence[str], labels: Sequence[int]) -> float:
        return vendi_score(self.projected_gradients(texts, labels))
