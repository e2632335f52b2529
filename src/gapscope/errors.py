"""User-facing errors.

Anything raised as a GapscopeError is printed by the CLI as a single line
(no traceback) and turns into a non-zero exit code. So is a missing, unreadable or
wrong-kind path (FileNotFoundError and its kin): nearly always a path the user gave or a
file missing from a half-written run. Other internal bugs stay ordinary exceptions so
they keep their traceback.
"""

from __future__ import annotations


class GapscopeError(Exception):
    """An error caused by the user's input or environment, reported in one line."""

    exit_code = 2


class InputError(GapscopeError):
    """A file that cannot be read as a corpus: names the file, the row when known, and why."""

    def __init__(self, path: object, reason: str, row: int | None = None):
        self.path = str(path)
        self.row = row
        self.reason = reason
        where = self.path if row is None else f"{self.path}:{row}"
        super().__init__(f"{where}: {reason}")


class SpecError(GapscopeError):
    """A study spec that does not validate."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception's message in one line, for a one-line error: its first non-empty line, with the
    next one when the first ends in a colon (transformers and tarfile put the reason there), or the
    exception's type when the message is empty."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    line = f"{lines[0]} {lines[1]}" if len(lines) > 1 and lines[0].endswith(":") else lines[0]
    return line[:limit] if limit else line
