"""KV-cache reuse for scoring edited copies of one text (models/prefix_reuse.py): the same margins
as plain scoring, on every architecture, and batches that cover every variant once."""

import numpy as np
import pytest

from gapscope.attribution.edit_scorers import edit_scorer
from gapscope.attribution.words import split_words
from gapscope.models.base import ModelSpec, create_model
from gapscope.models.prefix_reuse import _anchor_saves, common_prefix, plan_batches, score_with_prefix_reuse
from tests.tiny_models import tiny_causal_lm_dir, toy_emails


def test_plan_batches_covers_every_variant_once_within_budget():
    rng = np.random.default_rng(0)
    starts = rng.integers(10, 120, 300).tolist()
    lengths = [s + int(rng.integers(1, 60)) for s in starts]
    batches = plan_batches(starts, lengths, tokens=512, max_rows=16, context=2048)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(300))
    for b in batches:
        lo = min(starts[i] for i in b)
        width = max(lengths[i] for i in b) - lo
        assert len(b) <= 16
        assert len(b) == 1 or (len(b) * width <= 512 and len(b) * (lo + width) <= 2048)


def test_plan_batches_pays_a_little_padding_to_save_a_call():
    # 20 short tails of different lengths (words kept alone): padding them to one width costs less
    # than the fixed cost of the extra calls a strict waste bound would make
    starts = [14] * 20
    lengths = [14 + 8 + (i * 7) % 30 for i in range(20)]
    strict = plan_batches(starts, lengths, call_tokens=0)
    merged = plan_batches(starts, lengths, call_tokens=96)
    assert len(merged) < len(strict)
    for b in merged:
        width = max(lengths[i] for i in b) - min(starts[i] for i in b)
        useful = sum(lengths[i] - starts[i] for i in b)
        assert len(b) * width <= 1.25 * useful + 96


def test_second_anchor_only_when_it_saves_more_than_it_costs():
    full = list(range(100, 200))
    empty = [1, 2, 3, 9]
    # variants that start like the empty text (keep-few) gain from it; removal variants do not
    keep_few = [[1, 2, 3] + list(range(300 + 40 * k, 340 + 40 * k)) + [9] for k in range(6)]
    removals = [full[:j] + full[j + 5:] for j in range(0, 100, 10)]
    def saves(seqs):  # seqs[0] the full text, seqs[1] the candidate anchor
        return _anchor_saves([common_prefix(seqs[0], s) for s in seqs], [common_prefix(seqs[1], s) for s in seqs],
                             len(seqs[1]))

    assert saves([[1, 2] + full, [1, 2] + empty, *[[1, 2] + v for v in keep_few]]) is False  # 3 x 6 < cost
    long_keep = [[1, 2, 3, 9] * 30 + [k] for k in range(8)]
    assert saves([full, [1, 2, 3, 9] * 30, *long_keep]) is True
    assert saves([full, empty, *removals]) is False


@pytest.mark.parametrize("arch,window", [("llama", 6), ("gemma3", 256), ("mistral", 256), ("gemma2", 6)])
def test_prefix_reuse_gives_plain_margins(tmp_path, arch, window):
    d = tiny_causal_lm_dir(tmp_path, arch, sliding_window=window)
    model = create_model(ModelSpec("tiny", "causal-lm", str(d), {"dtype": "float32"}))
    scorer = edit_scorer(model)
    texts, _ = toy_emails(4, seed=3)
    rng = np.random.default_rng(1)
    for text in texts[:3]:
        words = split_words(text)
        n = len(words)
        keeps = [np.ones(n, bool), np.zeros(n, bool)] + [np.arange(n) != j for j in range(n)] + \
                [np.arange(n) == j for j in range(n)] + [rng.random(n) > 0.4 for _ in range(10)]
        got = scorer(text, [words.edits(k) for k in keeps])
        want = model.score([words.compose(k) for k in keeps])
        np.testing.assert_allclose(got, want, atol=1e-4)
    reused = score_with_prefix_reuse(model, [texts[0], texts[0][:9]])
    assert (reused is None) == (arch != "llama" and window == 6)  # short windows fall back
    model.close()


def test_short_sliding_window_falls_back_to_plain_scoring(tmp_path):
    d = tiny_causal_lm_dir(tmp_path, "mistral")  # window 6: the cache forgets early positions
    model = create_model(ModelSpec("tiny", "causal-lm", str(d), {"dtype": "float32"}))
    text = toy_emails(2, seed=0)[0][1]
    assert score_with_prefix_reuse(model, [text, text[:5]]) is None
    model.close()


def test_shap_runs_the_unedited_text_once_per_explanation(tmp_path, monkeypatch):
    """SHAP asks for its coalitions in many calls; each re-ran the full email as its KV anchor.
    Inside one explanation the anchor is kept, and the Shapley values are the same numbers."""
    import contextlib

    import gapscope.attribution.shap_partition as sp
    import gapscope.models.prefix_reuse as pr
    from gapscope.attribution.base import get_method

    d = tiny_causal_lm_dir(tmp_path, "llama")
    model = create_model(ModelSpec("tiny", "causal-lm", str(d), {"dtype": "float32"}))
    text = max(toy_emails(6, seed=2)[0], key=len)
    full = list(model.codec.encode([text])[0].ids)
    runs = {"full": 0, "calls": 0}
    forward = pr._forward

    score = pr.score_with_prefix_reuse

    def counting(m, ids, mask, past=None):
        runs["full"] += past is None and ids.shape[0] == 1 and ids[0, :len(full)].tolist() == full
        return forward(m, ids, mask, past)

    def calls(m, texts):
        runs["calls"] += 1
        return score(m, texts)

    monkeypatch.setattr(pr, "_forward", counting)
    monkeypatch.setattr(pr, "score_with_prefix_reuse", calls)
    shap = get_method("shap", max_evals=200, batch_size=16)
    kept = shap.attribute(model, text)
    assert runs["full"] == 1 and runs["calls"] >= 3  # several calls, one forward of the full text
    monkeypatch.setattr(sp, "repeated_calls", lambda m: contextlib.nullcontext())
    runs.update(full=0, calls=0)
    plain = shap.attribute(model, text)
    assert runs["full"] > 1
    np.testing.assert_array_equal(kept.weights, plain.weights)
    model.close()
