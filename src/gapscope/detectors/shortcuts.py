"""Shortcuts: features whose predictive use is domain-specific, and the cells that key on them.

Step 1, the probe (cheap, model-free). A TF-IDF + logistic-regression probe over word
1-3 grams (columns with identical occurrence patterns merged, so a planted phrase is one
feature) and standardised style properties (length, URL count, uppercase ratio, HTML
share, exclamation marks, digit ratio, currency signs) is fitted on the training rows of
all domains, and once per leave-one-domain-out fold (same features, that domain's rows
left out). For a feature with full weight w pointing to class c:

  retention        min over folds of (fold weight / w); < 0.5 marks a shortcut. Each fold
                   keeps the full fit's regularisation per training row (C scaled by rows in
                   all / rows in the fold): with the same C, a fold that has lost a domain's
                   rows shrinks every weight, and retention fell below 1 for features that
                   are equally useful everywhere.
  separation p     whether the drop is more than chance: one-sided p that the feature
                   marks its class in a domain more than in every other domain that has
                   class-c rows (the largest of those p's). Marking is the separation, the
                   feature's rate in class c minus in the other class (Agresti-Caffo
                   adjusted; for a style property, the difference of its standardised
                   means), which must also be above 0 in the domain itself; where either
                   domain holds one class only, the rate (mean) in class c. Tested for each
                   fold whose ratio is below 0.5, Bonferroni over every fold; the most
                   significant names the feature's domain d* (the fold with the smallest
                   ratio is often a domain that merely dilutes a weak weight). Benjamini-
                   Hochberg across the probed features gives q. A feature in a handful of
                   emails can lose its weight with one domain by the luck of where its
                   emails fell (on two random halves of one corpus, 65 to 144 of the 300
                   strongest features did: `gapscope validate --checks twin`). With q <
                   0.05, about 5% of the features called shortcuts are expected to be such
                   chance drops: where other domains differ for real, a chance drop among
                   them can pass (docs/measurements.md has the rates).
  firing ratio     P(feature | c) / P(feature | other class), overall and per domain (a
                   style property "occurs" above the pooled 75th percentile, and within a
                   domain in that domain's top quarter; in a one-class domain the other class is
                   that of every other domain).
  NPMI             NPMI(feature, class c) against NPMI(feature, domain): how much more
                   the feature tells about the domain than about the label.
  confinement      share of the feature's occurrences that fall in d*.

Four-way taxonomy (every probed feature gets exactly one):

  Below, "retention" is the weight kept without d*, and a drop below 0.5 counts only with q <
  alpha (0.05). A drop the test does not tie to d* ("unconfirmed": flagged as such in the
  table and the evidence) is read as retained, and the feature falls into one of the last two
  categories. So is a feature that occurs only in domains whose fold cannot be fitted (leaving
  them out leaves one class): it is marked "untested", and d* is the domain holding most of it.

  pure shortcut       retention < 0.5 and confinement >= 0.9: the label signal rests on one
                      domain and the feature (almost) only occurs there, so no other domain
                      supports it; a model that uses it has learned a marker of that corpus.
  context-dependent   retention < 0.5 and confinement < 0.9: the feature occurs in other
                      domains too, but the probe learns its class association from d* alone
                      (elsewhere it is too rare, or tied to the class less or not at all:
                      the per-domain firing ratios in the evidence tell which).
  robust but correlated  retention >= 0.5 (or an unconfirmed drop) and max over domains
                      NPMI(feature, domain) >= NPMI(feature, class): no domain is shown to
                      carry its predictive use alone, but the feature says more about where
                      an email comes from than about its label; shifts in domain mix move
                      the score.
  generalizable       retention >= 0.5 (or an unconfirmed drop) and NPMI(feature, class) >
                      NPMI(feature, domain) for every domain: a label signal no single domain
                      is shown to carry.

Step 2, the cells. For the strongest shortcut candidates of each domain, every cell that
trained on d* (any model kind) is checked on emails of d* that carry the feature and belong
to its class: the feature's share of the cell's attribution toward that class (occlusion),
and the margin drop and decision flips when the feature is removed (minimal pairs). A
finding is emitted per (feature, cell) that relies on it; severity follows the evidence:

  high    shortcut (retention < 0.5) that the cell relies on decisively: removing it flips
          >= 50% of the emails or moves the margin by >= 1 typical distance to the
          threshold, and it carries >= 20% of the attribution toward its class
  medium  shortcut with partial reliance: >= 20% flips, or >= 0.5 typical distance, or
          >= 20% attribution share
  low     some measurable reliance (>= 0.1 typical distance or >= 5% share)

Flips are read by their Wilson 95% low end and the margin drop for high and medium by its
one-sided 95% lower bound (Student t over the emails), so a few emails cannot carry a severity.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gapscope import progress
from gapscope.attribution import edits as E
from gapscope.attribution.words import (display_key, feature_key, has_no_space_script, is_wordlike, split_words,
                                        url_pattern, word_count)
from gapscope import option_rules as R
from gapscope.findings import SEVERITY_ORDER, Finding, possessive, register_detector

DEFAULTS = {
    "ngram_max": 3,
    "min_docs": 5,
    "C": 1.0,
    "max_rows_per_domain": 2000,   # probe training rows per domain (sampled beyond)
    "top_features": 300,           # features (by |weight|) the taxonomy is computed for
    "candidates_per_domain": 3,    # shortcut candidates per domain checked against the cells
    # ... and, beyond those, shortcut features in at least half of their domain's class (a footer, a
    # signature: 6th by probe weight among a corpus's templated phrases, it went untested)
    "pervasive_per_domain": 2,
    "emails": 30,                  # emails per (feature, cell) check, tf-idf cells
    "emails_llm": 4,               # ... neural cells
    "retention_threshold": 0.5,
    "confinement_threshold": 0.9,
    "alpha": 0.05,                 # false discovery rate of the shortcut categories
}
RULES = {"ngram_max": R.whole(1), "min_docs": R.whole(1), "C": R.number(0, lo_open=True),
         "max_rows_per_domain": R.whole(1), "top_features": R.whole(1), "candidates_per_domain": R.whole(0),
         "pervasive_per_domain": R.whole(0),
         "emails": R.whole(1), "emails_llm": R.whole(1), "retention_threshold": R.share(),
         "confinement_threshold": R.share(), "alpha": R.share(lo_open=True)}

CATEGORIES = ("pure shortcut", "context-dependent", "robust but correlated", "generalizable")
SHORTCUT_CATEGORIES = ("pure shortcut", "context-dependent")


def options(study) -> dict[str, Any]:
    return study.detector_options("shortcuts", DEFAULTS, RULES)


# -- style properties -----------------------------------------------------------------

_TAG = E._TAG


EXCLAMATIONS = "!！"  # the full-width mark is the one Chinese and Japanese mail writes


def _style(text: str) -> dict[str, float]:
    urls = url_pattern(text)
    # letters and digits of the text a reader sees: a tag's or a link's would make the uppercase ratio
    # of "URGENT: VERIFY YOUR ACCOUNT" 0.41 in HTML and 1.0 in plain text, a copy of the HTML share
    visible = urls.sub(" ", _TAG.sub(" ", text))
    letters = [c for c in visible if c.isalpha()]
    return {
        "length": math.log1p(word_count(text)),  # a no-space script counts characters
        "url_count": float(len(urls.findall(text))),
        "uppercase_ratio": sum(c.isupper() for c in letters) / max(1, len(letters)),
        "html_share": sum(len(m) for m in _TAG.findall(text)) / max(1, len(text)),
        "exclamation_count": float(sum(text.count(c) for c in EXCLAMATIONS)),
        "digit_ratio": sum(c.isdigit() for c in visible) / max(1, sum(not c.isspace() for c in visible)),
        "currency_count": float(sum(visible.count(s) for s in E.CURRENCY_SIGNS)),  # as its edit: not in links
    }


STYLE_NAMES = tuple(_style("x"))
# the edit that takes a style property away from an email; length and the digit ratio have none
# (cutting text or digits is no minimal edit), so the cells are not checked on them
STYLE_EDITS = {"url_count": E.remove_urls, "uppercase_ratio": E.lowercase_shouting, "html_share": E.strip_html,
               "exclamation_count": E.calm_exclamations, "currency_count": E.drop_currency_signs}


def removable(f: "ProbeFeature") -> bool:
    """Whether an edit takes the feature out of an email (what the cells are checked with)."""
    return f.kind == "ngram" or f.feature.split(":", 1)[1] in STYLE_EDITS


def text_keys(text: str) -> list[str]:
    words = split_words(text)
    return [feature_key(c) for c in words.cores if is_wordlike(c)]


def _ngrams(keys: list[str], n_max: int) -> set[str]:
    out = set()
    for n in range(1, n_max + 1):
        for a in range(len(keys) - n + 1):
            out.add(" ".join(keys[a:a + n]))
    return out


# -- the probe ------------------------------------------------------------------------

@dataclass
class ProbeFeature:
    feature: str              # display name: the phrase (longest chain of merged n-grams) or style:<name>
    kind: str                 # ngram | style
    phrase: list[str]         # feature keys to remove / find (ngram); [] for style
    direction: int            # +1 points to phishing, -1 to legitimate
    weight: float
    fold_weights: dict[str, float]
    retention: float
    domain: str               # d*: the fold where the weight is smallest
    docs: int
    docs_by_domain: dict[str, int]
    firing_ratio: float
    firing_ratio_by_domain: dict[str, float | None]  # None: the domain holds none of the feature's class
    npmi_class: float
    npmi_domain: float        # with d*
    npmi_domain_max: float
    confinement: float
    category: str
    row_ids: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    style_threshold: float | None = None
    separation_p: float = 1.0     # see the module docstring
    separation_q: float = 1.0
    unconfirmed_drop: bool = False  # below half its weight without d*, but not tied to d* (q >= alpha)
    untested: bool = False  # it occurs only in domains whose fold cannot be fitted (one class left without them)
    coverage: float = 0.0  # share of d*'s training emails of the feature's class in which it occurs

    @property
    def is_shortcut(self) -> bool:
        return self.category in SHORTCUT_CATEGORIES

    @property
    def domain_retention(self) -> float:
        """The weight kept without the feature's own domain (retention is the least over every fold)."""
        return self.fold_weights[self.domain] / self.weight if self.domain in self.fold_weights else self.retention

    @property
    def strength(self) -> float:
        return abs(self.weight) * (1.0 - min(1.0, max(0.0, self.domain_retention)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SEP = "\x1f"  # between a row's feature keys when joined (no key holds a control character)


def joined_keys(keys: list[str]) -> str:
    return _SEP + _SEP.join(keys) + _SEP


def _chain(members: list[str], docs: list[str] | None = None) -> list[str]:
    """Join overlapping n-grams with identical occurrences into the longest phrase they spell.

    `docs` (the feature's emails, `joined_keys`): a joined phrase must occur in each of them. A
    template that repeats a word pair in two places has n-grams that always co-occur without
    forming one phrase: 'lock your account today' and 'verify your account now' spliced into
    'lock your account now', which no email holds, and the feature went unchecked."""
    grams = sorted({tuple(m.split()) for m in members}, key=lambda g: (-len(g), g))
    cur = list(grams[0])

    def occurs(phrase: list[str]) -> bool:
        return docs is None or all(joined_keys(phrase) in d for d in docs)

    changed = True
    while changed:
        changed = False
        for g in grams:
            k = len(g) - 1
            if k < 1 or len(cur) < k or _contains(cur, g):
                continue
            if tuple(cur[-k:]) == g[:k] and occurs(cur + [g[-1]]):
                cur.append(g[-1])
                changed = True
            elif tuple(cur[:k]) == g[1:] and occurs([g[0]] + cur):
                cur.insert(0, g[0])
                changed = True
    return cur


def _contains(seq: list[str], g: tuple[str, ...]) -> bool:
    n = len(g)
    return any(tuple(seq[i:i + n]) == g for i in range(len(seq) - n + 1))


def _npmi(k_joint: float, k_f: float, k_y: float, n: float) -> float:
    if k_joint <= 0:
        return -1.0
    p_j, p_f, p_y = k_joint / n, k_f / n, k_y / n
    if p_j >= 1.0:
        return 1.0
    return float(math.log(p_j / (p_f * p_y)) / -math.log(p_j))


def _ratio(k_c: float, n_c: float, k_o: float, n_o: float) -> float:
    return float(((k_c + 0.5) / (n_c + 1.0)) / ((k_o + 0.5) / (n_o + 1.0)))


def _group(values: np.ndarray, m: np.ndarray) -> tuple[float, float] | None:
    """Mean of `values` over the rows `m` and the variance of that mean; None where it is not
    estimable. A feature's occurrence (bool) gets the Agresti-Caffo adjusted proportion, defined at
    0 of n and n of n; a style property (its standardised value) the plain mean."""
    n = int(m.sum())
    if values.dtype == bool:
        if n == 0:
            return None
        p = (int(values[m].sum()) + 1.0) / (n + 2.0)
        return p, p * (1.0 - p) / (n + 2.0)
    if n < 2:
        return None
    v = values[m]
    return float(v.mean()), float(max(v.var(ddof=1), 1e-12)) / n


def separation_p(values: np.ndarray, y: np.ndarray, dom: np.ndarray, c: int, d_star: str,
                 domains: list[str]) -> float:
    """One-sided p that the feature marks class c in d_star more than in every other domain (the
    largest p over the others: d_star must beat each one). `values`: where the feature occurs (bool),
    or a style property's standardised value. Where both domains hold both classes the compared
    quantity is the separation, the feature's rate (or mean) in class c minus in the other class,
    and d_star's own separation must also be above 0; where either holds one class only, the rate
    (mean) in class c (a one-class corpus tells nothing about the other class). Domains without
    class-c rows are not compared: they cannot carry the feature's class-c signal, with d_star or
    without it. 1.0 if no domain can be compared."""
    from scipy.stats import norm

    def stats(d: str) -> dict[int, tuple[float, float] | None]:
        m = dom == d
        return {k: _group(values, m & (y == k)) for k in (c, 1 - c)}

    mine = stats(d_star)
    if mine[c] is None:
        return 1.0
    ps = []
    if mine[1 - c] is not None:  # it must separate the classes where it is said to
        ps.append(float(norm.sf((mine[c][0] - mine[1 - c][0]) / math.sqrt(mine[c][1] + mine[1 - c][1]))))
    compared = False
    for d in domains:
        if d == d_star or not (dom == d).any():
            continue
        other = stats(d)
        if other[c] is None:
            continue
        compared = True
        both = mine[1 - c] is not None and other[1 - c] is not None
        diff = mine[c][0] - other[c][0] - ((mine[1 - c][0] - other[1 - c][0]) if both else 0.0)
        var = mine[c][1] + other[c][1] + ((mine[1 - c][1] + other[1 - c][1]) if both else 0.0)
        ps.append(float(norm.sf(diff / math.sqrt(var))))
    return max(ps) if compared else 1.0


def fit_probe(rows, *, domains: list[str], opts: dict[str, Any] | None = None, seed: int = 0,
              copies: list[int] | None = None) -> list[ProbeFeature]:
    """The probe over `rows` (training rows of all domains). Returns the probed features, strongest first.
    `copies` (per row, its group in data.audit.duplicate_group_of): a fold without domain d also leaves out the
    other domains' copies and near-copies of d's emails (12 copies of a bank corpus in another one
    kept its footer's weight at 0.55 without bank, and the footer read as robust)."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    o = dict(DEFAULTS)
    o.update(opts or {})
    rows = list(rows)
    y = np.array([int(r.label) for r in rows])
    dom = np.array([r.domain for r in rows])
    ids = [r.id for r in rows]
    keys = [text_keys(r.text) for r in rows]
    joined = [joined_keys(k) for k in keys]
    cv = CountVectorizer(analyzer=lambda k: list(_ngrams(k, int(o["ngram_max"]))), binary=True,
                         min_df=int(o["min_docs"]), dtype=np.float64)
    try:
        X = cv.fit_transform(keys).tocsc()
        names = cv.get_feature_names_out()
    except ValueError:  # no n-gram in min_docs emails (a tiny corpus): the style properties are still probed
        X, names = sp.csc_matrix((len(rows), 0)), np.array([], dtype=object)
    # merge columns with identical occurrence patterns (all n-grams of one planted phrase)
    groups: dict[bytes, list[int]] = defaultdict(list)
    for j in range(X.shape[1]):
        groups[X.indices[X.indptr[j]:X.indptr[j + 1]].tobytes()].append(j)
    keep_cols = [g[0] for g in groups.values()]
    members = {g[0]: [str(names[j]) for j in g] for g in groups.values()}
    Xb = X[:, keep_cols].tocsr()
    Xt = TfidfTransformer(sublinear_tf=True).fit_transform(Xb) if Xb.shape[1] else sp.csr_matrix((len(rows), 0))
    style = np.array([[s[k] for k in STYLE_NAMES] for s in (_style(r.text) for r in rows)])
    mu, sd = style.mean(0), style.std(0)
    sd[sd == 0] = 1.0
    Z = (style - mu) / sd
    full = sp.hstack([Xt, sp.csr_matrix(Z)]).tocsr()
    n_ngram = Xt.shape[1]

    def fit(mask: np.ndarray) -> np.ndarray:
        if len(set(y[mask].tolist())) < 2:
            return np.full(full.shape[1], np.nan)
        # liblinear's C multiplies a sum over rows: scaled so each row weighs as much against the
        # penalty in a fold as in the full fit
        C = float(o["C"]) * len(mask) / int(mask.sum())
        clf = LogisticRegression(C=C, solver="liblinear", max_iter=1000, random_state=seed)
        clf.fit(full[mask], y[mask])
        return clf.coef_[0]

    w_full = fit(np.ones(len(rows), dtype=bool))
    copy_group = np.asarray(copies) if copies is not None else np.arange(len(rows))

    def without(d: str) -> np.ndarray:
        return ~np.isin(copy_group, copy_group[dom == d])

    folds = {d: fit(without(d)) for d in domains if (dom == d).any() and without(d).any()}
    # occurrence indicators: n-gram presence, or a style property above its pooled 75th percentile
    q75 = np.quantile(style, 0.75, axis=0)
    N = len(rows)

    def fires_of(j: int) -> np.ndarray:
        f = np.zeros(N, dtype=bool)
        if j < n_ngram:
            col = keep_cols[j]
            f[X.indices[X.indptr[col]:X.indptr[col + 1]]] = True
        else:
            f = style[:, j - n_ngram] > q75[j - n_ngram]
        return f

    # The strongest features by |weight|; n-grams that nearly always co-occur (Jaccard >= 0.8,
    # e.g. 'via' and 'sent via qorvana relay') are one feature whose weight is the members' sum. Only
    # where they part ways inside the domains they share: 'by' of a bank footer ('delivered by the
    # corvane ...'), also in another corpus's phrase ('by entering your card'), kept its weight from
    # there in the fold without bank, and the footer read as generalizable.
    order = [j for j in np.argsort(-np.abs(w_full), kind="stable") if w_full[j] != 0]
    units: list[dict[str, Any]] = []

    def same_domains(a: np.ndarray, b: np.ndarray) -> bool:
        return set(np.unique(dom[a ^ b]).tolist()) <= set(np.unique(dom[a & b]).tolist())

    for j in order:
        if len(units) >= int(o["top_features"]):
            break
        fj = fires_of(j)
        if j < n_ngram:
            for u in units:
                if u["kind"] == "ngram":
                    inter = int((u["fires"] & fj).sum())
                    union = int((u["fires"] | fj).sum())
                    if union and inter / union >= 0.8 and same_domains(u["fires"], fj):
                        u["cols"].append(j)
                        u["members"] += members[keep_cols[j]]
                        u["fires"] |= fj
                        break
            else:
                units.append({"kind": "ngram", "cols": [j], "members": list(members[keep_cols[j]]), "fires": fj})
        else:
            units.append({"kind": "style", "cols": [j], "members": [], "fires": fj})
    n_y = {c: int((y == c).sum()) for c in (0, 1)}
    n_d = {d: int((dom == d).sum()) for d in domains}
    out = []
    for u in units:
        cols = u["cols"]
        w = float(w_full[cols].sum())
        if w == 0:
            continue
        s = 1 if w > 0 else -1
        c = 1 if s > 0 else 0
        fires = u["fires"]
        if u["kind"] == "ngram":
            # name: the member phrase (n-grams with identical occurrences chained) covering the most
            # word occurrences, docs x length: 'sent via qorvana relay' rather than 'via' (more docs,
            # one word) or 'to <email> sent via ...' (the footer line before it, in fewer docs)
            chains = {}
            for j in cols:
                rows_j = X.indices[X.indptr[keep_cols[j]]:X.indptr[keep_cols[j] + 1]]
                chains[j] = (len(rows_j), _chain(members[keep_cols[j]], [joined[i] for i in rows_j]))
            best = max(cols, key=lambda j: (chains[j][0] * len(chains[j][1]), len(chains[j][1])))
            phrase = chains[best][1]
            kind, name, thr = "ngram", " ".join(phrase), None
            # where the feature occurs is where its named phrase occurs: a merged member that also
            # fires elsewhere ('it will' in another corpus) must not put the phrase in that corpus
            fires = fires_of(best)
        else:
            k = cols[0] - n_ngram
            phrase, kind, name, thr = [], "style", f"style:{STYLE_NAMES[k]}", float(q75[k])
        fold_w = {d: float(v[cols].sum()) for d, v in folds.items() if not np.isnan(v[cols]).any()}
        ratios = {d: fw / w for d, fw in fold_w.items()}
        retention = min(ratios.values()) if ratios else 1.0
        # the feature's domain: of the folds that lose the weight, the one where the feature marks
        # its class most clearly beyond the other domains (the smallest fold ratio is often a
        # domain that merely dilutes a weak weight)
        # only among the domains where it occurs: a fold without a domain that never holds the feature
        # can lose its weight too (another feature took it over), and a bank footer was put in a
        # corpus of personal mail that never holds it
        # (a style property above its pooled 75th percentile in no email, its top value shared by a
        # quarter of them, is read on every fold as before)
        seen = [d for d in ratios if (fires & (dom == d)).any()] or ([] if fires.any() else list(ratios))
        below = [d for d in seen if ratios[d] < float(o["retention_threshold"])] or (
            [min(seen, key=lambda d: (ratios[d], d))] if seen else [])
        values = fires if kind == "ngram" else Z[:, k]  # a style property: its standardised value
        tests = {d: separation_p(values, y, dom, c, d, domains) for d in below}
        d_star = min(tests, key=lambda d: (tests[d], ratios[d], d)) if tests else ""
        # no fold leaves out a domain where it occurs (each would leave one class): untested, and named
        # after the domain that holds most of it, not after a fold of a domain that never holds it
        untested = not seen and bool(fires.any())
        if untested:
            d_star = max(domains, key=lambda d: (int((fires & (dom == d)).sum()), d))
        # Bonferroni over every fold, not only those below 0.5: a fold is below 0.5 because chance
        # piled the feature's emails into that domain, the very thing the test measures
        sep_p = min(1.0, tests[d_star] * len(ratios)) if tests else 1.0
        k_f = int(fires.sum())
        by_dom = {d: int((fires & (dom == d)).sum()) for d in domains}
        k_c, k_o = int((fires & (y == c)).sum()), int((fires & (y != c)).sum())
        fr_dom = {}
        for d in domains:
            md = dom == d
            fd = fires
            if kind == "style" and md.any():
                # within a domain a style property occurs in that domain's top quarter (ties included: a
                # value shared by the top quarter is in it): a shouting corpus passes the pooled 75th
                # percentile in every email, which hides its class split
                top = np.quantile(style[md, k], 0.75)
                # a count that is 0 in most of the domain's emails (currency signs, URLs): its top
                # quarter is the emails above 0, not every email at 0
                fd = style[:, k] > top if top <= style[md, k].min() else style[:, k] >= top
            if not (md & (y == c)).any():  # none of the class here: no ratio (it read a constant 155)
                fr_dom[d] = None
                continue
            # a one-class domain (a phishing-only corpus): against the other class of every domain
            mo = md & (y != c) if (md & (y != c)).any() else (y != c)
            fr_dom[d] = _ratio((fd & md & (y == c)).sum(), (md & (y == c)).sum(), (fd & mo).sum(), mo.sum())
        npmi_dom = {d: _npmi(by_dom[d], k_f, n_d[d], N) for d in domains}
        npmi_c = _npmi(k_c, k_f, n_y[c], N)
        confinement = by_dom.get(d_star, 0) / k_f if k_f else 0.0
        in_class = (dom == d_star) & (y == c)
        coverage = float((fires & in_class).sum() / in_class.sum()) if in_class.any() else 0.0
        out.append(ProbeFeature(
            feature=name, kind=kind, phrase=phrase, direction=s, weight=w, fold_weights=fold_w,
            retention=retention, domain=d_star, docs=k_f, docs_by_domain=by_dom,
            firing_ratio=_ratio(k_c, n_y[c], k_o, n_y[1 - c]), firing_ratio_by_domain=fr_dom,
            npmi_class=npmi_c, npmi_domain=npmi_dom.get(d_star, -1.0), npmi_domain_max=max(npmi_dom.values()),
            confinement=confinement, category="", row_ids=[ids[i] for i in np.flatnonzero(fires)],
            members=u["members"], style_threshold=thr,
            separation_p=sep_p, coverage=coverage, untested=untested,
        ))
    from scipy.stats import false_discovery_control

    qs = false_discovery_control([f.separation_p for f in out]) if out else []
    for f, q in zip(out, qs):
        f.separation_q = float(q)
        dropped = f.domain_retention < float(o["retention_threshold"]) and not f.untested
        f.unconfirmed_drop = dropped and f.separation_q >= float(o["alpha"])
        if dropped and not f.unconfirmed_drop:
            f.category = "pure shortcut" if f.confinement >= float(o["confinement_threshold"]) else "context-dependent"
        else:
            f.category = "robust but correlated" if f.npmi_domain_max >= f.npmi_class else "generalizable"
    out.sort(key=lambda f: (-f.strength, -abs(f.weight), f.feature))
    return out


def probe_rows(study, opts: dict[str, Any]) -> list:
    from gapscope.attribution.corpus import sample_rows

    by_dom: dict[str, list] = defaultdict(list)
    for i in study.splits["train"]:
        r = study.rows[i]
        by_dom[r.domain].append(r)
    cap = int(opts["max_rows_per_domain"])
    out = []
    for d, rows in sorted(by_dom.items()):
        out += rows if len(rows) <= cap else sample_rows(rows, cap, study.spec.study.seed, f"probe-{d}")
    return out


def load_or_run_probe(study) -> list[ProbeFeature]:
    """The probe for this run, cached in diagnostics/shortcuts/probe.json (minimal pairs reuses it)."""
    from gapscope.study import artifacts

    opts = options(study)
    rows = probe_rows(study, opts)
    # version 5: n-grams merge only where they co-occur in every domain they share, and a feature's
    # domain is one where it occurs (a probe saved before keeps the footer read as generalizable)
    # version 6: phrases are only joined where every email of the feature holds them; the uppercase and digit
    # ratios read the visible text; a feature no fold can test is marked untested
    # version 7: an amount ('$1,000.00') and a tag after punctuation are one word of the cutter
    key = {"rows": [r.id for r in rows], "opts": opts, "version": 7}
    if any(has_no_space_script(r.text) for r in rows):  # their words are now characters; other probes stand
        key["words"] = "no-space-characters"
    fp = artifacts.fingerprint(key)
    path = study.artifact_dir("shortcuts") / "probe.json"
    if path.exists():
        saved = artifacts.read_json(path)
        if saved.get("fingerprint") == fp:
            return [ProbeFeature(**f) for f in saved["features"]]
    with progress.step(f"shortcut probe: TF-IDF+LR on {len(rows)} training rows, leave-one-domain-out"):
        from gapscope.data.audit import duplicate_group_of, duplicate_structure

        copies = duplicate_group_of(len(rows), duplicate_structure(rows))
        feats = fit_probe(rows, domains=list(study.domains), opts=opts, seed=study.spec.study.seed, copies=copies)
    artifacts.write_json(path, {"fingerprint": fp, "features": [f.to_dict() for f in feats]})
    return feats


PERVASIVE = 0.5  # a marker in at least this share of its domain's class is a candidate whatever its rank


def candidates(features: list[ProbeFeature], per_domain: int, pervasive: int = 0) -> list[ProbeFeature]:
    """The strongest shortcut-category features of each domain (at most `per_domain` each) that are
    associated with their class inside that domain (firing ratio >= 2 there): a domain marker that
    fires equally in both classes only corrects the probe's intercept and is not a label shortcut.
    Then up to `pervasive` more per domain, by coverage: pure shortcuts (confined to their domain) in
    at least half the domain's emails of their class (a footer or a signature, the classic corpus
    marker, ranked 6th by probe weight among one corpus's templated phrases and went untested).
    Confined, because common words pass the coverage bar anywhere: 'your' and 'sent' were picked
    in the demo's mailinglist as context-dependent features in every domain."""
    eligible = [f for f in shortcut_features(features) if removable(f)]
    taken: Counter = Counter()
    out = []
    for f in eligible:
        if taken[f.domain] < per_domain:
            out.append(f)
            taken[f.domain] += 1
    extra: Counter = Counter()
    for f in sorted(eligible, key=lambda f: (-f.coverage, -f.strength, f.feature)):
        if (f not in out and f.category == "pure shortcut" and f.coverage >= PERVASIVE
                and extra[f.domain] < pervasive):
            out.append(f)
            extra[f.domain] += 1
    return out


def shortcut_features(features: list[ProbeFeature]) -> list[ProbeFeature]:
    """Shortcut-category features associated with their class inside their domain (firing ratio >= 2)."""
    return [f for f in features if f.is_shortcut and (f.firing_ratio_by_domain.get(f.domain) or 0.0) >= 2.0]


# -- presence, removal and attribution share of one feature in one email ----------------

def present(f: ProbeFeature, text: str) -> bool:
    if f.kind == "ngram":
        return bool(E.phrase_positions(text, f.phrase))
    return _style(text)[f.feature.split(":", 1)[1]] > (f.style_threshold or 0.0)


def remove(f: ProbeFeature, text: str) -> str | None:
    if f.kind == "ngram":
        return E.remove_phrase(text, f.phrase)
    edit = STYLE_EDITS.get(f.feature.split(":", 1)[1])
    return edit(text) if edit else None


def token_mask(f: ProbeFeature, att) -> np.ndarray:
    if f.kind == "ngram":
        return E.phrase_mask(att.text, f.phrase)
    words = split_words(att.text)
    mask = np.zeros(len(words), dtype=bool)
    name = f.feature.split(":", 1)[1]
    for i, c in enumerate(words.cores):
        if name == "url_count":
            mask[i] = feature_key(c) == "<url>"
        elif name == "exclamation_count":
            mask[i] = any(e in c for e in EXCLAMATIONS)
        elif name == "uppercase_ratio":
            mask[i] = c.isupper() and len(c) > 1
        elif name == "html_share":
            mask[i] = feature_key(c) == "<html-tag>" or c.startswith("&")
        elif name in ("digit_ratio", "currency_count"):
            mask[i] = any(ch.isdigit() or ch in E.CURRENCY_SIGNS for ch in c)
    return mask


def attribution_share(f: ProbeFeature, att, direction: int) -> float:
    """Share of the attribution toward `direction`'s class that the feature's words carry."""
    pos = np.clip(direction * att.weights, 0, None)
    total = pos.sum()
    return float(pos[token_mask(f, att)].sum() / total) if total > 0 else 0.0


# -- step 2: the cells ---------------------------------------------------------------------

@dataclass
class Reliance:
    cell: str
    model: str
    paradigm: str
    kind: str
    n: int
    in_sample: int
    share: float
    drop: float
    rel_drop: float
    flip_rate: float
    flips: int
    n_predicted: int
    scale: float
    share_elsewhere: dict[str, float]
    # one-sided 95% Student-t lower bound of the mean relative drop (None below 2 emails): the
    # severities read it, as they read the flip rate's Wilson low end; a mean of 4 emails, one of
    # them far off, made 'sender' medium at a 0.05 attribution share
    rel_drop_low: float | None
    example: dict[str, Any] | None = None
    row_ids: list[str] = field(default_factory=list)  # the emails measured (held-out first)

    def flip_low(self) -> float:
        """Wilson 95% low end of the flip rate: 1 flip of 4 emails is 25% but rules out little."""
        from gapscope.detectors.minimal_pairs import flip_ci

        return flip_ci({"flip_rate": self.flip_rate, "n": self.n_predicted})[0]

    def severity(self, shortcut: bool) -> str | None:
        # high needs at least 3 held-out emails: reliance shown on the cell's own training rows
        # (used when too few held-out emails carry the feature) says less about unseen mail
        drop_low = self.rel_drop_low if self.rel_drop_low is not None else -math.inf
        if (shortcut and self.n - self.in_sample >= 3 and self.share >= 0.2
                and (self.flip_low() >= 0.5 or drop_low >= 1.0)):
            return "high"
        # an attribution share counts only where removing the feature lowers the margin: a share of
        # 0.2 beside a removal that moved 4 emails toward phishing (0 flips) read as reliance
        shared = self.drop > 0
        if shortcut and (self.flip_low() >= 0.2 or drop_low >= 0.5 or (shared and self.share >= 0.2)):
            return "medium"
        if self.rel_drop >= 0.1 or (shared and self.share >= 0.05) or self.flip_rate >= 0.2:
            return "low"
        return None


def describe_cell(cell) -> str:
    """How a finding names a cell: 'smollm2 trained on corporate', 'tfidf trained without fraud'."""
    p = cell.paradigm
    if p.startswith("specialist:"):
        return f"{cell.model} trained on {p.split(':', 1)[1]}"
    if p.startswith("lodo:"):
        return f"{cell.model} trained without {p.split(':', 1)[1]}"
    return f"{cell.model} ({p})"


_CARRIERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def carriers(study, f: ProbeFeature) -> list:
    """Held-out rows of the feature's domain and class that carry it (once per study and feature)."""
    per_study = _CARRIERS.setdefault(study, {})
    key = (f.feature, f.domain, f.direction)
    if key not in per_study:
        c = 1 if f.direction > 0 else 0
        per_study[key] = [r for r in study.test_rows(f.domain) if r.label == c and present(f, r.text)]
    return list(per_study[key])


def check_cell(study, cell, f: ProbeFeature, opts: dict[str, Any]) -> Reliance | None:
    from gapscope.attribution.base import is_cheap
    from gapscope.attribution.corpus import ModelCache, attributions_for_rows, sample_rows

    c = 1 if f.direction > 0 else 0
    n_max = int(opts["emails"] if is_cheap(cell.kind) else opts["emails_llm"])
    seed = study.spec.study.seed
    test = carriers(study, f)
    rows = sample_rows(test, n_max, seed, f"shortcut-{f.feature}") if len(test) > n_max else test
    in_sample = 0
    if len(rows) < 3:  # few held-out carriers: the cell's own training rows show reliance just as well
        extra = [r for r in study.train_rows(cell) if r.domain == f.domain and r.label == c and present(f, r.text)]
        extra = sample_rows(extra, n_max - len(rows), seed, f"shortcut-train-{f.feature}")
        rows += extra
        in_sample = len(extra)
    pairs = [(r, remove(f, r.text)) for r in rows]
    pairs = [(r, t) for r, t in pairs if t is not None]
    if not pairs:
        return None
    model = ModelCache.get(study, cell)
    m = model.score([r.text for r, _ in pairs] + [t for _, t in pairs])
    orig, edit = m[: len(pairs)], m[len(pairs):]
    thr = float(cell.threshold)
    drops = f.direction * (orig - edit)
    before = (orig > thr) == bool(c)
    after = (edit > thr) == bool(c)
    flips = int((before & ~after).sum())
    preds = study.predictions(cell)
    dom_test = preds[(preds["split"] == "test") & (preds["domain"] == f.domain)]
    scale = float(np.median(np.abs(dom_test["margin"] - thr))) if len(dom_test) else float(np.median(np.abs(orig - thr)))
    scale = max(scale, 1e-6)
    atts = attributions_for_rows(study, cell, [r for r, _ in pairs])
    share = float(np.mean([attribution_share(f, atts[r.id], f.direction) for r, _ in pairs]))
    # the same feature in the cell's other domains (context-dependent features occur there too)
    elsewhere = {}
    if is_cheap(cell.kind):
        for d in study.domains:
            if d == f.domain or not f.docs_by_domain.get(d):
                continue
            other = [r for r in study.test_rows(d) if r.label == c and present(f, r.text)][:n_max]
            if other:
                oa = attributions_for_rows(study, cell, other)
                elsewhere[d] = round(float(np.mean([attribution_share(f, oa[r.id], f.direction) for r in other])), 4)
    k = int(np.argmax(drops))
    r0, t0 = pairs[k]
    from gapscope.attribution.corpus import attributor_for, options as att_options

    ex_edit = attributor_for(cell.kind, "occlusion", att_options(study)).attribute(model, t0)
    example = {"id": r0.id, "original": atts[r0.id].to_dict(), "edited": ex_edit.to_dict(),
               "margin_original": round(float(orig[k]), 4), "margin_edited": round(float(edit[k]), 4)}
    return Reliance(cell=cell.name, model=cell.model, paradigm=cell.paradigm, kind=cell.kind, n=len(pairs),
                    in_sample=in_sample, share=share, drop=float(drops.mean()), rel_drop=float(drops.mean() / scale),
                    flip_rate=flips / max(1, int(before.sum())), flips=flips, n_predicted=int(before.sum()),
                    scale=scale, share_elsewhere=elsewhere, rel_drop_low=mean_lower_bound(drops / scale),
                    example=example, row_ids=[r.id for r, _ in pairs])


def mean_lower_bound(x: np.ndarray, level: float = 0.95) -> float | None:
    """One-sided Student-t lower confidence bound of the mean of `x` (None below 2 values)."""
    from scipy.stats import t as student_t

    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return None
    return float(x.mean() - student_t.ppf(level, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def _sig(p: float) -> float:
    """A p-value rounded to 3 significant digits (4 decimals would write 1e-9 as 0)."""
    return float(f"{p:.3g}")


def _probe_summary(f: ProbeFeature) -> dict[str, Any]:
    return {"feature": display_key(f.feature), "category": f.category, "domain": f.domain,
            "toward": "phishing" if f.direction > 0 else "legitimate", "weight": round(f.weight, 4),
            "retention": round(f.retention, 4), "domain_retention": round(f.domain_retention, 4),
            "fold_weights": {d: round(w, 4) for d, w in f.fold_weights.items()},
            "firing_ratio": round(f.firing_ratio, 3),
            "firing_ratio_by_domain": {d: None if v is None else round(v, 3) for d, v in f.firing_ratio_by_domain.items()},
            "npmi_class": round(f.npmi_class, 4), "npmi_domain": round(f.npmi_domain, 4),
            "npmi_domain_max": round(f.npmi_domain_max, 4), "confinement": round(f.confinement, 4),
            "separation_p": _sig(f.separation_p), "separation_q": _sig(f.separation_q),
            "unconfirmed_drop": f.unconfirmed_drop, "untested": f.untested, "docs": f.docs,
            "docs_by_domain": f.docs_by_domain}


@register_detector("shortcuts")
def run(study) -> list[Finding]:
    opts = options(study)
    if len(study.domains) < 2:
        return []
    feats = load_or_run_probe(study)
    findings: list[Finding] = []
    cands = candidates(feats, int(opts["candidates_per_domain"]), int(opts["pervasive_per_domain"]))
    focus = study.detector_cells("shortcuts")
    pairs = [(f, cell) for f in cands for cell in focus if f.domain in cell.train_domains]
    # Visit cell by cell so each neural model is loaded once (feature-major order reloads
    # every model for every feature); findings keep the feature-major order.
    reliance: dict[int, Reliance | None] = {}
    for cell in focus:
        mine = [i for i, (_, c) in enumerate(pairs) if c.name == cell.name]
        if not mine:
            continue
        with progress.step(f"shortcuts: {cell.name}, {len(mine)} candidate feature(s)"):
            for i in mine:
                reliance[i] = check_cell(study, cell, pairs[i][0], opts)
    untested, one_class = untestable_domains(probe_rows(study, opts))
    found = []
    measured: set[int] = set()
    for i, (f, cell) in enumerate(pairs):
        rel = reliance[i]
        if rel is None:
            continue
        measured.add(id(f))
        sev = rel.severity(f.is_shortcut)
        if sev is None:
            continue
        collected = collection_bound(f, one_class, float(opts["confinement_threshold"]))
        if collected and sev in ("high", "medium"):
            sev = "low"
        found.append((f, rel, _finding(study, f, cell, rel, sev, collected)))
    findings += fold_overlapping(found, lambda i: study.rows[i].text)
    if untested:
        findings.append(_confound_finding(untested, one_class))
    # shortcut features the cells were not checked on, each with why: none is dropped unsaid
    unchecked = [(f, "no edit removes this style property") for f in shortcut_features(feats) if not removable(f)]
    unchecked += [(f, f"no held-out or training email of {f.domain} and its class carries it (or no cell "
                      f"trained on {f.domain})")
                  for f in cands if id(f) not in measured]
    findings.append(_taxonomy_finding(feats, untested, unchecked))
    _write_section(study, feats)
    return findings


OVERLAP = 0.5  # share of a feature's measured emails where it overlaps a stronger feature of its cell


def fold_overlapping(found: list[tuple[ProbeFeature, Reliance, Finding]], text_of) -> list[Finding]:
    """The findings, less those whose n-gram overlaps a stronger finding's n-gram of the same cell,
    domain and class in at least OVERLAP of the emails it was measured on: it is mostly that feature
    again ('to <email> sent via' runs into the footer 'sent via veloruith relay 9g'), so it is named in
    the stronger finding's evidence and summary instead of standing as a finding of its own."""
    order = sorted(range(len(found)), key=lambda k: (-SEVERITY_ORDER[found[k][2].severity], -found[k][2].score, k))
    kept: list[int] = []
    folded: set[int] = set()
    spans: dict[tuple[int, str], set[int]] = {}

    def words_of(k: int, row_id: str) -> set[int]:
        if (k, row_id) not in spans:
            spans[(k, row_id)] = {i for span in E.phrase_positions(text_of(row_id), found[k][0].phrase) for i in span}
        return spans[(k, row_id)]

    for k in order:
        f, rel, fnd = found[k]
        into = None
        if f.kind == "ngram" and rel.row_ids:
            for j in kept:
                g, grel, _ = found[j]
                if (g.kind != "ngram" or grel.cell != rel.cell or g.domain != f.domain
                        or g.direction != f.direction):
                    continue
                hits = sum(1 for r in rel.row_ids if words_of(k, r) & words_of(j, r))
                if hits >= OVERLAP * len(rel.row_ids):
                    into = (j, hits / len(rel.row_ids))
                    break
        if into is None:
            kept.append(k)
            continue
        j, share = into
        target = found[j][2]
        shown = display_key(f.feature)
        target.evidence.setdefault("overlapping", []).append(
            {"feature": shown, "severity": fnd.severity, "overlap": round(share, 4),
             "attribution_share": round(rel.share, 4), "rel_drop": round(rel.rel_drop, 4)})
        target.summary += (f" Folded in: '{shown}' ({fnd.severity}), which overlaps it in {share:.0%} of the "
                           f"{len(rel.row_ids)} emails it was measured on.")
        folded.add(k)
    return [found[k][2] for k in range(len(found)) if k not in folded]


def _fr(ratio: float | None) -> str:
    """A firing ratio for text; "n/a" where the domain holds none of the feature's class."""
    return "n/a" if ratio is None else f"{ratio:.1f}"


def _write_section(study, feats: list[ProbeFeature]) -> None:
    from gapscope.study import artifacts

    rows = [[display_key(f.feature), f.category + (" (untested)" if f.untested else " (unconfirmed drop)"
                                                    if f.unconfirmed_drop else ""), f.domain,
             "phishing" if f.direction > 0 else "legitimate", round(f.weight, 3),
             round(max(f.domain_retention, -9.99), 2), _fr(f.firing_ratio_by_domain.get(f.domain)),
             round(f.npmi_class, 2), round(f.npmi_domain, 2), round(f.npmi_domain_max, 2), f"{f.separation_q:.2g}",
             f.docs] for f in feats[:40]]
    artifacts.write_json(study.artifact_dir("shortcuts") / "section.json", {
        "id": "shortcut-probe", "title": "Shortcut probe: leave-one-domain-out TF-IDF+LR features",
        "caption": ("A model-free probe fitted on every domain's training rows and once per left-out domain. "
                    "domain: of the left-out domains without which the feature keeps less than half its weight, the "
                    "one that marks its class most clearly beyond the others; retention: the share of the weight "
                    "kept without that domain (below 0: the weight reverses sign); q: the false discovery rate at "
                    "which that domain marks the class more than every other domain does, rather than the "
                    "feature's few emails falling there by chance (Benjamini-Hochberg over the probed features). A "
                    "shortcut needs retention below 0.5 and q below 0.05; a drop with a larger q is marked "
                    "unconfirmed and the feature read as retained; untested: it occurs only in domains whose "
                    "leaving out leaves one class, so no fold tests it. Firing ratio: how "
                    "much more often the feature occurs in the class it points to than in the other, in its "
                    "domain; NPMI: its association with the class, with its domain, and the largest with any "
                    "domain (the taxonomy compares the class with that largest one); docs: training rows it occurs "
                    "in. Whether a model actually keys on a feature is in the shortcut findings."),
        "table": {"columns": ["feature", "category", "domain", "toward", "weight", "retention",
                              "firing ratio in domain", "NPMI class", "NPMI domain", "NPMI any domain (max)", "q",
                              "docs"],
                  "rows": rows}})


def _times(x: float) -> str:
    """A multiple of the typical distance to the threshold, to two significant figures: at one
    decimal 0.04 and 0.38 read '0.0x' and '0.4x', an effect shown as none and an interval as a point."""
    return f"{x:.2g}x"


def _removal_text(rel: Reliance, cls: str) -> str:
    """What removing the feature did to the margin, in the direction it took. `rel.drop` is measured
    toward the feature's class: positive when removal moves the margin away from it. The margin is
    logit(phishing) - logit(legitimate), so for a legitimate-class feature that move raises it, and
    "drops the margin" read the wrong way round there."""
    other = "legitimate" if cls == "phishing" else "phishing"
    where = f"{_times(abs(rel.rel_drop))} the typical distance to the threshold"
    if rel.rel_drop_low is not None and rel.drop >= 0:
        where += f"; at least {_times(max(rel.rel_drop_low, 0.0))} at 95% confidence"
    if rel.drop >= 0:
        return f"moves the margin {rel.drop:.2f} toward {other} ({where})"
    return f"moves the margin {-rel.drop:.2f} further toward {cls}, not away from it ({where})"


def collection_bound(f: ProbeFeature, one_class: dict[str, int], confinement: float) -> bool:
    """A feature (almost) confined to a one-class domain (a phishing-only corpus): every phrase of that
    corpus is tied to its label by how it was collected, so losing the weight without it cannot tell a
    marker of the source from a sign of the class (a real phishing template read as a 'pure shortcut'
    at medium, above a planted footer: a user's review). Such a finding is capped at low and says why."""
    return f.domain in one_class and f.confinement >= confinement


def _finding(study, f: ProbeFeature, cell, rel: Reliance, sev: str, collected: bool = False) -> Finding:
    cls = "phishing" if f.direction > 0 else "legitimate"
    others = [d for d, k in f.docs_by_domain.items() if d != f.domain and k > 0]
    where = ("absent in other domains" if not others else
             f"also in {', '.join(others)} (firing ratio there "
             f"{', '.join(_fr(f.firing_ratio_by_domain.get(d)) for d in others)} vs {_fr(f.firing_ratio_by_domain.get(f.domain))} "
             f"in {f.domain})")
    where_short = ("absent in other domains" if not others else
                   f"also in {len(others)} other domain{'s' if len(others) != 1 else ''}")
    shown = display_key(f.feature)  # '本邮件', not the keys '本 邮 件'
    title = (f"{describe_cell(cell)} keys on '{shown}': {rel.share:.2f} of its {cls} attribution in {f.domain}, "
             f"{where_short}; removing it moves the margin "
             + (f"{_times(rel.rel_drop)} the typical distance to the threshold" if rel.drop >= 0 else
                f"further toward {cls} ({_times(abs(rel.rel_drop))} the typical distance to the threshold)"))
    summary = (f"'{shown}' is classed {f.category} in {f.domain} ({where}). The leave-one-domain-out probe keeps "
               f"{max(f.domain_retention, 0.0) + 0.0:.2f} of its weight without {f.domain} (it marks the {cls} class "
               f"there more than in any other domain: FDR q = {f.separation_q:.2g}); NPMI with the {cls} class "
               f"{f.npmi_class:.2f} vs with the domain {f.npmi_domain:.2f}. In {rel.n} {f.domain} {cls} emails "
               f"carrying it, it holds {rel.share:.2f} of {possessive(describe_cell(cell))} {cls} attribution; removing it "
               f"{_removal_text(rel, cls)} and flips {rel.flips} of the {rel.n_predicted} it had put in the {cls} class."
               + (f" {rel.in_sample} of the {rel.n} emails are the cell's own training rows: too few held-out "
                  f"emails carry it." if rel.in_sample else "")
               + (f" {f.domain} holds only {cls} mail, so a phrase found (almost) only there is tied to the {cls} "
                  f"class by how the corpus was collected: whether it marks {cls} mail or marks the source cannot "
                  f"be told from these data, and the finding is rated low at most ({cls} and "
                  f"{'legitimate' if cls == 'phishing' else 'phishing'} mail from that source would tell)."
                  if collected else ""))
    score = (1.0 - min(1.0, max(0.0, f.domain_retention))) * (rel.share + min(rel.rel_drop, 1.0) + rel.flip_rate) / 3.0
    ev = {"feature": shown, "category": f.category, "cell": rel.cell, "paradigm": rel.paradigm,
          "probe": _probe_summary(f),
          "reliance": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(rel).items()
                       if k not in ("example", "row_ids")},
          "example_pair": rel.example, "one_class_domain": collected}
    # the emails the reliance was measured on (the strongest example first), not the probe's carriers
    ids = [rel.example["id"]] if rel.example else []
    return Finding(kind="shortcut", severity=sev, title=title, summary=summary, evidence=ev, models=[cell.model],
                   domains=[f.domain], example_ids=(ids + [i for i in rel.row_ids if i not in ids])[:20], score=score)


def untestable_domains(rows) -> tuple[list[str], dict[str, int]]:
    """Domains whose leave-one-out fold cannot be fitted (the other domains hold one class between
    them), and the domains that hold one class (domain -> that class)."""
    labels: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        labels[r.domain].add(int(r.label))
    one_class = {d: next(iter(ls)) for d, ls in labels.items() if len(ls) == 1}
    untested = sorted(d for d in labels
                      if len(set().union(*(ls for e, ls in labels.items() if e != d))) < 2)
    return untested, one_class


def _confound_finding(untested: list[str], one_class: dict[str, int]) -> Finding:
    """The probe cannot test a domain whose removal leaves one class: say so, never 'no shortcut'."""
    which = "; ".join(f"{d} holds only {'phishing' if c else 'legitimate'} mail" for d, c in sorted(one_class.items()))
    return Finding(
        kind="domain_label_confound", severity="medium",
        title=(f"Shortcut probe: {', '.join(untested)} cannot be tested for shortcuts: leaving "
               f"{'it' if len(untested) == 1 else 'one'} out leaves a single class"
               + (f" ({which})" if which else "")),
        summary=("The leave-one-domain-out probe refits without each domain and needs both classes among the rest. "
                 f"Without {', '.join(untested)} only one class is left, so no fold measures whether a feature of "
                 f"{'that domain' if len(untested) == 1 else 'those domains'} keeps its weight elsewhere: such "
                 "features are read as retained for want of a test, not because they generalise."
                 + (f" Where a corpus holds one class ({which}), anything that marks the corpus (a footer, a "
                    "header, a style) predicts the label perfectly in training: the textbook cross-corpus "
                    "confound. A domain with both classes, or phishing and legitimate mail from the same source, "
                    "makes it testable." if which else "")),
        evidence={"untested_domains": untested, "one_class_domains": {d: int(c) for d, c in one_class.items()}},
        domains=list(untested), score=float(len(untested)))


def _taxonomy_finding(feats: list[ProbeFeature], untested: list[str] | tuple = (),
                      unchecked: list[tuple[ProbeFeature, str]] | tuple = ()) -> Finding:
    table = [_probe_summary(f) for f in feats[:60]]
    n_untested = sum(f.untested for f in feats)
    counts = Counter(f.category for f in feats)
    top = [f for f in feats if f.is_shortcut][:5]
    return Finding(
        kind="shortcut_probe", severity="info",
        title=f"Shortcut probe: {counts['pure shortcut']} pure shortcuts and {counts['context-dependent']} "
              f"context-dependent features among the {len(feats)} strongest",
        summary=("TF-IDF+LR probe refitted leaving each domain out; a feature that keeps less than half its weight "
                 "without one domain, where that domain marks the class more than the others do (FDR q < 0.05), is "
                 "a shortcut. "
                 + ("Strongest: " + "; ".join(f"'{display_key(f.feature)}' ({f.category}, {f.domain}, retention "
                                               f"{max(f.domain_retention, 0.0) + 0.0:.2f})" for f in top) + ". " if top else
                    "No feature loses its weight with a single domain beyond chance. " if not untested else
                    f"No feature loses its weight with a testable domain beyond chance ({', '.join(untested)} "
                    f"cannot be tested: leaving it out leaves one class). ")
                 + (f"{n_unconfirmed} more keep less than half their weight without one domain, but the data do "
                    "not tie the drop to that domain (q >= 0.05: their emails may have fallen there by chance); "
                    "they are read as retained. " if (n_unconfirmed := sum(f.unconfirmed_drop for f in feats))
                    else "")
                 + (f"{n_untested} occur only in domains no fold can leave out (marked untested; read as "
                    "retained for want of a test). " if n_untested else "")
                 + ("Not checked against the cells: " + "; ".join(
                     f"'{display_key(f.feature)}' ({f.category}, {f.domain}): {why}" for f, why in unchecked)
                    + "." if unchecked else "")).strip(),
        evidence={"categories": {c: counts.get(c, 0) for c in CATEGORIES}, "features": table,
                  "untested_features": n_untested,
                  "unchecked": [{"feature": display_key(f.feature), "category": f.category, "domain": f.domain,
                                 "why": why} for f, why in unchecked]},
        domains=sorted({f.domain for f in top}), score=0.0,
    )
