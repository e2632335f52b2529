"""Diversity: the Vendi score on known cases, lexical measures, gradient proxy, the
per-cell analysis (ratio statement, Spearman with n) and the detector on a tf-idf run."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from gapscope.data.rows import Row
from gapscope.diversity import analyse, lexical_diversity, measure_sets, spearman, vendi_from_kernel, vendi_score
from gapscope.diversity.analysis import METRICS, CellDiversity, DiversityOptions, ratio_statement
from gapscope.diversity.gradient import GradientProxy
from tests.tiny_models import tiny_encoder_dir, tiny_model_root  # noqa: F401


def test_vendi_known_values():
    assert vendi_score(np.ones((10, 4))) == pytest.approx(1.0)  # identical rows
    assert vendi_score(np.eye(6)) == pytest.approx(6.0)  # orthogonal rows
    X = np.vstack([np.eye(3)] * 4)  # 3 distinct directions, 4 copies each
    assert vendi_score(X) == pytest.approx(3.0)
    # scaling rows does not matter (cosine kernel); zero rows are dropped
    assert vendi_score(X * np.arange(1, 13)[:, None]) == pytest.approx(3.0)
    assert vendi_score(np.vstack([np.eye(2), np.zeros((1, 2))])) == pytest.approx(2.0)
    # the d x d Gram shortcut agrees with the n x n kernel
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(50, 8))
    Zn = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    assert vendi_score(Z) == pytest.approx(vendi_from_kernel(Zn @ Zn.T), rel=1e-9)
    assert vendi_score(np.zeros((0, 3))) == 0.0
    # two clusters of 5 with cosine 0.5 between them: exp entropy of eigenvalues (0.75, 0.25)
    K = np.full((10, 10), 0.5)
    K[:5, :5] = K[5:, 5:] = 1.0
    lam = np.array([0.75, 0.25])
    assert vendi_from_kernel(K) == pytest.approx(np.exp(-(lam * np.log(lam)).sum()))


def test_lexical_diversity_on_a_fixed_budget():
    rep = ["the cat sat on the mat"] * 50
    varied = [" ".join(random.Random(i).sample([f"w{j}" for j in range(500)], 6)) for i in range(50)]
    a, b = lexical_diversity(rep, n_tokens=120), lexical_diversity(varied, n_tokens=120)
    assert a["tokens"] == b["tokens"] == 120 and not a["short"]
    assert a["distinct_1"] == pytest.approx(5 / 120) and b["distinct_1"] > 0.8  # the type-token ratio
    assert "ttr" not in a and "ttr" not in METRICS  # it is distinct-1: one number, one column
    assert a["distinct_2"] < b["distinct_2"] and a["distinct_3"] < b["distinct_3"]
    short = lexical_diversity(["one two"], n_tokens=100)
    assert short["short"] and short["tokens"] == 2 and short["distinct_3"] is None


def _rows(prefix, texts, labels):
    return [Row(f"{prefix}{i}", prefix, t, int(y)) for i, (t, y) in enumerate(zip(texts, labels))]


def _topic_rows(domain, words, n, seed):
    rng = random.Random(seed)
    return [Row(f"{domain}-{i}", domain, " ".join(rng.choices(words, k=12)) + (" verify password" if i % 2 else " lunch"),
                i % 2) for i in range(n)]


def test_gradient_proxy_and_measure_sets():
    a = _topic_rows("a", ["invoice", "order", "cart"], 40, 0)
    b = _topic_rows("b", ["meeting", "agenda", "team", "notes", "project"], 40, 1)
    c = _topic_rows("c", ["lottery", "prize", "winner", "claim"], 40, 2)
    mixed = a[:14] + b[:13] + c[:13]
    proxy = GradientProxy([r.text for r in a + b + c], [r.label for r in a + b + c], dim=64)
    G = proxy.projected_gradients([r.text for r in a], [r.label for r in a])
    assert G.shape == (40, 64)

    class FakeEmbedder:  # one direction per topic word set: the mix covers more of them
        def embed(self, texts):
            keys = ["invoice", "meeting", "lottery", "order", "agenda", "prize"]
            return np.array([[t.count(k) + 0.01 for k in keys] for t in texts], dtype=float)

    m = measure_sets({"a": a, "b": b, "mix": mixed}, DiversityOptions(sample_size=30, n_tokens=300, proj_dim=64),
                     embedder=FakeEmbedder())
    assert m["mix"]["vendi_sample"] == 30 and m["a"]["n_rows"] == 40
    for key in ("embedding_vendi", "gradient_vendi", "distinct_2"):
        assert m["mix"][key] > m["a"][key] and m["mix"][key] > m["b"][key] * 0.8, key
    none = measure_sets({"a": a}, DiversityOptions(embeddings=False, n_tokens=100))
    assert "embedding_vendi" not in none["a"] and none["a"]["gradient_vendi"] > 1


def test_embedder_mean_pools_a_tiny_bert(tiny_model_root):  # noqa: F811
    from gapscope.diversity.embed import Embedder

    emb = Embedder(str(tiny_encoder_dir(tiny_model_root)), max_length=16, batch_size=2)
    texts = ["hello the team", "verify your password now please", "hello the team"]
    E = emb.embed(texts)
    assert E.shape == (3, 32) and np.allclose(np.linalg.norm(E, axis=1), 1, atol=1e-5)
    assert np.allclose(E[0], E[2], atol=1e-6)  # batching/order does not change a text's embedding


def test_analysis_ratio_statement_and_spearman():
    s = ratio_statement("embedding_vendi", 13.0, [10.0, 10.0])
    assert s["ratio"] == pytest.approx(1.3)
    assert "the generalist set is only 1.3× as diverse as the specialist set" in s["statement"]
    assert "only" not in ratio_statement("distinct_1", 30.0, [10.0])["statement"]
    assert spearman([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]) == {"rho": 1.0, "p": 0.0, "n": 4}
    assert spearman([1, 2], [1, 2])["rho"] is None and spearman([1, 2, None], [1, 2, 3])["n"] == 2
    cells = [CellDiversity(f"m__specialist-{d}", "m", f"specialist:{d}", d, f1, {"embedding_vendi": v, "distinct_1": 0.2})
             for d, f1, v in [("a", 0.5, 8.0), ("b", 0.6, 10.0), ("c", 0.7, 12.0)]]
    cells.append(CellDiversity("m__generalist", "m", "generalist", "g", None, {"embedding_vendi": 13.0, "distinct_1": 0.3}))
    out = analyse(cells)
    assert out["correlation"]["embedding_vendi"] == {"rho": 1.0, "p": 0.0, "n": 3}
    assert out["ratios"]["m"]["embedding_vendi"]["ratio"] == pytest.approx(1.3)
    from gapscope.diversity.report import diversity_findings, section_html

    f = diversity_findings(out)
    assert f and f[0].kind == "data_diversity" and "1.3× as diverse" in f[0].title
    assert "n = 3" in f[0].summary
    # a second model on the same three sets adds no points: its F1 joins the sets' means
    twin = [CellDiversity(c.cell.replace("m__", "m2__"), "m2", c.paradigm, c.set_key,
                          None if c.out_of_domain_f1 is None else 1.3 - c.out_of_domain_f1, c.metrics) for c in cells]
    both = analyse(cells + twin)["correlation"]["embedding_vendi"]
    assert both["n"] == 3 and both["rho"] is None  # every set's mean F1 is 0.65: no ranking to correlate
    # the twin's sets are the same sets: one statement names both models
    f2 = diversity_findings(analyse(cells + twin))[0]
    assert f2.summary.count("1.3× as diverse") == 1 and "m, m2 (the same training sets)" in f2.summary
    # ... and so does the section (the demo's gemma3 and smollm2 printed the same three lines twice)
    html = section_html(analyse(cells + twin))
    assert html.count("1.3× as diverse") == 1 and "<b>m2</b>: the same training rows as m in every cell" in html
    for c in cells:
        c.model = "<script>m</script>"
    html = section_html(analyse(cells))
    assert "<script>" not in html and "&lt;script&gt;m&lt;/script&gt;" in html


def test_diversity_detector_on_a_tfidf_run(tmp_path):
    from gapscope.study.runner import run_study

    for d, words in [("shop", ["order", "cart", "coupon", "parcel"]), ("bank", ["loan", "deposit", "branch"]),
                     ("work", ["agenda", "deadline", "team", "review", "manager"])]:
        rows = _topic_rows(d, words, 60, hash(d) % 100)
        (tmp_path / f"{d}.jsonl").write_text("\n".join(json.dumps({"text": r.text, "label": r.label}) for r in rows))
    (tmp_path / "s.toml").write_text('[study]\nbootstrap = 50\n'
                                     + "".join(f'[[datasets]]\npath = "{d}.jsonl"\n' for d in ("shop", "bank", "work"))
                                     + '[detectors]\nenabled = ["diversity"]\n[detectors.diversity]\nembeddings = false\n'
                                       'n_tokens = 400\n')
    run_study(tmp_path / "s.toml", tmp_path / "run")
    d = json.loads((tmp_path / "run" / "diagnostics" / "diversity" / "diversity.json").read_text())
    assert len(d["cells"]) == 4 and d["correlation"]["gradient_vendi"]["n"] == 3
    assert "tfidf" in d["ratios"] and "gradient_vendi" in d["ratios"]["tfidf"]
    findings = json.loads((tmp_path / "run" / "findings.json").read_text())
    assert any(f["kind"] == "data_diversity" for f in findings)
    assert "Training data diversity" in (tmp_path / "run" / "report.html").read_text()
