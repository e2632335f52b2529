"""The word-level units every attribution method perturbs, and how a text is rebuilt without some of them.

Attributions are reported over *words*, not over a model's sub-word tokens: a word is
the unit a reader sees, deleting half a BPE token is not a meaningful perturbation,
and corpus-level aggregation must compare tf-idf and LLM cells over one vocabulary.

A text is cut into segments that concatenate back to the exact text: each segment is
a *core* (a URL, an e-mail address, an HTML tag, a word, or a run of punctuation)
followed by the whitespace after it (the first segment also carries any leading
whitespace). Removing a segment drops its core and keeps its whitespace, so lines
and paragraphs survive and neighbouring words never fuse into a new word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# A link as phishing mail writes it: any case of the scheme ("HTTP://"), defanged ("hxxp://",
# "evil[.]com"), or a bare lower-case host ("bit.ly/3xYz", "paypal-secure.com"). A bare host on a
# TLD that is also an English word ("to", "me", "us", "live", "click", ...) needs a path, and upper
# case is prose ("account.Click", "ASP.NET"): text whose spaces were lost is not a link.
_TLDS = "com|org|net|info|biz|io|ly|xyz|ru|cn|uk|tk|ml|ga|cf|gq|gl|gd|cc|ws"
_WORD_TLDS = "co|me|us|de|to|top|site|online|link|app|click|shop|live"
_HOST = r"(?<![\w@.\[\]-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.|\[\.\]))+"
_PATH = r"/[^\s<>\"']*[^\s<>\"'.,;:!?)\]}]"
URL_RE = (r"(?:(?i:(?:h(?:tt|xx)ps?://|ftp://|www\.))[^\s<>\"']*[^\s<>\"'.,;:!?)\]}]"
          r"|" + _HOST + r"(?:(?:" + _TLDS + r")\b(?:" + _PATH + r")?|(?:" + _WORD_TLDS + r")\b" + _PATH + r")"
          r"(?![\w@]))")
# an address starts where its run of address characters starts: tried inside "a.a.a..." at every
# position, the scan for an "@" was quadratic
EMAIL_RE = r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
TAG_RE = r"</?[A-Za-z][^<>\n]{0,200}>"


def _mark_ranges() -> str:
    """Unicode combining marks (categories Mn, Mc, Me) as a character-class body. `re` has no
    \\p{M}, and \\w leaves the marks out: Devanagari or Thai vowel signs and decomposed accents
    cut words into fragments ("आपका" into "आपक" + "ा"), and removing a fragment made a new word."""
    import unicodedata

    out, start, prev = [], None, None
    # marks live in planes 0, 1 and 14 (variation selectors); scanning only those keeps import fast
    for cp in [*range(0x20000), *range(0xE0000, 0xE1000), 0x10FFFF]:
        if unicodedata.category(chr(cp)).startswith("M"):
            if start is None:
                start = cp
            prev = cp
        elif start is not None:
            out.append(f"\\U{start:08x}" + (f"-\\U{prev:08x}" if prev > start else ""))
            start = None
    return "".join(out)


_MARKS = _mark_ranges()
_W = rf"[\w{_MARKS}]"
WORD_RE = rf"{_W}+(?:['’]{_W}+)*"
PUNCT_RE = rf"[^\w\s{_MARKS}]+"
CORE = re.compile("|".join([URL_RE, EMAIL_RE, TAG_RE, WORD_RE, PUNCT_RE]))
_URL = re.compile(URL_RE)
_EMAIL = re.compile(EMAIL_RE)
_TAG = re.compile(TAG_RE)
_WORDCHAR = re.compile(_W)
_NUM = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class Words:
    """A text cut into removable word segments."""

    text: str
    starts: tuple[int, ...]  # core start per word
    ends: tuple[int, ...]    # core end per word (trailing whitespace runs to the next start)

    def __len__(self) -> int:
        return len(self.starts)

    @cached_property
    def segments(self) -> list[str]:
        """Segments that concatenate to `text` (what Attribution.tokens holds)."""
        if not self.starts:
            return [self.text] if self.text else []
        bounds = [0, *self.starts[1:], len(self.text)]
        return [self.text[bounds[i]:bounds[i + 1]] for i in range(len(self.starts))]

    @cached_property
    def cores(self) -> list[str]:
        return [self.text[s:e] for s, e in zip(self.starts, self.ends)]

    def compose(self, keep: Sequence[bool] | np.ndarray) -> str:
        """The text with every word whose `keep` is False removed (whitespace kept)."""
        keep = np.asarray(keep, dtype=bool)
        if keep.all():
            return self.text
        return apply_edits(self.text, self.edits(keep))

    def edits(self, keep: Sequence[bool] | np.ndarray) -> list[tuple[int, int, str]]:
        """The removal of the words whose `keep` is False as (start, end, replacement) character
        edits of `text`, sorted by position. This is what a prefix-caching scorer needs:
        everything before the first edit is unchanged."""
        keep = np.asarray(keep, dtype=bool)
        removed = np.flatnonzero(~keep)
        if not len(removed):
            return []
        breaks = (np.flatnonzero(np.diff(removed) != 1) + 1).tolist()
        rem = removed.tolist()
        return self.range_edits([(rem[a], rem[b - 1] + 1) for a, b in zip([0, *breaks], [*breaks, len(rem)])])

    def range_edits(self, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int, str]]:
        """Edits removing the words of each [a, b) range (sorted, non-overlapping): what `edits`
        returns for the same removal, without building a keep mask (occlusion's fast path)."""
        t = self.text
        st, en = self.starts, self.ends
        out: list[tuple[int, int, str]] = []
        for a, b in ranges:
            i = a
            while i < b:
                j = i  # words glued together (no whitespace between them) go in one edit
                while j + 1 < b and en[j] == st[j + 1]:
                    j += 1
                s, e = st[i], en[j]
                before = t[s - 1] if s > 0 else ""
                after = t[e] if e < len(t) else ""
                # 'foo-bar' without '-' must not become the new word 'foobar'
                glue = " " if before and after and _WORDCHAR.match(before) and _WORDCHAR.match(after) else ""
                out.append((s, e, glue))
                i = j + 1
        return out


def apply_edits(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    """Apply non-overlapping (start, end, replacement) edits, sorted by start."""
    parts, pos = [], 0
    for s, e, r in edits:
        parts.append(text[pos:s])
        parts.append(r)
        pos = e
    parts.append(text[pos:])
    return "".join(parts)


def split_words(text: str) -> Words:
    starts, ends = [], []
    for m in CORE.finditer(text):
        starts.append(m.start())
        ends.append(m.end())
    return Words(text, tuple(starts), tuple(ends))


def feature_key(core: str) -> str:
    """How a word is named in corpus-level tables: lower-cased, with URLs, addresses and
    numbers collapsed to placeholders so that they aggregate across emails."""
    if _URL.fullmatch(core):
        return "<url>"
    if _EMAIL.fullmatch(core):
        return "<email>"
    if _TAG.fullmatch(core):
        return "<html-tag>"
    if _NUM.fullmatch(core):
        return "<num>"
    return core.lower()


def is_wordlike(core: str) -> bool:
    return bool(_WORDCHAR.search(core))


class ShapWordTokenizer:
    """The word cutter in the minimal Hugging Face tokenizer API shap.maskers.Text needs.

    input_ids are word positions (0..n-1); with output_type="token_ids" the masker hands
    the explained function arrays of kept positions, so masked texts are rebuilt with
    `Words.compose` exactly like occlusion's: both methods perturb inputs the same way.
    """

    def __call__(self, s: str, return_offsets_mapping: bool = True, **_: object) -> dict:
        w = split_words(s)
        bounds = [0, *w.starts[1:], len(s)] if len(w) else []
        out: dict = {"input_ids": list(range(len(w)))}
        if return_offsets_mapping:
            out["offset_mapping"] = [(bounds[i], bounds[i + 1]) for i in range(len(w))]
        return out
