"""The read-only view of a finished run that every detector receives: `run(study) -> [Finding]`.

Detectors never re-train cells; they read rows, splits, the matrix, predictions,
and load a cell's fitted model on demand through this object.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from gapscope.data.rows import Row
from gapscope.models.base import ClassifierModel, ModelSpec, create_model
from gapscope.study import artifacts
from gapscope.study.spec import StudySpec, load_spec


@dataclass
class CellInfo:
    name: str          # directory name under cells/
    model: str
    kind: str
    source: str | None
    paradigm: str
    train_domains: list[str]
    threshold: float
    meta: dict[str, Any]

    @property
    def is_specialist(self) -> bool:
        return self.paradigm.startswith("specialist:")


class Study:
    def __init__(self, run_dir: Path | str):
        self.run_dir = Path(run_dir)
        if not (self.run_dir / "study.toml").exists():
            from gapscope.errors import GapscopeError

            raise GapscopeError(f"{self.run_dir}: not a gapscope run directory (no study.toml)")

    @cached_property
    def spec(self) -> StudySpec:
        return load_spec(self.run_dir / "study.toml")

    @cached_property
    def options(self) -> dict[str, Any]:
        """[detectors] table of the spec: per-detector options and the enabled list."""
        return self.spec.detectors

    @cached_property
    def rows_frame(self) -> pd.DataFrame:
        return artifacts.read_parquet(self.run_dir / "data" / "rows.parquet").set_index("id", drop=False)

    @cached_property
    def rows(self) -> dict[str, Row]:
        return {r.id: r for r in artifacts.frame_to_rows(self.rows_frame.reset_index(drop=True))}

    @cached_property
    def splits(self) -> dict[str, Any]:
        return artifacts.read_json(self.run_dir / "splits.json")

    @cached_property
    def audit(self) -> dict[str, Any]:
        p = self.run_dir / "audit.json"
        return artifacts.read_json(p) if p.exists() else {}

    @cached_property
    def matrix(self) -> list[dict[str, Any]]:
        p = self.run_dir / "matrix.json"
        return artifacts.read_json(p) if p.exists() else []

    @cached_property
    def summary(self) -> list[dict[str, Any]]:
        p = self.run_dir / "summary.json"
        return artifacts.read_json(p) if p.exists() else []

    @cached_property
    def manifest(self) -> dict[str, Any] | None:
        """What a synthetic corpus planted (None for user corpora)."""
        p = self.run_dir / "data" / "manifest.json"
        return artifacts.read_json(p) if p.exists() else None

    @property
    def domains(self) -> list[str]:
        return self.spec.domains

    @cached_property
    def cells(self) -> list[CellInfo]:
        out = []
        for d in sorted((self.run_dir / "cells").glob("*/cell.json")):
            m = artifacts.read_json(d)
            out.append(CellInfo(name=d.parent.name, model=m["model"], kind=m["kind"], source=m.get("source"),
                                paradigm=m["paradigm"], train_domains=m["train_domains"],
                                threshold=m["threshold"], meta=m))
        return out

    def detector_options(self, name: str, defaults: dict[str, Any], rules: dict | None = None) -> dict[str, Any]:
        """`[detectors.<name>]` over the detector's defaults. An unknown key fails in one line rather
        than being ignored (a misspelt option would otherwise change nothing, silently);
        `cells_per_model` belongs to `detector_cells`."""
        from gapscope.errors import GapscopeError
        from gapscope.study.detector_options import check_keys

        table = dict((self.options or {}).get(name) or {})
        try:  # the spec was checked when the run started; a study.toml edited since is checked here
            check_keys(name, table, defaults, rules)
        except GapscopeError as e:
            raise GapscopeError(f"{self.run_dir / 'study.toml'}: {e}") from None
        table.pop("cells_per_model", None)
        return {**defaults, **table}

    def detector_cells(self, name: str) -> list[CellInfo]:
        """The cells detector `name` analyses: its own `[detectors.<name>] cells_per_model` if set,
        else the study's `[detectors] cells_per_model` (see focus_cells)."""
        return self.focus_cells(per_model=((self.options or {}).get(name) or {}).get("cells_per_model"))

    def focus_cells(self, cells: list[CellInfo] | None = None, per_model: int | None = None) -> list[CellInfo]:
        """The cells that per-cell neural analyses (attributions, minimal pairs, internals,
        drift, backdoor scan) run on.

        `[detectors] cells_per_model = N` keeps, for each model of a neural kind, the N cells
        with the largest generalization gap (the failing ones: where a diagnosis pays off);
        0 (the default) keeps every cell. tf-idf cells cost milliseconds and are always kept.
        `per_model` overrides the spec's value (a detector's own setting).
        """
        cells = list(self.cells if cells is None else cells)
        n = int((self.options or {}).get("cells_per_model", 0) or 0) if per_model is None else int(per_model)
        if n <= 0:
            return cells
        gap = {(s["model"], s["paradigm"]): s.get("gap") for s in self.summary}
        by_model: dict[str, list[CellInfo]] = {}
        for c in cells:
            by_model.setdefault(c.model, []).append(c)
        keep = set()
        for model, group in by_model.items():
            if group[0].kind == "tfidf-lr":
                keep.update(c.name for c in group)
                continue
            ranked = sorted(group, key=lambda c: (-(gap.get((c.model, c.paradigm)) or -1.0), c.name))
            keep.update(c.name for c in ranked[:n])
        return [c for c in cells if c.name in keep]

    def model_spec(self, model: str) -> ModelSpec:
        for m in self.spec.models:
            if m.name == model:
                return m
        raise KeyError(model)

    def predictions(self, cell: CellInfo | str) -> pd.DataFrame:
        name = cell.name if isinstance(cell, CellInfo) else cell
        return artifacts.read_parquet(self.run_dir / "cells" / name / "predictions.parquet")

    def load_model(self, cell: CellInfo) -> ClassifierModel:
        model = create_model(self.model_spec(cell.model))
        model.load(self.run_dir / "cells" / cell.name / "model")
        return model

    def train_rows(self, cell: CellInfo) -> list[Row]:
        p = self.predictions(cell)
        return [self.rows[i] for i in p.loc[p["split"] == "train", "id"]]

    def test_rows(self, domain: str | None = None) -> list[Row]:
        rows = [self.rows[i] for i in self.splits["test"]]
        return [r for r in rows if domain is None or r.domain == domain]

    def distinct_test_rows(self, domain: str | None = None) -> list[Row]:
        """test_rows with one row (the lowest id) of each group of held-out copies and near-copies
        (splits.json copy_groups): the detectors that sample emails and count them (minimal pairs,
        the corpus attributions) read one campaign sent eight times as one email, not eight."""
        groups = (self.splits or {}).get("copy_groups") or {}
        rows = self.test_rows(domain)
        first: dict[Any, str] = {}  # over this domain's rows: a group spans domains, and each keeps one
        for i in sorted(r.id for r in rows if r.id in groups):
            first.setdefault(groups[i], i)
        return [r for r in rows if r.id not in groups or first[groups[r.id]] == r.id]

    def artifact_dir(self, detector: str) -> Path:
        d = self.run_dir / "diagnostics" / detector
        d.mkdir(parents=True, exist_ok=True)
        return d
