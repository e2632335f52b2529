"""Turns finished cells' predictions into matrix.json / matrix.csv / summary.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gapscope import progress
from gapscope.study import artifacts
from gapscope.study.cells import CellJob, cell_dir


def build_matrix(run_dir: Path, jobs: list[CellJob], rows_by_id, *, bootstrap: int, seed: int,
                 groups: dict[str, int] | None = None):
    """`groups`: held-out row id -> its group of copies (splits.json's copy_groups), read as one
    email's evidence by the intervals."""
    from gapscope.eval.matrix import evaluate_cell, write_matrix

    entries = []
    with progress.step(f"scoring the matrix ({len(jobs)} cells, {bootstrap} bootstrap resamples)",
                       total=len(jobs)) as update:
        for i, job in enumerate(jobs, 1):
            d = cell_dir(run_dir, job)
            meta = artifacts.read_json(d / "cell.json")
            preds = artifacts.read_parquet(d / "predictions.parquet")
            test = preds[preds["split"] == "test"]
            per_domain = {}
            for domain, g in test.groupby("domain", sort=True):
                per_domain[domain] = (list(g["id"]), g["label"].to_numpy(np.int64), g["margin"].to_numpy(np.float64))
            entries += evaluate_cell(job.model.name, job.paradigm, job.train_domains, meta["threshold"],
                                     per_domain, seed=seed, n_resamples=bootstrap, groups=groups)
            update(i, len(jobs))
    summary = write_matrix(run_dir, entries, seed=seed)
    return entries, summary
