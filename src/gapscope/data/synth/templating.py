"""A tiny slot-filling grammar, so each domain's emails are written as readable text.

Why a grammar rather than f-strings: one email template must yield thousands of
distinct but natural emails, so every sentence offers alternatives and every name,
amount and URL is drawn at random. The syntax stays small enough to read as email:

- ``{slot}``          a value drawn from the slot table (a list, a string, or a
                      callable ``fn(filler) -> str``); drawn once per email, so the
                      same ``{first}`` is the same person in greeting and signature.
- ``{slot:lower}``    the same value through a filter (lower, upper, title, cap, slug).
- ``[a|b|c]``         an inline alternative, drawn fresh each time it appears.
- ``(p, "text")``     in a template body: a paragraph kept with probability p.

Everything draws from one ``random.Random`` so output is deterministic per seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Union

_ALT = re.compile(r"\[([^\[\]]*\|[^\[\]]*)\]")
_SLOT = re.compile(r"\{(\w+)(?::(\w+))?\}")


_SENTENCE_START = re.compile(r"(^|[.!?]\s+|\n)([a-z])(?=[a-z']*(?:[\s,;!?)]|$))")


def capitalise(text: str) -> str:
    """Upper-case a lower-case letter that starts a line or follows a sentence end,
    so a slot value like "the boardroom" reads right at the start of a sentence."""
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)


def slug(text: str) -> str:
    """Lower-case letters and digits only: how a company name becomes a domain label."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


_FILTERS: dict[str, Callable[[str], str]] = {
    "lower": str.lower,
    "upper": str.upper,
    "title": str.title,
    "cap": lambda s: s[:1].upper() + s[1:],
    "slug": slug,
}

Part = Union[str, tuple[float, str]]


@dataclass(frozen=True)
class Template:
    """One kind of email (e.g. "mailbox quota phish"), with its label and why.

    `hard` marks templates written to look like the other class (a real password
    reset, a phish that copies a real sign-in alert): they are the ~10% of rows that
    keep the task from being trivially separable.
    """

    name: str
    label: int
    subject: Sequence[str]
    body: Sequence[Part]
    rationale: str
    sender: str
    hard: bool = False
    weight: float = 1.0
    slots: Mapping[str, Any] = field(default_factory=dict)  # overrides for this template only


@dataclass(frozen=True)
class DomainSpec:
    """Everything that makes one domain look like itself."""

    name: str
    description: str
    slots: Mapping[str, Any]
    templates: Sequence[Template]
    hard_share: float = 0.1
    words: tuple[int, int] = (40, 200)
    sentence_case: bool = True


class Filler:
    """Fills one email: caches slot values so names and domains stay consistent."""

    def __init__(self, slots: Mapping[str, Any], rng: random.Random):
        self.slots = slots
        self.rng = rng
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str:
        if name not in self.values:
            if name not in self.slots:
                raise KeyError(f"unknown template slot {{{name}}}")
            src = self.slots[name]
            if callable(src):
                raw = src(self)
            elif isinstance(src, str):
                raw = src
            else:
                raw = src[self.rng.randrange(len(src))]
            self.values[name] = self.fill(str(raw))
        return self.values[name]

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.rng.randrange(len(options))]

    def _slot(self, m: re.Match) -> str:
        value = self.get(m.group(1))
        return _FILTERS[m.group(2)](value) if m.group(2) else value

    def fill(self, text: str) -> str:
        for _ in range(12):
            new = _ALT.sub(lambda m: self.choice(m.group(1).split("|")), text)
            new = _SLOT.sub(self._slot, new)
            if new == text:
                return new
            text = new
        return text

    def paragraphs(self, parts: Sequence[Part], sentence_case: bool = True) -> str:
        out = []
        for part in parts:
            if isinstance(part, tuple):
                p, part = part
                if self.rng.random() >= p:
                    continue
            text = self.fill(part).strip("\n").rstrip()  # keep code indentation
            if sentence_case:
                text = capitalise(text)
            if text:
                out.append(text)
        return "\n\n".join(out)


def as_hard(templates: Sequence[Template]) -> list[Template]:
    """Mark templates as the deliberately ambiguous ones (see Template.hard)."""
    return [replace(t, hard=True) for t in templates]
