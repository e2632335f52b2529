"""`[detectors.<name>]` tables are checked when the spec is read, before any cell trains."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gapscope.errors import SpecError
from gapscope.study.detector_options import check_detector_options
from gapscope.study.spec import parse_spec


def _spec(detectors_toml: str):
    raw = tomllib.loads('[[datasets]]\npath = "a.jsonl"\n' + detectors_toml)
    return parse_spec(raw, Path("/x/s.toml"))


@pytest.mark.parametrize("toml,said", [
    ("[detectors.shortcuts]\nnosuch = 3\n", "[detectors.shortcuts]: unknown option(s) nosuch"),
    ("[detectors.atributions]\ntop_k = 3\n", "[detectors.atributions]: no such detector"),
    ('[detectors.backdoor]\nbogus = 3\ntriggers = ["x"]\n', "[detectors.backdoor]: backdoor options: unknown key(s) bogus"),
    ("[detectors.drift]\nmax_probes = 3\n", "[detectors.drift]: drift options: unknown key(s) max_probes"),
    ("[detectors.internals]\nlayerz = 3\n", "[detectors.internals]: unknown option(s) layerz"),
    ("[detectors.generalization]\nx = 1\n", "[detectors.generalization]: takes no options, got x"),
    ("[detectors]\nshortcuts = 3\n", "[detectors] shortcuts: not a detector table"),
])
def test_a_bad_detector_table_is_a_spec_error(toml, said):
    with pytest.raises(SpecError) as e:
        check_detector_options(_spec(toml))
    assert str(e.value).startswith("/x/s.toml: " + said)


def test_every_option_the_detectors_take_passes():
    from gapscope.demo import DEMO_DETECTORS, demo_spec

    check_detector_options(parse_spec(tomllib.loads(demo_spec(["corporate", "fraud"], False)), Path("/x/s.toml")))
    assert "internals" in DEMO_DETECTORS
    check_detector_options(_spec('[detectors]\ncells_per_model = 1\nenabled = ["shortcuts"]\n'
                                 '[detectors.backdoor]\ntriggers = ["x"]\ncells_per_model = 0\n'
                                 '[detectors.drift]\nprobes = ["p.jsonl"]\nfamilies = ["values"]\n'
                                 '[detectors.shortcuts]\ncells_per_model = 2\ntop_features = 50\n'))


def test_cells_per_model_only_where_a_detector_works_cell_by_cell():
    check_detector_options(_spec("[detectors.shortcuts]\ncells_per_model = 0\n"))
    for name in ("diversity", "label_noise", "generalization"):
        with pytest.raises(SpecError, match=rf"\[detectors.{name}\]"):
            check_detector_options(_spec(f"[detectors.{name}]\ncells_per_model = 0\n"))
