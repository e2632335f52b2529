"""Builds report.html from what the run directory holds (the report stage of the runner)."""

from __future__ import annotations

from pathlib import Path

from gapscope.study import artifacts


def build_report(run_dir: Path) -> Path:
    from gapscope.study.lock import run_lock

    with run_lock(Path(run_dir), "gapscope report"):
        return _build_report(Path(run_dir))


def _build_report(run_dir: Path) -> Path:
    from gapscope.report.render import render_report
    from gapscope.report.sections import extra_sections

    def load(name, default):
        p = run_dir / name
        return artifacts.read_json(p) if p.exists() else default

    spec_text = (run_dir / "study.toml").read_text(encoding="utf-8")
    title = "gapscope report"
    for line in spec_text.splitlines():
        if line.startswith("name = "):
            title = line.split("=", 1)[1].strip().strip('"')
            break
    findings = load("findings.json", [])
    if not isinstance(findings, list) or not all(isinstance(f, dict) and "kind" in f for f in findings):
        raise artifacts.DamagedArtifact(run_dir / "findings.json", "not a list of findings")
    from gapscope.findings import Finding

    for i, f in enumerate(findings):
        try:
            Finding.from_dict(f)
        except (TypeError, ValueError) as e:  # a hand edit: the report would stop in a traceback
            raise artifacts.DamagedArtifact(run_dir / "findings.json", f"finding {i + 1}: {e}") from None
    from gapscope.eval.matrix import read_matrix

    entries = read_matrix(run_dir) if (run_dir / "matrix.json").exists() else []
    return render_report(run_dir, title=title, spec_text=spec_text, audit=load("audit.json", {}),
                         entries=entries, summary=load("summary.json", []),
                         findings=findings, extra_sections=extra_sections(run_dir),
                         problems=problems(run_dir) + not_run(run_dir))


def not_run(run_dir: Path) -> list[str]:
    """Enabled detectors whose findings the report lacks: the run stopped before them, ran with
    --no-detectors, or their saved findings are about other cells. Without this line a report
    with no detector output read as "no findings"."""
    import tomllib

    from gapscope.findings import detectors

    run_dir = Path(run_dir)
    try:
        spec = tomllib.loads((run_dir / "study.toml").read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise artifacts.DamagedArtifact(run_dir / "study.toml", str(e)) from None
    enabled = (spec.get("detectors") or {}).get("enabled")
    active = [n for n in detectors() if enabled is None or n in enabled]
    if not active:  # the spec enabled none: nothing is missing
        return []
    status_file = run_dir / "diagnostics" / "status.json"
    status = artifacts.read_json(status_file) if status_file.exists() else {}
    if not status:
        return [f"no detector has run on this run (it stopped before them, or ran with --no-detectors): "
                f"`gapscope diagnose {run_dir}` runs them"]
    if not (run_dir / "findings.json").exists():
        return [f"findings.json is missing: `gapscope diagnose {run_dir}` rebuilds it from the detectors' saved findings"]
    missing = [n for n in active if n not in status]
    stale = [n for n in active if status.get(n, {}).get("status") == "stale"]
    from gapscope.study.context import Study

    study = Study(run_dir)
    damaged = [n for n in active if status.get(n, {}).get("status") == "damaged"]
    why = {n: _other_settings(study, n) for n in active if n not in missing + stale + damaged}
    changed = [n for n, w in why.items() if w == "settings"]
    retrained = [n for n, w in why.items() if w == "cells"]
    damaged += [n for n, w in why.items() if w == "damaged"]
    out = []
    if damaged:
        out.append(f"detector(s) {', '.join(damaged)}: their saved findings are damaged (cut short or edited): "
                   f"`gapscope diagnose {run_dir} --only {','.join(damaged)}` runs them again")
    if retrained:
        out.append(f"detector(s) {', '.join(retrained)}: their findings are about cells since trained again (the "
                   f"data changed and the run stopped before these detectors): `gapscope diagnose {run_dir} --only "
                   f"{','.join(retrained)}` reruns them")
    if changed:
        out.append(f"detector(s) {', '.join(changed)}: their findings were computed with other [detectors] "
                   f"settings (an edited study.toml, or a --cells-per-model override) or another gapscope version: "
                   f"`gapscope diagnose {run_dir} --only {','.join(changed)}` reruns them")
    if missing:
        out.append(f"detector(s) {', '.join(missing)} did not run: `gapscope diagnose {run_dir} --only "
                   f"{','.join(missing)}` runs them")
    if stale:
        out.append(f"detector(s) {', '.join(stale)}: their saved findings are about other cells and are left out: "
                   f"`gapscope diagnose {run_dir} --only {','.join(stale)}` reruns them")
    return out


def _other_settings(study, name: str) -> str | None:
    """Whether detector `name`'s saved findings were computed under other settings than the spec's now
    (`run --no-detectors` after editing a [detectors] table kept them, said "cached", and the report
    showed them as current): "cells" where the cells were trained again since, "settings" for the
    rest (options, a gapscope version), None where they are current."""
    from gapscope.study.diagnose import cells_fingerprint, detector_fingerprint

    saved_path = study.run_dir / "diagnostics" / name / "findings.json"
    if not saved_path.exists():
        return None
    try:
        saved = artifacts.read_json(saved_path)
    except artifacts.DamagedArtifact:
        return "damaged"
    fp = saved.get("fingerprint") if isinstance(saved, dict) else None
    if fp is None or fp == detector_fingerprint(study, name):
        return None
    return "cells" if "cells" in saved and saved["cells"] != cells_fingerprint(study) else "settings"


def problems(run_dir: Path) -> list[str]:
    """Cells and detectors that failed (run.json, diagnostics/status.json), one line each."""
    run_dir = Path(run_dir)
    out = []
    run_info = run_dir / "run.json"
    if run_info.exists():
        out += [f"cell {c['cell']} failed after {c.get('attempts', 1)} attempt(s): {c['error']}"
                for c in artifacts.read_json(run_info).get("failed", [])]
    status = run_dir / "diagnostics" / "status.json"
    if status.exists():
        out += [f"detector {name} failed: {s.get('error')}"
                for name, s in artifacts.read_json(status).items() if s.get("status") == "failed"]
    return out
