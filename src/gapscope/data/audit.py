"""The data audit: what each source and domain looks like, duplicates, and train/test leakage.

Why it exists: a cross-domain gap is only interpretable if the data behind it is known.
Domains that differ in style (length, links, HTML, shouting) hand a model shortcuts;
duplicates inflate in-domain scores; a test email that is (nearly) a training email
measures memory, not generalisation. This module measures all three and writes them
to audit.json.

Duplicates are found on normalised text (lowercase, whitespace collapsed):
- exact: equal normalised text, within a domain and across domains;
- near: Jaccard >= 0.8 between the sets of word 5-shingles (in text of a script written without
  spaces, Chinese or Japanese, its characters are the words, as everywhere in gapscope), found with MinHash
  signatures and LSH banding (numpy, fixed seed, so results are reproducible) and then
  confirmed with the exact Jaccard of the candidates' shingle sets. Near pairs are between
  distinct normalised texts; exact copies are collapsed first. An LSH bucket of more than
  BUCKET_ALL_PAIRS texts (a spam template sent thousands of times) is linked as a star plus a
  chain instead of all pairs, which keeps the cost linear; its rows still form one group.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from gapscope.attribution.words import RunTokenizer, has_no_space_script, word_count
from gapscope.data.rows import LABEL_NAMES, Row, SourceReport

NEAR_THRESHOLD = 0.8
SHINGLE_WORDS = 5
BANDS, BAND_ROWS = 16, 5  # P(candidate) at Jaccard 0.8 = 1 - (1 - 0.8**5)**16 = 0.998
NUM_PERM = BANDS * BAND_ROWS
BUCKET_ALL_PAIRS = 50  # larger LSH buckets: every pair's MinHash estimate first (vectorised), see below
BUCKET_ESTIMATED = 3000  # larger still (a million-row archive of one notification): a chain plus a star
MAX_EXAMPLES = 20
# estimates are k / NUM_PERM exactly, and 0.8 - 0.1 is 0.7000000000000001: 56 of 80 agreeing
# minhashes (0.7) fell below the bar, and a variant at Jaccard 0.81 kept its test twin
_EPS = 1e-9
SEED = 20240607

_PUNCT_TO_SPACE = str.maketrans({c: " " for c in string.punctuation})
_NO_SPACE_WORDS = RunTokenizer(1).no_space  # a no-space character, or a run of other word characters
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"')]+", re.IGNORECASE)
_MASK64 = (1 << 64) - 1


def normalise_text(text: str) -> str:
    """The text duplicates are judged on: lowercase, whitespace collapsed."""
    return " ".join(text.lower().split())


# ---------------------------------------------------------------- style


def _row_style(text: str) -> tuple[float, ...]:
    codes = np.frombuffer(text.encode("utf-32-le", "replace"), dtype=np.uint32)
    n = max(len(codes), 1)
    upper = int(np.count_nonzero((codes >= 65) & (codes <= 90)))
    letters = upper + int(np.count_nonzero((codes >= 97) & (codes <= 122)))
    digits = int(np.count_nonzero((codes >= 48) & (codes <= 57)))
    return (
        len(text),
        word_count(text),  # a Chinese paragraph was one word: Chinese mail read as 5-8 words long
        len(_URL.findall(text)),
        upper / letters if letters else 0.0,
        text.count("!") + text.count("！"),  # the full-width mark is the one Chinese and Japanese mail writes
        digits / n,
        int(np.count_nonzero(codes > 127)) / n,
    )


def _style(feats: np.ndarray, html: np.ndarray, subject: np.ndarray, aside: np.ndarray) -> dict[str, float]:
    """Aggregate per-row style features (rows of `feats`) into one group's profile."""
    if len(feats) == 0:
        return {}
    chars, words, urls, upper, excl, digit, non_ascii = feats.T
    r = lambda x: round(float(x), 4)  # noqa: E731
    return {
        "mean_chars": r(chars.mean()),
        "median_chars": r(np.median(chars)),
        "mean_words": r(words.mean()),
        "url_count_mean": r(urls.mean()),
        "url_share": r((urls > 0).mean()),
        "html_share": r(html.mean()),
        # mail whose body is its HTML part rendered to text, the text/plain part (which lacked the
        # HTML's link targets) set aside
        "html_body_share": r(aside.mean()),
        "uppercase_ratio_mean": r(upper.mean()),
        "exclamation_per_1k_chars": r(1000 * excl.sum() / max(chars.sum(), 1)),
        "exclamation_share": r((excl > 0).mean()),
        "digit_ratio_mean": r(digit.mean()),
        "non_ascii_ratio_mean": r(non_ascii.mean()),
        "subject_share": r(subject.mean()),
    }


# ---------------------------------------------------------------- MinHash


class _WordHashes(dict):
    """Deterministic 64-bit word hashes (Python's hash() is salted per process)."""

    def __missing__(self, word: str) -> int:
        h = int.from_bytes(hashlib.blake2b(word.encode("utf-8", "replace"), digest_size=8).digest(), "little")
        self[word] = h
        return h


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the bits of combined word hashes."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _shingles(norm: str, words: _WordHashes) -> np.ndarray:
    """Hashes of the word 5-shingles of a normalised text (one shingle when it is shorter).

    Words are split on whitespace and ASCII punctuation, so "click here." matches "click here". In
    text of a script written without spaces each of its characters is a word (punctuation dropped):
    a Chinese email was a handful of whitespace-separated runs, one shingle, and two copies of one
    template that differ in an amount shared none.
    """
    toks = (_NO_SPACE_WORDS.findall(norm) if has_no_space_script(norm)
            else norm.translate(_PUNCT_TO_SPACE).split())
    if not toks:
        return np.zeros(0, dtype=np.uint64)
    w = np.fromiter(map(words.__getitem__, toks), dtype=np.uint64, count=len(toks))
    k = min(SHINGLE_WORDS, len(w))
    n = len(w) - k + 1
    h = w[:n].copy()
    for j in range(1, k):
        h = h * np.uint64(0x9E3779B97F4A7C15) + w[j:j + n]
    return _mix(h)


class _MinHasher:
    def __init__(self, num_perm: int = NUM_PERM, seed: int = SEED):
        rng = np.random.default_rng(seed)
        self.a = (rng.integers(0, _MASK64, size=num_perm, dtype=np.uint64, endpoint=True) | np.uint64(1))[:, None]
        self.b = rng.integers(0, _MASK64, size=num_perm, dtype=np.uint64, endpoint=True)[:, None]
        self.band_mult = rng.integers(0, _MASK64, size=BAND_ROWS, dtype=np.uint64, endpoint=True) | np.uint64(1)

    def signature(self, sh: np.ndarray) -> np.ndarray:
        """Min over shingles of multiply-shift hashes (a*x + b) >> 32, one per permutation."""
        sig = np.full(self.a.shape[0], np.iinfo(np.uint32).max, dtype=np.uint64)
        for i in range(0, len(sh), 4096):
            part = (self.a * sh[None, i:i + 4096] + self.b) >> np.uint64(32)
            np.minimum(sig, part.min(axis=1), out=sig)
        return sig.astype(np.uint32)


def _candidate_pairs(sig: np.ndarray, band_mult: np.ndarray,
                     valid: np.ndarray) -> tuple[set[tuple[int, int]], list[list[int]]]:
    """LSH banding: texts that agree on every value of some band are candidates. Returns the pairs
    of small buckets (all of them) and of the largest ones (a chain and a star), and the large
    buckets in between, which near_duplicate_pairs links by estimate (each once)."""
    pairs: set[tuple[int, int]] = set()
    large: dict[tuple[int, ...], None] = {}  # a large bucket recurs in many bands
    idx = np.flatnonzero(valid)
    for b in range(BANDS):
        band = sig[idx, b * BAND_ROWS:(b + 1) * BAND_ROWS].astype(np.uint64)
        keys = (band * band_mult[None, :]).sum(axis=1, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        ends = np.r_[starts[1:], len(sk)]
        for s, e in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
            members = sorted(idx[order[s:e]].tolist())
            if len(members) <= BUCKET_ALL_PAIRS:
                pairs.update((x, y) for i, x in enumerate(members) for y in members[i + 1:])
            elif len(members) <= BUCKET_ESTIMATED:
                large[tuple(members)] = None
            else:
                pairs.update((members[0], y) for y in members[1:])
                pairs.update(zip(members[:-1], members[1:]))
    return pairs, [list(m) for m in large]


def near_duplicate_pairs(texts: Sequence[str], threshold: float = NEAR_THRESHOLD) -> list[tuple[int, int, float]]:
    """(i, j, jaccard) for texts whose word 5-shingle sets have Jaccard >= threshold, i < j.

    `texts` should be distinct normalised texts (exact copies are trivially near-duplicates).
    """
    words = _WordHashes()
    hasher = _MinHasher()
    sig = np.zeros((len(texts), NUM_PERM), dtype=np.uint32)
    valid = np.zeros(len(texts), dtype=bool)
    for i, t in enumerate(texts):
        sh = _shingles(t, words)
        if len(sh):
            sig[i] = hasher.signature(sh)
            valid[i] = True
    small, large = _candidate_pairs(sig, hasher.band_mult, valid)
    cand = sorted(small)
    cache: dict[int, np.ndarray] = {}

    def jaccard(i: int, j: int) -> float:
        for x in (i, j):
            if x not in cache:
                cache[x] = np.unique(_shingles(texts[x], words))
        a, b = cache[i], cache[j]
        inter = np.intersect1d(a, b, assume_unique=True).size
        return inter / (a.size + b.size - inter)

    out = []
    if cand:
        pi, pj = np.array(cand).T
        estimate = np.concatenate([(sig[pi[k:k + 65536]] == sig[pj[k:k + 65536]]).mean(axis=1)
                                   for k in range(0, len(pi), 65536)])
        keep = estimate >= threshold - 0.2 - _EPS  # cheap filter; the exact Jaccard decides
        for i, j in zip(pi[keep].tolist(), pj[keep].tolist()):
            jac = jaccard(i, j)
            if jac >= threshold:
                out.append((i, j, round(float(jac), 4)))
    if large:
        out += _link_large_buckets(sig, large, out, jaccard, threshold)
    return sorted(out)


def _link_large_buckets(sig: np.ndarray, buckets: list[list[int]], found: list[tuple[int, int, float]],
                        jaccard, threshold: float) -> list[tuple[int, int, float]]:
    """Confirmed pairs that connect the members of large LSH buckets (a campaign's variants): every
    pair's MinHash estimate, then, most similar first, the exact Jaccard of a pair only while it
    would join two groups not yet linked (a spanning forest: the groups are what the leakage rule
    reads). A chain and a star left most pairs unchecked (27 of 128 training variants of one
    campaign kept a test twin); confirming every pair above the estimate took 720,000 checks for
    1,200 variants. Pairs inside one linked group are not listed (the audit says so)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j, _ in found:
        parent[find(i)] = find(j)
    out = []
    checked: set[tuple[int, int]] = set()  # a campaign recurs in up to one bucket per band
    for members in buckets:
        m = np.asarray(members)
        s = sig[m]
        comp = np.asarray([find(int(x)) for x in m])  # group of each member, kept current below
        if (comp == comp[0]).all():
            continue  # linked already (through another band's bucket)
        for a in range(0, len(m), 256):
            est = (s[a:a + 256, None, :] == s[None, :, :]).mean(axis=2)
            for r in range(len(est)):
                x = a + r
                # about two standard errors of the estimate below the threshold; other groups only
                cand = np.flatnonzero((est[r] >= threshold - 0.1 - _EPS) & (comp != comp[x]))
                for c in cand[np.argsort(-est[r, cand], kind="stable")]:
                    pair = (min(int(m[x]), int(m[c])), max(int(m[x]), int(m[c])))
                    if comp[c] == comp[x] or pair in checked:
                        continue
                    checked.add(pair)
                    jac = jaccard(int(m[x]), int(m[c]))
                    if jac >= threshold:
                        gx, gc = find(int(m[x])), find(int(m[c]))
                        parent[gx] = gc
                        comp[comp == comp[x]] = comp[c]
                        out.append((*pair, round(float(jac), 4)))
    return out


# ---------------------------------------------------------------- audit


def _example(rows: Sequence[Row], i: int, j: int, **extra: Any) -> dict[str, Any]:
    return {"ids": [rows[i].id, rows[j].id], "domains": [rows[i].domain, rows[j].domain], **extra}


def _first_pair(members: list[int], rows: Sequence[Row], same_domain: bool) -> tuple[int, int] | None:
    for a_pos, a in enumerate(members):
        for b in members[a_pos + 1:]:
            if (rows[a].domain == rows[b].domain) == same_domain:
                return a, b
    return None


def _is_test(row: Row, test_ids: set) -> bool:
    return row.id in test_ids or (row.domain, row.id) in test_ids


def duplicate_structure(rows: Sequence[Row]) -> tuple[list[list[int]], list[tuple[int, int, float]]]:
    """Exact copies (one node per distinct normalised text: the row indices holding it) and the
    confirmed near-duplicate pairs between nodes."""
    norms: list[str] = []
    node_members: list[list[int]] = []
    node_of: dict[str, int] = {}
    for i, r in enumerate(rows):
        key = normalise_text(r.text)
        k = node_of.get(key)
        if k is None:
            node_of[key] = k = len(norms)
            norms.append(key)
            node_members.append([])
        node_members[k].append(i)
    return node_members, near_duplicate_pairs(norms)


def duplicate_group_of(n_rows: int, structure: tuple) -> list[int]:
    """Per row index, its group: the copies of one email and its near-duplicates, linked through
    each other (a campaign's variants), share a number (the split keeps a group on one side)."""
    nodes, near = structure
    group = list(range(len(nodes)))
    for members in _near_groups(len(nodes), near):
        for k in members:
            group[k] = members[0]
    out = [0] * n_rows
    for k, members in enumerate(nodes):
        for i in members:
            out[i] = group[k]
    return out


def audit(rows: Sequence[Row], reports: Iterable[SourceReport | dict], test_ids: set | None = None,
          train_ids: set | None = None, structure: tuple | None = None) -> dict:
    """The audit.json contract: sources, domains, duplicates, leakage.

    `test_ids` holds held-out row ids (plain ids, or (domain, id) tuples when ids repeat
    across domains); without it, leakage reports only the cross-domain risk. `train_ids`, when
    given, is the training pool: rows in neither (held-out rows past `max_test_per_domain`) are
    counted as unused rather than as training rows.
    """
    rows = list(rows)
    feats = np.array([_row_style(r.text) for r in rows], dtype=np.float64).reshape(len(rows), 7)
    html = np.array([bool(r.meta.get("had_html")) for r in rows], dtype=np.float64)
    subj = np.array([bool(r.subject) for r in rows], dtype=np.float64)
    aside = np.array([bool(r.meta.get("plain_set_aside")) for r in rows], dtype=np.float64)

    def style_of(mask: np.ndarray) -> dict[str, float]:
        return _style(feats[mask], html[mask], subj[mask], aside[mask])

    sources = []
    source_of = np.array([str(r.meta.get("source", "")) for r in rows], dtype=object)
    for rep in reports:
        d = rep.to_dict() if isinstance(rep, SourceReport) else dict(rep)
        mask = source_of == d["path"]
        if not mask.any():
            mask = np.array([r.domain == d["domain"] for r in rows], dtype=bool)
        sources.append({**d, "style": style_of(mask)})

    domain_arr = np.array([r.domain for r in rows], dtype=object)
    labels = np.array([r.label for r in rows], dtype=np.int64)
    domains = {}
    for dom in dict.fromkeys(r.domain for r in rows):
        mask = domain_arr == dom
        n_phish = int((labels[mask] == 1).sum())
        n = int(mask.sum())
        domains[dom] = {
            "n": n,
            "label_counts": {LABEL_NAMES[1]: n_phish, LABEL_NAMES[0]: n - n_phish},
            "phishing_share": round(n_phish / n, 4) if n else 0.0,
            "style": style_of(mask),
        }

    # exact duplicates (one node per distinct normalised text) and near-duplicates between nodes;
    # `structure`: duplicate_structure(rows), when the caller computed it already (the split)
    node_members, near = structure if structure is not None else duplicate_structure(rows)
    duplicates, cross_nodes = _exact_summary(rows, node_members)
    duplicates["near"] = _near_summary(rows, node_members, near)
    leakage = _leakage(rows, node_members, near, cross_nodes, test_ids, train_ids)
    return {"n_rows": len(rows), "sources": sources, "domains": domains,
            "duplicates": duplicates, "leakage": leakage}


def _exact_summary(rows: Sequence[Row], nodes: list[list[int]]) -> tuple[dict, list[int]]:
    within_groups: Counter = Counter()
    within_extra: Counter = Counter()
    cross_groups = cross_rows = conflict_groups = conflict_rows = 0
    pairs: Counter = Counter()
    within_ex, cross_ex, conflict_ex = [], [], []
    cross_nodes = []
    for k, members in enumerate(nodes):
        if len(members) < 2:
            continue
        doms = Counter(rows[i].domain for i in members)
        for dom, c in doms.items():
            if c > 1:
                within_groups[dom] += 1
                within_extra[dom] += c - 1
        if len(doms) > 1:
            cross_nodes.append(k)
            cross_groups += 1
            cross_rows += len(members)
            names = sorted(doms)
            pairs.update((a, b) for x, a in enumerate(names) for b in names[x + 1:])
        for ex, same in ((within_ex, True), (cross_ex, False)):
            p = _first_pair(members, rows, same) if len(ex) < MAX_EXAMPLES else None
            if p:
                ex.append(_example(rows, *p))
        if len({rows[i].label for i in members}) > 1:
            conflict_groups += 1
            conflict_rows += len(members)
            if len(conflict_ex) < MAX_EXAMPLES:
                a = members[0]
                b = next(i for i in members if rows[i].label != rows[a].label)
                conflict_ex.append(_example(rows, a, b))
    exact = {
        "within_domain": {"groups": sum(within_groups.values()), "extra_rows": sum(within_extra.values()),
                          "extra_rows_by_domain": dict(within_extra), "examples": within_ex},
        "cross_domain": {"groups": cross_groups, "rows": cross_rows,
                         "domain_pairs": [{"domains": [a, b], "groups": n} for (a, b), n in sorted(pairs.items())],
                         "examples": cross_ex},
        "conflicting_labels": {"groups": conflict_groups, "rows": conflict_rows, "examples": conflict_ex},
    }
    return {"normalisation": "lowercase, whitespace collapsed", "exact": exact}, cross_nodes


def _near_summary(rows: Sequence[Row], nodes: list[list[int]], near: list[tuple[int, int, float]]) -> dict:
    within = cross = conflicts = 0
    examples, conflict_ex = [], []
    involved: set[int] = set()
    for a, b, jac in near:
        da = {rows[i].domain for i in nodes[a]}
        db = {rows[i].domain for i in nodes[b]}
        within += bool(da & db)
        cross += len(da | db) > 1
        involved.update(nodes[a])
        involved.update(nodes[b])
        if len(examples) < MAX_EXAMPLES:
            examples.append(_example(rows, nodes[a][0], nodes[b][0], jaccard=jac))
        # a near-copy labelled otherwise (a receipt filed as phishing): only exact copies were counted
        ia = next((i for i in nodes[a] if rows[i].label != rows[nodes[b][0]].label), None)
        if ia is not None:
            conflicts += 1
            if len(conflict_ex) < MAX_EXAMPLES:
                conflict_ex.append(_example(rows, ia, nodes[b][0], jaccard=jac))
    groups = len(_near_groups(len(nodes), near))
    return {
        "threshold": NEAR_THRESHOLD,
        "method": f"MinHash ({NUM_PERM} permutations, seed {SEED}) over word {SHINGLE_WORDS}-shingles, "
                  f"LSH {BANDS} bands x {BAND_ROWS} rows, confirmed by exact Jaccard",
        "note": "pairs are confirmed LSH candidates; a large cluster is linked, not enumerated, "
                "so groups and rows_involved are the counts to compare",
        "pairs": len(near),
        "within_domain_pairs": int(within),
        "cross_domain_pairs": int(cross),
        "groups": groups,
        "rows_involved": len(involved),
        "examples": examples,
        "conflicting_labels": {"pairs": conflicts, "examples": conflict_ex},
    }


def _near_groups(n_nodes: int, near: list[tuple[int, int, float]]) -> list[list[int]]:
    """Connected components (of two or more nodes) of the near-duplicate pairs: union-find."""
    parent = list(range(n_nodes))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, _ in near:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in sorted({k for a, b, _ in near for k in (a, b)}):
        groups.setdefault(find(x), []).append(x)
    return [g for g in groups.values() if len(g) > 1]


def _leakage(rows: Sequence[Row], nodes: list[list[int]], near: list[tuple[int, int, float]],
             cross_nodes: list[int], test_ids: set | None, train_ids: set | None = None) -> dict:
    # cross-domain: a held-out domain's email that also sits in a training domain
    risk: set[int] = set()
    for k in cross_nodes:
        risk.update(nodes[k])
    near_cross = 0
    for a, b, _ in near:
        if len({rows[i].domain for i in nodes[a] + nodes[b]}) > 1:
            near_cross += 1
            risk.update(nodes[a] + nodes[b])
    out: dict[str, Any] = {
        "cross_domain": {
            "exact_groups": len(cross_nodes),
            "near_pairs": near_cross,
            "rows_at_risk": len(risk),
            "note": "rows duplicated across domains leak between a held-out domain and its training domains",
        },
        "test_ids_given": test_ids is not None,
    }
    if test_ids is None:
        return out
    test_ids = set(test_ids)
    is_test = [_is_test(r, test_ids) for r in rows]
    exact_leak: set[int] = set()
    near_leak: set[int] = set()
    near_links: set[tuple[str, str]] = set()  # (train id, test id): what the split must drop from training
    examples = []
    for members in nodes:
        train = [i for i in members if not is_test[i]]
        test = [i for i in members if is_test[i]]
        if train and test:
            exact_leak.update(test)
            if len(examples) < MAX_EXAMPLES:
                examples.append(_example(rows, train[0], test[0], kind="exact"))
    for a, b, jac in near:
        for x, y in ((a, b), (b, a)):
            train = [i for i in nodes[x] if not is_test[i]]
            test = [i for i in nodes[y] if is_test[i] and i not in exact_leak]
            if train and test:
                near_leak.update(test)
                near_links.update((rows[t].id, rows[u].id) for t in train for u in test)
                if len(examples) < MAX_EXAMPLES:
                    examples.append(_example(rows, train[0], test[0], kind="near", jaccard=jac))
    # A campaign is one group however its variants were linked: large LSH buckets are checked as a
    # chain and a star, not every pair, and two variants can each be near a third and not each
    # other. Direct pairs alone left 27 of 128 training variants of a 300-email campaign with a
    # test twin at Jaccard >= 0.8; the group's training rows are linked to its first test row.
    linked = {t for t, _ in near_links}
    for members in _near_groups(len(nodes), near):
        rows_in = [i for k in members for i in nodes[k]]
        test = sorted(i for i in rows_in if is_test[i] and i not in exact_leak)
        train = [i for i in rows_in if not is_test[i] and rows[i].id not in linked]
        if train and test:
            near_leak.update(test)
            near_links.update((rows[t].id, rows[test[0]].id) for t in train)
    leaked = sorted({rows[i].id for i in exact_leak | near_leak})
    # rows outside the test set are the training pool unless the pool is given (held-out rows past
    # max_test_per_domain are in neither: unused)
    pool = None if train_ids is None else set(train_ids)
    n_train = int(len(rows) - sum(is_test)) if pool is None else sum(_is_test(r, pool) for r in rows)
    out["train_test"] = {
        "train_rows": n_train,
        "test_rows": int(sum(is_test)),
        "unused_rows": int(len(rows) - sum(is_test) - n_train),
        "exact_test_rows": len(exact_leak),
        "near_test_rows": len(near_leak),
        "leaked_test_ids": leaked,
        "near_pairs": [list(p) for p in sorted(near_links)],
        "examples": examples,
    }
    return out


def _pairs(n: int) -> str:
    return _count(n, "pair")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def duplicates_line(audit_dict: dict) -> str:
    """One console line of what audit.json holds on copies and leakage (`data audit` printed only the
    row counts, and the copies it had found were only in the file)."""
    d = audit_dict.get("duplicates") or {}
    ex, near = d.get("exact") or {}, d.get("near") or {}
    within, across = ex.get("within_domain") or {}, ex.get("cross_domain") or {}
    conflict = ex.get("conflicting_labels") or {}
    leak = (audit_dict.get("leakage") or {}).get("cross_domain") or {}
    parts = [f"exact copies: {_count(within.get('extra_rows', 0), 'extra row')} within domains, "
             f"{_count(across.get('rows', 0), 'row')} across domains",
             f"{_count(conflict.get('groups', 0), 'group')} with conflicting labels",
             f"near-copies (Jaccard >= {near.get('threshold', NEAR_THRESHOLD)}): {_count(near.get('groups', 0), 'group')} of "
             f"{_count(near.get('rows_involved', 0), 'row')}, {_pairs(near.get('cross_domain_pairs', 0))} across domains, "
             f"{_pairs((near.get('conflicting_labels') or {}).get('pairs', 0))} with conflicting labels",
             f"rows at risk of leaking between domains: {leak.get('rows_at_risk', 0)}"]
    return "duplicates: " + "; ".join(parts) + " (details in audit.json)"


def write_audit(path: str | os.PathLike, audit_dict: dict) -> Path:
    """Write audit.json (atomically: a half-written file never looks finished)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(audit_dict, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
