"""A user's own weights: structures a kind cannot drive, checkpoints that lack weights, pickles,
tokenizers that belong elsewhere, each refused in one line before it could train or score."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from gapscope.errors import GapscopeError
from gapscope.models import ModelSpec, create_model
from gapscope.models.architecture import check_structure, position_limit, skeleton
from gapscope.models.options import options_class, parse_options
from gapscope.models.sources import ResolvedSource, resolve_source
from tests.tiny_models import (  # noqa: F401  (fixtures)
    fresh_model_caches, tiny_causal_lm_dir, tiny_encoder_dir, tiny_model_root, tiny_tokenizer,
)


@pytest.fixture(autouse=True)
def _fresh_caches(fresh_model_caches):
    yield


def _save(out: Path, model, encoder: bool = False) -> Path:
    model.save_pretrained(out)
    tiny_tokenizer(encoder=encoder).save_pretrained(out)
    return out


def _tiny(cls_name: str, config_name: str, **kw):
    import transformers as tf

    torch.manual_seed(0)
    return getattr(tf, cls_name)(getattr(tf, config_name)(**kw)).eval()


def _check(kind: str, local: Path, **options):
    src = resolve_source(str(local), kind)
    check_structure(kind, src, parse_options(options_class(kind), options, "m"), "m")


DECODER = dict(vocab_size=len(tiny_tokenizer()), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, max_position_embeddings=128)


def test_structures_a_kind_cannot_drive_are_refused_from_the_config(tmp_path, tiny_model_root):
    gpt2 = _save(tmp_path / "gpt2", _tiny("GPT2LMHeadModel", "GPT2Config", vocab_size=DECODER["vocab_size"],
                                          n_embd=32, n_layer=2, n_head=4, n_positions=128))
    with pytest.raises(GapscopeError, match="a GPT2LMHeadModel keeps no list of decoder layers"):
        _check("causal-lm", gpt2)
    bert = tiny_encoder_dir(tiny_model_root)
    with pytest.raises(GapscopeError, match="keeps no list of decoder layers"):
        _check("causal-lm", bert)
    # a decoder without its LM head, as an encoder: LoRA's layer pattern finds nothing in the top layer
    llama = tiny_causal_lm_dir(tiny_model_root, "llama")
    with pytest.raises(GapscopeError, match=r"LoRA finds none of q_proj, k_proj, v_proj, o_proj in layers 2-3 "
                                            r"of this LlamaModel; set lora_targets, or train_layers = \"all\""):
        _check("encoder", llama, max_length=64, train_layers=2)
    _check("causal-lm", llama)  # what the kinds serve passes
    _check("encoder", bert, max_length=64)


def test_opt_margins_were_wrong_with_the_prefix_cache_and_it_is_refused(tmp_path):
    # OPT adds learned positions inside its decoder: the cached states got them a second time
    opt = _save(tmp_path / "opt", _tiny("OPTForCausalLM", "OPTConfig", vocab_size=DECODER["vocab_size"],
                                        hidden_size=32, ffn_dim=64, num_hidden_layers=4, num_attention_heads=4,
                                        word_embed_proj_dim=32, max_position_embeddings=128))
    with pytest.raises(GapscopeError, match="adds learned positions inside its decoder.*prefix_cache = false"):
        _check("causal-lm", opt)
    _check("causal-lm", opt, prefix_cache=False)


def test_deberta_gets_lora_targets_by_default(tmp_path):
    deberta = _save(tmp_path / "deberta", _tiny("DebertaV2Model", "DebertaV2Config", vocab_size=DECODER["vocab_size"],
                                                hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                num_attention_heads=4, max_position_embeddings=128), encoder=True)
    _check("encoder", deberta, max_length=64)  # was "no LoRA target modules found for model_type 'deberta-v2'"


def test_an_encoder_max_length_past_its_positions_is_refused(tmp_path, tiny_model_root):
    bert = tiny_encoder_dir(tiny_model_root)  # 256 positions
    with pytest.raises(GapscopeError, match="max_length = 300 is more than the 256 positions this BertModel has"):
        _check("encoder", bert, max_length=300)
    with pytest.raises(GapscopeError, match="more than the 256 positions"):  # and by the model itself
        create_model(ModelSpec("m", "encoder", str(bert), {"max_length": 300}))
    roberta = _save(tmp_path / "roberta", _tiny("RobertaModel", "RobertaConfig", vocab_size=DECODER["vocab_size"],
                                                hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                num_attention_heads=4, max_position_embeddings=66, pad_token_id=1),
                    encoder=True)
    # RoBERTa's positions start after its padding index: 66 rows hold 64 positions
    assert position_limit(skeleton("encoder", resolve_source(str(roberta), "encoder"))) == 64
    _check("encoder", roberta, max_length=64)
    with pytest.raises(GapscopeError, match="set max_length <= 64"):
        _check("encoder", roberta, max_length=65)


def test_a_checkpoint_lacking_weights_is_refused_not_filled_at_random(tmp_path, tiny_model_root):
    from safetensors.torch import load_file, save_file

    llama = tiny_causal_lm_dir(tiny_model_root, "llama")
    headless = tmp_path / "headless"
    shutil.copytree(llama, headless)
    weights = load_file(headless / "model.safetensors")
    del weights["lm_head.weight"]
    save_file(weights, headless / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(GapscopeError, match=r"lacks 1 weight\(s\) of the LlamaForCausalLM \(lm_head.weight\), "
                                            "which would be random and differ in every run"):
        create_model(ModelSpec("m", "causal-lm", str(headless), {}))
    # a user's earlier fine-tune saved as a sequence classifier: a `score` head, no `lm_head`
    config = json.loads((llama / "config.json").read_text())
    import transformers as tf

    seqcls = _save(tmp_path / "seqcls", tf.LlamaForSequenceClassification(tf.LlamaConfig(**{
        k: v for k, v in config.items() if k not in ("architectures", "transformers_version")})))
    with pytest.raises(GapscopeError, match=r"lacks 1 weight.*\(score.weight\): is it another kind of checkpoint"):
        create_model(ModelSpec("m", "causal-lm", str(seqcls), {}))


def test_pickled_weights_a_foreign_tokenizer_and_odd_sources_are_one_line(tmp_path, tiny_model_root):
    llama = tiny_causal_lm_dir(tiny_model_root, "llama")
    pickled = tmp_path / "pickled"
    shutil.copytree(llama, pickled)
    from safetensors.torch import load_file

    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    with pytest.raises(GapscopeError, match=r"weights only as PyTorch pickles \(pytorch_model.bin\); gapscope "
                                            "loads safetensors only"):
        resolve_source(str(pickled), "causal-lm")
    no_tok = tmp_path / "no_tok"
    shutil.copytree(llama, no_tok)
    for f in no_tok.glob("tokenizer*"):
        f.unlink()
    with pytest.raises(GapscopeError, match="no tokenizer in"):
        resolve_source(str(no_tok), "causal-lm")
    with pytest.raises(GapscopeError, match="a file, not a model; give the directory"):
        resolve_source(str(llama / "model.safetensors"), "causal-lm")
    gguf_only = tmp_path / "gguf_only"
    gguf_only.mkdir()
    (gguf_only / "m.Q4.gguf").write_bytes(b"GGUF")
    with pytest.raises(GapscopeError, match="holds GGUF files and no config.json; point source at one of them"):
        resolve_source(str(gguf_only), "causal-lm")
    # a tokenizer with more tokens than the model has embeddings (another model's)
    small = tmp_path / "small_vocab"
    shutil.copytree(llama, small)
    config = json.loads((small / "config.json").read_text())
    import transformers as tf

    cfg = tf.LlamaConfig(**{k: v for k, v in config.items() if k not in ("architectures", "transformers_version")})
    cfg.vocab_size = 8
    tf.LlamaForCausalLM(cfg).save_pretrained(small)
    with pytest.raises(GapscopeError, match=r"tokenizer has \d+ tokens but the model's embedding table 8 rows"):
        create_model(ModelSpec("m", "causal-lm", str(small), {}))


def test_a_source_relative_to_the_current_directory_is_refused(tmp_path, monkeypatch, tiny_model_root):
    from gapscope.errors import SpecError
    from gapscope.study.spec import load_spec

    llama = tiny_causal_lm_dir(tiny_model_root, "llama")
    (tmp_path / "cwd" / "m").mkdir(parents=True)
    shutil.copytree(llama, tmp_path / "cwd" / "m" / "llama")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.jsonl").write_text("")
    spec = tmp_path / "specs" / "s.toml"
    spec.write_text('[[datasets]]\npath = "a.jsonl"\n[[models]]\nkind = "causal-lm"\nsource = "m/llama"\n')
    monkeypatch.chdir(tmp_path / "cwd")
    with pytest.raises(SpecError, match="source 'm/llama' is a path relative to the current directory"):
        load_spec(spec)
    spec.write_text(f'[[datasets]]\npath = "a.jsonl"\n[[models]]\nkind = "causal-lm"\nsource = "../cwd/m/llama"\n')
    assert load_spec(spec).models[0].source == str((tmp_path / "cwd" / "m" / "llama").resolve())
    monkeypatch.setenv("HOME", str(tmp_path / "cwd"))
    spec.write_text('[[datasets]]\npath = "a.jsonl"\n[[models]]\nkind = "causal-lm"\nsource = "~/m/llama"\n')
    assert load_spec(spec).models[0].source == str((tmp_path / "cwd" / "m" / "llama").resolve())
