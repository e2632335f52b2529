"""The internals detector on the real embedded SmolLM2, fine-tuned on a planted shortcut
(integration: a small slice, a few minutes on 2 CPU cores when the machine is not shared)."""

from __future__ import annotations

import math

import pytest

# Small enough for CI: 2 domains x 100 emails, 40 training rows, LoRA on the top 6 of 30 layers.
SMALL = {
    "n_per_domain": 100, "max_train": 40, "epochs": 3, "train_layers": 6, "lr": 2e-3, "max_length": 96,
    "max_test_per_domain": 12,
    "detector_options": {"max_train": 16, "attention_examples": 3, "shortcut_examples": 6, "patch_pairs": 2,
                         "error_pairs": 0, "patch_layers": 4, "base_examples": 0, "layers": 8},
}


@pytest.mark.integration
def test_internals_find_the_planted_shortcut_in_smollm2(tmp_path):
    from gapscope.internals.validate import validate_internals

    r = validate_internals(tmp_path, **SMALL)
    p = r["planted"]
    assert p["n_string_emails"] >= 4
    # attention from the answer position to the footer rises with fine-tuning, on emails
    # not used to pick the head, and not onto the same positions holding neutral tokens
    assert r["checks"]["attention_rises"], p
    assert p["attention_heldout_tuned"] > p["attention_heldout_control"]
    # patching the footer's positions (below the fine-tuned layers) restores most of the margin
    assert r["checks"]["patching_restores_most"], p
    assert p["patching_restored_by_layer"][0] == pytest.approx(1.0, abs=0.05)  # embeddings: everything
    assert r["checks"]["high_shortcut_finding"], p["findings"]
    # the direction analysis ran and is reported (its verdict is a measurement, not asserted)
    assert p["cos_readout"] is not None and math.isfinite(p["cos_readout"])
    assert (tmp_path / "validation.json").exists() and r["passed"]
