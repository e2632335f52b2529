"""`gapscope bench study`: the demo's wall time and peak memory, measured in one process."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from gapscope.bench.common import machine, peak_rss_mb


def run(quick: bool = False, out: Path | None = None) -> dict[str, Any]:
    from gapscope.demo import run_demo
    from gapscope.study import artifacts

    from gapscope.errors import GapscopeError

    tmp = None
    if out is not None and Path(out).exists() and any(Path(out).iterdir()):
        # the demo resumes a run it finds, which would time a resume, not the demo
        raise GapscopeError(f"{out}: not empty; bench study times a run from nothing: give a new or empty directory")
    if out is None:
        tmp = Path(tempfile.mkdtemp(prefix="gapscope-bench-"))
        out = tmp
    try:
        t0 = time.perf_counter()
        run_demo(out, quick=quick)
        wall = time.perf_counter() - t0
        run_json = artifacts.read_json(out / "run" / "run.json")
        cells = {}
        for meta in sorted((out / "run" / "cells").glob("*/cell.json")):
            m = artifacts.read_json(meta)
            cells[meta.parent.name] = round(m["fit_seconds"] + m["score_seconds"], 1)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"benchmark": "study", "quick": quick, "wall_seconds": round(wall, 1),
            "peak_rss_mb": round(peak_rss_mb(), 0), "cells": len(cells), "cell_seconds": cells,
            "failed_cells": run_json.get("failed", []), "machine": machine()}


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("demo wall time", f"{r['wall_seconds']:.0f} s", "target <= 600 s" + (" (quick)" if r["quick"] else "")),
        ("peak memory (RSS)", f"{r['peak_rss_mb'] / 1024:.2f} GB", "target <= 6 GB"),
        ("cells", str(r["cells"]), f"failed: {len(r['failed_cells'])}"),
    ]
