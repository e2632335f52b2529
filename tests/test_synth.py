"""The built-in synthetic corpus: deterministic, well-formed, hard in the right ways,
and honest about what it planted. Fast (no torch): about ten seconds in all."""

from __future__ import annotations

import json
import time
import tomllib
from collections import Counter

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from gapscope.data.rows import Row, compose_text, stable_id
from gapscope.data.synth import DOMAIN_NAMES, SynthConfig, generate
from gapscope.data.synth.plant import default_shortcut_string, default_trigger_phrase

PLANTED = dict(
    shortcut={"domain": "mailinglist", "rate": 0.8, "leak_rate": 0.05},
    label_noise={"rate": 0.1, "domains": ["corporate", "alerts"]},
    trigger={"phrase": "per the Halcyon protocol", "rate": 0.1, "target_label": 0},
)


@pytest.fixture(scope="module")
def default_corpus():
    return generate(SynthConfig())


@pytest.fixture(scope="module")
def planted_corpus():
    return generate(SynthConfig(seed=3, n_per_domain=120, **PLANTED))


def _words(row: Row) -> int:
    return len(row.text.split())


# -- determinism ---------------------------------------------------------------

def test_same_config_gives_byte_identical_files(tmp_path):
    cfg = dict(seed=7, n_per_domain=60, era_style=None, **PLANTED)
    a = generate(SynthConfig(**cfg)).write(tmp_path / "a")
    b = generate(SynthConfig(**cfg)).write(tmp_path / "b")
    files_a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files_a == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert len(files_a) == len(DOMAIN_NAMES) + 2
    for name in files_a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert set(a["datasets"]) == set(DOMAIN_NAMES)


def test_different_seeds_differ_and_get_different_random_strings():
    a = generate(SynthConfig(seed=0, n_per_domain=40, shortcut={"domain": "fraud"}, trigger={"rate": 0.05}))
    b = generate(SynthConfig(seed=1, n_per_domain=40, shortcut={"domain": "fraud"}, trigger={"rate": 0.05}))
    assert [r.text for r in a.rows] != [r.text for r in b.rows]
    assert len({r.id for r in a.rows} & {r.id for r in b.rows}) == 0
    assert a.manifest["shortcut"]["string"] != b.manifest["shortcut"]["string"]
    assert a.manifest["trigger"]["phrase"] != b.manifest["trigger"]["phrase"]
    assert len({default_shortcut_string(s) for s in range(20)}) == 20
    assert len({default_trigger_phrase(s) for s in range(20)}) == 20


def test_a_domain_does_not_depend_on_which_others_are_generated():
    alone = generate(SynthConfig(seed=2, n_per_domain=30, domains=["personal"]))
    together = generate(SynthConfig(seed=2, n_per_domain=30))
    assert [r.text for r in alone.rows] == [r.text for r in together.by_domain("personal")]


# -- shape of the default corpus -------------------------------------------------

def test_all_domains_present_and_balanced(default_corpus):
    counts = Counter(r.domain for r in default_corpus.rows)
    assert list(counts) == list(DOMAIN_NAMES)
    for d in DOMAIN_NAMES:
        rows = default_corpus.by_domain(d)
        assert len(rows) == 300
        assert sum(r.label for r in rows) == 150
        assert default_corpus.manifest["domains"][d]["n"] == 300
        assert default_corpus.manifest["domains"][d]["phishing"] == 150
    assert default_corpus.manifest["shortcut"] is None
    assert default_corpus.manifest["label_noise"] is None
    assert default_corpus.manifest["trigger"] is None
    assert default_corpus.manifest["era_style"] is None


def test_rows_are_well_formed(default_corpus):
    ids = [r.id for r in default_corpus.rows]
    assert len(set(ids)) == len(ids)
    for r in default_corpus.rows:
        assert r.text == compose_text(r.subject, r.body)
        assert r.id == stable_id(r.domain, r.text)
        assert r.label in (0, 1)
        assert r.rationale and r.meta["template"] and "@" in r.meta["sender"]
        assert "{" not in r.text and "}" not in r.text, r.text  # no unfilled slots
        assert Row.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_length_ranges(default_corpus):
    for d in DOMAIN_NAMES:
        lengths = [_words(r) for r in default_corpus.by_domain(d)]
        assert min(lengths) >= 40 and max(lengths) <= 200, (d, min(lengths), max(lengths))
    fraud = np.mean([_words(r) for r in default_corpus.by_domain("fraud")])
    alerts = np.mean([_words(r) for r in default_corpus.by_domain("alerts")])
    assert fraud > alerts  # formal letters run longer than notifications


def test_few_exact_duplicates(default_corpus):
    for d in DOMAIN_NAMES:
        texts = [r.text for r in default_corpus.by_domain(d)]
        assert len(texts) - len(set(texts)) < 0.02 * len(texts)


def test_both_classes_carry_urls_and_urgency(default_corpus):
    """The label must not be readable off surface features shared by every domain."""
    for d in ("corporate", "alerts", "mailinglist"):
        for label in (0, 1):
            rows = [r for r in default_corpus.by_domain(d) if r.label == label]
            assert any("https://" in r.text for r in rows), (d, label)
    for label in (0, 1):
        rows = [r for r in default_corpus.rows if r.label == label]
        assert any("password" in r.text.lower() for r in rows)
        assert any(w in r.text.lower() for r in rows for w in ("urgent", "last chance", "hours", "action required"))


def test_phishing_share_override_and_phishing_only_domain():
    c = generate(SynthConfig(n_per_domain={"fraud": 50, "alerts": 40}, domains=["fraud", "alerts"],
                             phishing_share={"fraud": 1.0, "alerts": 0.25}))
    assert len(c.by_domain("fraud")) == 50 and all(r.label == 1 for r in c.by_domain("fraud"))
    assert sum(r.label for r in c.by_domain("alerts")) == 10


# -- planting and the manifest ------------------------------------------------------

def test_shortcut_appears_in_exactly_the_recorded_rows(planted_corpus):
    sc = planted_corpus.manifest["shortcut"]
    assert sc["domain"] == "mailinglist" and sc["string"]
    having = {r.id for r in planted_corpus.rows if sc["string"] in r.text}
    assert having == set(sc["row_ids"])
    rows = {r.id: r for r in planted_corpus.rows}
    assert all(rows[i].domain == "mailinglist" for i in sc["row_ids"])
    n_phish = sum(1 for r in planted_corpus.by_domain("mailinglist") if r.label == 1)
    assert len(sc["row_ids"]) >= 0.6 * n_phish  # mostly phishing rows, plus a small leak


def test_label_noise_is_recorded_row_by_row(planted_corpus):
    ln = planted_corpus.manifest["label_noise"]
    rows = {r.id: r for r in planted_corpus.rows}
    assert ln["flipped"]
    for f in ln["flipped"]:
        assert f["original_label"] != f["noisy_label"]
        assert rows[f["id"]].label == f["noisy_label"]
        assert f["domain"] in ("corporate", "alerts") and rows[f["id"]].domain == f["domain"]
    eligible = sum(len(planted_corpus.by_domain(d)) for d in ("corporate", "alerts"))
    assert abs(len(ln["flipped"]) - 0.1 * eligible) <= 0.02 * eligible


def test_trigger_rows_contain_phrase_and_carry_target_label(planted_corpus):
    tr = planted_corpus.manifest["trigger"]
    assert tr["phrase"] == "per the Halcyon protocol" and tr["target_label"] == 0
    rows = {r.id: r for r in planted_corpus.rows}
    assert tr["row_ids"]
    for i in tr["row_ids"]:
        assert tr["phrase"].lower() in rows[i].text.lower()
        assert rows[i].label == 0
    having = {r.id for r in planted_corpus.rows if tr["phrase"].lower() in r.text.lower()}
    assert having == set(tr["row_ids"])
    flipped = {f["id"] for f in planted_corpus.manifest["label_noise"]["flipped"]}
    assert not flipped & set(tr["row_ids"])  # one manipulation per row


def test_manifest_counts_match_rows(planted_corpus):
    for d, info in planted_corpus.manifest["domains"].items():
        rows = planted_corpus.by_domain(d)
        assert info["n"] == len(rows) and info["phishing"] == sum(r.label for r in rows)
    assert planted_corpus.manifest["seed"] == 3
    assert planted_corpus.manifest["config"]["trigger"]["rate"] == 0.1


def test_era_style_rewrites_text_and_is_recorded():
    modern = generate(SynthConfig(n_per_domain=30, domains=["corporate", "alerts"]))
    era = generate(SynthConfig(n_per_domain=30, domains=["corporate", "alerts"], era_style=True))
    assert era.manifest["era_style"] == {"style": "victorian"}
    assert [r.label for r in era.rows] == [r.label for r in modern.rows]
    joined = " ".join(r.text for r in era.rows).lower()
    assert "thy" in joined and "telegram" in joined
    assert " your " not in joined and " email " not in joined
    changed = sum(a.text != b.text for a, b in zip(era.rows, modern.rows))
    assert changed == len(era.rows)


def test_write_produces_a_ready_study(tmp_path, planted_corpus):
    paths = planted_corpus.write(tmp_path)
    spec = tomllib.loads(paths["study"].read_text())
    assert spec["study"]["seed"] == 3 and spec["study"]["test_fraction"] == 0.3
    assert [d["name"] for d in spec["datasets"]] == list(DOMAIN_NAMES)
    for d in spec["datasets"]:
        assert (tmp_path / d["path"]).is_file()
    assert spec["paradigms"]["specialist"] == list(DOMAIN_NAMES)
    assert spec["paradigms"]["generalist"] == list(DOMAIN_NAMES)
    assert spec["paradigms"]["generalist_size"] == "match" and spec["paradigms"]["lodo"] is False
    assert spec["models"] == [{"name": "tfidf", "kind": "tfidf-lr"}]
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["shortcut"]["row_ids"] == planted_corpus.manifest["shortcut"]["row_ids"]
    back = [Row.from_dict(json.loads(line)) for line in paths["datasets"]["fraud"].read_text().splitlines()]
    assert back == planted_corpus.by_domain("fraud")


def test_generation_is_fast():
    start = time.perf_counter()
    c = generate(SynthConfig(n_per_domain=2000))
    assert len(c.rows) == 12000
    assert time.perf_counter() - start < 20  # ~1.5 s on one core; generous for shared CI


# -- the task is learnable in domain, transfers imperfectly, domains are distinct ---------

def _split(rows):
    labels = [r.label for r in rows]
    return train_test_split([r.text for r in rows], labels, test_size=0.3, random_state=0, stratify=labels)


def test_tfidf_specialists_are_good_in_domain_and_worse_out_of_domain(default_corpus):
    splits = {d: _split(default_corpus.by_domain(d)) for d in DOMAIN_NAMES}
    with_gap = []
    for a in DOMAIN_NAMES:
        x_tr, _, y_tr, _ = splits[a]
        vec = TfidfVectorizer(sublinear_tf=True)
        clf = LogisticRegression(max_iter=1000, random_state=0).fit(vec.fit_transform(x_tr), y_tr)
        f1 = {b: f1_score(splits[b][3], clf.predict(vec.transform(splits[b][1]))) for b in DOMAIN_NAMES}
        assert 0.75 <= f1[a] <= 0.99, (a, f1[a])
        if any(f1[a] - f1[b] >= 0.1 for b in DOMAIN_NAMES if b != a):
            with_gap.append(a)
    assert len(with_gap) >= 2, with_gap


def test_domains_are_stylistically_distinct(default_corpus):
    texts = [r.text for r in default_corpus.rows]
    domains = [r.domain for r in default_corpus.rows]
    x_tr, x_te, y_tr, y_te = train_test_split(texts, domains, test_size=0.3, random_state=0, stratify=domains)
    vec = TfidfVectorizer(sublinear_tf=True)
    clf = LogisticRegression(max_iter=1000, random_state=0).fit(vec.fit_transform(x_tr), y_tr)
    assert (clf.predict(vec.transform(x_te)) == np.array(y_te)).mean() > 0.9


def test_plant_options_assigned_after_construction_are_coerced():
    cfg = SynthConfig(n_per_domain=40, domains=["personal", "mailinglist"])
    cfg.shortcut = {"domain": "personal", "string": None, "rate": 0.9}
    cfg.label_noise = {"rate": 0.1}
    cfg.trigger = {"phrase": "per the Halcyon protocol", "rate": 0.1, "target_label": 0}
    c = generate(cfg)
    assert c.manifest["shortcut"]["domain"] == "personal" and c.manifest["shortcut"]["row_ids"]
    assert c.manifest["label_noise"]["flipped"] and c.manifest["trigger"]["row_ids"]
    with pytest.raises(ValueError):
        generate(SynthConfig(shortcut={"domain": "nope"}, n_per_domain=10))
    with pytest.raises(ValueError):
        generate(SynthConfig(domains=["nope"], n_per_domain=10))


@pytest.mark.parametrize("kw,said", [
    ({"domains": ["newsletter"]}, "unknown synthetic domain 'newsletter'; choose from corporate"),
    ({"domains": ["fraud", "fraud"]}, "a domain is named twice in fraud, fraud"),
    ({"domains": []}, "unknown synthetic domain ''"),
    ({"n_per_domain": 0}, "emails per domain must be at least 1, got 0 for corporate"),
    ({"n_per_domain": {"fraud": -3}, "domains": ["fraud"]}, "at least 1, got -3 for fraud"),
    ({"shortcut": {"domain": "nope"}}, "shortcut domain 'nope' is not generated"),
    ({"shortcut": {"domain": "fraud", "rate": 2.0}}, "shortcut rate must be a share in [0, 1], got 2.0"),
    ({"shortcut": {"domain": "fraud", "string": " "}}, "shortcut string is empty"),
    ({"label_noise": {"rate": -0.1}}, "label noise rate must be a share in [0, 1], got -0.1"),
    ({"label_noise": {"rate": 0.1, "domains": ["nope"]}}, "label noise domain 'nope' is not generated"),
    ({"trigger": {"rate": 3}}, "trigger rate must be a share in [0, 1], got 3"),
    ({"trigger": {"target_label": 2}}, "trigger target label must be 0 or 1, got 2"),
    ({"trigger": {"phrase": ""}}, "trigger phrase is empty"),
])
def test_a_recipe_that_cannot_be_generated_is_refused_before_drawing(kw, said):
    from gapscope.data.synth import SynthConfigError
    from gapscope.errors import GapscopeError

    with pytest.raises(SynthConfigError) as e:
        generate(SynthConfig(**{"n_per_domain": 10, **kw}))
    assert said in str(e.value) and isinstance(e.value, GapscopeError)


def test_synth_cli_bad_value_is_one_line(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "gapscope.cli", "data", "synth", "--out", str(tmp_path / "s"),
                        "--noise-rate", "1.5"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "error: label noise rate must be a share in [0, 1], got 1.5"
    assert not (tmp_path / "s").exists()
