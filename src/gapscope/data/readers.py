"""Tabular readers (JSONL, CSV, Parquet, Hugging Face save_to_disk) and format detection.

A reader turns one file into a `Table`: its column names and one `Record` per input
row. A row that cannot be read (a bad JSON line, a CSV row with the wrong number of
fields) becomes a Record with an `error`, so ingestion can count it; a file that
cannot be read at all raises InputError. Readers do not interpret columns: choosing
the text and label columns is ingestion's job.

Row numbers are what a person would look for: the 1-based line in JSONL/CSV files
(the line a multi-line CSV record starts on), the 1-based position in Parquet / Hugging
Face / mail sources.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gapscope.data.labels import LabelError, LabelMapper
from gapscope.data.source_spec import SourceSpec, archive_stem
from gapscope.errors import InputError, first_line

FORMATS = ("jsonl", "csv", "parquet", "hf", "mbox", "maildir", "eml")
_SUFFIX_FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".csv": "csv", ".tsv": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".mbox": "mbox", ".mbx": "mbox",
    ".eml": "eml",
}
_HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
MBOX_SUFFIXES = (".mbox", ".mbx")
_HEADER_LINE = re.compile(rb"([\x21-\x39\x3b-\x7e]{1,80}):")
# A file with no extension counts as an email when its header block names one of these (a
# README's "Source: ..." line or a JSON shard's '{"text":' does not make it one).
_MAIL_HEADERS = frozenset(h.encode() for h in (
    "from", "to", "cc", "subject", "date", "received", "return-path", "message-id", "mime-version",
    "content-type", "delivered-to", "reply-to", "sender", "x-mailer", "in-reply-to", "references"))
NUL_REASON = "NUL byte in row"
SWALLOWED_REASON = "quoted field holds whole rows (unclosed quote?)"


@dataclass
class Record:
    """One input row: `values` by column, or `error` (the rejection reason) when unreadable."""

    row: int
    values: dict[str, Any] | None
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Table:
    format: str
    columns: list[str]
    records: list[Record]
    mail: bool = False  # mail sources: columns are subject/body, the label comes from the spec


def _suffixes(path: Path) -> list[str]:
    s = [x.lower() for x in path.suffixes]
    return s[:-1] if s and s[-1] == ".gz" else s


def detect_format(path: Path) -> str:
    """Format from the name, or from what a directory holds. Raises InputError when unclear."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        if any((path / m).is_file() for m in _HF_MARKERS):
            return "hf"
        if (path / "cur").is_dir() and (path / "new").is_dir():
            return "maildir"
        if _holds_mail(path):
            return "eml"
        raise InputError(
            path, "cannot tell the format of this directory (no dataset_info.json or state.json, "
            "no cur/ and new/ subdirectories, no .eml file or other file that starts like an email)")
    if archive_stem(path.name):
        return "eml"
    sfx = _suffixes(path)
    if sfx and sfx[-1] in _SUFFIX_FORMATS:
        fmt = _SUFFIX_FORMATS[sfx[-1]]
        if path.suffix.lower() == ".gz" and fmt not in ("jsonl", "csv"):
            # only the text readers undo gzip: 'no messages' or 'binary file' hid the reason
            raise InputError(path, f"a gzip-compressed {fmt} file is not read as it is: decompress it first "
                                   f"(gunzip -k {path.name}), or pack mail files as a .tar.gz")
        return fmt
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"From "):
        return "mbox"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.lstrip().startswith(b"{"):
        return "jsonl"
    raise InputError(path, "cannot tell the format from the file name or its first bytes; give the file "
                     "its extension (.jsonl, .csv, .parquet, .mbox, .eml) or set `format` in the spec's "
                     f"[[datasets]] table (one of {', '.join(FORMATS)})")


def looks_like_mail(raw: bytes) -> bool:
    """Whether a file starts like an email: an optional mbox "From " line, then header lines
    (continuation lines allowed) up to a blank line or the end, one of them a mail header."""
    lines = raw[:16384].lstrip(b"\r\n").split(b"\n")
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]
    known = False
    for line in lines[:200]:
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            continue
        m = _HEADER_LINE.match(line)
        if not m:  # the body, with no blank line before it (Enron-spam's "Subject: ..." files)
            return known
        known = known or m.group(1).lower() in _MAIL_HEADERS
    return known


def binary_head(head: bytes, name: str) -> bool:
    """Whether a file whose first bytes are `head` is binary, not mail. An mbox (named so, or
    starting with a "From " line) is text whatever one message holds: a stray NUL is that
    message's, not the file's."""
    return b"\x00" in head and not (name.lower().endswith(MBOX_SUFFIXES) or head.startswith(b"From "))


def _holds_mail(folder: Path, look_at: int = 200) -> bool:
    """Whether a folder holds an .eml or .mbox file, or a file that starts like an email (header
    lines, one a mail header), among the first `look_at` files in name order."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())
    if any(p.suffix.lower() in (".eml", *MBOX_SUFFIXES) for p in files):
        return True
    for f in files[:look_at]:
        try:
            with open(f, "rb") as fh:
                head = fh.read(4096)
        except OSError:
            continue
        if not binary_head(head, f.name) and looks_like_mail(head):
            return True
    return False


# `data audit` takes paths, which carry no encoding: it takes a study spec too, where the table does
ENCODING_HINT = ("; if it was saved in another encoding, set encoding = \"latin-1\" (or \"cp1252\") in its "
                 "[[datasets]] table (gapscope data audit reads a spec .toml too)")


def read_text(path: Path, kind: str, encoding: str | None = None) -> str:
    """The file as text (gzip undone, BOM dropped), UTF-8 unless `encoding` says otherwise, or
    InputError for empty/binary/undecodable files."""
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise InputError(path, f"not a valid gzip file ({e})") from None
    if not data.strip():
        raise InputError(path, "empty file")
    utf8 = encoding is None or codecs.lookup(encoding).name == "utf-8"
    if utf8 and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(path, f"not valid UTF-8 (byte 0x{data[0]:02x} at offset 0); "
                         "the file looks UTF-16: save it as UTF-8, or set encoding = \"utf-16\" in its [[datasets]] table")
    if not utf8 and data.startswith(codecs.BOM_UTF8) and not codecs.lookup(encoding).name.startswith("utf"):
        # read as latin-1 the mark became the first column's name: 'text = "\u00ef\u00bb\u00bftext"'
        raise InputError(path, f"starts with a UTF-8 byte order mark, so it is UTF-8, not {encoding}: remove "
                               f"encoding = {encoding!r} from its [[datasets]] table")
    skip = len(codecs.BOM_UTF8) if utf8 and data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[skip:].decode("utf-8" if utf8 else encoding)
    except UnicodeDecodeError as e:
        if b"\x00" in data:
            raise InputError(path, f"binary file, not {kind}") from None
        off = e.start + skip
        line = data.count(b"\n", 0, off) + 1
        raise InputError(path, f"not valid {'UTF-8' if utf8 else encoding} (byte 0x{data[off]:02x} at offset {off})"
                         + (ENCODING_HINT if utf8 else ""), row=line) from None
    # A stray NUL is one damaged row (the reader rejects and counts it); NULs on every line
    # mean the file is not text at all (UTF-16 without a BOM, a binary blob that decodes).
    if "\x00" in text and all("\x00" in line for line in text.split("\n") if line.strip()):
        raise InputError(path, f"binary file, not {kind}")
    return text


def _columns(records: list[Record]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        if r.values:
            seen.update(dict.fromkeys(r.values))
    return list(seen)


def _json_limit(e: Exception) -> str:
    """Why json.loads refused: its own message, or the limit a hostile line ran into."""
    if isinstance(e, json.JSONDecodeError):
        return e.msg
    if isinstance(e, RecursionError):
        return "nested too deeply"
    return "a number too long to read" if "digits" in str(e) else first_line(e)


def read_jsonl(path: Path, spec: SourceSpec) -> Table:
    """One JSON object per line; blank lines skipped. A `.json` file holding one array also works.

    Some invalid lines: each is rejected as "invalid JSON" and counted. Every line invalid: the
    file is not JSONL, an InputError naming the first bad line.
    """
    text = read_text(path, "JSONL/CSV", spec.encoding)
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(path, f"invalid JSON ({e.msg})", row=e.lineno) from None
        except (ValueError, RecursionError) as e:
            raise InputError(path, f"invalid JSON ({_json_limit(e)})") from None
        # meta "element": the row number counts array elements, not lines (Row.location)
        records = [Record(i + 1, x, meta={"element": True}) if isinstance(x, dict)
                   else Record(i + 1, None, "not a JSON object", meta={"element": True}) for i, x in enumerate(items)]
    else:
        _one_object(path, text)
        records = []
        first_error: tuple[int, str] | None = None
        for n, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            if "\x00" in line:
                records.append(Record(n, None, NUL_REASON))
                first_error = first_error or (n, NUL_REASON)
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
                records.append(Record(n, None, "invalid JSON"))
                first_error = first_error or (n, f"invalid JSON ({_json_limit(e)})")
                continue
            if isinstance(obj, dict):
                records.append(Record(n, obj))
            else:
                records.append(Record(n, None, "not a JSON object"))
                first_error = first_error or (n, "not a JSON object")
        if records and all(r.values is None for r in records):
            n, why = first_error
            raise InputError(path, f"{why}; no line of the file is a JSON object", row=n)
    if not records:
        raise InputError(path, "no rows")
    return Table("jsonl", _columns(records), records)


def _one_object(path: Path, text: str) -> None:
    """A file that is one JSON object wrapping the rows ({"data": [...]}): read line by line it failed
    as 'invalid JSON' on its first line, or as one row without a text column."""
    if not text.lstrip().startswith("{"):
        return
    try:
        whole = json.loads(text)
    except (ValueError, RecursionError):
        return
    if not isinstance(whole, dict):
        return
    lists = [k for k, v in whole.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
    # a row has scalar fields; a one-line .jsonl of nested fields (a chat format) is a row, not a wrapper
    wrapper = lists and all(isinstance(v, (list, dict)) for v in whole.values()) and path.suffix.lower() == ".json"
    if wrapper or len([ln for ln in text.splitlines() if ln.strip()]) > 1:
        inner = (f"; its key {lists[0]!r} holds a list of {len(whole[lists[0]])} objects: save that list as the file"
                 if lists else "")
        raise InputError(path, "one JSON object, not an array of objects or one object per line (JSONL)" + inner)


def read_csv(path: Path, spec: SourceSpec) -> Table:
    """CSV (TSV for .tsv) with a header row; quoted fields may span lines.

    Read with the csv module so every cell stays a string (ids like "007" survive).
    A row with more or fewer fields than the header is rejected ("wrong number of fields");
    trailing empty fields are tolerated.
    """
    text = read_text(path, "JSONL/CSV", spec.encoding)
    delimiter = spec.delimiter or spec.extra.get("delimiter") or ("\t" if _suffixes(path)[-1:] == [".tsv"] else ",")
    csv.field_size_limit(2**31 - 1)  # email bodies exceed the 128 KiB default
    # the physical lines the reader reads (split at \n, \r\n and \r, as csv counts them), kept so a
    # record's own lines can be looked at again (_RowShape.swallows_rows)
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines, delimiter=delimiter)
    records: list[Record] = []
    header: list[str] | None = None
    prev = 0
    try:
        for fields in reader:
            start, prev = prev + 1, reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                if header is not None and len(header) == 1 and fields and fields[0]:
                    # in a one-column file a line of spaces is a row with empty text: counted, not skipped
                    records.append(Record(start, None, "empty text"))
                continue
            if header is None:
                header = [h.strip() for h in fields]
                other = next((c for c in ";\t|," if c != delimiter and len(header) == 1 and c in header[0]), None)
                if other:  # a ';'-separated Excel export read as CSV: one column named "text;label"
                    raise InputError(path, f"the header is one column {header[0]!r}: if the fields are separated by "
                                           f"{other!r}, set delimiter = {other!r} in its [[datasets]] table", row=start)
                read = {spec.text, spec.subject, spec.body, spec.label, spec.id} - {None}
                twice = sorted({h for h in header if h in read and header.count(h) > 1})
                if twice:  # zip() would keep the last one and drop the other without a word
                    raise InputError(path, f"column(s) {', '.join(map(repr, twice))} appear twice in the header",
                                     row=start)
                shape = _RowShape(header, delimiter, spec)
                continue
            fields = _trim(fields, len(header))
            if any("\x00" in f for f in fields):
                records.append(Record(start, None, NUL_REASON))
            elif shape.swallows_rows(fields, lines[start - 1:prev]):  # first: a quote left open to the end of
                # the file leaves a row of too few fields. Every line the record took was a row of its own
                # (no line inside a runaway quote can be a multi-line field), so each is counted where it is.
                records += [Record(n, None, SWALLOWED_REASON) for n in range(start, prev + 1) if lines[n - 1].strip()]
            elif len(fields) != len(header):
                records.append(Record(start, None, "wrong number of fields"))
            else:
                records.append(Record(start, dict(zip(header, fields))))
    except csv.Error as e:
        raise InputError(path, f"malformed CSV ({e})", row=reader.line_num) from None
    if not records:
        raise InputError(path, "no rows (only a header)")
    if all(r.values is None for r in records):
        first = records[0]
        if first.error == "wrong number of fields":
            raise InputError(path, f"every row has the wrong number of fields (the header has {len(header)}; "
                             f"delimiter {delimiter!r})", row=first.row)
        raise InputError(path, f"no row could be read: {first.error}", row=first.row)
    return Table("csv", header, records)


def _trim(fields: list[str], width: int) -> list[str]:
    """Trailing empty fields past the header's width dropped (a trailing comma is tolerated)."""
    n = len(fields)
    while n > width and fields[n - 1] == "":
        n -= 1
    return fields[:n]


class _RowShape:
    """Whether a line of text is, on its own, a whole row of this CSV file with a known label."""

    def __init__(self, header: list[str], delimiter: str, spec: SourceSpec):
        self.width, self.delimiter = len(header), delimiter
        self.at = header.index(spec.label) if spec.label in header and spec.label_value is None else None
        self.mapper = LabelMapper(spec.label_map)

    def is_row(self, fields: list[str]) -> bool:
        fields = _trim(fields, self.width)
        if len(fields) != self.width or not fields[self.at].strip():
            return False
        try:
            self.mapper(fields[self.at])
        except LabelError:
            return False
        return True

    def parse(self, line: str) -> list[str]:
        return next(csv.reader([line], delimiter=self.delimiter), [])

    def strict_error(self, raw: list[str]) -> str | None:
        """What csv's strict mode says of the record's lines, or None where their quoting is sound. The
        lenient reader takes a closing quote followed by more text, and a quote never closed ("unexpected
        end of data"); strict mode refuses both."""
        try:
            for _ in csv.reader(raw, delimiter=self.delimiter, strict=True):
                pass
        except csv.Error as e:
            return str(e)
        return None

    def completes_row(self, before: list[str], line: str) -> bool:
        """Whether the fields before a quoted field plus the field's first line make a whole row.
        The text was quoted because it holds the delimiter, so the row is matched from the right:
        the line's last pieces are the columns after the field, the rest is the field."""
        pieces = self.parse(line)
        after = self.width - len(before) - 1
        if len(pieces) <= after:
            return False
        cut = len(pieces) - after
        return self.is_row(before + [self.delimiter.join(pieces[:cut])] + pieces[cut:])

    def swallows_rows(self, fields: list[str], raw: list[str]) -> bool:
        """A field whose quote was opened and never closed runs on to the next quote character;
        Python's csv module (like pandas) reads all of it as one field, so the rows inside vanish
        without an error. The tell-tales, on the record's own lines `raw`: it spans several lines,
        its quoting is broken (the quote that ends the field is really the next row's opening
        quote or a quote inside its text, or there is none), and it holds a whole row: a line
        after its first is one by itself, or the field's first line completes its own row (the
        row was whole before the quote went missing; only with the label column after the field).
        A real multi-line field (an email body) is quoted properly, so it never has the first."""
        error = self.strict_error(raw) if self.at is not None and len(raw) >= 2 else None
        if error is None:
            return False
        # The record's last line holds the rest of its row wherever a multi-line field closes, so it
        # reads as a row with the label after the field (text,label: a body with unescaped inner quotes
        # is one row). It counts when the quote ran to the end of the file, or when the label column
        # comes before the field: then a line that reads as a row starts with its own label.
        multi = next((i for i, v in enumerate(fields) if "\n" in v or "\r" in v), None)
        label_first = multi is not None and self.at < multi
        inner = raw[1:] if label_first or "unexpected end of data" in error else raw[1:-1]
        if any(self.is_row(self.parse(x)) for x in inner):
            return True
        for i, value in enumerate(fields):
            if "\n" in value or "\r" in value:
                # with the label column before the field (label,text) the row is complete whatever the
                # field's first line holds, so that line tells nothing
                if self.at > i and self.completes_row(fields[:i], re.split("\r\n|\r|\n", value, maxsplit=1)[0]):
                    return True
        return False


def read_parquet(path: Path, spec: SourceSpec) -> Table:
    """A Parquet file, read with pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise InputError(path, f"not a readable Parquet file ({first_line(e)})") from None
    if table.num_rows == 0:
        raise InputError(path, "no rows")
    records = [Record(i + 1, row) for i, row in enumerate(table.to_pylist())]
    return Table("parquet", list(table.column_names), records)


def read_hf(path: Path, spec: SourceSpec) -> Table:
    """A dataset written by `save_to_disk`; a DatasetDict's splits are concatenated in saved order.

    A ClassLabel label column is turned back into its names, so a dataset whose class 0 is
    "phishing" is not read as legitimate; names gapscope does not know need a label_map (reading
    their integer codes instead would silently invert a dataset whose class 0 is the bad one).
    """
    import datasets

    from gapscope.data.labels import LabelError, LabelMapper

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many types for a bad directory
        raise InputError(path, f"not a readable Hugging Face dataset ({first_line(e)})") from None
    parts = list(loaded.items()) if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    mapper = LabelMapper(spec.label_map)
    records: list[Record] = []
    columns: dict[str, None] = {}
    for split, ds in parts:
        columns.update(dict.fromkeys(ds.column_names))
        names = None
        feature = ds.features.get(spec.label)
        if isinstance(feature, datasets.ClassLabel):
            names = feature.names  # codes become names, so the readers never see 0/1 of unknown meaning
            try:
                [mapper(n) for n in names]
            except LabelError:
                if spec.label_value is None:  # with a fixed label the names need not be known
                    example = ", ".join(f"{json.dumps(n)} = {v}" for n, v in zip(feature.names[:2], (1, 0)))
                    raise InputError(path, f"label column {spec.label!r} is a ClassLabel with names "
                                           f"{feature.names} that are not known labels; give a label_map "
                                           f"(which name is phishing), e.g. label_map = {{ {example} }}") from None
        for index, row in enumerate(ds.to_list()):
            if names is not None and isinstance(row.get(spec.label), int) and 0 <= row[spec.label] < len(names):
                row[spec.label] = names[row[spec.label]]
            # a DatasetDict's row is opened by its split and its index there (ds["train"][45])
            records.append(Record(len(records) + 1, row, meta={"split": split, "index": index} if split else {}))
    if not records:
        raise InputError(path, "no rows")
    return Table("hf", list(columns), records)
