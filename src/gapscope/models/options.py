"""Typed per-kind options, read from ModelSpec.options.

Each kind declares a dataclass of options with defaults; `parse_options` checks
types and rejects misspelt keys in one line, so a typo in a spec never silently
falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, TypeVar

from gapscope.errors import GapscopeError

T = TypeVar("T")

# Keys the study runner reads from the same [[models]] table; models ignore them.
RUNNER_KEYS = frozenset({"max_train", "max_test", "threshold", "ray_num_cpus", "ray_num_gpus"})


def _accepts(tp: Any, value: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_accepts(item, v) for v in value)
    if tp is Any:
        return True
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def parse_options(cls: type[T], options: dict[str, Any], model_name: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if key in RUNNER_KEYS:
            continue
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(fields))})"
            raise GapscopeError(f"model {model_name!r}: unknown option {key!r}{hint}")
        if not _accepts(hints[key], value):
            raise GapscopeError(f"model {model_name!r}: option {key}={value!r} should be {hints[key]}")
        choices = fields[key].metadata.get("choices")
        if choices and value not in choices:
            raise GapscopeError(
                f"model {model_name!r}: option {key}={value!r} must be one of {', '.join(map(str, choices))}"
            )
        kwargs[key] = float(value) if hints[key] is float else value
    return cls(**kwargs)


def choice(default: Any, *choices: Any) -> Any:
    return dataclasses.field(default=default, metadata={"choices": choices})
