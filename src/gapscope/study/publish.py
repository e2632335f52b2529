"""Builds report.html from what the run directory holds (the report stage of the runner)."""

from __future__ import annotations

from pathlib import Path

from gapscope.study import artifacts


def build_report(run_dir: Path) -> Path:
    from gapscope.report.render import render_report
    from gapscope.report.sections import extra_sections

    run_dir = Path(run_dir)

    def load(name, default):
        p = run_dir / name
        return artifacts.read_json(p) if p.exists() else default

    spec_text = (run_dir / "study.toml").read_text(encoding="utf-8")
    title = "gapscope report"
    for line in spec_text.splitlines():
        if line.startswith("name = "):
            title = line.split("=", 1)[1].strip().strip('"')
            break
    return render_report(run_dir, title=title, spec_text=spec_text, audit=load("audit.json", {}),
                         entries=load("matrix.json", []), summary=load("summary.json", []),
                         findings=load("findings.json", []), extra_sections=extra_sections(run_dir),
                         problems=problems(run_dir))


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
