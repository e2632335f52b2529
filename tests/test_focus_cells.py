"""`[detectors] cells_per_model`: which cells the per-cell neural analyses run on."""

from __future__ import annotations

from pathlib import Path

import pytest

from gapscope.errors import SpecError
from gapscope.study.context import CellInfo, Study
from gapscope.study.spec import load_spec


def _study(cells_per_model):
    s = Study.__new__(Study)
    s.run_dir = Path("/nonexistent")
    cells, summary = [], []
    for model, kind in (("lm", "causal-lm"), ("tfidf", "tfidf-lr")):
        for par, gap in (("specialist:a", 0.1), ("specialist:b", 0.4), ("generalist", 0.2), ("specialist:c", None)):
            name = f"{model}__{par.replace(':', '-')}"
            cells.append(CellInfo(name, model, kind, None, par, [par.split(":")[-1]], 0.0, {}))
            summary.append({"model": model, "paradigm": par, "gap": gap})
    s.__dict__.update(cells=cells, summary=summary, options={"cells_per_model": cells_per_model})
    return s


def test_zero_keeps_every_cell():
    s = _study(0)
    assert [c.name for c in s.focus_cells()] == [c.name for c in s.cells]


def test_neural_models_keep_their_largest_gaps_tfidf_keeps_all():
    s = _study(2)
    names = [c.name for c in s.focus_cells()]
    assert [n for n in names if n.startswith("lm__")] == ["lm__specialist-b", "lm__generalist"]
    assert len([n for n in names if n.startswith("tfidf__")]) == 4


@pytest.mark.parametrize("bad", ["2", -1, 1.5, True])
def test_spec_rejects_a_bad_cells_per_model(tmp_path, bad):
    (tmp_path / "a.jsonl").write_text('{"text": "hi", "label": 0}\n')
    v = f'"{bad}"' if isinstance(bad, str) else ("true" if bad is True else bad)
    (tmp_path / "s.toml").write_text(f'[[datasets]]\npath = "a.jsonl"\n\n[detectors]\ncells_per_model = {v}\n')
    with pytest.raises(SpecError, match="cells_per_model"):
        load_spec(tmp_path / "s.toml")


def test_diagnose_only_keeps_the_other_detectors_findings_and_overrides_cells_per_model(tmp_path, monkeypatch,
                                                                                        capsys):
    """`gapscope diagnose RUN --only X` used to rewrite findings.json with X's findings alone;
    `--cells-per-model` widens the per-cell analyses of the detectors run now."""
    from gapscope import findings as F
    from gapscope.data.synth import SynthConfig
    from gapscope.study import diagnose as D
    from tests.study_helpers import mini_study

    study = mini_study(tmp_path, SynthConfig(seed=0, n_per_domain=40, domains=["corporate", "personal"]),
                       detectors={"cells_per_model": 1})
    seen = {}

    def fake(name):
        def run(st):
            seen[name] = int(st.options.get("cells_per_model", 0))
            return [F.Finding(kind="demo", severity="low", title=f"{name} says hi", summary="", evidence={})]
        return run

    monkeypatch.setattr(D, "detectors", lambda: {"alpha": fake("alpha"), "beta": fake("beta")})
    assert len(D.diagnose(study.run_dir)) == 2 and seen == {"alpha": 1, "beta": 1}
    seen.clear()
    got = D.diagnose(study.run_dir, only=["beta"], cells_per_model=0)
    assert seen == {"beta": 0}  # only beta ran, with the override
    assert sorted(f.title for f in got) == ["alpha says hi", "beta says hi"]  # alpha's findings kept
    import json

    saved = json.loads((study.run_dir / "findings.json").read_text())
    assert len(saved) == 2
    seen.clear()
    capsys.readouterr()
    D.diagnose(study.run_dir, only=["beta"], cells_per_model=0)
    assert seen == {}  # cached under the same override
    # and says so: it printed the count of findings alone, ran or not
    assert "beta: cached, 1 finding (same inputs; --force reruns it)" in " ".join(capsys.readouterr().err.split())
    monkeypatch.setattr(D, "__version__", "99.0")
    D.diagnose(study.run_dir, only=["beta"], cells_per_model=0)
    assert seen == {"beta": 0}  # found by another gapscope version: redone
    with pytest.raises(Exception, match="unknown detector"):
        D.diagnose(study.run_dir, only=["gamma"])
    with pytest.raises(Exception, match="cells_per_model must be 0"):
        D.diagnose(study.run_dir, only=["beta"], cells_per_model=-1)


def test_a_detector_can_set_its_own_cells_per_model_and_the_command_line_wins(tmp_path, monkeypatch):
    """The demo runs internals on every cell (its own `cells_per_model = 0`) while the other
    per-cell analyses keep the worst cell; `diagnose --cells-per-model` overrides both."""
    from gapscope.detectors import internals as I
    from gapscope.data.synth import SynthConfig
    from gapscope.internals.analyse import InternalsOptions
    from gapscope.study import diagnose as D
    from tests.study_helpers import mini_study

    s = _study(1)
    assert [c.name for c in s.focus_cells() if c.kind != "tfidf-lr"] == ["lm__specialist-b"]
    assert [c.name for c in s.focus_cells(per_model=0)] == [c.name for c in s.cells]
    s.__dict__["options"] = {"cells_per_model": 1, "internals": {"cells_per_model": 0, "cells": "all"}}
    assert len(I._cells(s, InternalsOptions.from_dict(s.options["internals"]))) == 4
    with pytest.raises(Exception, match="cells_per_model must be 0"):
        I.run(_with(s, {"internals": {"cells_per_model": -2}}))

    study = mini_study(tmp_path, SynthConfig(seed=0, n_per_domain=40, domains=["corporate", "personal"]),
                       detectors={"cells_per_model": 1, "internals": {"cells_per_model": 0}})
    seen = {}

    def spy(st):
        seen["internals"] = st.options.get("internals", {}).get("cells_per_model")
        return []

    monkeypatch.setattr(D, "detectors", lambda: {"internals": spy})
    D.diagnose(study.run_dir)
    assert seen == {"internals": 0}
    D.diagnose(study.run_dir, force=True, cells_per_model=1)
    assert seen == {"internals": None}  # the command line's 1 applies to internals too


def _with(s, options):
    s.__dict__["options"] = options
    return s


@pytest.mark.parametrize("name", ["attributions", "minimal_pairs", "shortcuts", "backdoor", "drift"])
def test_every_per_cell_detector_reads_its_own_cells_per_model(name, monkeypatch):
    import importlib
    import inspect

    from gapscope.study.detector_options import PER_CELL

    # the detector picks its cells through detector_cells(its name), not the study-wide focus_cells()
    src = inspect.getsource(importlib.import_module(f"gapscope.detectors.{name}").run)
    assert f'detector_cells("{name}")' in src and "focus_cells(" not in src and name in PER_CELL
    s = _with(_study(1), {"cells_per_model": 1, name: {"cells_per_model": 0}})
    assert [c.name for c in s.detector_cells(name)] == [c.name for c in s.cells]  # its own 0: every cell
    assert [c.name for c in s.detector_cells("internals") if c.kind != "tfidf-lr"] == ["lm__specialist-b"]


def test_a_misspelt_detector_option_fails_in_one_line():
    from gapscope.attribution.corpus import DEFAULTS

    s = _with(_study(0), {"attributions": {"top_kk": 5, "cells_per_model": 2}})
    with pytest.raises(Exception, match=r"\[detectors.attributions\]: unknown option\(s\) top_kk"):
        s.detector_options("attributions", DEFAULTS)
    s = _with(_study(0), {"attributions": {"top_k": 5, "cells_per_model": 2}})
    assert s.detector_options("attributions", DEFAULTS)["top_k"] == 5


def test_spec_checks_a_detectors_own_cells_per_model(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "hi", "label": 0}\n')
    (tmp_path / "s.toml").write_text('[[datasets]]\npath = "a.jsonl"\n\n[detectors.shortcuts]\ncells_per_model = -1\n')
    with pytest.raises(SpecError, match=r"\[detectors.shortcuts\] cells_per_model must be a whole number"):
        load_spec(tmp_path / "s.toml")


def test_a_changed_detector_table_reruns_that_detector_and_those_that_read_it(tmp_path, monkeypatch):
    # keyed by the whole [detectors] table, a change to one detector's table reran all of them; and
    # `run --no-detectors` after the change kept the old findings in the report without a word
    from gapscope import findings as F
    from gapscope.data.synth import SynthConfig
    from gapscope.study import diagnose as D
    from gapscope.study.publish import not_run
    from tests.study_helpers import mini_study

    study = mini_study(tmp_path, SynthConfig(seed=0, n_per_domain=40, domains=["corporate", "personal"]),
                       detectors={"cells_per_model": 1})
    seen = []

    def fake(name):
        def run(st):
            seen.append(name)
            return [F.Finding(kind="demo", severity="low", title=f"{name} says hi", summary="", evidence={})]
        return run

    names = ("attributions", "shortcuts", "minimal_pairs", "label_noise")
    monkeypatch.setattr(D, "detectors", lambda: {n: fake(n) for n in names})
    monkeypatch.setattr("gapscope.findings.detectors", lambda: {n: fake(n) for n in names})
    D.diagnose(study.run_dir)
    assert seen == list(names)
    spec = study.run_dir / "study.toml"
    spec.write_text(spec.read_text() + "\n[detectors.shortcuts]\ncandidates_per_domain = 5\n")
    said = " ".join(" ".join(not_run(study.run_dir)).split())
    assert "detector(s) shortcuts, minimal_pairs: their findings were computed with other [detectors] settings" in said
    seen.clear()
    D.diagnose(study.run_dir)
    assert seen == ["shortcuts", "minimal_pairs"]  # minimal pairs reads the shortcut probe's table
    assert not_run(study.run_dir) == []
    # `enabled` picks the detectors, it changes none of their findings
    spec.write_text(spec.read_text().replace("[detectors]\n", "[detectors]\nenabled = [\"attributions\", "
                                             "\"shortcuts\", \"minimal_pairs\"]\n", 1))
    assert "enabled" in spec.read_text()
    seen.clear()
    D.diagnose(study.run_dir)
    assert seen == [] and not_run(study.run_dir) == []


def test_internals_ranks_the_specialists_among_themselves():
    # internals ranked every cell, then kept the specialists: a model whose largest gap was its
    # generalist (or a leave-one-out cell) had no cell analysed at cells_per_model = 1
    from gapscope.detectors.internals import _cells
    from gapscope.internals.analyse import InternalsOptions

    s = _study(1)
    for row in s.summary:
        if row["paradigm"] == "generalist":
            row["gap"] = 0.9
    assert [c.name for c in s.focus_cells() if c.model == "lm"] == ["lm__generalist"]
    assert [c.name for c in _cells(s, InternalsOptions())] == ["lm__specialist-b"]
    assert [c.name for c in _cells(s, InternalsOptions(cells="all"))] == ["lm__generalist"]
    assert [c.name for c in _cells(s, InternalsOptions(cells_per_model=0))] == [
        "lm__specialist-a", "lm__specialist-b", "lm__specialist-c"]
