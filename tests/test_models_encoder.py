"""encoder kind on a tiny random BERT (fast, offline)."""

from __future__ import annotations

import numpy as np
import pytest

from gapscope.models import ModelSpec, create_model
from gapscope.models.loading import clear_base_cache
from tests.tiny_models import tiny_bert_dir, tiny_model_root, toy_emails  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _fresh_bases():
    clear_base_cache()
    yield
    clear_base_cache()


def make(source, **options):
    options.setdefault("dtype", "float32")
    return create_model(ModelSpec("enc", "encoder", str(source), options))


@pytest.mark.parametrize("finetune,lr", [("full", 1e-3), ("lora", 5e-3)])
def test_fit_improves_and_roundtrips(tiny_bert_dir, tmp_path, finetune, lr):
    texts, y = toy_emails(40)
    m = make(tiny_bert_dir, finetune=finetune, epochs=5, lr=lr)
    log = m.fit(texts, y, seed=0)
    assert np.mean(log["losses"][-5:]) < np.mean(log["losses"][:5])
    s = m.score(texts)
    assert s.shape == (40,) and s.dtype == np.float64
    if finetune == "full":
        assert ((s > 0) == y).mean() >= 0.9
    m.save(tmp_path / "cell")
    m.close()
    other = make(tiny_bert_dir)  # structure (finetune, lora_*) comes from the save
    other.load(tmp_path / "cell")
    np.testing.assert_array_equal(other.score(texts), s)
    other.close()


def test_base_unchanged_after_lora_cell(tiny_bert_dir):
    texts, y = toy_emails(12)
    assert make(tiny_bert_dir).opts.finetune == "lora"  # the default
    before = make(tiny_bert_dir, finetune="lora").score(texts)
    clear_base_cache()
    m = make(tiny_bert_dir, finetune="lora", lr=5e-3)
    np.testing.assert_array_equal(m.score(texts), before)
    m.fit(texts, y, seed=0)
    m.close()
    again = make(tiny_bert_dir, finetune="lora")
    assert not any("lora" in n for n, _ in again.encoder.named_modules())
    np.testing.assert_array_equal(again.score(texts), before)


def test_full_finetune_does_not_touch_the_shared_base(tiny_bert_dir):
    texts, y = toy_emails(12)
    m = make(tiny_bert_dir, finetune="full", lr=1e-3)
    base = m.base.model
    w = next(base.parameters()).detach().clone()
    m.fit(texts, y, seed=0)
    assert m.encoder is not base
    assert np.array_equal(next(base.parameters()).detach().numpy(), w.numpy())


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_batch_size_invariance(tiny_bert_dir, dtype):
    texts, _ = toy_emails(13, seed=4)
    scores = [make(tiny_bert_dir, dtype=dtype, eval_batch_size=bs).score(texts) for bs in (1, 4, 32)]
    for s in scores[1:]:
        np.testing.assert_allclose(s, scores[0], atol=1e-3)


def test_same_seed_same_scores(tiny_bert_dir):
    texts, y = toy_emails(16)
    runs = []
    for seed in (3, 3):
        m = make(tiny_bert_dir, lr=1e-3)
        m.fit(texts, y, seed=seed)
        runs.append(m.score(texts))
        m.close()
    np.testing.assert_array_equal(runs[0], runs[1])


def test_hidden_states_and_tokens(tiny_bert_dir):
    texts, _ = toy_emails(4)
    m = make(tiny_bert_dir)
    hs = m.hidden_states(texts)
    for v in hs.values():
        assert v.shape == (4, 2 + 1, 32) and v.dtype == np.float16
    toks = m.tokenize("urgent verify your password!")
    assert toks == ["urgent", "verify", "your", "password", "!"]  # no [CLS]/[SEP]
    m2 = make(tiny_bert_dir, max_length=4)
    assert len(m2.tokenize("urgent verify your password!")) == 2  # 4 minus [CLS] and [SEP]


def _lora_layers(model) -> set[int]:
    import re

    return {int(m.group(1)) for n, _ in model.encoder.named_modules()
            if "lora_A" in n and (m := re.search(r"layer\.(\d+)\.", n))}


def test_lora_goes_on_the_top_layers_and_saves_remember_how_many(tiny_bert_dir, tmp_path):
    import json

    texts, y = toy_emails(16)
    m = make(tiny_bert_dir, lr=5e-3)  # 2 layers: "auto" adapts the top third, i.e. layer 1
    log = m.fit(texts, y, seed=0)
    assert _lora_layers(m) == {1} and log["train_layers"] == 1
    m.save(tmp_path / "top")
    m.close()
    every = make(tiny_bert_dir, lr=5e-3, train_layers="all")
    every.fit(texts, y, seed=0)
    assert _lora_layers(every) == {0, 1}
    s_all = every.score(texts)
    every.save(tmp_path / "all")
    every.close()
    # A save from before train_layers existed holds LoRA on every layer and must load as such.
    meta = json.loads((tmp_path / "all" / "encoder.json").read_text())
    del meta["options"]["train_layers"]
    (tmp_path / "all" / "encoder.json").write_text(json.dumps(meta))
    legacy = make(tiny_bert_dir)
    legacy.load(tmp_path / "all")
    assert _lora_layers(legacy) == {0, 1}
    np.testing.assert_array_equal(legacy.score(texts), s_all)
    legacy.close()
