"""Progress bars for every step that takes more than a few seconds (rich), quiet when not a terminal."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from gapscope.visible import visible

console = Console(stderr=True, highlight=False)


@contextlib.contextmanager
def step(description: str, total: int | None = None) -> Iterator[Callable[[int, int], None]]:
    """A progress bar for one step; yields update(done, total).

    On a non-terminal (CI logs) it prints one line at start and one at the end
    instead of redrawing, so logs stay readable.
    """
    t0 = time.perf_counter()
    description = visible(description)  # names come from user files
    if not console.is_terminal:
        console.print(f"[..] {description}", markup=False)
        last = [0, total or 0]

        def update(done: int, tot: int) -> None:
            last[0], last[1] = done, tot

        try:
            yield update
        except BaseException:
            console.print(f"[failed] {description} ({time.perf_counter() - t0:.1f}s)", markup=False)
            raise
        console.print(f"[ok] {description} ({time.perf_counter() - t0:.1f}s)", markup=False)
        return
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
    ) as prog:
        task = prog.add_task(escape(description), total=total)  # a file name may hold [brackets]

        def update(done: int, tot: int) -> None:
            prog.update(task, completed=done, total=tot)

        yield update
        t = prog.tasks[0]
        prog.update(task, completed=t.total if t.total is not None else t.completed)


def plain(value: object, style: str = "") -> Text:
    """User text for a rich table or panel: never read as markup, hidden characters shown
    (visible.py), since cells hold file, model and domain names and email text."""
    return Text(visible(str(value)), style=style)


def info(msg: str | Text, style: str | None = None) -> None:
    """One line of plain text: never read as rich markup, since messages carry file names, spec
    table names ([study], [[models]]) and user text."""
    console.print(msg if isinstance(msg, Text) else plain(msg, style or ""))


def is_terminal() -> bool:
    return sys.stderr.isatty()
