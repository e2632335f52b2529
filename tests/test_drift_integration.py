"""Planted-truth drift validation on the real embedded SmolLM2 (integration, a few minutes on 2 cores).

A LoRA LM fine-tune on era-styled, era-dated synthetic emails must drift the time-period
probes (toward outdated answers) and not the unrelated general-knowledge and values
probes; the base against an independently loaded copy of itself must show nothing.
"""

from __future__ import annotations

import pytest
import torch

from gapscope.drift.audit import DriftOptions
from gapscope.drift.lm_finetune import LMFinetuneOptions
from gapscope.drift.validate import validate_drift


@pytest.mark.integration
def test_era_finetune_drifts_time_period_only(tmp_path):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    r = validate_drift(tmp_path, n_per_domain=32, families=["time-period", "general-knowledge", "values"],
                       finetune=LMFinetuneOptions(lr=7e-4, lora_mlp=True, epochs=1, max_length=48),
                       options=DriftOptions(n_bootstrap=1000), self_check="reload")
    fams = r["families"]
    assert r["checks"]["base_vs_self_quiet"], r["base_vs_self"]
    for f in r["base_vs_self"]["families"].values():
        assert abs(f["kl"]["mean"]) < 1e-6 and f["greedy_change"]["mean"] == 0.0
    assert r["checks"]["related_family_drifts"], fams["time-period"]
    assert fams["time-period"]["logprob_shift"]["mean"] > 1.0  # toward the outdated answers
    assert r["checks"]["unrelated_families_quiet"], {k: fams[k] for k in ("general-knowledge", "values")}
    assert r["passed"]
