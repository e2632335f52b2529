"""One raw RFC 822 message -> subject, sender and readable body text.

Emails are hostile and often malformed, so parsing never trusts the declared charset
(it falls back to UTF-8, then cp1252, then latin-1) and never executes or fetches
anything: HTML is reduced to text with the standard library's html.parser, keeping
link text and the link target inline ("text (url)") because where a link really
points is the strongest phishing signal a reader has. Messages the MIME parser cannot
make sense of raise BrokenMessage with a short fixed `detail`, so the caller can reject
and count them under a small set of reasons.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from dataclasses import dataclass
from email import errors as email_errors
from email import policy
from email.message import Message
from email.parser import BytesParser
from html.parser import HTMLParser

# Markup that marks a text as HTML (not just a stray "<" in prose).
_HTML_TAG = re.compile(
    r"<\s*/?\s*(?:html|body|head|div|span|p|br|a|table|tbody|tr|td|th|font|img|style|script|"
    r"center|b|i|u|strong|em|ul|ol|li|h[1-6]|meta|title|form|input|hr)\b[^<>]*>",
    re.IGNORECASE,
)
_BOUNDARY_DEFECTS = (
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.MultipartInvariantViolationDefect,
)
_BASE64_DEFECTS = (
    email_errors.InvalidBase64CharactersDefect,
    email_errors.InvalidBase64LengthDefect,
)


class BrokenMessage(ValueError):
    """A message that cannot be read as email. `detail` is short and fixed, e.g. "no headers"."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(f"broken MIME: {detail}")


@dataclass
class ParsedEmail:
    subject: str
    sender: str
    message_id: str
    body: str
    had_html: bool
    # the body is the HTML part rendered to text, the text/plain part set aside, because the plain
    # part lacks link targets the HTML holds (what the recipient's mail client shows and clicks)
    plain_set_aside: bool = False


def looks_like_html(text: str) -> bool:
    """True when the text carries HTML markup (used for the audit's html_share)."""
    return _HTML_TAG.search(text) is not None


class _HTMLText(HTMLParser):
    """Collects visible text; drops script/style; writes links as "text (href)"."""

    _SKIP = {"script", "style", "noscript", "template", "head", "title"}
    _BLOCK = {"p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
              "blockquote", "pre", "hr", "section", "article", "header", "footer", "center"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip_depth = 0
        self.links: list[tuple[str | None, int]] = []  # (href, position in out) of open <a>
        self.hrefs: list[str] = []  # every link target kept, in order

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self.skip_depth += 1
        elif tag in self._BLOCK:
            self.out.append("\n")
        elif tag == "a":
            href = (dict(attrs).get("href") or "").strip()
            keep = href and not href.startswith("#") and not href.lower().startswith("javascript:")
            self.links.append((href if keep else None, len(self.out)))
            if keep:
                self.hrefs.append(href)

    def handle_startendtag(self, tag, attrs):
        if tag in self._BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in self._BLOCK:
            self.out.append("\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            if href:
                text = " ".join("".join(self.out[start:]).split())
                if not text:  # e.g. an image link: the target is all there is
                    self.out.append(href)
                elif text != href:
                    self.out.append(f" ({href})")

    def handle_data(self, data):
        if not self.skip_depth:
            self.out.append(data)

    def text(self) -> str:
        for href, start in self.links:  # <a> never closed
            if href:
                self.out.append(f" ({href})")
        self.links = []
        return collapse_whitespace("".join(self.out))


def collapse_whitespace(text: str) -> str:
    """Runs of spaces/tabs -> one space; blank lines dropped; lines stripped."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> str:
    """Visible text of an HTML document, links as "text (url)", whitespace collapsed."""
    return _render(html)[0]


def _render(html: str) -> tuple[str, list[str]]:
    """html_to_text, and the link targets it holds."""
    parser = _HTMLText()
    with contextlib.suppress(Exception):  # html.parser is lenient; anything left is garbage, keep what we have
        parser.feed(html)
        parser.close()
    return parser.text(), parser.hrefs


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode with the declared charset (UTF-8 when none or unknown), else cp1252, else latin-1.

    Returns (text, clean): clean is False when a fallback was needed.
    """
    first = "utf-8"
    if charset:
        with contextlib.suppress(LookupError):  # unknown charset name: fall back to UTF-8
            first = codecs.lookup(charset).name
    # LookupError: a declared "charset" such as rot13, hex or zlib is a codec but not a text
    # encoding; a sender must not get their message refused by naming one
    with contextlib.suppress(UnicodeDecodeError, ValueError, LookupError):
        return data.decode(first), True
    for name in ("utf-8", "cp1252"):
        try:
            return data.decode(name), False
        except (UnicodeDecodeError, ValueError):
            continue
    return data.decode("latin-1"), False  # latin-1 maps every byte


def tidy_plain(text: str) -> str:
    """Plain-text bodies keep their lines; trailing spaces and runs of blank lines go."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _clean(text: str) -> str:
    """Drop surrogate escapes left by undecodable header bytes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
        return _clean(str(value)).strip() if value is not None else ""
    except Exception:  # malformed header the modern parser chokes on: take it raw
        for key, raw in msg.raw_items():
            if key.lower() == name.lower():
                return _clean(str(raw)).strip()
        return ""


def _part_text(part: Message) -> str:
    if any(isinstance(d, _BOUNDARY_DEFECTS) for d in part.defects):
        raise BrokenMessage("multipart boundary not found")
    payload = part.get_payload(decode=True)
    if payload is None:
        return ""
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogateescape")
    text, clean = decode_bytes(payload, part.get_content_charset())
    if not clean and any(isinstance(d, _BASE64_DEFECTS) for d in part.defects):
        raise BrokenMessage("undecodable base64")
    return _clean(text)


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse one message. Prefers text/plain parts, unless an HTML part holds a link target the
    plain text lacks; else text/html reduced to text (links inline as "text (url)").

    Raises BrokenMessage for: empty message, no headers, multipart without its boundary,
    base64 that does not decode, and any parser exception (hostile input must cost one
    row, never the whole source).
    """
    try:
        return _parse(raw)
    except BrokenMessage:
        raise
    except Exception as e:  # the email package can raise on pathological headers
        raise BrokenMessage(f"parser error ({type(e).__name__})") from None


def _parse(raw: bytes) -> ParsedEmail:
    if not raw or not raw.strip():
        raise BrokenMessage("empty message")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    if not msg.keys():
        raise BrokenMessage("no headers")
    if any(isinstance(d, _BOUNDARY_DEFECTS) for d in msg.defects):
        raise BrokenMessage("multipart boundary not found")
    plain: list[str] = []
    html: list[str] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            if part.get_content_maintype() == "multipart":  # multipart whose body did not split
                raise BrokenMessage("multipart boundary not found")
            continue
        if part.get_content_disposition() == "attachment":
            continue
        (plain if ctype == "text/plain" else html).append(_part_text(part))
    plain_text = tidy_plain("\n\n".join(plain))
    had_html = bool(html) or looks_like_html(plain_text)
    html_text, hrefs = _render("\n".join(html)) if html else ("", [])
    plain_set_aside = False
    if plain_text:
        body = html_to_text(plain_text) if looks_like_html(plain_text) else plain_text
        # A text/plain part beside the HTML is kept (cleaner text), unless the HTML holds a link
        # target it does not show: phishing puts the link only in the HTML the recipient sees, and
        # reading the plain part alone hid it from the models and the audit's url_share.
        # web links only: a mailto: or tel: target is shown as the address or number, not the URL
        web = [h for h in hrefs if h.lower().startswith(("http://", "https://", "www."))]
        if any(h.rstrip("/") not in body for h in web):
            body, plain_set_aside = html_text, True
    else:
        body = html_text
    return ParsedEmail(
        subject=" ".join(_header(msg, "subject").split()),
        sender=_header(msg, "from"),
        message_id=_header(msg, "message-id"),
        body=body,
        had_html=had_html,
        plain_set_aside=plain_set_aside,
    )
