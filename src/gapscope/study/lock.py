"""One gapscope process at a time in a run directory.

Two runs on one directory retrained each other's cells and read each other's half-made files
(a review started three at once: "rows.parquet.tmp: not found", a cell.json deleted under the
matrix). `run`, `diagnose`, `report` and `backdoor-scan --run` hold an exclusive lock on RUN/.lock while they work;
a second process is refused in one line that names the holder. The lock is the kernel's
(flock): it goes with the process, so a killed run leaves nothing to clean up.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from gapscope.errors import GapscopeError

LOCK_NAME = ".lock"
_held: dict[str, int] = {}  # resolved run dir -> open descriptor (re-entrant within a process)


class RunInUse(GapscopeError):
    """Another process holds the run directory."""


@contextlib.contextmanager
def run_lock(run_dir: Path, what: str, create: bool = False) -> Iterator[None]:
    """Hold RUN/.lock for `what` ('gapscope run', ...). Nested uses in one process share the lock.
    `create`: make the directory first (a new run); otherwise a directory that is not there, or
    that cannot hold the lock file (read-only), is left to the command's own one-line error. Where
    there is no lock to take (Windows, a file system without flock), the command runs unlocked."""
    run_dir = Path(run_dir)
    if create and not run_dir.exists():  # a file named so is left to the command's own error
        run_dir.mkdir(parents=True, exist_ok=True)
    key = str(run_dir.resolve())
    fd = None if key in _held else _acquire(run_dir, what, create)
    if fd is None:
        yield
        return
    _held[key] = fd
    try:
        yield
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(run_dir: Path, what: str, create: bool) -> int | None:
    """The locked descriptor, or None where no lock can be taken."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return None
    if not run_dir.is_dir():
        return None
    try:
        fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # held by another process
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise RunInUse(f"{run_dir} is in use by {holder}; wait for it to finish"
                       + (", or give --out another directory" if create else "")) from None
    except OSError:  # a file system without flock (some network and FUSE mounts): unlocked, as before
        os.close(fd)
        return None
    with contextlib.suppress(OSError):  # who holds it, for the refusal's message; a full disk loses only that
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({what})\n".encode(), 0)
    return fd


def holds(run_dir: Path) -> bool:
    """Whether this process holds `run_dir`'s lock (tests)."""
    return str(Path(run_dir).resolve()) in _held
