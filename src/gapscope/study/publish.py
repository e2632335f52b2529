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
                         findings=load("findings.json", []), extra_sections=extra_sections(run_dir))
