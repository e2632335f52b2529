"""Re-render text in a 19th-century register, for drift experiments.

A drift detector needs the same task in a shifted style: the labels and the
phishing cues stay, the surface vocabulary moves ("email" -> "telegram",
"click the link" -> "call upon the address"). Deliberately a plain word-level
rewrite: cheap, deterministic and easy to audit.
"""

from __future__ import annotations

import re

# Ordered: multi-word phrases first. Each (pattern, replacement) is matched on word
# boundaries, case-insensitively; the replacement copies the capitalisation of the match.
RULES: list[tuple[str, str]] = [
    (r"you are", "thou art"),
    (r"you have", "thou hast"),
    (r"click here", "make haste to the address"),
    (r"click", "call upon"),
    (r"sign in", "present thyself"),
    (r"log in", "present thyself"),
    (r"e-?mails?", "telegram"),
    (r"inbox|mailbox", "letter-box"),
    (r"online", "by wire"),
    (r"websites?", "bureau"),
    (r"links?", "address"),
    (r"passwords?", "watchword"),
    (r"accounts?", "ledger"),
    (r"(?:mobile )?phones?", "telegraph"),
    (r"apps?", "apparatus"),
    (r"laptops?|computers?", "writing desk"),
    (r"parcels?|packages?", "parcel post"),
    (r"delivery", "conveyance"),
    (r"shipping", "carriage"),
    (r"meetings?", "audience"),
    (r"codes?", "cipher"),
    (r"download", "collect"),
    (r"photos?|pictures?|pics", "daguerreotype"),
    (r"videos?", "magic-lantern show"),
    (r"cards?", "note"),
    (r"hi|hey|hello|hiya", "Good day"),
    (r"thanks|thank you", "With gratitude"),
    (r"your", "thy"),
    (r"you", "thee"),
    (r"okay|ok", "very well"),
    (r"today", "this very day"),
    (r"urgent", "most pressing"),
]
_SIGN_OFF = re.compile(
    r"^(?:kind regards|best regards|regards|best|cheers|thanks|many thanks|thanks again|with best regards),?$",
    re.IGNORECASE | re.MULTILINE,
)
_COMPILED = [(re.compile(rf"\b(?:{pat})\b", re.IGNORECASE), rep) for pat, rep in RULES]
# URLs, e-mail addresses and bare host names are kept verbatim (only the scheme is
# restyled): rewriting inside them would corrupt the look-alike-domain cues.
_PROTECTED = re.compile(r"https?://\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io|uk|eu|de|nl|gov|info|top|xyz|online|site|support|live|co|app|shop|click|biz)\b\S*")


def _match_case(src: str, rep: str) -> str:
    if src.isupper() and len(src) > 1:
        return rep.upper()
    if src[:1].isupper():
        return rep[:1].upper() + rep[1:]
    return rep


def victorian(text: str) -> str:
    """`text` in a 19th-century register; URLs keep their host but lose the scheme
    ("https://x.com/a" -> "by the wire to x.com/a")."""
    kept: list[str] = []

    def protect(m: re.Match) -> str:
        kept.append(re.sub(r"^https?://", "by the wire to ", m.group(0)))
        return f"\x00{len(kept) - 1}\x00"

    text = _PROTECTED.sub(protect, text)
    text = _SIGN_OFF.sub("I remain, thy most obedient servant,", text)
    for pattern, rep in _COMPILED:
        text = pattern.sub(lambda m, rep=rep: _match_case(m.group(0), rep), text)
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)


STYLES = {"victorian": victorian}
