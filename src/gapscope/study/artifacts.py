"""Run-directory artifacts: JSON and Parquet written atomically, never pickle.

Atomic writes (temp file + rename) are what make resume safe: a stage's output
either exists whole or not at all after an interruption.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from gapscope.data.rows import Row
from gapscope.errors import GapscopeError, first_line


class DamagedArtifact(GapscopeError):
    """A run-directory file that exists but cannot be read (truncated, garbled, edited by hand)."""

    def __init__(self, path: Path, why: str):
        self.why = why
        super().__init__(f"{path}: damaged or unreadable ({why}); rerun `gapscope run` with the same --out "
                         "to rebuild what it belongs to")


def _atomic(path: Path, write) -> None:
    """write(tmp), then rename over `path`. An error names `path`, not its temp file (a read-only
    run directory said 'findings.json.tmp: permission denied')."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if e.filename in (str(tmp), tmp) and e.errno is not None:
            raise type(e)(e.errno, e.strerror, str(path)) from None
        raise


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=_default) + "\n"
    _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, set):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DamagedArtifact(path, first_line(e, 160)) from None


def read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise
    except (ValueError, OSError) as e:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise DamagedArtifact(path, first_line(e, 160)) from None


def read_tensors(path: Path, device: str = "cpu", numpy: bool = False) -> dict:
    """A safetensors file as a dict of torch tensors (numpy arrays with `numpy`)."""
    if not Path(path).exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    try:
        if numpy:
            from safetensors.numpy import load_file as load_numpy

            return load_numpy(str(path))
        from safetensors.torch import load_file

        return load_file(str(path), device=device)
    except Exception as e:  # noqa: BLE001  (safetensors raises its own SafetensorError for a garbled header)
        raise DamagedArtifact(path, first_line(e, 160)) from None


def parquet_readable(path: Path) -> bool:
    """Whether a Parquet file is there whole (its footer parses): a resume redoes a cell whose is not."""
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
        return True
    except (OSError, ValueError):
        return False


def write_text(path: Path, text: str) -> None:
    # newline="": as given, so a CSV's \r\n stays one line end
    _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8", newline=""))


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    _atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


def rows_to_frame(rows: list[Row]) -> pd.DataFrame:
    return pd.DataFrame({
        "id": [r.id for r in rows],
        "domain": [r.domain for r in rows],
        "text": [r.text for r in rows],
        "label": [int(r.label) for r in rows],
        "subject": [r.subject for r in rows],
        "body": [r.body for r in rows],
        "rationale": [r.rationale for r in rows],
        "meta": [json.dumps(r.meta, sort_keys=True, default=str) for r in rows],
    })


def frame_to_rows(df: pd.DataFrame) -> list[Row]:
    out = []
    for rec in df.to_dict("records"):
        out.append(Row(
            id=rec["id"], domain=rec["domain"], text=rec["text"], label=int(rec["label"]),
            subject=rec.get("subject"), body=rec.get("body"), rationale=rec.get("rationale"),
            meta=json.loads(rec["meta"]) if rec.get("meta") else {},
        ))
    return out


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=_default).encode("utf-8")).hexdigest()[:16]
