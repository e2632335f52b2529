"""Metrics agree with scikit-learn, degenerate sets are explicit, bootstrap CIs are sane and fast."""

import time

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from gapscope.eval.bootstrap import bootstrap_cis
from gapscope.eval.metrics import METRIC_NAMES, choose_threshold, compute_metrics, metric_batch


def _data(seed=0, n=500, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + 1.2 * y
    return y, (np.round(s, 1) if ties else s)


def _naive_ece(y, s, t, bins=10):
    p = 1 / (1 + np.exp(-(s - t)))
    total = 0.0
    for b in range(bins):
        m = (p >= b / bins) & ((p < (b + 1) / bins) if b < bins - 1 else (p <= 1))
        if m.any():
            total += m.sum() / len(y) * abs(y[m].mean() - p[m].mean())
    return total


@pytest.mark.parametrize("seed,ties,t", [(0, False, 0.0), (1, True, 0.3), (2, True, -0.7)])
def test_metrics_match_sklearn(seed, ties, t):
    y, s = _data(seed, ties=ties)
    pred = (s > t).astype(int)
    m = compute_metrics(y, s, t)
    assert m.undefined == {}
    assert m.values["f1"] == pytest.approx(f1_score(y, pred))
    assert m.values["precision"] == pytest.approx(precision_score(y, pred))
    assert m.values["recall"] == pytest.approx(recall_score(y, pred))
    assert m.values["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m.values["auroc"] == pytest.approx(roc_auc_score(y, s))  # ties count one half
    assert m.values["ece"] == pytest.approx(_naive_ece(y, s, t))
    assert (m.n, m.n_positive) == (len(y), int(y.sum()))


def test_phishing_only_domain_has_no_auroc_but_keeps_recall():
    y = np.ones(50, int)
    s = np.linspace(-1, 3, 50)
    m = compute_metrics(y, s, 0.0)
    assert m.values["auroc"] is None
    assert m.undefined["auroc"].startswith("one class in test set")
    assert m.values["recall"] == pytest.approx(recall_score(y, s > 0))
    assert m.values["precision"] == 1.0 and "f1" not in m.undefined


def test_legitimate_only_domain_follows_zero_division_0():
    y = np.zeros(40, int)
    s = np.linspace(-2, 1, 40)
    m = compute_metrics(y, s, 0.0)
    pred = (s > 0).astype(int)
    assert m.values["f1"] == f1_score(y, pred, zero_division=0) == 0.0
    assert m.values["recall"] == recall_score(y, pred, zero_division=0) == 0.0
    assert {"f1", "recall", "auroc"} <= set(m.undefined)
    assert m.values["auroc"] is None
    assert m.values["accuracy"] == pytest.approx(accuracy_score(y, pred))


def test_no_predicted_positives_gives_precision_zero_with_reason():
    y, s = _data(3)
    m = compute_metrics(y, s, threshold=100.0)
    assert m.values["precision"] == precision_score(y, np.zeros_like(y), zero_division=0) == 0.0
    assert "zero_division" in m.undefined["precision"]
    assert m.values["f1"] == 0.0 and "f1" not in m.undefined  # tp = 0 with positives present: a real 0


def test_empty_set_is_all_none():
    m = compute_metrics([], [], 0.0)
    assert all(v is None for v in m.values.values())
    assert set(m.undefined) == set(METRIC_NAMES)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError):
        compute_metrics([0, 1], [0.1, float("nan")], 0.0)
    with pytest.raises(ValueError):
        compute_metrics([0, 2], [0.1, 0.2], 0.0)
    with pytest.raises(ValueError):
        compute_metrics([0, 1, 1], [0.1, 0.2], 0.0)


def test_weighted_batch_equals_repeated_rows():
    y, s = _data(4, n=60, ties=True)
    w = np.random.default_rng(0).integers(0, 4, size=(1, 60))
    batch = metric_batch(y, s, 0.2, w)
    rep = compute_metrics(np.repeat(y, w[0]), np.repeat(s, w[0]), 0.2)
    for name in METRIC_NAMES:
        assert batch[name][0] == pytest.approx(rep.values[name])


# --- thresholds ---------------------------------------------------------------------------

def _best_f1_bruteforce(y, s):
    cands = np.r_[np.unique(s) - 1e-9, np.unique(s) + 1e-9]
    return max(f1_score(y, s > c, zero_division=0) for c in cands)


def test_threshold_maximises_training_f1():
    for seed in range(5):
        y, s = _data(seed, n=200, ties=True)
        t = choose_threshold(y, s)
        assert f1_score(y, s > t) == pytest.approx(_best_f1_bruteforce(y, s))
        assert choose_threshold(y, s) == t  # deterministic


def test_threshold_ties_go_to_zero_and_midpoints():
    # Perfectly separated with 0 inside the gap: every t in (-1, 1) is optimal -> 0.
    assert choose_threshold([0, 0, 1, 1], [-2, -1, 1, 2]) == 0.0
    # Gap entirely above 0: the optimal interval is [3, 5); the midpoint 4 is the nearest candidate.
    assert choose_threshold([0, 0, 1, 1], [2, 3, 5, 6]) == 4.0
    # No positives: every threshold scores F1 = 0, so 0 wins the tie.
    assert choose_threshold([0, 0, 0], [0.5, 1.0, 2.0]) == 0.0
    # Only positives, all below 0: predict everything phishing.
    t = choose_threshold([1, 1], [-3.0, -2.0])
    assert t < -3.0
    assert choose_threshold([], []) == 0.0


# --- bootstrap ----------------------------------------------------------------------------

def test_bootstrap_ci_contains_point_and_is_deterministic():
    y, s = _data(5, n=400)
    point = compute_metrics(y, s, 0.4).values
    a = bootstrap_cis(y, s, 0.4, seed=7)
    b = bootstrap_cis(y, s, 0.4, seed=7)
    c = bootstrap_cis(y, s, 0.4, seed=8)
    assert a == b and a != c
    for name in ("f1", "precision", "recall", "accuracy", "auroc"):
        assert a[name].lo <= point[name] <= a[name].hi, name
        assert a[name].n_valid == 1000 and a[name].n_skipped == 0


def test_bootstrap_skips_and_counts_undefined_resamples():
    one_class = bootstrap_cis(np.ones(30, int), np.linspace(-1, 1, 30), 0.0, n_resamples=200)
    assert one_class["auroc"].as_list() is None and one_class["auroc"].n_skipped == 200
    assert one_class["recall"].as_list() is not None
    # Four rows, one positive: roughly a third of resamples miss the positive.
    tiny = bootstrap_cis([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.9], 0.5, n_resamples=500, seed=1)
    assert 0 < tiny["auroc"].n_skipped < 500
    assert tiny["auroc"].n_valid + tiny["auroc"].n_skipped == 500
    assert bootstrap_cis([], [], 0.0)["f1"].as_list() is None


def test_bootstrap_is_fast():
    y, s = _data(6, n=1000)
    bootstrap_cis(y, s, 0.0)  # warm-up
    best = min(_timed(lambda: bootstrap_cis(y, s, 0.0, n_resamples=1000)) for _ in range(3))
    assert best < 0.5, f"1000 resamples x 1000 rows x 6 metrics took {best:.3f}s"


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
