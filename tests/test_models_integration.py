"""The real embedded SmolLM2 (integration: ~5 s once its GGUF is converted, ~25 s the first time)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gapscope.models import ModelSpec, create_model

TEXTS = [
    "Your account has been suspended. Verify your password at http://login-secure.example.com now.",
    "Hi Sam, attached are the notes from today's meeting. Lunch on Friday?",
    "URGENT: confirm your bank details to receive the refund of $420.",
    "The quarterly report draft is in the shared folder; comments welcome before Monday.",
    "",
    "ok",
]


@pytest.mark.integration
def test_smollm2_labels_and_cached_prefix_path():
    m = create_model(ModelSpec("smollm2", "causal-lm", "embedded:smollm2-135m", {}))
    try:
        assert m.n_layers == 30 and m.train_layers == 10 and m.prefix_cache is not None
        assert m.codec.single_token_labels
        assert m.base.tokenizer.convert_ids_to_tokens(list(m.codec.label_ids)) == ["Ġlegitimate", "Ġphishing"]
        cached = m.score(TEXTS)  # default: bf16 autocast where supported, frozen-prefix cache
        full = create_model(ModelSpec("smollm2", "causal-lm", "embedded:smollm2-135m", {"prefix_cache": False}))
        np.testing.assert_allclose(cached, full.score(TEXTS), atol=1e-4)
        full.close()

        # float32 margins equal the plain HF forward's full-vocabulary logits
        ref_model = create_model(ModelSpec("smollm2", "causal-lm", "embedded:smollm2-135m", {"dtype": "float32"}))
        fp32 = ref_model.score(TEXTS)
        legit, phish = ref_model.codec.label_ids
        for text, margin in zip(TEXTS, fp32):
            (enc,) = ref_model.codec.encode([text])
            with torch.no_grad():
                logits = ref_model.hf(input_ids=torch.tensor([enc.ids])).logits[0, -1]
            assert margin == pytest.approx(float(logits[phish] - logits[legit]), abs=1e-3)
        assert np.abs(cached - fp32).max() < 0.3  # bf16 autocast stays close to float32
        ref_model.close()
    finally:
        m.close()
