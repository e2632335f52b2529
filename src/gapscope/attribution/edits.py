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

from gapscope.attribution.words import (TAG_RE, display_key, email_pattern, feature_key, has_no_space_script,
                                        is_wordlike, split_words, url_pattern)

_TAG = re.compile(TAG_RE + r"|&(?:nbsp|amp|lt|gt|quot|#\d+);")  # tags (not <addresses>) and entities
_SHOUT = re.compile(r"\b[A-Z][A-Z0-9]{2,}\b")
# A salutation: the greeting word, up to four words of name ("Dear valued customer", "Dear
# Sir/Madam", "Dear PayPal Member:", "Hello jdoe@acme.org,") and a comma, a colon, "!" or the end of
# its line. Two or more words must read as a name (`_names_an_addressee`): in phishing the first line
# is often the message itself ("Hello your account is locked", "Hi verify your account"), and an edit
# that removed it would blame the model for a greeting. Only what it says is removed: "Hi Bob, wire
# the money today" keeps "wire the money today".
_GREET = (r"[ \t]*(?:dear(?:est)?|hi(?:ya)?|hello|hey|greetings|good (?:morning|afternoon|evening|day)"
          r"|to whom it may concern)\b")
_NAME = r"[ \t]+[\w.'’&/@+-]+"
_GREETING = re.compile(
    _GREET + r"(?P<name>(?:" + _NAME + r"){0,4}?)[ \t]*(?P<end>[,，!:]|(?=\r?\n)|$)[ \t]*",
    re.IGNORECASE)  # '，': "Hi 王先生，" (a full-width comma after a Chinese name)
# words that address someone without being a name ("Dear valued customer", "Hi all", "Dear account holder")
_ADDRESSEE_WORDS = frozenset("""
    customer customers client clients user users member members subscriber subscribers holder holders sir sirs
    madam madame sir/madam team all everyone everybody there friend friends family colleague colleagues guys
    folks partner partners recipient recipients shopper shoppers beneficiary employee employees staff student
    students applicant applicants candidate candidates""".split())
_HONORIFICS = frozenset("mr mrs ms miss dr prof mister madam sir".split())
# words a name or an addressee carries in lower case: "Dear valued customer", "Dr. van der Berg", "friends and family"
_NAME_PARTICLES = frozenset("valued dear dearest our my the of and & or account van der de den von da di du del le la ten bin al el".split())
_NAME_LIKE = _ADDRESSEE_WORDS | _NAME_PARTICLES | _HONORIFICS


def _bare(word: str) -> str:
    return word.strip(".,'’").lower()


def _names_an_addressee(name: str, end: str) -> bool:
    """Whether the words between a greeting word and its comma, colon, "!" or line end read as an
    addressee: one word of any kind ("Hi there,", "hey guys!"); before a comma, words each
    capitalised, an address, an addressee noun or a name's particle ("Dear Valued Customer,", "Dear
    Dr. van der Berg,"); before ":", "!" or the line's end, where a Title Case message ends too ("Hello
    Verify Your Account!", "Dear Customer Action Required:"), such words ending on an addressee noun
    or opening with an honorific ("Dear PayPal Member:", "Dear Mr Smith:")."""
    words = name.split()
    if len(words) <= 1:
        return True
    if not all(w[0].isupper() or "@" in w or _bare(w) in _NAME_LIKE for w in words):
        return False
    return end in (",", "，") or _bare(words[-1]) in _ADDRESSEE_WORDS or _bare(words[0]) in _HONORIFICS


def _english_greeting(line: str) -> re.Match | None:
    m = _GREETING.match(line)
    return m if m is not None and _names_an_addressee(m.group("name"), m.group("end")) else None
# Chinese and Japanese salutations, which no English pattern sees: 尊敬的客户： / 亲爱的会员， / 尊敬的用户，您好： /
# 您好！ / 亲， (Taobao's) and お客様各位 / 田中様 / 拝啓 / こんにちは. A name runs at most ten characters and ends at a
# comma or colon (full- or half-width) or the line's end, so "尊敬的客户您的账户已被冻结！" is no greeting; "！" only
# after a greeting word alone, as "Hello!" in English. A Japanese addressee (…様, …各位) is a line of its own or
# ends at a comma: "お客様のアカウント" is a sentence. A name may hold spaces ("尊敬的 Apple ID 用户："); only its
# characters count toward the ten. 各位 opens a Chinese salutation too ("各位同事：", "各位客户，您好", "各位好！",
# "各位同事好", "各位领导、同事好！"): at most four characters of addressee (up to four such joined by 、),
# then a comma or colon, 您好 or 大家好, or 好 ending the line or followed by a comma, colon or "！". The
# addressee is a noun (同事, 申请人); what starts with 请, 注意, 务必, 都 or 也 is the message ("各位请注意，
# 账户异常", "各位注意：", "各位都好，"), and so is 好 after an adverb ("各位最近都好！", everyone is well);
# "各位注意安全", "各位好好学习" are sentences. 大家 greets with 好, or a time of day and 好 ("大家好",
# "大家下午好！").
_CJK_NAME = r"[^\s，,、：:！!？?。.]"
_SPACED_NAME = rf"(?:[ \t]*{_CJK_NAME}){{1,10}}?[ \t]*"
# only where it starts: "各位申请人：" greets; up to four addressees joined by 、 ("各位领导、同事好！")
_ADDRESSEE = rf"(?!请|注意|务必|都|也){_CJK_NAME}{{0,4}}?(?:、{_CJK_NAME}{{1,4}}?){{0,3}}"
_HAO = r"(?<![都也很还真挺太不没])好"
_GREET_END = r"(?:[，,：:！!]|(?=\r?\n)|$)"
# public, as URGENCY_CJK_RE: internals/token_classes.py marks the same spans as the attention classes
GREETING_CJK_RE = re.compile(
    r"[ \t\u3000]*(?:"
    rf"(?:尊敬的|亲爱的){_SPACED_NAME}(?:[，,]?[ \t\u3000]*(?:您好|你好))?(?:[，,：:]|(?=\r?\n)|$)"
    rf"|各位{_ADDRESSEE}(?:[，,]?[ \t\u3000]*(?:您好|你好|大家好){_GREET_END}|{_HAO}{_GREET_END}|[，,：:])"
    rf"|大家(?:早上|上午|中午|下午|晚上)?好{_GREET_END}"
    rf"|(?:您好|你好|亲){_GREET_END}"
    rf"|(?:{_CJK_NAME}{{0,10}}?(?:様|さま|殿|各位)|拝啓|こんにちは)(?:[、，,：:！!]|(?=\r?\n)|$)"
    r")[ \t\u3000]*")
GREETING_LINES = 2  # a greeting opens the body: looked for in its first two non-blank lines only
NEUTRAL_DOMAIN = "mail.example.org"

# "24 hours", "1 hour", "24hrs", "48-hours", "30 mins", "2 days"
_DEADLINE = r"\d+[- ]?(?:hours?|hrs?|h|minutes?|mins?|days?)"
URGENCY = [
    (r"\burgent(?:ly)?\b", ""), (r"\bimmediate(?:ly)?\b", ""), (r"\bright away\b", ""), (r"\basap\b", ""),
    (r"\bact now\b", "reply"), (r"\bas soon as possible\b", ""), (r"\bfinal (?:notice|warning|reminder)\b", "notice"),
    (r"\blast chance\b", "reminder"), (rf"\bwithin (?:the next )?{_DEADLINE}\b", ""),
    (r"\b(?:by|before) (?:end of day|midnight|tonight|today)\b", ""),
    (rf"\bexpir(?:es|ing|e) (?:in {_DEADLINE}|today|tonight|soon)\b", ""),
    (r"\btime[- ]sensitive\b", ""), (r"\baction required\b", "information"), (r"\bdeadline\b", "date"),
    (r"\bwithout delay\b", ""), (r"\bnow\b(?=[!.])", ""),
]
# a removal takes one space before it, so no double space is left; the rest of the spacing stays
_URGENCY = [(re.compile((r"[ \t]?" if not r else "") + p, re.IGNORECASE), r) for p, r in URGENCY]
# Chinese and Japanese urgency words and deadlines (no spaces to take): 【紧急】, 紧急, 立即, 立刻, 马上, 尽快,
# (在/于)24小时内, (在/于)今日内; 【至急】, 至急, 緊急, 今すぐ, 直ちに, 早急に, 24時間以内に, 本日中に. "请在24小时内点击"
# -> "请点击", "至急本人確認を完了してください" -> "本人確認を完了してください".
# No spaces mark a word's end: 立即 is no word after 建/设/成/... ("建立即时通讯": 建立 + 即时), and 内
# 马上 is no "at once" after a word ending in 马 (horse): "骑马上班" rides to work, "木马上传" uploads a Trojan,
# "宝马上市" is BMW's launch; 上 stays out of the list ("晚上马上处理": tonight, at once). And 内
# is no "within" where it starts 内容, 内部, ... ("今日内容" today's content, "3月15日内部审计" an internal audit).
_WITHIN = "内(?![容部])"  # not 内在, 内存, 内网: "24小时内在线缴费", "3天内存款" are deadlines
URGENCY_CJK = [
    r"[【\[](?:紧急|緊急|至急)[】\]]", r"紧急|緊急|至急", r"(?<![建设成确树创独订])立即|立刻|(?<![骑木宝斑河赛策跨驸野骏战])马上|尽快",
    rf"(?:在|于)?(?<!\d)\d+\s*(?:个)?(?:小时|分钟|天|日)(?:之)?{_WITHIN}", rf"(?:在|于)?(?:今日|今天|当日|当天)(?:之)?{_WITHIN}",
    r"今すぐに?|直ちに|早急に", r"(?<!\d)\d+\s*(?:時間|分|日)以内に?", r"本日中に?",
]
# (?<!\d): a number is tried from its first digit only; retried from each digit, a long run of digits
# cost its length squared (a Chinese email with 20,000 digits took 12 s), and matches are the same
URGENCY_CJK_RE = re.compile("|".join(URGENCY_CJK))

# Korean, written with spaces but with particles joined to their word: [긴급], 긴급(한/히), 즉시, 당장,
# 지금 바로, 조속히, 신속히, (N)시간/분/일 이내(에), 오늘/금일 중(으로). A word counts only standing alone at
# its start and end (Hangul on neither side): "긴급하지 않은 문의" (not urgent) and "즉시성" keep theirs.
_HANGUL = "가-힣"
URGENCY_KO = [
    r"[【\[]긴급[】\]]", rf"(?<![{_HANGUL}])(?:긴급(?:한|히|하게)?|즉시|당장|지금 바로|조속히|신속히)(?![{_HANGUL}])",
    rf"(?<!\d)\d+\s*(?:시간|분|일)\s*(?:이내|내)(?:에|로)?(?![{_HANGUL}])",
    rf"(?<![{_HANGUL}])(?:오늘|금일)\s*(?:중|내)(?:으로|에|로)?(?![{_HANGUL}])",
]
URGENCY_KO_RE = re.compile("|".join(URGENCY_KO))
_URGENCY_KO_SPACED = re.compile(rf"([ \t]?)(?:{URGENCY_KO_RE.pattern})([ \t]?)")
# 고객님, / 회원님: / 친애하는 회원님, / 홍길동 님께 (up to three words, then 님, then a comma, a colon or the
# line's end), optionally with 안녕하세요 after it; or 안녕하세요 / 안녕하십니까 alone. "고객님의 계정이" and
# "고객님 계정이 정지되었습니다" are the message.
GREETING_KO_RE = re.compile(
    r"[ \t]*(?:"
    rf"(?:[{_HANGUL}A-Za-z0-9]{{1,12}}[ \t]*){{1,3}}?님(?:께)?[ \t]*(?:[,，:：]|(?=\r?\n)|$)"
    r"(?:[ \t]*안녕하(?:세요|십니까)[.!！,]?)?"
    r"|안녕하(?:세요|십니까)[.!！,]?"
    r")[ \t]*")
_HAS_HANGUL = re.compile(f"[{_HANGUL}]")


def has_hangul(text: str) -> bool:
    return _HAS_HANGUL.search(text) is not None


def _changed(old: str, new: str) -> str | None:
    return new if new != old else None


def remove_urls(text: str) -> str | None:
    return _changed(text, url_pattern(text).sub("", text))


def _outside_urls(text: str, fn: Callable[[str], str]) -> str:
    """`fn` applied to the text between URLs only: a word or an address inside a link is part of
    the link, which another edit (remove_urls) is about."""
    out, last = [], 0
    for m in url_pattern(text).finditer(text):
        out += [fn(text[last:m.start()]), m.group()]
        last = m.end()
    return "".join(out + [fn(text[last:])])


def swap_sender_domain(text: str) -> str | None:
    """Every e-mail address in the text keeps its local part but gets a neutral domain (the sender's
    header is not part of what the models read; the addresses in the email are: reply-to, contact)."""
    email = email_pattern(text)  # the words' address pattern: one chosen for the whole text
    return _changed(text, _outside_urls(text, lambda t: email.sub(
        lambda m: f"{m.group().partition('@')[0]}@{NEUTRAL_DOMAIN}", t)))


def _urgency(chunk: str) -> str:
    for pat, rep in _URGENCY:
        chunk = pat.sub(rep, chunk)
    if has_hangul(chunk):  # a space either side of the word: one stays ("지금 바로 확인" -> "확인")
        chunk = _URGENCY_KO_SPACED.sub(lambda m: " " if m.group(1) and m.group(2) else "", chunk)
    return URGENCY_CJK_RE.sub("", chunk) if has_no_space_script(chunk) else chunk


def neutralize_urgency(text: str) -> str | None:
    return _changed(text, _outside_urls(text, _urgency))


_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")


# "Subject:Invoice" and an empty "Subject:" too; the others need their space ("To whom it may concern" is no header)
_HEADER = re.compile(r"(?:subject:|(?:from|to|cc|date|reply-to|sender):(?=[ \t]|\r?\n|$))", re.IGNORECASE)


def _body_start(text: str) -> int:
    """Where the body begins: after a block of header lines ("Subject: ...", or "From: ...",
    "To: ...", "Date: ..." as pasted mail opens) and its blank line, else at 0. With no blank line,
    after the header lines themselves."""
    pos = 0
    while _HEADER.match(text, pos):
        nl = text.find("\n", pos)
        if nl < 0:
            return len(text)
        pos = nl + 1
    if pos:
        m = _BLANK_LINE.match(text, pos - 1)
        return m.end() if m else pos
    return 0


def _greeting(text: str) -> tuple[int, int, re.Match] | None:
    """(the start and end of its line, the match on the line) of the salutation at the start of one of the
    body's first lines (English, Chinese, Japanese or Korean)."""
    pos, seen = _body_start(text), 0
    while pos < len(text) and seen < GREETING_LINES:
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end].removesuffix("\r")
        if line.strip():
            m = (_english_greeting(line) or (GREETING_CJK_RE.match(line) if has_no_space_script(line) else None)
                 or (GREETING_KO_RE.match(line) if has_hangul(line) else None))
            if m:
                return pos, end, m
            seen += 1
        pos = end + 1
    return None


def greeting_span(text: str) -> tuple[int, int] | None:
    """Where the salutation drop_greeting removes sits in `text` (the attention classes mark these
    characters: a line opening with "Hello" was marked whole, the message after it included)."""
    found = _greeting(text)
    if found is None:
        return None
    pos, _, m = found
    return pos + m.start(), pos + m.end()


def drop_greeting(text: str) -> str | None:
    """The salutation at the start of one of the body's first lines (English, Chinese, Japanese or Korean); its
    line goes too when nothing else is on it."""
    found = _greeting(text)
    if found is None:
        return None
    pos, end, m = found
    line = text[pos:end].removesuffix("\r")
    rest = line[m.end():]
    if not rest.strip():  # the greeting was the whole line: the line goes
        return _changed(text, text[:pos] + text[end + 1:])
    return _changed(text, text[:pos] + line[:len(line) - len(line.lstrip())] + rest + text[pos + len(line):])


def calm_exclamations(text: str) -> str | None:
    # a full-width mark becomes the full-width stop (Chinese and Japanese mail)
    return _changed(text, re.sub("！+", "。", re.sub(r"!+", ".", text)))


def lowercase_shouting(text: str) -> str | None:
    return _changed(text, _SHOUT.sub(lambda m: m.group(0).lower(), text))


def strip_html(text: str) -> str | None:
    return _changed(text, _TAG.sub("", text))


CURRENCY_SIGNS = "$£€"
_NO_CURRENCY = str.maketrans("", "", CURRENCY_SIGNS)


def drop_currency_signs(text: str) -> str | None:
    """'$500' -> '500': the amount stays, the sign goes (outside links)."""
    return _changed(text, _outside_urls(text, lambda chunk: chunk.translate(_NO_CURRENCY)))


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
         f"replace the domain of every e-mail address in the text with {NEUTRAL_DOMAIN} (addresses inside "
         f"links stay; the sender's header is not part of the text)"),
    Edit("neutralize_urgency", "cue-removing", neutralize_urgency, "drop urgency words and deadlines"),
    Edit("drop_greeting", "label-preserving", drop_greeting, "drop the greeting (the salutation that opens the body)"),
]


def phrase_edit(phrase: Sequence[str], label: str | None = None) -> Edit:
    shown = display_key(label or " ".join(phrase))
    effect = "cue-removing" if all(k in PLACEHOLDERS for k in phrase) else "label-preserving"
    return Edit(f"remove '{shown}'", effect, lambda t: remove_phrase(t, list(phrase)),
                f"remove the suspected shortcut '{shown}'")
