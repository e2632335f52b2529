"""Detector `diversity`: diversity of every cell's training set and its relation to
out-of-domain F1 (see gapscope.diversity.analysis).

Options ([detectors.diversity]): any DiversityOptions field (sample_size, n_tokens,
proj_dim, embedder, embeddings = false to skip the encoder). Writes
diagnostics/diversity/diversity.json and the report section.
"""

from __future__ import annotations

from gapscope import progress
from gapscope.findings import Finding, register_detector
from gapscope.study import artifacts


@register_detector("diversity")
def run(study) -> list[Finding]:
    from gapscope.diversity.analysis import CellDiversity, DiversityOptions, analyse, measure_sets, set_key
    from gapscope.diversity.report import diversity_findings, section

    opts = DiversityOptions.from_dict(study.options.get("diversity"))
    cells = study.cells
    if not cells:
        return []
    sets, keys = {}, {}
    for c in cells:
        rows = study.train_rows(c)
        keys[c.name] = set_key(rows)
        sets[keys[c.name]] = rows
    with progress.step(f"diversity of {len(sets)} training set(s)"):
        metrics = measure_sets(sets, opts)
    ood = {(s["model"], s["paradigm"]): s.get("out_of_domain_f1") for s in study.summary}
    per_cell = [CellDiversity(c.name, c.model, c.paradigm, keys[c.name], ood.get((c.model, c.paradigm)),
                              metrics.get(keys[c.name], {}), list(c.train_domains)) for c in cells]
    analysis = analyse(per_cell)
    out = study.artifact_dir("diversity")
    artifacts.write_json(out / "diversity.json", analysis)
    artifacts.write_json(out / "section.json", section(analysis))
    return diversity_findings(analysis)
