"""One cell = one model trained under one paradigm, then scored on every domain's held-out rows.

`run_cell` is a pure function of the run directory and a CellJob, so any executor
(local, Ray) can run it; it writes cell.json last, which marks the cell finished.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gapscope.models.base import ModelSpec, create_model
from gapscope.study import artifacts


@dataclass
class CellJob:
    model: ModelSpec
    paradigm: str
    train_domains: list[str]
    train_ids: list[str]
    seed: int
    data_key: str = ""  # data_key(): the rows behind the ids (text, label, domain), training and test

    @property
    def name(self) -> str:
        return cell_name(self.model.name, self.paradigm)

    @property
    def trained_ids(self) -> list[str]:
        """The training ids the cell fits on: the model's `max_train` caps them."""
        cap = self.model.options.get("max_train")
        return self.train_ids[: int(cap)] if cap else self.train_ids

    def fingerprint(self, with_data: bool = True) -> str:
        """The cell's identity; caches keyed by it (attributions, activations) follow the data too.
        Options written out at their default count as left out, and Ray's scheduling keys not at
        all. `with_data=False`: the fingerprint of cells written before data keys existed."""
        from gapscope.models.options import canonical_options

        model = asdict(self.model) | {"options": canonical_options(self.model.kind, self.model.options)}
        key = {"model": model, "paradigm": self.paradigm, "train_ids": self.train_ids, "seed": self.seed}
        if self.data_key and with_data:
            key["data"] = self.data_key
        return artifacts.fingerprint(key)


def row_digests(rows_by_id) -> dict[str, bytes]:
    """One digest per row of everything a cell reads from it."""
    import hashlib

    return {i: hashlib.blake2b(f"{r.domain}\x1f{r.label}\x1f{r.text}".encode("utf-8", "surrogatepass"),
                               digest_size=12).digest() for i, r in rows_by_id.items()}


def data_key(digests: dict[str, bytes], train_ids: list[str], test_ids: list[str]) -> str:
    """The training rows and the test rows a cell is scored on, by content: a resumed run whose
    corpus was relabelled or edited redoes the cell (ids alone kept a cell scored on old labels, and
    its column of the matrix on other emails than its neighbours')."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for part in (sorted(train_ids), sorted(test_ids)):
        for i in part:
            h.update(i.encode("utf-8", "surrogatepass") + b"\x1e" + digests[i])
        h.update(b"\x1d")
    return h.hexdigest()


def cell_name(model: str, paradigm: str) -> str:
    # ':' is legal on Linux but awkward in shells and on other systems; cell.json keeps the exact paradigm.
    return f"{model}__{paradigm.replace(':', '-')}"


def cell_dir(run_dir: Path, job: CellJob) -> Path:
    return run_dir / "cells" / job.name


def is_done(run_dir: Path, job: CellJob, labels: dict[str, int] | None = None,
            test_ids: list[str] | None = None) -> bool:
    """Finished, for these inputs, and whole: a cell whose predictions or model went missing or
    were damaged after it finished is redone by the resume, not trusted.

    A cell written before its fingerprint covered the rows' contents is kept (not retrained on
    upgrade) when its predictions hold the current training and test ids with the current
    labels (`labels`: id -> label; `test_ids`); an edited text is then not seen."""
    d = cell_dir(run_dir, job)
    if not (d / "cell.json").exists():
        return False
    try:
        meta = artifacts.read_json(d / "cell.json")
    except artifacts.DamagedArtifact:
        return False
    model = d / "model"
    if not (isinstance(meta, dict) and artifacts.parquet_readable(d / "predictions.parquet")
            and model.is_dir() and any(model.iterdir())):
        return False
    recorded = meta.get("model_files")
    if isinstance(recorded, dict):  # a weight file cut short or removed since: diagnose could not load it
        now = model_files(model)
        if any(now.get(name) != size for name, size in recorded.items()):
            return False
    if meta.get("fingerprint") == job.fingerprint():
        return True
    return (job.data_key != "" and "data_key" not in meta and meta.get("fingerprint") == job.fingerprint(False)
            and labels is not None and test_ids is not None and _same_rows(d, job, labels, test_ids))


def model_files(model_dir: Path) -> dict[str, int]:
    """Each file of a saved model, by its path inside the folder, with its size in bytes."""
    return {p.relative_to(model_dir).as_posix(): p.stat().st_size
            for p in sorted(model_dir.rglob("*")) if p.is_file()}


def _same_rows(d: Path, job: CellJob, labels: dict[str, int], test_ids: list[str]) -> bool:
    preds = artifacts.read_parquet(d / "predictions.parquet")
    by_split = {k: g for k, g in preds.groupby("split")}
    for split, ids in (("train", job.trained_ids), ("test", test_ids)):
        g = by_split.get(split)
        if g is None or sorted(g["id"]) != sorted(ids):
            return False
        if any(labels.get(i) != int(y) for i, y in zip(g["id"], g["label"])):
            return False
    return True


_ROWS_CACHE: dict[tuple, pd.DataFrame] = {}


def forget_rows() -> None:
    _ROWS_CACHE.clear()


def load_rows(run_dir: Path) -> pd.DataFrame:
    # keyed by the file's size and time too: a run rerun in the same process after its corpus
    # changed (a notebook, `validate`) trained on the rows read the first time
    path = run_dir / "data" / "rows.parquet"
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _ROWS_CACHE:
        _ROWS_CACHE.clear()
        _ROWS_CACHE[key] = artifacts.read_parquet(path).set_index("id", drop=False)
    return _ROWS_CACHE[key]


def run_cell(run_dir: Path, job: CellJob, test_ids: list[str], progress=None) -> dict[str, Any]:
    """Train, choose the threshold on training scores, score every test row, write artifacts."""
    from gapscope.eval.metrics import choose_threshold

    out = cell_dir(run_dir, job)
    if out.exists():  # leftovers of an interrupted attempt
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rows = load_rows(run_dir)
    train_ids = job.trained_ids
    train = rows.loc[train_ids]
    test = rows.loc[test_ids]

    model = create_model(job.model)
    t0 = time.perf_counter()
    try:
        log = model.fit(list(train["text"]), train["label"].to_numpy(np.int64), seed=job.seed,
                        progress=_sub(progress, "train"))
        t_fit = time.perf_counter() - t0
        s_train = model.score(list(train["text"]), progress=_sub(progress, "score train"))
        threshold = float(choose_threshold(train["label"].to_numpy(), s_train))
        t1 = time.perf_counter()
        s_test = model.score(list(test["text"]), progress=_sub(progress, "score test"))
        t_score = time.perf_counter() - t1
        model.save(out / "model")
    finally:
        model.close()

    preds = pd.DataFrame({
        "id": list(train["id"]) + list(test["id"]),
        "domain": list(train["domain"]) + list(test["domain"]),
        "split": ["train"] * len(train) + ["test"] * len(test),
        "label": np.concatenate([train["label"].to_numpy(), test["label"].to_numpy()]).astype(np.int64),
        "margin": np.concatenate([s_train, s_test]).astype(np.float64),
    })
    artifacts.write_parquet(out / "predictions.parquet", preds)
    artifacts.write_json(out / "train_log.json", log)
    meta = {
        "model": job.model.name, "kind": job.model.kind, "source": job.model.source,
        "paradigm": job.paradigm, "train_domains": job.train_domains,
        "n_train": len(train_ids), "threshold": threshold, "seed": job.seed,
        "fit_seconds": round(t_fit, 3), "score_seconds": round(t_score, 3), "n_scored": len(test),
        "fingerprint": job.fingerprint(), "data_key": job.data_key,
        "model_files": model_files(out / "model"),
    }
    artifacts.write_json(out / "cell.json", meta)  # written last: marks the cell finished
    return meta


def _sub(progress, what: str):
    if progress is None:
        return None
    return lambda done, total: progress(what, done, total)
