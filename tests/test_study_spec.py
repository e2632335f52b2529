"""Study spec parsing, held-out splitting and paradigm train sets (no models involved)."""

from pathlib import Path

import pytest

from gapscope.data.rows import Row
from gapscope.errors import SpecError
from gapscope.study.paradigms import build_train_sets
from gapscope.study.spec import load_spec
from gapscope.study.split import drop_train_duplicates_of_test, split_held_out


def write(p: Path, text: str) -> Path:
    p.write_text(text, encoding="utf-8")
    return p


def test_two_line_spec_gets_defaults(tmp_path):
    (tmp_path / "a.jsonl").write_text("")
    spec = load_spec(write(tmp_path / "s.toml", '[[datasets]]\npath = "a.jsonl"\n'))
    assert spec.domains == ["a"]
    assert spec.paradigms.specialist == ["a"] and spec.paradigms.generalist == []
    assert [m.kind for m in spec.models] == ["tfidf-lr"]
    assert spec.datasets[0].path == (tmp_path / "a.jsonl").resolve()


def test_resolved_spec_round_trips(tmp_path):
    spec = load_spec(write(tmp_path / "s.toml", """
[study]
name = "x"
seed = 3
[[datasets]]
name = "a"
path = "a.jsonl"
label_map = { spam = 1, ham = 0 }
[[datasets]]
name = "b"
path = "b.csv"
[paradigms]
lodo = true
[[models]]
name = "m"
kind = "causal-lm"
source = "embedded:smollm2-135m"
max_train = 64
"""))
    again = load_spec(write(tmp_path / "resolved.toml", spec.to_toml()))
    assert again.to_toml() == spec.to_toml()
    assert again.models[0].options == {"max_train": 64}
    assert again.datasets[0].label_map == {"spam": 1, "ham": 0}
    assert again.paradigms.lodo and again.paradigms.generalist == ["a", "b"]


@pytest.mark.parametrize("body,reason", [
    ("[study]\nseed = 1\n", "needs at least one [[datasets]] table with a path"),
    ('[[datasets]]\nname = "a"\n', "[[datasets]] #1: missing 'path'"),
    ('[[datasets]]\npath = "a.jsonl"\n[[models]]\nkind = "causal-lm"\n', "[[models]] #1: kind 'causal-lm' needs a 'source'"),
    ('[[datasets]]\npath = "a.jsonl"\n[[models]]\nkind = "svm"\n', "[[models]] #1: unknown kind 'svm'"),
    ('[[datasets]]\npath = "a.jsonl"\n[paradigms]\nspecialist = ["zzz"]\n', "[paradigms] specialist: unknown dataset(s) zzz"),
    ('[[datasets]]\npath = "a.jsonl"\n[study]\ntest_fraction = 1.5\n', "test_fraction must be a number between 0 and 1"),
    ("[[datasets]\n", "invalid TOML"),
    # wrong types: each was a traceback, or a value silently misread
    ('[[datasets]]\npath = "a.jsonl"\n[study]\ntest_fraction = "0.3"\n', "test_fraction must be a number"),
    ('[[datasets]]\npath = "a.jsonl"\n[study]\nseed = "zero"\n', "[study] seed must be a whole number >= 0"),
    ('[[datasets]]\npath = "a.jsonl"\n[study]\nmax_train = "lots"\n', "[study] max_train must be a whole number >= 1"),
    ('[[datasets]]\npath = "a.jsonl"\n[study]\nbootstrap = -3\n', "[study] bootstrap must be a whole number >= 0"),
    ('study = "x"\n[[datasets]]\npath = "a.jsonl"\n', "[study] must be a table"),
    ("datasets = [1, 2]\n", "[[datasets]] must be an array of tables"),
    ("[[datasets]]\npath = 5\n", "[[datasets]] #1 path must be a path or a list of paths, got 5 (int)"),
    ('[[datasets]]\npath = "a.csv"\ndelimiter = ";;"\n', "[[datasets]] #1 delimiter must be one character"),
    ('[[datasets]]\npath = "a.csv"\nencoding = "latin-9x"\n', "[[datasets]] #1 encoding 'latin-9x' is not a known"),
    ('[[datasets]]\npath = "a.csv"\nencoding = "rot13"\n', "[[datasets]] #1 encoding 'rot13' is not a known text"),
    ('[[datasets]]\npath = "a.csv"\nencoding = "zlib"\n', "[[datasets]] #1 encoding 'zlib' is not a known text"),
    ('[[datasets]]\npath = "a.jsonl"\nlabel_map = { spam = 0.6, ham = 1.9 }\n', "label_map value for 'spam' must be 0 or 1"),
    ('[[datasets]]\npath = "a.jsonl"\nlabel_map = "spam"\n', "[[datasets]] #1 label_map must be a table"),
    ('[[datasets]]\npath = "a.jsonl"\nlabel_map = { x = 2 }\n', "[[datasets]] #1 label_map value for 'x' must be 0 or 1"),
    ('[[datasets]]\npath = "a.jsonl"\n[paradigms]\nlodo = "no"\n', "[paradigms] lodo must be true or false"),
    ('[[datasets]]\npath = "a.jsonl"\n[[models]]\nkind = "tfidf"\n', "unknown kind 'tfidf' (did you mean tfidf-lr?)"),
    # a generalist over one dataset was a copy of its specialist; 3 resamples gave a "95%" interval
    # that did not hold its estimate
    ('[[datasets]]\nname = "a"\npath = "a.jsonl"\n[[datasets]]\nname = "b"\npath = "b.jsonl"\n[paradigms]\n'
     'generalist = ["a"]\n', "[paradigms] generalist over one dataset (a) is that dataset's specialist"),
    ('[study]\nbootstrap = 3\n[[datasets]]\npath = "a.jsonl"\n', "bootstrap = 3 resamples cannot give a 95% interval"),
    ('[[datasets]]\npath = "a.jsonl"\n[paradigms]\ngeneralist_size = -5\n', "generalist_size must be"),
    ('[[datasets]]\npath = "a.jsonl"\n[[models]]\nkind = "causal-lm"\nsource = 5\n', "[[models]] #1 source must be a string"),
    ('[[datasets]]\npath = "a.jsonl"\n[[models]]\nkind = "tfidf-lr"\nmax_train = -1\n', "[[models]] #1 max_train must be"),
    # names become cell directories: x/../../esc wrote a cell outside the run
    ('[[datasets]]\nname = "x/../../esc"\npath = "a.jsonl"\n', "[[datasets]] #1 name 'x/../../esc' cannot name a directory"),
    ('[[datasets]]\nname = ".."\npath = "a.jsonl"\n', "[[datasets]] #1 name '..' cannot name a directory"),
    ('[[datasets]]\nname = "a\\\\b"\npath = "a.jsonl"\n', "cannot name a directory"),
    ('[[datasets]]\nname = "a\\u001bb"\npath = "a.jsonl"\n', "holds U+001B, a control"),
    ('[[datasets]]\nname = "corp\\u202e"\npath = "a.jsonl"\n', "holds U+202E"),
    # invisible characters the text check lets through (joiners, fillers, selectors) still
    # make two names look alike
    ('[[datasets]]\nname = "enron\\u200d"\npath = "a.jsonl"\n', "holds U+200D"),
    ('[[datasets]]\nname = "enron\\u034f"\npath = "a.jsonl"\n', "holds U+034F"),
    ('[[datasets]]\nname = "enron\\ufe0f"\npath = "a.jsonl"\n', "holds U+FE0F"),
    ('[[datasets]]\nname = "\\u3164"\npath = "a.jsonl"\n', "holds U+3164"),
    # a name longer than a directory name can be: tracebacks from every cell, then a crash
    ('[[datasets]]\nname = "' + "x" * 101 + '"\npath = "a.jsonl"\n', "is 101 bytes long in UTF-8; at most 100"),
    ('[[datasets]]\nname = "' + "語" * 34 + '"\npath = "a.jsonl"\n', "is 102 bytes long"),
    # two names, one directory: the cells overwrote each other and flip-flopped on resume
    ('[[datasets]]\nname = "corp:x"\npath = "a.jsonl"\n[[datasets]]\nname = "corp-x"\npath = "b.jsonl"\n',
     "dataset names 'corp:x' and 'corp-x' would share one directory"),
    ('[[datasets]]\nname = "Corp"\npath = "a.jsonl"\n[[datasets]]\nname = "corp"\npath = "b.jsonl"\n',
     "dataset names 'Corp' and 'corp' would share"),
    ('[[datasets]]\npath = "a.jsonl"\n[[models]]\nname = "M"\nkind = "tfidf-lr"\n[[models]]\nname = "m"\n'
     'kind = "tfidf-lr"\n', "model names 'M' and 'm' would share"),
    ('[[datasets]]\npath = "a.jsonl"\n[[models]]\nname = "m/x"\nkind = "tfidf-lr"\n', "[[models]] #1 name 'm/x' cannot"),
    ('[[datasets]]\npath = "a.jsonl"\n[[models]]\nname = "m__x"\nkind = "tfidf-lr"\n', "may not contain '__'"),
])
def test_bad_specs_name_the_file_and_reason(tmp_path, body, reason):
    p = write(tmp_path / "s.toml", body)
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert str(e.value).startswith(f"{p}: ")
    assert reason in str(e.value)


def test_control_characters_and_non_ascii_keys_survive_the_resolved_spec(tmp_path):
    # The run writes the resolved spec and reads it back: an ESC in the study name and a
    # non-ASCII label_map key used to make that copy invalid TOML after every cell had trained.
    spec = load_spec(write(tmp_path / "s.toml", '[study]\nname = "x\\u001b[31m\\ty\\nz"\n'
                           '[[datasets]]\nname = "kontakt-ü"\npath = "a.jsonl"\nlabel_map = { "phishé" = 1, "a b" = 0 }\n'))
    again = load_spec(write(tmp_path / "resolved.toml", spec.to_toml()))
    assert again.study.name == "x\x1b[31m\ty\nz"
    assert again.datasets[0].domain == "kontakt-ü"
    assert again.datasets[0].label_map == {"phishé": 1, "a b": 0}


def test_label_map_takes_label_names_too(tmp_path):
    p = write(tmp_path / "s.toml", '[[datasets]]\npath = "a.jsonl"\nlabel_map = { bad = "phishing", good = 0.0 }\n')
    assert load_spec(p).datasets[0].label_map == {"bad": 1, "good": 0}


def test_values_that_were_accepted_before_still_are(tmp_path):
    s = load_spec(write(tmp_path / "s.toml", '[study]\nbootstrap = 0\ntest_fraction = 0.25\n'
                        '[[datasets]]\nname = 2021\npath = "a.jsonl"\nlabel_value = 1\n'
                        '[[models]]\nkind = "tfidf-lr"\nmax_train = 0\n'))
    assert (s.study.bootstrap, s.datasets[0].domain, s.models[0].options["max_train"]) == (0, "2021", 0)


def rows(domains=("a", "b", "c"), n=40):
    out = []
    for d in domains:
        for i in range(n):
            out.append(Row(id=f"{d}{i}", domain=d, text=f"{d} email number {i}", label=i % 2))
    return out


def test_split_is_stratified_seeded_and_disjoint():
    r = rows()
    tr, te = split_held_out(r, 0.25, seed=0)
    assert not set(tr) & set(te) and len(tr) + len(te) == len(r)
    by = {x.id: x for x in r}
    for d in "abc":  # each of 20 rows held out with probability 0.25: 5 on average
        for lab in (0, 1):
            assert 1 <= sum(1 for i in te if by[i].domain == d and by[i].label == lab) <= 11
    assert 18 <= len(te) <= 45  # 30 on average
    assert split_held_out(r, 0.25, seed=0) == (tr, te)
    assert split_held_out(r, 0.25, seed=1) != (tr, te)


def test_relabelling_or_adding_a_row_moves_no_other_row_across_the_split():
    # a seeded permutation per domain and label reordered the whole stratum when one row changed
    # label: the held-out set moved, and every cell of the study trained again
    import dataclasses

    r = rows(n=200)
    tr, te = split_held_out(r, 0.25, seed=0)
    moved = []
    for k in [i for i, x in enumerate(r) if x.domain == "b"][:40]:
        relabelled = r[:k] + [dataclasses.replace(r[k], label=1 - r[k].label)] + r[k + 1:]
        moved.append(len(set(te) ^ set(split_held_out(relabelled, 0.25, seed=0)[1])))
    assert max(moved) == 0
    added = r + [Row(id="new", domain="b", text="b email number new", label=1)]
    assert set(te) <= set(split_held_out(added, 0.25, seed=0)[1])  # an added row moves no other


def test_train_duplicates_of_test_rows_are_removed_and_counted():
    r = rows()
    r.append(Row(id="dup", domain="b", text="  A EMAIL   number 0 ", label=0))  # same as a0 after normalising
    by = {x.id: x for x in r}
    kept, rep = drop_train_duplicates_of_test(by, ["dup", "a1", "b5"], ["a0"], near_pairs=[("b5", "a0")])
    assert kept == ["a1"]
    assert rep["removed_exact"] == 1 and rep["removed_near"] == 1


THREE_DATASETS = "".join(f'[[datasets]]\npath = "{d}.jsonl"\n' for d in "abc")


def test_paradigms_specialist_generalist_lodo(tmp_path):
    spec = load_spec(write(tmp_path / "s.toml", THREE_DATASETS + '[paradigms]\ngeneralist_size = "match"\nlodo = true\n'))
    pools = {d: [f"{d}{i}" for i in range(30)] for d in "abc"}
    sets = {s.paradigm: s for s in build_train_sets(spec, pools)}
    assert set(sets) == {"specialist:a", "specialist:b", "specialist:c", "generalist", "lodo:a", "lodo:b", "lodo:c"}
    assert sets["specialist:a"].ids and all(i.startswith("a") for i in sets["specialist:a"].ids)
    gen = sets["generalist"].ids
    assert len(gen) == 30  # size-matched to a specialist
    assert {i[0] for i in gen[:3]} == {"a", "b", "c"}  # every prefix is a balanced mix
    assert not any(i.startswith("a") for i in sets["lodo:a"].ids) and len(sets["lodo:a"].ids) == 60
    again = {s.paradigm: s.ids for s in build_train_sets(spec, pools)}
    assert again == {k: v.ids for k, v in sets.items()}


def test_generalist_matches_only_the_specialists_that_train(tmp_path):
    spec = load_spec(write(tmp_path / "s.toml", THREE_DATASETS))
    pools = {"a": [f"a{i}" for i in range(30)], "b": [f"b{i}" for i in range(20)], "c": [f"c{i}" for i in range(10)]}
    labels = {i: (int(i[1:]) % 2 if i[0] != "c" else 1) for ids in pools.values() for i in ids}  # c: phishing only
    sizes = lambda lab: len({s.paradigm: s for s in build_train_sets(spec, pools, lab)}["generalist"].ids)
    assert sizes(None) == 20  # labels unknown: the median of all three specialists
    assert sizes(labels) == 25  # c gets no specialist cell, so the median is over a and b
    all_one = {i: 1 for i in labels}
    assert sizes(all_one) == 20  # nothing trains alone: fall back to every named specialist


def test_a_one_label_cell_says_when_deduplication_took_the_other_label():
    from gapscope.study.paradigms import TrainSet
    from gapscope.study.runner import split_one_class

    rows = {f"a{i}": Row(id=f"a{i}", domain="a", text=f"t{i}", label=1 if i < 5 else 0) for i in range(8)}
    sets = [TrainSet("specialist:a", ["a"], ["a0", "a1", "a2"])]
    keep, notes = split_one_class(sets, rows, [rows["a5"], rows["a6"], rows["a3"]])
    assert keep == [] and notes[0]["reason"] == (
        "its 3 training rows (a) are all phishing; a classifier needs both labels "
        "(2 legitimate training rows were removed as duplicates of test rows)")
    _, notes = split_one_class(sets, rows, [])
    assert notes[0]["reason"].endswith("a classifier needs both labels")


def test_one_dataset_from_several_paths(tmp_path):
    """SpamAssassin publishes spam and ham as separate tarballs: one table, a list of paths, one domain."""
    spec = load_spec(write(tmp_path / "s.toml", """
[[datasets]]
name = "spamassassin"
path = ["20030228_spam.tar.bz2", "20030228_easy_ham.tar.bz2"]
label = "folder"
[[datasets]]
path = "other.jsonl"
encoding = "latin-1"
"""))
    assert spec.domains == ["spamassassin", "other"]
    assert spec.datasets[-1].encoding == "latin-1" and 'encoding = "latin-1"' in spec.to_toml()
    assert [(d.domain, d.path.name, d.label) for d in spec.datasets] == [
        ("spamassassin", "20030228_spam.tar.bz2", "folder"), ("spamassassin", "20030228_easy_ham.tar.bz2", "folder"),
        ("other", "other.jsonl", "label")]
    assert spec.paradigms.specialist == ["spamassassin", "other"]
    again = load_spec(write(tmp_path / "resolved.toml", spec.to_toml()))
    assert again.to_toml() == spec.to_toml() and again.datasets == spec.datasets


@pytest.mark.parametrize("body,reason", [
    ('[[datasets]]\npath = ["a.jsonl", "b.jsonl"]\n', "[[datasets]] #1 has several paths: give it a name"),
    ('[[datasets]]\nname = "x"\npath = ["a.jsonl", "a.jsonl"]\n', "[[datasets]] #1 path lists 'a.jsonl' twice"),
    ('[[datasets]]\nname = "x"\npath = ["a.jsonl", "./a.jsonl"]\n', "a.jsonl' twice"),
    ('[[datasets]]\nname = "x"\npath = []\n', "[[datasets]] #1 path must be a path or a list of paths, got []"),
    ('[[datasets]]\nname = "x"\npath = ["a.jsonl", 3]\n', "path must be a path or a list of paths"),
])
def test_bad_path_lists(tmp_path, body, reason):
    with pytest.raises(SpecError) as e:
        load_spec(write(tmp_path / "s.toml", body))
    assert reason in str(e.value)


def test_label_index_is_the_label_source(tmp_path):
    spec = load_spec(write(tmp_path / "s.toml", '[[datasets]]\npath = "trec07p.tgz"\nlabel_index = "trec07p/full/index"\n'))
    assert (spec.domains, spec.datasets[0].label_index) == (["trec07p"], "trec07p/full/index")
    assert load_spec(write(tmp_path / "r.toml", spec.to_toml())).datasets == spec.datasets
    with pytest.raises(SpecError, match="takes its labels from label_index; label = 'folder' would name another"):
        load_spec(write(tmp_path / "s.toml", '[[datasets]]\npath = "t"\nlabel_index = "i"\nlabel = "folder"\n'))


@pytest.mark.parametrize("body,reason", [
    ('[[datasets]]\nname = ""\npath = "a.jsonl"\n', "[[datasets]] #1 name is empty"),
    ('[[datasets]]\npath = "a.jsonl"\n[[models]]\nname = ""\nkind = "tfidf-lr"\n', "[[models]] #1 name is empty"),
    ('[[datasets]]\npath = "a.jsonl"\n[[models]]\nname = "t"\nkind = "tfidf-lr"\nsource = "embedded:nope"\n',
     "[[models]] #1: kind 'tfidf-lr' trains from scratch and takes no 'source'"),
])
def test_names_and_sources_that_would_be_ignored(tmp_path, body, reason):
    with pytest.raises(SpecError) as e:
        load_spec(write(tmp_path / "s.toml", body))
    assert reason in str(e.value)


def test_a_column_the_spec_names_must_exist(tmp_path):
    from gapscope.data.ingest import load_source
    from gapscope.errors import InputError

    (tmp_path / "a.jsonl").write_text('{"subject": "s", "body": "b", "label": 1, "id": "x1"}\n')
    ok = load_spec(write(tmp_path / "ok.toml", '[[datasets]]\npath = "a.jsonl"\n'))
    rows, _ = load_source(ok.datasets[0])  # the default text column may be absent: subject + body
    assert rows[0].text == "Subject: s\n\nb"
    for key in ("text", "subject", "id"):
        spec = load_spec(write(tmp_path / f"{key}.toml", f'[[datasets]]\npath = "a.jsonl"\n{key} = "nope"\n'))
        with pytest.raises(InputError) as e:
            load_source(spec.datasets[0])
        assert f"no {key} column 'nope', which the spec names" in str(e.value)
        again = load_spec(write(tmp_path / f"{key}-resolved.toml", spec.to_toml()))
        assert again.datasets[0].named == frozenset({key})


def test_a_resolved_spec_written_before_column_keys_could_be_left_out_is_still_an_input(tmp_path):
    from gapscope.data.ingest import load_source

    (tmp_path / "a.csv").write_text("text,label\nhello there,1\nfine thanks,0\n")
    spec = load_spec(write(tmp_path / "s.toml", '[[datasets]]\nname = "a"\npath = "a.csv"\ntext = "text"\n'
                                                'subject = "subject"\nbody = "body"\nlabel = "label"\nid = "id"\n'))
    assert spec.datasets[0].named == frozenset()
    assert len(load_source(spec.datasets[0])[0]) == 2


@pytest.mark.parametrize("kind,option,ok", [
    ("causal-lm", {"grad_clip": 0.0}, True),      # 0: no clipping
    ("encoder", {"grad_clip": 0}, True),
    ("tfidf-lr", {"min_df": 2}, True), ("tfidf-lr", {"min_df": 0.01}, True),
    ("tfidf-lr", {"min_df": 0}, False), ("tfidf-lr", {"min_df": 2.5}, False),
    ("causal-lm", {"epochs": 0}, False), ("causal-lm", {"batch_size": 0}, False),
    ("causal-lm", {"train_layers": "auto"}, True), ("causal-lm", {"train_layers": 0}, False),
])
def test_model_option_ranges_follow_how_the_options_are_used(kind, option, ok):
    from gapscope.models.options import options_class, parse_options
    from gapscope.option_rules import OptionError

    if ok:
        parse_options(options_class(kind), option, "m")
    else:
        with pytest.raises(OptionError):
            parse_options(options_class(kind), option, "m")


@pytest.mark.parametrize("seed", range(6))
def test_copies_that_disagree_on_their_label_stay_on_one_side(seed):
    """A legitimate email and its mislabelled copy were split apart (one per label's draw), and the
    de-duplication then dropped the correctly labelled training copy: the held-out mislabelled one
    was all that was left (a user's review)."""
    rows = [Row(id=f"h{i:02d}", domain="d", text=f"meeting notes {i}", label=0) for i in range(20)]
    rows += [Row(id=f"p{i:02d}", domain="d", text=f"verify your account {i}", label=1) for i in range(20)]
    rows += [Row(id="twin-a", domain="d", text="Your receipt for order 88", label=0),
             Row(id="twin-b", domain="d", text="your receipt for order 88", label=1)]  # the same, mislabelled
    train, test = split_held_out(rows, 0.5, seed=seed)
    assert {"twin-a", "twin-b"} <= set(train) or {"twin-a", "twin-b"} <= set(test)
    assert sorted(train + test) == sorted(r.id for r in rows)


def test_copies_of_one_email_stay_on_one_side_of_the_split():
    # split row by row, 60 copies of one phishing email made 16 of the 30 held-out phishing rows
    rows = [Row(id=f"c{i:03d}", domain="d", text="Verify your  account NOW", label=1) for i in range(60)]
    rows += [Row(id=f"p{i:03d}", domain="d", text=f"phishing email {i}", label=1) for i in range(40)]
    rows += [Row(id=f"h{i:03d}", domain="d", text=f"legitimate email {i}", label=0) for i in range(100)]
    train, test = split_held_out(rows, 0.3, seed=0)
    copies = {r.id for r in rows if r.id.startswith("c")}
    assert copies <= set(train) or copies <= set(test)
    assert copies <= set(train)  # 60 copies do not fit a test share of 30: the unique emails are held out
    held = sum(i.startswith("p") for i in test)
    assert 6 <= held <= 20 and 18 <= sum(i.startswith("h") for i in test) <= 42  # about 30% of each
    # a label whose rows are all copies of one email keeps them for training (split row by row,
    # its training copies were then dropped as duplicates of the test ones and the class was lost)
    one = [Row(id=f"t{i}", domain="e", text="Same template", label=1) for i in range(4)]
    one += [Row(id=f"l{i}", domain="e", text=f"legit {i}", label=0) for i in range(10)]
    tr, te = split_held_out(one, 0.3, seed=0)
    assert {f"t{i}" for i in range(4)} <= set(tr) and 1 <= sum(i.startswith("l") for i in te) <= 6
    # without copies the split is the row-by-row one: each row held out when its own hash is below the share
    from gapscope.study.split import unit_hash

    plain = [r for r in rows if not r.id.startswith("c")]
    expected = [r.id for r in plain if unit_hash(3, r.id, "split", "d") < 0.25]
    assert split_held_out(plain, 0.25, seed=3)[1] == sorted(expected)
