"""Training paradigms as swappable strategies: each turns per-domain training pools into named train sets.

Paradigm names (also the `paradigm` field of matrix.json):
  specialist:<domain>   trained on one domain
  generalist            trained on a mix of domains, size-matched to the specialists by default
  lodo:<domain>         trained on every domain but <domain> (leave-one-domain-out)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from gapscope.study.spec import StudySpec
from gapscope.study.split import rng_for


@dataclass
class TrainSet:
    paradigm: str
    train_domains: list[str]
    ids: list[str]  # in a seeded order: any prefix is a fair subsample (used for per-model caps)


Pools = dict[str, list[str]]  # domain -> training ids (sorted)
Labels = Mapping[str, int] | None  # training id -> label; None when unknown (every set counts as trainable)
ParadigmFn = Callable[[StudySpec, Pools, Labels], Iterator[TrainSet]]
_PARADIGMS: dict[str, ParadigmFn] = {}


def register_paradigm(name: str) -> Callable[[ParadigmFn], ParadigmFn]:
    def deco(fn: ParadigmFn) -> ParadigmFn:
        _PARADIGMS[name] = fn
        return fn

    return deco


def _shuffled(ids: list[str], seed: int, *names: str) -> list[str]:
    ids = sorted(ids)
    return [ids[i] for i in rng_for(seed, *names).permutation(len(ids))]


def _interleave(per_domain: list[list[str]]) -> list[str]:
    """Round-robin over domains, so every prefix of the result is a balanced mix."""
    out: list[str] = []
    longest = max((len(x) for x in per_domain), default=0)
    for i in range(longest):
        for lst in per_domain:
            if i < len(lst):
                out.append(lst[i])
    return out


def _cap(spec: StudySpec, ids: list[str]) -> list[str]:
    cap = spec.study.max_train
    return ids if cap is None else ids[:cap]


@register_paradigm("specialist")
def specialist(spec: StudySpec, pools: Pools, labels: Labels = None) -> Iterator[TrainSet]:
    for d in spec.paradigms.specialist:
        yield TrainSet(f"specialist:{d}", [d], _specialist_ids(spec, pools, d))


def _specialist_ids(spec: StudySpec, pools: Pools, d: str) -> list[str]:
    return _cap(spec, _shuffled(pools[d], spec.study.seed, "specialist", d))


def _specialist_size(spec: StudySpec, pools: Pools, domains: list[str], labels: Labels) -> int:
    """The median size of the specialist cells that will train: a domain with one label only
    (a phishing-only corpus) gets no specialist cell, so it does not set the generalist's size."""
    named = spec.paradigms.specialist or domains
    trainable = [d for d in named
                 if labels is None or len({labels[i] for i in _specialist_ids(spec, pools, d)}) == 2]
    sizes = [len(_cap(spec, pools[d])) for d in (trainable or named)]
    return int(np.median(sizes)) if sizes else 0


@register_paradigm("generalist")
def generalist(spec: StudySpec, pools: Pools, labels: Labels = None) -> Iterator[TrainSet]:
    domains = spec.paradigms.generalist
    if not domains:
        return
    mixed = _interleave([_shuffled(pools[d], spec.study.seed, "generalist", d) for d in domains])
    size = spec.paradigms.generalist_size
    if size == "match":
        mixed = mixed[: _specialist_size(spec, pools, domains, labels)]
    elif isinstance(size, int):
        if size > len(mixed):  # said, not silently capped
            from gapscope import progress

            progress.info(f"generalist_size = {size} is more than the {len(mixed)} training rows of the mix; "
                          f"the generalist cell trains on all {len(mixed)}", style="yellow")
        mixed = mixed[:size]
    yield TrainSet("generalist", list(domains), _cap(spec, mixed))


@register_paradigm("lodo")
def lodo(spec: StudySpec, pools: Pools, labels: Labels = None) -> Iterator[TrainSet]:
    if not spec.paradigms.lodo:
        return
    for held in spec.domains:
        rest = [d for d in spec.domains if d != held]
        mixed = _interleave([_shuffled(pools[d], spec.study.seed, "lodo", held, d) for d in rest])
        yield TrainSet(f"lodo:{held}", rest, _cap(spec, mixed))


def build_train_sets(spec: StudySpec, pools: Pools, labels: Labels = None) -> list[TrainSet]:
    sets: list[TrainSet] = []
    for fn in _PARADIGMS.values():
        sets.extend(fn(spec, pools, labels))
    return [s for s in sets if s.ids]


def without_copies_of_left_out(train_sets: list[TrainSet], domain_of: Mapping[str, str],
                               group_of: Mapping[str, int]) -> tuple[list[TrainSet], dict[str, int]]:
    """A lodo:<d> cell trains without <d>: rows of the other domains that copy or nearly copy an
    email of <d> (data.audit.duplicate_group_of, over every row of <d>) leave its training set too.
    Twelve copies of a bank corpus in another one carried its footer into the leave-bank-out cell,
    which then scored F1 1.00 on bank (0.76 without them). Returns the sets and, per lodo
    paradigm, how many rows left."""
    groups_of: dict[str, set[int]] = {}
    for i, d in domain_of.items():
        groups_of.setdefault(d, set()).add(group_of[i])
    out, dropped = [], {}
    for ts in train_sets:
        if ts.paradigm.startswith("lodo:"):
            held = groups_of.get(ts.paradigm.split(":", 1)[1], set())
            kept = [i for i in ts.ids if group_of[i] not in held]
            if len(kept) < len(ts.ids):
                dropped[ts.paradigm] = len(ts.ids) - len(kept)
                ts = TrainSet(ts.paradigm, ts.train_domains, kept)
        out.append(ts)
    return out, dropped
