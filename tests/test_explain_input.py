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
