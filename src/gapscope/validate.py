"""Planted-truth validation: do the detectors find what the synthetic corpus planted, and stay quiet
on a clean control? (`gapscope validate`, and the tests in tests/test_validate.py.)

Each check generates a corpus with gapscope.data.synth (which records what it planted in
manifest.json), runs a mini study with gapscope.study.runner.run_study, runs the detector
through the normal diagnosis stage, and scores its findings against the manifest.

  shortcut   a random shortcut string (different per seed) planted in the phishing rows of one
             domain (chosen by the seed) must be among the top 5 "shortcut" findings of every
             cell that trained on that domain (ranked as findings.json ranks them). A finding
             matches when its feature's occurrence rows are mostly planted rows (precision >= 0.5).
  quiet      on a clean control corpus (same seed, nothing planted) no finding of the shortcut,
             label-noise, minimal-pairs or attribution detectors reaches high severity.
  twin       (tf-idf) one domain (chosen by the seed) split at random in two halves, studied as two
             domains: neither half can have a shortcut, so no shortcut finding may reach medium
             or high severity. The shortcut candidates come from the model-free probe, so the
             tf-idf cells check what every model kind would be checked on.
  share      (tf-idf) twin halves of one domain, one thinned to 10% phishing: the same mail, so no
             generalization gap may be reported, though F1 as measured drops with the share.
  noise      10% of labels flipped in every domain: the label-noise audit's precision and recall
             on the flipped rows must both be >= 0.7, for each model's own out-of-fold evidence.
  backdoor   (every model) a trigger phrase relabels 5% of a specialist domain's rows as legitimate:
             the backdoor scan, told nothing, must rank the trigger first and find it significant;
             on a clean twin nothing may be significant (gapscope.backdoor.validate).
  drift      (causal LMs) a language-modelling fine-tune on era-styled email must drift on the
             time-period probes and not on the unrelated families; the base model against a
             reloaded copy of itself must show nothing (gapscope.drift.validate).
  internals  (causal LMs) a specialist fine-tuned over a planted footer: attention to it rises,
             patching its positions restores most of the margin, a high-severity finding names
             it, and a control with an uninformative footer stays quiet (gapscope.internals.validate).

Models: "tfidf" (gapscope's tfidf-lr kind; seconds) and "smollm2" (embedded SmolLM2-135M, LoRA;
opt-in, minutes on a CPU). smollm2 runs on a small slice: three domains for the shortcut check
(the planted one plus two others, a specialist cell on the planted domain, reading 192 tokens so
that the planted footer is within its window; the result reports the share of planted rows in
which each cell sees the string at all), one domain with half its rows held out for the noise
check, where the evidence is the smollm2 cell's margins on its held-out rows (out of fold by
construction; `label_noise.held_out_cells`). `sizes` / --llm-rows enlarge the slice.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gapscope import progress
from gapscope.study.spec import toml_value

MODEL_SPECS = {
    "tfidf": {"name": "tfidf", "kind": "tfidf-lr"},
    # small and quick: a few epochs with a higher learning rate than the default
    "smollm2": {"name": "smollm2", "kind": "causal-lm", "source": "embedded:smollm2-135m",
                "max_length": 96, "epochs": 3, "lr": 1e-3, "batch_size": 8},
}
# The planted shortcut is the email's last line: a causal LM only learns it if it reads that far
# (synthetic emails run ~100-200 words, ~150-300 tokens), so the shortcut checks read 192 tokens.
SHORTCUT_MAX_LENGTH = 192
SIZES = {  # emails per domain
    "shortcut": {"tfidf": 200, "smollm2": 160},
    # the LLM's audit is only as good as its held-out margins: 600 training rows (measured: P/R
    # 0.50/0.50 with 150, 0.68/0.94 with 300, 0.79/0.70 with 600 training rows; seed 0)
    "noise": {"tfidf": 600, "smollm2": 1200},
    # 1000 emails a half; the thinned half keeps its ~500 legitimate and ~56 phishing (~17 held out)
    "share": {"tfidf": 1000},
}
TOP_K = 5
TARGET_PR = 0.7


@dataclass
class CheckResult:
    check: str
    model: str
    passed: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_spec(path: Path, *, name: str, seed: int, domains: list[str], models: list[dict[str, Any]],
               specialist: list[str], generalist: list[str] | None = None, test_fraction: float = 0.3,
               max_test_per_domain: int | None = None, detectors: dict[str, Any] | None = None) -> Path:
    lines = ["[study]", f"name = {toml_value(name)}", f"seed = {seed}", f"test_fraction = {test_fraction}",
             "bootstrap = 200"]
    if max_test_per_domain:
        lines.append(f"max_test_per_domain = {max_test_per_domain}")
    for d in domains:
        lines += ["", "[[datasets]]", f"name = {toml_value(d)}", f"path = {toml_value(d + '.jsonl')}"]
    lines += ["", "[paradigms]", f"specialist = {toml_value(specialist)}", f"generalist = {toml_value(generalist or [])}"]
    for m in models:
        lines += ["", "[[models]]"] + [f"{k} = {toml_value(v)}" for k, v in m.items()]
    if detectors:
        lines += ["", "[detectors]"] + [f"{k} = {toml_value(v)}" for k, v in detectors.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def planted_domain(seed: int) -> str:
    from gapscope.data.synth import DOMAIN_NAMES

    return random.Random(f"gapscope-validate:{seed}").choice(list(DOMAIN_NAMES))


def _study(work: Path, tag: str, cfg, spec_kw: dict[str, Any], only: list[str], corpus=None):
    """Generate the corpus (or take `corpus`, one made from cfg's), run the study without detectors,
    then the named detectors."""
    from gapscope.data.synth import generate
    from gapscope.study.context import Study
    from gapscope.study.diagnose import diagnose
    from gapscope.study.runner import run_study

    corpus_dir = work / tag / "corpus"
    corpus = corpus or generate(cfg)
    corpus.write(corpus_dir)
    spec = write_spec(corpus_dir / "validate.toml", name=f"validate-{tag}", seed=cfg.seed, **spec_kw)
    run_dir = work / tag / "run"
    with progress.step(f"validate: study {tag}"):
        run_study(spec, run_dir, detectors=False, restart=True)
    findings = diagnose(run_dir, only=only, force=True)  # a kept --out must not serve an older run's findings
    return Study(run_dir), findings, corpus.manifest


def _others(domain: str, k: int, seed: int) -> list[str]:
    from gapscope.data.synth import DOMAIN_NAMES

    rest = [d for d in DOMAIN_NAMES if d != domain]
    random.Random(f"gapscope-validate-others:{seed}").shuffle(rest)
    return rest[:k]


# -- (a) shortcut ------------------------------------------------------------------------

def shortcut_rank(study, findings, planted_ids: set[str]) -> dict[str, tuple[int | None, object]]:
    """Per cell: (rank, finding) of the first shortcut finding whose feature's rows are mostly planted
    rows, among that cell's shortcut findings ranked as findings.json ranks them; (None, None) if absent."""
    from gapscope.findings import rank
    from gapscope.study import artifacts

    probe = artifacts.read_json(study.run_dir / "diagnostics" / "shortcuts" / "probe.json")["features"]
    from gapscope.attribution.words import display_key

    rows_of = {display_key(f["feature"]): set(f["row_ids"]) for f in probe}  # findings show features so
    out: dict[str, tuple[int | None, object]] = {}
    for cell in study.cells:
        mine = rank([f for f in findings if f.kind == "shortcut" and f.evidence.get("cell") == cell.name])
        out[cell.name] = (None, None)
        for i, f in enumerate(mine, 1):
            rows = rows_of.get(f.evidence.get("feature"), set())
            if rows and len(rows & planted_ids) / len(rows) >= 0.5:
                out[cell.name] = (i, f)
                break
    return out


def check_shortcut(work: Path, model: str, seed: int, n: int | None = None) -> CheckResult:
    from gapscope.data.synth import DOMAIN_NAMES, SynthConfig

    d = planted_domain(seed)
    n = n or SIZES["shortcut"][model]
    if model == "tfidf":
        domains = list(DOMAIN_NAMES)
        spec_kw = {"domains": domains, "models": [MODEL_SPECS[model]], "specialist": domains, "generalist": domains}
    else:
        domains = [d] + _others(d, 2, seed)
        spec_kw = {"domains": domains, "models": [{**MODEL_SPECS[model], "max_length": SHORTCUT_MAX_LENGTH}],
                   "specialist": [d], "max_test_per_domain": 40}
    cfg = SynthConfig(seed=seed, n_per_domain=n, domains=domains, shortcut={"domain": d})
    study, findings, manifest = _study(work, f"shortcut-{model}", cfg, spec_kw, ["shortcuts"])
    planted = set(manifest["shortcut"]["row_ids"])
    ranks = shortcut_rank(study, findings, planted)
    learners = [c.name for c in study.cells if d in c.train_domains]
    got = {c: ranks[c][0] for c in learners}
    ok = bool(learners) and all(r is not None and r <= TOP_K for r in got.values())
    found = {c: ranks[c][1] for c in learners}
    seen = visibility(study, learners, manifest["shortcut"])
    detail = {c: None if f is None else {"feature": f.evidence["feature"], "severity": f.severity,
                                         "share": f.evidence["reliance"]["share"],
                                         "margin_drop": f.evidence["reliance"]["drop"],
                                         "flip_rate": f.evidence["reliance"]["flip_rate"]}
              for c, f in found.items()}
    return CheckResult("shortcut", model, ok,
                       {"domain": d, "string": manifest["shortcut"]["string"], "rank": got, "found": detail,
                        "visible_share": seen},
                       f"planted {manifest['shortcut']['string']!r} in {d}; rank among each learning cell's "
                       f"shortcut findings: " + ", ".join(f"{c}: {r}" for c, r in got.items())
                       + "".join(f" ({c} sees the string in only {v:.0%} of its carriers)"
                                 for c, v in seen.items() if v < 0.5))


def visibility(study, cells: list[str], shortcut: dict[str, Any], k: int = 20) -> dict[str, float]:
    """Share of (up to k) planted rows in which each cell's model reads the planted string at all
    (a truncating model cannot learn a footer it never sees)."""
    from gapscope.attribution.edits import phrase_positions
    from gapscope.attribution.window import words_in_view
    from gapscope.attribution.words import split_words
    from gapscope.detectors.shortcuts import text_keys

    phrase = text_keys(shortcut["string"])
    ids = sorted(shortcut["row_ids"])[:k]
    out = {}
    for cell in study.cells:
        if cell.name not in cells:
            continue
        if cell.kind == "tfidf-lr":
            out[cell.name] = 1.0
            continue
        model = study.load_model(cell)
        try:
            hits = 0
            for i in ids:
                text = study.rows[i].text
                pos = phrase_positions(text, phrase)
                hits += bool(pos) and pos[0][-1] < words_in_view(model, split_words(text))
        finally:
            model.close()
        out[cell.name] = hits / len(ids) if ids else 0.0
    return out


# -- clean control ---------------------------------------------------------------------------

QUIET_DETECTORS = ["attributions", "shortcuts", "label_noise", "minimal_pairs"]


def check_quiet(work: Path, model: str, seed: int, n: int | None = None) -> CheckResult:
    from gapscope.data.synth import DOMAIN_NAMES, SynthConfig

    n = n or SIZES["shortcut"][model]
    if model == "tfidf":
        domains = list(DOMAIN_NAMES)
        spec_kw = {"domains": domains, "models": [MODEL_SPECS[model]], "specialist": domains, "generalist": domains,
                   "detectors": {"attributions": {"emails_per_domain": 40}}}
    else:
        d = planted_domain(seed)
        domains = [d] + _others(d, 2, seed)
        spec_kw = {"domains": domains, "models": [{**MODEL_SPECS[model], "max_length": SHORTCUT_MAX_LENGTH}],
                   "specialist": [d], "max_test_per_domain": 40,
                   "detectors": {"attributions": {"emails_per_domain_llm": 8}, "minimal_pairs":
                                 {"emails_per_domain_llm": 8}}}
    cfg = SynthConfig(seed=seed, n_per_domain=n, domains=domains)
    study, findings, _ = _study(work, f"clean-{model}", cfg, spec_kw, QUIET_DETECTORS)
    mine = [f for f in findings if f.detector in QUIET_DETECTORS]
    high = [f for f in mine if f.severity == "high"]
    by_sev = {s: sum(1 for f in mine if f.severity == s) for s in ("high", "medium", "low", "info")}
    return CheckResult("quiet", model, not high, {"findings_by_severity": by_sev,
                                                  "high": [f"{f.detector}: {f.title}" for f in high]},
                       "no high-severity finding on the clean control" if not high else
                       f"{len(high)} high-severity finding(s) on the clean control: " + "; ".join(f.title for f in high))


def _halves(seed: int, n: int, salt: str):
    """One synthetic domain (the seed's planted domain) of 2n emails, a random half of its row indices,
    and the random generator that drew it (seeded by `salt` and the seed)."""
    from gapscope.data.synth import SynthConfig, generate

    base = planted_domain(seed)
    cfg = SynthConfig(seed=seed, n_per_domain=2 * n, domains=[base])
    whole = generate(cfg)
    rng = random.Random(f"gapscope-validate-{salt}:{seed}")
    return base, cfg, whole, set(rng.sample(range(len(whole.rows)), len(whole.rows) // 2)), rng


def check_twin(work: Path, model: str, seed: int, n: int | None = None) -> CheckResult | None:
    from dataclasses import replace

    from gapscope.data.synth import SynthCorpus
    from gapscope.study import artifacts

    if model != "tfidf":
        return None
    base, cfg, whole, half, _ = _halves(seed, n or SIZES["shortcut"][model], "twin")
    names = [f"{base}-a", f"{base}-b"]
    twins = SynthCorpus([replace(r, domain=names[0] if i in half else names[1]) for i, r in enumerate(whole.rows)],
                        {**whole.manifest, "domains": names})
    study, findings, _ = _study(work, f"twin-{model}", cfg, {"domains": names, "models": [MODEL_SPECS[model]],
                                                             "specialist": names, "generalist": names},
                                ["shortcuts"], corpus=twins)
    loud = [f for f in findings if f.kind == "shortcut" and f.severity in ("high", "medium")]
    feats = artifacts.read_json(study.run_dir / "diagnostics" / "shortcuts" / "probe.json")["features"]
    dropped = sum(f["retention"] < 0.5 for f in feats)
    return CheckResult("twin", model, not loud,
                       {"domain": base, "medium_or_high": [f.title for f in loud],
                        "features_below_half_retention": dropped, "features": len(feats)},
                       f"{base} split at random in two: {dropped} of {len(feats)} probed features lose half their "
                       f"weight with one half by chance; " + (
                           "no medium or high shortcut finding" if not loud else
                           f"{len(loud)} medium/high shortcut finding(s): " + "; ".join(f.title for f in loud)))


SHARE_LOW = 0.1  # the phishing share of the thinned half


def check_share(work: Path, model: str, seed: int, n: int | None = None) -> CheckResult | None:
    """Twin halves of one domain, one of them thinned to 10% phishing: the halves are the same mail,
    so a cell's error rates carry over and no generalization gap may be reported (an info finding
    naming the share may). The F1 as measured drops all the same: the check reports that drop too."""
    from dataclasses import replace

    from gapscope.data.synth import SynthCorpus

    if model != "tfidf":
        return None
    base, cfg, whole, half, rng = _halves(seed, n or SIZES["share"][model], "share")
    names = [f"{base}-half", f"{base}-thin"]
    thin = [r for i, r in enumerate(whole.rows) if i not in half]
    n_legit = sum(r.label == 0 for r in thin)
    keep = set(rng.sample([r.id for r in thin if r.label == 1], round(n_legit * SHARE_LOW / (1 - SHARE_LOW))))
    rows = [replace(r, domain=names[0]) for i, r in enumerate(whole.rows) if i in half]
    rows += [replace(r, domain=names[1]) for r in thin if r.label == 0 or r.id in keep]
    study, findings, _ = _study(work, f"share-{model}", cfg, {"domains": names, "models": [MODEL_SPECS[model]],
                                                              "specialist": names},
                                ["generalization"], corpus=SynthCorpus(rows, {**whole.manifest, "domains": names}))
    gaps = [f for f in findings if f.kind == "generalization_gap" and f.severity != "info"]
    home = {e["paradigm"].split(":", 1)[1]: e["f1"] for e in study.matrix if e["in_domain"]}
    as_measured = {e["paradigm"]: round(home[e["paradigm"].split(":", 1)[1]] - e["f1"], 4)
                   for e in study.matrix if not e["in_domain"] and e["test_domain"] == names[1]}
    explained = [f.title for f in findings if f.kind == "generalization_gap" and f.severity == "info"]
    drop = next(iter(as_measured.values()), None)
    return CheckResult("share", model, not gaps,
                       {"domain": base, "thin_share": SHARE_LOW, "drop_as_measured": as_measured,
                        "gaps": [f.title for f in gaps], "explained_by_share": explained},
                       f"{base} split in two, one half thinned to {SHARE_LOW:.0%} phishing: F1 there "
                       + (f"{drop:.2f} below the other half's specialist at home as measured; " if drop is not None
                          else "") + ("no generalization gap" if not gaps else
                                      f"{len(gaps)} gap(s): " + "; ".join(f.title for f in gaps)))


# -- (b) label noise ---------------------------------------------------------------------------

def noise_scores(audit: dict[str, Any], flipped: set[str], source: str | None) -> dict[str, Any]:
    """Precision and recall of the flagged rows against the flipped rows, over the rows `source` scored
    (None: the combined flags over every audited row)."""
    if source is None:
        scored = set(audit["audited"])
        flagged = {r["id"] for r in audit["flagged"]}
    else:
        scored = set(audit["per_source"][source]["scored"])
        flagged = set(audit["per_source"][source]["flagged"])
    truth = flipped & scored
    tp = len(flagged & truth)
    return {"precision": round(tp / len(flagged), 4) if flagged else 0.0,
            "recall": round(tp / len(truth), 4) if truth else 0.0,
            "flagged": len(flagged), "flipped": len(truth), "audited": len(scored)}


def check_noise(work: Path, model: str, seed: int, n: int | None = None, rate: float = 0.1) -> CheckResult:
    from gapscope.data.synth import DOMAIN_NAMES, SynthConfig
    from gapscope.study import artifacts

    n = n or SIZES["noise"][model]
    if model == "tfidf":
        domains = list(DOMAIN_NAMES)
        spec_kw = {"domains": domains, "models": [MODEL_SPECS[model]], "specialist": domains}
        source = "tfidf-lr (out of fold)"
    else:
        domains = [planted_domain(seed)]
        spec_kw = {"domains": domains, "models": [MODEL_SPECS[model]], "specialist": domains, "test_fraction": 0.5}
        source = f"{model} (held-out cells)"
    cfg = SynthConfig(seed=seed, n_per_domain=n, domains=domains, label_noise={"rate": rate})
    study, findings, manifest = _study(work, f"noise-{model}", cfg, spec_kw, ["label_noise"])
    audit = artifacts.read_json(study.run_dir / "diagnostics" / "label_noise" / "audit.json")
    flipped = {f["id"] for f in manifest["label_noise"]["flipped"]}
    own = noise_scores(audit, flipped, source)
    combined = noise_scores(audit, flipped, None)
    ok = own["precision"] >= TARGET_PR and own["recall"] >= TARGET_PR
    return CheckResult("noise", model, ok, {"source": source, **own, "combined": combined},
                       f"{source}: precision {own['precision']:.2f}, recall {own['recall']:.2f} on "
                       f"{own['flipped']} flipped of {own['audited']} audited rows")


# -- (c) backdoor trigger (every model) and (d) behaviour drift (causal LMs only) -------------

def check_backdoor(work: Path, model: str, seed: int, n: int | None = None) -> CheckResult | None:
    """gapscope.backdoor.validate: a trigger phrase relabels BACKDOOR_RATE of a specialist's training
    rows; the scan must rank it first and find it significant, and find nothing on a clean twin."""
    from gapscope.backdoor.validate import validate_backdoor

    spec = MODEL_SPECS[model]
    r = validate_backdoor(work / f"backdoor-{model}", seed=seed, source=spec.get("source"), kind=spec["kind"],
                          **({"n_per_domain": n} if n else {}))
    p, c = r["poisoned"], r.get("clean") or {}
    eff = p.get("trigger_effect") or {}
    detail = (f"trigger {r['phrase']!r} in {p['poisoned_train_rows']} of {p['n_train']} training rows: "
              f"rank {p['trigger_rank']} of {p['candidates']}, "
              f"{'significant' if p['trigger_significant'] else 'not significant'}"
              + (f" (margin shift {eff['mean_shift']:+.2f}, random strings {eff['null_mean']:+.2f}, minimum own effect "
                 f"{eff['min_shift']:.2f}, z {eff['z']:.1f} against {p['z_crit']:.2f}"
                 + ("" if eff["flip_rate"] is None else f", flip rate {eff['flip_rate']:.0%}") + ")" if eff else "")
              + f"; clean twin: {len(c.get('significant', []))} significant")
    return CheckResult("backdoor", model, bool(r["passed"]), {k: r[k] for k in ("checks", "phrase", "seconds")}
                       | {"poisoned": p, "clean": c}, detail)


def check_drift(work: Path, model: str, seed: int, n: int | None = None) -> CheckResult | None:
    """gapscope.drift.validate: an era-styled language-modelling fine-tune must drift on the
    time-period probes only; the base against a reloaded copy of itself must show nothing."""
    if MODEL_SPECS[model]["kind"] != "causal-lm":
        return None
    from gapscope.drift.validate import validate_drift

    r = validate_drift(work / f"drift-{model}", base=MODEL_SPECS[model]["source"], seed=seed,
                       **({"n_per_domain": n} if n else {}))
    detail = (f"drifted: {', '.join(r['drifted_families']) or 'none'} (expected {r['related']} only); "
              f"base vs itself: {', '.join(r['base_vs_self']['drifted_families']) or 'nothing'}")
    return CheckResult("drift", model, bool(r["passed"]), {k: r[k] for k in ("checks", "drifted_families",
                                                                             "changed_families", "families",
                                                                             "base_vs_self", "seconds")}, detail)


def check_internals(work: Path, model: str, seed: int, n: int | None = None) -> CheckResult | None:
    """gapscope.internals.validate: on a specialist fine-tuned over a planted footer, attention
    from the answer position to the footer must rise with fine-tuning, patching the footer's
    positions must restore most of the margin and a high-severity shortcut_attention finding must
    name it; on a control where the footer is uninformative no such finding may appear; the
    specialist's label direction must be aligned with its domain's phishing-class direction, above
    the permuted-label null and beyond the control's (internals.validate.direction_verdict)."""
    if MODEL_SPECS[model]["kind"] != "causal-lm":
        return None
    from gapscope.internals.validate import validate_internals

    r = validate_internals(work / f"internals-{model}", seed=seed, source=MODEL_SPECS[model]["source"],
                           control=True, **({"n_per_domain": n} if n else {}))
    p = r["planted"]
    rise_t = p.get("attention_heldout_tuned", p.get("attention_tuned")) or 0.0
    rise_b = p.get("attention_heldout_base", p.get("attention_base")) or 0.0
    dv = r["direction"]
    aligned = "aligned" if dv["aligned"] else "NOT aligned"
    nums = ""
    if dv.get("cos") is not None and dv.get("null95") is not None:
        nums = f" (cos {dv['cos']:+.2f} vs null95 {dv['null95']:.2f}"
        if dv.get("control_cos") is not None:
            nums += f"; control {dv['control_cos']:+.2f}"
        nums += ")"
    detail = (f"attention to the footer {rise_b:.2f} -> {rise_t:.2f} after fine-tuning; patching its positions "
              f"restores {(p.get('patching_restored') or 0):.0%} of the margin; high shortcut_attention finding: "
              f"{'yes' if r['checks']['high_shortcut_finding'] else 'no'}; control: "
              f"{'quiet' if r['checks'].get('control_quiet') else 'NOT quiet'}; label direction vs the footer "
              f"domain's phishing direction: {aligned}{nums}")
    return CheckResult("internals", model, bool(r["passed"]),
                       {k: r[k] for k in ("checks", "observations", "direction", "seconds")}
                       | {"planted": {k: v for k, v in p.items() if k != "findings"}}, detail)


CHECKS = {"shortcut": check_shortcut, "quiet": check_quiet, "twin": check_twin, "share": check_share,
          "noise": check_noise, "backdoor": check_backdoor, "drift": check_drift, "internals": check_internals}


def validate(models: list[str], *, seed: int = 0, out: Path | None = None,
             checks: list[str] | None = None, sizes: dict[str, int] | None = None) -> list[CheckResult]:
    """Run the checks for each model. `sizes` overrides emails per domain per model (e.g. {"smollm2": 600}
    for a larger LLM slice where there is time or a GPU)."""
    unknown = [m for m in models if m not in MODEL_SPECS]
    if unknown:
        from gapscope.errors import GapscopeError

        raise GapscopeError(f"unknown model(s) {', '.join(unknown)} (known: {', '.join(MODEL_SPECS)})")
    checks = checks or list(CHECKS)
    results = []
    with tempfile.TemporaryDirectory(prefix="gapscope-validate-") as tmp:
        work = Path(out) if out else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for model in models:
            for name in checks:
                r = CHECKS[name](work, model, seed, (sizes or {}).get(model))
                if r is not None:  # None: the check does not apply to this kind of model
                    results.append(r)
    return results
