"""Review fixes of the model layer: margins that match the model's own forward (Granite, Cohere),
bounded fit() memory, float32 masters for full fine-tuning, LoRA targets that match nothing,
LoRA kept off a multimodal model's vision tower, empty inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gapscope.errors import GapscopeError
from gapscope.models import ModelSpec, create_model
from tests.tiny_models import (  # noqa: F401  (fixtures)
    fresh_model_caches, tiny_bert_dir, tiny_causal_lm_dir, tiny_llama_dir, tiny_model_root, tiny_tokenizer,
    toy_emails,
)


@pytest.fixture(autouse=True)
def _fresh_caches(fresh_model_caches):
    yield


def make(source, kind="causal-lm", **options):
    return create_model(ModelSpec("tiny", kind, None if source is None else str(source), options))


def test_scoring_no_texts_gives_an_empty_array(tiny_llama_dir, tiny_bert_dir):
    texts, y = toy_emails(12)
    tfidf = make(None, "tfidf-lr")
    tfidf.fit(texts, y)
    for m in (make(tiny_llama_dir, dtype="float32"), make(tiny_bert_dir, "encoder", dtype="float32"), tfidf):
        s = m.score([])
        assert s.shape == (0,) and s.dtype == np.float64
        m.close()
