"""Held-out splits, made once before any training, and train/test de-duplication.

Honest evaluation: the in-domain test rows of every domain are split off first;
a training row whose text duplicates any test row (in any domain) is removed and
counted, so no cell is ever scored on a text it trained on.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import Any

import numpy as np

from gapscope.data.rows import Row

_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _WS.sub(" ", text.lower()).strip()


def text_key(text: str) -> str:
    return hashlib.sha1(normalise(text).encode("utf-8")).hexdigest()


def rng_for(seed: int, *parts: str) -> np.random.Generator:
    """A generator seeded by the study seed and names (never Python's salted hash())."""
    h = hashlib.sha256("\x00".join([str(seed), *parts]).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def _digest(seed: int, key: str, parts: tuple[str, ...]) -> bytes:
    prefix = "\x00".join([str(seed), *parts, ""]).encode("utf-8")
    return hashlib.blake2b(prefix + key.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def hashed_order(seed: int, keys: list[str], *parts: str) -> list[int]:
    """The indices of `keys` in a seeded order that each key keeps whatever the others are (a
    permutation of the list reordered every key when one was added or removed)."""
    return sorted(range(len(keys)), key=lambda i: (_digest(seed, keys[i], parts), keys[i]))


def unit_hash(seed: int, key: str, *parts: str) -> float:
    """A number in [0, 1) that `key` keeps whatever the other keys are."""
    return int.from_bytes(_digest(seed, key, parts), "little") / 2.0 ** 64


def split_held_out(rows: list[Row], test_fraction: float, seed: int,
                   groups: list[int] | None = None) -> tuple[list[str], list[str]]:
    """Each email (each group of copies) is held out when its own seeded hash falls below
    `test_fraction`, so about that share of every domain and label goes to test. Returns (train_ids,
    test_ids).

    Its side depends on nothing else: a seeded permutation per domain and label, or any count to
    fill, moved other rows when one row was relabelled, added or removed, the held-out set changed,
    and every cell of the study trained again. Now relabelling training rows (as a label-noise finding
    invites) leaves the held-out set as it was, and only the cells that trained on them train again.
    Only where a label of two or more rows would otherwise lie all on one side does the split move
    one group (the smallest, or the one hashed last) to the other; and a group of copies exactly at
    its label's size limit (below) can change side when a row joins or leaves that label.

    Copies of one email (the same text after normalising) go to one side together: split row by
    row, 60 copies of one phishing email made 16 of a domain's 30 held-out phishing rows (its F1
    and interval were mostly that one email's) and the de-duplication then took 44 of the 70
    training phishing rows. A group larger than its label's test share (test_fraction of its rows)
    stays in training. `groups` (per row, data.audit.duplicate_group_of) widens "copies" to
    near-duplicates linked through each other: a campaign's variants, spread over both sides, lost
    every training variant to the de-duplication."""
    by_class: dict[tuple[str, int], list[tuple[Row, Any]]] = defaultdict(list)
    for k, r in enumerate(rows):
        by_class[(r.domain, r.label)].append((r, groups[k] if groups is not None else text_key(r.text)))
    train, test = [], []
    # a group whose copies carry both labels (one of them mislabelled) goes where its first label's
    # copies went: split per label, the legitimate copy trained and its mislabelled twin was held out,
    # and the de-duplication then dropped the correctly labelled one (a user's review)
    decided: dict[tuple[str, Any], bool] = {}
    for (domain, label), members in sorted(by_class.items()):
        members = sorted(members, key=lambda m: m[0].id)
        copies: dict[Any, list[str]] = {}
        for r, g in members:
            copies.setdefault(g, []).append(r.id)
        keys, clusters = list(copies), list(copies.values())  # in order of their first id
        # by each cluster's first id, not its label: a relabelled row keeps its side
        u = [unit_hash(seed, ids[0], "split", domain) for ids in clusters]
        cap = max(1, int(round(test_fraction * len(members))))
        forced = {i: decided[(domain, k)] for i, k in enumerate(keys) if (domain, k) in decided}
        free = [i for i in range(len(clusters)) if i not in forced]
        chosen = {i for i, held in forced.items() if held}
        chosen |= {i for i in free if u[i] < test_fraction and len(clusters[i]) <= cap}
        if len(members) >= 2 and len(clusters) > 1 and free:
            if not chosen:  # no held-out row of this label: the smallest group, training keeps the rest
                chosen = {min(free, key=lambda i: (len(clusters[i]), u[i]))}
            elif len(chosen) == len(clusters) and (held_free := chosen.intersection(free)):
                chosen.remove(max(held_free, key=lambda i: u[i]))  # no training row: the one hashed last trains
        # (copies of one email only: they all train, and the domain has no test row of this label)
        for i, ids in enumerate(clusters):
            (test if i in chosen else train).extend(ids)
            decided[(domain, keys[i])] = i in chosen
    return sorted(train), sorted(test)


def drop_train_duplicates_of_test(rows_by_id: dict[str, Row], train_ids: list[str], test_ids: list[str],
                                  near_pairs: list[tuple[str, str]] | None = None) -> tuple[list[str], dict]:
    """Remove training rows that exactly (after normalisation) or nearly duplicate a test row.

    `near_pairs` are (id, id) near-duplicate pairs from the audit; a pair that links a
    training row to a test row removes the training row. Returns (kept train ids, report).
    """
    test_keys: dict[str, str] = {}
    for i in test_ids:
        test_keys.setdefault(text_key(rows_by_id[i].text), i)
    test_set = set(test_ids)
    near_partner: dict[str, str] = {}
    for a, b in near_pairs or []:
        if a in test_set and b not in test_set:
            near_partner.setdefault(b, a)
        elif b in test_set and a not in test_set:
            near_partner.setdefault(a, b)
    kept, exact, near = [], [], []
    for i in train_ids:
        k = text_key(rows_by_id[i].text)
        if k in test_keys:
            exact.append((i, test_keys[k]))
        elif i in near_partner:
            near.append((i, near_partner[i]))
        else:
            kept.append(i)
    report = {
        "train_rows_before": len(train_ids),
        "removed_exact": len(exact),
        "removed_near": len(near),
        "train_rows_after": len(kept),
        "examples": [{"train_id": a, "test_id": b, "match": "exact"} for a, b in exact[:20]]
        + [{"train_id": a, "test_id": b, "match": "near"} for a, b in near[:20]],
    }
    return kept, report


def held_out_groups(rows: list[Row], groups: list[int], test_ids: list[str]) -> dict[str, int]:
    """Held-out row id -> its group of copies and near-copies, for the groups with two or more held-out
    rows (the split keeps a group on one side, so a test set can hold one campaign several times; the
    intervals count such a group as one email's evidence: eval/clusters.py). Others are left out."""
    held = set(test_ids)
    mine = [(r.id, g) for r, g in zip(rows, groups) if r.id in held]
    size: dict[int, int] = defaultdict(int)
    for _, g in mine:
        size[g] += 1
    return {rid: int(g) for rid, g in mine if size[g] > 1}
