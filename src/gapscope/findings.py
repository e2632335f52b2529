"""Findings: the typed, ranked output of every detector, and the detector registry.

A detector is a function `run(study) -> list[Finding]` registered by name; the
report renders any Finding, including kinds it has never heard of.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITY_ORDER = {"high": 3, "medium": 2, "low": 1, "info": 0}


@dataclass
class Finding:
    kind: str
    severity: str  # high | medium | low | info
    title: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    example_ids: list[str] = field(default_factory=list)
    score: float = 0.0  # ranks findings of one kind within a severity (each kind has its own unit; see rank)
    detector: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_ORDER:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Finding":
        """A finding read back from JSON; ValueError names what a hand-edited one lacks."""
        from dataclasses import MISSING, fields

        if not isinstance(d, dict):
            raise ValueError(f"a finding is a JSON object, not {type(d).__name__}")
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
                   and f.name not in d]
        if missing:
            raise ValueError(f"a finding without {', '.join(repr(m) for m in missing)}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


# The order in which kinds take turns within a severity: what fails, then why (what the model keys
# on, what the data teaches it), then where inside the model, then what else changed, then context.
KIND_TURNS = (
    "generalization_gap",
    "shortcut", "shortcut_attention", "backdoor_trigger", "label_noise", "domain_label_confound",
    "train_test_duplicates", "cross_domain_duplicates",
    "representation_failure", "readout_failure", "domain_aligned_decision", "late_overwrite",
    "edit_sensitivity", "behaviour_drift", "behaviour_change", "paradigm_comparison", "data_diversity",
    "shortcut_out_of_view", "one_class_domain", "rejected_rows", "top_features", "decision_layers",
    "shortcut_probe",
)


def rank(findings: list[Finding]) -> list[Finding]:
    """Most severe first. Within a severity the kinds take turns: each kind's findings in its own
    order (larger score first, ties by title), then the first of every kind, the second of every
    kind, ... in KIND_TURNS order (kinds not listed after, by name).

    A score ranks findings of one kind only (an F1 drop, a z, an attention enrichment): sorted
    together, one kind's unit decided the order, and in the demo the tf-idf cell's planted-footer
    shortcut (score 0.2) came after eight generalization gaps of the same severity."""
    turn = {k: i for i, k in enumerate(KIND_TURNS)}
    out: list[Finding] = []
    for sev in sorted({f.severity for f in findings}, key=lambda s: -SEVERITY_ORDER[s]):
        kinds: dict[str, list[Finding]] = {}
        for f in findings:
            if f.severity == sev:
                kinds.setdefault(f.kind, []).append(f)
        queues = [sorted(fs, key=lambda f: (-f.score, f.title))
                  for _, fs in sorted(kinds.items(), key=lambda kv: (turn.get(kv[0], len(turn)), kv[0]))]
        for i in range(max(len(q) for q in queues)):
            out += [q[i] for q in queues if i < len(q)]
    return out


Detector = Callable[[Any], list[Finding]]
_DETECTORS: dict[str, Detector] = {}
_AFTER: dict[str, tuple[str, ...]] = {}


def register_detector(name: str, after: tuple[str, ...] = ()) -> Callable[[Detector], Detector]:
    """`after`: detectors whose saved output this one reads; they run first, so a fresh run and a
    later `diagnose` read the same inputs."""
    def deco(fn: Detector) -> Detector:
        _DETECTORS[name] = fn
        _AFTER[name] = tuple(after)
        return fn

    return deco


def detectors() -> dict[str, Detector]:
    """The registered detectors in the order they run: registration order, each moved after the
    detectors it reads."""
    import gapscope.detectors  # noqa: F401  (importing registers the built-in detectors)

    order: list[str] = []
    pending = list(_DETECTORS)
    while pending:
        ready = next((n for n in pending if all(a in order or a not in _DETECTORS for a in _AFTER.get(n, ()))),
                     pending[0])  # a cycle runs in registration order rather than not at all
        order.append(ready)
        pending.remove(ready)
    return {n: _DETECTORS[n] for n in order}


def possessive(name: str) -> str:
    """A name's possessive for finding texts: "alerts'" rather than "alerts's"."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"
