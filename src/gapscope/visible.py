"""Hostile text made visible: control, bidi and zero-width characters shown as ⟨U+XXXX⟩.

Email text, ids and names come from files nobody vetted. Printed to a terminal, an ESC starts
an escape sequence (colours, a cleared screen, a hyperlink to anywhere); in the HTML report a
right-to-left override reverses everything after it, numbers included, and a zero-width space
makes two different domain names look the same. Showing these characters by code point keeps
what the text holds (phishing mail uses them on purpose) without letting them act. Tab, newline
and carriage return are ordinary layout and stay; so do the zero-width joiner and non-joiner,
which emoji and several scripts need.
"""

from __future__ import annotations

import json
import re
import unicodedata

_HIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0 but tab/newline/CR, DEL, C1 (U+009B is a CSI)
    "\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"  # bidi, invisible
    "\U000e0000-\U000e007f]"  # tag characters: invisible ASCII, used to smuggle text past readers
)


def _shown(m: re.Match) -> str:
    return f"⟨U+{ord(m.group()):04X}⟩"


def visible(text: str) -> str:
    """`text` with every hidden character replaced by its ⟨U+XXXX⟩ code point."""
    return _HIDDEN.sub(_shown, text)


def json_escaped(text: str) -> str:
    """A JSON document with every hidden character written as a \\uXXXX escape: the same JSON
    value, safe to print to a terminal (JSON text holds such characters only inside strings)."""
    return _HIDDEN.sub(lambda m: json.dumps(m.group())[1:-1], text)  # ASCII escapes, surrogate pairs


def has_hidden(text: str) -> bool:
    return _HIDDEN.search(text) is not None


# Default-ignorable code points that are not format characters: drawn as nothing, so a name
# holding one looks like the name without it (combining grapheme joiner, Hangul fillers,
# Khmer inherent vowels, Mongolian and other variation selectors, shorthand format controls).
_IGNORABLE = re.compile("[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0"
                        "\U0001bca0-\U0001bca3\U000e0100-\U000e01ef]")


def invisible_in_name(name: str) -> str | None:
    """The first character of a name that shows as nothing or moves text (None: there is none).
    Stricter than for email text: a name needs no joiner, and two names must not look alike."""
    for c in name:
        if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp") or _IGNORABLE.match(c):
            return f"U+{ord(c):04X}"
    return None
