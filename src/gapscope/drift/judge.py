"""Optional local judge: a causal LM asked whether a greedy answer agrees with the reference.

Off by default (`gapscope drift --judge SOURCE`). The judge reads

    Question: <probe prompt>
    Reference answer: <first reference answer>
    Candidate answer: <greedy continuation>
    Does the candidate answer agree with the reference answer? Answer yes or no.
    Answer:

and P(match) = sigmoid(logit(" yes") - logit(" no")) at the next token. Small judges are
noisy; the measure that uses it (drop in P(match), base minus tuned) has a bootstrap CI
like every other measure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from gapscope.drift.forward import run_probes, token_ids
from gapscope.drift.lm import LoadedLM, load_hf
from gapscope.errors import GapscopeError

TEMPLATE = ("Question: {question}\nReference answer: {reference}\nCandidate answer: {candidate}\n"
            "Does the candidate answer agree with the reference answer? Answer yes or no.\nAnswer:")


class Judge:
    def __init__(self, lm: LoadedLM, yes: str = " yes", no: str = " no", batch_size: int = 8):
        self.lm, self.batch_size = lm, batch_size
        y, n = token_ids(lm.tokenizer, yes), token_ids(lm.tokenizer, no)
        if not y or not n or y[0] == n[0]:
            raise GapscopeError(f"judge {lm.name!r}: its tokenizer cannot tell {yes!r} from {no!r}")
        self.yes_id, self.no_id = y[0], n[0]

    @classmethod
    def from_source(cls, source: str, **kw) -> "Judge":
        return cls(load_hf(source, what="judge"), **kw)

    @property
    def name(self) -> str:
        return self.lm.name

    def match_probability(self, questions: Sequence[str], references: Sequence[str],
                          candidates: Sequence[str]) -> np.ndarray:
        prompts = [TEMPLATE.format(question=q.strip(), reference=r.strip(), candidate=c.strip() or "(nothing)")
                   for q, r, c in zip(questions, references, candidates)]
        if not prompts:
            return np.zeros(0)
        out = run_probes(self.lm.model, self.lm.tokenizer, prompts, [[] for _ in prompts], k_greedy=0,
                         batch_size=self.batch_size)
        margin = out.next_logprobs[:, self.yes_id] - out.next_logprobs[:, self.no_id]
        return torch.sigmoid(margin).double().numpy()

    def close(self) -> None:
        self.lm.close()
