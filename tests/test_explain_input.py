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
        console = Console(record=True, force_terminal=True, width=100)
        render(att, console=console)
        shown = console.export_text()
        lines = [line.strip("│ ") for line in shown.splitlines()]
        assert all(part in lines for part in want.split("\n")), shown
