"""The nearest known name to a misspelt one, for error messages ("(did you mean shortcuts?)")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: object, known: Iterable[object]) -> str:
    """" (did you mean X?)" when one known name is close to `name`, else ""."""
    near = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


def with_hints(names: Iterable[object], known: Iterable[object]) -> str:
    """Unknown names joined by commas, each with its hint."""
    known = list(known)
    return ", ".join(f"{n}{did_you_mean(n, known)}" for n in names)
