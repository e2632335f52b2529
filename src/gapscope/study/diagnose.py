"""Runs every registered detector over a finished run and writes the ranked findings.json.

Each detector's findings are stored under diagnostics/<name>/findings.json with a
fingerprint of the run's cells, its options and the gapscope version, so a rerun skips
detectors that already finished; findings.json always ranks every detector's latest findings, also after
`--only` (the detectors not asked for contribute what they saved).
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from gapscope import __version__, progress
from gapscope.errors import GapscopeError
from gapscope.findings import Finding, detectors, rank
from gapscope.study import artifacts
from gapscope.study.context import Study
from gapscope.suggest import with_hints


# Detectors that read other detectors' [detectors.<name>] tables (the shortcut checks use the
# attribution settings, minimal pairs the shortcut probe's): their cache follows those tables too.
READS = {"shortcuts": ("attributions",), "minimal_pairs": ("shortcuts", "attributions")}


def detector_fingerprint(study: Study, name: str) -> str:
    """What a detector's saved findings depend on: the cells, the [detectors] settings every detector
    reads, its own table (and those it reads), and the gapscope version (findings cached by an older
    gapscope are redone after an upgrade). Keyed by the whole [detectors] table, a change to one
    detector's table reran all ten."""
    opts = study.options or {}
    # `enabled` picks which detectors run, not what one finds
    shared = {k: v for k, v in opts.items() if not isinstance(v, dict) and k != "enabled"}
    tables = {n: opts.get(n) for n in (name, *READS.get(name, ()))}
    return artifacts.fingerprint([c.meta.get("fingerprint") for c in study.cells] + [shared, tables, __version__])


def cells_fingerprint(study: Study) -> str:
    return artifacts.fingerprint([c.meta.get("fingerprint") for c in study.cells])


def release_memory() -> None:
    """Hand the memory a detector freed back to the OS before the next one loads its models:
    glibc keeps freed blocks in its arenas, so without the trim each detector's peak adds to the
    process' resident size (the demo's peak RSS is the sum, not the largest)."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def diagnose(run_dir: Path, only: list[str] | None = None, force: bool = False,
             cells_per_model: int | None = None) -> list[Finding]:
    """Run the detectors (`only`: a subset; the others keep their saved findings) and write
    the ranked findings.json. `cells_per_model` overrides the spec's [detectors] value for the
    detectors run now (0: every cell), e.g. to extend the demo's in-depth analyses to every cell."""
    from gapscope.study.lock import run_lock

    with run_lock(Path(run_dir), "gapscope diagnose"):
        return _diagnose(Path(run_dir), only, force, cells_per_model)


def _diagnose(run_dir: Path, only: list[str] | None, force: bool, cells_per_model: int | None) -> list[Finding]:
    study = Study(run_dir)
    registry = detectors()
    enabled = study.options.get("enabled")
    unknown = sorted(set(only or []) - set(registry))
    if unknown:
        raise GapscopeError(f"unknown detector(s) {with_hints(unknown, registry)} (known: {', '.join(registry)})")
    active = [n for n in registry if enabled is None or n in enabled]
    off = sorted(set(only or []) - set(active))
    if off:
        raise GapscopeError(f"detector(s) {', '.join(off)} not enabled by the spec's [detectors] enabled "
                            f"({', '.join(enabled or [])})")
    names = [n for n in active if only is None or n in only]
    old_fp = {n: detector_fingerprint(study, n) for n in active}  # before a command-line override
    if cells_per_model is not None:
        if cells_per_model < 0:
            raise GapscopeError(f"cells_per_model must be 0 (every cell) or more, got {cells_per_model}")
        # the command line wins over a detector's own cells_per_model too (the demo sets one for internals)
        opts = {k: ({kk: vv for kk, vv in v.items() if kk != "cells_per_model"} if isinstance(v, dict) else v)
                for k, v in study.options.items()}
        study.__dict__["options"] = {**opts, "cells_per_model": int(cells_per_model)}
    cells_fp = cells_fingerprint(study)
    findings: list[Finding] = []
    status = {}
    for name in active:
        if name in names:
            continue
        # not asked for: keep what it found last time, if it was about these cells
        out = study.artifact_dir(name) / "findings.json"
        if not out.exists():
            continue
        saved, found = _saved(out, name, f"rerun it (--only {name}) to include it")
        if saved is None:
            status[name] = {"status": "damaged"}
            continue
        same = saved.get("cells") == cells_fp if "cells" in saved else saved.get("fingerprint") == old_fp[name]
        if same:
            findings += found
            status[name] = {"status": "kept", "findings": len(found)}
        else:
            progress.info(f"detector {name}: its saved findings are about other cells; rerun it to include them")
            status[name] = {"status": "stale"}
    for name in names:
        out = study.artifact_dir(name) / "findings.json"
        fp = detector_fingerprint(study, name)
        if out.exists() and not force:
            saved, found = _saved(out, name, "it runs again")
            if saved is not None and saved.get("fingerprint") == fp:
                findings += found
                status[name] = {"status": "cached", "findings": len(found)}
                continue
        release_memory()  # what the cells or the previous detector freed
        t0 = time.perf_counter()
        try:
            with progress.step(f"detector {name}"):
                found = registry[name](study)
        except GapscopeError:
            raise
        except Exception as e:  # noqa: BLE001 (one broken detector must not hide the others)
            progress.info(f"detector {name} failed: {type(e).__name__}: {e}", style="red")
            status[name] = {"status": "failed", "error": f"{type(e).__name__}: {e}",
                            "traceback": traceback.format_exc()}
            continue
        for f in found:
            f.detector = f.detector or name
        artifacts.write_json(out, {"fingerprint": fp, "cells": cells_fp, "findings": [f.to_dict() for f in found],
                                   "seconds": round(time.perf_counter() - t0, 2)})
        status[name] = {"status": "ran", "findings": len(found), "seconds": round(time.perf_counter() - t0, 2)}
        findings += found
    ranked = rank(findings)
    artifacts.write_json(run_dir / "findings.json", [f.to_dict() for f in ranked])
    artifacts.write_json(run_dir / "diagnostics" / "status.json", status)
    if only is not None:  # it printed '59 findings' alone: whether anything ran or came from the cache, unsaid
        progress.info("; ".join(status_line(n, status[n]) for n in names if n in status))
    return ranked


def _saved(path: Path, name: str, then: str) -> tuple[dict | None, list[Finding]]:
    """A detector's saved findings, or (None, []) when the file is damaged: a cache cut short by a
    full disk or edited by hand stopped every later run, whose advice was to rerun the run."""
    try:
        saved = artifacts.read_json(path)
        return saved, [Finding.from_dict(f) for f in saved["findings"]]
    except (artifacts.DamagedArtifact, KeyError, TypeError, ValueError, AttributeError) as e:
        why = e.why if isinstance(e, artifacts.DamagedArtifact) else f"{type(e).__name__}: {e}"
        progress.info(f"detector {name}: its saved findings ({path}) are damaged ({why}); {then}", style="yellow")
        return None, []


def status_line(name: str, st: dict) -> str:
    """'shortcuts: ran, 12 findings (3.1 s)', 'label_noise: cached, 4 findings (same inputs; --force reruns it)'."""
    n = st.get("findings")
    count = f"{n} finding{'s' if n != 1 else ''}" if n is not None else ""
    if st["status"] == "ran":
        return f"{name}: ran, {count} ({st['seconds']} s)"
    if st["status"] == "cached":
        return f"{name}: cached, {count} (same inputs; --force reruns it)"
    return f"{name}: {st['status']}"
