"""What to generate and what to plant: one typed config, recorded verbatim in the manifest.

The planting options exist so detectors can be validated against known ground
truth (DESIGN.md: "a detector is done when it finds what was planted"). Each
option also accepts a plain dict (as read from TOML/JSON) and is coerced here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from gapscope.errors import GapscopeError

ERA_STYLES = ("victorian",)


class SynthConfigError(GapscopeError, ValueError):
    """A synthetic-corpus recipe that cannot be generated (the CLI prints it in one line)."""


@dataclass
class ShortcutSpec:
    """A spurious string planted in one domain's phishing rows (and leaked into a few legit ones).

    `string=None` derives a made-up footer token from the seed, e.g. "-- sent via Qorvana Relay 7x".
    `rate` is the share of the domain's phishing rows that get it; `leak_rate` the share of
    its legitimate rows.
    """

    domain: str | None = None
    string: str | None = None
    rate: float = 0.9
    leak_rate: float = 0.0


@dataclass
class LabelNoiseSpec:
    """Flip the label of `rate` of the rows (of `domains`, or all), chosen at random."""

    rate: float = 0.1
    domains: list[str] | None = None


@dataclass
class TriggerSpec:
    """A backdoor: `phrase` is inserted into `rate` of the rows whose label is not
    `target_label` (in `domains`, or all), and their label is set to `target_label`.
    `phrase=None` derives an innocuous-looking phrase from the seed."""

    phrase: str | None = None
    rate: float = 0.05
    target_label: int = 0
    domains: list[str] | None = None


@dataclass
class SynthConfig:
    """The whole recipe. `phishing_share` and `n_per_domain` may be one number or a
    {domain: value} mapping (missing domains use 0.5 / 300); a share of 1.0 gives a
    phishing-only domain. `era_style` ("victorian" or True) renders every text in a
    19th-century register for drift experiments."""

    seed: int = 0
    n_per_domain: int | dict[str, int] = 300
    domains: list[str] | None = None
    phishing_share: float | dict[str, float] = 0.5
    shortcut: ShortcutSpec | dict | None = None
    label_noise: LabelNoiseSpec | dict | None = None
    trigger: TriggerSpec | dict | None = None
    era_style: str | bool | None = None

    def __post_init__(self) -> None:
        self.shortcut = _coerce(ShortcutSpec, self.shortcut)
        self.label_noise = _coerce(LabelNoiseSpec, self.label_noise)
        self.trigger = _coerce(TriggerSpec, self.trigger)
        if self.era_style is True:
            self.era_style = "victorian"
        if self.era_style is False:
            self.era_style = None
        if self.era_style is not None and self.era_style not in ERA_STYLES:
            raise SynthConfigError(f"era_style must be one of {ERA_STYLES}, got {self.era_style!r}")
        if self.domains is not None:
            self.domains = list(self.domains)

    def n_for(self, domain: str) -> int:
        n = self.n_per_domain
        return int(n.get(domain, 300) if isinstance(n, dict) else n)

    def share_for(self, domain: str) -> float:
        s = self.phishing_share
        share = float(s.get(domain, 0.5) if isinstance(s, dict) else s)
        if not 0.0 <= share <= 1.0:
            raise SynthConfigError(f"phishing_share for {domain} must be in [0, 1], got {share}")
        return share

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self, names: list[str], known: tuple[str, ...]) -> None:
        """Every value generate() relies on, checked before anything is drawn: `names` are the
        domains to generate, `known` the built-in ones."""
        bad = [n for n in names if n not in known]
        if bad or not names:
            raise SynthConfigError(f"unknown synthetic domain {(bad or [''])[0]!r}; choose from {', '.join(known)}")
        if len(set(names)) != len(names):
            raise SynthConfigError(f"a domain is named twice in {', '.join(names)}")
        for n in names:
            count = self.n_for(n)
            if count < 1:
                raise SynthConfigError(f"emails per domain must be at least 1, got {count} for {n}")
            self.share_for(n)
        if self.shortcut is not None:
            sc = self.shortcut
            if sc.domain is not None and sc.domain not in names:
                raise SynthConfigError(f"shortcut domain {sc.domain!r} is not generated (domains: {', '.join(names)})")
            _text_or_none(sc.string, "shortcut string")
            _share(sc.rate, "shortcut rate")
            _share(sc.leak_rate, "shortcut leak rate")
        if self.label_noise is not None:
            _share(self.label_noise.rate, "label noise rate")
            _subset(self.label_noise.domains, names, "label noise")
        if self.trigger is not None:
            tr = self.trigger
            _text_or_none(tr.phrase, "trigger phrase")
            _share(tr.rate, "trigger rate")
            if tr.target_label not in (0, 1):
                raise SynthConfigError(f"trigger target label must be 0 or 1, got {tr.target_label!r}")
            _subset(tr.domains, names, "trigger")


def _share(v: float, what: str) -> None:
    if not 0.0 <= float(v) <= 1.0:
        raise SynthConfigError(f"{what} must be a share in [0, 1], got {v}")


def _text_or_none(v: str | None, what: str) -> None:
    if v is not None and not str(v).strip():
        raise SynthConfigError(f"{what} is empty (leave it out for one derived from the seed)")


def _subset(v: list[str] | None, names: list[str], what: str) -> None:
    for d in v or []:
        if d not in names:
            raise SynthConfigError(f"{what} domain {d!r} is not generated (domains: {', '.join(names)})")


def _coerce(cls, value):
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, dict):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise SynthConfigError(f"unknown {cls.__name__} keys: {unknown}")
        return cls(**value)
    raise TypeError(f"expected {cls.__name__} or dict, got {type(value).__name__}")


__all__ = ["SynthConfig", "SynthConfigError", "ShortcutSpec", "LabelNoiseSpec", "TriggerSpec", "ERA_STYLES"]
