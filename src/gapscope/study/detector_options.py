"""Check a spec's `[detectors.<name>]` tables before any cell trains.

Each detector reads its own table when it runs, which for `gapscope run` comes after every
cell has trained; a misspelt option or table name should fail in the first second instead,
naming the user's spec. The check asks each detector's own option reader, so it cannot drift
from what the detectors accept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from gapscope.errors import GapscopeError, SpecError
from gapscope import option_rules as R
from gapscope.option_rules import check_values
from gapscope.suggest import did_you_mean, with_hints

# keys a detector takes out of its table before reading the rest as options
_LISTS = {"backdoor": ("triggers",), "drift": ("probes", "families")}
_SCALARS = {"cells_per_model", "enabled"}  # [detectors] keys that are not detector tables
# detectors that analyse cells one by one, and so read their own cells_per_model (Study.detector_cells)
PER_CELL = ("attributions", "backdoor", "drift", "internals", "minimal_pairs", "shortcuts")


def check_keys(name: str, table: dict[str, Any], defaults: dict[str, Any], rules: dict | None = None) -> None:
    """Refuse a key of `[detectors.<name>]` that is not one of its options (a misspelt option
    would otherwise change nothing, silently), and a value its rule refuses."""
    known = set(defaults) | ({"cells_per_model"} if name in PER_CELL else set())
    unknown = sorted(set(table) - known)
    if unknown:
        raise GapscopeError(f"[detectors.{name}]: unknown option(s) {with_hints(unknown, known)} "
                            f"(known: {', '.join(sorted(known))})")
    check_values(f"[detectors.{name}]", table, rules or {})


def _readers() -> dict[str, Callable[[dict[str, Any]], Any]]:
    from gapscope.attribution import corpus as attributions
    from gapscope.backdoor.scan import ScanOptions
    from gapscope.detectors import label_noise, minimal_pairs, shortcuts
    from gapscope.diversity.analysis import DiversityOptions
    from gapscope.drift.audit import DriftOptions
    from gapscope.internals.analyse import InternalsOptions

    def keys(name: str, module: Any) -> Callable[[dict[str, Any]], None]:
        return lambda table: check_keys(name, table, module.DEFAULTS, module.RULES)

    return {
        "attributions": keys("attributions", attributions),
        "label_noise": keys("label_noise", label_noise),
        "minimal_pairs": keys("minimal_pairs", minimal_pairs),
        "shortcuts": keys("shortcuts", shortcuts),
        "backdoor": ScanOptions.from_dict,
        "drift": DriftOptions.from_dict,
        "diversity": DiversityOptions.from_dict,
        "internals": InternalsOptions.from_dict,
    }


def _check_lists(spec, top: dict[str, Any]) -> None:
    """The lists detectors take out of their tables: the models label_noise cross-fits, the
    drift probe families (when every probe file can be read now) and the backdoor triggers."""
    models = [m.name for m in spec.models]
    cross = (top.get("label_noise") or {}).get("cross_fit")
    if isinstance(cross, list) and any(isinstance(m, str) and m not in models for m in cross):
        bad = next(m for m in cross if m not in models)
        raise SpecError(spec.path, f"[detectors.label_noise] cross_fit names {bad!r}, not a model of this spec "
                                   f"(models: {', '.join(models)})")
    drift = top.get("drift") or {}
    backdoor = top.get("backdoor") or {}
    for where, key, v in (("drift", "probes", drift.get("probes")), ("drift", "families", drift.get("families")),
                          ("backdoor", "triggers", backdoor.get("triggers"))):
        if v is not None and not R.names().accepts(v):
            raise SpecError(spec.path, f"[detectors.{where}] {key} must be a list of non-empty strings, got {v!r}")
    files = drift.get("probes") or []
    if drift.get("families") and all(Path(f).is_absolute() for f in files):
        from gapscope.drift.probes import load_probe_sets

        try:  # relative probe files are read from the run directory, which does not exist yet
            load_probe_sets(files, families=drift["families"])
        except GapscopeError as e:
            raise SpecError(spec.path, f"[detectors.drift]: {e}") from None


def check_detector_options(spec) -> None:
    """Raise a SpecError for an unknown detector table or an option its detector would refuse."""
    from gapscope.findings import detectors

    known = set(detectors())
    readers = _readers()
    top = spec.detectors or {}
    try:
        check_values("[detectors]", {k: top[k] for k in _SCALARS if k in top},
                     {"cells_per_model": R.whole(0), "enabled": R.names(*sorted(known))})
    except GapscopeError as e:
        raise SpecError(spec.path, str(e)) from None
    _check_lists(spec, top)
    for name, table in top.items():
        if name in _SCALARS:
            continue
        if not isinstance(table, dict):
            raise SpecError(spec.path, f"[detectors] {name}: not a detector table or a known key "
                                       f"(detectors: {', '.join(sorted(known))}; keys: cells_per_model, enabled)")
        if name not in known:
            raise SpecError(spec.path, f"[detectors.{name}]: no such detector{did_you_mean(name, known)} "
                                       f"(known: {', '.join(sorted(known))})")
        # the lists a detector takes out first; a per-cell detector's cells_per_model is read by
        # Study.detector_cells (internals reads its own); anywhere else it is an unknown option
        given = {k: v for k, v in table.items() if k not in _LISTS.get(name, ())
                 and (k != "cells_per_model" or name not in PER_CELL or name == "internals")}
        if name not in readers:
            if given:
                raise SpecError(spec.path, f"[detectors.{name}]: takes no options, got {', '.join(sorted(given))}")
            continue
        try:
            readers[name](given)
        except (GapscopeError, TypeError, ValueError) as e:
            said = str(e).splitlines()[0]
            raise SpecError(spec.path, said if said.startswith("[detectors.") else f"[detectors.{name}]: {said}") from None
