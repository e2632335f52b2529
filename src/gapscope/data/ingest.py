"""Sources -> normalised Rows plus one SourceReport per source.

Every input row is either kept or rejected with a reason, so for every source
rows_in == rows_kept + rows_rejected. Row-level problems (empty text, unknown label,
a bad JSON line, one broken message) are counted, not fatal: real corpora have a few.
Problems that mean the file as a whole was misread (not found, binary, not UTF-8, no
label column, no known label anywhere, nothing usable) raise InputError, one line
naming the file and, where it applies, the row.

Checks run in this order for each row, and the first failing one is its reason:
unreadable record -> text ("missing text", "empty text", "text is not a string") -> label ("missing
label", "unknown label value '...'") -> id ("duplicate id").
"""

from __future__ import annotations

import json
import math
import numbers
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from gapscope.data.email_parse import looks_like_html
from gapscope.data.labels import LabelError, LabelMapper, parse_label
from gapscope.data.mail_sources import FOLDER_COLUMN, read_eml, read_maildir, read_mbox
from gapscope.data.readers import FORMATS, Record, Table, detect_format, read_csv, read_hf, read_jsonl, read_parquet
from gapscope.data.rows import LABEL_NAMES, Row, SourceReport, compose_text, location, stable_id
from gapscope.data.source_spec import SourceSpec, archive_stem
from gapscope.errors import InputError

# a row without the text key (JSONL), as "missing label" is one without the label key; "empty text"
# is a row whose text is there but blank or null
MISSING_TEXT = "missing text"

READERS: dict[str, Callable[[Path, SourceSpec], Table]] = {
    "jsonl": read_jsonl,
    "csv": read_csv,
    "parquet": read_parquet,
    "hf": read_hf,
    "mbox": read_mbox,
    "maildir": read_maildir,
    "eml": read_eml,
}


@dataclass
class _DomainIds:
    """Ids handed out in one domain, shared by every source of that domain."""

    seen: set[str] = field(default_factory=set)
    occurrences: Counter = field(default_factory=Counter)


class _RowError(Exception):
    def __init__(self, reason: str):
        self.reason = reason


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _as_text(v: Any) -> str | None:
    if _missing(v):
        return None
    if not isinstance(v, str):
        raise _RowError("text is not a string")
    return _valid_utf8(v)


def _valid_utf8(v: str) -> str:
    """Lone surrogates (a JSON "\\ud800" escape) become U+FFFD: they cannot be written to Parquet."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        v = v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return v


def _id_str(v: Any) -> str | None:
    if _missing(v) or isinstance(v, (dict, list)):
        return None
    if isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral) and float(v).is_integer():
        return str(int(v))
    return _valid_utf8(str(v).strip())


def _text_fields(path: Path, spec: SourceSpec, table: Table) -> Callable[[dict], tuple[str, str | None, str | None]]:
    """Pick the text column, or subject + body, and return a row -> (text, subject, body) function."""
    cols = table.columns
    if table.mail:
        subject_col, body_col = "subject", "body"
    elif spec.text in cols:
        def from_text(values: dict) -> tuple[str, None, None]:
            if spec.text not in values:  # a JSONL row without the key; a CSV/Parquet row always has the column
                raise _RowError(MISSING_TEXT)
            text = _as_text(values.get(spec.text))
            if text is None:
                raise _RowError("empty text")
            return text, None, None
        return from_text
    elif spec.subject in cols or spec.body in cols:
        subject_col, body_col = spec.subject, spec.body
    else:
        raise InputError(path, f"no text column '{spec.text}' and no '{spec.subject}'/'{spec.body}' columns "
                         f"(columns: {', '.join(cols)}){_naming_hint('text', cols, TEXT_WORDS)}")

    def from_parts(values: dict) -> tuple[str, str | None, str | None]:
        if subject_col not in values and body_col not in values:
            raise _RowError(MISSING_TEXT)
        subject, body = _as_text(values.get(subject_col)), _as_text(values.get(body_col))
        text = compose_text(subject, body)
        if not text:
            raise _RowError("empty text")
        return text, subject, body
    return from_parts


# Words that name a text or label column in public phishing corpora (Kaggle's "Email Text" and
# "Email Type", "Message"/"Category", "body"/"is_phishing", ...): a hint, never a silent choice.
TEXT_WORDS = ("text", "body", "message", "content", "email", "mail")
LABEL_WORDS = ("label", "type", "class", "category", "phish", "spam", "target")


def _naming_hint(key: str, columns: list[str], words: tuple[str, ...]) -> str:
    """'; name it in the study spec's [[datasets]] entry: text = "Email Text"' when a column looks
    like one, else how to name it."""
    guess = next((c for w in words for c in columns if w in str(c).lower()), None)
    example = f"{key} = {json.dumps(str(guess))}" if guess is not None else f'{key} = "<column>"'  # a TOML string
    return f"; name it in the study spec's [[datasets]] entry: {example}"


def _check_named_columns(path: Path, spec: SourceSpec, table: Table) -> None:
    """A column the spec names must exist (one left to its default may be absent); mail has no
    columns to name (it was ignored without a word)."""
    named = [k for k in ("text", "subject", "body", "id") if k in spec.named]
    if table.mail and named:
        raise InputError(path, f"{', '.join(named)} {'does' if len(named) == 1 else 'do'} not apply to mail: a "
                               "message is read as its subject and body, and its row id is made from its text")
    for k in ("text", "subject", "body", "id"):
        if k in spec.named and not table.mail and getattr(spec, k) not in table.columns:
            raise InputError(path, f"no {k} column {getattr(spec, k)!r}, which the spec names "
                                   f"(columns: {', '.join(table.columns)})")


def _check_labels(path: Path, spec: SourceSpec, table: Table, mapper: LabelMapper) -> None:
    """File-level label errors: no label column, or not one row with a known label."""
    if spec.label not in table.columns:
        raise InputError(path, f"no label column '{spec.label}' (columns: {', '.join(table.columns)})"
                               f"{_naming_hint('label', table.columns, LABEL_WORDS)}")
    unknown: list[str] = []
    for rec in table.records:
        if rec.values is None:
            continue
        try:
            mapper(rec.values.get(spec.label))
            return
        except LabelError as e:
            if e.reason != "missing label" and e.reason not in unknown:
                unknown.append(e.reason)
    if unknown:
        values = ", ".join(r.removeprefix("unknown label value ") for r in unknown[:5])
        raise InputError(path, f"every label value is unknown ({values}); give a label_map")
    raise InputError(path, f"label column '{spec.label}' is empty on every row")


def _check_fixed_label(path: Path, spec: SourceSpec, table: Table, mapper: LabelMapper, fixed: int,
                       column: str | None = None) -> None:
    """A fixed label (label_value, PATH@label) over a file that has its own label column: allowed
    while they agree; the first row whose known label differs is an error, not a silent
    relabelling. A value gapscope cannot read as a label contradicts nothing. `column` = the
    folder column of a folder of mail files: folders named spam/ and ham/ are labels too."""
    for rec in table.records:
        raw = (rec.values or {}).get(column or spec.label)
        if _missing(raw):
            continue
        try:
            ok = mapper(raw) == fixed
        except LabelError:
            continue
        if not ok and column:
            raise InputError(path, f"a file sits in a folder named {raw!r} ({LABEL_NAMES[1 - fixed]}), but the source "
                                   f"is given the fixed label {LABEL_NAMES[fixed]!r}; to label each file by its folder, "
                                   f"write PATH@folder (label = \"{column}\")")
        if not ok:
            raise InputError(path, f"its {spec.label!r} column says {raw!r}, but the source is given the fixed label "
                                   f"{LABEL_NAMES[fixed]!r} (label_value or PATH@label); give one or the other",
                             row=rec.row)


def _label_value(path: Path, spec: SourceSpec, mapper: LabelMapper) -> int | None:
    if spec.label_value is None:
        return None
    try:
        return mapper(spec.label_value)
    except LabelError as e:
        raise InputError(path, f"label_value: {e.reason}") from None


def _load(spec: SourceSpec, ids: _DomainIds) -> tuple[list[Row], SourceReport]:
    path = Path(spec.path)
    if not path.exists():
        raise InputError(path, "file not found")
    fmt = spec.format or detect_format(path)
    if fmt not in READERS:
        raise InputError(path, f"unknown format '{fmt}' (one of {', '.join(FORMATS)})")
    if spec.delimiter and fmt != "csv":  # would be ignored without a word
        raise InputError(path, f"delimiter applies to CSV files; this source is read as {fmt}")
    if spec.encoding and fmt not in ("csv", "jsonl"):
        raise InputError(path, f"encoding applies to CSV and JSONL files; this source is read as {fmt} "
                               "(mail carries its own charsets)")
    if spec.label_index and fmt != "eml":
        raise InputError(path, f"label_index applies to a folder or tar archive of mail files; this source is "
                               f"read as {fmt}")
    try:
        mapper = LabelMapper(spec.label_map)
    except ValueError as e:
        raise InputError(path, str(e)) from None
    fixed_label = _label_value(path, spec, mapper)
    if fixed_label is not None and spec.label_map:  # every row takes label_value: the map would go unread
        raise InputError(path, "label_map does not apply with label_value (every row takes that label)")
    table = READERS[fmt](path, spec)
    if table.mail and fixed_label is None and spec.label not in table.columns:
        # both spellings: a spec's key and the command line's PATH@label
        if FOLDER_COLUMN in table.columns:
            raise InputError(path, f"{fmt} source needs a label: label_value (on the command line PATH@phishing or "
                                   f"PATH@legitimate), label = \"{FOLDER_COLUMN}\" (PATH@folder) to read each "
                                   "file's label from the name of its folder (spam/, ham/), or label_index = "
                                   "\"<index file>\" in a spec's [[datasets]] table for a TREC-style index of "
                                   "'<label> <path>' lines")
        raise InputError(path, f"{fmt} source needs a label: label_value = \"phishing\" or \"legitimate\" in the "
                               "spec, PATH@phishing or PATH@legitimate on the command line")
    _check_named_columns(path, spec, table)
    text_fields = _text_fields(path, spec, table)
    if fixed_label is None:
        _check_labels(path, spec, table, mapper)
    elif spec.label in table.columns:
        _check_fixed_label(path, spec, table, mapper, fixed_label)
    if fixed_label is not None and FOLDER_COLUMN in table.columns:
        _check_fixed_label(path, spec, table, mapper, fixed_label, column=FOLDER_COLUMN)
    id_col = spec.id if spec.id in table.columns and not table.mail else None
    keep_rationale = "rationale" in table.columns and not table.mail

    report = SourceReport(path=str(path), domain=spec.domain, format=fmt)
    rows: list[Row] = []
    source = str(path)
    lines = table.format in ("csv", "jsonl")  # their row number is a line, whatever the file is named
    made = 0  # kept rows whose id column held nothing usable
    for rec in table.records:
        report.rows_in += 1
        if lines and not rec.meta.get("element"):
            rec.meta = {**rec.meta, "line": True}
        try:
            rows.append(_row(rec, spec, ids, text_fields, mapper, fixed_label, id_col, keep_rationale, source))
            made += bool(id_col) and not _id_str(rec.values.get(id_col))
        except _RowError as e:
            report.reject(e.reason, location({"source": source, "row": rec.row, **rec.meta}))
    report.rows_kept = len(rows)
    if made:  # an empty, list or object id is replaced by one made from the text: said, not silent
        report.notes.append(f"{made} row{'s' if made > 1 else ''} without a usable id in column {id_col!r} "
                            "(empty, a list or an object): given an id made from the text")
    unused = [k for k in mapper.user if k not in mapper.used]
    if unused and fixed_label is None:  # label_map = { spam = 1, hamm = 0 } read every ham row as unknown
        report.notes.append(f"label_map key{'s' if len(unused) > 1 else ''} {', '.join(repr(k) for k in unused)} "
                            "matched no row")
    counts = Counter(r.label for r in rows)
    report.label_counts = {LABEL_NAMES[1]: counts[1], LABEL_NAMES[0]: counts[0]}
    assert report.rows_in == report.rows_kept + report.rows_rejected
    if not rows:
        reason, n = report.rejected_by_reason.most_common(1)[0]
        raise InputError(path, f"no usable rows ({reason}: {n} of {report.rows_in} rows)")
    return rows, report


def _row(rec: Record, spec: SourceSpec, ids: _DomainIds, text_fields, mapper: LabelMapper,
         fixed_label: int | None, id_col: str | None, keep_rationale: bool, source: str) -> Row:
    if rec.values is None:
        raise _RowError(rec.error or "unreadable row")
    values = rec.values
    text, subject, body = text_fields(values)
    if fixed_label is not None:
        label = fixed_label
    else:
        try:
            label = mapper(values.get(spec.label))
        except LabelError as e:
            raise _RowError(e.reason) from None
    row_id = _id_str(values.get(id_col)) if id_col else None
    if not row_id:
        row_id = stable_id(spec.domain, text, ids.occurrences[text])
        ids.occurrences[text] += 1
    if row_id in ids.seen:
        raise _RowError("duplicate id")
    ids.seen.add(row_id)
    meta = {"source": source, "row": rec.row, **rec.meta}
    meta.setdefault("had_html", looks_like_html(text))
    rationale = values.get("rationale") if keep_rationale else None
    rationale = _valid_utf8(rationale) if isinstance(rationale, str) and rationale.strip() else None
    return Row(id=row_id, domain=spec.domain, text=text, label=label, subject=subject, body=body,
               rationale=rationale, meta=meta)


def load_source(spec: SourceSpec) -> tuple[list[Row], SourceReport]:
    """Read one source into Rows and its report. Raises InputError for an unreadable file."""
    return _load(spec, _DomainIds())


def load_sources(specs: Iterable[SourceSpec], done: Callable[[int], None] | None = None
                 ) -> tuple[list[Row], list[SourceReport]]:
    """Read several sources; sources sharing a domain share its ids (a repeated id is rejected,
    a repeated text gets its own id). `done(i)` is called after the i-th source (progress)."""
    rows: list[Row] = []
    reports: list[SourceReport] = []
    domains: dict[str, _DomainIds] = {}
    for i, spec in enumerate(specs, 1):
        r, rep = _load(spec, domains.setdefault(spec.domain, _DomainIds()))
        rows.extend(r)
        reports.append(rep)
        if done:
            done(i)
    return rows, reports


def _domain_of(path: Path) -> str:
    if path.is_dir():
        return path.resolve().name
    if stem := archive_stem(path.name):
        return stem
    name = Path(path.name)
    if name.suffix.lower() == ".gz":
        name = Path(name.stem)
    return name.stem


def parse_cli_source(arg: str) -> SourceSpec:
    """`PATH` or `PATH@LABEL` -> SourceSpec; LABEL (phishing / legitimate / spam / 1 / 0 ...) becomes
    label_value, which mail sources need; `PATH@folder` labels each mail file by its folder's name.
    The domain is the file stem, or the directory name.

    A path that itself contains "@" works when it exists, or when what follows the last "@" is not a label.
    """
    path_str, label = arg, None
    if "@" in arg and not Path(arg).exists():
        head, _, tail = arg.rpartition("@")
        if tail == FOLDER_COLUMN:  # a folder or archive of mail: each file labelled by its folder's name
            return SourceSpec(path=Path(head), domain=_domain_of(Path(head)), label=FOLDER_COLUMN)
        try:
            parse_label(tail)
            path_str, label = head, tail
        except LabelError as e:
            if Path(head).exists():
                raise InputError(head, f"{e.reason} after '@' (use phishing or legitimate)") from None
    path = Path(path_str)
    return SourceSpec(path=path, domain=_domain_of(path), label_value=label)


def shared_id(rows, reports) -> str | None:
    """Why the rows cannot form one study, where one row id is in two datasets (`gapscope run` refuses
    it; `data audit` says it, so that it is not first heard of at the run)."""
    seen: dict[str, str] = {}
    path_of = {rep.domain: rep.path for rep in reports}
    for r in rows:
        if r.id in seen and seen[r.id] != r.domain:
            a, b = seen[r.id], r.domain
            return (f"row id {r.id!r} is in both {path_of[a]} ({a}) and {path_of[b]} ({b}); ids must "
                    "be unique across datasets (without an `id` key gapscope makes its own)")
        seen[r.id] = r.domain
    return None
