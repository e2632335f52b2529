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
    ("[detectors.atributions]\ntop_k = 3\n", "[detectors.atributions]: no such detector (did you mean attributions?)"),
    ('[detectors.backdoor]\nbogus = 3\ntriggers = ["x"]\n', "[detectors.backdoor]: backdoor options: unknown key(s) bogus"),
    ("[detectors.drift]\nmax_probes = 3\n", "[detectors.drift]: drift options: unknown key(s) max_probes"),
    ("[detectors.internals]\nlayerz = 3\n", "[detectors.internals]: unknown option(s) layerz (did you mean layers?)"),
    ("[detectors.backdoor]\nbogus = 1\n", "[detectors.backdoor]: backdoor options: unknown key(s) bogus (known: "),
    ("[detectors.backdoor]\nRULES = 1\n", "[detectors.backdoor]: backdoor options: unknown key(s) RULES"),
    # drift and diversity named no near key and no list, and let RULES (a class variable) through to a TypeError
    ("[detectors.drift]\nmax_probe = 3\n", "[detectors.drift]: drift options: unknown key(s) max_probe (did you mean "
                                         "max_probes_per_family?) (known: "),
    ("[detectors.drift]\nRULES = 3\n", "[detectors.drift]: drift options: unknown key(s) RULES"),
    ("[detectors.diversity]\nsample_sise = 3\n", "[detectors.diversity]: diversity options: unknown key(s) sample_sise "
                                               "(did you mean sample_size?)"),
    ("[detectors.diversity]\nRULES = 3\n", "[detectors.diversity]: diversity options: unknown key(s) RULES"),
    # a mining table that is not one failed as "'int' object is not iterable"
    ("[detectors.backdoor]\nmining = 5\n", "[detectors.backdoor]: backdoor options: mining must be a table of "),
    ("[detectors.backdoor.mining]\nmin_contradictoin = 0.5\n",
     "[detectors.backdoor]: backdoor options: mining: unknown key(s) min_contradictoin (did you mean min_contradiction?)"),
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


@pytest.mark.parametrize("toml,said", [
    # values that crashed after every cell had trained (sklearn's or numpy's words)
    ("[detectors.shortcuts]\nC = -1.0\n", "[detectors.shortcuts] C must be a number > 0, got -1.0"),
    ("[detectors.shortcuts]\nC = nan\n", "[detectors.shortcuts] C must be a number > 0, got nan"),
    ("[detectors.shortcuts]\nngram_max = 0\n", "[detectors.shortcuts] ngram_max must be a whole number >= 1, got 0"),
    ('[detectors.label_noise]\nfilter_by = "nope"\n',
     "[detectors.label_noise] filter_by must be one of both, confident_learning, prune_by_noise_rate, got 'nope'"),
    ('[detectors.label_noise]\ncross_fit = ["nope"]\n', "[detectors.label_noise] cross_fit names 'nope', not a model"),
    ("[detectors.backdoor]\nn_null = 0\n", "[detectors.backdoor]: n_null must be a whole number >= 2, got 0"),
    ("[detectors.diversity]\nsample_size = -1\n", "[detectors.diversity]: sample_size must be a whole number >= 2"),
    ('[detectors.attributions]\nmethod = "nope"\n', "[detectors.attributions] method must be one of occlusion, relevance, shap"),
    # values that ran and meant nothing
    ("[detectors.label_noise]\nfolds = 1\n", "[detectors.label_noise] folds must be a whole number >= 2, got 1"),
    ('[detectors.label_noise]\ninclude_test = "no"\n', "[detectors.label_noise] include_test must be true or false, got 'no'"),
    ("[detectors.minimal_pairs]\nflip_rate = 7\n", "[detectors.minimal_pairs] flip_rate must be a number > 0 and <= 1, got 7"),
    ("[detectors.backdoor]\nalpha = 5\n", "[detectors.backdoor]: alpha must be a number > 0 and < 1, got 5"),
    ("[detectors.backdoor]\nmin_contradiction = 7\n", "[detectors.backdoor]: min_contradiction must be a number >= 0 and <= 1"),
    ('[detectors.internals]\ncells = "nope"\n', "[detectors.internals] cells must be one of specialist, all, got 'nope'"),
    ("[detectors.drift]\nlevel = 5\n", "[detectors.drift]: level must be a number > 0 and < 1, got 5"),
    ('[detectors.drift]\nfamilies = ["nope"]\n', "[detectors.drift]: unknown probe family nope"),
    ('[detectors]\nenabled = ["nope"]\n', "[detectors] enabled must be a list of names from"),
    ('[detectors]\nenabled = "shortcuts"\n', "[detectors] enabled must be a list of names"),
    ("[detectors]\ncells_per_model = -1\n", "[detectors] cells_per_model must be a whole number >= 0"),
])
def test_a_bad_detector_value_is_a_spec_error_before_any_cell_trains(toml, said):
    with pytest.raises(SpecError) as e:
        check_detector_options(_spec(toml))
    assert str(e.value).startswith("/x/s.toml: " + said), str(e.value)
    assert "\n" not in str(e.value)


def test_zero_where_zero_means_something():
    from gapscope.backdoor.scan import ScanOptions
    from gapscope.internals.analyse import InternalsOptions
    from gapscope.option_rules import OptionError

    assert InternalsOptions.from_dict({"patch_layers": 0, "layers": 0, "base_examples": 0}).patch_layers == 0
    for bad in ({"n_emails": 1}, {"sd_floor": 0.0}):  # one email tests nothing; a zero floor divides by zero
        with pytest.raises(OptionError):
            ScanOptions.from_dict(bad)
