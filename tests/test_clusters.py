"""Copies of one email held out together count as one email's evidence in every interval."""

import numpy as np
import pytest

from gapscope.eval.bootstrap import resample_cluster_counts
from gapscope.eval.clusters import cluster_index, clusters_of, effective_size
from gapscope.eval.matrix import evaluate_cell


def _twelve(copies=1):
    """12 emails (6 phishing, 5 of them caught; 6 legitimate, 1 false alarm), each `copies` times."""
    y = np.array([1] * 6 + [0] * 6)
    m = np.array([2.0, 1.5, 1.0, 0.8, 0.5, -0.5, -2.0, -1.5, -1.0, -0.8, -0.6, 0.4])
    ids = [f"e{i:02d}-{k}" for i in range(12) for k in range(copies)]
    return ids, np.repeat(y, copies), np.repeat(m, copies), {rid: rid.split("-")[0] for rid in ids}


def missed_campaign(home: int, home_missed: int, phishing: int, legitimate: int, copies: int, margin: float):
    """Margins of a cell on its home domain (`home` emails of each class, `home_missed` phishing ones
    missed) and on another, whose first `copies` phishing emails are one campaign it misses (at
    `margin`), the rest caught; and the campaign's group of copies."""
    rng = np.random.default_rng(0)
    home_y = np.array([1] * home + [0] * home)
    home_m = np.where(home_y == 1, 2.0, -2.0) + rng.normal(0, 0.1, 2 * home)
    home_m[:home_missed] = -1.0
    y = np.array([1] * phishing + [0] * legitimate)
    m = np.where(y == 1, 2.0, -2.0)
    m[:copies] = margin
    ids = [f"c{i}" for i in range(copies)] + [f"o{i}" for i in range(len(y) - copies)]
    per = {"home": ([f"h{i}" for i in range(2 * home)], home_y, home_m), "away": (ids, y, m)}
    return per, {f"c{i}": "campaign" for i in range(copies)}


def test_effective_size_counts_a_group_of_copies_once():
    c = np.repeat(np.arange(12), 5)
    o = np.repeat(np.array([1, 0] * 6), 5)
    assert effective_size(o, c) == pytest.approx(12.0)  # 60 rows, 12 emails
    assert effective_size(o, None) == 60 and effective_size(o, np.arange(60)) == 60
    assert effective_size(np.ones(60), c) == pytest.approx(12.0)


def test_effective_size_does_not_read_the_outcomes():
    """A variance read from the outcomes gave one group holding a whole class full weight (49 of 50
    copies caught: 50 rows), a worse result a narrower interval than a perfect one (one copy of 50
    missed: 50 rows against 10), and a 20-copy campaign beside 5 emails 10.8 rows (a review)."""
    one = np.zeros(50, dtype=int)
    assert effective_size(np.r_[np.ones(49), 0], one) == effective_size(np.ones(50), one) == 1.0
    ten = np.repeat(np.arange(10), 5)
    assert effective_size(np.r_[np.ones(49), 0], ten) == effective_size(np.ones(50), ten) == pytest.approx(10.0)
    campaign = np.r_[np.zeros(20, dtype=int), np.arange(1, 6)]
    assert effective_size(np.r_[np.ones(23), 0, 0], campaign) <= 6


def test_one_group_of_copies_gives_no_bootstrap_interval():
    ids = [f"r{i}" for i in range(60)]
    y = np.r_[np.ones(25, dtype=int), np.zeros(35, dtype=int)]
    m = np.random.default_rng(0).normal(size=60) + y
    (e,) = evaluate_cell("m", "specialist:a", ["a"], 0.0, {"a": (ids, y, m)}, seed=0, n_resamples=200,
                         groups={i: "one" for i in ids})
    assert e.auroc_ci is None and e.ece_ci is None  # each draw was the sample: [0.76, 0.76]
    assert e.n_effective == {"phishing": 1.0, "legitimate": 1.0, "all": 1.0}


def test_cluster_index_is_none_without_shared_groups():
    assert cluster_index(["a", "b"], {"a": 1, "b": 2}) is None and cluster_index(["a"], None) is None
    assert cluster_index(["a", "b", "c"], {"a": 7, "c": 7}).tolist() == [0, 1, 0]
    assert clusters_of(["x", "y", "x"]).tolist() == [0, 1, 0] and clusters_of(["x", "y"]) is None


def test_resampling_clusters_moves_copies_together():
    w = resample_cluster_counts(np.array([0, 0, 1, 2, 2]), 50, np.random.default_rng(0))
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 3] == w[:, 4]).all() and w.shape == (50, 5)


def test_the_same_emails_five_times_do_not_narrow_the_interval():
    """A statistical review: count_intervals on 12 emails gave F1 [0.53, 0.95]; the same 12 emails
    each 5 times [0.71, 0.91]. With their groups they are 12 emails again."""
    once = evaluate_cell("m", "specialist:a", ["a"], 0.0, {"a": _twelve(1)[:3]}, seed=0, n_resamples=400)[0]
    ids, y, m, groups = _twelve(5)
    naive = evaluate_cell("m", "specialist:a", ["a"], 0.0, {"a": (ids, y, m)}, seed=0, n_resamples=400)[0]
    grouped = evaluate_cell("m", "specialist:a", ["a"], 0.0, {"a": (ids, y, m)}, seed=0, n_resamples=400,
                            groups=groups)[0]
    width = {k: e.f1_ci[1] - e.f1_ci[0] for k, e in (("once", once), ("naive", naive), ("grouped", grouped))}
    assert width["naive"] < 0.7 * width["once"]
    assert width["grouped"] == pytest.approx(width["once"], rel=0.1)
    assert grouped.f1 == naive.f1 and grouped.n == 60  # the point estimates count every row
    assert grouped.n_effective == {"phishing": pytest.approx(6), "legitimate": pytest.approx(6), "all": pytest.approx(12)}
    auroc = {k: e.auroc_ci[1] - e.auroc_ci[0] for k, e in (("once", once), ("naive", naive), ("grouped", grouped))}
    assert auroc["grouped"] > 1.5 * auroc["naive"]  # the bootstrap draws whole groups too
    # without shared groups nothing changes: the same numbers as before
    plain = evaluate_cell("m", "specialist:a", ["a"], 0.0, {"a": (ids, y, m)}, seed=0, n_resamples=400,
                          groups={i: i for i in ids})[0]
    assert plain == naive and plain.n_effective is None


def test_a_missed_campaign_held_out_many_times_is_a_far_less_certain_loss():
    """One phishing campaign, 20 copies, all missed, beside 10 single emails caught: as 30 rows the
    recall loss looks certain; with the copies as one group the bound drops to a third."""
    from gapscope.eval.gaps import compare_cell

    per, groups = missed_campaign(home=60, home_missed=3, phishing=30, legitimate=30, copies=20, margin=-1.0)

    def lower(g):
        es = [e.to_dict() for e in evaluate_cell("m", "specialist:home", ["home"], 0.0, per, seed=0,
                                                 n_resamples=200, groups=g)]
        (c,) = compare_cell(es, 0)[3]
        return c.drop, c.lower

    drop, naive_low = lower(None)
    drop2, grouped_low = lower(groups)
    assert drop == drop2 and naive_low > 0.2  # as rows: beyond noise by far
    assert grouped_low < naive_low / 2  # as emails (4 effective phishing rows): far less certain


def test_the_paired_and_noise_intervals_draw_copies_together():
    from gapscope.detectors.label_noise import noise_rate_interval
    from gapscope.eval.held_out import paired_interval

    ids, y, m, groups = _twelve(5)
    other = np.where(y == 1, 1.0, -1.0)
    parts = [("a", [(np.array(ids), y, m, 0.0)], [(np.array(ids), y, other, 0.0)])]
    naive = paired_interval(parts, 0, 400)
    grouped = paired_interval(parts, 0, 400, groups=groups)
    assert grouped[1] - grouped[0] > 1.5 * (naive[1] - naive[0])
    rng = np.random.default_rng(1)
    truth = np.arange(40) % 2
    given = truth.copy()
    given[[0, 7, 12, 21]] ^= 1  # 4 of 40 emails mislabelled, each held 5 times
    labels = np.repeat(given, 5)
    p1 = np.repeat(np.clip(0.15 + 0.7 * truth + rng.normal(0, 0.1, 40), 0.01, 0.99), 5)
    c = np.repeat(np.arange(40), 5)
    a, b = noise_rate_interval(labels, p1, 0, 300), noise_rate_interval(labels, p1, 0, 300, cluster=c)
    assert b[1] - b[0] > 1.5 * (a[1] - a[0])


def test_a_run_records_its_held_out_copies_and_reads_them_in_the_matrix(tmp_path):
    import json

    from gapscope.study.runner import run_study
    from gapscope.validate import write_spec

    rng = np.random.default_rng(0)
    for d in ("a", "b"):
        with open(tmp_path / f"{d}.jsonl", "w") as f:
            for i in range(60):
                y = i % 2
                words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "note", "team"], 12))
                f.write(json.dumps({"text": f"{'verify account' if y else 'meeting agenda'} {words} {d}{i}",
                                    "label": y}) + "\n")
            for _ in range(6):  # one campaign sent six times
                f.write(json.dumps({"text": f"urgent: confirm your {d} payroll login now", "label": 1}) + "\n")
    spec = write_spec(tmp_path / "spec.toml", name="copies", seed=1, domains=["a", "b"],
                      models=[{"name": "tfidf", "kind": "tfidf-lr"}], specialist=["a", "b"], generalist=False)
    run_study(spec, tmp_path / "run", detectors=False)
    import pandas as pd

    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    held = splits["copy_groups"]
    assert len(held) == 6 and set(held) <= set(splits["test"])  # seed 1 holds out b's campaign
    rows = pd.read_parquet(tmp_path / "run" / "data" / "rows.parquet")
    domain_of = dict(zip(rows["id"], rows["domain"]))
    held_in = {domain_of[i] for i in held}
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())
    # a domain whose campaign is held out is read at fewer phishing rows than it holds; the others as counted
    for e in matrix:
        assert bool(e["n_effective"]) == (e["test_domain"] in held_in)
        if e["n_effective"]:
            assert e["n_effective"]["phishing"] < e["n_positive"]
