"""The word-level units every attribution method perturbs, and how a text is rebuilt without some of them.

Attributions are reported over *words*, not over a model's sub-word tokens: a word is
the unit a reader sees, deleting half a BPE token is not a meaningful perturbation,
and corpus-level aggregation must compare tf-idf and LLM cells over one vocabulary.

A text is cut into segments that concatenate back to the exact text: each segment is
a *core* (a URL, an e-mail address, an HTML tag, a word, or a run of punctuation)
followed by the whitespace after it (the first segment also carries any leading
whitespace). Removing a segment drops its core and keeps its whitespace, so lines
and paragraphs survive and neighbouring words never fuse into a new word.

Scripts written without spaces between words (Han, Hiragana, Katakana, Bopomofo, Thai, Lao,
Khmer, Myanmar, the Tai scripts) are cut one character a word: a base character with its
combining marks, the prolonged-sound and iteration marks after it (サー, 人々) and, in Khmer and
Myanmar, a subscript consonant joined under it. A run of such text is a whole sentence, so as one
word it got one weight and never repeated across emails; character n-grams are the standard
units for Chinese text. Text without these scripts is cut exactly as before; in text with them, a
link or an address ends where such text resumes, and a Korean word next to Hanja splits there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

def _ranges(cps) -> str:
    """Code points as a character-class body of ranges."""
    out, start, prev = [], None, None
    for cp in [*sorted(cps), None]:
        if start is not None and cp == prev + 1:
            prev = cp
            continue
        if start is not None:
            out.append(f"\\U{start:08x}" + (f"-\\U{prev:08x}" if prev > start else ""))
        start = prev = cp
    return "".join(out)


def _mark_ranges() -> str:
    """Unicode combining marks (categories Mn, Mc, Me) as a character-class body. `re` has no
    \\p{M}, and \\w leaves the marks out: Devanagari or Thai vowel signs and decomposed accents
    cut words into fragments ("आपका" into "आपक" + "ा"), and removing a fragment made a new word."""
    import unicodedata

    # marks live in planes 0, 1 and 14 (variation selectors); scanning only those keeps import fast
    return _ranges(cp for cp in [*range(0x20000), *range(0xE0000, 0xE1000)]
                   if unicodedata.category(chr(cp)).startswith("M"))


def _no_space_letters() -> tuple[str, str, str]:
    """(letters, extenders, joiners) of the scripts written without spaces, as class bodies.

    Letters: what \\w matches in those blocks (not their digits, which stay numbers, nor their
    marks, which stay with the letter before). Extenders (ー, 々, ゝ, ๆ, ...) and joiners (Khmer coeng,
    Myanmar virama: the next consonant is written under this one) glue to the character before."""
    import unicodedata

    blocks = [(0x0E00, 0x0EFF),    # Thai, Lao
              (0x1000, 0x109F),    # Myanmar
              (0x1780, 0x17FF),    # Khmer
              (0x1950, 0x1AAF),    # Tai Le, New Tai Lue, Tai Tham
              (0x3005, 0x3007), (0x3021, 0x3029), (0x3031, 0x3035), (0x303B, 0x303C),
              (0x3040, 0x30FF),    # Hiragana, Katakana
              (0x3100, 0x312F), (0x31A0, 0x31BF),  # Bopomofo
              (0x31F0, 0x31FF),    # Katakana phonetic extensions
              (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF),  # Han
              (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F),  # Myanmar extensions
              (0xAA80, 0xAADF),    # Tai Viet
              (0xFF66, 0xFF9F),    # half-width Katakana
              (0x1B000, 0x1B16F),  # Kana supplement and extensions
              (0x20000, 0x323AF)]  # Han extensions B-H and compatibility supplement
    letters = [cp for a, b in blocks for cp in range(a, b + 1)
               if chr(cp).isalnum() and unicodedata.category(chr(cp)) != "Nd"]
    extenders = [0x30FC, 0xFF70,  # prolonged sound mark (full-, half-width)
                 0x3005, 0x303B, 0x309D, 0x309E, 0x30FD, 0x30FE, *range(0x3031, 0x3036),  # iteration marks
                 0xFF9E, 0xFF9F,  # half-width (semi-)voiced sound marks: letters (Lm), not marks
                 0x0E46, 0x0EC6, 0x17D7, 0xAA70, 0x1AA7]  # Thai, Lao, Khmer, Myanmar, Tai Tham repetition
    joiners = [0x17D2, 0x1039, 0x1A60]  # Khmer coeng, Myanmar virama, Tai Tham sakot
    return _ranges(letters), _ranges(extenders), _ranges(joiners)


_MARKS = _mark_ranges()
_NS, _NS_EXT, _NS_JOIN = _no_space_letters()
NO_SPACE_LETTERS = _NS  # a class body, for the tokenizers that mirror this cutter
NO_SPACE_CONTINUES = _MARKS + _NS_EXT  # class body: what never starts a new no-space character
_OTHER_W = rf"[^\W{_NS}]"  # a word character of the other scripts (\w less the no-space letters)
_W = rf"[\w{_MARKS}]"
# one character of a no-space script with its marks, extenders and joined subscript consonants
NO_SPACE_CHAR_RE = rf"[{_NS}][{_MARKS}]*(?:(?:[{_NS_EXT}]|(?<=[{_NS_JOIN}])[{_NS}])[{_MARKS}]*)*"

# A link as phishing mail writes it: any case of the scheme ("HTTP://"), defanged ("hxxp://",
# "evil[.]com"), or a bare lower-case host ("bit.ly/3xYz", "paypal-secure.com"). A bare host on a
# TLD that is also an English word ("to", "me", "us", "live", "click", ...) needs a path, and upper
# case is prose ("account.Click", "ASP.NET"): text whose spaces were lost is not a link.
_TLDS = "com|org|net|info|biz|io|ly|xyz|ru|cn|uk|tk|ml|ga|cf|gq|gl|gd|cc|ws"
_WORD_TLDS = "co|me|us|de|to|top|site|online|link|app|click|shop|live"
# TLDs read as a link's only with a path ("evil.fr/login", "bank.icu/x"): countries' and the cheap
# generic ones phishing registers; not any letters, since "node.js/react" and "report.pdf/docx" are prose
_PATH_TLDS = ("fr|it|es|nl|pl|pt|be|ch|at|se|no|fi|dk|cz|sk|hu|ro|bg|gr|ie|eu|su|ua|kz|tr|il|ir|sa|ae|pk|in|bd|"
              "lk|id|vn|th|ph|sg|hk|tw|jp|kr|au|nz|ca|mx|br|ar|cl|pe|ve|za|ng|ke|eg|ma|pw|cm|tv|fm|ai|ly|"
              "edu|gov|mil|int|icu|club|store|tech|space|fun|buzz|rest|work|life|world|today|email|support|"
              "help|services|cloud|digital|network|page|win|bid|loan|men|date|review|stream|download|racing|"
              "trade|party|science|cricket|accountant|faith|mobi|pro|asia|dev|website")
# An HTML tag: a tag name (letters, digits, '-', '_', one namespace 'o:p'), then '>' or a space or '/' and
# its attributes on the same line. An address or link in angle brackets ('<service@bank.top>',
# '<https://...>', as every From: line writes one) is no tag: its name runs into '@', '.' or '://'.
# A declaration or a comment ('<!DOCTYPE html>', '<!-- x -->') is one too.
TAG_RE = (r"</?[A-Za-z][A-Za-z0-9_-]*(?::[A-Za-z][A-Za-z0-9_-]*)?(?:[ \t\r\f\v/][^<>\n]{0,200})?>"
          r"|<![^<>\n]{0,200}>")


def _patterns(no_space: bool) -> dict[str, str]:
    """The URL, e-mail address and word patterns; `no_space`: for text holding a script written
    without spaces, where its letters are words of one character and never part of a link, an
    address or another script's word.

    Text without such letters is cut by the plain patterns, the cutter of earlier versions: its
    results stay the same by construction, and at full speed (excluding the letters needs
    alternations, about twice as slow to scan)."""
    if no_space:
        w = _OTHER_W

        def one(extra: str) -> str:  # one character: a word character of the other scripts or `extra`
            return rf"(?:{w}|[{extra}])"

        def not_before(extra: str) -> str:
            return rf"(?<!{w})(?<![{extra}])"

        end = rf"(?!{w})"
        # a link written against Chinese text ("请访问http://x.cn/a。验证") ends where the text starts
        # again: no-space letters and their full-width punctuation are never part of it
        stop = _NS + r"\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
        word = rf"{NO_SPACE_CHAR_RE}|{one(_MARKS)}+(?:['’]{one(_MARKS)}+)*"
    else:
        def one(extra: str) -> str:
            return rf"[\w{extra}]"

        def not_before(extra: str) -> str:
            return rf"(?<![\w{extra}])"

        end, stop = r"\b", ""
        word = rf"{_W}+(?:['’]{_W}+)*"
    # a host's labels in any case ("PayPal.com/verify", "Amazon.com"), its TLD in lower case: "ASP.NET"
    # and "you.To confirm" (a sentence that lost its space) are prose
    host = not_before(r"@.\[\]-") + r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.|\[\.\]))+"
    # a path, a query or a fragment ("evil.com?x=1"), and a port before it ("evil.com:8080/login")
    path = rf"(?::\d{{1,5}})?[/?#][^\s<>\"'{stop}]*[^\s<>\"'.,;:!?)\]}}{stop}]"
    octet = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    ip = not_before(r"@.") + rf"{octet}(?:\.{octet}){{3}}(?![\d.])"
    # a known TLD, chained to a country's ("banco.com.br", "shop.co.uk" with a path); with a path,
    # a country's or a cheap generic TLD ("evil.fr/login", "bank.icu/x") and an IP ("192.168.1.1/login")
    url = (rf"(?:(?i:(?:h(?:tt|xx)ps?(?:://|\[:\]//)|ftp://|(?<!@)(?<![\w-]\.)www\.))[^\s<>\"'{stop}]*[^\s<>\"'.,;:!?)\]}}{stop}]"
           rf"|{host}(?:(?:{_TLDS})(?:\.[a-z]{{2}})?{end}(?:{path})?|(?:{_WORD_TLDS}|{_PATH_TLDS}){end}{path})"
           rf"|{ip}{path}"
           + (r"(?![\w@]))" if not no_space else rf"{end}(?!@))"))
    # an address starts where its run of address characters starts: tried inside "a.a.a..." at every
    # position, the scan for an "@" was quadratic
    email = rf"{not_before('.+-')}{one('.+-')}+@{one('-')}+(?:\.{one('-')}+)+"
    return {"url": url, "email": email, "word": word}


_PLAIN, _NO_SPACE_PATTERNS = _patterns(False), _patterns(True)
URL_RE, EMAIL_RE, WORD_RE = _PLAIN["url"], _PLAIN["email"], _PLAIN["word"]
# a run of punctuation stops where a tag starts: 'customer,<br>' was ',<' 'br' '>', and the tag never a word
PUNCT_RE = rf"(?:(?!{TAG_RE})[^\w\s{_MARKS}])+"
# an amount or a decimal with its separators ('$27,750,000.00', '3.5') is one word, as feature_key's
# <num> expects: cut at ',' and '.', its pieces made '<num> <num>' a top feature of a fraud cell, and
# occlusion removed '27' and kept ',750,000.00'
# (atomic: '1,000.00USD' backed off to '1,000' and cut the amount inside its digits)
NUM_RE = r"(?<![\w.,])(?>\d+(?:[.,]\d+)+)(?!\w)"
_NUM_NS_RE = rf"(?<!{_OTHER_W})(?<![.,])(?>\d+(?:[.,]\d+)+)(?!{_OTHER_W})"  # '支付1,000.00元': beside no-space letters
CORE = re.compile("|".join([URL_RE, EMAIL_RE, TAG_RE, NUM_RE, WORD_RE, PUNCT_RE]))
_CORE_NS = re.compile("|".join([_NO_SPACE_PATTERNS[k] for k in ("url", "email")]
                               + [TAG_RE, _NUM_NS_RE, _NO_SPACE_PATTERNS["word"], PUNCT_RE]))
_URL = re.compile(URL_RE)
_URL_NS = re.compile(_NO_SPACE_PATTERNS["url"])
_EMAIL = re.compile(EMAIL_RE)
_EMAIL_NS = re.compile(_NO_SPACE_PATTERNS["email"])
_TAG = re.compile(TAG_RE)
_WORDCHAR = re.compile(_W)
_NO_SPACE = re.compile(f"[{_NS}]")
_NS_JOINER = re.compile(f"[{_NS_JOIN}]")  # Khmer coeng, Myanmar virama: the next consonant goes under
_OTHER_WORD = re.compile(_OTHER_W)
_CONTINUES = re.compile(f"[{NO_SPACE_CONTINUES}]")  # a mark or an extender (ー, 々): never starts a word


def joins(left: str, right: str) -> bool:
    """Whether `left` followed directly by `right` (no space between) can be read as one word by
    the no-space cut: a mark or an extender continues the character before, a consonant after a
    joiner is written under it, and two word characters of the other scripts form one run."""
    return bool(_CONTINUES.match(right)
                or (_NS_JOINER.match(left) and _NO_SPACE.match(right))
                or (_OTHER_WORD.match(left) and _OTHER_WORD.match(right)))


def has_no_space_script(text: str) -> bool:
    return _NO_SPACE.search(text) is not None


class RunTokenizer:
    r"""A scikit-learn tokenizer: maximal runs of at least `min_chars` word characters (what the
    token_pattern r"(?u)\b\w\w+\b", sklearn's default, finds for 2, r"(?u)\b\w+\b" for 1),
    except that a character of a no-space script is a token of its own, marks included: a Chinese
    sentence was one token that no other email shared; its characters and their bigrams are.

    Text without such characters is cut by the plain pattern: the same tokens, as fast as before.
    `finditer` gives the positions (the tf-idf edit scorer rebuilds variants from them)."""

    def __init__(self, min_chars: int = 2):
        if min_chars not in (1, 2):
            raise ValueError("min_chars must be 1 or 2")
        self.min_chars = min_chars
        self.plain = re.compile(r"(?u)\b\w\w+\b" if min_chars == 2 else r"(?u)\b\w+\b")
        w = _OTHER_W
        self.no_space = re.compile(rf"{NO_SPACE_CHAR_RE}|(?<!{w}){w}{{{min_chars},}}(?!{w})")

    def pattern(self, text: str) -> re.Pattern:
        return self.no_space if has_no_space_script(text) else self.plain

    def finditer(self, text: str):
        return self.pattern(text).finditer(text)

    def __call__(self, text: str) -> list[str]:
        return self.pattern(text).findall(text)

    def __repr__(self) -> str:  # in get_params() and error messages
        return f"RunTokenizer({self.min_chars})"


def url_pattern(text: str) -> re.Pattern:
    """The link pattern for `text` (links in text of a no-space script end where that text resumes)."""
    return _URL_NS if has_no_space_script(text) else _URL


def email_pattern(text: str) -> re.Pattern:
    """The e-mail address pattern for `text` (likewise)."""
    return _EMAIL_NS if has_no_space_script(text) else _EMAIL


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
                # 'foo-bar' without '-' must not become the new word 'foobar'; a character of a
                # no-space script on either side is its own word already (a space there is foreign),
                # unless what follows continues it ('人-々', 'サーtー': an extender, a mark, a consonant
                # after a joiner would fuse into one new word)
                beside_no_space = bool((i > 0 and en[i - 1] == s and _NO_SPACE.match(t, st[i - 1]))
                                       or _NO_SPACE.match(t, e))
                glue = " " if (before and after and _WORDCHAR.match(before) and _WORDCHAR.match(after)
                               and (not beside_no_space or joins(before, after))) else ""
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
    for m in (_CORE_NS if has_no_space_script(text) else CORE).finditer(text):
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


NO_SPACE_CHAR = re.compile(NO_SPACE_CHAR_RE)
# A word for corpus-level counting in text of a no-space script: one of its characters, or a run of
# letters and digits of the other scripts joined by apostrophes or hyphens ("don't", "e-mail").
NO_SPACE_TOKEN_RE = rf"{NO_SPACE_CHAR_RE}|[^\W_{_NS}]+(?:['’-][^\W_{_NS}]+)*"


def display_key(feature: str) -> str:
    """A feature n-gram as a reader writes it. Its keys are joined by spaces ('sent via <email>'),
    but characters of a script written without spaces follow each other with none: '本 邮 件' reads
    '本邮件', 'paypal 账 户' reads 'paypal 账户'. Text without such characters is returned as it is."""
    if not has_no_space_script(feature):
        return feature
    parts = feature.split(" ")
    out = [parts[0]]
    for a, b in zip(parts, parts[1:]):
        out.append(b if NO_SPACE_CHAR.fullmatch(a) and NO_SPACE_CHAR.fullmatch(b) else " " + b)
    return "".join(out)


def word_count(text: str) -> int:
    """Words of a text: whitespace-separated, except in text of a script written without spaces,
    whose characters are its words (a Chinese paragraph was one 'word', so a Chinese domain read as
    short mail)."""
    if has_no_space_script(text):
        return sum(1 for c in split_words(text).cores if is_wordlike(c))
    return len(text.split())


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
