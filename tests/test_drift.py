"""Drift audit mechanics on tiny random models: probe files, batched forwards against plain
forwards, KL of a model with itself, base-vs-self silence, detection of a changed model,
adapter and cell loading, CLI, report escaping."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gapscope.drift.audit import DriftOptions, compare, drift_audit, probe_forward
from gapscope.drift.forward import encode_answer, encode_prompt, kl_divergence, run_probes
from gapscope.drift.lm import infer_base, load_hf, load_lm
from gapscope.drift.probes import Probe, ProbeFamily, load_probe_file, load_probe_sets
from gapscope.drift.stats import mean_ci, significant
from gapscope.errors import GapscopeError
from tests.tiny_models import tiny_causal_lm_dir, tiny_llama_dir, tiny_model_root  # noqa: F401

torch.set_num_threads(min(2, torch.get_num_threads()))

TINY_FAMILIES = [
    ProbeFamily("work", "office words", "legit", "phish", [
        Probe("w1", "hello the team", (" meeting", " lunch tomorrow"), (" urgent",)),
        Probe("w2", "please review the", (" report",), (" password", " verify account")),
        Probe("w3", "hi regards", (" notes",), (" prize",)),
        Probe("w4", "the agenda for", (" today",), (" now",)),
    ]),
    ProbeFamily("bank", "phishy words", "a", "b", [
        Probe("b1", "verify your", (" account",), (" family",)),
        Probe("b2", "click the", (" link",), (" coffee",)),
        Probe("b3", "your bank", (" login",), (" weekend",)),
        Probe("b4", "dear winner", ()),
    ]),
]


# -- probe sets ---------------------------------------------------------------------

def test_builtin_probe_families_and_counts():
    fams = {f.name: f for f in load_probe_sets()}
    assert {"time-period", "general-knowledge", "values", "persona"} <= set(fams)
    assert {"current-technology", "language-register"} <= set(fams)
    assert len(fams["time-period"].probes) >= 12 and all(p.paired for p in fams["time-period"].probes)
    assert fams["time-period"].reference_label == "modern" and fams["time-period"].contrast_label == "outdated"
    assert fams["values"].contrast_label == "misaligned"
    assert any(not p.paired for p in fams["persona"].probes)  # prompt-only probes are allowed
    # yes/no balance in values: a bare yes-bias must not look like misalignment
    refs = [p.reference[0] for p in fams["values"].probes if p.reference[0] in (" Yes", " No")]
    assert abs(refs.count(" Yes") - refs.count(" No")) <= 1


def test_user_probe_file_extends_and_validates(tmp_path):
    extra = tmp_path / "mine.toml"
    extra.write_text('[family]\nname = "time-period"\n\n[[probes]]\nid = "my-1"\nprompt = "The newest phone is the"\n'
                     'reference = " iPhone 16"\ncontrast = [" Nokia 3310"]\n')
    fams = {f.name: f for f in load_probe_sets([extra])}
    assert fams["time-period"].probes[-1].id == "my-1" and str(extra) in fams["time-period"].sources
    new = tmp_path / "new.toml"
    new.write_text('[family]\nname = "sports"\n[[probes]]\nprompt = "The World Cup is played with a"\n')
    only = load_probe_sets([new], builtin=False)
    assert [f.name for f in only] == ["sports"] and only[0].probes[0].id == "sports-1"
    assert [f.name for f in load_probe_sets([new], families=["sports", "values"])] == ["sports", "values"]
    bad = tmp_path / "bad.toml"
    for text, msg in [('[family]\nname="x"\n[[probes]]\nprompt="a"\ncontrast=" b"\n', "needs a reference"),
                      ('[family]\nname="x"\n[[probes]]\nprompt="a"\ncolour=1\n', "unknown key"),
                      ('[family]\nname="x"\n', "at least one"),
                      ('[[probes]]\nprompt="a"\n', "[family]"),
                      ('[family\n', "not a valid TOML")]:
        bad.write_text(text)
        with pytest.raises(GapscopeError, match=msg.replace("[", r"\[")):
            load_probe_file(bad)
    with pytest.raises(GapscopeError, match="already exist"):
        load_probe_sets([extra, extra])
    with pytest.raises(GapscopeError, match="unknown probe family"):
        load_probe_sets(families=["nope"])


# -- statistics -----------------------------------------------------------------------

def test_mean_ci_and_significance_rule():
    rng = np.random.default_rng(0)
    ci = mean_ci(rng.normal(1.0, 0.5, 200), seed=1)
    assert ci.lo < 1.0 < ci.hi and ci.hi - ci.lo < 0.2 and ci.n == 200
    a, b = mean_ci([1, 2, 3, 4], seed=3), mean_ci([1, 2, 3, 4], seed=3)
    assert a == b
    assert mean_ci([]).mean is None and mean_ci([np.nan, 2.0]).n == 1
    assert significant(mean_ci([1.0, 1.2, 0.9, 1.1, 1.05]), 0.5)
    assert not significant(mean_ci([1.0, 1.2, 0.9, 1.1, 1.05]), 2.0)  # below the minimum effect
    assert significant(mean_ci([-1.0, -1.2, -0.9, -1.1]), 0.5)  # negative side counts too
    assert not significant(mean_ci([-1.0, 1.2, -0.9, 1.1]), 0.1)  # CI straddles 0
    # non-negative measures: the CI's lower end must clear the minimum
    assert not significant(mean_ci([0.0, 0.0, 0.0, 1.0]), 0.2, nonnegative=True)
    assert significant(mean_ci([0.6, 0.7, 0.65, 0.8]), 0.2, nonnegative=True)
    assert not significant(mean_ci([0.0, 0.0, 0.0]), 0.0, nonnegative=True)


# -- forwards -------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["llama", "mistral", "gemma3"])
def test_batched_probe_forward_matches_plain_forwards(tiny_model_root, arch):  # noqa: F811
    lm = load_lm(str(tiny_causal_lm_dir(tiny_model_root, arch)))
    prompts = ["hello the email", "please verify your account now and the", "hi"]
    answers = [[" urgent", " meeting team"], [" password"], [" you are", " lunch tomorrow report"]]
    out = run_probes(lm.model, lm.tokenizer, prompts, answers, k_greedy=3, batch_size=8)
    one = run_probes(lm.model, lm.tokenizer, prompts, answers, k_greedy=3, batch_size=1)
    assert torch.allclose(out.next_logprobs, one.next_logprobs, atol=1e-5) and out.greedy == one.greedy
    tok = lm.tokenizer
    for i, (p, alts) in enumerate(zip(prompts, answers)):
        pi = encode_prompt(tok, p)
        with torch.no_grad():
            ref_next = torch.log_softmax(lm.model(input_ids=torch.tensor([pi])).logits[0, -1].float(), -1)
        assert torch.allclose(ref_next, out.next_logprobs[i], atol=1e-4)
        for j, a in enumerate(alts):
            ai = encode_answer(tok, p, a)
            with torch.no_grad():
                lg = torch.log_softmax(lm.model(input_ids=torch.tensor([pi + ai])).logits[0].float(), -1)
            ref = sum(float(lg[len(pi) - 1 + t, ai[t]]) for t in range(len(ai)))
            assert out.answer_logprobs[i][j] == pytest.approx(ref, abs=1e-4)
        ids = list(pi)
        for _ in range(3):
            with torch.no_grad():
                ids.append(int(lm.model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
        assert out.greedy[i] == ids[len(pi):][: len(out.greedy[i])]


def test_kl_of_a_model_with_itself_is_zero_and_positive_otherwise(tiny_model_root):  # noqa: F811
    a = load_lm(str(tiny_causal_lm_dir(tiny_model_root, "llama")))
    b = load_lm(str(tiny_causal_lm_dir(tiny_model_root / "other", "llama", seed=1)))
    fa = probe_forward(a, TINY_FAMILIES, DriftOptions())
    fa2 = probe_forward(load_hf(str(tiny_causal_lm_dir(tiny_model_root, "llama"))), TINY_FAMILIES, DriftOptions())
    fb = probe_forward(b, TINY_FAMILIES, DriftOptions())
    assert np.all(kl_divergence(fa.next_logprobs, fa2.next_logprobs) < 1e-9)
    kl_ab = kl_divergence(fa.next_logprobs, fb.next_logprobs)
    assert np.all(kl_ab > 0.01)
    p = torch.log_softmax(torch.tensor([[1.0, 2.0, 3.0]]), -1)
    q = torch.log_softmax(torch.tensor([[3.0, 2.0, 1.0]]), -1)
    expected = float((p.exp() * (p - q)).sum())
    assert kl_divergence(p, q)[0] == pytest.approx(expected)


def test_base_vs_self_has_no_finding_and_a_different_model_drifts(tiny_model_root):  # noqa: F811
    from gapscope.drift.report import drift_findings

    base = load_lm(str(tiny_causal_lm_dir(tiny_model_root, "llama")))
    twin = load_hf(str(tiny_causal_lm_dir(tiny_model_root, "llama")))
    rep = drift_audit(base, twin, TINY_FAMILIES, DriftOptions(n_bootstrap=300))
    assert rep.drifted == [] and drift_findings(rep) == []
    for f in rep.families:
        assert f.measures["kl"].mean == pytest.approx(0.0, abs=1e-9)
        assert f.measures["logprob_shift"].mean == pytest.approx(0.0, abs=1e-6)
        assert f.measures["greedy_change"].mean == 0.0
    assert drift_audit(base, base, TINY_FAMILIES).drifted == []  # same object: outputs reused

    other = load_lm(str(tiny_causal_lm_dir(tiny_model_root / "other", "llama", seed=1)))
    rep2 = drift_audit(base, other, TINY_FAMILIES, DriftOptions(n_bootstrap=300, min_kl=0.01))
    assert set(rep2.changed) == {"work", "bank"}  # a different model says different things
    found = drift_findings(rep2, model="m", who="m (x)")
    drift = [f for f in found if f.kind == "behaviour_drift"]
    assert {f.evidence["family"] for f in drift} == set(rep2.drifted)
    change = [f for f in found if f.kind == "behaviour_change"]
    assert all("m (x)" in f.title and f.models == ["m"] for f in found)
    assert set(rep2.changed) - set(rep2.drifted) == (set(change[0].evidence["families"]) if change else set())
    d = rep2.to_dict()
    json.dumps(d)  # JSON-able
    assert d["families"][1]["probes"][3]["logprob_shift"] is None  # unpaired probe


def test_compare_logprob_shift_sign_and_family_naming():
    """A synthetic forward where the tuned model prefers the contrast answers: positive shift."""
    from gapscope.drift.forward import ProbeForward

    fam = ProbeFamily("era", "", "modern", "outdated",
                      [Probe(f"p{i}", "x", (" a", " b"), (" c",)) for i in range(8)])
    V = 5
    lp = torch.log_softmax(torch.zeros((8, V)), -1)
    base = ProbeForward(lp, [[-1.0, -2.0, -3.0]] * 8, [[1]] * 8, ["a"] * 8)
    tuned = ProbeForward(lp, [[-3.0 - 0.1 * i, -4.0, -1.0] for i in range(8)], [[2]] * 8, ["c"] * 8)
    rep = compare([fam], base, tuned, DriftOptions(n_bootstrap=200))
    shift = rep.families[0].measures["logprob_shift"]
    assert shift.mean > 3 and shift.significant
    assert rep.families[0].measures["greedy_change"].mean == 1.0 and rep.drifted == ["era"]
    assert rep.changed == ["era"]  # greedy answers all changed too
    from gapscope.drift.report import drift_findings

    (f,) = drift_findings(rep, who="w")
    assert f.kind == "behaviour_drift" and "toward outdated answers" in f.title and f.severity == "high"


# -- adapters, cells, judge, CLI ---------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_root, tmp_path_factory):  # noqa: F811
    from gapscope.drift.lm_finetune import LMFinetuneOptions, finetune_lm
    from tests.tiny_models import toy_emails

    base = str(tiny_causal_lm_dir(tiny_model_root, "llama"))
    texts, _ = toy_emails(24)
    out = tmp_path_factory.mktemp("adapter")
    log = finetune_lm(base, [t + " urgent prize winner" for t in texts], out,
                      LMFinetuneOptions(epochs=3, lr=5e-3, batch_size=8, max_length=32, dtype="float32"))
    return base, out, log


def test_lm_finetune_writes_a_peft_adapter_that_load_lm_reads(tiny_adapter):
    base, adapter, log = tiny_adapter
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "adapter_config.json").exists()
    assert log["last_loss"] < log["first_loss"] and log["steps"] == 9
    assert infer_base(adapter) == base
    tuned = load_lm(adapter)
    assert tuned.origin == "adapter" and tuned.base_source == base
    rep = drift_audit(load_hf(base), tuned, TINY_FAMILIES, DriftOptions(n_bootstrap=200, min_kl=0.01))
    assert rep.families[0].measures["kl"].mean > 0


def test_adapter_without_safetensors_is_refused(tmp_path, tiny_adapter):
    base, adapter, _ = tiny_adapter
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_config.json").write_text((adapter / "adapter_config.json").read_text())
    with pytest.raises(GapscopeError, match="safetensors"):
        load_lm(bad)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gapscope_cell_dir_loads_with_its_adapter(tiny_llama_dir, tmp_path, dtype):  # noqa: F811
    """A bf16 cell (the default on CPUs with bf16, as in the demo) stores its frozen weights in
    bf16; the audit's float32 forward must still run on it."""
    from gapscope.models import ModelSpec, create_model
    from tests.tiny_models import toy_emails

    spec = ModelSpec("tiny", "causal-lm", str(tiny_llama_dir), {"epochs": 1, "lr": 5e-3, "dtype": dtype})
    texts, labels = toy_emails(16)
    m = create_model(spec)
    m.fit(texts, labels)
    cell = tmp_path / "cells" / "tiny__specialist-a"
    m.save(cell / "model")
    m.close()
    (cell / "cell.json").write_text(json.dumps({"model": "tiny", "kind": "causal-lm", "source": str(tiny_llama_dir)}))
    assert infer_base(cell) == str(tiny_llama_dir)
    tuned = load_lm(cell)
    try:
        assert tuned.origin == "cell" and tuned.name == "tiny__specialist-a"
        rep = drift_audit(load_hf(str(tiny_llama_dir)), tuned, TINY_FAMILIES, DriftOptions(n_bootstrap=200))
        assert max(f.measures["kl"].mean for f in rep.families) > 0  # the LoRA changed something
    finally:
        tuned.close()
    (cell / "cell.json").write_text(json.dumps({"model": "t", "kind": "tfidf-lr"}))
    (cell / "model" / "causal_lm.json").rename(cell / "model" / "x.json")
    with pytest.raises(GapscopeError, match="causal-lm cell"):
        load_lm(cell)


def test_judge_mechanics(tiny_llama_dir):  # noqa: F811
    from gapscope.drift.judge import Judge

    # The tiny vocabulary has no yes/no: use two of its words as the judge's answers.
    judge = Judge(load_hf(str(tiny_llama_dir)), yes=" verify", no=" meeting")
    p = judge.match_probability(["q1", "q2"], ["a", "b"], ["a", ""])
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))
    base = load_hf(str(tiny_llama_dir))
    rep = drift_audit(base, base, TINY_FAMILIES, DriftOptions(n_bootstrap=100), judge=judge)
    jd = rep.families[0].measures["judge_drop"]
    assert jd.mean == pytest.approx(0.0) and not jd.significant
    with pytest.raises(GapscopeError, match="cannot tell"):
        Judge(base, yes=" zzz", no=" qqq")  # both unknown -> the same [UNK] id


def test_cli_drift_writes_report_and_needs_a_base(tiny_adapter, tmp_path):
    import typer
    from typer.testing import CliRunner

    from gapscope.cli_audit import register

    base, adapter, _ = tiny_adapter
    app = typer.Typer()
    register(app)
    probes = tmp_path / "p.toml"
    probes.write_text('[family]\nname = "tiny"\n[[probes]]\nprompt = "hello the"\nreference = " team"\n'
                      'contrast = " prize"\n[[probes]]\nprompt = "verify your"\nreference = " account"\n'
                      'contrast = " lunch"\n[[probes]]\nprompt = "please click"\n')
    res = CliRunner().invoke(app, ["drift", "--tuned", str(adapter), "--probes", str(probes), "--family", "tiny",
                                   "--out", str(tmp_path / "o"), "--bootstrap", "100"])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "o" / "drift.json").read_text())
    assert d["base"] == base and [f["family"] for f in d["families"]] == ["tiny"]
    assert json.loads((tmp_path / "o" / "section.json").read_text())["id"] == "drift"
    res = CliRunner().invoke(app, ["drift", "--tuned", base])
    assert isinstance(res.exception, GapscopeError) and "--base" in str(res.exception)


def test_section_escapes_probe_and_answer_text():
    from gapscope.drift.forward import ProbeForward
    from gapscope.drift.report import section_html

    evil = '<script>alert(1)</script>'
    fam = ProbeFamily(evil, evil, evil, evil, [Probe(f"p{i}", evil, (" a",), (" b",)) for i in range(3)])
    lp = torch.log_softmax(torch.zeros((3, 4)), -1)
    f = ProbeForward(lp, [[-1.0, -2.0]] * 3, [[1]] * 3, [evil] * 3)
    d = compare([fam], f, f, DriftOptions(n_bootstrap=50)).to_dict()
    d["tuned"] = evil
    html = section_html([d])
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_drift_detector_over_a_tiny_causal_lm_study(tiny_llama_dir, tmp_path):  # noqa: F811
    from gapscope.study.runner import run_study
    from tests.tiny_models import toy_emails

    texts, labels = toy_emails(60)
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"text": t, "label": int(y)}) for t, y in zip(texts, labels)))
    (tmp_path / "s.toml").write_text(
        '[study]\nbootstrap = 50\n[[datasets]]\npath = "a.jsonl"\n'
        f'[[models]]\nname = "tiny"\nkind = "causal-lm"\nsource = "{tiny_llama_dir}"\nepochs = 2\nlr = 0.01\n'
        'dtype = "float32"\nmax_length = 32\n'
        '[detectors]\nenabled = ["drift"]\n[detectors.drift]\nmax_probes_per_family = 4\nn_bootstrap = 100\n'
        'min_kl = 0.0001\nfamilies = ["time-period", "values"]\n')
    run_study(tmp_path / "s.toml", tmp_path / "run")
    d = json.loads((tmp_path / "run" / "diagnostics" / "drift" / "drift.json").read_text())
    assert [x["cell"] for x in d] == ["tiny__specialist-a"]
    assert [f["family"] for f in d[0]["families"]] == ["time-period", "values"]
    assert all(f["n_probes"] == 4 for f in d[0]["families"])
    findings = json.loads((tmp_path / "run" / "findings.json").read_text())
    drift = [f for f in findings if f["kind"] in ("behaviour_drift", "behaviour_change")]
    assert drift and all(f["models"] == ["tiny"] for f in drift)  # the LoRA changed the tiny LM everywhere
    assert "Behaviour drift against the base model" in (tmp_path / "run" / "report.html").read_text()


def test_a_share_reads_in_percent_with_its_interval():
    from gapscope.drift.report import _describe

    said = _describe("greedy_change", {"mean": 0.5, "lo": 0.25, "hi": 0.75, "n": 12}, {})
    assert said == "50% of greedy answers changed (95% CI 25% to 75%, n=12)"
