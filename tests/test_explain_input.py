"""`gapscope explain`: picking the cell, reading --file as the readers read mail, the terminal view of the text."""

from types import SimpleNamespace

import pytest

from gapscope.errors import GapscopeError
from gapscope.explain import resolve_cell


def _study(*paradigms):
    cells = [SimpleNamespace(model="tfidf", paradigm=p, name="tfidf__" + p.replace(":", "-")) for p in paradigms]
    return SimpleNamespace(cells=cells, run_dir="runs/x")


def test_a_cell_name_matching_several_cells_lists_those_it_matches():
    study = _study("specialist:bank", "specialist:support", "generalist", "lodo:bank", "lodo:support")
    with pytest.raises(GapscopeError) as e:
        resolve_cell(study, "tfidf", "bank")
    assert str(e.value) == "--cell 'bank' matches 2 cells of 'tfidf': specialist:bank, lodo:bank; give one of them"
    with pytest.raises(GapscopeError) as e:
        resolve_cell(study, "tfidf", "inbox")
    assert str(e.value) == ("--cell 'inbox' matches no cell of 'tfidf'; choose one of: specialist:bank, "
                            "specialist:support, generalist, lodo:bank, lodo:support")
    assert resolve_cell(study, "tfidf", "lodo-bank").paradigm == "lodo:bank"


def test_a_lone_carriage_return_is_shown_by_code_point_in_the_terminal_view():
    from rich.console import Console

    from gapscope.attribution import attribute
    from gapscope.explain import render
    from tests.attribution_helpers import BagModel

    # rich drops a lone CR: "now\rSAFE" showed as "nowSAFE"; a CRLF line end is an ordinary newline
    for text, want in (("verify now\rSAFE mail", "verify now⟨U+000D⟩SAFE mail"),
                       ("verify now \r\rSAFE\r\nmail\r", "verify now ⟨U+000D⟩⟨U+000D⟩SAFE\nmail⟨U+000D⟩")):
        att = attribute(BagModel({"verify": 2.0, "safe": -1.0}), text)
        console = Console(record=True, force_terminal=True, color_system="truecolor", width=100)
        render(att, console=console)
        shown = console.export_text()
        lines = [line.strip("│ ") for line in shown.splitlines()]
        assert all(part in lines for part in want.split("\n")), shown


MIME = (b'From: Admin <no-reply@it-helpdesk.example>\nSubject: IT: mandatory update\nMIME-Version: 1.0\n'
        b'Content-Type: multipart/alternative; boundary="B"\n\n--B\nContent-Type: text/plain; charset=utf-8\n'
        b'Content-Transfer-Encoding: quoted-printable\n\nYour mailbox is almost full. Please validate your acc=\n'
        b'ount today.\n--B\nContent-Type: text/html; charset=utf-8\n\n<p>Your mailbox is almost full.</p>\n--B--\n')


@pytest.mark.parametrize("name, raw", [
    ("update.eml", MIME),
    ("00001.7c53336b", b"From admin@it-helpdesk.example Mon Jan  1 00:00:00 2024\n" + MIME),  # SpamAssassin's
])
def test_a_mail_file_is_explained_as_training_read_mail_not_as_raw_mime(tmp_path, name, raw):
    from gapscope.explain import read_email_file

    p = tmp_path / name
    p.write_bytes(raw)
    text, what = read_email_file(p)
    # what the readers make of the file: no headers, boundaries or quoted-printable soft breaks
    assert text == "Subject: IT: mandatory update\n\nYour mailbox is almost full. Please validate your account today."
    assert what == f"{name} read as email (subject + text body, as the readers parse mail)"


def test_a_file_that_is_not_mail_is_explained_as_written_and_bad_mail_in_one_line(tmp_path):
    from gapscope.explain import read_email_file

    p = tmp_path / "note.txt"
    p.write_text("Source: the bank\nverify your account now\n")  # a header-like line, not a mail header
    assert read_email_file(p) == ("Source: the bank\nverify your account now\n", None)
    p = tmp_path / "two.mbox.txt"
    msg = b"From a@b.example Mon Jan  1 00:00:00 2024\nSubject: hi\n\nbody\n"
    p.write_bytes(msg + msg)
    with pytest.raises(GapscopeError, match="two.mbox.txt: an mbox of several messages; explain takes one email"):
        read_email_file(p)
    p = tmp_path / "empty.eml"
    p.write_bytes(b"\n")
    with pytest.raises(GapscopeError, match=r"empty.eml: broken MIME: empty message"):
        read_email_file(p)
    with pytest.raises(GapscopeError, match="missing.eml: cannot read it"):
        read_email_file(tmp_path / "missing.eml")


def test_words_past_the_model_window_are_said_and_struck_through():
    # the panel showed every word, those the model never read looking like neutral ones
    import numpy as np
    from rich.console import Console

    from gapscope.attribution.base import Attribution
    from gapscope.explain import highlighted, render

    tokens = ["urgent ", "verify ", "your ", "password ", "family ", "notes"]
    att = Attribution(tokens=tokens, weights=np.array([2.0, 1.0, -0.5, 0.5, 0.0, 0.0]), margin=1.0,
                      method="relevance", in_view=4)
    console = Console(record=True, force_terminal=True, color_system="truecolor", width=120)
    render(att, console=console)
    assert "the model reads the first 4 of 6 words" in " ".join(console.export_text().split())
    styles = {str(span.style) for span in highlighted(att).spans if "strike" in str(span.style)}
    assert styles == {"dim strike"} and sum("strike" in str(s.style) for s in highlighted(att).spans) == 2
    whole = Attribution(tokens=tokens, weights=np.zeros(6), margin=0.0, method="occlusion")
    console = Console(record=True, width=120)
    render(whole, console=console)
    assert "never sees" not in console.export_text()


def test_a_weight_of_float_noise_has_no_direction():
    import numpy as np

    from gapscope.attribution.base import Attribution

    att = Attribution(tokens=["verify ", "now ", ","], weights=np.array([1.2, -0.3, -1.39e-17]), margin=1.0,
                      method="occlusion")
    assert [t for _, t, _ in att.top(10, -1)] == ["now"]


def test_a_nan_weight_has_no_direction():
    import numpy as np

    from gapscope.attribution.base import Attribution

    att = Attribution(tokens=["click ", "here ", "thanks ", "bob"], weights=np.array([0.8, np.nan, -0.5, -0.2]),
                      margin=1.0, method="occlusion")
    assert [t for _, t, _ in att.top(5, 1)] == ["click"] and [t for _, t, _ in att.top(5, -1)] == ["thanks", "bob"]
