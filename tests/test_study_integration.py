"""The spine on a real pretrained model: LoRA-fine-tune the embedded SmolLM2 (Llama architecture)
through the study runner on a small synthetic slice: it learns its domain and is scored on the other."""

import json

import pytest

pytestmark = pytest.mark.integration


def test_smollm2_lora_cell_learns_its_domain_and_is_scored_out_of_domain(tmp_path):
    from gapscope.data.synth import SynthConfig, generate
    from gapscope.study.runner import run_study

    corpus = generate(SynthConfig(seed=0, n_per_domain=80, domains=["corporate", "alerts"]))
    paths = corpus.write(tmp_path / "corpus")
    spec = tmp_path / "study.toml"
    spec.write_text(f"""
[study]
name = "smollm2-slice"
bootstrap = 200
max_test_per_domain = 24
[[datasets]]
name = "corporate"
path = "{paths['datasets']['corporate'].as_posix()}"
[[datasets]]
name = "alerts"
path = "{paths['datasets']['alerts'].as_posix()}"
[paradigms]
specialist = ["corporate"]
generalist = false
[[models]]
name = "smollm2"
kind = "causal-lm"
source = "embedded:smollm2-135m"
max_train = 48
max_length = 96
epochs = 3
""")
    run_study(spec, tmp_path / "run", detectors=False)
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())
    home = [e for e in matrix if e["in_domain"]]
    ood = [e for e in matrix if not e["in_domain"]]
    assert len(ood) == 1 and ood[0]["test_domain"] == "alerts"
    # 48 corporate emails teach it its own domain: AUROC's 95% CI lies above 0.5 (0.84-0.95 over [study]
    # seeds 0-3). Out of domain it need not: 0.52, 0.50, 0.60 and 0.53 on alerts over the same seeds, every
    # interval holding 0.5 (the 0.6 split's seed 0 happened to clear it), which is the failure gapscope is
    # for; the cell is scored there
    assert home[0]["auroc"] > 0.5 and home[0]["auroc_ci"][0] > 0.5, home[0]
    assert ood[0]["n"] > 0 and ood[0]["auroc_ci"][0] <= ood[0]["auroc"] <= ood[0]["auroc_ci"][1], ood[0]
    log = json.loads((tmp_path / "run" / "cells" / "smollm2__specialist-corporate" / "train_log.json").read_text())
    assert log["steps"] > 0
