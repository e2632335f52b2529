"""Mail readers: mbox, maildir and directories of .eml files, one Record per message.

Messages are taken as raw bytes (`get_bytes`) and parsed by email_parse with the modern
email policy, rather than trusting mailbox's compat32 Message objects. A message that
cannot be parsed becomes a rejected Record ("broken MIME: ..."); a source where every
message is broken, or that holds none, is a file-level InputError. Mail carries no label
column: the label comes from the source spec (`label_value`), which ingestion enforces.
Order is deterministic (file order for mbox, sorted names otherwise) so stable ids are.
"""

from __future__ import annotations

import mailbox
from pathlib import Path
from typing import Iterable

from gapscope.data.email_parse import BrokenMessage, parse_email
from gapscope.data.readers import Record, Table
from gapscope.data.source_spec import SourceSpec
from gapscope.errors import InputError

MAIL_COLUMNS = ["subject", "body"]


def _record(n: int, raw: bytes | None, meta: dict) -> Record:
    if raw is None:  # a file that could not be read
        return Record(n, None, meta["unreadable"], meta={k: v for k, v in meta.items() if k != "unreadable"})
    try:
        msg = parse_email(raw)
    except BrokenMessage as e:
        return Record(n, None, str(e), meta=meta)
    meta = {**meta, "had_html": msg.had_html}
    if msg.sender:
        meta["from"] = msg.sender
    if msg.message_id:
        meta["message_id"] = msg.message_id
    return Record(n, {"subject": msg.subject or None, "body": msg.body or None}, meta=meta)


def _table(path: Path, fmt: str, messages: Iterable[tuple[bytes, dict]], empty: str) -> Table:
    records = [_record(i + 1, raw, meta) for i, (raw, meta) in enumerate(messages)]
    if not records:
        raise InputError(path, empty)
    if all(r.values is None for r in records):
        first = records[0]
        detail = first.error or ""
        if detail.startswith("broken MIME: "):
            head, detail = "every message has broken MIME", detail.removeprefix("broken MIME: ")
        else:
            head = "no message could be read"
        raise InputError(path, f"{head} (message {first.row}: {detail})", row=first.row)
    return Table(fmt, list(MAIL_COLUMNS), records, mail=True)


def read_mbox(path: Path, spec: SourceSpec) -> Table:
    """A Unix mbox file; messages start at lines beginning "From "."""
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    box = mailbox.mbox(str(path), factory=None, create=False)
    try:
        messages = [(box.get_bytes(key), {}) for key in box.keys()]
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
    """A maildir (cur/, new/, tmp/); messages in cur/ and new/, in sorted key order."""
    box = mailbox.Maildir(str(path), factory=None, create=False)
    messages = [(box.get_bytes(key), {"key": key}) for key in sorted(box.keys())]
    return _table(path, "maildir", messages, "no messages in cur/ or new/")


def read_eml(path: Path, spec: SourceSpec) -> Table:
    """A directory of .eml files (recursive, sorted by relative path), or one .eml file."""
    if path.is_file():
        files = [path]
        root = path.parent
    else:
        root = path
        # a dangling link is counted as rejected, not skipped (is_file() is false for it)
        files = sorted((p for p in path.rglob("*") if p.suffix.lower() == ".eml" and (p.is_file() or p.is_symlink())),
                       key=lambda p: p.relative_to(root).as_posix())
    messages = (_read(f, f.relative_to(root).as_posix()) for f in files)
    return _table(path, "eml", messages, "no .eml files")


def _read(f: Path, name: str) -> tuple[bytes | None, dict]:
    try:
        return f.read_bytes(), {"file": name}
    except OSError as e:
        return None, {"file": name, "unreadable": f"unreadable file ({e.strerror or type(e).__name__})"}
