"""Executors run cell jobs. The study runner only sees this interface, so the grid can
run in-process (default) or spread over a Ray cluster writing the same run directory."""

from __future__ import annotations

import abc
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gapscope.errors import GapscopeError
from gapscope.study.cells import CellJob, run_cell


@dataclass
class CellOutcome:
    name: str
    ok: bool
    meta: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 1


class Executor(abc.ABC):
    retries: int = 1

    @abc.abstractmethod
    def run(self, run_dir: Path, jobs: list[CellJob], test_ids: list[str],
            on_event: Callable[[str, CellJob, Any], None]) -> list[CellOutcome]:
        """Run every job (each writes its own cell directory); never raise for one failed cell."""


class LocalExecutor(Executor):
    """Cells one after another in this process; cells of one model run back to back so
    the base weights and the frozen-prefix activation cache are reused."""

    def __init__(self, retries: int = 1):
        self.retries = retries

    def run(self, run_dir, jobs, test_ids, on_event):
        outcomes = []
        for job in jobs:
            on_event("start", job, None)
            last_err = None
            for attempt in range(1, self.retries + 2):
                try:
                    meta = run_cell(run_dir, job, test_ids,
                                    progress=lambda what, d, t, job=job: on_event("progress", job, (what, d, t)))
                    outcomes.append(CellOutcome(job.name, True, meta=meta, attempts=attempt))
                    on_event("done", job, meta)
                    break
                except GapscopeError:
                    raise  # a user error (bad source, missing weights) fails every cell alike
                except Exception as e:  # noqa: BLE001  (a failed cell is reported, the study goes on)
                    last_err = f"{type(e).__name__}: {e}"
                    on_event("error", job, traceback.format_exc())
            else:
                outcomes.append(CellOutcome(job.name, False, error=last_err, attempts=self.retries + 1))
        return outcomes


def make_executor(name: str, address: str | None = None, retries: int = 1) -> Executor:
    if name == "local":
        return LocalExecutor(retries=retries)
    if name == "ray":
        from gapscope.study.ray_executor import RayExecutor

        return RayExecutor(address=address, retries=retries)
    raise GapscopeError(f"unknown executor {name!r} (local | ray)")
