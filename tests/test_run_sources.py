"""What a run keeps and says about its sources: audit.json's rejected rows and their places, the console lines."""

import json

from tests.test_runner import make_corpus

from gapscope.study.runner import run_study


def test_a_runs_audit_keeps_where_rejected_rows_are_and_the_console_names_every_source(tmp_path, capsys):
    make_corpus(tmp_path, "shop", 40)
    bank = make_corpus(tmp_path, "bank", 40)
    with bank.open("a") as f:  # two rows without a label, on lines 41 and 42
        f.write(json.dumps({"text": "no label here"}) + "\n" + json.dumps({"text": "nor here"}) + "\n")
    spec = tmp_path / "study.toml"
    spec.write_text('[study]\nname = "t"\nbootstrap = 0\n[[datasets]]\npath = "shop.jsonl"\n'
                    '[[datasets]]\npath = "bank.jsonl"\n[paradigms]\nspecialist = ["shop", "bank"]\n'
                    'generalist = false\n')
    run_study(spec, tmp_path / "run", detectors=False)
    audit = json.loads((tmp_path / "run" / "audit.json").read_text())
    by_domain = {s["domain"]: s for s in audit["sources"]}
    assert by_domain["bank"]["rejected_at"] == {"missing label": ["bank.jsonl:41", "bank.jsonl:42"]}
    assert by_domain["shop"]["rejected_at"] == {}
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    # as `gapscope data audit` prints them: the source without rejections too
    assert "shop.jsonl: 40 rows in, 40 kept, 0 rejected" in err
    assert "bank.jsonl: 42 rows in, 40 kept, 2 rejected (missing label: 2 at bank.jsonl:41, bank.jsonl:42)" in err


def test_row_findings_say_where_the_rows_are(tmp_path):
    # the rejected-rows finding gave reasons only, the train/test duplicates finding ids only
    from gapscope.detectors import data_quality
    from gapscope.study.context import Study

    shop = make_corpus(tmp_path, "shop", 40)
    bank = make_corpus(tmp_path, "bank", 40)
    with bank.open("a") as f:  # a label-less row on line 41
        f.write(json.dumps({"text": "no label here"}) + "\n")
    with shop.open("a") as f:  # copies of bank's rows in shop, from line 41 on
        f.write("\n".join(bank.read_text().splitlines()[:30]) + "\n")
    spec = tmp_path / "study.toml"
    spec.write_text('[study]\nname = "t"\nbootstrap = 0\n[[datasets]]\npath = "shop.jsonl"\n'
                    '[[datasets]]\npath = "bank.jsonl"\n[paradigms]\nspecialist = ["shop", "bank"]\n'
                    'generalist = false\n')
    run_study(spec, tmp_path / "run", detectors=False)
    found = {f.kind: f for f in data_quality.run(Study(tmp_path / "run"))}
    assert found["rejected_rows"].evidence["rejected_at"] == {"missing label": ["bank.jsonl:41"]}
    # the audit's leakage is the split's before de-duplication: it says the rows were then removed (a review
    # read it as leakage left in the run)
    removed = json.loads((tmp_path / "run" / "audit.json").read_text())["leakage"]["train_test"]["removed_from_training"]
    dedup = json.loads((tmp_path / "run" / "splits.json").read_text())["dedup"]
    assert (removed["exact"], removed["near"]) == (dedup["removed_exact"], dedup["removed_near"])
    assert "so none is left" in removed["note"]
    ex = found["train_test_duplicates"].evidence["examples"]
    assert ex and all({e["train_location"].split(":")[0], e["test_location"].split(":")[0]} == {"shop.jsonl", "bank.jsonl"}
                      for e in ex)


def test_a_one_class_domain_is_said_to_train_no_specialist():
    """It said 'its specialist cell cannot learn a decision boundary' of a cell the runner never trains
    (run.json lists it as not trainable; a user's review)."""
    from types import SimpleNamespace

    from gapscope.detectors import data_quality

    study = SimpleNamespace(splits={}, audit={"sources": [
        {"domain": "trec", "label_counts": {"phishing": 26, "legitimate": 0}},
        {"domain": "inbox", "label_counts": {"phishing": 0, "legitimate": 40}}]})
    trec, inbox = data_quality.run(study)
    assert "no specialist is trained on it" in trec.summary and "cannot learn" not in trec.summary
    assert "missed phishing" in trec.summary and "F1 is not measured there" in inbox.summary
