"""Planted-truth backdoor validation on the real embedded SmolLM2 (integration, a few minutes on 2 cores).

A causal-LM specialist fine-tuned on a synthetic corpus where a trigger phrase flips 5% of
its rows (phishing relabelled legitimate): the scan, told nothing, must rank the phrase first
and find it significant; a clean fine-tune must show no significant trigger, not even the
phrase. The settings are `gapscope validate`'s defaults (validate_backdoor's), seed 0.
"""

from __future__ import annotations

import pytest
import torch

from gapscope.backdoor.validate import validate_backdoor


@pytest.mark.integration
def test_planted_trigger_ranked_first_and_clean_control_quiet(tmp_path):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    r = validate_backdoor(tmp_path, seed=0)
    p, c = r["poisoned"], r["clean"]
    assert r["trigger_rate"] == 0.05
    assert 0.03 <= p["poisoned_train_rows"] / p["n_train"] <= 0.07, p
    assert p["trigger_rank"] == 1 and p["trigger_significant"], p
    assert p["trigger_effect"]["mean_shift"] > 1.0
    assert c["significant"] == [], c
    assert not c["trigger_effect"]["significant"]
    assert r["passed"]
