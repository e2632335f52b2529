"""Planted-truth validation of the drift audit.

A narrow fine-tune that should shift one unrelated behaviour: a LoRA language-modelling
fine-tune of the base on task data from another era: synthetic emails written entirely
in a 19th-century register (SynthConfig(era_style=True)), each with the Date: header an
email of that era would carry (1885-1892). No training text asks what year it is or which
technology is current, but the era's dates and vocabulary (telegram, letter-box, thee,
watchword) can leak into answers about the present, as a model fine-tuned on an old
corpus comes to believe it is that year. Expected:
  * significant (directional) drift on the related family (time-period),
  * no significant directional drift on the unrelated families (general knowledge, values),
  * the base model against a second, independently loaded copy of itself shows neither
    drift nor change.
A fine-tune of a small LM on any new text also changes its continuations everywhere (KL,
greedy answers: "changed"); the result reports those too, per family.

`validate_drift(out_dir)` returns a JSON-able dict (also written to
out_dir/drift_validation.json) that `gapscope validate` reports.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gapscope.drift.audit import DriftOptions, select_probes, drift_audit, probe_forward
from gapscope.drift.lm import load_hf, load_lm
from gapscope.drift.lm_finetune import LMFinetuneOptions, finetune_lm
from gapscope.drift.probes import load_probe_sets
from gapscope.study import artifacts

DEFAULT_FINETUNE = LMFinetuneOptions(lora_r=8, lora_alpha=16.0, lora_mlp=False, lr=1e-3, epochs=1, batch_size=8,
                                     max_length=64)


def era_texts(rows, seed: int, years: tuple[int, int] = (1885, 1892)) -> list[str]:
    """Each email with a Date: header of the era, e.g. "Date: Tuesday, 14 May 1889"."""
    import datetime
    import random

    rng = random.Random(f"gapscope-drift:{seed}:era-dates")
    out = []
    for r in rows:
        day = datetime.date(rng.randint(*years), rng.randint(1, 12), rng.randint(1, 28))
        out.append(f"Date: {day.strftime('%A')}, {day.day} {day.strftime('%B %Y')}\n{r.text}")
    return out


def _family_summary(rep) -> dict[str, Any]:
    return {f.family: {"significant": f.significant, "changed": f.changed,
                       "significant_measures": f.significant_measures,
                       **{k: {"mean": m.mean, "ci": [m.lo, m.hi], "n": m.n} for k, m in f.measures.items()}}
            for f in rep.families}


def validate_drift(out_dir: Path | str, *, base: str = "embedded:smollm2-135m", seed: int = 0,
                   domains: tuple[str, ...] = ("corporate", "personal"), n_per_domain: int = 40,
                   finetune: LMFinetuneOptions | None = None, related: str = "time-period",
                   unrelated: tuple[str, ...] = ("general-knowledge", "values"),
                   families: list[str] | None = None, options: DriftOptions | None = None,
                   self_check: str = "reload", dates: bool = True) -> dict[str, Any]:
    """Fine-tune `base` on era-styled emails, audit it, and check the planted expectation.

    self_check: "reload" compares the base with an independently loaded copy (catches
    nondeterminism), "reuse" with the same forward outputs (cheaper; trivially zero)."""
    from gapscope.data.synth import SynthConfig, generate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    finetune = finetune or DEFAULT_FINETUNE
    opts = options or DriftOptions()
    corpus = generate(SynthConfig(seed=seed, n_per_domain=n_per_domain, domains=list(domains), era_style=True))
    texts = era_texts(corpus.rows, seed) if dates else [r.text for r in corpus.rows]
    adapter = out / "era-adapter"
    key = {"base": base, "seed": seed, "domains": list(domains), "n_per_domain": n_per_domain,
           "finetune": asdict(finetune), "dates": dates}
    stamp = adapter / "validation_key.json"
    if stamp.exists() and json.loads(stamp.read_text()) == key:
        ft_log = json.loads((adapter / "gapscope_finetune.json").read_text())
    else:
        ft_log = finetune_lm(base, texts, adapter, finetune)
        stamp.write_text(json.dumps(key))
    t_ft = time.perf_counter() - t0

    fams = select_probes(load_probe_sets(families=families), opts)
    base_lm = load_hf(base, what="base model")
    tuned = load_lm(adapter)
    try:
        base_fwd = probe_forward(base_lm, fams, opts)
        rep = drift_audit(base_lm, tuned, fams, opts, base_forward=base_fwd)
    finally:
        tuned.close()
    try:
        if self_check == "reload":
            twin = load_hf(base, what="base model")
            try:
                self_rep = drift_audit(base_lm, twin, fams, opts, base_forward=base_fwd)
            finally:
                twin.close()
        else:
            self_rep = drift_audit(base_lm, base_lm, fams, opts, base_forward=base_fwd)
    finally:
        base_lm.close()

    drifted = rep.drifted
    checks = {
        "related_family_drifts": related in drifted,
        "unrelated_families_quiet": not any(f in drifted for f in unrelated if f in {x.name for x in fams}),
        "base_vs_self_quiet": not self_rep.drifted and not self_rep.changed,
    }
    result = {
        "passed": all(checks.values()), "checks": checks, "related": related, "unrelated": list(unrelated),
        "drifted_families": drifted, "changed_families": rep.changed, "families": _family_summary(rep),
        "base_vs_self": {"drifted_families": self_rep.drifted, "changed_families": self_rep.changed,
                         "families": _family_summary(self_rep)},
        "finetune": {k: ft_log.get(k) for k in ("n_texts", "steps", "first_loss", "last_loss", "seconds", "options")},
        "corpus": {"seed": seed, "domains": list(domains), "n_per_domain": n_per_domain, "era_style": "victorian",
                   "date_headers": "1885-1892" if dates else None},
        "options": asdict(opts), "seconds": round(time.perf_counter() - t0, 1),
        "finetune_seconds": round(t_ft, 1),
    }
    artifacts.write_json(out / "drift_validation.json", result)
    artifacts.write_json(out / "drift_report.json", rep.to_dict())
    return result
