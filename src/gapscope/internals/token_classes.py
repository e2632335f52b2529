"""Token classes of an email: which of the model's tokens belong to URLs, e-mail addresses or the
sender line, the greeting, urgency words, or a suspected shortcut string.

Classes are found as character spans in the text (regular expressions, plus literal
matches of the suspected strings) and mapped onto tokens through the tokenizer's offsets:
a token belongs to a class when its characters overlap one of the class' spans.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gapscope.attribution.edits import GREETING_CJK_RE, GREETING_KO_RE, URGENCY_CJK_RE, URGENCY_KO_RE, has_hangul
from gapscope.attribution.words import has_no_space_script
from gapscope.internals.view import Item

# A host or an address is tried only where its run of name characters starts (the lookbehinds): tried
# from every character, a 20,000-character run ('a-a-a-...', 'ab.ab.ab...', a base64 blob) cost its
# length squared (4-8 s for the host, 1.3 s for the address). A later start in a run matches only
# where the run's start does, so the matches are the same but for one glued to the end of another.
URL = re.compile(r"(?:https?://|www\.)[^\s<>\"')\]]+|\b(?<!\w)(?<!\w-)(?<!\w\.)[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|io|info|biz|co|ru|cn|xyz)"
                 r"(?:/[^\s<>\"')\]]*)?", re.IGNORECASE)
ADDRESS = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+|^(?:from|reply-to|sender|return-path)[ \t]*:[^\n]*",
                     re.IGNORECASE | re.MULTILINE)
GREETING = re.compile(r"^[ \t]*(?:dear|hi|hello|hey|greetings|good (?:morning|afternoon|evening)|attention|"
                      r"to whom it may concern)\b[^\n]{0,80}", re.IGNORECASE | re.MULTILINE)
URGENCY = re.compile(
    r"\b(?:urgent(?:ly)?|immediate(?:ly)?|right away|asap|act now|as soon as possible|final (?:notice|warning|reminder)|"
    r"last chance|within \d+ (?:hours?|hrs|minutes|days)|(?:by|before) (?:end of day|midnight|tonight|today)|"
    r"expires?|expiring|time[- ]sensitive|action required|deadline|without delay|suspend(?:ed)?|locked|"
    r"limited time|now)\b", re.IGNORECASE)

# Chinese, Japanese and Korean salutations and urgency words: the minimal-pair edits' (attribution/edits.py)
GREETING_CJK = re.compile("^" + GREETING_CJK_RE.pattern, re.MULTILINE)
GREETING_KO = re.compile("^" + GREETING_KO_RE.pattern, re.MULTILINE)

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
    for name, pat in (("url", URL), ("address", ADDRESS), ("urgency", URGENCY)):
        spans[name] = [m.span() for m in pat.finditer(text)]
    no_space = has_no_space_script(text)
    if no_space:  # 紧急, 立即, 24小时内, 至急, ... (none of them is an English word)
        spans["urgency"] = sorted(spans["urgency"] + [m.span() for m in URGENCY_CJK_RE.finditer(text)])
    korean = has_hangul(text)
    if korean:  # 긴급, 즉시, 24시간 이내, ...
        spans["urgency"] = sorted(spans["urgency"] + [m.span() for m in URGENCY_KO_RE.finditer(text)])
    g = (GREETING.search(text[:400]) or (GREETING_CJK.search(text[:400]) if no_space else None)
         or (GREETING_KO.search(text[:400]) if korean else None))
    if g:
        spans["greeting"] = [g.span()]
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
