"""The cross-domain matrix: one entry per (model, paradigm cell, test domain), and its summary.

matrix.json is the contract (see DESIGN.md); matrix.csv is the same entries flattened
for spreadsheets; summary.json holds the per-cell generalisation gap.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from gapscope.eval.bootstrap import bootstrap_cis, domain_seed
from gapscope.eval.clusters import cluster_index, effective_size
from gapscope.eval.metrics import METRIC_NAMES, compute_metrics, f1_at_share
from gapscope.eval.rates import at_size


@dataclass
class MatrixEntry:
    # Contract fields (DESIGN.md): do not rename.
    model: str
    paradigm: str
    train_domains: list[str]
    test_domain: str
    in_domain: bool
    n: int
    f1: float | None
    f1_ci: list[float] | None
    precision: float | None
    recall: float | None
    auroc: float | None
    accuracy: float | None
    ece: float | None
    # Extensions.
    precision_ci: list[float] | None = None
    recall_ci: list[float] | None = None
    auroc_ci: list[float] | None = None
    accuracy_ci: list[float] | None = None
    ece_ci: list[float] | None = None
    threshold: float | None = None
    n_positive: int | None = None
    undefined: dict[str, str] = field(default_factory=dict)  # metric -> why it is not a measurement
    # where copies of one email are held out together: how many independent phishing, legitimate and
    # all rows the counts are worth (eval/clusters.py); None where every row is its own email
    n_effective: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MatrixEntry":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


COUNT_DRAWS = 20_000


def effective_counts(y, s, threshold: float, cluster: np.ndarray | None) -> dict[str, float] | None:
    """How many independent phishing, legitimate and all rows the set's recall, false-positive rate
    and accuracy are worth where copies of one email share a cluster (eval/clusters.py); None where
    every row is its own."""
    if cluster is None:
        return None
    y = np.asarray(y, dtype=np.int64)
    flag = np.asarray(s, dtype=np.float64) > threshold
    pos, neg = y == 1, y == 0
    return {"phishing": effective_size(flag[pos], cluster[pos]),
            "legitimate": effective_size(flag[neg], cluster[neg]),
            "all": effective_size(flag == (y == 1), cluster)}


def count_intervals(y, s, threshold: float, *, seed: int = 0, level: float = 0.95,
                    effective: dict[str, float] | None = None) -> dict[str, list[float] | None]:
    """95% intervals of the metrics that are ratios of confusion counts: recall, precision and F1
    from Jeffreys draws of the recall and the false-positive rate at the set's own phishing share
    (eval/rates.py), accuracy from the Jeffreys draws of its own count; each holds its estimate. A bootstrap of the rows collapses where a rate is seen at 0 or 1
    (5 of 5 right: F1 [1.00, 1.00]; one phishing email of 30, caught: the same, with a third of the
    resamples dropped for holding none) and covered 91% at 20 rows. `effective` (effective_counts):
    each class's counts are read at its effective size, copies of one email counting once."""
    y = np.asarray(y, dtype=np.int64)
    flag = np.asarray(s, dtype=np.float64) > threshold
    tp, fn = int((flag & (y == 1)).sum()), int((~flag & (y == 1)).sum())
    fp, tn = int((flag & (y == 0)).sum()), int((~flag & (y == 0)).sum())
    n_pos, n_neg = tp + fn, fp + tn
    out: dict[str, list[float] | None] = {"recall": None, "precision": None, "f1": None, "accuracy": None}
    if n_pos + n_neg == 0:
        return out
    rng = np.random.default_rng(seed)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]

    def interval(draws, point: float | None):
        lo, hi = (float(x) for x in np.percentile(draws, q))
        # a rate seen at 0 or 1 (5 of 5 right): the equal-tailed interval stops short of it;
        # extended to the estimate, as the Jeffreys interval is at the boundary
        return [lo, hi] if point is None else [min(lo, point), max(hi, point)]

    eff = effective or {}
    a, b = at_size(tp + tn, n_pos + n_neg, eff.get("all"))
    out["accuracy"] = interval(rng.beta(a + 0.5, b + 0.5, COUNT_DRAWS), (tp + tn) / (n_pos + n_neg))
    if not n_pos:
        return out  # no phishing: recall, precision and F1 are not measurements here
    share = n_pos / (n_pos + n_neg)
    a, b = at_size(tp, n_pos, eff.get("phishing"))
    r = rng.beta(a + 0.5, b + 0.5, COUNT_DRAWS)
    a, b = at_size(fp, n_neg, eff.get("legitimate"))
    f = rng.beta(a + 0.5, b + 0.5, COUNT_DRAWS) if n_neg else np.zeros(COUNT_DRAWS)
    out["recall"] = interval(r, tp / n_pos)
    if tp + fp:  # nothing flagged: precision is not a measurement (the point value is a convention)
        out["precision"] = interval(share * r / (share * r + (1 - share) * f), tp / (tp + fp))
    out["f1"] = interval(f1_at_share(r, f, share), 2 * tp / (2 * tp + fp + fn))
    return out


def evaluate_cell(model: str, paradigm: str, train_domains, threshold: float,
                  per_domain: dict[str, tuple], seed: int = 0, *,
                  n_resamples: int = 1000, groups: dict[str, Any] | None = None) -> list[MatrixEntry]:
    """Metrics with bootstrap CIs for one trained cell on every test domain.

    per_domain maps test domain -> (ids, y, s): row ids, labels, margins. `groups` maps a row id to
    its group of copies and near-copies: the intervals count a group's rows as one email's evidence
    (eval/clusters.py), and the entry records each class's effective size (`n_effective`).
    """
    train_domains = list(train_domains)
    entries = []
    for domain, (ids, y, s) in per_domain.items():
        if len(ids) != len(y):
            raise ValueError(f"{domain}: {len(ids)} ids but {len(y)} labels")
        point = compute_metrics(y, s, threshold)
        cluster = cluster_index(ids, groups)
        effective = effective_counts(y, s, threshold, cluster)
        cis = {m: ci.as_list() for m, ci in
               bootstrap_cis(y, s, threshold, n_resamples=n_resamples, seed=domain_seed(seed, domain),
                             cluster=cluster).items()}
        if n_resamples > 0:
            cis.update(count_intervals(y, s, threshold, seed=domain_seed(seed, domain), effective=effective))
        v = point.values
        entries.append(MatrixEntry(
            model=model, paradigm=paradigm, train_domains=train_domains, test_domain=domain,
            in_domain=domain in train_domains, n=point.n,
            f1=v["f1"], f1_ci=cis["f1"], precision=v["precision"], recall=v["recall"],
            auroc=v["auroc"], accuracy=v["accuracy"], ece=v["ece"],
            precision_ci=cis["precision"], recall_ci=cis["recall"],
            auroc_ci=cis["auroc"], accuracy_ci=cis["accuracy"],
            ece_ci=cis["ece"], threshold=float(threshold), n_positive=point.n_positive,
            undefined=dict(point.undefined),
            n_effective={k: round(v, 3) for k, v in effective.items()} if effective else None,
        ))
    return entries


# A cell that flags this share of a domain's emails or more is (nearly) flagging everything: its F1
# is then close to flag_all_f1(phishing share), the base rate's, not the model's skill.
FLAGS_ALL = 0.95
# An AUROC at or above this still ranks a domain's emails well: a lost F1 is then the threshold's.
RANKS_WELL = 0.75


def _bound_text(v: float) -> str:
    """An interval bound to 2 decimals, or to as many more as tell it from 0.5 (0.4997 beside
    "inverted" must not read 0.50); a bound read to 9 decimals is told apart at 9 at the latest."""
    for k in (2, 3, 4, 6):
        t = f"{v:.{k}f}"
        if (float(t) == 0.5) == (v == 0.5):
            return t
    return f"{v:.9f}"


def ranking_text(e: dict[str, Any]) -> str:
    """How a matrix entry's ranking fares where it does not rank well (AUROC below RANKS_WELL), read
    with its interval: inverted (the whole interval below 0.5: the cell scores the domain's legitimate
    mail above its phishing), no better than chance (the interval holds 0.5), or above chance but
    weaker. An entry without an interval keeps the plain reading."""
    auroc, ci = e.get("auroc"), e.get("auroc_ci")
    if auroc is None:
        return ""
    if not ci or ci[0] is None or ci[1] is None:
        return f"its ranking fails there too (AUROC {auroc:.2f})"
    # Bounds are read to 9 decimals: a percentile interpolated between two bootstrap AUROCs lands on
    # 0.5000000000000001 (93/225 and 113/225 at the 2.5% point), and float noise is not "above chance"
    ci = [round(float(v), 9) for v in ci[:2]]
    auc = f"AUROC {auroc:.2f}, 95% CI {_bound_text(ci[0])}-{_bound_text(ci[1])}"
    if ci[1] < 0.5:
        return (f"its ranking is inverted there ({auc}): it scores the domain's legitimate emails above its "
                "phishing, so what it learned points the wrong way there and no threshold can fix it")
    if ci[0] <= 0.5:
        return f"its ranking is no better than chance there ({auc})"
    return f"its ranking weakens there too ({auc}: above chance, below {RANKS_WELL})"


def flag_all_f1(share: float) -> float:
    """F1 of calling every email phishing when `share` of them are: precision share, recall 1."""
    return 2 * share / (1 + share)


def phishing_shares(entries: list[dict[str, Any]]) -> dict[str, float]:
    """Test domain -> its share of phishing emails (entries that carry their counts)."""
    return {e["test_domain"]: e["n_positive"] / e["n"] for e in entries
            if e.get("n") and e.get("n_positive") is not None}


def share_note(entries: list[dict[str, Any]]) -> str | None:
    """Where the test domains' phishing shares differ by 10 points or more, a note that F1 moves with
    them (the generalization findings read each gap at the domain's share); None otherwise."""
    shares = phishing_shares(entries)
    if not shares or max(shares.values()) - min(shares.values()) < 0.1:
        return None
    return (f"F1 as measured; the domains are {min(shares.values()):.0%} to {max(shares.values()):.0%} phishing "
            "and F1 moves with the share: the generalization findings read each gap at the domain's share")


def _f1_measured(e: MatrixEntry) -> bool:
    # F1 of a domain without phishing rows is 0 by convention; averaging it in would
    # make every such domain the "worst" regardless of the model.
    return e.f1 is not None and "f1" not in e.undefined


def summarise(entries: list[MatrixEntry] | list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Per cell (model, paradigm): mean in-domain F1, mean out-of-domain F1, gap, worst domain.

    Domains whose F1 is not a measurement are left out of the means and listed in `excluded`, and so
    are one-class domains among the cell's own where another holds both classes (as eval/gaps.py). The
    worst domain is the lowest F1 as measured, with its interval: among equal domains one is always
    lowest (six equal domains of 60 rows put the lowest 0.05 or more below in-domain in half the
    cells). `f1_losses_beyond_noise` lists the domains whose F1 loss, read at the domain's phishing
    share, the generalization detector calls beyond noise (eval/gaps.py, seeded by `seed`, so the two
    agree); None where the entries lack the counts behind them.
    """
    from gapscope.eval.gaps import MIN_LOSS, beyond_noise, compare_cell  # gaps imports this module's package

    cells: dict[tuple[str, str], list[MatrixEntry]] = {}
    for e in entries:
        e = e if isinstance(e, MatrixEntry) else MatrixEntry.from_dict(e)
        cells.setdefault((e.model, e.paradigm), []).append(e)
    out = []
    for (model, paradigm), es in cells.items():
        ok = [e for e in es if _f1_measured(e)]
        ins = [e for e in ok if e.in_domain]
        outs = [e for e in ok if not e.in_domain]
        # a phishing-only corpus in a training mix scores recall alone there (precision 1 by construction):
        # it raised the table's in-domain F1 above the findings', which leave it out (eval/gaps.py)
        one_class = [e for e in ins if e.n_positive in (0, e.n)] if any(
            e.n_positive is not None and 0 < e.n_positive < e.n for e in ins) else []
        ins = [e for e in ins if e not in one_class]
        in_f1 = float(np.mean([e.f1 for e in ins])) if ins else None
        out_f1 = float(np.mean([e.f1 for e in outs])) if outs else None
        worst = min(outs, key=lambda e: (e.f1, e.test_domain)) if outs else None
        compared = compare_cell([e.to_dict() for e in es], seed)
        f1s = [c for c in compared[3] if c.expected is not None] if compared else None
        hams = [c for c in compared[3] if c.expected is None] if compared else None  # domains without phishing
        out.append({
            "model": model, "paradigm": paradigm, "train_domains": list(es[0].train_domains),
            "in_domain_f1": in_f1, "out_of_domain_f1": out_f1,
            "gap": None if in_f1 is None or out_f1 is None else in_f1 - out_f1,
            "worst_domain": worst.test_domain if worst else None,
            "worst_domain_f1": worst.f1 if worst else None,
            "worst_domain_f1_ci": worst.f1_ci if worst else None,
            "f1_losses_beyond_noise": None if f1s is None else [
                {"domain": c.domain, "f1_drop": round(c.drop, 4), "lower": round(c.lower, 4),
                 "expected_f1": round(c.expected, 4)} for c in beyond_noise(f1s, MIN_LOSS)],
            "f1_domains_compared": None if f1s is None else len(f1s),
            # a domain without phishing has no F1: its loss is a false-positive rate risen beyond noise
            "false_alarm_rises_beyond_noise": None if hams is None else [
                {"domain": c.domain, "fpr_rise": round(c.drop, 4), "lower": round(c.lower, 4)}
                for c in beyond_noise(hams, MIN_LOSS)],
            "in_domains": [e.test_domain for e in ins], "out_of_domains": [e.test_domain for e in outs],
            "excluded": {**{e.test_domain: e.undefined.get("f1", "F1 undefined") for e in es if not _f1_measured(e)},
                         **{e.test_domain: "one class among the cell's own domains: left out of the in-domain "
                                           "mean, where F1 would measure recognising the corpus" for e in one_class}},
        })
    return out


LOSSES_NOTE = ("losses beyond noise: the other domains whose F1 falls below what the cell's in-domain "
               "rates give at that domain's phishing share, beyond the 95% bound (the generalization findings); "
               "'false alarms up': a domain without phishing, which has no F1, where the share of its mail "
               "flagged rises beyond the in-domain false-positive rate by as much")


def worst_text(s: dict[str, Any]) -> str:
    """A summary row's worst domain F1 with its interval: '0.620 [0.45, 0.77]'."""
    f1, ci = s.get("worst_domain_f1"), s.get("worst_domain_f1_ci")
    if f1 is None:
        return "-"
    return f"{f1:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def losses_text(s: dict[str, Any], names: bool = True) -> str:
    """'2 of 5: alerts, fraud' ('2 of 5' without `names`: the console's narrow column), 'none of 5',
    or '-' where the summary could not read them."""
    losses, k = s.get("f1_losses_beyond_noise"), s.get("f1_domains_compared")
    alarms = s.get("false_alarm_rises_beyond_noise") or []
    # a cell whose only other domain has no phishing read "-" or "none of 1" beside a high finding on it
    up = (f"false alarms up on {len(alarms)}" + (": " + ", ".join(x["domain"] for x in alarms) if names else "")
          if alarms else "")
    if losses is None or not k:
        return up or "-"
    text = f"none of {k}" if not losses else (
        f"{len(losses)} of {k}" + (": " + ", ".join(x["domain"] for x in losses) if names else ""))
    return text + (f"; {up}" if up else "")


# --- persistence ---------------------------------------------------------------------

_CI_FIELDS = [f"{m}_ci" for m in METRIC_NAMES]
_JSON_CELLS = ("train_domains", "undefined", "n_effective")  # structured values kept as JSON inside one CSV cell


def _csv_columns() -> list[str]:
    cols = []
    for f in fields(MatrixEntry):
        cols += [f"{f.name}_lo", f"{f.name}_hi"] if f.name in _CI_FIELDS else [f.name]
    return cols


def _to_csv_row(e: MatrixEntry) -> dict[str, str]:
    row: dict[str, str] = {}
    for k, v in e.to_dict().items():
        if k in _CI_FIELDS:
            lo, hi = v if v is not None else (None, None)
            row[f"{k}_lo"], row[f"{k}_hi"] = ("" if lo is None else repr(lo)), ("" if hi is None else repr(hi))
        elif k in _JSON_CELLS:
            row[k] = json.dumps(v, ensure_ascii=False)
        elif v is None:
            row[k] = ""
        elif isinstance(v, float):
            row[k] = repr(v)  # repr round-trips floats exactly
        else:
            row[k] = str(v)
    return row


def _from_csv_row(row: dict[str, str]) -> MatrixEntry:
    def num(x: str, kind=float):
        return None if x == "" else kind(x)

    d: dict[str, Any] = {}
    for f in fields(MatrixEntry):
        k = f.name
        if k not in row and f"{k}_lo" not in row and (f.default is not MISSING or f.default_factory is not MISSING):
            continue  # an extension written after this file: its default
        if k in _CI_FIELDS:
            lo, hi = num(row[f"{k}_lo"]), num(row[f"{k}_hi"])
            d[k] = None if lo is None else [lo, hi]
        elif k in _JSON_CELLS:
            d[k] = json.loads(row[k])
        elif k in ("model", "paradigm", "test_domain"):
            d[k] = row[k]
        elif k == "in_domain":
            d[k] = row[k] == "True"
        elif k in ("n", "n_positive"):
            d[k] = num(row[k], int)
        else:
            d[k] = num(row[k])
    return MatrixEntry(**d)


def _json_safe(x: Any) -> Any:
    # JSON has no NaN/inf; a non-finite number here would be a bug, so store it as null.
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def write_matrix(run_dir, entries: list[MatrixEntry], seed: int = 0) -> list[dict[str, Any]]:
    """Write matrix.json (the contract), matrix.csv (flattened) and summary.json into run_dir."""
    from gapscope.study.artifacts import write_text  # each whole or not at all (a kill mid-write); makes run_dir

    run_dir = Path(run_dir)

    dicts = [_json_safe(e.to_dict()) for e in entries]
    write_text(run_dir / "matrix.json", json.dumps(dicts, indent=2, ensure_ascii=False))
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=_csv_columns())
    w.writeheader()
    w.writerows(_to_csv_row(e) for e in entries)
    write_text(run_dir / "matrix.csv", buf.getvalue())
    summary = _json_safe(summarise(entries, seed))
    write_text(run_dir / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def read_matrix(run_dir) -> list[MatrixEntry]:
    """Entries from run_dir/matrix.json (tolerates older files without the extension fields)."""
    from gapscope.study.artifacts import DamagedArtifact, read_json

    path = Path(run_dir) / "matrix.json"
    data = read_json(path)
    try:
        return [MatrixEntry.from_dict(d) for d in data]
    except (KeyError, TypeError, AttributeError) as e:
        raise DamagedArtifact(path, f"an entry lacks {e}" if isinstance(e, KeyError) else "not a list of entries") from None


def read_matrix_csv(run_dir) -> list[MatrixEntry]:
    """Entries from run_dir/matrix.csv; equal to read_matrix for files written by write_matrix."""
    with open(Path(run_dir) / "matrix.csv", newline="", encoding="utf-8") as fh:
        return [_from_csv_row(r) for r in csv.DictReader(fh)]
