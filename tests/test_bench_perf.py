"""`gapscope bench random-model | score | train` on tiny shapes (CPU): the code the GPU runs take."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gapscope.bench import random_model
from gapscope.errors import GapscopeError
from gapscope.models import ModelSpec, create_model
from tests.tiny_models import fresh_model_caches, tiny_tokenizer  # noqa: F401  (fixture)

TINY = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 8, "max_position_embeddings": 512}


@pytest.fixture(autouse=True)
def _fresh_caches(fresh_model_caches):
    yield


@pytest.fixture
def tok_dir(tmp_path):
    path = tmp_path / "tok"
    tiny_tokenizer().save_pretrained(path)
    return path


def write_tiny(tmp_path, tok_dir, preset="llama-3.1-8b", name="m", seed=0):
    return random_model.write(preset, tmp_path / name, tokenizer=str(tok_dir), seed=seed, layers=2,
                              device="cpu", overrides=TINY)


@pytest.mark.parametrize("preset", sorted(random_model.PRESETS))
def test_random_model_keeps_the_preset_family_and_loads_as_a_source(tmp_path, tok_dir, preset):
    r = write_tiny(tmp_path, tok_dir, preset)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_type"] == random_model.PRESETS[preset]["model_type"]
    assert config["num_hidden_layers"] == 2 and r["layers"] == 2
    # the preset's vocabulary is kept: it is larger than the tokenizer's
    assert config["vocab_size"] == random_model.PRESETS[preset]["vocab_size"]
    model = create_model(ModelSpec("rand", "causal-lm", str(tmp_path / "m"), {"dtype": "float32"}))
    try:
        margins = model.score(["please verify your account now", "lunch tomorrow with the team"])
    finally:
        model.close()
    assert margins.shape == (2,) and np.all(np.isfinite(margins)) and margins[0] != margins[1]


def test_random_model_is_seeded(tmp_path, tok_dir):
    write_tiny(tmp_path, tok_dir, name="a", seed=3)
    write_tiny(tmp_path, tok_dir, name="b", seed=3)
    write_tiny(tmp_path, tok_dir, name="c", seed=4)
    a, b, c = (load_file(tmp_path / n / "model.safetensors") for n in "abc")
    key = "model.layers.0.self_attn.q_proj.weight"
    assert a[key].dtype == torch.bfloat16 and a[key].float().std() > 0.01
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a[key], c[key])


def test_random_model_vocabulary_covers_the_tokenizer(tmp_path, tok_dir):
    r = random_model.write("llama-3.1-8b", tmp_path / "m", tokenizer=str(tok_dir), layers=1, device="cpu",
                           overrides=dict(TINY, vocab_size=8))
    assert r["vocab_size"] == len(tiny_tokenizer())


def test_random_model_refuses_a_non_empty_directory_and_an_unknown_preset(tmp_path, tok_dir):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x").write_text("keep me")
    with pytest.raises(GapscopeError, match="not empty"):
        write_tiny(tmp_path, tok_dir)
    with pytest.raises(GapscopeError, match="unknown preset"):
        random_model.write("gpt-9", tmp_path / "n", tokenizer=str(tok_dir), device="cpu")


def test_bench_score_on_a_directory_source(tmp_path, tok_dir):
    from gapscope.bench import score

    write_tiny(tmp_path, tok_dir)
    r = score.run(str(tmp_path / "m"), n=6, max_length=32, batch_size=4)
    assert r["emails"] == 6 and r["tokens"] > 0 and r["speedup"] > 0
    assert r["naive_dtype"] == "float32" and r["device"] == "cpu" and r["gapscope_gpu_peak_gib"] is None
    # two parameter counts: the body of the preset's widths, two layers
    per_layer = 2 * 32 * 32 + 2 * 32 * 16 + 3 * 32 * 64 + 2 * 32  # q,o + k,v (2 kv heads) + MLP + norms
    assert r["body_parameters"] == 2 * per_layer + 32
    assert r["margin_correlation"] > 0.99  # the same weights, batched in bf16 vs the fp32 loop
    assert [row[0] for row in score.rows(r)][-1] == "margins agree"


def test_bench_train_on_a_directory_source(tmp_path, tok_dir):
    from gapscope.bench import train

    write_tiny(tmp_path, tok_dir)
    r = train.run(str(tmp_path / "m"), n_train=8, n_eval=6, epochs=1, batch_size=4, max_length=32)
    assert r["plain_dtype"] == "float32" and r["device"] == "cpu" and r["plain_gpu_peak_gib"] is None
    assert r["plain_seconds"] > 0 and r["gapscope_seconds"] > 0
    assert np.isfinite(r["plain_final_loss"]) and np.isfinite(r["gapscope_final_loss"])
    assert not any(row[0] == "GPU memory peak" for row in train.rows(r))


def test_bench_train_json_is_the_only_stdout(tmp_path, tok_dir, capsys):
    from gapscope.bench import train
    from gapscope.bench.common import emit

    write_tiny(tmp_path, tok_dir)
    r = train.run(str(tmp_path / "m"), n_train=4, n_eval=4, epochs=1, batch_size=4, max_length=16)
    emit(r, True, train.rows(r), "bench train")
    assert json.loads(capsys.readouterr().out)["benchmark"] == "train"


def test_load_in_4bit_is_refused_on_cpu_in_one_line(tmp_path, tok_dir):
    from gapscope.bench import score

    write_tiny(tmp_path, tok_dir)
    with pytest.raises(GapscopeError, match="CUDA"):
        score.run(str(tmp_path / "m"), n=2, max_length=32, load_in_4bit=True)


def test_cpu_peak_is_the_best_over_its_sizes(monkeypatch):
    from gapscope.bench import peak

    seen = []
    real = torch.matmul

    def spy(a, b):
        seen.append(a.shape[0])
        return real(a, b)

    monkeypatch.setattr(peak.torch, "matmul", spy)
    rate = peak.matmul_peak_flops(torch.float32, "cpu", sizes=(64, 128), repeats=2)
    assert sorted(set(seen)) == [64, 128] and rate > 0
