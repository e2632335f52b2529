"""Runs cells as Ray tasks: same run directory (shared storage), same resume semantics.

Each task declares its CPU/GPU needs from the model spec (`ray_num_cpus`,
`ray_num_gpus` options); a task that raises is resubmitted up to `retries` times,
and a cell that still fails is reported without stopping the study. Jobs travel as
plain JSON-able dicts, results as cell.json dicts.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from gapscope.errors import GapscopeError
from gapscope.models.base import ModelSpec
from gapscope.study.cells import CellJob
from gapscope.study.executors import CellOutcome, Executor

_DEFAULT_CPUS = {"tfidf-lr": 1, "encoder": 1, "causal-lm": 2}


def _run_remote(run_dir: str, job: dict, test_ids: list[str]) -> dict:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gapscope.study.cells import run_cell

    job = dict(job)
    job["model"] = ModelSpec(**job["model"])
    return run_cell(Path(run_dir), CellJob(**job), test_ids)


class RayExecutor(Executor):
    def __init__(self, address: str | None = None, retries: int = 1):
        self.address = address
        self.retries = retries

    def resources(self, job: CellJob) -> dict:
        o = job.model.options
        return {"num_cpus": o.get("ray_num_cpus", _DEFAULT_CPUS.get(job.model.kind, 1)),
                "num_gpus": o.get("ray_num_gpus", 0)}

    def run(self, run_dir, jobs, test_ids, on_event):
        try:
            import ray
        except ImportError:
            raise GapscopeError("--executor ray needs the ray package (pip install ray==2.60.0)") from None
        started = False
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         ignore_reinit_error=True)
            except ConnectionError as e:
                raise GapscopeError(f"cannot reach the Ray cluster at {self.address}: {e}") from None
            started = True
        try:
            task = ray.remote(_run_remote)
            run_dir = str(Path(run_dir).resolve())
            ids_ref = ray.put(list(test_ids))
            pending = {}
            attempts = {}

            def submit(job: CellJob):
                attempts[job.name] = attempts.get(job.name, 0) + 1
                d = asdict(job)
                ref = task.options(**self.resources(job), max_retries=0).remote(run_dir, d, ids_ref)
                pending[ref] = job
                on_event("start", job, None)

            for job in jobs:
                submit(job)
            outcomes = []
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                job = pending.pop(ref)
                try:
                    meta = ray.get(ref)
                except Exception as e:  # noqa: BLE001  (reported or retried, never fatal to the study)
                    cause = getattr(e, "cause", None) or e
                    on_event("error", job, f"{type(cause).__name__}: {cause}")
                    if attempts[job.name] <= self.retries:
                        submit(job)
                    else:
                        outcomes.append(CellOutcome(job.name, False, error=f"{type(cause).__name__}: {cause}",
                                                    attempts=attempts[job.name]))
                    continue
                outcomes.append(CellOutcome(job.name, True, meta=meta, attempts=attempts[job.name]))
                on_event("done", job, meta)
            return outcomes
        finally:
            if started and self.address is None:
                ray.shutdown()
