"""What an option's value may be: its type and its range, checked when a spec is read.

A detector or model reads its options long after the spec was loaded (for `gapscope run`,
after every cell has trained), and a value out of range there either crashes with a library's
wording (sklearn's `C`, numpy's seed) or, worse, runs and means nothing (`folds = 1`, a share
of 7). Each options table declares a rule per key next to its defaults; `check_values` applies
them in the first second and names the table, the key and the rule.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from gapscope.errors import GapscopeError

# numpy's and scikit-learn's seeds are 32-bit: a larger one failed every cell after validation passed
MAX_SEED = 2**32 - 1


class OptionError(GapscopeError, ValueError):
    """An option value its rule refuses (a ValueError too, for callers that catch those)."""


@dataclass(frozen=True)
class Rule:
    kind: str  # whole | number | count_or_share | flag | choice | text | names
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    none_ok: bool = False

    def describe(self) -> str:
        if self.kind == "flag":
            what = "true or false"
        elif self.kind == "count_or_share":
            what = "a whole number >= 1 (a count) or a number in [0, 1] with a decimal point (a share)"
        elif self.kind == "choice":
            what = "one of " + ", ".join(map(str, self.choices))
        elif self.kind == "text":
            what = "a non-empty string"
        elif self.kind == "names":
            what = "a list of names" + (f" from {', '.join(self.choices)}" if self.choices else "")
        else:
            what = "a whole number" if self.kind == "whole" else "a number"
            lo = None if self.lo is None else f"{'>' if self.lo_open else '>='} {_num(self.lo)}"
            hi = None if self.hi is None else f"{'<' if self.hi_open else '<='} {_num(self.hi)}"
            bounds = " and ".join(b for b in (lo, hi) if b)
            what += f" {bounds}" if bounds else ""
        return what + (" (or left out)" if self.none_ok else "")

    def accepts(self, v: Any) -> bool:
        if v is None:
            return self.none_ok
        if self.kind == "flag":
            return isinstance(v, bool)
        if self.kind == "count_or_share":
            return not isinstance(v, bool) and ((isinstance(v, int) and v >= 1)
                                                or (isinstance(v, float) and math.isfinite(v) and 0 <= v <= 1))
        if self.kind == "choice":
            return isinstance(v, (str, int, float)) and not isinstance(v, bool) and v in self.choices
        if self.kind == "text":
            return isinstance(v, str) and bool(v.strip())
        if self.kind == "names":
            return isinstance(v, list) and all(isinstance(x, str) and x.strip() for x in v) \
                and (not self.choices or all(x in self.choices for x in v))
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if self.kind == "whole" and not isinstance(v, int):
            return False
        if not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def whole(lo: int | None = None, hi: int | None = None, none_ok: bool = False) -> Rule:
    return Rule("whole", lo, hi, none_ok=none_ok)


def number(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False,
           none_ok: bool = False) -> Rule:
    return Rule("number", lo, hi, lo_open, hi_open, none_ok=none_ok)


def share(lo_open: bool = False) -> Rule:
    """A share in [0, 1] ((0, 1] with lo_open)."""
    return Rule("number", 0.0, 1.0, lo_open=lo_open)


def count_or_share() -> Rule:
    """sklearn's min_df / max_df convention: an int counts, a float is a share."""
    return Rule("count_or_share")


def flag() -> Rule:
    return Rule("flag")


def one_of(*choices: Any, none_ok: bool = False) -> Rule:
    return Rule("choice", choices=tuple(choices), none_ok=none_ok)


def text(none_ok: bool = False) -> Rule:
    return Rule("text", none_ok=none_ok)


def names(*choices: str) -> Rule:
    return Rule("names", choices=tuple(choices))


def check_values(where: str, values: dict[str, Any], rules: dict[str, Rule]) -> None:
    """Raise a one-line GapscopeError for the first value its rule refuses (keys without a
    rule are left to the table's own key check). `where` ("[detectors.shortcuts]") may be empty."""
    for key, v in values.items():
        rule = rules.get(key)
        if rule is not None and not rule.accepts(v):
            raise OptionError(f"{where + ' ' if where else ''}{key} must be {rule.describe()}, got {_shown(v)}")


def check_keys(where: str, values: dict[str, Any], known) -> None:
    """Refuse the keys a table does not know, each with the nearest known name and the list.
    `known`: the names, or an options dataclass (its fields(), never __dataclass_fields__, which
    lists the RULES class variable too: accepted as a key, it failed inside the constructor)."""
    if dataclasses.is_dataclass(known):
        known = [f.name for f in dataclasses.fields(known)]
    known = sorted(known)
    unknown = sorted(set(values) - set(known))
    if unknown:
        from gapscope.suggest import with_hints

        raise OptionError(f"{where}: unknown key(s) {with_hints(unknown, known)} (known: {', '.join(known)})")


def check_fields(obj: Any, rules: dict[str, Rule], where: str = "") -> None:
    """check_values over a dataclass's fields (call it from __post_init__)."""
    check_values(where, {k: getattr(obj, k) for k in rules}, rules)


def _shown(v: Any) -> str:
    return repr(v) if isinstance(v, (str, bool)) or v is None else str(v)
