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

from gapscope import option_rules as R
from gapscope.errors import GapscopeError

T = TypeVar("T")

# Keys the study runner reads from the same [[models]] table; models ignore them.
RUNNER_RULES = {"max_train": R.whole(0), "ray_num_cpus": R.number(0), "ray_num_gpus": R.number(0)}
RUNNER_KEYS = frozenset(RUNNER_RULES)


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
            R.check_values(f"model {model_name!r}: option", {key: value}, RUNNER_RULES)
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
        rule = fields[key].metadata.get("rule")
        if rule is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            R.check_values(f"model {model_name!r}: option", {key: value}, {key: rule})
        kwargs[key] = float(value) if hints[key] is float else value
    return cls(**kwargs)


def options_class(kind: str) -> type:
    """The options dataclass of a model kind (imported on demand: the LLM kinds pull in torch)."""
    if kind == "tfidf-lr":
        from gapscope.models.tfidf import TfidfOptions as cls
    elif kind == "causal-lm":
        from gapscope.models.causal_lm import CausalLMOptions as cls
    elif kind == "encoder":
        from gapscope.models.encoder import EncoderOptions as cls
    else:
        raise GapscopeError(f"unknown model kind {kind!r}")
    return cls


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _same_value(value: Any, default: Any, hint: Any) -> bool:
    # C = 1 is C = 1.0 (parse_options makes it so); min_df = 1.0 (all documents) is not min_df = 1
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return type(value) is type(default) and value == default


# a runner key written at the value that means "unset": max_train = 0 caps nothing
RUNNER_DEFAULTS = {"max_train": 0}
SCHEDULING_KEYS = frozenset({"ray_num_cpus", "ray_num_gpus"})


def canonical_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options without those written out at their default: `C = 1.0` written into a spec
    that left it out names the same model, so it must name the same cells (fingerprints and the
    resumed run's spec check read this, not the raw table). A kind that cannot be imported
    keeps its table as written."""
    try:
        cls = options_class(kind)
    except (GapscopeError, ImportError):
        return dict(options)
    hints = typing.get_type_hints(cls) | {k: int for k in RUNNER_DEFAULTS}
    defaults = {f.name: _default_of(f) for f in dataclasses.fields(cls)} | RUNNER_DEFAULTS
    # where a cell runs (Ray's CPUs and GPUs for its task) is no part of what it learns
    return {k: v for k, v in options.items() if k not in SCHEDULING_KEYS
            and not (k in defaults and _same_value(v, defaults[k], hints.get(k)))}


def choice(default: Any, *choices: Any) -> Any:
    return dataclasses.field(default=default, metadata={"choices": choices})


def ranged(default: Any, rule: R.Rule) -> Any:
    """An option whose numeric values must satisfy `rule` (a string or None, where the type
    allows one, such as train_layers = "auto", is left to the type check)."""
    return dataclasses.field(default=default, metadata={"rule": rule})
