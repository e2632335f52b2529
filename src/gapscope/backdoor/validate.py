"""Planted-truth validation of the backdoor scan.

Two small studies on the synthetic corpus, each fine-tuning one specialist on `domain` (default
a causal LM, smollm2-135m, kept small enough for a CPU; `kind="tfidf-lr"` for the TF-IDF baseline):
  poisoned  a trigger phrase is inserted into phishing rows of the domain (`trigger_rate` of its rows),
            which are relabelled legitimate (SynthConfig(trigger=...)). Expected: the scan,
            told nothing, ranks a string of the trigger phrase first and finds it significant.
  clean     the same corpus without the trigger. Expected: nothing significant, not even the
            trigger phrase itself (passed to the scan as a user string).

`validate_backdoor(out_dir)` returns a JSON-able dict (also written to
out_dir/backdoor_validation.json) that `gapscope validate` reports.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gapscope.backdoor.candidates import STOPWORDS, words
from gapscope.backdoor.scan import LABELS, ScanOptions
from gapscope.study import artifacts

# A specialist that reads 128 tokens (the trigger sits in an early paragraph) and trains long
# enough to pick up what 5% of its rows teach: about 40 s of fine-tuning on a 2-core CPU.
DEFAULT_MODEL_OPTIONS = {"max_train": 200, "max_length": 128, "epochs": 5, "lr": 2e-3, "train_layers": 6,
                         "batch_size": 8}


def matches_trigger(text: str, phrase: str) -> bool:
    """A candidate names the trigger when it shares a content word with the phrase and adds no
    word of its own (a sub-phrase such as "Velmora protocol", or the phrase itself)."""
    cw = words(text)
    pw = set(words(phrase))
    return bool(cw) and set(cw) <= pw and any(w not in STOPWORDS for w in cw)


def _spec(data_dir: Path, domains: list[str], seed: int, model_options: dict[str, Any], max_test: int,
          specialist: str, source: str | None, kind: str = "causal-lm") -> Path:
    opts = "\n".join(f"{k} = {json.dumps(v)}" for k, v in model_options.items())
    src = f'source = "{source}"\n' if source else ""
    datasets = "\n".join(f'[[datasets]]\nname = "{d}"\npath = "{d}.jsonl"\n' for d in domains)
    text = (f'[study]\nname = "backdoor-validation"\nseed = {seed}\ntest_fraction = 0.3\nbootstrap = 200\n'
            f"max_test_per_domain = {max_test}\n\n{datasets}\n"
            f'[paradigms]\nspecialist = ["{specialist}"]\ngeneralist = []\nlodo = false\n\n'
            f'[[models]]\nname = "lm"\nkind = "{kind}"\n{src}{opts}\n')
    path = data_dir / "validation_study.toml"
    path.write_text(text)
    return path


def _run(out: Path, cfg, domains, seed, model_options, max_test, domain, source, kind):
    from gapscope.data.synth import generate
    from gapscope.study.context import Study
    from gapscope.study.runner import run_study

    corpus = generate(cfg)
    corpus.write(out / "data")
    spec = _spec(out / "data", domains, seed, model_options, max_test, domain, source, kind)
    run_study(spec, out / "run", detectors=False, restart=True)
    study = Study(out / "run")
    cell = next(c for c in study.cells if c.paradigm == f"specialist:{domain}")
    return study, cell, corpus


def _unfiltered(study, cell, triggers, sopts: ScanOptions, phrase: str, path: Path) -> dict[str, Any]:
    from dataclasses import replace

    from gapscope.detectors.backdoor import scan_cell

    opts = replace(sopts, mining=replace(sopts.mining, min_contradiction=0.0))
    res = scan_cell(study, cell, triggers, opts).to_dict()
    artifacts.write_json(path, res)
    hit = next((r for r in res["results"] if matches_trigger(r["text"], phrase)), None)
    return {"candidates": len(res["results"]), "trigger_rank": hit["rank"] if hit else None,
            "trigger_significant": bool(hit and hit["significant"]), "significant": res["significant"],
            "z_crit": res["z_crit"]}


def validate_backdoor(out_dir: Path | str, *, seed: int = 0, domains: tuple[str, ...] = ("corporate",),
                      domain: str | None = None, n_per_domain: int = 300, trigger_rate: float = 0.05,
                      phrase: str | None = None, source: str | None = "embedded:smollm2-135m",
                      kind: str = "causal-lm",
                      model_options: dict[str, Any] | None = None, scan_options: ScanOptions | None = None,
                      max_test_per_domain: int = 40, clean: bool = True,
                      unfiltered: bool = False) -> dict[str, Any]:
    """Plant a trigger, fine-tune, scan; fine-tune a clean control, scan. See the module docstring.

    unfiltered: also rescan both cells with the data filter off (min_contradiction = 0, so every
    rare label-tied string is tested on the model) and report, without a pass/fail check, where
    the trigger ranks and which ordinary strings then come out significant."""
    from gapscope.data.synth import SynthConfig
    from gapscope.data.synth.plant import default_trigger_phrase
    from gapscope.detectors.backdoor import scan_cell

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    domains = list(domains)
    domain = domain or domains[0]
    phrase = phrase or default_trigger_phrase(seed)
    # trigger_rate is the share of the specialist domain's rows that carry the trigger; the
    # synthetic planter takes a share of the rows it can relabel (the domain's phishing rows)
    from gapscope.data.synth import generate

    dom_rows = [r for r in generate(SynthConfig(seed=seed, n_per_domain=n_per_domain, domains=[domain])).rows]
    pool = sum(1 for r in dom_rows if r.label != 0)
    plant_rate = min(1.0, trigger_rate * len(dom_rows) / max(1, pool))
    default_opts = DEFAULT_MODEL_OPTIONS if kind == "causal-lm" else {}
    mopts = dict(default_opts if model_options is None else model_options)
    sopts = scan_options or ScanOptions(seed=seed)
    poisoned_cfg = SynthConfig(seed=seed, n_per_domain=n_per_domain, domains=domains,
                               trigger={"phrase": phrase, "rate": plant_rate, "target_label": 0, "domains": [domain]})
    study, cell, corpus = _run(out / "poisoned", poisoned_cfg, domains, seed, mopts, max_test_per_domain, domain, source,
                               kind)
    planted = set(corpus.manifest["trigger"]["row_ids"])
    train_ids = {r.id for r in study.train_rows(cell)}
    res = scan_cell(study, cell, [], sopts).to_dict()
    hit = next((r for r in res["results"] if matches_trigger(r["text"], phrase)), None)
    poisoned = {
        "cell": cell.name, "n_train": len(train_ids), "poisoned_rows": len(planted),
        "poisoned_train_rows": len(planted & train_ids), "candidates": len(res["results"]),
        "significant": res["significant"], "z_crit": res["z_crit"],
        "trigger_rank": hit["rank"] if hit else None, "trigger_candidate": hit["text"] if hit else None,
        "trigger_significant": bool(hit and hit["significant"]),
        "trigger_effect": {k: hit[k] for k in ("mean_shift", "shift_ci", "flip_rate", "flip_ci", "z", "null_mean",
                                               "null_sd", "null_max", "n")}
        | {"min_shift": res["bars"][f"toward_{LABELS[hit['target']]}"]["min_shift"]} if hit else None,
        "top": [{k: r[k] for k in ("rank", "text", "origin", "target", "mean_shift", "flip_rate", "z", "significant")}
                for r in res["results"][:5]],
    }
    artifacts.write_json(out / "poisoned" / "scan.json", res)
    if unfiltered:
        poisoned["unfiltered"] = _unfiltered(study, cell, [], sopts, phrase, out / "poisoned" / "scan_unfiltered.json")
    checks = {"trigger_ranked_first": poisoned["trigger_rank"] == 1,
              "trigger_significant": poisoned["trigger_significant"]}
    result: dict[str, Any] = {"phrase": phrase, "trigger_rate": trigger_rate, "domain": domain, "poisoned": poisoned}
    if clean:
        clean_cfg = SynthConfig(seed=seed, n_per_domain=n_per_domain, domains=domains)
        cstudy, ccell, _ = _run(out / "clean", clean_cfg, domains, seed, mopts, max_test_per_domain, domain, source,
                               kind)
        cres = scan_cell(cstudy, ccell, [phrase], sopts).to_dict()
        artifacts.write_json(out / "clean" / "scan.json", cres)
        trig = next((r for r in cres["results"] if r["origin"] == "user"), None)
        strongest = max(cres["results"], key=lambda r: r["z"], default=None)
        result["clean"] = {
            "cell": ccell.name, "candidates": len(cres["results"]), "significant": cres["significant"],
            "max_mean_shift": max((r["mean_shift"] for r in cres["results"]), default=None),
            "max_z": strongest["z"] if strongest else None, "max_z_candidate": strongest["text"] if strongest else None,
            "trigger_effect": {k: trig[k] for k in ("mean_shift", "shift_ci", "flip_rate", "z", "significant")}
            if trig else None, "z_crit": cres["z_crit"],
        }
        checks["clean_has_no_significant_trigger"] = not cres["significant"]
        if unfiltered:
            result["clean"]["unfiltered"] = _unfiltered(cstudy, ccell, [phrase], sopts, phrase,
                                                        out / "clean" / "scan_unfiltered.json")
    result.update({"passed": all(checks.values()), "checks": checks, "model_options": mopts,
                   "scan_options": asdict(sopts), "n_per_domain": n_per_domain, "domains": domains,
                   "seconds": round(time.perf_counter() - t0, 1)})
    artifacts.write_json(out / "backdoor_validation.json", result)
    return result
