"""How to read one input source: the [[datasets]] table of a study spec, or a CLI path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SourceSpec:
    """One corpus source. Every field but `path` and `domain` has a default that fits common files.

    - `format`: jsonl | csv | parquet | mbox | maildir | eml | hf; None = detect from the path.
    - `text`: text column; when absent (or missing from the file) `subject` + `body` columns are joined.
    - `label`: label column. `label_value` instead gives one fixed label for the whole source
      (needed for mbox / maildir / .eml sources, which carry no label column).
    - `label_map`: raw label value -> 0/1; None = the built-in map (spam/ham, phishing/legitimate,
      "Phishing Email"/"Safe Email", 0/1, true/false, ...).
    - `id`: id column kept as the row id when present.
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
    id: str = "id"
    extra: dict = field(default_factory=dict)
