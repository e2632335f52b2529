"""The backdoor scan: does inserting a candidate string into otherwise unchanged held-out
emails move the label margin toward the class it is tied to, beyond what random rare
words of the same length do?

For a candidate pushing toward label t, a bounded sample of held-out emails of class 1-t
gets the string appended as a final paragraph (backdoor.margins). Per email the signed
shift is (edited - unedited margin), sign chosen so positive = toward t; the flip rate
is the share of emails the cell classified as 1-t that it classifies as t after the edit.
Both get percentile bootstrap CIs over emails.

Null distribution: per direction and word-count bin (1, 2, 3-4, 5+ words), `n_null` strings
shaped like the bin's candidates (same function words, punctuation and length) whose content
words are random words that are rare in the training rows, inserted into the same emails. A
candidate written in a no-space script (Chinese, Japanese, Thai, ...) has bins of its own, counted in
characters, and nulls of rare characters of its script from the training rows (built-in Han or kana
where the rows have too few: a Chinese trigger on an English corpus) and random digits for its digits. A
candidate is significant when
  * its own effect, its mean shift less the null's mean shift (what inserting any string of that
    length does), is at least `min_relative_shift` of the margin scale (or `min_shift` margin
    units, when given), and its CI excludes 0,
  * it exceeds every null string's mean shift (the nulls are measured on the same emails,
    so this paired comparison needs no CI), and
  * its z-score against the null (mean and sd of the null shifts, the sd floored) reaches the
    one-sided Bonferroni critical value for the number of candidates tested (alpha = 0.05) of a
    prediction interval for one more null string: t with n_null - 1 degrees of freedom times
    sqrt(1 + 1/n_null), since the null's sd is estimated from n_null strings,
so ordinary effects of inserting any rare words do not count as backdoors.
Candidates are ranked by that z-score, significant ones first.

The margin scale, per direction, is the median distance from the threshold of the unedited
margins of the sampled emails that can still flip (those the cell puts on the other side; all of
them when none is): how far a typical email is from flipping. Margins differ in scale between
models (a TF-IDF logistic regression moves by tenths to a unit or two, a fine-tuned LLM by units
to tens), so a bar in margin units would be out of reach for one and lax for another; a quarter
of the way to flipping the typical email, and a null sd floor of 5% of it, mean the same for
every model.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from gapscope import option_rules as R
from gapscope.attribution.words import has_no_space_script
from gapscope.backdoor.candidates import (Candidate, ContentModel, MiningOptions, mine_families, mine_ngrams,
                                          null_like, rare_chars, rare_words, scripts_of, words)
from gapscope.backdoor.margins import as_sentence, insertion_margins
from gapscope.data.rows import Row
from gapscope.drift.stats import mean_ci
from gapscope.errors import GapscopeError

LABELS = {0: "legitimate", 1: "phishing"}
BIN_NAMES = {1: "1", 2: "2", 3: "3-4", 5: "5+"}


def length_bin(n_words: int) -> int:
    """Null strings are matched to candidates by word count in bins 1, 2, 3-4, 5+."""
    return 1 if n_words <= 1 else 2 if n_words == 2 else 3 if n_words <= 4 else 5


def null_bin(c: Candidate) -> tuple[int, bool]:
    """The null group of a candidate: its length bin, and whether it is written in a no-space script
    (its nulls are then rare characters of that script, as many as it has: a Chinese string's null
    was shaped like an English one of the same bin)."""
    return length_bin(c.n_words), has_no_space_script(c.text)


def _null_key(t: int, b: tuple[int, bool]) -> str:
    return f"toward_{LABELS[t]}_{BIN_NAMES[b[0]]}_{'characters' if b[1] else 'words'}"


@dataclass
class ScanOptions:
    n_emails: int = 32  # held-out emails per direction (bounded: the cost is emails x strings)
    n_null: int = 10  # random rare-word strings per (direction, word-count bin)
    min_relative_shift: float = 0.25  # share of the margin scale (see the module docstring)
    min_shift: float | None = None  # margin units toward the target label; replaces the relative bar
    alpha: float = 0.05
    z_crit: float | None = None  # default: one-sided Bonferroni over the candidates tested
    relative_sd_floor: float = 0.05  # lower bound on the null's sd, as a share of the margin scale
    sd_floor: float | None = None  # the same in margin units; replaces the relative floor
    n_bootstrap: int = 2000
    seed: int = 0
    mine: bool = True
    families: bool = True
    mining: MiningOptions = field(default_factory=MiningOptions)

    RULES: ClassVar[dict] = {
        "n_emails": R.whole(2), "n_null": R.whole(2), "min_relative_shift": R.number(0),
        "min_shift": R.number(0, none_ok=True), "alpha": R.number(0, 1, True, True),
        "z_crit": R.number(0, lo_open=True, none_ok=True), "relative_sd_floor": R.number(0, lo_open=True),
        "sd_floor": R.number(0, lo_open=True, none_ok=True), "n_bootstrap": R.whole(40),
        "seed": R.whole(0), "mine": R.flag(), "families": R.flag()}

    def __post_init__(self):
        R.check_fields(self, self.RULES)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "ScanOptions":
        d = dict(d or {})
        d.pop("triggers", None)
        mining_keys = {f.name for f in fields(MiningOptions)}
        mining = {k: d.pop(k) for k in list(d) if k in mining_keys}
        table = d.pop("mining", {}) or {}
        R.check_keys("backdoor options", d, {f.name for f in fields(cls)} - {"mining"} | mining_keys)
        if not isinstance(table, dict):  # `mining = 5` failed as "'int' object is not iterable"
            raise GapscopeError(f"backdoor options: mining must be a table of {', '.join(sorted(mining_keys))} "
                                f"(or give them as keys of their own), got {table!r}")
        R.check_keys("backdoor options: mining", table, MiningOptions)
        mining.update(table)
        return cls(**d, mining=MiningOptions(**mining))


@dataclass
class CandidateResult:
    text: str
    inserted: str
    origin: str
    target: int
    inductive: bool
    n: int
    mean_shift: float
    shift_ci: list[float]
    flip_rate: float | None
    flip_ci: list[float] | None
    n_flippable: int
    null_mean: float
    null_sd: float
    null_max: float
    z: float
    p_empirical: float
    significant: bool = False
    rank: int = 0
    support: dict[str, Any] = field(default_factory=dict)
    flipped_ids: list[str] = field(default_factory=list)
    other_direction: dict[str, Any] | None = None  # user strings: the weaker direction's numbers
    n_flipped: int = 0  # of the n_flippable emails
    null_min: float | None = None  # the null strings' range is null_min..null_max


@dataclass
class ScanResult:
    results: list[CandidateResult]
    nulls: dict[str, Any]
    options: ScanOptions
    n_emails: dict[str, int]
    z_crit: float
    threshold: float
    # per direction ("toward_phishing"): margin_scale, and the min_shift and sd_floor it set
    bars: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def significant(self) -> list[CandidateResult]:
        return [r for r in self.results if r.significant]

    def to_dict(self) -> dict[str, Any]:
        return {"results": [asdict(r) for r in self.results], "nulls": self.nulls, "options": asdict(self.options),
                "n_emails": self.n_emails, "z_crit": self.z_crit, "threshold": self.threshold,
                "bars": self.bars, "significant": [r.text for r in self.significant]}


def gather_candidates(train_rows: Sequence[Row], user: Sequence[str], opts: ScanOptions) -> list[Candidate]:
    cands = [Candidate(u, "user", None) for u in dict.fromkeys(s.strip() for s in user) if u]
    content = None
    if (opts.mine or opts.families) and len(train_rows) >= 10 and len({r.label for r in train_rows}) == 2:
        content = ContentModel([r.text for r in train_rows], np.array([r.label for r in train_rows]), opts.seed,
                               fit_rows=opts.mining.content_rows)
        if opts.mine:
            cands += mine_ngrams(train_rows, content, opts.mining)
        if opts.families:
            cands += mine_families(train_rows, content, opts.mining, seed=opts.seed)
    seen, out = set(), []
    for c in cands:
        key = (c.text.lower(), c.target)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _sample(rows: Sequence[Row], label: int, n: int, seed: int) -> list[Row]:
    pool = sorted((r for r in rows if r.label == label), key=lambda r: r.id)
    rng = np.random.default_rng([seed, label, 7])
    if len(pool) > n:
        pool = [pool[i] for i in sorted(rng.choice(len(pool), n, replace=False))]
    return pool


def scan(model, *, threshold: float, train_rows: Sequence[Row], heldout_rows: Sequence[Row],
         triggers: Sequence[str] = (), opts: ScanOptions | None = None, progress=None,
         candidates: Sequence[Candidate] | None = None) -> ScanResult:
    """Rank candidate triggers for one fitted model (see the module docstring). `candidates`
    replaces the gathered ones (user strings, mined strings, families): e.g. to measure a base
    model on exactly the strings its fine-tuned version reacted to."""
    from scipy.stats import t as student_t

    opts = opts or ScanOptions()
    cands = list(candidates) if candidates is not None else gather_candidates(train_rows, triggers, opts)
    exclude = {w for c in cands for w in words(c.text)}
    pool = rare_words(train_rows, exclude)
    # rare characters of the no-space scripts, only where a candidate is written in one; built-in ones of
    # its script where the rows have too few (a Chinese --trigger on an English corpus)
    scripts = {sc for c in cands for sc in scripts_of(c.text)}
    chars = rare_chars(train_rows, exclude, scripts=scripts) if scripts else None
    rng = random.Random(f"gapscope-backdoor:{opts.seed}:null")
    tests = [(c, t) for c in cands for t in ((0, 1) if c.target is None else (c.target,))]
    # a prediction bound for one more null string: the null's sd comes from n_null strings
    z_crit = opts.z_crit if opts.z_crit is not None else float(
        student_t.isf(opts.alpha / max(1, len(tests)), opts.n_null - 1) * np.sqrt(1 + 1 / opts.n_null))
    per_dir: dict[int, list[tuple[Candidate, CandidateResult]]] = {0: [], 1: []}
    nulls: dict[str, Any] = {}
    bars: dict[str, dict[str, float]] = {}
    n_emails: dict[str, int] = {}
    for t in (0, 1):
        mine = [c for c, tt in tests if tt == t]
        if not mine:
            continue
        emails = _sample(heldout_rows, 1 - t, opts.n_emails, opts.seed)
        n_emails[LABELS[1 - t]] = len(emails)
        if len(emails) < 2:
            continue
        bins = sorted({null_bin(c) for c in mine})
        null_texts = {}
        for b in bins:
            shapes = [c.text for c in mine if null_bin(c) == b]
            null_texts[b] = [null_like(shapes[i % len(shapes)], pool, rng, chars if b[1] else None)
                             for i in range(opts.n_null)]
        inserted = [as_sentence(c.text) for c in mine] + [as_sentence(s) for b in bins for s in null_texts[b]]
        if progress:
            progress(f"{len(emails)} {LABELS[1 - t]} emails x {len(inserted)} insertions")
        orig, edited = insertion_margins(model, [e.text for e in emails], inserted)
        sign = 1.0 if t == 1 else -1.0
        shift = sign * (edited - orig[:, None])
        before = (orig > threshold).astype(int)
        after = (edited > threshold).astype(int)
        flippable = before == 1 - t
        # distance to flipping, over the emails that can still flip (an email already on the
        # target's side is not "far from flipping" by how far past the threshold it sits)
        to_flip = sign * (threshold - orig)
        scale = max(float(np.median(to_flip[flippable] if flippable.any() else np.abs(to_flip))), 1e-9)
        min_shift = opts.min_shift if opts.min_shift is not None else opts.min_relative_shift * scale
        sd_floor = opts.sd_floor if opts.sd_floor is not None else opts.relative_sd_floor * scale
        bars[f"toward_{LABELS[t]}"] = {k: float(f"{v:.4g}") for k, v in
                                       (("margin_scale", scale), ("min_shift", min_shift), ("sd_floor", sd_floor))}
        col = len(mine)
        null_stats = {}
        for b in bins:
            eff = shift[:, col:col + opts.n_null].mean(axis=0)
            col += opts.n_null
            null_stats[b] = (float(eff.mean()), float(eff.std(ddof=1)) if eff.size > 1 else 0.0,
                             float(eff.max()), eff)
            nulls[_null_key(t, b)] = {
                "strings": null_texts[b], "mean_shifts": [round(float(x), 4) for x in eff],
                "mean": round(null_stats[b][0], 4), "sd": round(null_stats[b][1], 4)}
        for j, c in enumerate(mine):
            s = shift[:, j]
            ci = mean_ci(s, n_resamples=opts.n_bootstrap, seed=opts.seed + j)
            flips = (after[flippable, j] == t).astype(float)
            fci = mean_ci(flips, n_resamples=opts.n_bootstrap, seed=opts.seed + j) if flips.size else None
            mu, sd, mx, eff = null_stats[null_bin(c)]
            z = (ci.mean - mu) / max(sd, sd_floor)
            p = (1 + int(np.sum(eff >= ci.mean))) / (eff.size + 1)
            sig = ci.mean - mu >= min_shift and ci.lo > 0 and ci.mean > mx and z >= z_crit
            order = np.argsort(-s)
            flipped = [emails[i].id for i in order if flippable[i] and after[i, j] == t][:8]
            per_dir[t].append((c, CandidateResult(
                text=c.text, inserted=inserted[j], origin=c.origin, target=t, inductive=c.inductive, n=ci.n,
                mean_shift=round(ci.mean, 4), shift_ci=[round(ci.lo, 4), round(ci.hi, 4)],
                flip_rate=None if fci is None else round(fci.mean, 4),
                flip_ci=None if fci is None else [round(fci.lo, 4), round(fci.hi, 4)],
                n_flippable=int(flippable.sum()), n_flipped=int(flips.sum()), null_mean=round(mu, 4),
                null_sd=round(sd, 4), null_min=round(float(eff.min()), 4), null_max=round(mx, 4),
                z=round(float(z), 3), p_empirical=round(p, 4), significant=bool(sig),
                support=c.support, flipped_ids=flipped)))
    # User strings were tested both ways: keep the significant (else the stronger) direction,
    # note the other (each direction has its own bar, so the higher z may be the failing one).
    results: list[CandidateResult] = []
    by_cand: dict[int, list[CandidateResult]] = {}
    for t in (0, 1):
        for c, r in per_dir[t]:
            by_cand.setdefault(id(c), []).append(r)
    for c in cands:
        rs = sorted(by_cand.get(id(c), []), key=lambda r: (not r.significant, -r.z))
        if not rs:
            continue
        if len(rs) > 1:
            o = rs[1]
            rs[0].other_direction = {"target": o.target, "mean_shift": o.mean_shift, "z": o.z,
                                     "flip_rate": o.flip_rate, "significant": o.significant}
        results.append(rs[0])
    results.sort(key=lambda r: (not r.significant, -r.z, r.text))
    for i, r in enumerate(results, 1):
        r.rank = i
    return ScanResult(results, nulls, opts, n_emails, round(z_crit, 3), float(threshold), bars)
