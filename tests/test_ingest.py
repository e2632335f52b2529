"""Ingestion: every format's happy path, and one test per bad input with its exact message or counts."""

from __future__ import annotations

import base64
import json
import mailbox
import quopri
from pathlib import Path

import pytest

from gapscope.data.audit import audit
from gapscope.data.email_parse import BrokenMessage, html_to_text, parse_email
from gapscope.data.ingest import load_source, load_sources, parse_cli_source
from gapscope.data.labels import LabelError, parse_label
from gapscope.data.readers import detect_format
from gapscope.data.rows import stable_id
from gapscope.study.artifacts import rows_to_frame
from gapscope.data.source_spec import SourceSpec
from gapscope.errors import InputError


def spec(path: Path, **kw) -> SourceSpec:
    return SourceSpec(path=path, domain=kw.pop("domain", "d"), **kw)


def load(path: Path, **kw):
    rows, rep = load_source(spec(path, **kw))
    assert rep.rows_in == rep.rows_kept + rep.rows_rejected
    assert rep.rows_kept == len(rows)
    assert rep.label_counts == {"phishing": sum(r.label for r in rows),
                                "legitimate": sum(1 - r.label for r in rows)}
    return rows, rep


def write_jsonl(path: Path, items) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in items), encoding="utf-8")
    return path


def error_of(path: Path, **kw) -> str:
    with pytest.raises(InputError) as e:
        load_source(spec(path, **kw))
    return str(e.value)


# ---------------------------------------------------------------- labels


def test_builtin_labels_and_user_map():
    assert [parse_label(x) for x in ("Phishing Email", " safe  EMAIL", "SPAM", "ham", "not spam", "legit",
                                     "fraud", "scam", "malicious", "benign", True, False, 1, 0, "1", "0.0", 1.0)] == \
        [1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    assert parse_label("spam", {"SPAM": 0}) == 0  # the user map wins
    assert parse_label("yes", {"Yes": 1}) == 1
    with pytest.raises(LabelError, match=r"^unknown label value 'foo'$"):
        parse_label("foo")
    with pytest.raises(LabelError, match="^missing label$"):
        parse_label(float("nan"))


# ---------------------------------------------------------------- happy paths


def test_jsonl_keeps_id_column_and_stable_ids(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [
        {"id": 7, "text": "win a prize", "label": "spam"},
        {"text": "meeting at 3", "label": "ham"},
        {"text": "meeting at 3", "label": "ham"},
    ])
    rows, rep = load(p)
    assert [r.id for r in rows[:1]] == ["7"]
    assert rows[1].id == stable_id("d", "meeting at 3", 0)
    assert rows[2].id == stable_id("d", "meeting at 3", 1)
    assert rep.to_dict()["label_counts"] == {"phishing": 1, "legitimate": 2}
    assert rep.format == "jsonl" and rows[0].meta["row"] == 1


def test_stable_ids_identical_across_two_loads(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [{"text": f"email {i}", "label": i % 2} for i in range(20)])
    first = [r.id for r in load(p)[0]]
    second = [r.id for r in load(p)[0]]
    assert first == second and len(set(first)) == 20


def test_csv_subject_body_with_multiline_quoted_field(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text('id,subject,body,label\n'
                 '1,Urgent,"Verify your account,\nor lose it",Phishing Email\n'
                 '2,Lunch,"see you ""there""",Safe Email\n', encoding="utf-8")
    rows, rep = load(p)
    assert rep.format == "csv" and rep.rows_kept == 2
    assert rows[0].text == "Subject: Urgent\n\nVerify your account,\nor lose it"
    assert (rows[0].subject, rows[0].body, rows[0].label, rows[0].id) == (
        "Urgent", "Verify your account,\nor lose it", 1, "1")
    assert rows[1].body == 'see you "there"' and rows[1].meta["row"] == 4  # record starts on line 4


def test_csv_with_utf8_bom(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufefftext,label\ncafé,ham\n".encode("utf-8"))
    rows, _ = load(p)
    assert rows[0].text == "café"


def test_excel_exports_semicolons_and_latin1(tmp_path):
    """A ';'-separated, latin-1 CSV (a common Excel export) was refused whole: it reads with
    delimiter and encoding, and without them the error says which to set."""
    from gapscope.data.readers import InputError

    p = tmp_path / "excel.csv"
    p.write_bytes("text;label\ncaf\xe9 au lait;ham\nv\xe9rifiez votre compte;spam\n".encode("latin-1"))
    rows, _ = load(p, delimiter=";", encoding="latin-1")
    assert [r.text for r in rows] == ["café au lait", "vérifiez votre compte"] and [r.label for r in rows] == [0, 1]
    with pytest.raises(InputError, match='set encoding = "latin-1"'):
        load(p)
    q = tmp_path / "semi.csv"
    q.write_text("text;label\nhello;ham\n")
    with pytest.raises(InputError, match="set delimiter = ';'"):
        load(q)
    j = tmp_path / "l1.jsonl"
    j.write_bytes('{"text": "d\xe9j\xe0 vu", "label": 0}\n'.encode("latin-1"))
    assert load(j, encoding="latin-1")[0][0].text == "déjà vu"
    # an option the reader would ignore is refused, not dropped
    with pytest.raises(InputError, match="delimiter applies to CSV"):
        load(j, delimiter=";")
    # Excel's "Unicode text" is UTF-16 with a BOM: refused as UTF-8, read when named
    u = tmp_path / "u16.csv"
    u.write_bytes("text,label\ncaf\u00e9,ham\n".encode("utf-16"))
    with pytest.raises(InputError, match='set encoding = "utf-16"'):
        load(u)
    assert load(u, encoding="utf-16")[0][0].text == "café"


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": ["a", "b", None], "label": [1, 0, 1], "id": ["x", "y", "z"]}), p)
    rows, rep = load(p)
    assert [r.id for r in rows] == ["x", "y"]
    assert rep.rejected_by_reason == {"empty text": 1}
    assert rep.rejected_at == {"empty text": ["p.parquet row 3 (index 2)"]}  # where to find it (the third row)


def test_hf_dataset_and_dataset_dict(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["spam", "ham"]})
    ds.save_to_disk(str(tmp_path / "single"))
    rows, rep = load(tmp_path / "single")
    assert rep.format == "hf" and [r.label for r in rows] == [1, 0]

    feats = datasets.Features({"text": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=["phishing", "legitimate"])})
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["t1", "t2"], "label": [0, 1]}, features=feats),
        "test": datasets.Dataset.from_dict({"text": ["t3"], "label": [1]}, features=feats),
    })
    dd.save_to_disk(str(tmp_path / "dd"))
    rows, rep = load(tmp_path / "dd")
    assert [(r.text, r.label, r.meta["split"]) for r in rows] == [
        ("t1", 1, "train"), ("t2", 0, "train"), ("t3", 0, "test")]  # ClassLabel 0 is "phishing"
    # where each row is opened: its split and its index there (dd["test"][0]), not the 3rd row overall
    assert [r.location for r in rows] == ["dd row 1 (train[0])", "dd row 2 (train[1])", "dd row 3 (test[0])"]
    assert [r.location for r in load(tmp_path / "single")[0]] == ["single row 1 (index 0)", "single row 2 (index 1)"]


def test_hf_classlabel_with_unknown_names_needs_a_label_map(tmp_path):
    import datasets

    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["bad", "good"])})
    datasets.Dataset.from_dict({"text": ["t1", "t2"], "label": [0, 1]}, features=feats).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(InputError, match=r"ClassLabel with names \['bad', 'good'\].*label_map"):
        load(tmp_path / "d")  # its codes read as labels would make "bad" legitimate
    rows, _ = load(tmp_path / "d", label_map={"bad": 1, "good": 0})
    assert [r.label for r in rows] == [1, 0]
    rows, _ = load(tmp_path / "d", label_value="phishing")  # the column is not read: no map needed
    assert [r.label for r in rows] == [1, 1]


MULTIPART = b"""From: "Bank" <security@bank.example>
To: you@example.com
Subject: =?utf-8?q?Action_required?=
Message-ID: <m1@bank.example>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="BOUND"

--BOUND
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

""" + base64.encodebytes("Your account is locked. Caf\u00e9 r\u00e9sum\u00e9.\n".encode("utf-8")) + b"""
--BOUND
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

""" + quopri.encodestring(b"<html><body><p>Your account</p></body></html>") + b"""
--BOUND--
"""

LATIN1 = b"""From: shop@example.com
Subject: =?iso-8859-1?q?R=E9sum=E9?=
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 au lait, cr=E8me br=FBl=E9e.
"""

HTML_ONLY = b"""From: promo@example.com
Subject: Offer
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

""" + base64.encodebytes(
    b'<html><head><style>p {color: red}</style><script>alert(1)</script></head>'
    b'<body><p>Click   <a href="http://evil.example/login">here</a> now!</p><div>Thanks</div></body></html>')

BROKEN = b"""From: x@example.com
Subject: broken
Content-Type: multipart/mixed; boundary="NEVER"

this body never uses its boundary
"""

BAD_BASE64 = b"""From: x@example.com
Subject: garbage
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

!!!!not base64 at all####
"""


def write_mbox(path: Path, messages: list[bytes]) -> Path:
    with open(path, "wb") as f:
        for m in messages:
            f.write(b"From sender@example.com Mon Jan  1 00:00:00 2024\n" + m.rstrip(b"\n") + b"\n\n")
    return path


@pytest.mark.parametrize("charset", ["rot13", "zlib", "uu", "hex", "base64"])
def test_a_codec_declared_as_charset_is_read_as_text_not_refused(charset):
    msg = parse_email(b'Subject: hi\nContent-Type: text/plain; charset="%s"\n\nPay now\n' % charset.encode())
    assert msg.body == "Pay now"


def test_parse_email_multipart_base64_qp_latin1_html():
    m = parse_email(MULTIPART)
    assert m.subject == "Action required" and m.sender == "Bank <security@bank.example>"
    assert m.body == "Your account is locked. Caf\u00e9 r\u00e9sum\u00e9." and m.had_html
    m = parse_email(LATIN1)
    assert (m.subject, m.body, m.had_html) == ("R\u00e9sum\u00e9", "Caf\u00e9 au lait, cr\u00e8me br\u00fbl\u00e9e.", False)
    m = parse_email(HTML_ONLY)
    assert m.body == "Click here (http://evil.example/login) now!\nThanks" and m.had_html


def _alternative(plain: str, html: str) -> bytes:
    return (b'From: it@corp.example\nSubject: Mailbox\nMIME-Version: 1.0\n'
            b'Content-Type: multipart/alternative; boundary="B"\n\n--B\nContent-Type: text/plain; charset=utf-8\n\n'
            + plain.encode() + b'\n--B\nContent-Type: text/html; charset=utf-8\n\n' + html.encode() + b'\n--B--\n')


def test_an_html_part_with_a_link_the_plain_part_lacks_is_read_in_its_place():
    # the reviewer's corpmail: the phishing link only in the HTML part, which was dropped beside a
    # text/plain part (url_share 0.005 for a corpus whose phishing half carries a link)
    html = ("<p>Your mailbox is 98% full. <a href='http://owa-31.login-portal.ru/'>Validate your account</a>"
            " today.</p>")
    m = parse_email(_alternative("Your mailbox is almost full. Validate your account.", html))
    assert m.body == "Your mailbox is 98% full. Validate your account (http://owa-31.login-portal.ru/) today."
    assert m.plain_set_aside and m.had_html
    # the plain part shows the link (a trailing slash aside): it is kept, the HTML adds nothing
    m = parse_email(_alternative("Validate at http://owa-31.login-portal.ru today.", html))
    assert m.body == "Validate at http://owa-31.login-portal.ru today." and not m.plain_set_aside
    # no link in the HTML: the plain part, as before
    m = parse_email(_alternative("Lunch at noon?", "<p>Lunch at <b>noon</b>?</p>"))
    assert m.body == "Lunch at noon?" and not m.plain_set_aside
    # a mailto: or tel: link is shown as its address or number: the plain part stays
    m = parse_email(_alternative("Write to help@example.com or call +1 555 0100.",
                                 '<p>Write to <a href="mailto:help@example.com">help@example.com</a> or call '
                                 '<a href="tel:+15550100">+1 555 0100</a>.</p>'))
    assert m.body == "Write to help@example.com or call +1 555 0100." and not m.plain_set_aside


def test_the_audit_counts_mail_read_from_its_html_part(tmp_path):
    d = tmp_path / "corp"
    d.mkdir()
    (d / "a.eml").write_bytes(_alternative("Validate your account.", '<a href="http://x.example/v">Validate</a>'))
    (d / "b.eml").write_bytes(_alternative("Lunch at noon?", "<p>Lunch at noon?</p>"))
    rows, rep = load(d, label_value="phishing")
    style = audit(rows, [rep])["sources"][0]["style"]
    assert style["html_body_share"] == 0.5 and style["url_share"] == 0.5


def test_html_to_text_drops_scripts_keeps_links():
    html = '<style>x{}</style><p>Hi &amp; <a href="https://a.example">https://a.example</a></p><script>bad()</script>'
    assert html_to_text(html) == "Hi & https://a.example"


def test_broken_mime_raises():
    for raw, detail in ((b"", "empty message"), (b"just text, no headers\n", "no headers"),
                        (BROKEN, "multipart boundary not found"), (BAD_BASE64, "undecodable base64")):
        with pytest.raises(BrokenMessage) as e:
            parse_email(raw)
        assert e.value.detail == detail


def test_mbox_formats_and_one_broken_message_rejected(tmp_path):
    p = write_mbox(tmp_path / "nazario.mbox", [MULTIPART, LATIN1, HTML_ONLY, BROKEN])
    rows, rep = load(p, label_value="phishing")
    assert (rep.rows_in, rep.rows_kept, rep.rows_rejected) == (4, 3, 1)
    assert rep.rejected_by_reason == {"broken MIME: multipart boundary not found": 1}
    assert rows[0].text == "Subject: Action required\n\nYour account is locked. Caf\u00e9 r\u00e9sum\u00e9."
    assert rows[1].body == "Caf\u00e9 au lait, cr\u00e8me br\u00fbl\u00e9e."
    assert [r.meta["had_html"] for r in rows] == [True, False, True]
    assert {r.label for r in rows} == {1}
    assert rep.label_counts == {"phishing": 3, "legitimate": 0}


def test_mbox_every_message_broken_is_a_file_error(tmp_path):
    p = write_mbox(tmp_path / "bad.mbox", [BROKEN, BROKEN])
    assert error_of(p, label_value=1) == \
        f"{p}:1: every message has broken MIME (message 1: multipart boundary not found)"


def test_mail_source_needs_label(tmp_path):
    p = write_mbox(tmp_path / "x.mbox", [LATIN1])
    # the command line's spelling too: "label_value" alone named a spec key a CLI user never wrote
    assert error_of(p) == (f'{p}: mbox source needs a label: label_value = "phishing" or "legitimate" in the spec, '
                           "PATH@phishing or PATH@legitimate on the command line")


def test_maildir(tmp_path):
    md = mailbox.Maildir(str(tmp_path / "inbox"), create=True)
    for m in (LATIN1, HTML_ONLY):
        md.add(m)
    assert detect_format(tmp_path / "inbox") == "maildir"
    rows, rep = load(tmp_path / "inbox", label_value="legitimate")
    assert rep.format == "maildir" and rep.rows_kept == 2 and {r.label for r in rows} == {0}
    assert sorted(r.subject for r in rows) == ["Offer", "R\u00e9sum\u00e9"]


def test_eml_directory_sorted_recursive(tmp_path):
    d = tmp_path / "emls"
    (d / "sub").mkdir(parents=True)
    (d / "b.eml").write_bytes(LATIN1)
    (d / "sub" / "a.eml").write_bytes(HTML_ONLY)
    (d / "a.eml").write_bytes(MULTIPART)
    (d / "notes.txt").write_text("not mail: counted, not skipped")
    rows, rep = load(d, label_value=1)
    assert [r.meta["file"] for r in rows] == ["a.eml", "b.eml", "sub/a.eml"]
    assert rep.format == "eml" and rep.rows_in == 4
    assert dict(rep.rejected_by_reason) == {"not an email (no header lines)": 1}
    assert rep.rejected_at["not an email (no header lines)"][0].endswith("/notes.txt")
    assert "not an email (no header lines): 1 at " in rep.summary() and "notes.txt" in rep.summary()


def test_a_dangling_eml_link_is_counted_not_skipped(tmp_path):
    d = tmp_path / "emls"
    d.mkdir()
    (d / "a.eml").write_bytes(MULTIPART)
    (d / "gone.eml").symlink_to(tmp_path / "nowhere.eml")
    rows, rep = load(d, label_value=1)
    assert len(rows) == 1 and rep.rows_in == 2
    assert dict(rep.rejected_by_reason) == {"unreadable file (No such file or directory)": 1}


def test_text_before_the_first_mbox_message_is_counted(tmp_path):
    p = tmp_path / "box.mbox"
    p.write_bytes(b"From: a@x\nSubject: one\n\nfirst body\n"
                  + b"".join(b"From b@x Thu Jan  1 00:00:00 2025\nSubject: s%d\n\nbody %d\n\n" % (i, i) for i in (2, 3)))
    rows, rep = load(p, label_value=0)
    assert len(rows) == 2 and rep.rows_in == 3
    assert dict(rep.rejected_by_reason) == {"text before the first 'From ' line (not part of any message)": 1}
    q = tmp_path / "clean.mbox"
    q.write_bytes(b"\n" + p.read_bytes().split(b"first body\n", 1)[1])
    assert load(q, label_value=0)[1].rows_rejected == 0


# ------------------------------------- public corpora as published: folders and tar archives

def _unix_from(sender: str = "someone@example.com") -> bytes:
    return f"From {sender}  Thu Aug 22 12:36:23 2002\n".encode()


def spamassassin_like(root: Path) -> Path:
    """SpamAssassin's layout: spam/ and *_ham/ folders of files named by hash, each message
    saved with its mbox "From " line, plus the `cmds` file of the tarball and a .DS_Store."""
    for folder, msgs in {"easy_ham": [LATIN1, HTML_ONLY], "hard_ham": [MULTIPART], "spam": [HTML_ONLY, LATIN1],
                         "odd_folder": [LATIN1]}.items():
        (root / folder).mkdir(parents=True)
        for i, m in enumerate(msgs):
            (root / folder / f"0000{i}.7c53336b37003a9286aba55d2945844{i}").write_bytes(_unix_from() + m)
    (root / "easy_ham" / "cmds").write_text("mv 00001.7c53 00001.7c53336b37003a9286aba55d29458441\n")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1\x00\x00")
    return root


def test_a_folder_of_mail_files_with_any_names_labelled_by_folder(tmp_path):
    d = spamassassin_like(tmp_path / "spamassassin")
    assert detect_format(d) == "eml"
    rows, rep = load(d, label="folder")
    assert (rep.rows_in, rep.rows_kept) == (8, 5)
    assert dict(rep.rejected_by_reason) == {"not an email (binary file)": 1, "not an email (no header lines)": 1,
                                            "unknown label value 'odd_folder'": 1}
    assert [(r.meta["file"].split("/")[0], r.label) for r in rows] == \
        [("easy_ham", 0), ("easy_ham", 0), ("hard_ham", 0), ("spam", 1), ("spam", 1)]
    # the mbox "From " line is not part of the message; one file is one row
    assert rows[0].subject == "R\u00e9sum\u00e9" and rows[2].subject == "Action required"
    # the same folder given a fixed label instead, and a label map for the odd folder
    rows, rep = load(d, label="folder", label_map={"odd_folder": "legitimate"})
    assert rep.rows_kept == 6 and not any("unknown" in k for k in rep.rejected_by_reason)


def test_a_mail_folder_needs_a_label_and_says_how(tmp_path):
    d = spamassassin_like(tmp_path / "sa")
    assert error_of(d) == (f"{d}: eml source needs a label: label_value (on the command line PATH@phishing or "
                           'PATH@legitimate), label = "folder" (PATH@folder) to read each file\'s label from the '
                           "name of its folder (spam/, ham/), or label_index = \"<index file>\" in a spec's "
                           "[[datasets]] table for a TREC-style index of '<label> <path>' lines")
    s = parse_cli_source(f"{d}@folder")
    assert (s.path, s.domain, s.label, s.label_value) == (d, "sa", "folder", None)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "readme.txt").write_text("a corpus of nothing\n")
    with pytest.raises(InputError, match="cannot tell the format of this directory"):
        detect_format(tmp_path / "plain")


def test_a_fixed_label_must_agree_with_the_folders(tmp_path):
    d = spamassassin_like(tmp_path / "sa")
    with pytest.raises(InputError, match="its 'folder' column says 'easy_ham'"):
        load_source(spec(d, label="folder", label_value="phishing"))
    # PATH@phishing over a folder with spam/ and ham/ inside labelled every file phishing, silently
    with pytest.raises(InputError, match=r"a file sits in a folder named 'easy_ham' \(legitimate\).*PATH@folder"):
        load_source(spec(d, label_value="phishing"))
    rows, _ = load(d / "spam", label_value="spam")  # one folder, one label
    assert len(rows) == 2 and {r.label for r in rows} == {1}


@pytest.mark.parametrize("suffix,mode", [(".tar.gz", "w:gz"), (".tar.bz2", "w:bz2"), (".tgz", "w:gz"), (".tar", "w")])
def test_a_tar_archive_reads_as_its_folder(tmp_path, suffix, mode):
    import tarfile
    d = spamassassin_like(tmp_path / "spamassassin")
    archive = tmp_path / f"spamassassin{suffix}"
    with tarfile.open(archive, mode) as tar:
        tar.add(d, arcname="spamassassin")
    assert detect_format(archive) == "eml"
    assert parse_cli_source(f"{archive}@folder").domain == "spamassassin"
    got, rep = load(archive, label="folder")
    want, want_rep = load(d, label="folder")
    assert [(r.id, r.label, r.text) for r in got] == [(r.id, r.label, r.text) for r in want]
    assert rep.rejected_by_reason == want_rep.rejected_by_reason
    assert got[0].meta["file"] == "spamassassin/easy_ham/00000.7c53336b37003a9286aba55d29458440"


def test_an_archive_link_is_counted_and_a_damaged_archive_is_one_line(tmp_path):
    import tarfile
    d = spamassassin_like(tmp_path / "sa")
    (d / "spam" / "link").symlink_to(d / "spam" / "00000.7c53336b37003a9286aba55d29458440")
    archive = tmp_path / "sa.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(d, arcname="sa")
    _, rep = load(archive, label="folder")
    assert rep.rejected_by_reason["not a regular file in the archive"] == 1
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    msg = error_of(cut, label="folder")
    assert msg.startswith(f"{cut}: not a readable tar archive") and "\n" not in msg


def test_a_garbage_archive_is_one_line(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    msg = error_of(junk, label="folder")
    assert msg.startswith(f"{junk}: not a readable tar archive") and "\n" not in msg


def test_a_link_out_of_the_folder_is_counted_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(LATIN1)  # it looks like mail: only where it lives keeps it out
    d = spamassassin_like(tmp_path / "sa")
    (d / "spam" / "inside").symlink_to(d / "spam" / "00000.7c53336b37003a9286aba55d29458440")
    (d / "spam" / "outside").symlink_to(secret)
    rows, rep = load(d, label="folder")
    assert rep.rejected_by_reason["a link to a file outside the folder"] == 1
    files = [r.meta["file"] for r in rows]
    assert "spam/inside" in files and "spam/outside" not in files


def test_a_linked_folder_is_counted_not_followed(tmp_path):
    # a maildir whose new/ is a link: rglob lists the link and does not descend, and the link was
    # rejected as "outside the maildir's cur/ and new/"; in a folder of mail files, as an unreadable file
    from gapscope.data.mail_sources import LINK_TO_FOLDER
    md = mailbox.Maildir(str(tmp_path / "inbox"), create=True)
    md.add(LATIN1)
    for f in (tmp_path / "inbox" / "new").iterdir():  # the added message goes to cur/, and new/ becomes a link
        f.rename(tmp_path / "inbox" / "cur" / f.name)
    (tmp_path / "inbox" / "new").rmdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "1700000001.x:2,S").write_bytes(MULTIPART)
    (tmp_path / "inbox" / "new").symlink_to(tmp_path / "elsewhere")
    rows, rep = load(tmp_path / "inbox", label_value=0)
    assert len(rows) == 1 and rep.rows_in == 2 and dict(rep.rejected_by_reason) == {LINK_TO_FOLDER: 1}
    d = spamassassin_like(tmp_path / "sa")
    (d / "more").symlink_to(tmp_path / "elsewhere")
    before, brep = load(spamassassin_like(tmp_path / "sa2"), label="folder")
    rows, rep = load(d, label="folder")
    assert len(rows) == len(before) and dict(rep.rejected_by_reason) == {**brep.rejected_by_reason, LINK_TO_FOLDER: 1}


def test_a_file_larger_than_any_email_is_counted_not_read(tmp_path, monkeypatch):
    import tarfile
    from gapscope.data import mail_sources
    monkeypatch.setattr(mail_sources, "MAX_MESSAGE_BYTES", 2000)
    d = tmp_path / "mail"
    (d / "spam").mkdir(parents=True)
    (d / "spam" / "small.eml").write_bytes(LATIN1)
    (d / "spam" / "big.eml").write_bytes(LATIN1 + b"x" * 3000)
    write_mbox(d / "spam" / "many.mbox", [LATIN1, MULTIPART, LATIN1 + b"y" * 1000])  # an mbox has no limit
    archive = tmp_path / "mail.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(d, arcname="mail")
    for source in (d, archive):
        rows, rep = load(source, label="folder")
        assert len(rows) == 4 and rep.rows_in == 5
        assert list(rep.rejected_by_reason) == [mail_sources.TOO_LARGE]


def test_a_dangling_maildir_message_is_counted_not_fatal(tmp_path):
    md = mailbox.Maildir(str(tmp_path / "inbox"), create=True)
    md.add(LATIN1)
    (tmp_path / "inbox" / "cur" / "1700000000.gone:2,S").symlink_to(tmp_path / "nowhere")
    rows, rep = load(tmp_path / "inbox", label_value=0)
    assert len(rows) == 1 and rep.rows_in == 2
    assert dict(rep.rejected_by_reason) == {"unreadable file (No such file or directory)": 1}


def test_mbox_files_in_a_folder_give_one_row_per_message(tmp_path):
    """Nazario's corpus: several mbox files, some without an extension. A single message
    saved with its "From " line, or with a body line starting "From ", stays one row."""
    d = tmp_path / "nazario"
    d.mkdir()
    write_mbox(d / "phishing0.mbox", [MULTIPART, LATIN1])
    write_mbox(d / "phishing-2015", [HTML_ONLY, LATIN1, MULTIPART])
    (d / "single").write_bytes(_unix_from() + LATIN1.rstrip(b"\n")
                               + b"\n\nFrom the desk of the manager\nAttention: all staff\n")
    rows, rep = load(d, label_value="phishing")
    assert rep.rows_in == rep.rows_kept == 6
    assert [(r.meta["file"], r.meta.get("message")) for r in rows] == \
        [("phishing-2015", 1), ("phishing-2015", 2), ("phishing-2015", 3),
         ("phishing0.mbox", 1), ("phishing0.mbox", 2), ("single", None)]
    assert rows[-1].body.endswith("From the desk of the manager\nAttention: all staff")


def test_an_mbox_in_a_folder_keeps_every_message_whatever_one_holds(tmp_path):
    """A stray NUL in an mbox's first message cut the file to its first 8 KB, losing the rest
    uncounted; a message with a NUL is read as the mbox reader reads it."""
    d = tmp_path / "naz"
    d.mkdir()
    filler = b"x" * 200
    msgs = [LATIN1.rstrip(b"\n") + b"\nnul \x00 here\n"] + [LATIN1.rstrip(b"\n") + b"\n" + filler + b"\n"] * 60
    write_mbox(d / "phishing0.mbox", msgs)
    write_mbox(tmp_path / "same.mbox", msgs)
    rows, rep = load(d, label_value=1)
    direct, drep = load(tmp_path / "same.mbox", label_value=1)
    assert rep.rows_in == drep.rows_in == 61 and rep.rows_kept == drep.rows_kept
    assert [r.text for r in rows] == [r.text for r in direct]


def test_mbox_separators_by_content_are_strict(tmp_path):
    """A body line "From 10:00 to 11:30 on Friday ... 2002" after a blank line does not split a
    message; an mbox with no blank lines before its separators is still split."""
    d = tmp_path / "mail"
    d.mkdir()
    (d / "00001.abc").write_bytes(_unix_from() + LATIN1.rstrip(b"\n")
                                  + b"\n\nFrom 10:00 to 11:30 on Friday 23 August 2002 the lab is closed.\n")
    (d / "noblank-2016").write_bytes(b"".join(b"From MAILER-DAEMON Sat Nov  3 01:02:03 2007\n" + m.rstrip(b"\n") + b"\n"
                                              for m in (LATIN1, HTML_ONLY, MULTIPART)))
    rows, rep = load(d, label_value=1)
    assert [(r.meta["file"], r.meta.get("message")) for r in rows] == [
        ("00001.abc", None), ("noblank-2016", 1), ("noblank-2016", 2), ("noblank-2016", 3)]
    assert rows[0].body.endswith("the lab is closed.") and rep.rows_rejected == 0


def test_only_files_that_look_like_mail_are_read_as_mail(tmp_path):
    """A README beside .eml files is not an email because its first lines look like headers;
    a folder of JSON shards is not a mail folder."""
    d = tmp_path / "emls"
    d.mkdir()
    (d / "a.eml").write_bytes(MULTIPART)
    (d / "README.txt").write_text("Source: a mail archive\nLicense: CC-BY\n\nThis folder holds emails.\n")
    (d / "0001.1999-12-10.farmer.ham.txt").write_text("Subject: meeting\nsee you at ten\n")  # Enron-spam: no blank line
    rows, rep = load(d, label_value=1)
    assert [r.meta["file"] for r in rows] == ["0001.1999-12-10.farmer.ham.txt", "a.eml"]
    assert dict(rep.rejected_by_reason) == {"not an email (no header lines)": 1}
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "part-0000").write_text('{"text": "hi", "label": 1}\n')
    with pytest.raises(InputError, match="cannot tell the format of this directory"):
        detect_format(shards)


def test_a_json_array_row_is_located_by_element(tmp_path):
    (tmp_path / "a.json").write_text('[\n{"text": "one", "label": 1},\n{"text": "two", "label": 0}\n]\n')
    assert [r.location for r in load(tmp_path / "a.json")[0]] == ["a.json row 1 (index 0)", "a.json row 2 (index 1)"]


def test_a_spec_names_an_archive_dataset_by_its_stem(tmp_path):
    from gapscope.study.spec import load_spec
    (tmp_path / "study.toml").write_text('[[datasets]]\npath = "spamassassin.tar.bz2"\nlabel = "folder"\n')
    s = load_spec(tmp_path / "study.toml")
    assert (s.datasets[0].domain, s.datasets[0].label) == ("spamassassin", "folder")


def trec_like(root: Path) -> Path:
    """TREC 2007's layout: data/inmail.N, labels in full/index ("spam ../data/inmail.1"), and
    other index files beside it."""
    (root / "data").mkdir(parents=True)
    (root / "full").mkdir()
    (root / "partial").mkdir()
    for i, m in enumerate([LATIN1, HTML_ONLY, MULTIPART, LATIN1], 1):
        (root / "data" / f"inmail.{i}").write_bytes(m)
    (root / "data" / "stray.eml").write_bytes(HTML_ONLY)  # on disk, not in the index
    (root / "full" / "index").write_text("ham ../data/inmail.1\nspam ../data/inmail.2\nspam ../data/inmail.3\n"
                                         "ham ../data/inmail.4\nspam ../data/inmail.5\n")  # inmail.5 is missing
    (root / "partial" / "index").write_text("spam ../data/inmail.2\n")
    return root


def test_a_trec_label_index_labels_the_files_it_lists(tmp_path):
    import tarfile

    d = trec_like(tmp_path / "trec07p")
    rows, rep = load(d, label_index="full/index")
    assert [(r.meta["file"], r.label) for r in rows] == [
        ("data/inmail.1", 0), ("data/inmail.2", 1), ("data/inmail.3", 1), ("data/inmail.4", 0)]
    assert dict(rep.rejected_by_reason) == {"not in the label index": 1, "listed in the label index, no such file": 1,
                                            "not an email (no header lines)": 1}
    assert rep.rows_in == 7  # 6 files besides full/index, and the one listed but missing
    with tarfile.open(tmp_path / "trec07p.tgz", "w:gz") as tar:
        tar.add(d, arcname="trec07p")
    got, rep2 = load(tmp_path / "trec07p.tgz", label_index="trec07p/full/index")
    assert [(r.id, r.label, r.text) for r in got] == [(r.id, r.label, r.text) for r in rows]
    assert rep2.rejected_by_reason == rep.rejected_by_reason


def test_label_index_errors_are_one_line(tmp_path):
    d = trec_like(tmp_path / "t")
    assert error_of(d, label_index="full/nope") == f"{d}: label_index 'full/nope': no such file in it"
    (d / "full" / "index").write_text("spam ../data/inmail.1\nham\n")
    assert error_of(d, label_index="full/index") == \
        f"{d}: label_index 'full/index' line 2: expected \"<label> <path>\", got 'ham'"
    (d / "full" / "index").write_text("spam ../data/inmail.1\nham ../data/inmail.1\n")
    assert "'../data/inmail.1' is listed twice with different labels ('spam', 'ham')" in error_of(d, label_index="full/index")
    assert error_of(d / "data" / "inmail.1", format="eml", label_index="x") == \
        f"{d / 'data' / 'inmail.1'}: label_index needs a folder or a tar archive of mail files"


def test_every_row_says_where_it_is_in_its_input(tmp_path):
    """Row.location: what a finding about a row cites so that a person can open the input there."""
    import tarfile

    import pandas as pd

    (tmp_path / "a.jsonl").write_text('{"text": "hello there", "label": 1}\n\n{"text": "second one", "label": 0}\n')
    (tmp_path / "b.csv").write_text('text,label\n"two\nlines",1\nthird,0\n')
    pd.DataFrame({"text": ["x1", "x2"], "label": [1, 0]}).to_parquet(tmp_path / "c.parquet")
    write_mbox(tmp_path / "d.mbox", [LATIN1, HTML_ONLY])
    sa = spamassassin_like(tmp_path / "sa")
    with tarfile.open(tmp_path / "sa.tar.gz", "w:gz") as tar:
        tar.add(sa / "spam", arcname="spam")
    naz = tmp_path / "naz"
    naz.mkdir()
    write_mbox(naz / "phishing-2015", [LATIN1, HTML_ONLY])
    md = mailbox.Maildir(str(tmp_path / "inbox"), create=True)
    key = md.add(LATIN1)

    def where(p, **kw):
        return [r.location for r in load(p, **kw)[0]]

    assert where(tmp_path / "a.jsonl") == ["a.jsonl:1", "a.jsonl:3"]
    assert where(tmp_path / "b.csv") == ["b.csv:2", "b.csv:4"]
    assert where(tmp_path / "c.parquet") == ["c.parquet row 1 (index 0)", "c.parquet row 2 (index 1)"]
    assert where(tmp_path / "d.mbox", label_value=1) == ["d.mbox message 1", "d.mbox message 2"]
    assert where(sa / "spam", label_value=1) == [f"spam/0000{i}.7c53336b37003a9286aba55d2945844{i}" for i in (0, 1)]
    assert where(tmp_path / "sa.tar.gz", label="folder")[0] == "sa.tar.gz:spam/00000.7c53336b37003a9286aba55d29458440"
    assert where(naz, label_value=1) == ["naz/phishing-2015 message 1", "naz/phishing-2015 message 2"]
    assert where(tmp_path / "inbox", label_value=0) == [f"inbox/new/{key}"]  # the path it is opened by


# ---------------------------------------------------------------- bad inputs


def test_file_not_found(tmp_path):
    p = tmp_path / "missing.jsonl"
    assert error_of(p) == f"{p}: file not found"


def test_empty_file(tmp_path):
    for name in ("e.jsonl", "e.csv"):
        p = tmp_path / name
        p.write_bytes(b"")
        assert error_of(p) == f"{p}: empty file"


def test_csv_header_only(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("text,label\n")
    assert error_of(p) == f"{p}: no rows (only a header)"


def test_binary_file(tmp_path):
    p = tmp_path / "bin.jsonl"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert error_of(p) == f"{p}: binary file, not JSONL/CSV"


def test_wrong_encoding(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("text,label\ncaf\u00e9,ham\n".encode("latin-1"))
    assert error_of(p) == (f"{p}:2: not valid UTF-8 (byte 0xe9 at offset 14); if it was saved in another encoding, "
                           'set encoding = "latin-1" (or "cp1252") in its [[datasets]] table '
                           "(gapscope data audit reads a spec .toml too)")


def test_missing_label_column(tmp_path):
    p = write_jsonl(tmp_path / "nolabel.jsonl", [{"text": "a", "class": 1}])
    assert error_of(p) == (f"{p}: no label column 'label' (columns: text, class); name it in the study spec's "
                           f"[[datasets]] entry: label = \"class\"")


def test_missing_text_column(tmp_path):
    p = write_jsonl(tmp_path / "notext.jsonl", [{"content": "a", "label": 1}])
    assert error_of(p) == (f"{p}: no text column 'text' and no 'subject'/'body' columns (columns: content, label); "
                           f"name it in the study spec's [[datasets]] entry: text = \"content\"")


def test_unknown_label_in_one_row_is_rejected_and_counted(tmp_path):
    p = write_jsonl(tmp_path / "u.jsonl", [{"text": "a", "label": "spam"}, {"text": "b", "label": "foo"},
                                          {"text": "c", "label": None}])
    rows, rep = load(p)
    assert (rep.rows_in, rep.rows_kept, rep.rows_rejected) == (3, 1, 2)
    assert rep.rejected_by_reason == {"unknown label value 'foo'": 1, "missing label": 1}


def test_every_label_unknown_is_a_file_error(tmp_path):
    p = write_jsonl(tmp_path / "u.jsonl", [{"text": "a", "label": "foo"}, {"text": "b", "label": "bar"}])
    assert error_of(p) == f"{p}: every label value is unknown ('foo', 'bar'); give a label_map"
    rows, _ = load(p, label_map={"foo": 1, "bar": 0})
    assert [r.label for r in rows] == [1, 0]


def test_invalid_json_line_is_rejected_and_counted(tmp_path):
    p = tmp_path / "j.jsonl"
    p.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": \n\n[1, 2]\n{"text": "c", "label": 0}\n')
    rows, rep = load(p)
    assert (rep.rows_in, rep.rows_kept, rep.rows_rejected) == (4, 2, 2)
    assert rep.rejected_by_reason == {"invalid JSON": 1, "not a JSON object": 1}
    assert [r.meta["row"] for r in rows] == [1, 5]


def test_a_hostile_json_line_is_one_rejected_row(tmp_path):
    p = tmp_path / "j.jsonl"
    p.write_text('{"text": "a", "label": 1}\n' + "[" * 100_000 + "\n"
                 + '{"text": "b", "label": ' + "9" * 5000 + "}\n" + '{"text": "c", "label": 0}\n')
    rows, rep = load(p)
    assert (rep.rows_in, rep.rows_kept) == (4, 2)
    assert rep.rejected_by_reason == {"invalid JSON": 2}
    array = tmp_path / "a.json"
    array.write_text("[" * 100_000)
    assert error_of(array) == f"{array}: invalid JSON (nested too deeply)"


def test_lone_surrogates_in_ids_and_rationales_are_repaired_not_fatal(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"id": "\\udfff", "text": "a \\ud800", "label": 1, "rationale": "bad \\ud800 why"}\n'
                 '{"id": "b", "text": "b", "label": 0}\n')
    rows, _ = load(p)
    for value in (rows[0].id, rows[0].text, rows[0].rationale):
        value.encode("utf-8")  # writable to Parquet
    assert "\ufffd" in rows[0].id and rows[0].rationale.startswith("bad ")
    rows_to_frame(rows).to_parquet(tmp_path / "rows.parquet")


def test_every_json_line_invalid_is_a_file_error(tmp_path):
    p = tmp_path / "j.jsonl"
    p.write_text("text,label\nhello,1\n")
    assert error_of(p) == f"{p}:1: invalid JSON (Expecting value); no line of the file is a JSON object"


def test_row_level_reasons_and_duplicate_id(tmp_path):
    p = write_jsonl(tmp_path / "r.jsonl", [
        {"id": "a", "text": "one", "label": 1},
        {"id": "a", "text": "two", "label": 0},
        {"id": "b", "text": 42, "label": 0},
        {"id": "c", "text": "   ", "label": 0},
    ])
    rows, rep = load(p)
    assert [r.id for r in rows] == ["a"]
    assert rep.rejected_by_reason == {"duplicate id": 1, "text is not a string": 1, "empty text": 1}


def test_a_jsonl_row_without_the_text_key_is_missing_text_not_empty_text(tmp_path):
    p = write_jsonl(tmp_path / "s.jsonl", [
        {"id": "a", "text": "one", "label": 1},
        {"id": "b", "label": 0},                 # no text key: the reviewer's support.jsonl:275
        {"id": "c", "text": "", "label": 0},
        {"id": "d", "text": None, "label": 0},
    ])
    rows, rep = load(p)
    assert rep.rejected_at == {"missing text": ["s.jsonl:2"], "empty text": ["s.jsonl:3", "s.jsonl:4"]}
    p = write_jsonl(tmp_path / "sb.jsonl", [{"subject": "hi", "label": 1}, {"label": 0}, {"body": " ", "label": 0}])
    rows, rep = load(p)
    assert rep.rejected_at == {"missing text": ["sb.jsonl:2"], "empty text": ["sb.jsonl:3"]}


def test_csv_wrong_number_of_fields(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text("text,label\nok,1\ntoo,many,fields\n")
    rows, rep = load(p)
    assert rep.rejected_by_reason == {"wrong number of fields": 1} and len(rows) == 1


def test_a_csv_quote_never_closed_is_a_counted_rejection_not_swallowed_rows(tmp_path):
    # The quote opened on line 3 runs to the quote on line 5: the csv module reads lines 3-5 as
    # one row whose text holds two rows of the file. Kept, that row would carry their text under
    # the wrong label and the two rows would vanish uncounted.
    p = tmp_path / "q.csv"
    p.write_text('text,label\nhello there,ham\n"unclosed start,spam\nsecond row,ham\n'
                 'third, "quoted" row,spam\nfourth,ham\n')
    rows, rep = load(p)
    assert [r.text for r in rows] == ["hello there", "fourth"]
    # each of the three rows inside is counted, at its own line
    assert rep.rejected_by_reason == {"quoted field holds whole rows (unclosed quote?)": 3}
    assert rep.rejected_at["quoted field holds whole rows (unclosed quote?)"] == ["q.csv:3", "q.csv:4", "q.csv:5"]
    # no quote after it: the field runs to the end of the file, a row of too few fields, which was
    # rejected as "wrong number of fields" with the rows inside it unmentioned
    p.write_text('text,label\n"hello there friend",spam\n"unclosed quote,ham\nnext row,spam\nplain row,ham\n')
    rows, rep = load(p)
    assert [r.text for r in rows] == ["hello there friend"]
    assert rep.rejected_by_reason == {"quoted field holds whole rows (unclosed quote?)": 3}


def _numbered_csv(lines: list[str]) -> str:
    return "text,label\n" + "".join(line + "\n" for line in lines)


@pytest.mark.parametrize("broken, quoted", [
    # the reviewer's unclosed2.csv: the text holds the delimiter (the reason it was quoted), so the
    # field's first line split at commas is never a whole row of two fields
    ('"broken quote starts here, msg {i} hello there,{lab}', False),
    # unclosed4.csv: every field quoted, one closing quote missing; the runaway field ends at the
    # next row's opening quote, swallowing that one row
    ('"Hello {i}, please review the invoice,{lab}', True),
])
def test_an_unclosed_quote_rejects_every_row_it_swallows_at_its_own_line(tmp_path, broken, quoted):
    rows_in = []
    for i in range(20):
        lab = i % 2
        if i == 5:
            rows_in.append(broken.format(i=i, lab=lab))
        elif quoted:
            rows_in.append(f'"Hello {i}, please review the invoice",{lab}')
        elif i == 9:  # the quote that ends the runaway field, inside this row's text
            rows_in.append(f'msg {i} hello there ends" here,{lab}')
        else:
            rows_in.append(f"msg {i} hello there,{lab}")
    p = tmp_path / "u.csv"
    p.write_text(_numbered_csv(rows_in))
    rows, rep = load(p)
    lines = [7, 8] if quoted else [7, 8, 9, 10, 11]  # data row i sits on line i + 2
    assert rep.rows_in == 20
    assert rep.rejected_by_reason == {"quoted field holds whole rows (unclosed quote?)": len(lines)}
    assert rep.rejected_at["quoted field holds whole rows (unclosed quote?)"] == [f"u.csv:{n}" for n in lines]
    assert all("\n" not in r.text for r in rows)


def test_a_body_with_unescaped_inner_quotes_is_one_row(tmp_path):
    # the lenient reader reads it as one row; its last line holds the rest of the row, which read as
    # "a whole row inside": 4 rows in, 2 rejected
    p = tmp_path / "x.csv"
    p.write_text('text,label\n"Dear customer,\nClick "here" to verify your account",1\nhello there friend,0\n'
                 'another normal one,0\n')
    rows, rep = load(p)
    assert rep.rows_in == 3 and rep.rows_rejected == 0 and len(rows) == 3


def test_every_row_swallowed_names_the_reason_not_the_field_count(tmp_path):
    p = tmp_path / "all.csv"
    p.write_text('text,label\n"hello there,1\nsecond row,0\nthird row,1\n')
    assert error_of(p) == f"{p}:2: no row could be read: quoted field holds whole rows (unclosed quote?)"


def test_a_multiline_field_closed_properly_is_kept_though_its_lines_look_like_rows(tmp_path):
    # text,label: the body's last line plus the label ('thanks",spam') parses as two fields, but
    # the quote is closed properly, so nothing was swallowed
    p = tmp_path / "k.csv"
    p.write_text('text,label\n"Totals,1\nnext,0\nthanks",spam\nshort,ham\n')
    rows, rep = load(p)
    assert rep.rows_rejected == 0 and rows[0].text == "Totals,1\nnext,0\nthanks"


def test_an_unclosed_quote_with_the_label_first_is_found_by_the_rows_inside(tmp_path):
    p = tmp_path / "lf.csv"
    p.write_text('label,text\nspam,"one"\nham,"two, unclosed\nspam,"three"\nham,"four"\n')
    rows, rep = load(p)
    assert [r.text for r in rows] == ["one", "four"]
    assert rep.rejected_at == {"quoted field holds whole rows (unclosed quote?)": ["lf.csv:3", "lf.csv:4"]}


@pytest.mark.parametrize("body", [
    "Hi Ann,\nyour invoice, ham\nregards",          # a later line looks like a row, the first does not
    "Totals,1\nthanks",                              # the first line completes a row, no later line does
    "Please confirm\nby Friday, spam",               # a known label, but only as the body's last words
])
def test_a_real_multiline_csv_field_is_kept(tmp_path, body):
    p = tmp_path / "m.csv"
    p.write_text('id,text,label\n1,"' + body + '",spam\n2,short,ham\n')
    rows, rep = load(p)
    assert rep.rows_rejected == 0 and rows[0].text == body


def test_a_multiline_body_after_the_label_column_is_kept(tmp_path):
    # label first: the row is complete whatever the body's first line says, so a later line that
    # reads as a row ("1,500 USD ...") proves nothing
    p = tmp_path / "l.csv"
    p.write_text('label,text\nspam,"Dear Customer,\n1,500 USD has been credited to your account.\nClick below"\n'
                 'ham,"Can we meet Friday?\nTrue, I said Monday before.\nThanks"\n')
    rows, rep = load(p)
    assert rep.rows_rejected == 0 and len(rows) == 2 and rows[0].text.startswith("Dear Customer,\n1,500 USD")


def test_a_stray_nul_byte_rejects_its_row_not_the_file(tmp_path):
    j = tmp_path / "n.jsonl"
    j.write_bytes(b'{"text": "a", "label": 1}\n{"text": "b\x00c", "label": 0}\n{"text": "d", "label": 0}\n')
    c = tmp_path / "n.csv"
    c.write_bytes(b"text,label\nab,1\nc\x00d,0\ne,0\n")
    for p in (j, c):
        rows, rep = load(p)
        assert [r.text for r in rows] == (["a", "d"] if p is j else ["ab", "e"])
        assert rep.rejected_by_reason == {"NUL byte in row": 1}


def test_nul_bytes_on_every_line_are_a_binary_file(tmp_path):
    p = tmp_path / "utf16.jsonl"  # UTF-16 without a BOM: valid UTF-8, a NUL after every ASCII byte
    p.write_bytes('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n'.encode("utf-16-le"))
    assert error_of(p) == f"{p}: binary file, not JSONL/CSV"


def test_a_csv_column_named_twice_is_refused(tmp_path):
    p = tmp_path / "twice.csv"
    p.write_text("id,text,label,text\n1,first text,spam,second text\n")
    assert error_of(p) == f"{p}:1: column(s) 'text' appear twice in the header"


def test_no_usable_rows_is_a_file_error(tmp_path):
    p = write_jsonl(tmp_path / "n.jsonl", [{"text": "", "label": 1}, {"text": "", "label": 0}])
    assert error_of(p) == f"{p}: no usable rows (empty text: 2 of 2 rows)"


def test_single_class_domain_is_valid(tmp_path):
    p = write_jsonl(tmp_path / "s.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 1}])
    assert load(p)[1].label_counts == {"phishing": 2, "legitimate": 0}


def test_load_sources_shares_ids_within_a_domain(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "text": "x", "label": 1}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": 1, "text": "y", "label": 0}, {"id": 2, "text": "z", "label": 0}])
    rows, reps = load_sources([spec(a, domain="same"), spec(b, domain="same")])
    assert [r.id for r in rows] == ["1", "2"] and reps[1].rejected_by_reason == {"duplicate id": 1}
    rows, reps = load_sources([spec(a, domain="a"), spec(b, domain="b")])
    assert len(rows) == 3


# ---------------------------------------------------------------- CLI paths and detection


def test_parse_cli_source(tmp_path):
    s = parse_cli_source(str(tmp_path / "nazario.mbox") + "@phishing")
    assert (s.path, s.domain, s.label_value) == (tmp_path / "nazario.mbox", "nazario", "phishing")
    s = parse_cli_source(str(tmp_path / "enron.jsonl.gz"))
    assert (s.domain, s.label_value) == ("enron", None)
    (tmp_path / "maildir").mkdir()
    assert parse_cli_source(str(tmp_path / "maildir") + "@0").domain == "maildir"
    with pytest.raises(InputError) as e:
        parse_cli_source(str(tmp_path / "maildir") + "@bogus")
    assert str(e.value) == f"{tmp_path / 'maildir'}: unknown label value 'bogus' after '@' (use phishing or legitimate)"


def test_detect_format(tmp_path):
    for name, fmt in (("a.jsonl", "jsonl"), ("a.csv", "csv"), ("a.tsv", "csv"), ("a.parquet", "parquet"),
                      ("a.mbox", "mbox"), ("a.json", "jsonl")):
        (tmp_path / name).write_text("x")
        assert detect_format(tmp_path / name) == fmt
    (tmp_path / "noext").write_bytes(b"From a@b Mon Jan 1 2024\n")
    assert detect_format(tmp_path / "noext") == "mbox"
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="cannot tell the format of this directory"):
        detect_format(tmp_path / "empty_dir")


def test_a_fixed_label_may_not_contradict_the_files_own_labels(tmp_path):
    p = tmp_path / "mixed.jsonl"
    p.write_text('{"text": "a", "label": "spam"}\n{"text": "b", "label": "ham"}\n')
    assert error_of(p, label_value="phishing") == (
        f"{p}:2: its 'label' column says 'ham', but the source is given the fixed label 'phishing' "
        "(label_value or PATH@label); give one or the other")
    q = tmp_path / "agree.jsonl"
    q.write_text('{"text": "a", "label": "spam"}\n{"text": "b", "label": 1}\n{"text": "c"}\n{"text": "e", "label": "bad"}\n')
    q.write_text(q.read_text() + '{"text": "d", "label": NaN}\n')  # a missing label agrees with anything
    rows, _ = load(q, label_value="phishing")
    assert [r.label for r in rows] == [1, 1, 1, 1, 1]


def test_a_label_map_key_no_row_matches_is_said(tmp_path):
    # label_map = { spam = 1, hamm = 0 } was accepted without a word (ham rows then fell back to the
    # built-in map here; a value no map knows is rejected and counted, but the typo was never named)
    p = write_jsonl(tmp_path / "a.jsonl", [{"text": f"mail {i}", "label": "spam" if i % 2 else "ham"}
                                           for i in range(6)])
    rows, rep = load(p, label_map={"spam": 1, "hamm": 0})
    assert len(rows) == 6 and rep.notes == ["label_map key 'hamm' matched no row"]
    assert rep.summary().endswith("; note: label_map key 'hamm' matched no row")
    assert rep.to_dict()["notes"] == rep.notes and type(rep).from_dict(rep.to_dict()).notes == rep.notes
    _, rep = load(p, label_map={"spam": 1, "ham": 0})
    assert rep.notes == [] and "note" not in rep.summary()
