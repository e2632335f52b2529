"""generate(config) -> SynthCorpus: render every domain, apply the era style, plant, finalise ids.

Order matters and is fixed: era style first (so planted strings survive verbatim),
then shortcut, trigger, and label noise (which skips triggered rows, so each row
carries at most one label manipulation). Ids are computed last, on the final text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from ..rows import Row, compose_text, stable_id
from .config import SynthConfig
from .corpus import SynthCorpus
from .domains import DOMAIN_NAMES, load
from .era import STYLES
from .plant import (default_shortcut_string, default_trigger_phrase, plant_label_noise, plant_shortcut,
                    plant_trigger)
from .render import Draft, render_domain


def generate(config: SynthConfig | None = None) -> SynthCorpus:
    """Build the synthetic corpus described by `config` (defaults: 6 domains x 300 rows)."""
    # replace() re-runs __post_init__, so fields assigned after construction
    # (cfg.shortcut = {...}) are coerced and validated like constructor arguments.
    config = replace(config) if config is not None else SynthConfig()
    names = list(config.domains) if config.domains is not None else list(DOMAIN_NAMES)
    config.check(names, DOMAIN_NAMES)
    specs = [load(name) for name in names]
    drafts: list[Draft] = []
    for spec in specs:
        drafts += render_domain(spec, config.n_for(spec.name), config.share_for(spec.name), config.seed)

    if config.era_style:
        restyle = STYLES[config.era_style]
        for d in drafts:
            d.subject, d.body = restyle(d.subject), restyle(d.body)

    planted: dict = {}
    if config.shortcut is not None:
        sc = config.shortcut
        domain = sc.domain or ("mailinglist" if "mailinglist" in names else names[0])
        string = sc.string or default_shortcut_string(config.seed)
        planted["shortcut"] = ({"domain": domain, "string": string, "rate": sc.rate, "leak_rate": sc.leak_rate},
                               plant_shortcut(drafts, domain, sc, string, config.seed))
    triggered: list[int] = []
    if config.trigger is not None:
        tr = config.trigger
        phrase = tr.phrase or default_trigger_phrase(config.seed)
        triggered = plant_trigger(drafts, tr, phrase, config.seed)
        planted["trigger"] = ({"phrase": phrase, "target_label": tr.target_label, "rate": tr.rate,
                               "domains": tr.domains}, triggered)
    if config.label_noise is not None:
        ln = config.label_noise
        planted["label_noise"] = ({"rate": ln.rate, "domains": ln.domains},
                                  plant_label_noise(drafts, ln, config.seed, set(triggered)))

    rows = finalise(drafts)
    return SynthCorpus(rows=rows, manifest=build_manifest(config, names, specs, rows, planted))


def finalise(drafts: list[Draft]) -> list[Row]:
    """Drafts -> Rows with content ids; exact repeats within a domain get distinct occurrences."""
    seen: Counter = Counter()
    rows = []
    for d in drafts:
        text = compose_text(d.subject, d.body)
        occurrence = seen[(d.domain, text)]
        seen[(d.domain, text)] += 1
        rows.append(Row(id=stable_id(d.domain, text, occurrence), domain=d.domain, text=text, label=d.label,
                        subject=d.subject, body=d.body, rationale=d.rationale, meta=dict(d.meta)))
    return rows


def build_manifest(config: SynthConfig, names: list[str], specs, rows: list[Row], planted: dict) -> dict:
    """What was generated and, row by row, what was planted (keys are null when not planted)."""
    domains = {}
    for spec in specs:
        mine = [r for r in rows if r.domain == spec.name]
        domains[spec.name] = {"n": len(mine), "phishing": sum(r.label for r in mine),
                              "hard": sum(bool(r.meta.get("hard")) for r in mine),
                              "description": spec.description}
    manifest = {
        "generator": "gapscope.data.synth",
        "seed": config.seed,
        "config": config.to_dict(),
        "domains": domains,
        "era_style": {"style": config.era_style} if config.era_style else None,
        "shortcut": None,
        "label_noise": None,
        "trigger": None,
    }
    if "shortcut" in planted:
        info, idx = planted["shortcut"]
        manifest["shortcut"] = {**info, "row_ids": [rows[i].id for i in idx]}
    if "trigger" in planted:
        info, idx = planted["trigger"]
        manifest["trigger"] = {**info, "row_ids": [rows[i].id for i in idx]}
    if "label_noise" in planted:
        info, flips = planted["label_noise"]
        manifest["label_noise"] = {**info, "flipped": [
            {"id": rows[i].id, "domain": rows[i].domain, "original_label": a, "noisy_label": b} for i, a, b in flips]}
    return manifest
