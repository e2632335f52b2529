"""The attribution plumbing around the methods: exact fast scoring paths, truncation, the corpus store,
the attributions detector, `gapscope explain`, the bench, and the CLI registration."""

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from gapscope.attribution import attribute
from gapscope.attribution.base import score_variants
from gapscope.attribution.edit_scorers import edit_scorer
from gapscope.attribution.window import words_in_view as visible_words
from gapscope.attribution.words import apply_edits, split_words
from gapscope.data.synth import SynthConfig
from tests.attribution_helpers import BagModel, make_tfidf, toy_corpus
from tests.study_helpers import mini_study


@pytest.mark.parametrize("options", [{}, {"ngram_max": 1}, {"sublinear_tf": False}])
def test_tfidf_fast_path_is_exact(options):
    texts, y = toy_corpus(120)
    model = make_tfidf(texts, y, **options)
    assert edit_scorer(model) is not None
    rng = np.random.default_rng(1)
    for t in texts[:5] + ["URL https://a-b.example.com/x?y=1 foo-bar, don't stop!  \n\n Ünïcode Straße"]:
        w = split_words(t)
        keeps = rng.random((30, len(w))) > rng.random((30, 1))
        variants = [w.edits(k) for k in keeps] + [[], [(0, 3, "xyz")]]  # the last one is not a deletion
        fast = score_variants(model, t, variants)
        slow = model.score([apply_edits(t, v) for v in variants])
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-9)


def test_tfidf_fast_path_in_chunks_is_the_same_and_a_long_email_gets_spans(monkeypatch):
    from gapscope.attribution import edit_scorers
    from gapscope.attribution.corpus import attributor_for
    from gapscope.attribution.occlusion import MAX_WINDOWS

    texts, y = toy_corpus(120)
    model = make_tfidf(texts, y)
    t = texts[0]
    w = split_words(t)
    keeps = np.random.default_rng(2).random((40, len(w))) > 0.3
    variants = [w.edits(k) for k in keeps]
    whole = score_variants(model, t, variants)
    monkeypatch.setattr(edit_scorers, "_CHUNK_CELLS", 3 * len(w))  # 3 variants per dense mask
    np.testing.assert_allclose(score_variants(model, t, variants), whole, rtol=0, atol=1e-12)
    occ = attributor_for("tfidf-lr")  # what the detectors use
    assert occ.params()["max_evals"] is None  # word by word on an email of ordinary length
    assert occ.attribute(model, t).evals == len(w) + 2
    long = " ".join(texts[:400])  # several thousand words: spans, not one variant per word
    assert len(split_words(long)) > MAX_WINDOWS
    att = occ.attribute(model, long)
    assert att.evals <= MAX_WINDOWS + 2 and att.margin == pytest.approx(model.score([long])[0])


def test_truncating_models_spend_the_budget_on_what_they_see():
    class Truncating(BagModel):
        kind = "causal-lm"

        def __init__(self, *a, keep_chars=40, **k):
            super().__init__(*a, **k)
            self.keep_chars = keep_chars

        def tokenize(self, text):
            return ["Ġ" + w for w in text[: self.keep_chars].split()]

        def score(self, texts, progress=None):
            return super().score([t[: self.keep_chars] for t in texts])

    text = "alpha beta gamma delta epsilon zeta " + " ".join(f"w{i}" for i in range(200)) + " danger"
    model = Truncating({"gamma": 1.0, "danger": 5.0})
    n_seen = visible_words(model, split_words(text))
    assert 6 <= n_seen < 20
    att = attribute(model, text, method="occlusion", max_evals=10)
    assert att.evals <= 12
    got = {t.strip(): w for t, w in zip(att.tokens, att.weights)}
    assert got["danger"] == 0.0  # beyond the model's view: exactly no effect
    assert got["gamma"] > 0
    assert att.weights.sum() == pytest.approx(att.margin - att.base_margin)
    # two-sided: a short unseen tail kept alone IS seen (it is then the whole text), but the
    # email's own decision never read it, so it still gets no weight
    text = "alpha beta gamma delta epsilon zeta " + " ".join(f"w{i}" for i in range(8)) + " danger"
    seen = visible_words(model, split_words(text))
    assert seen < len(split_words(text)) - 2
    tail = "".join(split_words(text).segments[seen:])
    assert len(tail) < 40 and model.score([tail])[0] > 1  # the tail alone is read
    att = attribute(model, text, method="occlusion", max_evals=10, two_sided=True)
    got = {t.strip(): w for t, w in zip(att.tokens, att.weights)}
    assert got["danger"] == 0.0
    assert got["gamma"] > 0


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    cfg = SynthConfig(seed=2, n_per_domain=80, domains=["marketing", "personal"])
    return mini_study(tmp_path_factory.mktemp("att"), cfg, detectors={"attributions": {"emails_per_domain": 12}})


def test_attributions_detector_and_store(study):
    from gapscope.attribution import corpus as C
    from gapscope.detectors import attributions as A
    from gapscope.study import artifacts

    findings = A.run(study)
    assert len(findings) == len(study.cells)
    assert all(f.kind == "top_features" and f.severity == "info" for f in findings)
    f = findings[0]
    ex = f.evidence["example"]
    assert ex and len(ex["tokens"]) == len(ex["weights"]) and "".join(ex["tokens"]) == ex["text"]
    assert set(f.evidence["per_domain"]) == {"marketing", "personal"}
    # the out-of-domain shift names which side a feature is stronger on (it read backwards as a/b)
    (other, shift), = f.evidence["shifts"].items()
    imp = {}
    for d in (shift["vs"], other):
        t = pd.read_parquet(study.run_dir / "diagnostics" / "attributions" / f.evidence["cell"] / f"{d}.parquet")
        imp[d] = dict(zip(t["feature"], t["importance"]))
    for row in shift["differences"]["more_in_home"]:
        assert imp[shift["vs"]].get(row["feature"], 0.0) >= imp[other].get(row["feature"], 0.0)
    for row in shift["differences"]["more_in_this_domain"]:
        assert imp[other].get(row["feature"], 0.0) >= imp[shift["vs"]].get(row["feature"], 0.0)
    # the shift is read against two halves of the home emails, and the worst out-of-domain
    # miss is shown beside the home example
    t = shift["shift_test"]
    assert t["emails"] == min(f.evidence["per_domain"][shift["vs"]]["n_emails"] // 2,
                              f.evidence["per_domain"][other]["n_emails"])
    assert shift["beyond_chance"] == (t["across_median"] < t["within_p05"])
    miss = f.evidence["example_out_of_domain"]
    assert miss["domain"] == other and study.rows[miss["id"]].label == 1 and miss["id"] in f.example_ids
    sections = artifacts.read_json(study.run_dir / "diagnostics" / "attributions" / "section.json")
    # one model, specialists only: no pair to compare, so no cell-against-cell section
    assert [s["id"] for s in sections] == ["corpus-attributions", "corpus-attribution-shifts",
                                          "corpus-attribution-examples"]
    assert f.evidence["cell"] in sections[2]["evidence"]  # its two emails, side by side in the report
    # each labelled with the cell's threshold: a negative margin can be phishing
    thr = f"threshold {float(study.cells[0].threshold):+.2f}"
    assert all(thr in label for label in sections[2]["evidence"][study.cells[0].name])
    assert all("(" in row[5] or row[5] == "none" for row in sections[0]["table"]["rows"])  # importance (emails, ..)
    summary = artifacts.read_json(study.run_dir / "diagnostics" / "attributions" / "summary.json")
    cell = study.cells[0]
    assert set(summary["cells"][cell.name]["per_domain"]) == {"marketing", "personal"}
    assert (study.run_dir / "diagnostics" / "attributions" / cell.name / "marketing.parquet").exists()
    # cached: a second pass scores nothing
    calls = {"n": 0}
    real = C.ModelCache.get

    def counting(st, c):
        m = real(st, c)
        orig = m.score

        def score(texts, **kw):
            calls["n"] += 1
            return orig(texts, **kw)

        m.score = score
        return m

    C.ModelCache.clear()
    C.ModelCache.get = counting
    try:
        again = C.cell_domain_attributions(study, cell, "marketing")
    finally:
        C.ModelCache.get = real
        C.ModelCache.clear()
    assert calls["n"] == 0 and len(again) == 12


def test_explain_cli_and_render(study):
    from gapscope.cli_diagnosis import register

    app = typer.Typer()

    @app.callback()
    def main():
        pass

    register(app)
    runner = CliRunner()
    text = study.test_rows("marketing")[0].text
    res = runner.invoke(app, ["explain", "--run", str(study.run_dir), "--model", "tfidf", "--cell", "marketing",
                              "--text", text, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert "".join(out["tokens"]) == text and out["cell"] == "tfidf__specialist-marketing"
    res = runner.invoke(app, ["explain", "--run", str(study.run_dir), "--model", "tfidf", "--cell",
                              "specialist:personal", "--text", text, "--method", "shap", "--top", "3"])
    assert res.exit_code == 0, res.output
    assert "top tokens" in res.stdout and "toward phishing" in res.stdout
    res = runner.invoke(app, ["explain", "--run", str(study.run_dir), "--model", "tfidf", "--text", text])
    assert res.exit_code != 0  # two cells and no generalist: --cell is required
    assert "--cell" in str(res.exception) and "explaining" not in res.output  # refused before any work
    res = runner.invoke(app, ["explain", "--run", str(study.run_dir), "--model", "tfidf", "--cell", "marketing",
                              "--text", "  "])
    assert res.exit_code != 0 and "empty" in str(res.exception)
    # a row the cell trained on is explained, with a note that it is not unseen mail
    cell = next(c for c in study.cells if c.name == "tfidf__specialist-marketing")
    for rid, trained in ((study.train_rows(cell)[0].id, True), (study.test_rows("marketing")[0].id, False)):
        res = runner.invoke(app, ["explain", "--run", str(study.run_dir), "--model", "tfidf", "--cell", "marketing",
                                  "--id", rid])
        assert res.exit_code == 0, res.output
        assert ("training rows" in " ".join(res.output.split())) == trained
    assert "bench" in [c.name for c in app.registered_groups]


def test_explain_reads_a_mail_file_as_training_read_mail(study, tmp_path):
    # --file explained the raw MIME source: headers, boundary lines, quoted-printable soft breaks
    from gapscope.cli_diagnosis import register

    app = typer.Typer()

    @app.callback()
    def main():
        pass

    register(app)
    mail = tmp_path / "offer.eml"
    mail.write_bytes(b'From: Shop <deals@shop.example>\nSubject: Your order\nMIME-Version: 1.0\n'
                     b'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n'
                     b'Your order has shipped, track it in your acc=\nount.\n')
    args = ["explain", "--run", str(study.run_dir), "--model", "tfidf", "--cell", "marketing", "--file", str(mail)]
    res = CliRunner().invoke(app, args + ["--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert "".join(out["tokens"]) == "Subject: Your order\n\nYour order has shipped, track it in your account."
    assert out["explained"] == "offer.eml read as email (subject + text body, as the readers parse mail)"
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and "explained: offer.eml read as email" in " ".join(res.stdout.split())


def test_render_colours_by_direction():
    from rich.console import Console

    from gapscope.explain import render

    att = attribute(BagModel({"urgent": 2.0, "thanks": -1.0}), "urgent please, thanks")
    console = Console(record=True, force_terminal=True, color_system="truecolor", width=80)
    render(att, console=console)
    styles = console.export_text(styles=True, clear=False)
    assert "urgent" in styles and "thanks" in styles
    assert "48;2;255;0;0murgent" in styles  # the strongest phishing word on full red
    assert "48;2;0;90;255" in styles  # legend: legitimate in blue
    # the margin the words are weighed against (here the bag model's empty email)
    assert att.base_margin is not None and f"empty email {att.base_margin:+.3f}" in console.export_text()


def test_render_shows_hostile_text_without_obeying_it():
    from rich.console import Console

    from gapscope.explain import render

    # An OSC 8 hyperlink, a screen clear and a C1 CSI in the email; rich markup in a URL token.
    text = ("verify \x1b]8;;http://evil.example\x1b\\OSCLINK\x1b]8;;\x1b\\ \x1b[2J now "
            "http://evil.example/[link=http://attacker.example/x]clickhere \x9b31m")
    att = attribute(BagModel({"verify": 2.0, "now": -1.0}), text)
    console = Console(record=True, force_terminal=True, color_system="truecolor", width=200)
    render(att, title="m[red]x", console=console)
    raw = console.export_text(styles=True, clear=False)
    shown = console.export_text()
    assert "\x1b]8" not in raw and "\x9b" not in raw  # no hyperlink, no 8-bit CSI from the email
    assert "⟨U+001B⟩[2J" in shown and "⟨U+009B⟩31m" in shown
    assert "[link=http://attacker.example/x]clickhere" in shown  # the token as written, not a link
    assert "m[red]x" in shown  # the title is not markup either


def test_bench_tfidf_small():
    from gapscope.bench.attribution import bench

    res = bench("tfidf", 2)
    assert set(res["methods"]) == {"shap", "occlusion"}
    assert res["methods"]["shap"]["evals_per_email"] <= 500
    assert res["speedup"] > 1
    for k in ("deletion_auc", "insertion_auc", "comprehensiveness", "sufficiency"):
        assert k in res["methods"]["occlusion"]["faithfulness"] and k in res["random"]
        d = res["methods"]["occlusion"]["vs_shap"][k]
        assert d["reading"] == "too few emails"  # 2 emails: no reading
        assert d["ci95"] is None or d["ci95"][0] <= d["difference"] <= d["ci95"][1]


def test_the_bench_explains_emails_its_model_never_trained_on(monkeypatch):
    # the training rows and the bench's emails came from two draws that overlapped (7 of the 8
    # emails of `--fit 64 --n 8`, 2 of 6 for tf-idf at --n 6)
    from gapscope.attribution import faithfulness as F
    from gapscope.bench import attribution as B

    trained, explained = set(), set()
    build, evaluate = B.build_model, F.evaluate

    def build_spy(name, seed, train):
        trained.update(r.text for r in train)
        return build(name, seed, train)

    def evaluate_spy(model, att, *a, **k):
        explained.add(att.text)
        return evaluate(model, att, *a, **k)

    monkeypatch.setattr(B, "build_model", build_spy)
    monkeypatch.setattr(F, "evaluate", evaluate_spy)
    B.bench("tfidf", 6, shap_evals=50)
    assert len(trained) > 1000 and len(explained) == 6 and not explained & trained


def test_bench_on_a_fitted_cell_of_a_run(study):
    from gapscope.bench.attribution import bench

    res = bench("tfidf", 2, run=study.run_dir, cell="personal", shap_evals=100)
    assert "tfidf__specialist-personal" in res["described"] and res["n"] == 2
    assert res["methods"]["shap"]["evals_per_email"] <= 100


def test_the_store_hands_back_what_a_later_process_reads(tmp_path):
    # computed values were kept at full precision in the process that computed them and read back
    # rounded by every later one: a resumed run ranked near-ties ('bridge' 0.1045 over
    # 'luxnathi' 0.1044) differently from an uninterrupted one
    from gapscope.attribution import corpus as C
    from gapscope.attribution.base import Attribution

    class Fine:
        name = "fine"

        def params(self):
            return {}

        def prepare(self, model, texts):
            pass

        def attribute(self, model, text):
            return Attribution(tokens=[text[:2], text[2:]], weights=[0.104449999, -0.1044512345], margin=1.23456789,
                               method="fine")

    store = C.AttributionStore(tmp_path / "s.jsonl")
    first = store.get_or_compute(None, Fine(), [("a", "hello"), ("b", "world")])
    C._PARSED.clear()  # a later process parses the file afresh
    later = C.AttributionStore(tmp_path / "s.jsonl").load()
    for i in ("a", "b"):
        assert first[i].weights.tolist() == later[i].weights.tolist() and first[i].margin == later[i].margin


def test_a_stored_attribution_of_another_word_cutter_is_computed_again(tmp_path):
    # records written before combining marks stayed inside words have more tokens than the text has
    # words now: read back, they failed the attributions detector ("tokens do not match")
    import json

    from gapscope.attribution import corpus as C
    from gapscope.attribution.base import Attribution, get_method

    text = "आपका खाता"
    old = Attribution(tokens=["आपक", "ा ", "खात", "ा"], weights=[0.1, 0.2, 0.3, 0.4], margin=1.0, method="occlusion")
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"id": "a", "attribution": old.to_dict()}) + "\n")
    C._PARSED.clear()
    got = C.AttributionStore(path).get_or_compute(BagModel({"खाता": 1.0}), get_method("occlusion"), [("a", text)])
    assert got["a"].tokens == ["आपका ", "खाता"] and got["a"].weights.tolist() == [0.0, 1.0]


def test_a_cell_of_several_domains_is_read_against_them_pooled_and_each_against_the_rest(tmp_path):
    # a generalist had no comparison at all (no out-of-domain home) and a leave-one-out cell was read
    # against its first training domain alone
    from gapscope.detectors import attributions as A

    # 60 held-out emails a domain: at 40, two halves of the pooled home agree so little (their top lists'
    # overlap at its 5th percentile 0 on one split in four) that no shift can read beyond chance
    cfg = SynthConfig(seed=3, n_per_domain=240, domains=["marketing", "personal", "mailinglist"],
                      shortcut={"domain": "mailinglist", "rate": 1.0})
    study = mini_study(tmp_path, cfg, specialist=[], generalist=["marketing", "personal", "mailinglist"],
                       detectors={"attributions": {"emails_per_domain": 60}})
    (f,) = A.run(study)
    pool = "training domains (marketing, personal, mailinglist)"
    assert f.evidence["shifts"] == {} and set(f.evidence["contrasts"]) == {"marketing", "personal", "mailinglist"}
    assert f"top phishing evidence in its {pool}" in f.title
    footer = f.evidence["contrasts"]["mailinglist"]
    assert footer["vs"] == "training domains (marketing, personal)" and footer["shift_test"]["emails"] == 60
    assert footer["beyond_chance"]  # the footer marks phishing there and nowhere else
    assert "Within its training domains, its phishing evidence in" in f.summary and "mailinglist" in f.summary


def test_a_cell_of_many_training_domains_counts_them_in_its_texts(tmp_path):
    # a leave-one-out cell of a 12-domain study listed its 11 training domains in its title and twice
    # in its summary; the names stay in the finding's domains and evidence
    from gapscope.detectors import attributions as A

    names = ["marketing", "personal", "mailinglist", "alerts"]
    cfg = SynthConfig(seed=3, n_per_domain=80, domains=names)
    study = mini_study(tmp_path, cfg, specialist=[], generalist=names,
                       detectors={"attributions": {"emails_per_domain": 20}})
    (f,) = A.run(study)
    assert "top phishing evidence in its 4 training domains is" in f.title and "mailinglist" not in f.title
    assert "training domains (" not in f.summary and sorted(f.domains) == sorted(names)
    assert f.evidence["contrasts"]["alerts"]["vs"] == "training domains (marketing, personal, mailinglist)"


def test_the_slow_parts_of_the_attributions_detector_say_so_on_the_terminal(tmp_path, capsys):
    # at 12 domains the contrasts within a leave-one-out cell's training domains (19 of its 24 s) and
    # the comparisons between cells (2 minutes) ran after the last progress line, silent
    from gapscope.detectors import attributions as A

    names = ["marketing", "personal", "mailinglist"]
    study = mini_study(tmp_path, SynthConfig(seed=3, n_per_domain=60, domains=names), specialist=[],
                       generalist=names, detectors={"attributions": {"emails_per_domain": 15}})
    capsys.readouterr()
    A.run(study)
    err = " ".join(capsys.readouterr().err.split())  # rich wraps a long line
    assert "tfidf__generalist, each training domain against the rest" in err
    assert "attributions: cells compared on each domain" in err


def test_attributions_compare_models_and_the_generalist(tmp_path):
    """Between models (two models trained the same way) and against each model's generalist, on
    the same emails: the report's table, one line per pair; every domain's comparison in summary.json."""
    from gapscope.detectors import attributions as A
    from gapscope.study import artifacts

    cfg = SynthConfig(seed=3, n_per_domain=80, domains=["marketing", "personal"])
    st = mini_study(tmp_path, cfg, generalist=["marketing", "personal"],
                    models=[{"name": "uni", "kind": "tfidf-lr", "ngram_max": 1},
                            {"name": "bi", "kind": "tfidf-lr", "ngram_max": 2}],
                    detectors={"attributions": {"emails_per_domain": 12}})
    A.run(st)
    base = st.run_dir / "diagnostics" / "attributions"
    between = artifacts.read_json(base / "summary.json")["between_cells"]
    cells = {c.name: c for c in st.cells}
    got = {(p["compared"], p["a"], p["b"]) for p in between["pairs"]}
    # 3 paradigms x one pair of models; each model's two specialists against its generalist
    assert len(got) == 3 + 2 * 2
    for what, a, b in got:
        if what == "models":
            assert cells[a].paradigm == cells[b].paradigm and cells[a].model != cells[b].model
        else:
            assert cells[a].model == cells[b].model and cells[b].paradigm == "generalist"
    for p in between["pairs"]:
        per = {d: v[f"{p['a']} vs {p['b']}"] for d, v in between["by_domain"].items() if f"{p['a']} vs {p['b']}" in v}
        assert p["domains"] == len(per) == 2
        assert p["overlap_min"] == min(v["phishing_overlap"] for v in per.values()) == per[p["least_alike"]]["phishing_overlap"]
        assert p["phishing_more_in_a"] == per[p["least_alike"]]["phishing_more_in_a"]
    # two specialists of one model on a third domain, or two models trained differently: not compared
    assert not any(cells[a].model == cells[b].model and "generalist" not in (cells[a].paradigm, cells[b].paradigm)
                   for d in between["by_domain"].values() for a, b in (k.split(" vs ") for k in d))
    sections = artifacts.read_json(base / "section.json")
    table = next(s for s in sections if s["id"] == "corpus-attribution-between-cells")["table"]
    assert len(table["rows"]) == len(got) and table["rows"][0][0] == "two models"
    # both cells' importance beside each feature: one listed for A because B pushes it toward legitimate
    # read as a feature A relies on
    import re

    for row, p in zip(table["rows"], between["pairs"]):
        assert row[6] == "none" or re.fullmatch(r"(.+ \([+-]\d\.\d\d \| [+-]\d\.\d\d\)(, )?)+", row[6])
        assert row[5].startswith(p["least_alike"]) and all(d in row[5] for d in p["tied_with"])
    assert next(s for s in sections if s["id"] == "corpus-attribution-between-cells")["title"].startswith(
        "How the models differ, and what")


def test_the_attribution_method_option_is_named_and_serves_tfidf_cells(tmp_path):
    # method = "relevance" failed the whole detector on a TF-IDF cell, and findings said
    # "Occlusion attributions" whatever the method
    from gapscope.attribution.corpus import attributor_for, method_label
    from gapscope.detectors import attributions as A
    from gapscope.study import artifacts

    assert attributor_for("tfidf-lr", "relevance").name == "occlusion"
    assert attributor_for("causal-lm", "relevance").name == "relevance"
    assert method_label("tfidf-lr", "shap") == "SHAP (Partition)"
    cfg = SynthConfig(seed=2, n_per_domain=60, domains=["marketing", "personal"])
    for method, said in (("relevance", "Occlusion attributions over"), ("shap", "SHAP (Partition) attributions over")):
        study = mini_study(tmp_path / method, cfg,
                           detectors={"attributions": {"emails_per_domain": 4, "method": method}})
        findings = A.run(study)
        assert findings and all(f.summary.startswith(said) for f in findings), [f.summary for f in findings]
        caption = artifacts.read_json(study.run_dir / "diagnostics" / "attributions" / "section.json")[0]["caption"]
        assert caption.startswith(f"Each cell's attributions ({method_label('causal-lm', method).lower()}")
