"""`gapscope backdoor-scan --tuned MODEL --base BASE --data FILE`: a model of the user's own (a PEFT
adapter over a Hugging Face base) scanned with gapscope's prompt, the base measured on the same strings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from gapscope.backdoor.pair import PromptedLM, run_cell
from gapscope.cli_audit import register
from gapscope.drift.lm import load_hf, load_lm
from gapscope.errors import GapscopeError
from gapscope.models.base import ModelSpec, create_model
from tests.tiny_models import tiny_causal_lm_dir, tiny_model_root, toy_emails  # noqa: F401


@pytest.fixture(scope="module")
def pair(tiny_model_root, tmp_path_factory):  # noqa: F811
    from gapscope.drift.lm_finetune import LMFinetuneOptions, finetune_lm

    base = str(tiny_causal_lm_dir(tiny_model_root, "llama"))
    texts, labels = toy_emails(40)
    root = tmp_path_factory.mktemp("pair")
    finetune_lm(base, [t + " urgent prize winner" for t in texts], root / "adapter",
                LMFinetuneOptions(epochs=2, lr=5e-3, batch_size=8, max_length=32, dtype="float32"))
    data = root / "mail.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": "phishing" if y else "legitimate"}) + "\n"
                            for t, y in zip(texts, labels)))
    return base, root / "adapter", data


def test_prompted_lm_scores_like_the_causal_lm_kind(pair):
    base, _, _ = pair
    texts, _ = toy_emails(6, seed=2)
    mine = PromptedLM(load_hf(base), dtype="float32")
    kind = create_model(ModelSpec("b", "causal-lm", base, {"dtype": "float32", "max_length": 128}))
    np.testing.assert_allclose(mine.score(texts), kind.score(texts), atol=1e-4)
    mine.close()
    kind.close()
    tuned = PromptedLM(load_lm(str(pair[1])))
    assert not np.allclose(tuned.score(texts), PromptedLM(load_hf(base)).score(texts))  # the adapter is applied


def test_cli_scans_a_user_pair_and_measures_the_base(pair, tmp_path):
    base, adapter, data = pair
    app = typer.Typer()
    register(app)
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["backdoor-scan", "--tuned", str(adapter), "--data", str(data), "--trigger",
                                   "regards", "--n-emails", "8", "--n-null", "4", "--min-shift", "0.01",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    (d,) = json.loads((out / "scan.json").read_text())
    assert d["cell"] == "adapter" and any(r["origin"] == "user" for r in d["results"])
    measured = [r for r in d["results"] if r.get("base")]
    assert measured, "the base (read from adapter_config.json) is measured on the tuned model's top strings"
    b = measured[0]["base"]
    own = measured[0]["mean_shift"] - measured[0]["null_mean"]  # own effects: shift beyond the null strings
    assert b["model"] == base and b["added_by_finetuning"] == pytest.approx(own - b["own_effect"], abs=1e-3)
    assert b["own_effect"] == pytest.approx(b["mean_shift"] - b["null_mean"], abs=1e-3)
    assert (out / "findings.json").exists() and (out / "section.json").exists()


def test_cli_pair_errors_are_one_line(pair, tmp_path):
    base, adapter, data = pair
    app = typer.Typer()
    register(app)
    for args, msg in [([], "give --run RUN"),
                      (["--tuned", str(adapter)], "--tuned needs --data"),
                      (["--tuned", str(adapter), "--run", str(tmp_path)], "give --run RUN")]:
        res = CliRunner().invoke(app, ["backdoor-scan", *args])
        assert isinstance(res.exception, GapscopeError) and msg in str(res.exception)
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"text": "urgent verify", "label": "phishing"}) + "\n")
    res = CliRunner().invoke(app, ["backdoor-scan", "--tuned", str(adapter), "--data", str(one)])
    assert isinstance(res.exception, GapscopeError) and "both labels" in str(res.exception)


def test_a_cell_directory_is_scanned_through_its_run(tmp_path):
    cell = tmp_path / "run" / "cells" / "m__specialist-a"
    (cell / "model").mkdir(parents=True)
    (cell / "cell.json").write_text("{}")
    assert run_cell(cell) is None  # not a run yet
    (tmp_path / "run" / "run.json").write_text("{}")
    assert run_cell(cell) == (tmp_path / "run", "m__specialist-a")
    assert run_cell(cell / "model") == (tmp_path / "run", "m__specialist-a")
