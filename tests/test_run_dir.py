"""A run directory that is interrupted, reused, damaged or shared: what a resume, diagnose and report do."""

import json

import pandas as pd
import pytest

from gapscope.study.runner import run_study
from tests.test_runner import make_study

DETECTORS = '[detectors]\nenabled = ["label_noise", "data_quality"]\n'


def _cells(run):
    return sorted(p.name for p in (run / "cells").iterdir())


def test_a_corrected_spec_replaces_a_run_that_finished_no_cell(tmp_path, capsys):
    # an option only a training cell rejects (min_df above the rows) stopped the run after its data
    # were read; the corrected spec was then refused as "another spec" with nothing to keep
    from gapscope.errors import GapscopeError

    spec = make_study(tmp_path)
    broken = tmp_path / "broken.toml"
    broken.write_text(spec.read_text() + '[[models]]\nname = "tfidf"\nkind = "tfidf-lr"\nmin_df = 400\n')
    with pytest.raises(GapscopeError, match="kept no term"):
        run_study(broken, tmp_path / "run", detectors=False)
    assert (tmp_path / "run" / "data" / "rows.parquet").exists()
    fixed = tmp_path / "fixed.toml"
    fixed.write_text(spec.read_text() + '[[models]]\nname = "tfidf"\nkind = "tfidf-lr"\nmin_df = 2\n')
    # starting over removes what the run wrote, not a job's log or notes kept beside it
    (tmp_path / "run" / "slurm-1.out").write_text("log")
    (tmp_path / "run" / "notes.md").write_text("mine")
    (tmp_path / "run" / ".git").mkdir()
    res = run_study(fixed, tmp_path / "run", detectors=False)
    assert {"slurm-1.out", "notes.md", ".git"} <= {p.name for p in (tmp_path / "run").iterdir()}
    assert [o for o in res.outcomes if o.ok]
    assert "holds no finished cell of its earlier spec (model 'tfidf' min_df was 400, now 2); starting it over" in \
        " ".join(capsys.readouterr().err.split())
    assert "min_df = 2" in (tmp_path / "run" / "study.toml").read_text()
    # with a finished cell, another spec is still refused
    from gapscope.study.runner import OtherRunError

    with pytest.raises(OtherRunError, match="holds a run of another spec"):
        run_study(broken, tmp_path / "run", detectors=False)


def test_an_option_written_out_at_its_default_names_the_same_cells(tmp_path):
    # C = 1.0 written into a spec that left it out read as "[[models]] differ": the run was refused,
    # and accepted it would have retrained every cell (fingerprints hashed the options as written)
    from gapscope.study.runner import OtherRunError

    base = make_study(tmp_path).read_text()
    spec = tmp_path / "s.toml"
    spec.write_text(base + '[[models]]\nname = "tfidf"\nkind = "tfidf-lr"\n')
    run_study(spec, tmp_path / "run", detectors=False)
    fingerprints = {p.parent.name: json.loads(p.read_text())["fingerprint"]
                    for p in (tmp_path / "run" / "cells").glob("*/cell.json")}
    spec.write_text(base + '[[models]]\nname = "tfidf"\nkind = "tfidf-lr"\nC = 1\nngram_max = 2\n'
                           'class_weight = "balanced"\n')
    with pytest.raises(OtherRunError) as e:  # a value that is not the default is another model
        run_study(spec, tmp_path / "run", detectors=False)
    assert "(model 'tfidf' class_weight was unset (its default), now 'balanced')" in str(e.value)
    spec.write_text(base + '[[models]]\nname = "tfidf"\nkind = "tfidf-lr"\nC = 1\nngram_max = 2\nmax_train = 0\n'
                           'ray_num_cpus = 2\n')  # where a cell runs is no part of what it learns
    res = run_study(spec, tmp_path / "run", detectors=False)
    assert res.skipped and not [o for o in res.outcomes if o.ok]
    assert fingerprints == {p.parent.name: json.loads(p.read_text())["fingerprint"]
                            for p in (tmp_path / "run" / "cells").glob("*/cell.json")}
    # min_df = 1.0 is a share (every document), not the default count 1
    spec.write_text(base + '[[models]]\nname = "tfidf"\nkind = "tfidf-lr"\nmin_df = 1.0\n')
    with pytest.raises(OtherRunError, match=r"min_df was unset \(its default\), now 1.0"):
        run_study(spec, tmp_path / "run", detectors=False)


def test_a_relabelled_training_row_retrains_only_the_cells_that_trained_on_it(tmp_path):
    # the split ordered each domain and label by a seeded permutation: one row relabelled (as a
    # label-noise finding suggests) reshuffled its domain's held-out set, and every cell trained again
    spec = make_study(tmp_path)
    run = tmp_path / "run"
    run_study(spec, run, detectors=False)
    splits = json.loads((run / "splits.json").read_text())
    rows = {r["id"]: r for r in pd.read_parquet(run / "data" / "rows.parquet").to_dict("records")}
    trained_on = {p.parent.name: set(pd.read_parquet(p).query("split == 'train'").id)
                  for p in (run / "cells").glob("*/predictions.parquet")}
    shop = tmp_path / "shop.jsonl"
    lines = shop.read_text().splitlines()
    trained = {rows[i]["text"]: i for i in splits["train"] if rows[i]["domain"] == "shop"}
    # five training rows relabelled at once, as a label-noise finding lists them
    picked = [k for k, line in enumerate(lines) if json.loads(line)["text"] in trained][:5]
    shop.write_text("\n".join(json.dumps({**json.loads(x), "label": 1 - json.loads(x)["label"]}) if k in picked else x
                              for k, x in enumerate(lines)) + "\n")
    res = run_study(spec, run, detectors=False)
    assert json.loads((run / "splits.json").read_text())["test"] == splits["test"]  # the held-out set stays
    ids = {trained[json.loads(lines[k])["text"]] for k in picked}
    retrained = {o.name for o in res.outcomes if o.ok}
    touched = {name for name, train_ids in trained_on.items() if train_ids & ids}
    assert retrained == touched and set(res.skipped) == set(trained_on) - touched
    assert touched and set(res.skipped)


def test_cells_the_data_no_longer_make_are_removed(tmp_path, capsys):
    # the corpus edited to one label: the old specialist stayed in cells/, and the detectors read
    # it as the run's (a shortcut finding about a cell the same run said could not be trained)
    from gapscope.study.context import Study

    spec = make_study(tmp_path)
    run_study(spec, tmp_path / "run", detectors=False)
    assert "tfidf__specialist-shop" in _cells(tmp_path / "run")
    shop = tmp_path / "shop.jsonl"
    shop.write_text("".join(json.dumps({**json.loads(x), "label": 1}) + "\n" for x in shop.read_text().splitlines()))
    run_study(spec, tmp_path / "run", detectors=False)
    assert "tfidf__specialist-shop" not in _cells(tmp_path / "run")
    assert "tfidf__specialist-shop" not in [c.name for c in Study(tmp_path / "run").cells]
    assert "removed 1 cell(s) of an earlier run that this data no longer makes: tfidf__specialist-shop" in \
        " ".join(capsys.readouterr().err.split())


def test_a_second_process_is_refused_while_one_holds_the_run(tmp_path):
    import fcntl
    import os

    from gapscope.study.lock import RunInUse
    from gapscope.study.publish import build_report

    spec = make_study(tmp_path)
    run = tmp_path / "run"
    run_study(spec, run, detectors=False)
    fd = os.open(run / ".lock", os.O_RDWR)  # another open file: flock treats it as another process
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(fd, b"pid 4242 (gapscope run)\n", 0)
        with pytest.raises(RunInUse, match=r"run is in use by pid 4242 \(gapscope run\); wait for it to finish, or "
                                           r"give --out another directory"):
            run_study(spec, run, detectors=False)
        with pytest.raises(RunInUse, match="in use by pid 4242"):
            build_report(run)
    finally:
        os.close(fd)
    assert build_report(run).exists()  # released with its descriptor
    # a folder gapscope refuses gets no lock file either
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="is not empty and holds no gapscope run"):
        run_study(spec, tmp_path / "mine", detectors=False)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_a_file_system_without_flock_runs_unlocked(tmp_path, monkeypatch):
    # some network and FUSE mounts answer flock with ENOLCK: every run there was refused as in use
    import errno
    import fcntl

    from gapscope.study.lock import holds, run_lock

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with run_lock(tmp_path, "gapscope run"):
        assert not holds(tmp_path)


def test_an_extra_file_in_a_model_folder_keeps_the_cell(tmp_path):
    # only the files the cell wrote are checked: a file manager's .DS_Store retrained nothing before
    spec = make_study(tmp_path)
    run = tmp_path / "run"
    run_study(spec, run, detectors=False)
    (run / "cells" / "tfidf__specialist-bank" / "model" / ".DS_Store").write_bytes(b"x")
    assert not run_study(spec, run, detectors=False).outcomes


def test_a_kill_during_the_first_study_toml_leaves_a_usable_folder(tmp_path):
    spec = make_study(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "study.toml.tmp").write_text("[study]\nna")  # cut off by the kill
    assert [o for o in run_study(spec, tmp_path / "run", detectors=False).outcomes if o.ok]


def test_a_damaged_detector_cache_is_computed_again(tmp_path, capsys):
    # a cache cut short stopped run, diagnose and report for good, each advising to rerun the run
    from gapscope.study.diagnose import diagnose
    from gapscope.study.publish import build_report

    spec = make_study(tmp_path, DETECTORS)
    run = tmp_path / "run"
    run_study(spec, run)
    saved = run / "diagnostics" / "label_noise" / "findings.json"
    whole = json.loads(saved.read_text())
    saved.write_text(saved.read_text()[:100])
    assert "damaged" in " ".join(build_report(run).read_text().split())  # the report says so, and renders
    found = diagnose(run)
    assert "label_noise: its saved findings" in capsys.readouterr().err.replace("\n", " ")
    assert json.loads(saved.read_text())["findings"] == whole["findings"]
    assert sum(f.detector == "label_noise" for f in found) == len(whole["findings"])
    # a cache of a detector not asked for, damaged: left out and said, the others go on
    saved.write_text("{")
    diagnose(run, only=["data_quality"])
    status = json.loads((run / "diagnostics" / "status.json").read_text())
    assert status["label_noise"] == {"status": "damaged"}
    from gapscope.study.publish import not_run

    said = " ".join(" ".join(not_run(run)).split())
    assert "label_noise: their saved findings are damaged" in said and "about other cells" not in said


def test_a_model_file_cut_short_retrains_its_cell(tmp_path):
    spec = make_study(tmp_path)
    run = tmp_path / "run"
    run_study(spec, run, detectors=False)
    weights = run / "cells" / "tfidf__specialist-bank" / "model" / "tfidf_lr.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    res = run_study(spec, run, detectors=False)
    assert [o.name for o in res.outcomes] == ["tfidf__specialist-bank"]
    assert weights.stat().st_size > 100


def test_a_hand_edited_finding_is_one_line(tmp_path):
    from gapscope.study.artifacts import DamagedArtifact
    from gapscope.study.publish import build_report

    spec = make_study(tmp_path)
    run = tmp_path / "run"
    run_study(spec, run, detectors=False)
    (run / "findings.json").write_text('[{"kind": "x"}]')
    with pytest.raises(DamagedArtifact, match=r"findings.json: damaged or unreadable \(finding 1: a finding without "
                                              r"'severity', 'title', 'summary'\)"):
        build_report(run)


def test_findings_about_retrained_cells_are_said_so(tmp_path):
    # the data changed, the resume retrained cells and stopped before the detectors: the report
    # blamed "other [detectors] settings or another gapscope version"
    from gapscope.study.publish import not_run

    spec = make_study(tmp_path, DETECTORS)
    run = tmp_path / "run"
    run_study(spec, run)
    work = tmp_path / "work.jsonl"
    lines = work.read_text().splitlines()
    work.write_text("\n".join([json.dumps({**json.loads(lines[0]), "text": "Hello, a new text"})] + lines[1:]) + "\n")
    run_study(spec, run, detectors=False)
    said = " ".join(" ".join(not_run(run)).split())
    assert "their findings are about cells since trained again" in said and "other [detectors] settings" not in said


def test_a_write_refused_names_the_file_not_its_temp_file(tmp_path, monkeypatch):
    # a read-only run directory said 'findings.json.tmp: permission denied'
    from pathlib import Path

    from gapscope.study import artifacts

    def refuse(self, *a, **k):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    with pytest.raises(PermissionError) as e:
        artifacts.write_json(tmp_path / "findings.json", [])
    assert e.value.filename == str(tmp_path / "findings.json")
