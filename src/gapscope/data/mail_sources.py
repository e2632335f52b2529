"""Mail readers: mbox, maildir, and mail files (one .eml file, a folder of them, a tar archive).

Messages are taken as raw bytes (`get_bytes`) and parsed by email_parse with the modern
email policy, rather than trusting mailbox's compat32 Message objects. A message that
cannot be parsed becomes a rejected Record ("broken MIME: ..."); a source where every
message is broken, or that holds none, is a file-level InputError. Mail carries no label
column: the label comes from the source spec (`label_value`), or, for a folder or an
archive, from the name of the folder each file sits in (`label = "folder"`: public corpora
such as SpamAssassin and Enron-spam are published as spam/ and ham/ folders of files).
Order is deterministic (file order for mbox, sorted names otherwise) so stable ids are.

A folder or archive is read whole: every file in it is a row, whatever its name
(SpamAssassin names its files `00001.7c53336b...`, Enron-spam `0001.1999-12-10.farmer.ham.txt`),
so a file that is not an email is rejected and counted, never skipped. A file that is an
mbox (named .mbox, or starting with a "From " line and holding several) gives one row per
message: Nazario's phishing corpus is a set of mbox files.
"""

from __future__ import annotations

import dataclasses
import gzip
import lzma
import mailbox
import posixpath
import re
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable, Iterator

from gapscope.data.email_parse import BrokenMessage, parse_email
from gapscope.data.readers import MBOX_SUFFIXES, Record, Table, binary_head, looks_like_mail
from gapscope.data.source_spec import SourceSpec, archive_stem
from gapscope.errors import InputError

MAIL_COLUMNS = ["subject", "body"]
FOLDER_COLUMN = "folder"  # mail files: the name of the folder a file sits in, a label source
NOT_MAIL_BINARY = "not an email (binary file)"
NOT_MAIL_TEXT = "not an email (no header lines)"
LABEL_COLUMN = "label"  # mail files with a label_index
NOT_INDEXED = "not in the label index"
INDEXED_MISSING = "listed in the label index, no such file"
# Larger than any mail server accepts (most refuse 25-50 MB): a file past it is not one email
# (an .mbox, many emails, has no limit), and a few KB of compressed archive could otherwise
# expand to gigabytes held in memory.
MAX_MESSAGE_BYTES = 64 * 2**20
TOO_LARGE = f"larger than {MAX_MESSAGE_BYTES // 2**20} MB (no email is)"
LINK_OUTSIDE = "a link to a file outside the folder"
# A linked folder is listed, not walked (rglob does not descend into it): counted as one row, its files
# unread. Walking it could pull in what lies outside the folder, or read the same files twice.
LINK_TO_FOLDER = "a link to a folder, not followed (its files are not read: give its target as a source)"


def _too_large(size: int, name: str) -> bool:
    return size > MAX_MESSAGE_BYTES and not name.lower().endswith(MBOX_SUFFIXES)


def _unreadable(e: OSError | KeyError) -> str:
    return f"unreadable file ({getattr(e, 'strerror', None) or type(e).__name__})"
# An mbox separator as mail software writes it: "From <sender> <asctime date>" ("From
# MAILER-DAEMON Fri Nov  2 13:57:22 2007", a zone may follow the time), then a header line.
# Looser "From " lines occur in bodies ("From the desk of ...", "From 10:00 to 11:30 on ...").
# Bounded repeats: hostile text must not make the match quadratic in a line's length.
_SEPARATOR = re.compile(
    rb"^From \S{1,200} {1,10}(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    rb"{1,2}\d{1,2} \d{1,2}:\d\d(?::\d\d)?(?: [^\r\n]{1,12})? \d{4}(?: [^\r\n]{1,12})?\r?\n"
    rb"(?=[\x21-\x39\x3b-\x7e]{1,80}:)", re.MULTILINE)


def _record(n: int, raw: bytes | None, meta: dict) -> Record:
    meta = dict(meta)
    folder = meta.pop("folder", None)
    if raw is None:  # a file that could not be read
        reason = meta.pop("unreadable")
        return Record(n, None, reason, meta=meta)
    standalone = "file" in meta and "message" not in meta  # a file that is one message, not part of an mbox
    if standalone and b"\x00" in raw[:8192]:  # an image, an archive, a .DS_Store: not a message at all
        return Record(n, None, NOT_MAIL_BINARY, meta=meta)
    if standalone and not meta["file"].lower().endswith(".eml") and not looks_like_mail(raw):
        return Record(n, None, NOT_MAIL_TEXT, meta=meta)  # a README, a list of commands, a JSON shard
    try:
        msg = parse_email(raw)
    except BrokenMessage as e:
        if e.detail == "no headers" and "file" in meta and "message" not in meta:
            return Record(n, None, NOT_MAIL_TEXT, meta=meta)  # a README, a list of commands
        return Record(n, None, str(e), meta=meta)
    meta = {**meta, "had_html": msg.had_html}
    if msg.plain_set_aside:  # counted by the audit (html_body_share), not set aside silently
        meta["plain_set_aside"] = True
    if msg.sender:
        meta["from"] = msg.sender
    if msg.message_id:
        meta["message_id"] = msg.message_id
    values = {"subject": msg.subject or None, "body": msg.body or None}
    if folder is not None:
        values[FOLDER_COLUMN] = folder
    return Record(n, values, meta=meta)


def message_record(raw: bytes, name: str) -> Record:
    """One mail file's bytes as the folder reader makes a row of it (subject/body values, or the
    rejection reason), for reading a single email the way training read its corpus."""
    return _record(1, raw, {"file": name})


def holds_messages(raw: bytes) -> bool:
    """Whether the bytes are an mbox of several messages (as a folder's file is split)."""
    return _holds_messages(raw)


def _table(path: Path, fmt: str, messages: Iterable[tuple[bytes | None, dict]], empty: str) -> Table:
    return _finish(path, fmt, [_record(i + 1, raw, meta) for i, (raw, meta) in enumerate(messages)], empty)


def _finish(path: Path, fmt: str, records: list[Record], empty: str, extra: tuple[str, ...] = ()) -> Table:
    if not records:
        raise InputError(path, empty)
    if all(r.values is None for r in records):
        first = records[0]
        detail = first.error or ""
        if detail.startswith("broken MIME: "):
            head, detail = "every message has broken MIME", detail.removeprefix("broken MIME: ")
        else:
            head = "no message could be read"
        where = f"file {first.meta['file']!r}" if "file" in first.meta else f"message {first.row}"
        raise InputError(path, f"{head} ({where}: {detail})", row=first.row)
    return Table(fmt, list(MAIL_COLUMNS) + list(extra), records, mail=True)


def read_mbox(path: Path, spec: SourceSpec) -> Table:
    """A Unix mbox file; messages start at lines beginning "From "."""
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    box = mailbox.mbox(str(path), factory=None, create=False)
    try:
        messages = [(box.get_bytes(key), {"message": i}) for i, key in enumerate(box.keys(), 1)]
    finally:
        box.close()
    table = _table(path, "mbox", messages, "no messages (an mbox message starts with a 'From ' line)")
    if _preamble(path):  # mailbox skips it without a word; count it as a rejected row
        table.records.insert(0, Record(0, None, "text before the first 'From ' line (not part of any message)"))
    return table


def _preamble(path: Path) -> bool:
    """Whether anything but blank lines comes before the first line that starts with "From "."""
    with path.open("rb") as f:
        for line in f:
            if line.startswith(b"From "):
                return False
            if line.strip():
                return True
    return False


def read_maildir(path: Path, spec: SourceSpec) -> Table:
    """A maildir: the messages in cur/ and new/, one row per file in path order; every other file is a
    counted rejection: one in tmp/ (still being delivered), a hidden one, a server's index
    (dovecot-uidlist). Read file by file: mailbox.Maildir keys a message by its name before the ':',
    so two files with one such name (cur/101.host:2, and cur/101.host:2,RS) gave one row, and it
    skipped Maildir++ folders (.Junk/cur/) unsaid. Their messages are read with `label = "folder"`
    (the folder column: "INBOX" for the top level, "Junk" for .Junk/); under one fixed label they are
    rejected and counted, since that label was given for the inbox, not for its Junk or Trash."""
    inside = path.resolve()
    by_folder = spec.label == FOLDER_COLUMN
    files = sorted((p for p in path.rglob("*") if p.is_file() or p.is_symlink()),
                   key=lambda p: p.relative_to(path).as_posix())
    messages = [_maildir_message(f, f.relative_to(path).as_posix(), inside, by_folder) for f in files]
    return _finish(path, "maildir", [_record(i + 1, raw, meta) for i, (raw, meta) in enumerate(messages)],
                   "no messages in cur/ or new/", (FOLDER_COLUMN,) if by_folder else ())


def _maildir_message(f: Path, key: str, inside: Path, by_folder: bool) -> tuple[bytes | None, dict]:
    """One message, or why this file is not read as one (a dangling link, no permission, a file
    outside cur/ and new/): counted as a rejected row like the folder reader's."""
    parts = key.split("/")
    top = parts[:-1] in (["cur"], ["new"])
    nested = len(parts) == 3 and parts[0].startswith(".") and parts[1] in ("cur", "new")
    why = None
    if f.is_symlink() and f.is_dir():  # a linked new/ was "outside the maildir's cur/ and new/"
        why = LINK_TO_FOLDER
    elif parts[-1].startswith("."):
        why = "hidden file in a maildir (not a message)"
    elif len(parts) >= 2 and parts[-2] == "tmp":
        why = "in tmp/: a message still being delivered"
    elif not (top or nested):
        why = "not a message: outside the maildir's cur/ and new/"
    elif nested and not by_folder:
        why = (f"in the Maildir++ folder {parts[0]}, which the fixed label was not given for: label = \"folder\" "
               "labels each folder, or read the folder as a source of its own")
    elif f.is_symlink() and f.exists() and not f.resolve().is_relative_to(inside):
        why = LINK_OUTSIDE
    meta = {"key": key}
    if by_folder:
        meta["folder"] = parts[0][1:] if nested else "INBOX"
    if why:
        return None, {**meta, "unreadable": why}
    try:
        if _too_large(f.stat().st_size, key):
            return None, {**meta, "unreadable": TOO_LARGE}
        return f.read_bytes(), meta
    except OSError as e:
        return None, {**meta, "unreadable": _unreadable(e)}


def read_eml(path: Path, spec: SourceSpec) -> Table:
    """Mail files: one .eml file, a folder of mail files (recursive, sorted by relative path),
    or a tar archive of them (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz; read in memory, never
    extracted). Rows of a folder or archive carry the `folder` column, and the `label` column
    when the spec names a `label_index` inside the source."""
    index = spec.label_index
    if path.is_file() and not archive_stem(path.name):
        if index is not None:
            raise InputError(path, "label_index needs a folder or a tar archive of mail files")
        return _table(path, "eml", [_read(path, path.name)], "no .eml files")
    if index is not None:
        index = posixpath.normpath(index.replace("\\", "/")).removeprefix("./")
    records, index_bytes = (_archive_records if path.is_file() else _folder_records)(path, index)
    columns: tuple[str, ...] = (FOLDER_COLUMN,)
    if index is not None:
        if index_bytes is None:
            raise InputError(path, f"label_index {index!r}: no such file in it")
        records = _apply_index(path, records, index, _index_labels(path, index, index_bytes))
        columns += (LABEL_COLUMN,)
    return _finish(path, "eml", records, "no files in it", columns)


def _folder_records(root: Path, index: str | None) -> tuple[list[Record], bytes | None]:
    # a dangling link is counted as rejected, not skipped (is_file() is false for it)
    files = sorted((p for p in root.rglob("*") if p.is_file() or p.is_symlink()),
                   key=lambda p: p.relative_to(root).as_posix())
    index_bytes = None
    records: list[Record] = []
    inside = root.resolve()
    for f in files:  # each file parsed as it is read: only the parsed text is held
        name = f.relative_to(root).as_posix()
        if name == index:
            index_bytes = f.read_bytes()
            continue
        # a corpus someone else packed must not pull in ~/.ssh/id_rsa through a link
        outside = f.is_symlink() and f.exists() and not f.resolve().is_relative_to(inside)
        why = LINK_TO_FOLDER if f.is_symlink() and f.is_dir() else LINK_OUTSIDE if outside else None
        raw, meta = (None, {"file": name, "unreadable": why}) if why else _read(f, name)
        meta["folder"] = f.parent.name if f.parent != root else root.resolve().name
        records += [_record(len(records) + 1, r, mt) for r, mt in _split(raw, meta)]
    return records, index_bytes


def _archive_records(path: Path, index: str | None) -> tuple[list[Record], bytes | None]:
    """Rows in member-name order. The archive is streamed once (a compressed tar cannot be read
    out of order cheaply); each member is parsed as it is read, so only the parsed text is
    held, and the rows are sorted after."""
    stem = archive_stem(path.name)
    parsed: list[tuple[str, Record]] = []
    index_bytes = None
    try:
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                if m.isdir():
                    continue
                name = posixpath.normpath(m.name).removeprefix("./")
                f = tar.extractfile(m) if m.isfile() else None
                if name == index and f is not None:
                    index_bytes = f.read()
                    continue
                meta = {"file": name, "folder": PurePosixPath(name).parent.name or stem}
                if f is None:  # links and devices are not read from an archive
                    raw, meta = None, {**meta, "unreadable": "not a regular file in the archive"}
                elif _too_large(m.size, name):
                    raw, meta = None, {**meta, "unreadable": TOO_LARGE}
                else:
                    raw = _read_file(f, name)
                parsed += [(name, _record(0, r, mt)) for r, mt in _split(raw, meta)]
            # tarfile stops at the end-of-archive marker, before the compressed stream's checksum:
            # a .tar.gz damaged mid-file was read without a word, with garbled texts kept
            try:
                while tar.fileobj.read(1 << 20):
                    pass
            except gzip.BadGzipFile as e:  # bytes after the last gzip member, its checksum passed: as gunzip,
                if "Not a gzipped file" not in str(e):  # which warns of trailing garbage and keeps the data
                    raise
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError, zlib.error) as e:
        where = f" after {len(parsed)} file{'s' if len(parsed) != 1 else ''}" if parsed else ""
        why = " ".join(str(e).split())  # tarfile's messages can run over several lines
        raise InputError(path, f"not a readable tar archive{where} ({why})") from None
    parsed.sort(key=lambda x: x[0])  # stable: an mbox member keeps its messages in order
    return [dataclasses.replace(rec, row=i) for i, (_, rec) in enumerate(parsed, 1)], index_bytes


def _index_labels(path: Path, index: str, raw: bytes) -> dict[str, str]:
    """TREC's index: "<label> <path>" per line, the path relative to the index's folder."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(path, f"label_index {index!r} is not UTF-8 text") from None
    base = posixpath.dirname(index)
    labels: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise InputError(path, f"label_index {index!r} line {n}: expected \"<label> <path>\", got {line.strip()!r}")
        file = posixpath.normpath(posixpath.join(base, parts[1].strip()))
        if labels.setdefault(file, parts[0]) != parts[0]:
            raise InputError(path, f"label_index {index!r} line {n}: {parts[1].strip()!r} is listed twice "
                                   f"with different labels ({labels[file]!r}, {parts[0]!r})")
    if not labels:
        raise InputError(path, f"label_index {index!r} lists no files")
    return labels


def _apply_index(path: Path, records: list[Record], index: str, labels: dict[str, str]) -> list[Record]:
    """Each record of a listed file gets its label; a file the index does not list is rejected,
    and a listed file that is not there is counted too (nothing is dropped unseen)."""
    out: list[Record] = []
    seen: set[str] = set()
    for rec in records:
        file = rec.meta.get("file")
        seen.add(file)
        if rec.values is not None:
            if file not in labels:
                rec = Record(rec.row, None, NOT_INDEXED, meta=rec.meta)
            else:
                rec.values[LABEL_COLUMN] = labels[file]
        out.append(rec)
    for file in sorted(set(labels) - seen):
        out.append(Record(len(out) + 1, None, INDEXED_MISSING, meta={"file": file}))
    return out


def _read_file(f: BinaryIO, name: str) -> bytes:
    """A mail file's bytes; only its head when that shows a binary file (a zip or an image is
    rejected from 8 KB, not read whole). An mbox is read whole whatever its head holds: one
    message's stray NUL must not cut off the messages after it."""
    head = f.read(8192)
    return head if binary_head(head, name) else head + f.read()


def _split(raw: bytes | None, meta: dict) -> Iterator[tuple[bytes | None, dict]]:
    """One file's messages: several when it is an mbox, else the file itself."""
    named = meta["file"].lower().endswith(MBOX_SUFFIXES)
    if raw is None or not (named or _holds_messages(raw)):
        yield raw, meta
        return
    # a file named .mbox is split as Python's mailbox module splits one (and as the mbox
    # reader does): at every line that starts with "From "; one found by its content only at
    # the separators that make it an mbox, so a body line "From ..." stays in its message
    starts = [m.start() for m in (re.finditer(rb"^From ", raw, re.MULTILINE) if named else _SEPARATOR.finditer(raw))]
    if not starts:  # named .mbox but holding one message without its "From " line
        yield raw, meta
        return
    if raw[:starts[0]].strip():
        yield None, {**meta, "unreadable": "text before the first 'From ' line (not part of any message)"}
    for k, (a, b) in enumerate(zip(starts, starts[1:] + [len(raw)]), 1):
        body = raw[a:b].split(b"\n", 1)[1] if b"\n" in raw[a:b] else b""
        yield body, {**meta, "message": k}


def _holds_messages(raw: bytes) -> bool:
    """An mbox by its content: it starts with a separator and holds another. One message saved
    with its "From " line (SpamAssassin's files) has only the first."""
    first = _SEPARATOR.match(raw)
    return first is not None and _SEPARATOR.search(raw, first.end()) is not None


def _read(f: Path, name: str) -> tuple[bytes | None, dict]:
    try:
        if _too_large(f.stat().st_size, name):
            return None, {"file": name, "unreadable": TOO_LARGE}
        with open(f, "rb") as fh:
            return _read_file(fh, name), {"file": name}
    except OSError as e:
        return None, {"file": name, "unreadable": _unreadable(e)}
