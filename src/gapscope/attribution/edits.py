"""Minimal edits of an email: the perturbations that minimal pairs and the shortcut check apply.

Every edit is a function text -> edited text, or None when it does not apply (an email
without URLs has no "remove URLs" pair). Edits change as little as possible: the rest of
the email, its lines and its whitespace stay as they were.

Each edit is tagged with what it does to the label evidence:
  label-preserving  the email's class should not change (greeting, a suspected shortcut);
                    a model whose decision flips is keying on something it should not
  cue-removing      it removes a genuine cue (links, the sender's look-alike domain,
                    urgency); a flip shows what the model depends on, not a fault
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gapscope.attribution.words import URL_RE, feature_key, is_wordlike, split_words

_URL = re.compile(URL_RE)
_EMAIL = re.compile(r"([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)")
_TAG = re.compile(r"</?[A-Za-z][^<>\n]{0,200}>|&(?:nbsp|amp|lt|gt|quot|#\d+);")
_SHOUT = re.compile(r"\b[A-Z][A-Z0-9]{2,}\b")
_GREETING = re.compile(
    r"^[ \t]*(?:dear|hi|hello|hey|greetings|good (?:morning|afternoon|evening)|attention|to whom it may concern)"
    r"\b[^\n]{0,80}\n", re.IGNORECASE | re.MULTILINE)
NEUTRAL_DOMAIN = "mail.example.org"

URGENCY = [
    (r"\burgent(?:ly)?\b", ""), (r"\bimmediate(?:ly)?\b", ""), (r"\bright away\b", ""), (r"\basap\b", ""),
    (r"\bact now\b", "reply"), (r"\bas soon as possible\b", ""), (r"\bfinal (?:notice|warning|reminder)\b", "notice"),
    (r"\blast chance\b", "reminder"), (r"\bwithin \d+ (?:hours|hrs|minutes|days)\b", ""),
    (r"\b(?:by|before) (?:end of day|midnight|tonight|today)\b", ""), (r"\bexpires? (?:today|tonight|soon)\b", ""),
    (r"\btime[- ]sensitive\b", ""), (r"\baction required\b", "information"), (r"\bdeadline\b", "date"),
    (r"\bwithout delay\b", ""), (r"\bnow\b(?=[!.])", ""),
]
_URGENCY = [(re.compile(p, re.IGNORECASE), r) for p, r in URGENCY]


def _changed(old: str, new: str) -> str | None:
    return new if new != old else None


def remove_urls(text: str) -> str | None:
    return _changed(text, _URL.sub("", text))


def swap_sender_domain(text: str) -> str | None:
    """Every e-mail address keeps its local part but gets a neutral domain."""
    return _changed(text, _EMAIL.sub(lambda m: f"{m.group(1)}@{NEUTRAL_DOMAIN}", text))


def neutralize_urgency(text: str) -> str | None:
    out = text
    for pat, rep in _URGENCY:
        out = pat.sub(rep, out)
    out = re.sub(r"[ \t]{2,}", " ", out) if out != text else out
    return _changed(text, out)


def drop_greeting(text: str) -> str | None:
    return _changed(text, _GREETING.sub("", text, count=1))


def calm_exclamations(text: str) -> str | None:
    return _changed(text, re.sub(r"!+", ".", text))


def lowercase_shouting(text: str) -> str | None:
    return _changed(text, _SHOUT.sub(lambda m: m.group(0).lower(), text))


def strip_html(text: str) -> str | None:
    return _changed(text, _TAG.sub("", text))


def phrase_positions(text: str, phrase: Sequence[str]) -> list[list[int]]:
    """Word indices of every occurrence of `phrase` (feature keys of consecutive word-like words)."""
    words = split_words(text)
    idx = [i for i, c in enumerate(words.cores) if is_wordlike(c)]
    keys = [feature_key(words.cores[i]) for i in idx]
    n = len(phrase)
    out = []
    a = 0
    while a + n <= len(keys):
        if keys[a:a + n] == list(phrase):
            out.append(idx[a:a + n])
            a += n
        else:
            a += 1
    return out


PLACEHOLDERS = frozenset({"<url>", "<email>", "<num>", "<html-tag>"})


def phrase_mask(text: str, phrase: Sequence[str]) -> np.ndarray:
    """Which words (of split_words(text)) removing the phrase deletes: every occurrence's words and
    the punctuation between them. Placeholder words (<url>, <email>, <num>, <html-tag>) stay:
    removing the phrase's other words already breaks the n-gram, and deleting a URL or an address
    would remove a cue besides the phrase. A phrase of placeholders only removes them."""
    words = split_words(text)
    mask = np.zeros(len(words), dtype=bool)
    only_placeholders = all(k in PLACEHOLDERS for k in phrase)
    for span in phrase_positions(text, phrase):
        drop = [i for i, k in zip(span, phrase) if only_placeholders or k not in PLACEHOLDERS]
        for a, b in zip(drop, drop[1:]):
            mask[a:b + 1] = True
        mask[drop] = True
    return mask


def remove_phrase(text: str, phrase: Sequence[str]) -> str | None:
    """Remove every occurrence of a word n-gram (as feature keys, e.g. ["sent", "via", "qorvana"])."""
    mask = phrase_mask(text, phrase)
    if not mask.any():
        return None
    return split_words(text).compose(~mask)


@dataclass(frozen=True)
class Edit:
    name: str
    effect: str  # label-preserving | cue-removing
    apply: Callable[[str], str | None]
    description: str


EDITS = [
    Edit("remove_urls", "cue-removing", remove_urls, "remove every URL"),
    Edit("swap_sender_domain", "cue-removing", swap_sender_domain,
         f"replace the domain of every e-mail address with {NEUTRAL_DOMAIN}"),
    Edit("neutralize_urgency", "cue-removing", neutralize_urgency, "drop urgency words and deadlines"),
    Edit("drop_greeting", "label-preserving", drop_greeting, "drop the greeting line"),
]


def phrase_edit(phrase: Sequence[str], label: str | None = None) -> Edit:
    shown = label or " ".join(phrase)
    effect = "cue-removing" if all(k in PLACEHOLDERS for k in phrase) else "label-preserving"
    return Edit(f"remove '{shown}'", effect, lambda t: remove_phrase(t, list(phrase)),
                f"remove the suspected shortcut '{shown}'")
