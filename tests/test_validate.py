"""Planted-truth validation (tf-idf): the checks `gapscope validate` runs, on a seed other than its default
(shortcut, quiet control, twin control, share control, label noise and backdoor trigger)."""

import json

import pytest

from gapscope.data.synth.plant import default_shortcut_string
from gapscope.validate import TARGET_PR, TOP_K, planted_domain, validate


def test_planted_string_and_domain_change_with_the_seed():
    assert default_shortcut_string(0) != default_shortcut_string(1)
    assert len({planted_domain(s) for s in range(8)}) > 1


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return {r.check: r for r in validate(["tfidf"], seed=1, out=tmp_path_factory.mktemp("validate"))}


def test_planted_shortcut_is_in_the_top_five_of_every_cell_that_learned_it(results):
    r = results["shortcut"]
    assert r.passed, r.detail
    assert r.metrics["rank"] and all(1 <= k <= TOP_K for k in r.metrics["rank"].values())
    for found in r.metrics["found"].values():
        assert found["feature"] in r.metrics["string"].lower()
    assert all(v == 1.0 for v in r.metrics["visible_share"].values())


def test_clean_control_stays_quiet(results):
    r = results["quiet"]
    assert r.passed, r.detail
    assert r.metrics["findings_by_severity"]["high"] == 0


def test_random_halves_of_one_domain_give_no_shortcut(results):
    r = results["twin"]
    assert r.passed, r.detail
    # the control has teeth: many features lose half their weight with one half by chance
    assert r.metrics["medium_or_high"] == [] and r.metrics["features_below_half_retention"] >= 20


def test_label_noise_precision_and_recall(results):
    r = results["noise"]
    assert r.passed, r.detail
    assert r.metrics["precision"] >= TARGET_PR and r.metrics["recall"] >= TARGET_PR
    json.dumps(r.to_dict())


def test_backdoor_trigger_ranked_first_by_tfidf_and_clean_twin_quiet(results):
    """TF-IDF margins move by tenths where an LLM's move by units, so the scan's bar is relative to
    the margin scale (at 1.0 margin units TF-IDF could never show a trigger). On this seed the
    trigger stands far above the null, but its own effect is 21% of the way to flipping a typical
    email, under the 25% bar: ranked first, not significant (docs/measurements.md has 8 seeds)."""
    r = results["backdoor"]
    p = r.metrics["poisoned"]
    eff = p["trigger_effect"]
    assert p["trigger_rank"] == 1 and eff["z"] >= p["z_crit"] and eff["mean_shift"] > eff["null_max"]
    assert eff["mean_shift"] < 1.0  # below the old bar in margin units
    assert r.metrics["clean"]["significant"] == []
    assert r.passed == p["trigger_significant"]


def test_llm_only_checks_skip_tfidf_and_the_cli_lists_internals(tmp_path):
    from gapscope.validate import CHECKS

    assert {"backdoor", "drift", "internals"} <= set(CHECKS)
    for name in ("drift", "internals"):
        assert CHECKS[name](tmp_path, "tfidf", 0) is None  # not applicable: no causal LM
    assert CHECKS["twin"](tmp_path, "smollm2", 0) is None  # the probe is model-free: tf-idf cells check it
    from typer.testing import CliRunner

    from gapscope.cli import app

    out = CliRunner().invoke(app, ["validate", "--checks", "internals,nonsense"])
    assert out.exit_code != 0 and "unknown check(s) nonsense" in out.output + str(out.exception)


def test_a_kept_out_folder_is_measured_again_not_read_from_its_cache(tmp_path):
    """`--out DIR` keeps the runs; validating into it again must score what the detectors find now,
    not the findings the earlier run cached (same spec, same cells: the cache would match)."""
    from gapscope.validate import CHECKS

    assert CHECKS["twin"](tmp_path, "tfidf", 0).passed
    cached = next(tmp_path.glob("twin-tfidf/run/diagnostics/shortcuts/findings.json"))
    saved = json.loads(cached.read_text())
    saved["findings"].append({"kind": "shortcut", "severity": "medium", "title": "stale", "summary": "",
                              "evidence": {}, "detector": "shortcuts"})
    cached.write_text(json.dumps(saved))
    again = CHECKS["twin"](tmp_path, "tfidf", 0)
    assert again.passed and again.metrics["medium_or_high"] == []


def test_a_half_thinned_to_a_tenth_phishing_is_no_generalization_gap(results):
    r = results["share"]
    assert r.passed, r.detail
    # the control has teeth: as measured, F1 falls with the share (a high "gap" before gaps were read
    # at each domain's share). How far depends on the cell and the split: 0.04-0.38 over seeds 0-7
    # with 0.7.0's split (0.04-0.39 before it), 0.11 at this seed
    assert min(r.metrics["drop_as_measured"].values()) > 0
