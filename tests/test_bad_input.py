"""Bad input a reviewer fed the readers: each gets one line naming the file and the reason, exit 2,
no traceback; nothing is kept or dropped without a word."""

import io
import random
import tarfile

import pytest

from tests.test_cli import run
from tests.test_ingest import error_of, load


def _one_line_error(r, path, reason):
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0], r.stderr


def test_a_label_of_hundreds_of_digits_is_an_unknown_label_not_a_crash(tmp_path):
    # float('1000...0') is inf, and int(inf) raised OverflowError out of the reader
    p = tmp_path / "x.csv"
    p.write_text("text,label\nhi there,ham\nclick here,1" + "0" * 400 + "\n")
    rows, rep = load(p)
    assert len(rows) == 1 and [k[:25] for k in rep.rejected_by_reason] == ["unknown label value '1000"]


def test_a_corrupt_gzip_text_file_is_one_line(tmp_path):
    p = tmp_path / "y.csv.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff\xff")  # zlib.error, not OSError
    assert "not a valid gzip file" in error_of(p)


def _tar(path, mode, n=60, words=900):
    rng = random.Random(0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for i in range(n):
            body = (f"From: a@b.example\nSubject: note {i}\n\n"
                    + " ".join(rng.choice(["alpha", "beta", "verify", "account", "meeting"]) for _ in range(words)))
            info = tarfile.TarInfo(f"mail/{i:03d}.eml")
            info.size = len(body.encode())
            t.addfile(info, io.BytesIO(body.encode()))
    return bytearray(buf.getvalue())


def test_a_damaged_tar_gz_is_refused_not_read_as_garbled_mail(tmp_path):
    """tarfile stops at the end-of-archive marker, before gzip's checksum: bytes damaged in the
    trailing blocks went unnoticed. The whole stream is read, so the checksum is checked."""
    data = _tar(tmp_path, "w:gz", n=3, words=50)
    data[-12] ^= 0xFF  # in the deflate stream's tail: the end-of-archive zeros, before the CRC
    p = tmp_path / "c.tar.gz"
    p.write_bytes(bytes(data))
    assert "not a readable tar archive" in error_of(p, label_value="phishing")


def test_a_name_too_long_for_the_file_system_is_one_line(tmp_path):
    p = tmp_path / ("x" * 300 + ".csv")
    r = run("data", "audit", p, "--out", tmp_path / "o")
    _one_line_error(r, p, "file name too long")


def test_a_seed_past_32_bits_is_refused_before_any_work(tmp_path):
    """numpy and scikit-learn take 32-bit seeds: [study] seed = 99999999999 passed validation and every
    cell failed on it; `backdoor-scan --seed 4294967296` failed inside scikit-learn."""
    from gapscope.errors import SpecError
    from gapscope.study.spec import load_spec

    (tmp_path / "a.jsonl").write_text('{"text": "hi", "label": 0}\n')
    (tmp_path / "s.toml").write_text('[study]\nseed = 99999999999\n[[datasets]]\npath = "a.jsonl"\n')
    with pytest.raises(SpecError, match=r"seed must be at most 4294967295"):
        load_spec(tmp_path / "s.toml")
    r = run("data", "synth", "--out", tmp_path / "syn", "--seed", "4294967296")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "less than or equal to 4294967295" in r.stderr


def test_every_file_of_a_maildir_is_a_row_or_a_counted_rejection(tmp_path):
    """mailbox.Maildir keyed messages by the name before ':' (two files, one row), skipped a Maildir++
    folder (.Junk, where spam lives) and every stray file, without a word: 9 files, '3 rows in'."""
    msg = b"From: a@b.example\nSubject: s %d\n\nbody %d\n"
    md = tmp_path / "md"
    files = {"cur/100.host:2,S": 1, "new/100.host": 2, "cur/101.host:2,": 3, "cur/101.host:2,RS": 4,
             "cur/.hidden": 5, "tmp/102.host": 6, ".Junk/cur/103.host:2,S": 7, "stray.eml": 8,
             "cur/subdir/104.host": 9}
    for name, i in files.items():
        (md / name).parent.mkdir(parents=True, exist_ok=True)
        (md / name).write_bytes(msg % (i, i))
    rows, rep = load(md, label_value="legitimate")
    assert rep.format == "maildir" and rep.rows_in == 9
    assert sorted(r.subject for r in rows) == ["s 1", "s 2", "s 3", "s 4"]
    junk = ('in the Maildir++ folder .Junk, which the fixed label was not given for: label = "folder" labels '
            "each folder, or read the folder as a source of its own")
    assert dict(rep.rejected_by_reason) == {"hidden file in a maildir (not a message)": 1,
                                            "in tmp/: a message still being delivered": 1,
                                            "not a message: outside the maildir's cur/ and new/": 2, junk: 1}
    # a review: read under the inbox's label, .Junk's spam became legitimate rows without a word
    rows, rep = load(md, label="folder", label_map={"INBOX": "legitimate", "Junk": "phishing"})
    assert sorted((r.subject, r.label) for r in rows) == [("s 1", 0), ("s 2", 0), ("s 3", 0), ("s 4", 0), ("s 7", 1)]
    assert sorted(r.location for r in rows)[0] == "md/.Junk/cur/103.host:2,S"


def test_a_line_of_spaces_in_a_one_column_csv_is_a_counted_empty_row(tmp_path):
    p = tmp_path / "o.csv"
    p.write_text("text\nhello there\n   \n\nclick\n")  # the empty line is no row; the spaces are one
    rows, rep = load(p, label_value="phishing")
    assert len(rows) == 2 and rep.rows_in == 3 and dict(rep.rejected_by_reason) == {"empty text": 1}


def test_a_json_array_element_that_is_not_an_object_is_located_by_element(tmp_path):
    p = tmp_path / "arr.json"
    p.write_text('[\n {"text": "hello there", "label": 0},\n {"text": "click here", "label": 1},\n 5\n]')
    rows, rep = load(p)
    assert len(rows) == 2 and rep.rejected_at == {"not a JSON object": ["arr.json row 3 (index 2)"]}  # not line 3


@pytest.mark.parametrize("text", ['{\n  "data": [{"text": "hi", "label": 0}]\n}\n', '{"data": [{"text": "hi", "label": 0}]}'])
def test_a_json_file_that_wraps_its_rows_in_an_object_is_told_so(tmp_path, text):
    p = tmp_path / "wrapped.json"
    p.write_text(text)
    assert error_of(p) == (f"{p}: one JSON object, not an array of objects or one object per line (JSONL); its key "
                           "'data' holds a list of 1 objects: save that list as the file")


def test_a_one_row_jsonl_with_a_list_of_objects_is_still_a_row(tmp_path):
    p = tmp_path / "one.jsonl"
    p.write_text('{"text": "see attached", "label": 0, "parts": [{"name": "a.pdf"}]}\n')
    rows, rep = load(p)
    assert [r.text for r in rows] == ["see attached"]


@pytest.mark.parametrize("name", ["x.mbox.gz", "x.eml.gz", "x.parquet.gz"])
def test_a_gzipped_mail_or_parquet_file_is_told_to_be_decompressed(tmp_path, name):
    import gzip

    p = tmp_path / name
    p.write_bytes(gzip.compress(b"From a@b Mon Jan  1 00:00:00 2024\nSubject: hi\n\nbody\n"))
    assert "is not read as it is: decompress it first (gunzip -k" in error_of(p, label_value="phishing")


def test_a_spec_saved_with_a_byte_order_mark_is_read(tmp_path):
    from gapscope.study.spec import load_spec

    (tmp_path / "a.jsonl").write_text('{"text": "hi", "label": 0}\n')
    (tmp_path / "s.toml").write_bytes(b'\xef\xbb\xbf[study]\nname = "bom"\n[[datasets]]\npath = "a.jsonl"\n')
    assert load_spec(tmp_path / "s.toml").study.name == "bom"


def test_a_utf8_file_with_its_mark_read_as_latin1_is_told_it_is_utf8(tmp_path):
    p = tmp_path / "b.csv"
    p.write_bytes(b"\xef\xbb\xbftext,label\nhi,0\n")
    assert error_of(p, encoding="latin-1") == (f"{p}: starts with a UTF-8 byte order mark, so it is UTF-8, not "
                                               "latin-1: remove encoding = 'latin-1' from its [[datasets]] table")


def test_a_label_index_on_a_csv_is_refused_not_ignored(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("text,label\nhi,0\n")
    assert error_of(p, label_index="full/index") == (f"{p}: label_index applies to a folder or tar archive of mail "
                                                     "files; this source is read as csv")


def test_parquet_decimal_labels_read_as_numbers(tmp_path):
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["hi", "click"], "label": pa.array([Decimal("0.0"), Decimal("1.0")],
                                                                         pa.decimal128(3, 1))}), p)
    rows, rep = load(p)
    assert [r.label for r in rows] == [0, 1] and rep.rows_rejected == 0


def test_rows_whose_id_cannot_be_used_are_said_to_get_one_made(tmp_path):
    p = tmp_path / "ids.jsonl"
    p.write_text('{"id": [1], "text": "hi there", "label": 0}\n{"id": "", "text": "click", "label": 1}\n'
                 '{"id": "r3", "text": "lunch", "label": 0}\n')
    rows, rep = load(p, id="id")
    assert [r.id for r in rows][2] == "r3" and len(rows) == 3
    assert rep.notes == ["2 rows without a usable id in column 'id' (empty, a list or an object): given an id made "
                         "from the text"]


def test_keys_that_do_not_apply_to_mail_are_refused_not_ignored(tmp_path):
    p = tmp_path / "m.mbox"
    p.write_text("From a@b Mon Jan  1 00:00:00 2024\nSubject: hi\n\nbody\n")
    assert error_of(p, label_value="phishing", text="body", named=frozenset({"text"})) == (
        f"{p}: text does not apply to mail: a message is read as its subject and body, and its row id is made "
        "from its text")
    assert error_of(p, label_value="phishing", label_map={"spam": 1}) == (
        f"{p}: label_map does not apply with label_value (every row takes that label)")


def test_a_csv_not_named_csv_is_located_by_line(tmp_path):
    """Whether a row number is a line was guessed from the file's name: emails.txt read as CSV gave
    'row 2 (index 1)' for its first row, which is index 0 (a review)."""
    p = tmp_path / "emails.txt"
    p.write_text("text,label\nhello there,0\n,1\n")
    rows, rep = load(p, format="csv")
    assert [r.location for r in rows] == ["emails.txt:2"] and rep.rejected_at == {"empty text": ["emails.txt:3"]}


def test_the_made_id_note_counts_kept_rows_only(tmp_path):
    p = tmp_path / "i.csv"
    p.write_text("id,text,label\na1,hello there,0\n,,1\n,click now,banana\n")
    rows, rep = load(p, id="id")
    assert len(rows) == 1 and rep.notes == []  # both id-less rows were rejected: no id was made


def test_bytes_after_a_tar_gz_are_ignored_as_gunzip_does(tmp_path):
    p = tmp_path / "t.tar.gz"
    p.write_bytes(bytes(_tar(tmp_path, "w:gz", n=3, words=50)) + b"trailing junk, not gzip")
    rows, rep = load(p, label_value="phishing")
    assert len(rows) == 3 and rep.rows_rejected == 0


def test_a_one_line_jsonl_of_nested_fields_is_a_row_not_a_wrapper(tmp_path):
    p = tmp_path / "chat.jsonl"
    p.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    assert "one JSON object" not in error_of(p)  # it has no text column: said as such


def test_a_truncated_tar_says_how_far_it_was_read(tmp_path):
    data = bytes(_tar(tmp_path, "w", n=2, words=400))
    second = tarfile.open(fileobj=io.BytesIO(data)).getmembers()[1]
    p = tmp_path / "trunc.tar"
    p.write_bytes(data[: second.offset_data + 100])  # the first member whole, the second cut short
    assert "not a readable tar archive after 1 file (" in error_of(p, label_value="phishing")
