"""Detector `backdoor`: a backdoor scan of every cell (any model kind).

Options ([detectors.backdoor]): any ScanOptions / MiningOptions field (n_emails, n_null,
min_relative_shift, or min_shift in margin units, min_contradiction, max_mined, ...) and `triggers = ["...", ...]` to test
strings of your own besides the mined ones. Held-out emails come from the test rows of
the cell's own training domains (all test rows when those have too few of a class).
Writes diagnostics/backdoor/scan.json and the report section.
"""

from __future__ import annotations

from gapscope import progress
from gapscope.findings import Finding, register_detector
from gapscope.study import artifacts


def heldout_rows(study, cell, need: int) -> list:
    own = [r for d in cell.train_domains for r in study.test_rows(d)]
    if all(sum(r.label == y for r in own) >= min(need, 8) for y in (0, 1)):
        return own
    return study.test_rows()


def scan_cell(study, cell, triggers, opts, mined: dict | None = None):
    """Scan one cell. `mined` caches the candidates per training set: they depend on the training
    rows alone, and the cells of every model under one paradigm share those rows, so the costly
    mining (its cross-fitted content models) runs once per training set, not once per model."""
    from gapscope.backdoor.scan import gather_candidates, scan

    rows = study.train_rows(cell)
    key = tuple(sorted(r.id for r in rows))
    mined = {} if mined is None else mined
    if key not in mined:
        mined[key] = gather_candidates(rows, triggers, opts)
    model = study.load_model(cell)
    try:
        return scan(model, threshold=cell.threshold, train_rows=rows,
                    heldout_rows=heldout_rows(study, cell, opts.n_emails), opts=opts, candidates=mined[key])
    finally:
        model.close()


@register_detector("backdoor")
def run(study) -> list[Finding]:
    from gapscope.backdoor.report import backdoor_findings, section
    from gapscope.backdoor.scan import ScanOptions

    raw = dict(study.options.get("backdoor") or {})
    raw.pop("cells_per_model", None)  # read by detector_cells
    triggers = [str(t) for t in raw.pop("triggers", [])]
    opts = ScanOptions.from_dict(raw)
    findings: list[Finding] = []
    scans = []
    mined: dict = {}
    for cell in study.detector_cells("backdoor"):
        with progress.step(f"backdoor scan: {cell.name}"):
            res = scan_cell(study, cell, triggers, opts, mined)
        d = res.to_dict()
        d["cell"] = cell.name
        scans.append(d)
        findings += backdoor_findings(d, who=f"{cell.model} ({cell.paradigm})", model=cell.model,
                                      domains=cell.train_domains)
    out = study.artifact_dir("backdoor")
    artifacts.write_json(out / "scan.json", scans)
    artifacts.write_json(out / "section.json", section([(s["cell"], s) for s in scans]))
    return findings
