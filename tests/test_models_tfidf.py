"""tfidf-lr kind: fit, margins, pickle-free persistence, feature weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gapscope.errors import GapscopeError
from gapscope.models import ModelSpec, create_model
from tests.tiny_models import toy_emails


def make(**options):
    return create_model(ModelSpec("tfidf", "tfidf-lr", None, options))


def test_fit_score_separates():
    texts, y = toy_emails(60)
    m = make()
    log = m.fit(texts, y, seed=0)
    assert log["features"] > 10
    s = m.score(texts)
    assert s.shape == (60,) and s.dtype == np.float64
    assert ((s > 0) == y).mean() == 1.0


@pytest.mark.parametrize("solver", ["liblinear", "lbfgs"])
def test_save_load_roundtrip_without_pickle(tmp_path, solver):
    texts, y = toy_emails(60)
    probe, _ = toy_emails(20, seed=5)
    m = make(solver=solver, C=2.0, min_df=2)
    m.fit(texts, y, seed=0)
    m.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tfidf_lr.json", "tfidf_lr.safetensors"]
    json.loads((tmp_path / "tfidf_lr.json").read_text())
    other = make()
    other.load(tmp_path)
    assert other.opts.C == 2.0 and other.opts.solver == solver
    np.testing.assert_array_equal(other.score(probe), m.score(probe))
    assert other.feature_weights() == m.feature_weights()


def test_margin_equals_sklearn_decision_function():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, y = toy_emails(50)
    m = make()
    m.fit(texts, y, seed=0)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=200_000)
    clf = LogisticRegression(solver="liblinear", random_state=0, max_iter=1000).fit(vec.fit_transform(texts), y)
    np.testing.assert_allclose(m.score(texts), clf.decision_function(vec.transform(texts)), atol=1e-10)


def test_feature_weights_and_tokens():
    texts, y = toy_emails(60)
    m = make()
    m.fit(texts, y)
    w = m.feature_weights()
    assert w["password"] > 0 > w["meeting"]
    toks = m.tokenize("Verify your password")
    assert "verify" in toks and "verify your" in toks  # the analyzer's unigrams and bigrams


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(GapscopeError, match="single class"):
        make().fit(["a b", "c d"], np.array([1, 1]))
    with pytest.raises(GapscopeError, match="solver"):
        make(solver="saga")
    with pytest.raises(GapscopeError, match="unknown option"):
        make(ngrams=3)
    make(max_train=100)  # keys the study runner reads are accepted
    # sklearn's own words ("max_df corresponds to < documents than min_df") said nothing of the data
    with pytest.raises(GapscopeError, match=r"tf-idf on 2 training rows \(min_df = 1000, max_df = 1.0\) kept no term"):
        make(min_df=1000).fit(["a b", "c d"], np.array([1, 0]))
