"""The command line as a user meets it: one-line errors without tracebacks, --help everywhere."""

import json
import subprocess
import sys

import pytest

GAPSCOPE = [sys.executable, "-m", "gapscope.cli"]


def run(*args, cwd=None):
    return subprocess.run([*GAPSCOPE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("name,content,reason", [
    ("bin.jsonl", b"\x00\x01\x02binary", "binary file, not JSONL/CSV"),
    ("latin.csv", "text,label\ncaf\xe9,1\n".encode("latin-1"), "not valid UTF-8"),
    ("nolabel.csv", b"text,class\nhello,1\n", "no label column 'label'"),
    ("empty.jsonl", b"", "empty file"),
    ("badlabels.jsonl", b'{"text": "a", "label": "maybe"}\n{"text": "b", "label": "perhaps"}\n',
     "every label value is unknown"),
])
def test_bad_file_is_one_line_error_without_traceback(tmp_path, name, content, reason):
    p = tmp_path / name
    p.write_bytes(content)
    r = run("data", "audit", p, "--out", tmp_path / "out")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and str(p) in lines[0] and reason in lines[0]
    # the step that failed says so in a log (it said "[ok]" before the error)
    assert "[failed] reading 1 source(s)" in r.stderr and "[ok] reading" not in r.stderr


@pytest.mark.parametrize("header,said", [
    ("Email Text,Email Type", 'no text column \'text\' and no \'subject\'/\'body\' columns (columns: Email Text, '
                              'Email Type); name it in the study spec\'s [[datasets]] entry: text = "Email Text"'),
    ("text,Category", 'no label column \'label\' (columns: text, Category); name it in the study spec\'s '
                      '[[datasets]] entry: label = "Category"'),
    ("text,kind", 'no label column \'label\' (columns: text, kind); name it in the study spec\'s [[datasets]] '
                  'entry: label = "<column>"'),
])
def test_a_corpus_with_other_column_names_is_told_where_to_name_them(tmp_path, header, said):
    p = tmp_path / "corpus.csv"
    p.write_text(f"{header}\nverify your account now,1\n")
    r = run("data", "audit", p, "--out", tmp_path / "out")
    assert r.returncode == 2 and f"error: {p}: {said}" in " ".join(r.stderr.split()), r.stderr


def test_audit_counts_rejected_rows(tmp_path):
    p = tmp_path / "mixed.jsonl"
    p.write_text('{"text": "hello there", "label": "spam"}\n{"text": "", "label": "ham"}\n'
                 '{"text": "hi", "label": "??"}\nnot json\n{"text": "fine", "label": 0}\n')
    r = run("data", "audit", p, "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    src = json.loads((tmp_path / "out" / "audit.json").read_text())["sources"][0]
    assert (src["rows_in"], src["rows_kept"], src["rows_rejected"]) == (5, 2, 3)
    assert src["rejected_by_reason"] == {"empty text": 1, "unknown label value '??'": 1, "invalid JSON": 1}
    # the copies and leakage the audit found are on the console too, not only in audit.json
    p.write_text('{"text": "hello there", "label": "spam"}\n{"text": "Hello  there", "label": "ham"}\n'
                 '{"text": "fine", "label": 0}\n')
    r = run("data", "audit", p, "--out", tmp_path / "out")
    said = " ".join(r.stderr.split())
    assert "duplicates: exact copies: 1 extra row within domains, 0 rows across domains; 1 group with " \
           "conflicting labels" in said and "(details in audit.json)" in said
    assert "near-copies (Jaccard >= 0.8): 0 groups of 0 rows, 0 pairs across domains, 0 pairs with" in said


def test_bad_spec_is_one_line_error(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[[datasets]]\npath = "missing.jsonl"\n')
    r = run("run", spec, "--out", tmp_path / "run")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "missing.jsonl: file not found" in r.stderr


@pytest.mark.parametrize("toml,said", [
    ('[study]\nfoo = 1\n[[datasets]]\npath = "a.jsonl"\n', "[study]: unknown key(s) foo"),
    ('[[datasets]]\nname = "x"\n', "[[datasets]] #1: missing 'path'"),
    # a misspelt table would otherwise run the study on defaults (a [[model]] table: TF-IDF only)
    ('[[datasets]]\npath = "a.jsonl"\n[[model]]\nname = "m"\nkind = "causal-lm"\n',
     "unknown top-level table or key 'model' (did you mean [[models]]?)"),
    ('[[datasets]]\npath = "a.jsonl"\n[paradigm]\nlodo = true\n', "unknown top-level table or key 'paradigm' (did you mean [paradigms]?)"),
    ('title = "x"\n[[datasets]]\npath = "a.jsonl"\n', "unknown top-level table or key 'title'; a spec has [study]"),
    ('[[datasets]]\npath = "a.jsonl"\nlable = "y"\n', "[[datasets]] #1: unknown key(s) lable (did you mean label?); known: body,"),
])
def test_spec_errors_keep_their_table_names(tmp_path, toml, said):
    # rich would read "[study]" as markup and print nothing in its place
    spec = tmp_path / "s.toml"
    spec.write_text(toml)
    r = run("run", spec, "--out", tmp_path / "run")
    assert r.returncode == 2 and f"error: {spec}: {said}" in " ".join(r.stderr.split())


@pytest.mark.parametrize("cmd", [[], ["data"], ["data", "audit"], ["data", "synth"], ["run"], ["demo"], ["report"]])
def test_help_everywhere(cmd):
    r = run(*cmd, "--help")
    assert r.returncode == 0 and "Usage" in r.stdout


def _two_domains(tmp_path, broken_rows=True):
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()
    for dom, off in (("a", 0), ("b", 5)):
        lines = []
        for i in range(40):
            label = i % 2
            cue = "verify your account at http://x.example now" if label else "see you at lunch"
            body = " ".join(words[(i * 7 + j + off) % len(words)] for j in range(6))
            lines.append(json.dumps({"text": f"{cue} {body} {dom}{i}", "label": label}))
        if dom == "a" and broken_rows:
            lines += ['{"text": "", "label": 1}', "not json"]
        (tmp_path / f"{dom}.jsonl").write_text("\n".join(lines) + "\n")
    spec = tmp_path / "s.toml"
    spec.write_text('[[datasets]]\nname = "a"\npath = "a.jsonl"\n[[datasets]]\nname = "b"\npath = "b.jsonl"\n')
    return spec


def test_run_says_each_sources_rejected_rows_on_the_console(tmp_path):
    spec = _two_domains(tmp_path)
    r = run("run", spec, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    said = " ".join((r.stdout + r.stderr).split())  # rich may wrap the line
    # with the line each rejected row is on, so it can be found and fixed
    assert ("a.jsonl: 42 rows in, 40 kept, 2 rejected (empty text: 1 at a.jsonl:41, invalid JSON: 1 at "
            "a.jsonl:42)") in said
    # every source, as `gapscope data audit` prints them (a clean source was left out)
    assert "b.jsonl: 40 rows in, 40 kept, 0 rejected (none)" in said


def test_a_missing_model_fails_before_any_cell_trains(tmp_path):
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": f"mail {i}", "label": i % 2}) + "\n"
                                              for i in range(20)))
    spec = tmp_path / "s.toml"
    spec.write_text('[[datasets]]\nname = "a"\npath = "a.jsonl"\n'
                    '[[models]]\nname = "tfidf"\nkind = "tfidf-lr"\n'
                    '[[models]]\nname = "mine"\nkind = "causal-lm"\nsource = "/no/such/model"\n')
    r = run("run", spec, "--out", tmp_path / "run")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{spec}: model 'mine': model source not found: /no/such/model" in " ".join(r.stderr.split())
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


def test_a_failed_detector_exits_1_and_heads_the_report(tmp_path):
    spec = _two_domains(tmp_path, broken_rows=False)
    r = run("run", spec, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert "Not everything ran" not in (tmp_path / "run" / "report.html").read_text()
    for p in (tmp_path / "run" / "cells").glob("*/predictions.parquet"):
        p.unlink()  # a half-copied run
    r = run("diagnose", tmp_path / "run", "--force")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "part(s) of the run failed" in r.stderr
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Not everything ran" in html and "predictions.parquet" in html


def test_a_damaged_or_incomplete_run_is_said_in_one_line_and_a_resume_redoes_it(tmp_path):
    import shutil

    spec = _two_domains(tmp_path, broken_rows=False)
    run_dir = tmp_path / "run"
    r = run("run", spec, "--out", run_dir, "--no-detectors")
    assert r.returncode == 0, r.stderr
    # detectors never ran: the report said "No detector reported a finding" as if they had
    html = (run_dir / "report.html").read_text()
    assert "Not everything ran" in html and "no detector has run on this run" in html
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    text = (damaged / "matrix.json").read_text()
    (damaged / "matrix.json").write_text(text[: len(text) // 2])
    r = run("report", damaged)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{damaged / 'matrix.json'}: damaged or unreadable" in " ".join(r.stderr.split())
    (damaged / "matrix.json").write_text("[{\"a\": 1}]")
    assert "not a list of entries" in run("report", damaged).stderr
    # a finished cell that went missing: detectors would have worked on the others, silently
    (damaged / "matrix.json").write_text(text)
    shutil.rmtree(damaged / "cells" / "tfidf__specialist-b")
    r = run("diagnose", damaged)
    assert r.returncode == 2 and "tfidf__specialist-b finished but are no longer in cells/" in " ".join(r.stderr.split())
    # a garbled prediction file and a deleted model: the resume redoes those cells, not trusts them
    (run_dir / "cells" / "tfidf__specialist-a" / "predictions.parquet").write_bytes(b"PAR1 garbage")
    shutil.rmtree(run_dir / "cells" / "tfidf__generalist" / "model")
    r = run("run", spec, "--out", run_dir, "--no-detectors")
    assert r.returncode == 0 and "resuming: 1 of 3 cells already finished" in r.stderr
    (run_dir / "cells" / "tfidf__specialist-b" / "model" / "tfidf_lr.safetensors").write_bytes(b"\x08junk")
    r = run("explain", "--run", run_dir, "--model", "tfidf", "--cell", "specialist:b", "--text", "verify now")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "tfidf_lr.safetensors: damaged" in r.stderr
    # drift said "--base is needed" for a cell it can never compare, or for the whole run
    r = run("drift", "--tuned", run_dir / "cells" / "tfidf__generalist")
    assert r.returncode == 2 and "cell of kind 'tfidf-lr'; the drift audit needs a causal-lm cell" in r.stderr
    r = run("drift", "--tuned", run_dir)
    assert r.returncode == 2 and "a run directory; --tuned takes one of its causal-lm cells" in r.stderr
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    r = run("explain", "--run", run_dir, "--model", "tfidf", "--file", binary)
    assert r.returncode == 2 and "image.png: a binary file, not an email" in r.stderr
    r = run("backdoor-scan", "--tuned", run_dir / "cells" / "tfidf__generalist", "--data", binary)
    assert r.returncode == 2 and "not to the cell" in r.stderr and "which carries its own base, data" in r.stderr
    # --cell with --tuned was dropped (a model of one's own) or overwritten (RUN/cells/CELL) without a word
    r = run("backdoor-scan", "--tuned", run_dir / "cells" / "tfidf__generalist", "--cell", "tfidf__specialist-a")
    assert r.returncode == 2 and "--cell applies to --run RUN" in r.stderr and "the cell tfidf__generalist" in r.stderr
    r = run("backdoor-scan", "--tuned", tmp_path, "--cell", "x", "--data", binary)
    assert r.returncode == 2 and "already names the model to scan" in r.stderr and "Traceback" not in r.stderr


def test_a_study_with_no_trainable_cell_stops_with_the_reason(tmp_path):
    # it went on to the detectors, printed an empty table and failed in sklearn's words
    for d in ("a", "b"):
        (tmp_path / f"{d}.jsonl").write_text("".join(json.dumps({"text": f"{d} verify now {i}", "label": 1}) + "\n"
                                                     for i in range(10)))
    spec = tmp_path / "s.toml"
    spec.write_text('[[datasets]]\npath = "a.jsonl"\n[[datasets]]\npath = "b.jsonl"\n')
    r = run("run", spec, "--out", tmp_path / "run")
    said = " ".join(r.stderr.split())
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{spec}: no cell can be trained (specialist:a:" in said and "phishing" in said


def test_ctrl_c_says_how_to_resume(monkeypatch, capsys):
    import gapscope.cli as cli
    import gapscope.study.runner as runner

    def interrupted(*args, **kwargs):  # Ctrl-C in the middle of a study, through typer's own handling
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_study", interrupted)
    monkeypatch.setattr(sys, "argv", ["gapscope", "run", "s.toml", "--out", "r"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 130 and "interrupted: rerun the same command to resume" in capsys.readouterr().err


@pytest.mark.parametrize("args,said", [
    (["run", "s.toml", "--out", "r", "--bogus"], "error: gapscope run: No such option: --bogus"),
    (["explain", "--model", "m"], "error: gapscope explain: Missing option '--run'; see 'gapscope explain --help'"),
    (["nosuch"], "error: gapscope: No such command 'nosuch'"),
    (["bench", "attribution", "--n", "abc"], "error: gapscope bench attribution: Invalid value for '--n'"),
])
def test_usage_errors_are_one_line_like_every_other_error(args, said):
    r = run(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and r.stderr.strip().startswith(said), r.stderr


def test_a_bare_group_prints_its_help_and_exits_2():
    r = run("data")
    assert r.returncode == 2 and "synth" in r.stdout + r.stderr and "error:" not in r.stderr


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    r = run("report", tmp_path)
    assert r.returncode == 2 and "not a gapscope run directory" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args,said", [(["--models", ""], "empty value for --models"),
                                       (["--models", ","], "nothing would be checked"),
                                       (["--checks", " "], "empty value for --checks")])
def test_validate_with_nothing_to_check_is_refused(args, said):
    r = run("validate", *args)
    assert r.returncode == 2 and said in r.stderr


def test_an_id_in_two_datasets_names_both_files(tmp_path):
    for d in ("a", "b"):
        (tmp_path / f"{d}.jsonl").write_text("".join(json.dumps({"id": f"r{i}", "text": f"{d} mail {i}", "label": i % 2})
                                                     + "\n" for i in range(6)))
    spec = tmp_path / "s.toml"
    spec.write_text('[[datasets]]\npath = "a.jsonl"\nid = "id"\n[[datasets]]\npath = "b.jsonl"\nid = "id"\n')
    r = run("run", spec, "--out", tmp_path / "run")
    said = " ".join(r.stderr.split())
    assert r.returncode == 2 and f"row id 'r0' is in both {tmp_path / 'a.jsonl'} (a) and {tmp_path / 'b.jsonl'} (b)" in said
    # data audit reads such sources without complaint: it says so, before the run is first to
    r = run("data", "audit", spec, "--out", tmp_path / "audit")
    said = " ".join(r.stderr.split())
    assert r.returncode == 0 and "(b); ids must be unique across datasets" in said
    assert "`gapscope run` refuses these sources as they are" in said


def test_escape_sequences_in_names_reach_the_console_as_text(tmp_path):
    p = tmp_path / "x\x1b]0;title\x07\x1b[2Jy.jsonl"  # set the window title, clear the screen
    r = run("data", "audit", p, "--out", tmp_path / "out")
    assert r.returncode == 2 and "\x1b" not in r.stderr and "\x07" not in r.stderr
    assert "x⟨U+001B⟩]0;title⟨U+0007⟩⟨U+001B⟩[2Jy.jsonl: file not found" in " ".join(r.stderr.split())


def test_the_cell_table_keeps_its_numbers_when_names_are_long(tmp_path, capsys):
    from gapscope.cli import _print_summary

    (tmp_path / "summary.json").write_text(json.dumps([{
        "model": "a-model-with-a-rather-long-descriptive-name", "paradigm": "specialist:" + "d" * 40,
        "in_domain_f1": 0.987, "out_of_domain_f1": 0.612, "gap": 0.375, "worst_domain": "w" * 30,
        "worst_domain_f1": 0.2}]))
    _print_summary(tmp_path)
    out = capsys.readouterr()
    assert all(x in out.out + out.err for x in ("0.987", "0.612", "0.375"))
    assert "phishing" not in out.err  # no matrix: nothing to say about the shares


def test_the_cell_table_gives_the_worst_domain_interval_and_the_losses_beyond_noise(tmp_path, capsys, monkeypatch):
    from gapscope import progress
    from gapscope.cli import _print_summary

    monkeypatch.setattr(progress.console, "width", 200)  # one line a row, to read the cells whole

    row = {"model": "m", "paradigm": "specialist:a", "in_domain_f1": 0.9, "out_of_domain_f1": 0.6, "gap": 0.3,
           "worst_domain": "b", "worst_domain_f1": 0.41, "worst_domain_f1_ci": [0.3, 0.52],
           "f1_losses_beyond_noise": [{"domain": "b", "f1_drop": 0.49, "lower": 0.3, "expected_f1": 0.9}],
           "f1_domains_compared": 3}
    quiet = {**row, "paradigm": "specialist:c", "f1_losses_beyond_noise": []}
    (tmp_path / "summary.json").write_text(json.dumps([row, quiet]))
    _print_summary(tmp_path)
    said = " ".join(capsys.readouterr().err.split())
    assert "b 0.410 [0.30, 0.52]" in said and "1 of 3" in said and "none of 3" in said
    assert "losses beyond noise: the other domains whose F1 falls below" in said


def test_the_cell_table_says_when_domains_differ_in_phishing_share(tmp_path, capsys):
    from gapscope.cli import _print_summary

    (tmp_path / "summary.json").write_text(json.dumps([{"model": "m", "paradigm": "specialist:a", "in_domain_f1": 0.9,
                                                        "out_of_domain_f1": 0.47, "gap": 0.43}]))
    entry = {"model": "m", "paradigm": "specialist:a"}
    (tmp_path / "matrix.json").write_text(json.dumps([{**entry, "test_domain": "a", "n": 100, "n_positive": 50},
                                                      {**entry, "test_domain": "b", "n": 100, "n_positive": 5}]))
    _print_summary(tmp_path)
    said = " ".join(capsys.readouterr().err.split())
    assert "the domains are 5% to 50% phishing and F1 moves with the share" in said
    (tmp_path / "matrix.json").write_text(json.dumps([{**entry, "test_domain": d, "n": 100, "n_positive": 50}
                                                      for d in "ab"]))
    _print_summary(tmp_path)
    assert "phishing" not in capsys.readouterr().err


@pytest.mark.parametrize("args,said", [
    # an empty value became the current directory or a default: a run written into ".", a bench
    (["run", "s.toml", "--out", ""], "error: empty value for --out"),
    (["bench", "score", "--model= "], "error: empty value for --model"),
    (["report", ""], "error: an empty argument"),
    # --out naming a file failed with a traceback, after the work
    (["data", "audit", "a.jsonl", "--out", "a.jsonl"], "error: --out a.jsonl: exists and is not a directory"),
    # counts and seeds out of range, checked before any model loads
    (["backdoor-scan", "--run", "x", "--n-null", "0"], "Invalid value for '--n-null'"),
    (["bench", "attribution", "--n", "-1"], "Invalid value for '--n'"),
    (["backdoor-scan", "--run", ".", "--min-shift", "nan"], "error: min_shift must be a number >= 0 (or left out), got nan"),
    (["backdoor-scan", "--run", ".", "--min-relative-shift", "-1"],
     "error: min_relative_shift must be a number >= 0, got -1"),
    # options that would have been ignored
    (["backdoor-scan", "--run", ".", "--base", "x", "--threshold", "2"], "error: --base, --threshold apply to --tuned"),
    (["bench", "attribution", "--fit", "5"], "error: --fit fine-tunes the embedded smollm2"),
    (["data", "synth", "--out", "t", "--trigger-rate", "0.5"], "error: --trigger-rate shapes the backdoor planted"),
    (["run", "s.toml", "--out", "r", "--address", "ray://x:1"], "error: --address names a Ray cluster"),
    (["diagnose", "."], "not a gapscope run directory"),
    # options that conflict or leave nothing to do (accepted before, one silently winning)
    (["backdoor-scan", "--run", ".", "--tuned", "x"], "error: give --run RUN or --tuned MODEL, not both"),
    (["backdoor-scan", "--run", ".", "--min-shift", "1", "--min-relative-shift", "0.25"],
     "error: --min-shift replaces --min-relative-shift"),
    (["backdoor-scan", "--run", ".", "--no-mine", "--no-families"], "leave nothing to test: give --trigger"),
    (["explain", "--run", ".", "--model", "m", "--text", "x", "--json", "--top", "1"],
     "error: --top shapes the terminal view"),
    (["explain", "--run", ".", "--model", "m", "--text", "x", "--method", "shap", "--max-evals", "1"],
     "SHAP Partition evaluates at least the whole and the empty email (2)"),
    (["explain", "--run", ".", "--model", "m", "--text", "x", "--method", "relevance", "--max-evals", "5"],
     "relevance is one backward pass"),
    (["validate", "--checks", "drift", "--models", "tfidf"], "error: no check of drift applies to tfidf"),
    (["validate", "--checks", "shortcuts"], "error: unknown check(s) shortcuts (did you mean shortcut?)"),
])
def test_bad_command_line_values_are_refused_before_any_work(tmp_path, args, said):
    (tmp_path / "a.jsonl").write_text('{"text": "hi there", "label": 1}\n{"text": "hello", "label": 0}\n')
    (tmp_path / "s.toml").write_text('[[datasets]]\npath = "a.jsonl"\n')
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert said in " ".join(r.stderr.split()), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "s.toml"]  # nothing written


def test_a_damaged_matrix_leaves_the_cell_table_without_its_caption(tmp_path, capsys):
    from gapscope.cli import _print_summary

    (tmp_path / "summary.json").write_text(json.dumps([{"model": "m", "paradigm": "p", "in_domain_f1": 0.9}]))
    (tmp_path / "matrix.json").write_text("[{\"test_domain\": ")
    _print_summary(tmp_path)
    assert "0.900" in capsys.readouterr().err
