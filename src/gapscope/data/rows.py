"""The normalised row every corpus becomes, and the per-source ingestion report."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any

from gapscope.data.source_spec import archive_stem

_LINE_FORMATS = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".gz")  # their row number is a line

PHISHING = 1
LEGITIMATE = 0
LABEL_NAMES = {PHISHING: "phishing", LEGITIMATE: "legitimate"}


@dataclass
class Row:
    """One email. label 1 = phishing / spam / fraud, 0 = legitimate."""

    id: str
    domain: str
    text: str
    label: int
    subject: str | None = None
    body: str | None = None
    rationale: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None and v != {}}

    @property
    def location(self) -> str | None:
        """Where a person finds this row in the input (see `location`)."""
        return location(self.meta)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Row":
        return cls(
            id=str(d["id"]),
            domain=str(d["domain"]),
            text=str(d["text"]),
            label=int(d["label"]),
            subject=d.get("subject"),
            body=d.get("body"),
            rationale=d.get("rationale"),
            meta=dict(d.get("meta") or {}),
        )


def location(meta: dict[str, Any]) -> str | None:
    """Where a person finds a row in the input, from its meta, so a finding about it (or its
    rejection) can be acted on:
    "enron.csv:1207" (a line), "data.parquet row 12 (index 11)", "spamassassin/spam/00012.abc" (a file in
    a folder), "spamassassin.tar.bz2:spam/00012.abc", "nazario.mbox message 3"."""
    if "source" not in meta:
        return None
    src = PurePath(str(meta["source"])).name
    if "file" in meta:
        file = str(meta["file"])
        where = src if file == src else f"{src}:{file}" if archive_stem(src) else f"{src}/{file}"
    elif "key" in meta:  # maildir
        where = f"{src}/{meta['key']}"
    elif "message" in meta or "row" not in meta:
        where = src
    else:
        # the reader says (rows read before it did: the file's name)
        line = meta["line"] if "line" in meta else src.lower().endswith(_LINE_FORMATS) and not meta.get("element")
        if line:
            return f"{src}:{meta['row']}"
        # rows of a table or array count from 1; the index it is opened by (df.iloc[i], ds[i], data[i])
        # counts from 0, and "row 75" opened as iloc[75] gave the next email (a user's review)
        split = meta.get("split")
        index = meta.get("index", int(meta["row"]) - 1)
        return f"{src} row {meta['row']} ({f'{split}[{index}]' if split else f'index {index}'})"
    return f"{where} message {meta['message']}" if "message" in meta else where


def stable_id(domain: str, text: str, occurrence: int = 0) -> str:
    """An id that depends only on content, so it is the same across runs.

    `occurrence` separates exact repeats of one text within a domain.
    """
    h = hashlib.sha1(f"{domain}\x00{text}\x00{occurrence}".encode("utf-8")).hexdigest()
    return f"{domain}-{h[:12]}"


def compose_text(subject: str | None, body: str | None) -> str:
    """The single text a model sees when a source gives subject and body separately."""
    subject = (subject or "").strip()
    body = (body or "").strip()
    if subject and body:
        return f"Subject: {subject}\n\n{body}"
    return subject or body


@dataclass
class SourceReport:
    """What happened to one input file: every row is either kept or rejected with a reason."""

    path: str
    domain: str
    format: str
    rows_in: int = 0
    rows_kept: int = 0
    rows_rejected: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    label_counts: dict[str, int] = field(default_factory=dict)
    # where the first rejected rows of each reason are ("bank.csv:12"), so they can be found
    rejected_at: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the user should know of the file, one phrase each

    MAX_LOCATIONS = 20  # per reason

    def reject(self, reason: str, where: str | None = None) -> None:
        self.rows_rejected += 1
        self.rejected_by_reason[reason] += 1
        at = self.rejected_at.setdefault(reason, [])
        if where and len(at) < self.MAX_LOCATIONS:
            at.append(where)

    def summary(self) -> str:
        """One line: rows in, kept, rejected with their reasons (and where the first ones are), labels kept."""
        def one(k, v):
            at = self.rejected_at.get(k) or []
            return f"{k}: {v}" + (f" at {', '.join(at[:3])}{', ...' if v > 3 else ''}" if at else "")

        rej = ", ".join(one(k, v) for k, v in self.rejected_by_reason.items()) or "none"
        return (f"{self.path}: {self.rows_in} rows in, {self.rows_kept} kept, {self.rows_rejected} rejected ({rej}); "
                f"labels {dict(self.label_counts)}" + "".join(f"; note: {n}" for n in self.notes))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SourceReport":
        """The report `to_dict` wrote (data/sources.json), every field back."""
        return cls(path=d["path"], domain=d["domain"], format=d["format"], rows_in=d["rows_in"],
                   rows_kept=d["rows_kept"], rows_rejected=d["rows_rejected"],
                   rejected_by_reason=Counter(d["rejected_by_reason"]), label_counts=dict(d["label_counts"]),
                   rejected_at={k: list(v) for k, v in d.get("rejected_at", {}).items()},
                   notes=list(d.get("notes", [])))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "domain": self.domain,
            "format": self.format,
            "rows_in": self.rows_in,
            "rows_kept": self.rows_kept,
            "rows_rejected": self.rows_rejected,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "rejected_at": {k: list(v) for k, v in self.rejected_at.items() if v},
            "label_counts": dict(self.label_counts),
            "notes": list(self.notes),
        }
