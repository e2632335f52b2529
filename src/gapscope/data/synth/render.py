"""Turn one DomainSpec into draft emails: pick labels, templates, fill slots, check length.

Drafts stay mutable (planting edits them) and become Rows only at the end, so ids
are computed on the final text.
"""

from __future__ import annotations

import random
from collections import ChainMap
from dataclasses import dataclass, field
from typing import Any

from .templating import DomainSpec, Filler, Template

MAX_TRIES = 40


@dataclass
class Draft:
    domain: str
    label: int
    subject: str
    body: str
    rationale: str
    meta: dict[str, Any] = field(default_factory=dict)


def domain_rng(seed: int, domain: str, purpose: str = "render") -> random.Random:
    """One independent stream per (seed, domain, purpose): adding a domain or a plant
    never changes what another domain draws. String seeds are hashed with SHA-512 by
    `random`, so this is stable across processes (unlike hash())."""
    return random.Random(f"gapscope-synth:{seed}:{domain}:{purpose}")


def pick_template(spec: DomainSpec, label: int, rng: random.Random) -> Template:
    pool = [t for t in spec.templates if t.label == label]
    hard = [t for t in pool if t.hard]
    easy = [t for t in pool if not t.hard]
    if hard and (not easy or rng.random() < spec.hard_share):
        pool = hard
    elif easy:
        pool = easy
    if not pool:
        raise ValueError(f"domain {spec.name} has no templates for label {label}")
    total = sum(t.weight for t in pool)
    x = rng.random() * total
    for t in pool:
        x -= t.weight
        if x < 0:
            return t
    return pool[-1]


def render_one(spec: DomainSpec, template: Template, rng: random.Random) -> Draft:
    """Fill `template` until its word count lands in the domain's range."""
    lo, hi = spec.words
    for _ in range(MAX_TRIES):
        f = Filler(ChainMap(dict(template.slots), dict(spec.slots)), rng)
        subject = " ".join(f.fill(f.choice(template.subject)).split())
        body = f.paragraphs(template.body, spec.sentence_case)
        n_words = len(subject.split()) + len(body.split()) + 1  # +1: "Subject:"
        if lo <= n_words <= hi:
            break
    return Draft(
        domain=spec.name,
        label=template.label,
        subject=subject,
        body=body,
        rationale=f.fill(template.rationale),
        meta={"template": template.name, "sender": f.fill(template.sender), "hard": template.hard},
    )


def render_domain(spec: DomainSpec, n: int, phishing_share: float, seed: int) -> list[Draft]:
    rng = domain_rng(seed, spec.name)
    n_phish = int(round(n * phishing_share))
    labels = [1] * n_phish + [0] * (n - n_phish)
    rng.shuffle(labels)
    return [render_one(spec, pick_template(spec, label, rng), rng) for label in labels]
