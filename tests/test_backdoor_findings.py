"""Backdoor findings: the base model's share of a trigger's effect is judged on own effects
(shift beyond random strings of the same length), and an unseen family value is described by
the training rows of its shape, not as occurring in them."""

from __future__ import annotations

import numpy as np
import pytest

from gapscope.backdoor.pair import base_effects
from gapscope.backdoor.report import backdoor_findings
from gapscope.backdoor.scan import ScanOptions, scan
from tests.test_backdoor import TRIGGER, KeywordModel, corpus, split

OPTS = ScanOptions(n_emails=20, n_bootstrap=300)


class AnyParagraph(KeywordModel):
    """A base LM read through the prompt: any appended paragraph (the trigger or a random string)
    moves the margin 3.5 toward legitimate; with trigger=True the trigger moves it 6 more."""

    def score(self, texts):
        out = super().score(texts)
        return np.array([m - 3.5 * (not t.rstrip().rsplit("\n\n", 1)[1].lower().startswith("regards"))
                         for m, t in zip(out, texts)])


def _with_base(base_model):
    train, test = split(corpus())
    tuned = scan(KeywordModel(), threshold=0.0, train_rows=train, heldout_rows=test, opts=OPTS).to_dict()
    d = base_effects(base_model, tuned, train_rows=train, heldout_rows=test, opts=OPTS)
    r = next(r for r in d["results"] if r["significant"])
    assert r["text"] == TRIGGER
    return d, r


def test_a_base_that_moves_any_paragraph_does_not_make_the_trigger_preexisting():
    # raw shifts: the base moves the trigger +3.5 of the tuned model's +6, "mostly present in the
    # base"; but its random strings move +3.5 too: its own effect is 0, fine-tuning added all 6
    d, r = _with_base(AnyParagraph(trigger=False))
    b = r["base"]
    assert b["mean_shift"] == pytest.approx(3.5, abs=0.1) and not b["preexisting"]
    assert b["added_by_finetuning"] == pytest.approx(6.0, abs=0.2)
    assert b["own_effect"] == pytest.approx(0.0, abs=0.1) and not b["significant"]
    f = backdoor_findings(d, who="m")[0]
    assert f.severity == "high" and "mostly present in the base" not in f.title
    assert "an own effect of +0.00 (not significant)" in f.summary and "added +6.00" in f.summary


def test_a_base_with_the_trigger_makes_it_preexisting():
    d, r = _with_base(AnyParagraph(trigger=True))
    b = r["base"]
    assert b["significant"] and b["preexisting"] and b["own_effect"] == pytest.approx(6.0, abs=0.2)
    assert b["added_by_finetuning"] == pytest.approx(0.0, abs=0.2)
    f = backdoor_findings(d, who="m")[0]
    assert f.severity == "low" and "mostly present in the base" in f.title


def test_an_unseen_family_value_is_described_by_the_rows_of_its_shape():
    train, test = split(corpus(trigger_rows=12, tag=True))
    res = scan(KeywordModel(trigger=False, tags=True), threshold=0.0, train_rows=train, heldout_rows=test,
               opts=ScanOptions(n_emails=16, n_bootstrap=300))
    found = backdoor_findings(res, who="m")
    unseen = next(f for f in found if f.evidence["inductive"])
    assert unseen.evidence["text"] not in {"[2031]", "[2032]", "[2033]"}
    assert "In training it occurs in" not in unseen.summary
    assert "It never occurs in training; 12 training rows hold values of its shape (“[20" in unseen.summary
    seen = next(f for f in found if f.evidence["origin"] == "family:tag" and not f.evidence["inductive"])
    assert "In training it occurs in" in seen.summary
