"""How to read one input source: the [[datasets]] table of a study spec, or a CLI path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# tar archives of mail files, as SpamAssassin, Enron-spam and TREC publish their corpora
ARCHIVE_SUFFIX = re.compile(r"\.(?:tar(?:\.(?:gz|bz2|xz))?|tgz|tbz2?|txz)$", re.IGNORECASE)


def archive_stem(name: str) -> str | None:
    """"spamassassin" for "spamassassin.tar.bz2"; None when the name is not a tar archive's."""
    stem = ARCHIVE_SUFFIX.sub("", name)
    return stem if stem != name else None


@dataclass
class SourceSpec:
    """One corpus source. Every field but `path` and `domain` has a default that fits common files.

    - `format`: jsonl | csv | parquet | mbox | maildir | eml | hf; None = detect from the path.
    - `text`: text column; when absent (or missing from the file) `subject` + `body` columns are joined.
    - `label`: label column. `label_value` instead gives one fixed label for the whole source
      (mbox / maildir / mail-file sources carry no label column). A folder or tar archive of
      mail files has a `folder` column, so `label = "folder"` labels each file by its folder.
    - `label_index`: for a folder or tar archive of mail files, a file inside it that lists
      "<label> <path>" per line (TREC's `full/index`: "spam ../data/inmail.1", the path relative
      to the index's own folder); each listed file gets that label, in a `label` column.
    - `label_map`: raw label value -> 0/1; None = the built-in map (spam/ham, phishing/legitimate,
      "Phishing Email"/"Safe Email", 0/1, true/false, ...).
    - `id`: id column kept as the row id when present.
    - `delimiter`: a CSV's field separator (default "," or tab for .tsv; ";" for many Excel exports).
    - `encoding`: a CSV or JSONL file's text encoding (default UTF-8; "latin-1", "cp1252", ...).
    """

    path: Path
    domain: str
    format: str | None = None
    text: str = "text"
    subject: str = "subject"
    body: str = "body"
    label: str = "label"
    label_value: int | str | None = None
    label_map: dict[str, int] | None = None
    label_index: str | None = None
    id: str = "id"
    delimiter: str | None = None
    encoding: str | None = None
    # the column keys the user named (text, subject, body, id): a named column must exist, where
    # a default one may be absent (text falls back to subject + body, id to gapscope's own)
    named: frozenset[str] = frozenset()
    extra: dict = field(default_factory=dict)
