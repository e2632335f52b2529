"""Detector `drift`: every causal-LM cell against its base model on task-unrelated probes.

Options ([detectors.drift] in the spec): any DriftOptions field (min_kl, k_greedy,
max_probes_per_family, ...), plus `probes = ["extra.toml", ...]` (paths absolute or
relative to the run directory) and `families = ["time-period", ...]` to restrict.
Writes diagnostics/drift/drift.json and the report section.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from gapscope import progress
from gapscope.findings import Finding, register_detector
from gapscope.study import artifacts


@register_detector("drift")
def run(study) -> list[Finding]:
    from gapscope.drift.audit import DriftOptions, select_probes, drift_audit, probe_forward
    from gapscope.drift.lm import load_hf, load_lm
    from gapscope.drift.probes import load_probe_sets
    from gapscope.drift.report import drift_findings, section

    raw = dict(study.options.get("drift") or {})
    raw.pop("cells_per_model", None)  # read by detector_cells
    extra = [p if Path(p).is_absolute() else str(study.run_dir / p) for p in raw.pop("probes", [])]
    wanted = raw.pop("families", None)
    opts = DriftOptions.from_dict(raw)
    cells = [c for c in study.detector_cells("drift") if c.kind == "causal-lm"]
    if not cells:
        return []
    families = select_probes(load_probe_sets(extra, families=wanted), opts)
    by_base: dict[str, list] = defaultdict(list)
    for c in cells:
        by_base[c.source or "embedded:smollm2-135m"].append(c)
    findings: list[Finding] = []
    reports = []
    for source, group in by_base.items():
        base = load_hf(source, what="base model")
        try:
            with progress.step(f"drift: base {source} on {sum(len(f.probes) for f in families)} probes"):
                base_fwd = probe_forward(base, families, opts)
            # the audit needs only the base's answers from here on: drop its float32 weights
            # before each cell's float32 copy loads (Gemma 3 270M: 1.1 GB each)
            base.model = None
            for cell in group:
                tuned = load_lm(study.run_dir / "cells" / cell.name)
                try:
                    with progress.step(f"drift: {cell.name}"):
                        rep = drift_audit(base, tuned, families, opts, base_forward=base_fwd)
                finally:
                    tuned.close()
                d = rep.to_dict()
                d["tuned"], d["cell"] = cell.name, cell.name
                reports.append(d)
                findings += drift_findings(d, model=cell.model, who=f"{cell.model} ({cell.paradigm})",
                                           domains=cell.train_domains)
        finally:
            base.close()
    out = study.artifact_dir("drift")
    artifacts.write_json(out / "drift.json", reports)
    artifacts.write_json(out / "section.json", section(reports))
    return findings
