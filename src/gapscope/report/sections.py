"""Extra report sections contributed by detectors: each detector may leave
diagnostics/<name>/section.json ({"id", "title", "html", "table" or "evidence" (any JSON value, drawn
and escaped like a finding's evidence), optionally "caption": plain text shown under the title}),
or a list of them, and it is rendered after the matrix."""

from __future__ import annotations

from pathlib import Path

from gapscope.study import artifacts


def extra_sections(run_dir: Path) -> list[dict]:
    out = []
    for p in sorted((Path(run_dir) / "diagnostics").glob("*/section*.json")):
        sec = artifacts.read_json(p)
        if isinstance(sec, list):
            out += sec
        else:
            out.append(sec)
    return out
