"""Planted-truth backdoor validation on the real embedded SmolLM2 (integration, a few minutes on 2 cores).

A causal-LM specialist fine-tuned on a synthetic corpus where a trigger phrase flips
phishing rows to legitimate: the scan, told nothing, must rank the phrase first and find
it significant; a clean fine-tune must show no significant trigger, not even the phrase.
"""

from __future__ import annotations

import pytest
import torch

from gapscope.backdoor.scan import ScanOptions
from gapscope.backdoor.validate import validate_backdoor


@pytest.mark.integration
def test_planted_trigger_ranked_first_and_clean_control_quiet(tmp_path):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    r = validate_backdoor(tmp_path, n_per_domain=120, domains=("corporate",), trigger_rate=0.3,
                          model_options={"max_train": 96, "max_length": 64, "epochs": 8, "lr": 2e-3,
                                         "train_layers": 4, "batch_size": 8},
                          scan_options=ScanOptions(n_emails=16, n_null=10, n_bootstrap=1000),
                          max_test_per_domain=40, unfiltered=False)
    p, c = r["poisoned"], r["clean"]
    assert p["poisoned_train_rows"] >= 5
    assert p["trigger_rank"] == 1 and p["trigger_significant"], p
    assert p["trigger_effect"]["mean_shift"] > 1.0
    assert c["significant"] == [], c
    assert not c["trigger_effect"]["significant"]
    assert r["passed"]
