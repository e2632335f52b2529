"""Runs every registered detector over a finished run and writes the ranked findings.json.

Each detector's findings are stored under diagnostics/<name>/findings.json with a
fingerprint of the run's cells, so a rerun skips detectors that already finished.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from gapscope import progress
from gapscope.errors import GapscopeError
from gapscope.findings import Finding, detectors, rank
from gapscope.study import artifacts
from gapscope.study.context import Study


def _cells_fingerprint(study: Study) -> str:
    return artifacts.fingerprint([c.meta.get("fingerprint") for c in study.cells] + [study.options])


def diagnose(run_dir: Path, only: list[str] | None = None, force: bool = False) -> list[Finding]:
    study = Study(run_dir)
    registry = detectors()
    enabled = study.options.get("enabled")
    names = [n for n in registry if (only is None or n in only) and (enabled is None or n in enabled)]
    fp = _cells_fingerprint(study)
    findings: list[Finding] = []
    status = {}
    for name in names:
        out = study.artifact_dir(name) / "findings.json"
        if out.exists() and not force:
            saved = artifacts.read_json(out)
            if saved.get("fingerprint") == fp:
                findings += [Finding.from_dict(f) for f in saved["findings"]]
                status[name] = {"status": "cached", "findings": len(saved["findings"])}
                continue
        t0 = time.perf_counter()
        try:
            with progress.step(f"detector {name}"):
                found = registry[name](study)
        except GapscopeError:
            raise
        except Exception as e:  # noqa: BLE001 (one broken detector must not hide the others)
            progress.info(f"[red]detector {name} failed: {type(e).__name__}: {e}[/red]")
            status[name] = {"status": "failed", "error": f"{type(e).__name__}: {e}",
                            "traceback": traceback.format_exc()}
            continue
        for f in found:
            f.detector = f.detector or name
        artifacts.write_json(out, {"fingerprint": fp, "findings": [f.to_dict() for f in found],
                                   "seconds": round(time.perf_counter() - t0, 2)})
        status[name] = {"status": "ran", "findings": len(found), "seconds": round(time.perf_counter() - t0, 2)}
        findings += found
    ranked = rank(findings)
    artifacts.write_json(run_dir / "findings.json", [f.to_dict() for f in ranked])
    artifacts.write_json(run_dir / "diagnostics" / "status.json", status)
    return ranked
