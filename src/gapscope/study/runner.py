"""The study runner: the one place that strings the pipeline together, top to bottom.

spec -> corpus -> held-out split -> audit -> paradigms -> cells (fit + score) -> matrix
     -> detectors -> findings.json -> report.html

Each stage writes into the run directory; finished cells (cell.json with a matching
fingerprint) and finished detectors are never redone after an interruption.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.text import Text

from gapscope import progress
from gapscope.errors import GapscopeError
from gapscope.models.options import canonical_options
from gapscope.study import artifacts
from gapscope.study.cells import CellJob, data_key, forget_rows, is_done, row_digests
from gapscope.study.executors import CellOutcome, make_executor
from gapscope.study.paradigms import build_train_sets, without_copies_of_left_out
from gapscope.study.spec import RESOLVED_HEADER, StudySpec, load_spec
from gapscope.study.split import drop_train_duplicates_of_test, held_out_groups, split_held_out


@dataclass
class RunResult:
    run_dir: Path
    report: Path | None
    outcomes: list[CellOutcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_study(spec_path: Path | str, out: Path | str, *, executor: str = "local", address: str | None = None,
              detectors: bool = True, retries: int = 1, restart: bool = False) -> RunResult:
    """`restart`: the caller owns `out` (the demo, the validators): a run of the same study name
    made with another spec there (the other demo variant, another seed) is removed and started
    over, where `gapscope run` refuses it."""
    t0 = time.perf_counter()
    if executor not in ("local", "ray"):
        raise GapscopeError(f"unknown executor {executor!r} (local | ray)")
    if address is not None and executor != "ray":
        raise GapscopeError("--address names a Ray cluster: it needs --executor ray")
    spec = load_spec(spec_path)
    from gapscope.study.detector_options import check_detector_options

    check_detector_options(spec)  # a misspelt option fails now, not after every cell has trained
    check_model_options(spec)
    if executor == "local":  # a Ray worker may hold models this machine does not
        check_model_sources(spec)
    run_dir = Path(out)
    from gapscope.study.lock import run_lock

    try:  # a folder that is no run of this study is refused before a lock file is made in it
        check_run_dir(spec, run_dir)
    except OtherRunError as e:
        if not (e.nothing_finished or (restart and e.same_name)):
            raise
    with run_lock(run_dir, "gapscope run", create=True):  # checked again under the lock
        return _run_locked(spec, run_dir, t0, executor=executor, address=address, detectors=detectors,
                           retries=retries, restart=restart)


def _run_locked(spec: StudySpec, run_dir: Path, t0: float, *, executor: str, address: str | None,
                detectors: bool, retries: int, restart: bool) -> RunResult:
    try:
        check_run_dir(spec, run_dir)
    except OtherRunError as e:
        if e.nothing_finished:
            # the earlier spec failed before any cell finished (an option only a training cell
            # rejects): nothing of it is worth keeping, and the corrected spec was refused
            progress.info(f"{run_dir} holds no finished cell of its earlier spec ({e.differ}); starting it over "
                          "with this one")
        elif not (restart and e.same_name):
            raise
        else:
            progress.info(f"{run_dir} holds a run of this study with other settings; starting it over")
        clear_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    artifacts.write_text(run_dir / "study.toml", spec.to_toml())

    rows = ingest(spec, run_dir)
    if len(spec.domains) == 1:  # it ran and printed '-' for every out-of-domain number, without a word why
        progress.info(f"one domain ({spec.domains[0]}): a cell is scored only where it trained, so nothing here "
                      "measures generalization; add a second corpus as another [[datasets]] table",
                      style="yellow")
    rows_by_id = {r.id: r for r in rows}
    from gapscope.data.audit import duplicate_group_of, duplicate_structure

    with progress.step("finding copies and near-duplicates (kept on one side of the split)"):
        structure = duplicate_structure(rows)
    groups = duplicate_group_of(len(rows), structure)
    train_ids, test_ids = split_held_out(rows, spec.study.test_fraction, spec.study.seed, groups)
    unheld = unheld_classes(rows, test_ids)
    for u in unheld:
        progress.info(f"{u['domain']}: no held-out {u['label']} email: its {u['rows']} are copies or near-duplicates "
                      "kept together in training (of one another, or of emails labelled otherwise); the domain is "
                      "scored on its other label only",
                      style="yellow")
    untrained = untrained_classes(rows, train_ids, groups)
    for u in untrained:
        progress.info(f"{u['domain']}: no training {u['label']} email: its {u['rows']} are copies or near-duplicates "
                      "of held-out emails labelled otherwise, held out with them; correct the labels of those "
                      "copies (data audit lists them) to train on them", style="yellow")
    test_ids = cap_test(rows_by_id, test_ids, spec)
    audit = write_audit(run_dir, rows, train_ids, test_ids, structure)
    before = train_ids
    train_ids, dedup = drop_train_duplicates_of_test(rows_by_id, train_ids, test_ids, near_pairs(audit))
    removed = [rows_by_id[i] for i in set(before) - set(train_ids)]
    if removed:  # the audit's train/test leakage is the split's before this: say what became of it
        audit["leakage"]["train_test"]["removed_from_training"] = {
            "exact": dedup["removed_exact"], "near": dedup["removed_near"],
            "note": "the leakage above is the split's before de-duplication; these training rows, copies or "
                    "near-copies of held-out rows, were then removed (splits.json dedup), so none is left"}
        artifacts.write_json(run_dir / "audit.json", audit)
    copy_groups = held_out_groups(rows, groups, test_ids)
    artifacts.write_json(run_dir / "splits.json", {"train": train_ids, "test": test_ids, "dedup": dedup,
                                                   "no_test_rows": unheld, "no_train_rows": untrained,
                                                   "copy_groups": copy_groups})
    if dedup["removed_exact"] or dedup["removed_near"]:
        progress.info(f"removed {dedup['removed_exact']} exact and {dedup['removed_near']} near duplicates "
                      "of test rows from the training pools")

    pools: dict[str, list[str]] = {d: [] for d in spec.domains}
    for i in train_ids:
        pools[rows_by_id[i].domain].append(i)
    labels = {i: r.label for i, r in rows_by_id.items()}  # the paradigms read the training ids'; resume all
    train_sets, copied = without_copies_of_left_out(build_train_sets(spec, pools, labels),
                                                    {r.id: r.domain for r in rows},
                                                    {r.id: g for r, g in zip(rows, groups)})
    for paradigm, n in copied.items():
        left = paradigm.split(":", 1)[1]
        progress.info(f"{paradigm}: {n} training row(s) of other domains copy or nearly copy "
                      f"{'an' if left[:1].lower() in 'aeiou' else 'a'} {left} email and are left out with it")
    train_sets, one_class = split_one_class(train_sets, rows_by_id, removed, untrained)
    for note in one_class:
        progress.info(f"no {note['paradigm']} cell: {note['reason']}", style="yellow")
    digests = row_digests(rows_by_id)
    keys = {ts.paradigm: data_key(digests, ts.ids, test_ids) for ts in train_sets}
    jobs = [CellJob(model=m, paradigm=ts.paradigm, train_domains=ts.train_domains, train_ids=ts.ids,
                    seed=spec.study.seed, data_key=keys[ts.paradigm]) for m in spec.models for ts in train_sets]
    if not jobs:  # every cell lacks a label: the detectors would run on nothing and report nothing
        raise GapscopeError(f"{spec.path}: no cell can be trained ("
                            + "; ".join(f"{n['paradigm']}: {n['reason']}" for n in one_class) + ")")
    drop_stale_cells(run_dir, jobs)
    todo = [j for j in jobs if not is_done(run_dir, j, labels, test_ids)]
    skipped = [j.name for j in jobs if j not in todo]
    if skipped:
        progress.info(f"resuming: {len(skipped)} of {len(jobs)} cells already finished")

    outcomes = run_cells(run_dir, todo, test_ids, executor, address, retries)
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        progress.info(f"cell {o.name} failed after {o.attempts} attempt(s): {o.error}", style="red")

    from gapscope.study.evaluate import build_matrix

    entries, summary = build_matrix(run_dir, [j for j in jobs if is_done(run_dir, j, labels, test_ids)], rows_by_id,
                                    bootstrap=spec.study.bootstrap, seed=spec.study.seed, groups=copy_groups)
    report = None
    if detectors:
        from gapscope.study.diagnose import diagnose

        diagnose(run_dir)
    from gapscope.study.publish import build_report

    artifacts.write_json(run_dir / "run.json", {  # before the report, which lists the failed cells
        "cells": len(jobs), "ran": [o.name for o in outcomes if o.ok], "skipped": skipped,
        "not_trainable": one_class,
        "failed": [{"cell": o.name, "error": o.error, "attempts": o.attempts} for o in failed],
        "seconds": round(time.perf_counter() - t0, 1),
    })
    report = build_report(run_dir)
    return RunResult(run_dir, report, outcomes, skipped, time.perf_counter() - t0)


def split_one_class(train_sets, rows_by_id, removed: list | None = None,
                    untrained: list | None = None) -> tuple[list, list[dict[str, str]]]:
    """A classifier needs both labels among its training rows: a phishing-only corpus is valid
    input (it is scored by every other cell) but cannot train a specialist of its own.

    `removed`: training rows dropped as duplicates of test rows; when they held the missing
    label, the note says so (templated mail can lose a whole class that way). `untrained`
    (untrained_classes): a domain's label held out whole with copies labelled otherwise, said too."""
    keep, notes = [], []
    for ts in train_sets:
        labels = {rows_by_id[i].label for i in ts.ids}
        if len(labels) < 2:
            only = "phishing" if labels == {1} else "legitimate"
            reason = (f"its {len(ts.ids)} training rows ({', '.join(ts.train_domains)}) are all {only}; "
                      "a classifier needs both labels")
            lost = sum(1 for r in removed or [] if r.domain in ts.train_domains and r.label not in labels)
            other = 'legitimate' if only == 'phishing' else 'phishing'
            if lost:
                reason += f" ({lost} {other} training rows were removed as duplicates of test rows)"
            held = sum(u["rows"] for u in untrained or [] if u["domain"] in ts.train_domains and u["label"] == other)
            if held:
                reason += (f" ({held} {other} rows were held out with their copies labelled {only}: "
                           "one text cannot be trained under one label and tested under the other)")
            notes.append({"paradigm": ts.paradigm, "reason": reason})
        else:
            keep.append(ts)
    return keep, notes


class OtherRunError(GapscopeError):
    """--out holds something that this spec must not resume: another spec's run, or not a run."""

    def __init__(self, message: str, same_name: bool = False, nothing_finished: bool = False, differ: str = ""):
        super().__init__(message)
        self.same_name = same_name  # a run of a study with this spec's [study] name
        self.nothing_finished = nothing_finished  # a run of another spec with no finished cell
        self.differ = differ


# What a run writes at the top of its directory: all that starting it over removes (a job's log,
# a user's notes or .git beside them stay; the lock stays too: removed, a second process could
# lock a new file).
RUN_ENTRIES = ("study.toml", "data", "cells", "diagnostics", "audit.json", "splits.json", "matrix.json",
               "matrix.csv", "summary.json", "run.json", "findings.json", "report.html")


def clear_run_dir(run_dir: Path) -> None:
    """Remove what a run wrote into `run_dir` (RUN_ENTRIES and their temp files), nothing else."""
    for p in run_dir.iterdir():
        if p.name in RUN_ENTRIES or (p.name.endswith(".tmp") and p.name[:-4] in RUN_ENTRIES):
            _remove(p)


def _remove(p: Path) -> None:
    """A folder with its contents; a file or a link itself (never what a link points at)."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink()


def _what_makes_the_cells(spec: StudySpec) -> dict[str, Any]:
    """What decides the rows, the splits and the cells; a run resumed under a spec that differs
    here would mix another study's cells into this one (the name, bootstrap and detector tables
    may change between runs: they are recomputed)."""
    s = spec.study
    return {
        **{f"[study] {k}": getattr(s, k) for k in ("seed", "test_fraction", "max_train", "max_test_per_domain")},
        # which column keys were written out (`named`) is not compared: a run resolved before
        # they could be left out lists every one, and reads the same columns
        "[[datasets]]": [(d.domain, str(d.path), d.format, d.text, d.subject, d.body, d.label, d.label_value,
                          d.label_map, d.label_index, d.id, d.delimiter, d.encoding) for d in spec.datasets],
        "[paradigms]": spec.paradigms,
        "[[models]]": [(m.name, m.kind, m.source, sorted(canonical_options(m.kind, m.options).items()))
                       for m in spec.models],
    }


def _models_differ(old: list, new: list) -> str:
    """Which [[models]] changed, by name and key: "[[models]] differ" left the user to diff the specs."""
    if [m[0] for m in old] != [m[0] for m in new]:
        return f"[[models]] were {', '.join(m[0] for m in old)}, now {', '.join(m[0] for m in new)}"
    said = []
    for (name, kind, source, opts), (_, kind2, source2, opts2) in zip(old, new):
        for what, a, b in (("kind", kind, kind2), ("source", source, source2)):
            if a != b:
                said.append(f"model {name!r} {what} was {a!r}, now {b!r}")
        a, b = dict(opts), dict(opts2)
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b or a[k] != b[k]:
                was, now = (repr(d[k]) if k in d else "unset (its default)" for d in (a, b))
                said.append(f"model {name!r} {k} was {was}, now {now}")
    return "; ".join(said) or "[[models]] differ"


def check_run_dir(spec: StudySpec, run_dir: Path) -> None:
    """Resume only a run of this same study; refuse to write a run into a directory that holds
    something else."""
    prev = run_dir / "study.toml"
    if prev.is_file() and spec.path.resolve() == prev.resolve():
        raise OtherRunError(f"--out {run_dir} would write the run's resolved spec over {spec.path} itself; "
                            "give --out another directory")
    if not prev.is_file():
        # a job log written before the job starts (slurm.out, run.log) or a dotfile is not a run
        # nor is the temp file of a first study.toml cut off by a kill (it made the folder unusable)
        others = [] if not run_dir.is_dir() else [p for p in run_dir.iterdir() if not p.name.startswith(".")
                                                  and not (p.is_file() and p.suffix in (".log", ".out", ".err"))
                                                  and p.name != "study.toml.tmp"]
        if run_dir.exists() and (not run_dir.is_dir() or others):
            what = "is not a directory" if not run_dir.is_dir() else "is not empty and holds no gapscope run"
            raise OtherRunError(f"{run_dir} {what} (no study.toml); give --out a new or empty directory")
        return
    if not (run_dir / "data" / "rows.parquet").exists() and not (run_dir / "cells").exists():
        # the run stopped before its data were read (a missing file, a wrong column): it holds
        # nothing but its spec, so the corrected spec may take its place; a study.toml gapscope
        # did not write is someone's spec (a project folder given as --out) and stays untouched
        if _written_by_a_run(prev):
            return
        raise OtherRunError(f"{run_dir} holds a study.toml that no gapscope run wrote (a spec of your own?) and "
                            "no run; give --out a new or empty directory")
    try:
        old = load_spec(prev)
    except GapscopeError as e:
        raise OtherRunError(f"{run_dir} holds a run whose study.toml cannot be read ({e}); "
                            "give --out a new directory") from None
    a, b = _what_makes_the_cells(old), _what_makes_the_cells(spec)
    # a [study] value is said with both sides: "seed differs" left the user to guess which run had what
    differ = [f"{k} was {a[k]!r}, now {b[k]!r}" if k.startswith("[study]")
              else _models_differ(a[k], b[k]) if k == "[[models]]" else f"{k} differ"
              for k in a if a[k] != b[k]]
    if differ:
        raise OtherRunError(f"{run_dir} holds a run of another spec ({'; '.join(differ)}); give --out a new "
                            f"directory, or remove {run_dir} to start this study there",
                            same_name=old.study.name == spec.study.name, differ="; ".join(differ),
                            nothing_finished=_written_by_a_run(prev) and not any((run_dir / "cells").glob("*/cell.json")))


def _written_by_a_run(spec_file: Path) -> bool:
    """Whether a run's study.toml is the resolved spec a run wrote (not a user's own spec)."""
    with open(spec_file, encoding="utf-8", errors="replace") as f:
        return f.readline().rstrip("\n") == RESOLVED_HEADER


def check_model_options(spec: StudySpec) -> None:
    """Every [[models]] option's name, type and range, before any data is read (a cell reads them
    only when it trains: C = -1 used to fail in every cell, epochs = 0 to train nothing)."""
    from gapscope.models.options import options_class, parse_options

    for m in spec.models:
        try:
            parse_options(options_class(m.kind), m.options, m.name)
        except GapscopeError as exc:
            raise GapscopeError(f"{spec.path}: {exc}") from None


def check_model_sources(spec: StudySpec) -> None:
    """Find every model's weights before any training, so a missing one fails now and not hours in,
    check that its structure serves its kind (models.architecture, on a weightless skeleton), and
    refuse options this machine cannot serve (a device, device_map or 4-bit without CUDA).

    GGUF sources are converted here, once, as the first cell would do anyway."""
    from gapscope.models.architecture import check_structure
    from gapscope.models.options import options_class, parse_options
    from gapscope.models.sources import resolve_source

    for m in spec.models:
        if m.kind != "tfidf-lr":
            try:
                src = resolve_source(m.source, m.kind)
                check_structure(m.kind, src, parse_options(options_class(m.kind), m.options, m.name), m.name)
                _check_device_options(m)
            except GapscopeError as exc:
                raise GapscopeError(f"{spec.path}: model {m.name!r}: {exc}") from exc


def _check_device_options(m) -> None:
    """The refusals a cell would raise when it loads its base, raised by the same code now."""
    import torch

    from gapscope.models.device import resolve_device
    from gapscope.models.loading import load_kwargs
    from gapscope.models.options import options_class, parse_options

    o = parse_options(options_class(m.kind), m.options, m.name)
    device = resolve_device(o.device)
    if getattr(o, "device_map", None) is not None or getattr(o, "load_in_4bit", False):
        load_kwargs(device, torch.float32, bool(getattr(o, "load_in_4bit", False)), getattr(o, "device_map", None))


def ingest(spec: StudySpec, run_dir: Path):
    from gapscope.data.ingest import load_sources

    n = len(spec.datasets)
    with progress.step(f"reading {n} source(s)", total=n) as update:
        rows, reports = load_sources(spec.datasets, done=lambda i: update(i, n))
    for rep in reports:  # every source, as `gapscope data audit` prints them: rejections are not only in audit.json
        progress.info(rep.summary())
    from gapscope.data.ingest import shared_id

    clash = shared_id(rows, reports)
    if clash:
        raise GapscopeError(clash)
    if not rows:
        raise GapscopeError("no usable rows in any dataset")
    artifacts.write_parquet(run_dir / "data" / "rows.parquet", artifacts.rows_to_frame(rows))
    forget_rows()  # a rewrite within the file system's timestamp resolution keeps size and time
    artifacts.write_json(run_dir / "data" / "sources.json", [rep.to_dict() for rep in reports])
    _copy_manifest(spec, run_dir)
    return rows


def _copy_manifest(spec: StudySpec, run_dir: Path) -> None:
    """A synthetic corpus' manifest (what was planted) travels with the run, for validation."""
    for d in spec.datasets:
        m = Path(d.path).parent / "manifest.json"
        if m.exists():
            artifacts.write_text(run_dir / "data" / "manifest.json", m.read_text(encoding="utf-8"))
            return


def unheld_classes(rows, test_ids: list[str]) -> list[dict[str, Any]]:
    """Each domain's label of two or more rows that the split held none of (its rows one group, or
    groups that follow copies labelled otherwise into training)."""
    from gapscope.data.rows import LABEL_NAMES

    total, tested = _label_counts(rows, test_ids)
    return [{"domain": d, "label": LABEL_NAMES[lab], "rows": n} for (d, lab), n in sorted(total.items())
            if n >= 2 and not tested[(d, lab)]]


def _label_counts(rows, ids: list[str]) -> tuple[dict, dict]:
    """Rows per (domain, label), and how many of them `ids` holds."""
    from collections import Counter

    inside = set(ids)
    total, held = Counter(), Counter()
    for r in rows:
        total[(r.domain, r.label)] += 1
        held[(r.domain, r.label)] += r.id in inside
    return total, held


def drop_stale_cells(run_dir: Path, jobs: list[CellJob]) -> None:
    """Remove the cells of an earlier run of this spec that its data no longer make (a corpus edited
    to one label): left in cells/, the detectors read them as the run's (a shortcut finding about a
    cell the same run said could not be trained)."""
    names = {j.name for j in jobs}
    stale = sorted(p for p in (run_dir / "cells").glob("*") if (p.is_dir() or p.is_symlink()) and p.name not in names)
    for p in stale:
        _remove(p)
    if stale:
        progress.info(f"removed {len(stale)} cell(s) of an earlier run that this data no longer makes: "
                      + ", ".join(p.name for p in stale), style="yellow")


def untrained_classes(rows, train_ids: list[str], groups: list) -> list[dict[str, Any]]:
    """Each domain's label that the split left no training row of because its rows followed copies
    labelled otherwise into the test set (a group whose copies carry both labels stays on one side;
    `groups`: per row, data.audit.duplicate_group_of). A label held out whole for another reason
    (one row at a test_fraction above 0.5) is not this."""
    from collections import defaultdict

    from gapscope.data.rows import LABEL_NAMES

    total, trained = _label_counts(rows, train_ids)
    labels_of: dict[tuple[str, Any], set[int]] = defaultdict(set)
    for r, g in zip(rows, groups):
        labels_of[(r.domain, g)].add(r.label)
    mixed = {(r.domain, r.label) for r, g in zip(rows, groups) if len(labels_of[(r.domain, g)]) > 1}
    return [{"domain": d, "label": LABEL_NAMES[lab], "rows": n} for (d, lab), n in sorted(total.items())
            if not trained[(d, lab)] and (d, lab) in mixed]


def cap_test(rows_by_id, test_ids: list[str], spec: StudySpec) -> list[str]:
    cap = spec.study.max_test_per_domain
    if not cap:
        return test_ids
    from gapscope.study.split import hashed_order

    by_domain: dict[str, list[str]] = {}
    for i in test_ids:
        by_domain.setdefault(rows_by_id[i].domain, []).append(i)
    kept = []
    for d, ids in sorted(by_domain.items()):
        if len(ids) <= cap:
            kept += ids
            continue
        # each label keeps its share of the cap (largest remainders): drawn at random over the
        # domain, a 5%-phishing domain capped at 40 got 0 to 6 phishing rows, and with 0 no F1
        by_label: dict[int, list[str]] = {}
        for i in sorted(ids):
            by_label.setdefault(int(rows_by_id[i].label), []).append(i)
        exact = {lab: cap * len(v) / len(ids) for lab, v in by_label.items()}
        take = {lab: int(x) for lab, x in exact.items()}
        for lab in sorted(exact, key=lambda lab: (-(exact[lab] - take[lab]), lab))[:cap - sum(take.values())]:
            take[lab] += 1
        for lab in [lab for lab in take if not take[lab]]:  # a rare label keeps one row, so F1 stays defined
            big = max(take, key=lambda x: (take[x], x))
            if take[big] > 1:
                take[big] -= 1
                take[lab] = 1
        for lab, v in sorted(by_label.items()):
            kept += [v[j] for j in hashed_order(spec.study.seed, v, "test-cap", d)[:take[lab]]]
    return sorted(kept)


def write_audit(run_dir: Path, rows, train_ids, test_ids, structure=None) -> dict[str, Any]:
    from gapscope.data.audit import audit as run_audit

    reports = artifacts.read_json(run_dir / "data" / "sources.json")
    with progress.step("auditing the corpus (duplicates, leakage, style)"):
        result = run_audit(rows, _reports(reports), test_ids=set(test_ids), train_ids=set(train_ids),
                           structure=structure)
    artifacts.write_json(run_dir / "audit.json", result)
    return result


def _reports(dicts):
    from gapscope.data.rows import SourceReport

    # from_dict keeps rejected_at: rebuilt field by field, audit.json lost where rejected rows are
    return [SourceReport.from_dict(d) for d in dicts]


def near_pairs(audit: dict) -> list[tuple[str, str]]:
    """All near-duplicate id pairs the audit found (used to keep test twins out of training)."""
    pairs = audit.get("leakage", {}).get("train_test", {}).get("near_pairs") or []
    return [(a, b) for a, b in pairs]


def run_cells(run_dir: Path, jobs: list[CellJob], test_ids: list[str], executor: str, address: str | None,
              retries: int) -> list[CellOutcome]:
    if not jobs:
        return []
    ex = make_executor(executor, address=address, retries=retries)
    state: dict[str, Any] = {"done": 0}

    def on_event(kind: str, job: CellJob, payload: Any) -> None:
        if kind == "start":
            n = len(job.trained_ids)
            progress.info(Text.assemble((f"cell {state['done'] + 1}/{len(jobs)}", "bold"),
                                        progress.plain(f" {job.name} ({n} training rows)")))
        elif kind == "done":
            state["done"] += 1
            progress.info(f"   done in {payload['fit_seconds'] + payload['score_seconds']:.1f}s "
                          f"(fit {payload['fit_seconds']:.1f}s, score {payload['score_seconds']:.1f}s)")
        elif kind == "error":
            progress.info(f"   cell {job.name} raised:\n{payload}", style="red")

    return ex.run(run_dir, jobs, test_ids, on_event)


def predictions(run_dir: Path, cell: str) -> pd.DataFrame:
    return artifacts.read_parquet(run_dir / "cells" / cell / "predictions.parquet")
