"""Attributions on the real embedded SmolLM2 (integration: loads the model; tens of seconds on a CPU)."""

import pytest

from gapscope.attribution import attribute
from gapscope.attribution.window import words_in_view as visible_words
from gapscope.attribution.words import split_words

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smollm2():
    from gapscope.models.base import ModelSpec, create_model

    m = create_model(ModelSpec(name="smollm2", kind="causal-lm", source="embedded:smollm2-135m",
                               options={"max_length": 32}))
    yield m
    m.close()


def test_occlusion_on_a_causal_lm_is_consistent_and_respects_truncation(smollm2):
    short = "Your account is suspended. Verify your password at http://secure-login.example.xyz now."
    att = attribute(smollm2, short, method="occlusion", max_evals=6)
    assert "".join(att.tokens) == short
    assert att.margin == pytest.approx(float(smollm2.score([short])[0]), abs=1e-3)
    assert att.evals <= 8
    long = short + " " + " ".join(["filler words that the model never sees"] * 30)
    words = split_words(long)
    seen = visible_words(smollm2, words)
    assert seen < len(words)  # max_length=32 tokens: the tail is invisible
    att = attribute(smollm2, long, method="occlusion", max_evals=6)
    assert abs(att.weights[seen + 5:]).max() < 1e-3  # the unseen tail carries (about) no weight
