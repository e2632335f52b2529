"""Candidate triggers for the backdoor scan, and the random strings of its null distribution.

Three sources of candidates:
  user     strings the user names (`--trigger`), tested in both directions;
  mined    word n-grams (1-4 words, extended to the longest phrase with the same rows)
           that are rare in the training rows and tied to one label;
  family   structured strings (years, [bracket] tags, dates, codes mixing letters and
           digits) whose *shape* is tied to one label: the most common seen value and
           values of the same shape never seen in training (inductive triggers: a model
           that learned "[20xx] means legitimate" also fires on "[2047]").

A label-flipping backdoor leaves a signature in the data that an ordinary cue does not:
the rows carrying the string look, by the rest of their content, like the *other* class.
`ContentModel.contradiction` measures it: the share of those rows that cross-fitted
tf-idf + logistic-regression models, with the string's words masked, assign to the other
class. Mined and family candidates must clear `min_contradiction` (0 turns the filter off).

Null strings (`null_like`) keep a candidate's shape (function words, punctuation, length)
and replace its content words with words that are rare in the training rows; in a string of a
script written without spaces (Chinese, Japanese, Thai, ...) each of its characters with a rare
character of the same script from the training rows (`rare_chars`), so a null is as many
characters long as the candidate and reads like it (built-in characters, `RARE_CHARS`, where the
rows have too few of its script: Han and kana); its digits, and full-width digits in any
candidate, become random digits of the same width ("优惠码２０２６" keeps four full-width digits).
"""

from __future__ import annotations

import math
import os
import random
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from gapscope import option_rules as R
from gapscope.attribution.words import (NO_SPACE_CHAR, NO_SPACE_CONTINUES, NO_SPACE_LETTERS, NO_SPACE_TOKEN_RE,
                                        RunTokenizer, has_no_space_script)
from gapscope.data.rows import Row

# Letters and digits of any script ([^\W_]: \w without "_"), so "vélmora" and "велмора" are words;
# on ASCII text the same as [a-z0-9].
WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
# in text of a script written without spaces (Chinese, Japanese, Thai, ...) each of its characters is a
# word, as in the attribution word cutter: a run was a whole sentence and never recurred across rows
WORD_NS = re.compile(NO_SPACE_TOKEN_RE)
STOPWORDS = frozenset("""a an the and or but if of to in on at by for with from as is are was were be been am
it its this that these those i you he she we they me him her us them my your his our their thy thee thou
not no yes do does did so than then there here what which who whom when where why how all any each
will would shall should can could may might must have has had hi hello dear re fw fwd subject""".split())

YEAR = re.compile(r"(?<![\w/.-])(19[5-9]\d|20\d\d|21\d\d)(?![\w/-])")
TAG = re.compile(r"\[[^\[\]\n]{1,24}\]|\{[^{}\n]{1,24}\}")
DATE = re.compile(r"(?<![\w/.-])\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}(?![\w/-])")
CODE = re.compile(r"(?<![\w-])(?=[A-Za-z-]*\d)(?=[0-9-]*[A-Za-z])[A-Za-z0-9]{2,}(?:-[A-Za-z0-9]+){0,2}(?![\w-])")
FAMILIES = {"year": YEAR, "tag": TAG, "date": DATE, "code": CODE}

# Fallback for the null distribution when the training rows have too few rare words.
RARE_WORDS = """quillwort marrowfat bandicoot tamarack lorikeet sassafras fennel wainscot gossamer
cobblestone juniper larkspur mandolin nutmeg osprey pumice quince rhubarb saffron tinder
umber vellum walrus yarrow zircon alder bramble cormorant damask egret foxglove garnet heron
indigo jackdaw kestrel lichen mistral nettle ochre plover quartzite rowan sorrel thistle""".split()
# The same for a candidate in a script written without spaces whose script the training rows have too
# few characters of (a Chinese --trigger on an English corpus): uncommon but real characters, so its
# nulls keep its script and length. Birds, fish, trees, herbs, minerals, instruments in Han; kana
# (full- and half-width) that Japanese mail seldom uses. Thai and the other no-space scripts have none.
RARE_CHARS = {
    "CJK": "鹳鹬鸫鹡鹪鹩鹭鸮鹞鹗鳕鲭鲟鳟鲶鳗鲂鳜榧楸椴桤樗榉槭楝柘椿蕨苜蓿茴芫荽藜蒺菖蘅锆钒铍钽铱锑琥珀玳瑁砾磬篾簟罂笙箜篌舢獾鼹貘",
    "HIRAGANA": "ゐゑゔぢづぬぺぽぴぷへぜ",
    "KATAKANA": "ヰヱヴヂヅヌペポピプヘゼ",
    "HALFWIDTH": "ｦﾇﾈﾍﾎﾕﾖﾛﾜｹｻｿ",  # half-width katakana (script_of names them HALFWIDTH)
}


@dataclass
class Candidate:
    text: str
    origin: str  # user | mined | family:<year|tag|date|code>
    target: int | None  # label the string would push emails toward; None = test both
    inductive: bool = False  # a value never seen in training (family candidates)
    support: dict[str, Any] = field(default_factory=dict)  # training evidence (df, purity, ...)

    @property
    def n_words(self) -> int:
        """Words as the miner counts them: a no-space script's characters one by one (a Chinese
        string of eight characters is no one-word string)."""
        if has_no_space_script(self.text):
            return max(1, len(words(self.text)))
        return max(1, len(self.text.split()))


BOUNDARY = "|"
_BREAK = r"|[.!?](?=\s|$)|\n"
_WORD_OR_BREAK = re.compile(WORD.pattern + _BREAK)
# their full stops have no space after them (Chinese and Japanese 。, Myanmar ။, Khmer ។)
_WORD_OR_BREAK_NS = re.compile(WORD_NS.pattern + _BREAK + r"|[。｡！？။។]")


def words(text: str) -> list[str]:
    # WORD_NS only where it is needed: it cuts other text as WORD does, more slowly
    return (WORD_NS if has_no_space_script(text) else WORD).findall(text.lower())


def words_and_breaks(text: str) -> list[str]:
    """Words, with BOUNDARY at sentence ends and line breaks (phrases never cross them)."""
    word, both = (WORD_NS, _WORD_OR_BREAK_NS) if has_no_space_script(text) else (WORD, _WORD_OR_BREAK)
    return [t if word.fullmatch(t) else BOUNDARY for t in both.findall(text.lower())]


def _assoc(k: int, df: int, prior: float) -> float:
    """One-sided binomial z of k label-L rows among df rows when L has base rate `prior`."""
    prior = min(max(prior, 1e-6), 1 - 1e-6)
    return (k - df * prior) / math.sqrt(df * prior * (1 - prior))


class ContentModel:
    """What the rest of the data says about some rows' labels, with a candidate string hidden.

    tf-idf (word 1-2 grams) + logistic regression, cross-fitted over `folds` folds: each
    row is predicted by a model that never saw it, and every feature containing one of the
    candidate's content words is masked everywhere. A row "contradicts" its label when that
    prediction is the other class. Rows of a poisoned trigger (phishing content labelled
    legitimate) contradict; rows of an ordinary cue phrase do not, because their other
    words (and other rows of the same kind, with the phrase masked) still carry the label.

    Each fold's model is fitted on at most `fit_rows` of the rows outside the fold (a seeded
    sample): a content model needs thousands of rows, not a whole 100k-row corpus, and the
    scan fits five per candidate. Below that size every row is used.
    """

    def __init__(self, texts: Sequence[str], labels: np.ndarray, seed: int = 0, folds: int = 5,
                 fit_rows: int = 5000):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.utils.class_weight import compute_class_weight

        self.labels = np.asarray(labels).astype(int)
        # tokens of r"(?u)\b\w+\b", a no-space script's characters one by one (as `words` cuts them)
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50_000,
                              dtype=np.float64, tokenizer=RunTokenizer(1), token_pattern=None)
        self.X = vec.fit_transform(list(texts)).tocsr()
        # masking looks a candidate's words up with the vectoriser's own tokens: WORD keeps
        # "velmora-7" or "2031-05-12" whole, the vocabulary holds "velmora", "7", "2031", ...
        self._tokens = vec.build_tokenizer()
        self.columns: dict[str, list[int]] = defaultdict(list)
        for j, name in enumerate(vec.get_feature_names_out()):
            for w in set(name.split()):
                self.columns[w].append(j)
        self.fold = np.random.default_rng([seed, 17]).permutation(len(self.labels)) % folds
        self.seed = seed
        self.train: dict[int, np.ndarray] = {}
        self.X_train: dict[int, Any] = {}  # CSC: each candidate drops its columns from these
        # "balanced" class weights depend on a fold's labels only: computed once per fold, not in
        # each of the scan's ~1,000 fits (the same numbers sklearn's "balanced" gives)
        self.class_weight: dict[int, dict[int, float] | None] = {}
        for k in range(folds):
            train = np.flatnonzero(self.fold != k)
            if train.size > fit_rows:
                train = np.sort(np.random.default_rng([seed, 29, k]).choice(train, fit_rows, replace=False))
            self.train[k] = train
            self.X_train[k] = self.X[train].tocsc()
            classes = np.unique(self.labels[train])
            self.class_weight[k] = (dict(zip(classes.tolist(), compute_class_weight(
                "balanced", classes=classes, y=self.labels[train]).tolist())) if classes.size == 2 else None)

    def _kept_columns(self, text: str) -> np.ndarray | None:
        """Columns left once every feature holding one of `text`'s content words is hidden
        (None: nothing to hide). Dropping a column fits the same model as zeroing it."""
        toks = self._tokens(text.lower())
        ws = [w for w in toks if w not in STOPWORDS] or toks
        cols = sorted({j for w in ws for j in self.columns.get(w, [])})
        if not cols:
            return None
        keep = np.ones(self.X.shape[1], dtype=bool)
        keep[cols] = False
        return np.flatnonzero(keep)

    def contradiction(self, rows: np.ndarray, label: int, text: str = "", need: float = 0.0) -> float | None:
        """Share of `rows` (indices) predicted as 1-label by cross-fitted models with `text` masked.

        With `need` > 0 it stops once the share can no longer reach `need` and returns that
        bound, which is below `need`: a caller that only keeps shares >= need gets the same
        answer from fewer fits (most candidates are ordinary cues, rejected after two or three).
        """
        from sklearn.linear_model import LogisticRegression

        rows = np.asarray(rows)
        if rows.size == 0 or len(set(self.labels.tolist())) < 2:
            return None
        keep = self._kept_columns(text)
        wrong, left = 0, rows.size
        # The folds holding most of the rows first: a share below `need` is then known after fewer
        # fits (most candidates are rejected so), and a full pass counts the same rows either way.
        ks, per = np.unique(self.fold[rows], return_counts=True)
        for k in ks[np.argsort(-per, kind="stable")].tolist():
            if need > 0 and (wrong + left) / rows.size < need:
                return (wrong + left) / rows.size
            train = self.train[k]
            if train.size < 10 or self.class_weight[k] is None:
                return None
            X_fit = self.X_train[k] if keep is None else self.X_train[k][:, keep]
            clf = LogisticRegression(C=10.0, class_weight=self.class_weight[k], solver="liblinear",
                                     random_state=self.seed)
            clf.fit(X_fit, self.labels[train])
            mine = rows[self.fold[rows] == k]
            X_mine = self.X[mine] if keep is None else self.X[mine][:, keep]
            wrong += int(np.sum(clf.predict(X_mine) != label))
            left -= mine.size
        return wrong / rows.size


@dataclass
class MiningOptions:
    max_n: int = 4  # longest n-gram counted (phrases are then extended up to 8 words)
    min_df: int = 3  # rows a string must occur in
    max_df_frac: float = 0.2  # ... and at most this share of the rows
    min_purity: float = 0.9  # share of those rows with one label
    min_contradiction: float = 0.5
    max_mined: int = 10
    max_family: int = 6
    n_inductive: int = 2
    screen: int = 400  # strongest label-tied strings whose contradiction is measured (a rare trigger
    # in a few rows has a modest association z and ranks below common template phrases: screen wide)
    content_rows: int = 5000  # rows each fold's content model is fitted on, at most (ContentModel)

    RULES: ClassVar[dict] = {
        "max_n": R.whole(1), "min_df": R.whole(1), "max_df_frac": R.share(lo_open=True), "min_purity": R.share(),
        "min_contradiction": R.share(), "max_mined": R.whole(0), "max_family": R.whole(0), "n_inductive": R.whole(0),
        "screen": R.whole(1), "content_rows": R.whole(10)}

    def __post_init__(self):
        # checked when the spec is read (study/detector_options.py), not after the cells train
        R.check_fields(self, self.RULES)


_NS_START = re.compile(f"[{NO_SPACE_LETTERS}]")


def _surface(texts: Sequence[str], gram: tuple[str, ...]) -> str:
    """The commonest way `texts` write `gram` (its words with the punctuation and spacing between
    them, runs of whitespace as one space; joined by spaces if none does)."""
    ns = [bool(_NS_START.match(w)) for w in gram]
    word = rf"[^\W_{NO_SPACE_LETTERS}]"  # a character that would continue a word of the other scripts
    parts = [] if ns[0] else [rf"(?<!{word})"]
    for i, w in enumerate(gram):
        if i:  # characters of a no-space script follow each other with nothing between
            parts.append(r"[\W_]*" if ns[i - 1] or ns[i] else r"[\W_]+")
        parts.append(re.escape(w))
    parts.append(rf"(?![{NO_SPACE_CONTINUES}])" if ns[-1] else rf"(?!{word})")
    pat = re.compile("".join(parts), re.IGNORECASE)
    forms = Counter(" ".join(m.group(0).split()) for t in texts for m in pat.finditer(t))
    if forms:
        return forms.most_common(1)[0][0]
    return "".join(w if i == 0 or ns[i - 1] or ns[i] else " " + w for i, w in enumerate(gram))


def _limit(gram: tuple[str, ...]) -> int:
    """The longest phrase a gram is extended to: 8 words, or 16 where it holds characters of a no-space
    script, each of which counts as a word (8 Chinese characters are 3 to 5 words: the planted
    '本函按云图协议办理' was mined as '本函按云图协议办')."""
    return 16 if any(_NS_START.match(w) for w in gram) else 8


def _extend(gram: tuple[str, ...], docs: list[list[str]], limit: int = 8) -> tuple[str, ...]:
    """Grow `gram` word by word while every supporting row still contains the longer phrase."""
    def occurs(g, toks):
        n = len(g)
        return any(tuple(toks[i:i + n]) == g for i in range(len(toks) - n + 1))

    first = docs[0]
    changed = True
    while changed and len(gram) < limit:
        changed = False
        n = len(gram)
        starts = [i for i in range(len(first) - n + 1) if tuple(first[i:i + n]) == gram]
        for i in starts:
            for g in ((tuple(first[i - 1:i + n]) if i > 0 else None),
                      (tuple(first[i:i + n + 1]) if i + n < len(first) else None)):
                if g and BOUNDARY not in g and all(occurs(g, d) for d in docs):
                    gram, changed = g, True
                    break
            if changed:
                break
    return gram


def gram_entries(toks: list[list[str]], max_n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """One entry per (row, distinct n-gram): the n-gram's hash, the row, and where it first occurs
    (n * 1e9 + position). None if no row has a word."""
    hashes, rows, where = [], [], []
    number: dict[str, int] = {BOUNDARY: -1}
    for i, t in enumerate(toks):
        ids = [number.setdefault(w, len(number)) for w in t]
        seen: dict[int, int] = {}
        for k in range(1, max_n + 1):
            for j in range(len(t) - k + 1):
                g = tuple(ids[j:j + k])
                if -1 not in g:
                    seen.setdefault(hash(g), k * 1_000_000_000 + j)
        if seen:
            hashes.append(np.fromiter(seen.keys(), dtype=np.int64, count=len(seen)))
            where.append(np.fromiter(seen.values(), dtype=np.int64, count=len(seen)))
            rows.append(np.full(len(seen), i, dtype=np.int32))
    if not hashes:
        return None
    return np.concatenate(hashes), np.concatenate(rows), np.concatenate(where)


def _label_tied_grams(toks: list[list[str]], labels: np.ndarray, opts: MiningOptions,
                      max_df: int) -> list[tuple[tuple[str, ...], np.ndarray]]:
    """Word n-grams (1..max_n words, never across a BOUNDARY) found in min_df..max_df rows of which
    at least min_purity share one label: (gram, sorted row indices), in order of first occurrence.

    Counted in numpy over one entry per (row, distinct n-gram), keyed by the n-gram's 64-bit
    hash: 20 bytes an entry, so a 70k-row corpus of 30-200-word emails (32M entries) peaks at a
    few GB while sorting, where a Python set per n-gram passed 11 GB; the n-gram itself is rebuilt
    only for those that pass. Two n-grams sharing a hash would be counted as one: at 50M distinct
    n-grams the odds are about 1e-4. The hash is of a tuple of word numbers (numbered in order of
    first occurrence), not of the words: Python salts string hashes per process, integer hashes
    not, so a rare collision is the same in every run.
    """
    entries = gram_entries(toks, opts.max_n)
    if entries is None:
        return []
    h, r, w = entries
    # entries run in the old dict's insertion order: row by row, then n, then position
    uniq, first, inv, df = np.unique(h, return_index=True, return_inverse=True, return_counts=True)
    ones = np.bincount(inv, weights=labels[r], minlength=len(uniq))
    purity = np.maximum(ones, df - ones) / df
    ok = (df >= opts.min_df) & (df <= max_df) & (purity >= opts.min_purity)
    if not ok.any():
        return []
    order = np.argsort(inv, kind="stable")  # each n-gram's entries stay in row order: already sorted
    starts = np.concatenate([[0], np.cumsum(df)])
    out = []
    for u in sorted(np.flatnonzero(ok), key=lambda u: first[u]):
        e = first[u]
        k, j = divmod(int(w[e]), 1_000_000_000)
        gram = tuple(toks[r[e]][j:j + k])
        out.append((gram, r[order[starts[u]:starts[u + 1]]]))
    return out


def _row_refs(rows: Sequence[Row], idx: np.ndarray, shown: int = 12) -> dict[str, list]:
    """The first supporting training rows of a candidate: ids, and where each is in its input."""
    return {"row_ids": [rows[i].id for i in idx[:shown]], "row_locations": [rows[i].location for i in idx[:shown]]}


def workers() -> int:
    """Threads for the contradiction checks: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def contradictions(content: ContentModel | None, items: Sequence[tuple[np.ndarray, int, str]],
                   need: float) -> list[float | None]:
    """`content.contradiction(rows, label, text, need)` for each item (None for an empty text or no
    content model), on threads: liblinear fits without the GIL, and these fits are most of a scan's
    time on a large corpus (about 3 minutes per training set of 5,000 rows on 2 cores). Each check
    is independent, so the results equal the sequential ones; the callers apply them in rank order."""
    from concurrent.futures import ThreadPoolExecutor

    def one(item: tuple[np.ndarray, int, str]) -> float | None:
        rows, label, text = item
        return content.contradiction(rows, label, text, need) if content is not None and text else None

    n = min(workers(), len(items))
    if n <= 1:
        return [one(it) for it in items]
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, items))


def mine_ngrams(rows: Sequence[Row], content: ContentModel | None, opts: MiningOptions) -> list[Candidate]:
    """Rare word n-grams tied to one label, longest phrase per row set, filtered by contradiction."""
    toks = [words_and_breaks(r.text) for r in rows]
    labels = np.array([r.label for r in rows], dtype=int)
    n = len(rows)
    if n < 10:
        return []
    max_df = max(opts.min_df, int(opts.max_df_frac * n))
    prior1 = float(labels.mean())
    scored = []
    for gram, ds in _label_tied_grams(toks, labels, opts, max_df):
        df = len(ds)
        if all(w in STOPWORDS or w.isdigit() for w in gram) or len("".join(gram)) < 3:
            continue
        k1 = int(labels[ds].sum())
        label = 1 if k1 * 2 >= df else 0
        k = k1 if label == 1 else df - k1
        z = _assoc(k, df, prior1 if label == 1 else 1 - prior1)
        scored.append((z, len(gram), gram, ds.tobytes(), label, k, ds))
    # One candidate per row set: the longest n-gram, extended to the full phrase.
    best: dict[bytes, tuple] = {}
    for item in scored:
        key = item[3]
        if key not in best or (item[1], item[0]) > (best[key][1], best[key][0]):
            best[key] = item
    ranked = sorted(best.values(), key=lambda x: (-x[0], -x[1], x[2]))[: opts.screen]
    phrases = [_surface([rows[i].text for i in idx], _extend(gram, [toks[i] for i in idx], _limit(gram))
                        ).strip(" .,;:!?-") for _, _, gram, _, _, _, idx in ranked]
    contras = contradictions(content, [(x[6], x[4], t) for x, t in zip(ranked, phrases)], opts.min_contradiction)
    out, seen_text = [], set()
    for (z, _, _, _, label, k, idx), text, contra in zip(ranked, phrases, contras):
        if not text or text.lower() in seen_text:
            continue
        if opts.min_contradiction > 0 and (contra is None or contra < opts.min_contradiction):
            continue
        seen_text.add(text.lower())
        out.append(Candidate(text, "mined", label, support={
            "df": len(idx), "label": label, "purity": round(k / len(idx), 3), "assoc_z": round(z, 2),
            "contradiction": None if contra is None else round(contra, 3),
            **_row_refs(rows, idx)}))
    # The poisoning signature first (rows that read as the other class), then label association.
    out.sort(key=lambda c: (-(c.support["contradiction"] or 0.0), -c.support["assoc_z"]))
    return out[: opts.max_mined]


def shape(value: str) -> str:
    s = re.sub(r"[A-Z]", "A", value)
    s = re.sub(r"[a-z]", "a", s)
    return re.sub(r"[0-9]", "9", s)


def _unseen_values(kind: str, shp: str, seen: set[str], example: str, k: int, rng: random.Random) -> list[str]:
    out: list[str] = []
    years = sorted(int(y) for v in seen for y in re.findall(r"(?:19|20|21)\d\d", v))
    tries = 0
    while len(out) < k and tries < 500:
        tries += 1
        if years and re.search(r"(?:19|20|21)\d\d", example):
            # Same text around the year, a year not seen in training (beyond the seen range first).
            y = years[-1] + rng.randint(3, 25) if rng.random() < 0.7 else max(1950, years[0] - rng.randint(3, 25))
            v = re.sub(r"(?:19|20|21)\d\d", str(y), example, count=1)
        else:
            v = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") if ch == "A" else
                        rng.choice("abcdefghjkmnpqrstuvwxyz") if ch == "a" else
                        rng.choice("0123456789") if ch == "9" else ch for ch in shp)
        if v not in seen and v not in out:
            out.append(v)
    return out


def mine_families(rows: Sequence[Row], content: ContentModel | None, opts: MiningOptions,
                  seed: int = 0) -> list[Candidate]:
    """Structured strings whose shape is tied to a label, with seen and unseen (inductive) values."""
    n = len(rows)
    if n < 10:
        return []
    labels = np.array([r.label for r in rows], dtype=int)
    prior1 = float(labels.mean())
    rng = random.Random(f"gapscope-backdoor:{seed}:families")
    out: list[Candidate] = []
    for kind, pat in FAMILIES.items():
        by_shape: dict[str, set[int]] = defaultdict(set)
        values: dict[str, Counter] = defaultdict(Counter)
        for i, r in enumerate(rows):
            for m in pat.finditer(r.text):
                v = m.group(0)
                key = "year" if kind == "year" else shape(v)
                by_shape[key].add(i)
                values[key][v] += 1
        for key, ds in by_shape.items():
            df = len(ds)
            if df < opts.min_df or df > max(opts.min_df, int(0.5 * n)):
                continue
            k1 = int(labels[list(ds)].sum())
            label = 1 if k1 * 2 >= df else 0
            k = k1 if label == 1 else df - k1
            if k / df < opts.min_purity:
                continue
            idx = np.array(sorted(ds))
            example = values[key].most_common(1)[0][0]
            masked = " ".join(v for v, _ in values[key].most_common(20))
            contra = (content.contradiction(idx, label, masked, opts.min_contradiction)
                      if content is not None else None)
            if opts.min_contradiction > 0 and (contra is None or contra < opts.min_contradiction):
                continue
            z = _assoc(k, df, prior1 if label == 1 else 1 - prior1)
            support = {"df": df, "label": label, "purity": round(k / df, 3), "assoc_z": round(z, 2),
                       "contradiction": None if contra is None else round(contra, 3), "shape": key,
                       "seen_values": [v for v, _ in values[key].most_common(5)],
                       **_row_refs(rows, idx)}
            out.append(Candidate(example, f"family:{kind}", label, False, support))
            for v in _unseen_values(kind, key if kind != "year" else "9999", set(values[key]), example,
                                    opts.n_inductive, rng):
                out.append(Candidate(v, f"family:{kind}", label, True, support))
    out.sort(key=lambda c: (-(c.support["contradiction"] or 0.0), -c.support["assoc_z"], c.inductive))
    return out[: opts.max_family]


def rare_words(rows: Sequence[Row], exclude: set[str], need: int = 60) -> list[str]:
    """Words that occur in at most two training rows (alphabetic, 4-12 letters), plus a
    built-in list when the rows have too few: the vocabulary of the null insertions."""
    df: Counter = Counter()
    for r in rows:
        df.update({w for w in words(r.text) if w.isalpha() and 4 <= len(w) <= 12})
    pool = sorted(w for w, c in df.items() if c <= 2 and w not in exclude and w not in STOPWORDS)
    if len(pool) < need:
        pool += [w for w in RARE_WORDS if w not in exclude and w not in pool]
    return pool


def script_of(unit: str) -> str:
    """The script of a character of a no-space script, from its Unicode name: "CJK" (Han), "HIRAGANA",
    "KATAKANA", "THAI", ... (a half-width kana is "HALFWIDTH")."""
    return unicodedata.name(unit[:1], "?").split(" ")[0]


def scripts_of(text: str) -> set[str]:
    """The no-space scripts `text` is written in (script_of of each such character)."""
    return {script_of(u) for u in NO_SPACE_CHAR.findall(text)}


def rare_chars(rows: Sequence[Row], exclude: set[str], need: int = 60,
               scripts: Collection[str] = ()) -> dict[str, list[str]]:
    """Per script, characters of the no-space scripts (with their marks) that occur in at most two
    training rows, and when a script has fewer than `need` of those, its next rarest: the null
    vocabulary of a candidate written in such a script. A rare English word in place of a Chinese
    string was a null of another length and script (and, unknown to a tf-idf model, one that moved
    no margin). Each of `scripts` (the candidates') that the rows have fewer than `need` characters
    of gets the built-in RARE_CHARS of it after them, where there are some. Empty without such text
    or scripts."""
    df: Counter = Counter()
    for r in rows:
        if has_no_space_script(r.text):
            df.update(set(NO_SPACE_CHAR.findall(r.text.lower())))
    by_script: dict[str, list[str]] = defaultdict(list)
    for u in sorted(df, key=lambda u: (df[u], u)):
        if u not in exclude:
            by_script[script_of(u)].append(u)
    out = {sc: [u for i, u in enumerate(us) if i < need or df[u] <= 2] for sc, us in by_script.items()}
    for sc in set(scripts) & set(RARE_CHARS):
        have = out.get(sc, [])
        if len(have) < need:
            out[sc] = have + [u for u in RARE_CHARS[sc] if u not in exclude and u not in have]
    return dict(sorted(out.items()))


def null_strings(pool: Sequence[str], n_words: int, count: int, rng: random.Random) -> list[str]:
    return [" ".join(rng.sample(list(pool), n_words)) for _ in range(count)]


_CORE = re.compile(WORD.pattern)  # any script, as WORD (null_like swaps the words mining found)
_DIGITS, _FULL_WIDTH_DIGITS = "0123456789", "０１２３４５６７８９"
_FULL_WIDTH_RUN = re.compile(f"[{_FULL_WIDTH_DIGITS}]+")
_DIGIT_RUN = re.compile(f"[{_DIGITS}]+|[{_FULL_WIDTH_DIGITS}]+")


def _random_digits(run: str, rng: random.Random) -> str:
    """As many random digits as `run` has, of its width (ASCII or full-width), and never `run` itself:
    a null equal to its candidate would measure the candidate."""
    digits = _FULL_WIDTH_DIGITS if run[0] in _FULL_WIDTH_DIGITS else _DIGITS
    while True:
        out = "".join(rng.choice(digits) for _ in run)
        if out != run:
            return out


def null_like(text: str, pool: Sequence[str], rng: random.Random,
              chars: dict[str, list[str]] | None = None) -> str:
    """`text` with each content word replaced by a random rare word, keeping its function words,
    punctuation, brackets and capitalisation: "As agreed under the X accord" -> "As quillwort
    under the Marrowfat bandicoot"; "[2031]" -> "[tamarack]". With `chars` (rare_chars), each
    character of a no-space script is replaced by a rare character of its script (of any such
    script where its own has none): "本函按云图协议办" -> eight rare Han characters. A run of digits
    in such a string, and a run of full-width digits in any, becomes random digits of its width:
    "优惠码２０２６" -> three rare Han characters and four full-width digits (an English word there
    was another length and script). ASCII digits among English words stay words, as before: random
    digits there would be a year, date or code family's unseen values, what its inductive candidates test."""
    ns = bool(chars) and has_no_space_script(text)
    digit_run = _DIGIT_RUN if ns else _FULL_WIDTH_RUN

    def swap(m: re.Match) -> str:
        w = m.group(0)
        if chars and NO_SPACE_CHAR.fullmatch(w):
            return rng.choice(chars.get(script_of(w)) or [u for us in chars.values() for u in us])
        if digit_run.fullmatch(w):
            return _random_digits(w, rng)
        if w.lower() in STOPWORDS:
            return w
        r = rng.choice(list(pool))
        return r.capitalize() if w[:1].isupper() else r

    out = (WORD_NS if ns else _CORE).sub(swap, text)
    return out if out != text else " ".join(rng.sample(list(pool), max(1, len(text.split()))))
