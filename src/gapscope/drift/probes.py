"""Probe sets for the drift audit: prompts unrelated to the fine-tuning task, grouped in families.

Shipped as TOML under gapscope/data/probes/ (one family per file); users add their
own files with the same schema (`gapscope drift --probes FILE`). A file whose family
name already exists adds its probes to that family.

    [family]
    name = "time-period"
    description = "What year it is, recent inventions, current technology."
    reference_label = "modern"      # what the `reference` answers are
    contrast_label = "outdated"     # what the `contrast` answers are

    [[probes]]
    id = "year-now"
    prompt = "Q: What year is it?\\nA: It is"
    reference = [" 2024", " 2025"]  # str or list of alternatives; leading space matters
    contrast = [" 1889", " 1890"]   # optional; needs `reference`

A probe without answers still counts for the KL divergence and greedy-change measures.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from gapscope.errors import GapscopeError

_FAMILY_KEYS = {"name", "description", "reference_label", "contrast_label"}
_PROBE_KEYS = {"id", "prompt", "reference", "contrast", "note"}


@dataclass(frozen=True)
class Probe:
    id: str
    prompt: str
    reference: tuple[str, ...] = ()
    contrast: tuple[str, ...] = ()

    @property
    def paired(self) -> bool:
        return bool(self.reference) and bool(self.contrast)


@dataclass
class ProbeFamily:
    name: str
    description: str = ""
    reference_label: str = "reference"
    contrast_label: str = "contrast"
    probes: list[Probe] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def _answers(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise GapscopeError(f"{where}: answers must be a non-empty string or a list of non-empty strings")
    return tuple(value)


def parse_probe_file(raw: dict, where: str) -> ProbeFamily:
    fam = raw.get("family")
    if not isinstance(fam, dict) or not isinstance(fam.get("name"), str) or not fam["name"].strip():
        raise GapscopeError(f"{where}: needs a [family] table with a name")
    unknown = set(fam) - _FAMILY_KEYS
    if unknown:
        raise GapscopeError(f"{where}: [family] has unknown key(s) {', '.join(sorted(unknown))}")
    extra = set(raw) - {"family", "probes"}
    if extra:
        raise GapscopeError(f"{where}: unknown top-level key(s) {', '.join(sorted(extra))}")
    family = ProbeFamily(name=fam["name"].strip(), description=str(fam.get("description", "")),
                         reference_label=str(fam.get("reference_label", "reference")),
                         contrast_label=str(fam.get("contrast_label", "contrast")), sources=[where])
    probes = raw.get("probes")
    if not isinstance(probes, list) or not probes:
        raise GapscopeError(f"{where}: needs at least one [[probes]] entry")
    seen: set[str] = set()
    for i, p in enumerate(probes, 1):
        at = f"{where}: probe #{i}"
        if not isinstance(p, dict):
            raise GapscopeError(f"{at}: must be a table")
        unknown = set(p) - _PROBE_KEYS
        if unknown:
            raise GapscopeError(f"{at}: unknown key(s) {', '.join(sorted(unknown))}")
        prompt = p.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise GapscopeError(f"{at}: needs a non-empty prompt")
        pid = str(p.get("id") or f"{family.name}-{i}")
        if pid in seen:
            raise GapscopeError(f"{at}: duplicate id {pid!r}")
        seen.add(pid)
        ref, con = _answers(p.get("reference"), at), _answers(p.get("contrast"), at)
        if con and not ref:
            raise GapscopeError(f"{at}: a contrast answer needs a reference answer")
        family.probes.append(Probe(pid, prompt, ref, con))
    return family


def load_probe_file(path: Path | str) -> ProbeFamily:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GapscopeError(f"probe file not found: {path}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise GapscopeError(f"{path}: not a valid TOML probe file ({e})") from None
    return parse_probe_file(raw, str(path))


def builtin_probe_files() -> list[Path]:
    root = resources.files("gapscope") / "data" / "probes"
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml"))


def load_probe_sets(extra: list[Path | str] | None = None, *, builtin: bool = True,
                    families: list[str] | None = None) -> list[ProbeFamily]:
    """The shipped families (unless builtin=False) plus the user's files; a user file whose
    family name exists extends it. `families` keeps only the named ones (in that order)."""
    merged: dict[str, ProbeFamily] = {}
    files = (builtin_probe_files() if builtin else []) + [Path(p) for p in extra or []]
    for f in files:
        fam = load_probe_file(f)
        if fam.name in merged:
            base = merged[fam.name]
            ids = {p.id for p in base.probes}
            clash = [p.id for p in fam.probes if p.id in ids]
            if clash:
                raise GapscopeError(f"{f}: probe id(s) {', '.join(clash[:3])} already exist in family {fam.name!r}")
            base.probes += fam.probes
            base.sources += fam.sources
        else:
            merged[fam.name] = fam
    if families:
        missing = [n for n in families if n not in merged]
        if missing:
            from gapscope.suggest import with_hints

            raise GapscopeError(f"unknown probe family {with_hints(missing, merged)} (known: {', '.join(merged)})")
        return [merged[n] for n in families]
    return list(merged.values())
