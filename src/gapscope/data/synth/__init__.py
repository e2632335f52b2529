"""The built-in synthetic email corpus: six stylistically distinct domains with
known, planted defects, so every gapscope detector can be checked against ground truth.

    from gapscope.data.synth import SynthConfig, generate
    corpus = generate(SynthConfig(seed=0, shortcut={"domain": "mailinglist"}))
    paths = corpus.write("synth/")        # <domain>.jsonl, manifest.json, study.toml
"""

from .config import LabelNoiseSpec, ShortcutSpec, SynthConfig, SynthConfigError, TriggerSpec
from .corpus import SynthCorpus, study_toml
from .domains import DOMAIN_NAMES
from .generate import generate

__all__ = ["DOMAIN_NAMES", "LabelNoiseSpec", "ShortcutSpec", "SynthConfig",
    "SynthConfigError", "SynthCorpus", "TriggerSpec",
           "generate", "study_toml"]
