"""Token classes of an email: which of the model's tokens belong to URLs, e-mail addresses or the
sender line, the greeting, urgency words, or a suspected shortcut string.

Classes are found as character spans in the text (regular expressions, plus literal
matches of the suspected strings) and mapped onto tokens through the tokenizer's offsets:
a token belongs to a class when its characters overlap one of the class' spans.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gapscope.attribution.edits import URGENCY_CJK_RE, URGENCY_KO_RE, greeting_span, has_hangul
from gapscope.attribution.words import email_pattern, has_no_space_script, url_pattern
from gapscope.internals.view import Item

# Links, addresses and the greeting are what the minimal-pair edits remove (attribution/words.py,
# attribution/edits.py): a class here and an edit there name the same characters. The classes had their
# own patterns: links on ten TLDs only, and any line opening with "Hello" marked whole as the greeting,
# the message after it included.
HEADER_LINE = re.compile(r"^(?:from|reply-to|sender|return-path)[ \t]*:[^\n]*", re.IGNORECASE | re.MULTILINE)
URGENCY = re.compile(
    r"\b(?:urgent(?:ly)?|immediate(?:ly)?|right away|asap|act now|as soon as possible|final (?:notice|warning|reminder)|"
    r"last chance|within \d+ (?:hours?|hrs|minutes|days)|(?:by|before) (?:end of day|midnight|tonight|today)|"
    r"expires?|expiring|time[- ]sensitive|action required|deadline|without delay|suspend(?:ed)?|locked|"
    r"limited time|now)\b", re.IGNORECASE)


CLASSES = ("url", "address", "greeting", "urgency", "shortcut")


def phrase_pattern(s: str) -> re.Pattern:
    """A suspected string as a pattern: literal, case-insensitive, any whitespace between words
    (shortcut findings may cite a lower-cased word n-gram of the original); beside a character of a
    no-space script the whitespace may be absent ('paypal 账户' is written 'PayPal账户')."""
    words = s.split()
    if not words:
        return re.compile(re.escape(s), re.IGNORECASE)
    body = re.escape(words[0])
    for a, b in zip(words, words[1:]):
        body += (r"\s*" if has_no_space_script(a[-1] + b[0]) else r"\s+") + re.escape(b)
    return re.compile(body, re.IGNORECASE)


def char_spans(text: str, shortcuts: Sequence[str] = ()) -> dict[str, list[tuple[int, int]]]:
    spans: dict[str, list[tuple[int, int]]] = {c: [] for c in CLASSES}
    for name, pat in (("url", url_pattern(text)), ("address", email_pattern(text)), ("urgency", URGENCY)):
        spans[name] = [m.span() for m in pat.finditer(text)]
    spans["address"] = sorted(spans["address"] + [m.span() for m in HEADER_LINE.finditer(text)])
    no_space = has_no_space_script(text)
    if no_space:  # 紧急, 立即, 24小时内, 至急, ... (none of them is an English word)
        spans["urgency"] = sorted(spans["urgency"] + [m.span() for m in URGENCY_CJK_RE.finditer(text)])
    korean = has_hangul(text)
    if korean:  # 긴급, 즉시, 24시간 이내, ...
        spans["urgency"] = sorted(spans["urgency"] + [m.span() for m in URGENCY_KO_RE.finditer(text)])
    g = greeting_span(text)
    if g:
        spans["greeting"] = [g]
    for s in shortcuts:
        if s and s.strip():
            spans["shortcut"] += [m.span() for m in phrase_pattern(s.strip()).finditer(text)]
    return spans


def token_classes(item: Item, shortcuts: Sequence[str] = ()) -> dict[str, list[int]]:
    """{class: positions in item.ids}; empty lists when the tokenizer gives no offsets."""
    out: dict[str, list[int]] = {c: [] for c in CLASSES}
    if item.offsets is None:
        return out
    spans = char_spans(item.text, shortcuts)
    for c, sp in spans.items():
        if not sp:
            continue
        for j, (a, b) in enumerate(item.offsets):
            if b <= a:
                continue
            if any(a < e and s < b for s, e in sp):
                out[c].append(item.email_start + j)
    return out
