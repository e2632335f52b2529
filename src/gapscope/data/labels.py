"""Raw label values -> 0/1.

Public corpora spell their labels many ways (spam/ham, "Phishing Email"/"Safe Email",
1/0, true/false, ...). One built-in map covers the common spellings so a two-line spec
works; a user `label_map` overrides it entry by entry. A value neither map knows is an
error for that row (the caller counts it); ingestion turns "no row has a known label"
into a file-level error, because that means the map is wrong, not the rows.
"""

from __future__ import annotations

import decimal
import math
import numbers
import re
from typing import Any, Mapping

import numpy as np

from gapscope.data.rows import LEGITIMATE, PHISHING

BUILTIN_LABELS: dict[str, int] = {
    "1": PHISHING,
    "0": LEGITIMATE,
    "true": PHISHING,
    "false": LEGITIMATE,
    "spam": PHISHING,
    "ham": LEGITIMATE,
    "not spam": LEGITIMATE,
    "phishing": PHISHING,
    "phish": PHISHING,
    "malicious": PHISHING,
    "fraud": PHISHING,
    "scam": PHISHING,
    "legitimate": LEGITIMATE,
    "legit": LEGITIMATE,
    "safe": LEGITIMATE,
    "benign": LEGITIMATE,
    "not phishing": LEGITIMATE,
    "phishing email": PHISHING,
    "safe email": LEGITIMATE,
    "spam email": PHISHING,
    "ham email": LEGITIMATE,
    # the SpamAssassin public corpus's folder names (labels read with label = "folder")
    "spam_2": PHISHING,
    "easy_ham": LEGITIMATE,
    "easy_ham_2": LEGITIMATE,
    "hard_ham": LEGITIMATE,
}

_INTEGRAL_STR = re.compile(r"[+-]?\d+(?:\.0*)?")


class LabelError(ValueError):
    """A row's label cannot be mapped to 0/1; `reason` is the row-rejection reason."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def normalise_key(raw: Any) -> str | None:
    """The lookup key for a raw value: lowercased, whitespace collapsed, 1.0 -> "1".

    None / NaN / "" give None (a missing label).
    """
    if raw is None:
        return None
    if isinstance(raw, (bool, np.bool_)):
        return "true" if raw else "false"
    if isinstance(raw, numbers.Integral):
        return str(int(raw))
    if isinstance(raw, decimal.Decimal):  # Parquet's decimal columns: 1.0 is 1, as a float's is
        raw = float(raw)
    if isinstance(raw, numbers.Real):
        f = float(raw)
        if math.isnan(f):
            return None
        return str(int(f)) if f.is_integer() else repr(f)
    if isinstance(raw, str):
        s = " ".join(raw.lower().split())
        if not s:
            return None
        if _INTEGRAL_STR.fullmatch(s):  # "+01.0" -> "1", read as text: float() of 309 digits is inf
            digits = s.lstrip("+-").split(".")[0].lstrip("0") or "0"
            return "-" + digits if s.startswith("-") and digits != "0" else digits
        return s
    return " ".join(str(raw).lower().split()) or None


def check_label_map(label_map: Mapping[str, Any] | None) -> dict[str, int]:
    """Validate a user map and normalise its keys; raises ValueError naming a bad entry."""
    out: dict[str, int] = {}
    for key, value in (label_map or {}).items():
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        if isinstance(value, str) and normalise_key(value) in BUILTIN_LABELS:
            value = BUILTIN_LABELS[normalise_key(value)]
        if not isinstance(value, numbers.Integral) or int(value) not in (0, 1):
            raise ValueError(f"label_map value for {key!r} must be 0 or 1, got {value!r}")
        nk = normalise_key(key)
        if nk is None:
            raise ValueError(f"label_map key {key!r} is empty")
        out[nk] = int(value)
    return out


class LabelMapper:
    """A checked label map, built once per source so that rows are mapped with one dict lookup."""

    def __init__(self, label_map: Mapping[str, Any] | None = None):
        self.user = check_label_map(label_map)
        self.used: set[str] = set()  # the user keys some row matched: a key none matches is a typo to say

    def __call__(self, raw: Any) -> int:
        key = normalise_key(raw)
        if key is None:
            raise LabelError("missing label")
        if key in self.user:
            self.used.add(key)
            return self.user[key]
        if key in BUILTIN_LABELS:
            return BUILTIN_LABELS[key]
        shown = raw if isinstance(raw, str) else str(raw)
        if len(shown) > 40:
            shown = shown[:37] + "..."
        raise LabelError(f"unknown label value '{shown}'")


def parse_label(raw: Any, label_map: Mapping[str, Any] | None = None) -> int:
    """Map one raw label to 1 (phishing) / 0 (legitimate), or raise LabelError.

    `label_map` entries win over the built-in map; keys match case- and space-insensitively.
    Reasons: "missing label", "unknown label value 'foo'". A bad map raises ValueError.
    """
    return LabelMapper(label_map)(raw)
