"""End-to-end study runs with the TF-IDF baseline: held-out evaluation, one-class domains, resume."""

import json

import pytest

from gapscope.study import cells as cells_mod
from gapscope.study.runner import run_study

WORDS = {
    "shop": ["order", "cart", "discount", "delivery", "parcel", "coupon", "store", "shipping"],
    "bank": ["account", "balance", "transfer", "statement", "card", "branch", "loan", "deposit"],
    "work": ["meeting", "agenda", "report", "deadline", "team", "project", "review", "manager"],
    "phish": ["phishonly", "prize", "winner", "claim", "urgent", "lottery", "inheritance", "fee"],
}
PHISH = ["verify your password now", "click this link to unlock", "confirm your login details",
         "your account will be suspended", "send the fee today"]
LEGIT = ["see you at lunch", "thanks for the update", "the minutes are attached",
         "let me know what you think", "the invoice is paid"]


def make_corpus(tmp_path, domain, n, phishing_only=False, seed=0):
    import random

    rnd = random.Random(f"{domain}-{seed}")
    lines = []
    for i in range(n):
        label = 1 if phishing_only else i % 2
        words = rnd.sample(WORDS[domain], 4)
        cue = rnd.choice(PHISH if label else LEGIT)
        if rnd.random() < 0.15:  # some ambiguity so scores are not all perfect
            cue = rnd.choice(LEGIT if label else PHISH)
        lines.append(json.dumps({"text": f"Hello, {' '.join(words)} {cue}. ref {domain}-{i}", "label": label}))
    p = tmp_path / f"{domain}.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def make_study(tmp_path, extra=""):
    for d in ("shop", "bank", "work"):
        make_corpus(tmp_path, d, 80)
    make_corpus(tmp_path, "phish", 40, phishing_only=True)
    spec = tmp_path / "study.toml"
    spec.write_text("""
[study]
name = "t"
bootstrap = 200
[[datasets]]
path = "shop.jsonl"
[[datasets]]
path = "bank.jsonl"
[[datasets]]
path = "work.jsonl"
[[datasets]]
path = "phish.jsonl"
[paradigms]
specialist = ["shop", "bank", "work"]
generalist = ["shop", "bank", "work", "phish"]
lodo = true
""" + extra)
    return spec


def test_study_matrix_uses_held_out_rows_only(tmp_path):
    spec = make_study(tmp_path)
    res = run_study(spec, tmp_path / "run")
    run = tmp_path / "run"
    matrix = json.loads((run / "matrix.json").read_text())
    splits = json.loads((run / "splits.json").read_text())
    test = set(splits["test"])
    cells = {(e["model"], e["paradigm"]) for e in matrix}
    assert len(cells) == 3 + 1 + 4  # specialists, generalist, lodo
    assert {e["test_domain"] for e in matrix} == {"shop", "bank", "work", "phish"}
    for cell_dir in (run / "cells").iterdir():
        import pandas as pd

        p = pd.read_parquet(cell_dir / "predictions.parquet")
        assert set(p.loc[p.split == "test", "id"]) == test
        assert not set(p.loc[p.split == "train", "id"]) & test
    # in-domain entries are scored on exactly that domain's held-out rows
    n_test = {d: sum(1 for i in test if i.startswith(d + "-")) for d in ("shop", "bank", "work", "phish")}
    for e in matrix:
        assert e["n"] == n_test[e["test_domain"]]
    spec_cell = [e for e in matrix if e["paradigm"] == "specialist:shop"]
    assert [e["in_domain"] for e in spec_cell if e["test_domain"] == "shop"] == [True]
    phish = [e for e in matrix if e["test_domain"] == "phish"]
    assert all(e["auroc"] is None for e in phish)  # one class: undefined, not a crash
    assert (run / "report.html").exists() and (run / "findings.json").exists()
    assert res.report == run / "report.html"


def test_rerun_after_interruption_reproduces_matrix(tmp_path, monkeypatch):
    spec = make_study(tmp_path)
    ref = tmp_path / "ref"
    run_study(spec, ref, detectors=False)

    real = cells_mod.run_cell
    calls = {"n": 0}

    def flaky(run_dir, job, test_ids, progress=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the user pressed Ctrl-C in the third cell
        return real(run_dir, job, test_ids, progress)

    monkeypatch.setattr("gapscope.study.executors.run_cell", flaky)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, run, detectors=False)
    assert not (run / "matrix.json").exists()
    monkeypatch.setattr("gapscope.study.executors.run_cell", real)
    res = run_study(spec, run, detectors=False)
    assert len(res.skipped) == 2  # finished cells are not redone
    assert (run / "matrix.json").read_text() == (ref / "matrix.json").read_text()


def test_failed_cell_is_retried_and_reported(tmp_path, monkeypatch):
    spec = make_study(tmp_path)
    real = cells_mod.run_cell
    seen = []

    def broken_once(run_dir, job, test_ids, progress=None):
        seen.append(job.name)
        if job.paradigm == "specialist:bank" and seen.count(job.name) == 1:
            raise RuntimeError("transient failure")
        return real(run_dir, job, test_ids, progress)

    monkeypatch.setattr("gapscope.study.executors.run_cell", broken_once)
    res = run_study(spec, tmp_path / "run", detectors=False)
    bank = [o for o in res.outcomes if o.name == "tfidf__specialist-bank"][0]
    assert bank.ok and bank.attempts == 2


def test_phishing_only_domain_gets_no_specialist_but_is_scored(tmp_path):
    spec = make_study(tmp_path, extra="")
    spec.write_text(spec.read_text().replace('specialist = ["shop", "bank", "work"]', 'specialist = true'))
    res = run_study(spec, tmp_path / "run", detectors=False)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert [n["paradigm"] for n in run["not_trainable"]] == ["specialist:phish"]
    assert "all phishing" in run["not_trainable"][0]["reason"]
    assert not run["failed"]
    cells = {c.name for c in res.outcomes}
    assert "tfidf__specialist-phish" not in cells and "tfidf__specialist-shop" in cells
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())
    phish = [e for e in matrix if e["test_domain"] == "phish" and e["paradigm"] == "specialist:shop"]
    assert phish and phish[0]["auroc"] is None and "one class" in phish[0]["undefined"]["auroc"]


def test_a_domain_read_from_several_files(tmp_path):
    """A [[datasets]] table with a list of paths is one domain; a text repeated across its files
    keeps two rows with two ids, as a repeat within one file does."""
    make_study(tmp_path)
    shop = (tmp_path / "shop.jsonl").read_text().splitlines()
    (tmp_path / "shop_a.jsonl").write_text("\n".join(shop[:50]) + "\n")
    (tmp_path / "shop_b.jsonl").write_text("\n".join(shop[50:] + shop[:1]) + "\n")
    spec = tmp_path / "study.toml"
    spec.write_text(spec.read_text().replace('path = "shop.jsonl"', 'name = "shop"\npath = ["shop_a.jsonl", "shop_b.jsonl"]'))
    run_study(spec, tmp_path / "run", detectors=False)
    import pandas as pd

    rows = pd.read_parquet(tmp_path / "run" / "data" / "rows.parquet")
    assert (rows.domain == "shop").sum() == 81 and rows.id.is_unique
    sources = json.loads((tmp_path / "run" / "data" / "sources.json").read_text())
    assert [(s["domain"], s["rows_kept"]) for s in sources][:2] == [("shop", 50), ("shop", 31)]
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())
    assert {e["test_domain"] for e in matrix} == {"shop", "bank", "work", "phish"}


@pytest.mark.parametrize("option,said", [
    ("C = -1.0", "model 'tfidf': option C must be a number > 0, got -1.0"),
    ("max_iter = 0", "model 'tfidf': option max_iter must be a whole number >= 1, got 0"),
    ("threshold = 0.5", "model 'tfidf': unknown option 'threshold'"),
])
def test_model_options_are_checked_before_any_data_is_read(tmp_path, option, said):
    from gapscope.errors import GapscopeError

    spec = make_study(tmp_path, extra=f'[[models]]\nname = "tfidf"\nkind = "tfidf-lr"\n{option}\n')
    with pytest.raises(GapscopeError) as e:
        run_study(spec, tmp_path / "run", detectors=False)
    assert str(e.value) == f"{spec}: {said}" or str(e.value).startswith(f"{spec}: {said}")
    assert not (tmp_path / "run").exists()


def test_a_run_directory_resumes_only_its_own_study(tmp_path):
    from gapscope.study.runner import OtherRunError

    spec = make_study(tmp_path)
    run_study(spec, tmp_path / "run", detectors=False)
    before = (tmp_path / "run" / "study.toml").read_text()
    # the name, bootstrap and detector tables may change: the run resumes
    spec.write_text(spec.read_text().replace('name = "t"', 'name = "t2"').replace("bootstrap = 200", "bootstrap = 100")
                    + "[detectors]\ncells_per_model = 1\n")
    res = run_study(spec, tmp_path / "run", detectors=False)
    assert res.skipped and not [o for o in res.outcomes if o.ok]
    # a run resolved before column keys could be left out listed every one: it still resumes
    resolved = tmp_path / "run" / "study.toml"
    resolved.write_text(resolved.read_text().replace('label = "label"\n', 'text = "text"\nsubject = "subject"\n'
                                                     'body = "body"\nlabel = "label"\nid = "id"\n'))
    assert 'id = "id"' in resolved.read_text()
    res = run_study(spec, tmp_path / "run", detectors=False)
    assert res.skipped and not [o for o in res.outcomes if o.ok]
    # another corpus list would mix another study's cells into this run
    other = tmp_path / "other.toml"
    other.write_text(spec.read_text().replace('[[datasets]]\npath = "work.jsonl"\n', "")
                     .replace(', "work"', ""))
    with pytest.raises(OtherRunError) as e:
        run_study(other, tmp_path / "run", detectors=False)
    assert "holds a run of another spec ([[datasets]] differ; [paradigms] differ)" in str(e.value)
    # a changed [study] value is said with both sides (it named four keys and neither value)
    reseeded = tmp_path / "reseeded.toml"
    reseeded.write_text(spec.read_text().replace("[study]\n", "[study]\nseed = 3\n", 1))
    with pytest.raises(OtherRunError) as e:
        run_study(reseeded, tmp_path / "run", detectors=False)
    assert "holds a run of another spec ([study] seed was 0, now 3)" in str(e.value)
    assert (tmp_path / "run" / "study.toml").read_text() != before  # the resumed one, untouched by `other`
    assert "work" in (tmp_path / "run" / "study.toml").read_text()
    # a directory that holds something else is not written into
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(OtherRunError, match="is not empty and holds no gapscope run"):
        run_study(spec, tmp_path / "mine", detectors=False)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    # a run that stopped before reading its data (a wrong column) holds only its spec: the
    # corrected spec reruns in the same directory, as the README's "rerun the same command" says
    from gapscope.errors import GapscopeError

    broken = tmp_path / "broken.toml"
    broken.write_text(spec.read_text().replace('path = "work.jsonl"', 'path = "work.jsonl"\ntext = "nosuchcol"'))
    with pytest.raises(GapscopeError, match="nosuchcol"):
        run_study(broken, tmp_path / "fixme", detectors=False)
    assert (tmp_path / "fixme" / "study.toml").exists()
    fixed = run_study(spec, tmp_path / "fixme", detectors=False)
    assert [o for o in fixed.outcomes if o.ok] and "nosuchcol" not in (tmp_path / "fixme" / "study.toml").read_text()
    # a project folder holding the user's own spec is not "a run that stopped early": the
    # resolved spec was written over it, comments and all
    project = tmp_path / "project"
    project.mkdir()
    mine = '# my study, with notes\n' + spec.read_text()
    (project / "study.toml").write_text(mine)
    with pytest.raises(OtherRunError, match="holds a study.toml that no gapscope run wrote"):
        run_study(spec, project, detectors=False)
    assert (project / "study.toml").read_text() == mine
    # nor may a run write over the very spec it runs
    own = project / "study.toml"
    with pytest.raises(OtherRunError, match="would write the run's resolved spec over"):
        run_study(own, project, detectors=False)
    assert own.read_text() == mine


def test_a_tool_restarts_its_own_run_of_the_same_study_only(tmp_path):
    """The demo and the validators own their run directory: another seed or variant of the same
    study starts over there; a run of another study is never removed."""
    from gapscope.study.runner import OtherRunError

    spec = make_study(tmp_path)
    run_study(spec, tmp_path / "run", detectors=False)
    reseeded = tmp_path / "reseeded.toml"
    reseeded.write_text(spec.read_text().replace('name = "t"', 'name = "t"\nseed = 7'))
    with pytest.raises(OtherRunError):
        run_study(reseeded, tmp_path / "run", detectors=False)
    res = run_study(reseeded, tmp_path / "run", detectors=False, restart=True)
    assert not res.skipped and "seed = 7" in (tmp_path / "run" / "study.toml").read_text()
    other = tmp_path / "other.toml"
    other.write_text(reseeded.read_text().replace('name = "t"', 'name = "someone-else"').replace("seed = 7", "seed = 8"))
    with pytest.raises(OtherRunError):
        run_study(other, tmp_path / "run", detectors=False, restart=True)
    assert "seed = 7" in (tmp_path / "run" / "study.toml").read_text()
    # a job log written before the job starts does not make --out "not empty"
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "slurm.out").write_text("starting")
    run_study(spec, tmp_path / "fresh", detectors=False)


@pytest.mark.parametrize("option,said", [
    ('device_map = "auto"', "device_map splits a model over CUDA GPUs"),
    ("load_in_4bit = true", "load_in_4bit needs a CUDA GPU"),
])
def test_gpu_only_options_are_refused_before_any_data_is_read(tmp_path, option, said):
    import torch

    from gapscope.errors import GapscopeError
    from tests.tiny_models import tiny_causal_lm_dir

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: these options are legal here")
    src = tiny_causal_lm_dir(tmp_path / "models", "llama")
    spec = make_study(tmp_path, extra=f'[[models]]\nname = "lm"\nkind = "causal-lm"\nsource = "{src}"\n{option}\n')
    with pytest.raises(GapscopeError, match=said) as e:
        run_study(spec, tmp_path / "run", detectors=False)
    assert "model 'lm'" in str(e.value)
    assert not (tmp_path / "run").exists()


def test_a_resume_after_the_corpus_was_relabelled_redoes_the_cells(tmp_path, monkeypatch):
    # the cell fingerprint named row ids only: relabelling rows (as a label-noise finding invites)
    # and rerunning reused every cell, each scored on the old labels
    spec = make_study(tmp_path)
    run_study(spec, tmp_path / "run", detectors=False)
    path = tmp_path / "bank.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    for r in rows[:20]:
        r["label"] = 1 - r["label"]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    from gapscope.study import runner

    seen = []
    real = runner.run_cells
    monkeypatch.setattr(runner, "run_cells", lambda run_dir, jobs, *a: seen.extend(jobs) or real(run_dir, jobs, *a))
    res = run_study(spec, tmp_path / "run", detectors=False)
    assert not res.skipped and all(o.ok for o in res.outcomes)
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())
    bank = {(e["model"], e["paradigm"]): (e["n"], e["n_positive"]) for e in matrix if e["test_domain"] == "bank"}
    assert len(set(bank.values())) == 1  # every cell scored on the same, current labels
    import pandas as pd

    current = pd.read_parquet(tmp_path / "run" / "data" / "rows.parquet").set_index("id")["label"]
    for p in (tmp_path / "run" / "cells").glob("*/predictions.parquet"):
        preds = pd.read_parquet(p)  # trained and scored on the current labels (in this process too)
        assert (preds["label"].to_numpy() == current.loc[preds["id"]].to_numpy()).all(), p.parent.name
    # unchanged data: the next run resumes every cell
    again = run_study(spec, tmp_path / "run", detectors=False)
    assert again.skipped and not again.outcomes
    # a run written before fingerprints covered the rows is not retrained on upgrade while its
    # cells' predictions hold the current ids and labels
    jobs = {j.name: j for j in seen}
    for meta_path in (tmp_path / "run" / "cells").glob("*/cell.json"):
        meta = json.loads(meta_path.read_text())
        meta["fingerprint"] = jobs[meta_path.parent.name].fingerprint(with_data=False)
        del meta["data_key"]
        meta_path.write_text(json.dumps(meta))
    upgraded = run_study(spec, tmp_path / "run", detectors=False)
    assert len(upgraded.skipped) == len(jobs) and not upgraded.outcomes
    # ... and is when they do not: relabelled once more, every cell that read those rows trains again
    # (the split moves only rows at its edge, so a cell that neither trained nor was scored on them stays)
    path.write_text("\n".join(json.dumps({**r, "label": 1 - r["label"]} if i < 4 else r)
                              for i, r in enumerate(rows)) + "\n")
    before = {p.parent.name: set(pd.read_parquet(p)["id"]) for p in (tmp_path / "run" / "cells").glob("*/predictions.parquet")}
    res = run_study(spec, tmp_path / "run", detectors=False)
    now = pd.read_parquet(tmp_path / "run" / "data" / "rows.parquet").set_index("id")["label"]
    moved = {i for i in now.index if i in current.index and now[i] != current[i]}
    assert len(moved) == 4
    assert {o.name for o in res.outcomes if o.ok} >= {name for name, ids in before.items() if ids & moved}
    assert all(not (before[name] & moved) for name in res.skipped)


@pytest.mark.parametrize("seed", range(6))
def test_the_test_cap_keeps_each_labels_share(seed):
    # drawn over the whole domain, a 5%-phishing domain capped at 40 got 0 to 6 phishing rows
    from types import SimpleNamespace

    from gapscope.data.rows import Row
    from gapscope.study.runner import cap_test

    rows = {f"r{i:03d}": Row(id=f"r{i:03d}", domain="d", text=str(i), label=int(i < 10)) for i in range(200)}
    rows |= {f"q{i:03d}": Row(id=f"q{i:03d}", domain="e", text=str(i), label=int(i < 1)) for i in range(100)}
    spec = SimpleNamespace(study=SimpleNamespace(max_test_per_domain=40, seed=seed))
    kept = cap_test(rows, sorted(rows), spec)
    d = [i for i in kept if rows[i].domain == "d"]
    e = [i for i in kept if rows[i].domain == "e"]
    assert len(d) == 40 and sum(rows[i].label for i in d) == 2  # 5% of 40
    assert len(e) == 40 and sum(rows[i].label for i in e) == 1  # 1% of 40 rounds to 0: one kept


def test_a_label_that_is_one_campaign_is_kept_for_training_and_said(tmp_path, capsys):
    # split by near-duplicate groups, a domain whose phishing is one email sent ten times has no
    # held-out phishing: it was silent, the domain just lost its F1
    spec = make_study(tmp_path)
    lines = [json.dumps({"text": "Your parcel is held: pay the customs fee at the link", "label": 1})] * 10
    lines += [json.dumps({"text": f"Hello, the {w} order {i} shipped today", "label": 0})
              for i, w in enumerate(["blue", "red", "green", "small", "large"] * 4)]
    (tmp_path / "shop.jsonl").write_text("\n".join(lines) + "\n")
    run_study(spec, tmp_path / "run", detectors=False)
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert splits["no_test_rows"] == [{"domain": "shop", "label": "phishing", "rows": 10}]
    assert "shop: no held-out phishing email: its 10 are copies" in capsys.readouterr().err.replace("\n", " ")


def test_a_label_held_out_whole_with_copies_labelled_otherwise_is_said(tmp_path, capsys):
    # a group whose copies carry both labels stays on one side: held out with its legitimate copy,
    # the shop's only phishing email (sent three times) left no training phishing, and the
    # specialist was skipped as 'all legitimate' without a word of why
    spec = make_study(tmp_path)
    spec.write_text(spec.read_text().replace('name = "t"\n', 'name = "t"\nseed = 5\n'))  # a seed that holds it out
    lines = [json.dumps({"text": f"Hello, the {w} order {i} shipped today", "label": 0})
             for i, w in enumerate(["blue", "red", "green", "small", "large", "tall"])]
    lines += [json.dumps({"text": "Hello, the blue order 0 shipped today", "label": 1})] * 3
    (tmp_path / "shop.jsonl").write_text("\n".join(lines) + "\n")
    run_study(spec, tmp_path / "run", detectors=False)
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert splits["no_train_rows"] == [{"domain": "shop", "label": "phishing", "rows": 3}]
    err = " ".join(capsys.readouterr().err.split())
    assert "shop: no training phishing email: its 3 are copies or near-duplicates of held-out emails" in err
    assert "(3 phishing rows were held out with their copies labelled legitimate" in err


def test_a_label_held_out_whole_for_another_reason_is_not_called_a_copy():
    # one phishing row at test_fraction 0.6 is held out (round(0.6) = 1): no copies are involved
    from gapscope.data.rows import Row
    from gapscope.study.runner import untrained_classes
    from gapscope.study.split import split_held_out

    rows = [Row(id=f"l{i}", domain="d", text=f"legit {i}", label=0) for i in range(10)]
    rows.append(Row(id="p0", domain="d", text="phish", label=1))
    groups = list(range(len(rows)))
    train, _ = split_held_out(rows, 0.6, 2, groups)  # a seed that holds p0 out
    assert "p0" not in train and untrained_classes(rows, train, groups) == []


def test_a_leave_one_out_cell_trains_without_copies_of_the_domain_it_leaves_out(tmp_path, capsys):
    # twelve bank emails copied into another corpus carried bank's footer into the leave-bank-out
    # cell (F1 1.00 on bank; 0.76 without the copies)
    spec = make_study(tmp_path)
    bank = [json.loads(x) for x in (tmp_path / "bank.jsonl").read_text().splitlines()]
    work = (tmp_path / "work.jsonl").read_text()
    copies = [json.dumps({"text": r["text"], "label": r["label"]}) for r in bank[:12]]
    (tmp_path / "work.jsonl").write_text(work + "\n".join(copies) + "\n")
    run_study(spec, tmp_path / "run", detectors=False)
    said = " ".join(capsys.readouterr().err.split())
    texts = {r["text"] for r in bank}
    rows = {}
    import pandas as pd

    for cell in ("tfidf__lodo-bank", "tfidf__lodo-shop"):
        p = pd.read_parquet(tmp_path / "run" / "cells" / cell / "predictions.parquet")
        rows[cell] = set(p.loc[p.split == "train", "id"])
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    data = pd.read_parquet(tmp_path / "run" / "data" / "rows.parquet")
    copied_ids = set(data.loc[(data.domain == "work") & data.text.isin(texts), "id"]) & set(splits["train"])
    assert copied_ids  # the copies that stayed in training (after the split)
    assert not rows["tfidf__lodo-bank"] & copied_ids  # left out with bank
    assert copied_ids <= rows["tfidf__lodo-shop"]  # other cells keep them
    assert "lodo:bank: " in said and "copy or nearly copy a bank email and are left out with it" in said


def test_a_study_of_one_domain_says_it_measures_no_generalization(tmp_path, capsys):
    # it ran and showed '-' for every out-of-domain number without a word why
    rows = [{"text": f"{'verify your account now' if i % 2 else 'lunch on friday'} {i}", "label": i % 2}
            for i in range(40)]
    (tmp_path / "shop.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = tmp_path / "s.toml"
    spec.write_text('[[datasets]]\npath = "shop.jsonl"\n[[models]]\nname = "tfidf"\nkind = "tfidf-lr"\n')
    run_study(spec, tmp_path / "run", detectors=False)
    said = " ".join(capsys.readouterr().err.split())
    assert "one domain (shop): a cell is scored only where it trained, so nothing here measures generalization" \
           in said
