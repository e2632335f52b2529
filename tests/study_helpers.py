"""Mini studies on the synthetic corpus for the detector tests (tf-idf cells: seconds)."""

from __future__ import annotations

from pathlib import Path

from gapscope.data.synth import SynthConfig, generate
from gapscope.study.context import Study
from gapscope.study.runner import run_study
from gapscope.validate import write_spec

TFIDF = {"name": "tfidf", "kind": "tfidf-lr"}


def mini_study(tmp: Path, cfg: SynthConfig, *, specialist=None, generalist=None, models=None,
               detectors=None, test_fraction=0.3) -> Study:
    corpus = generate(cfg)
    corpus.write(tmp / "corpus")
    domains = corpus.domains
    spec = write_spec(tmp / "corpus" / "spec.toml", name="test", seed=cfg.seed, domains=domains,
                      models=models or [TFIDF], specialist=domains if specialist is None else specialist,
                      generalist=generalist or [], test_fraction=test_fraction, detectors=detectors)
    run_study(spec, tmp / "run", detectors=False)
    return Study(tmp / "run")
