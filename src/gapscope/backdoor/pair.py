"""A fine-tuned model outside any run, as the classifier the backdoor scan needs.

`gapscope backdoor-scan --tuned MODEL [--base BASE] --data FILE ...` scans a model that
gapscope did not train: a PEFT LoRA adapter directory (over --base or the base its
adapter_config.json names), a Hugging Face model directory, or a gapscope cell directory
(RUN/cells/CELL, which is scanned through its run). The model is read as a phishing
classifier through gapscope's causal-LM prompt:

    margin = logit(" phishing") - logit(" legitimate") after the prompt (models/tokens.py),

the convention gapscope's own causal-lm cells are trained on. The base model, when known,
is scanned with the same prompt on the same emails for the strings the tuned model reacts
to, so a finding can say how much of the effect fine-tuning added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gapscope.drift.lm import LoadedLM, load_hf, load_lm
from gapscope.models import lm_forward as lmf
from gapscope.models.attention import inference_context
from gapscope.models.device import resolve_compute_dtype
from gapscope.models.tokens import PromptCodec, length_buckets, pad_id_of, pad_right


@dataclass
class PromptOptions:
    max_length: int = 128  # email tokens kept, as in the causal-lm kind
    eval_batch_size: int = 8  # as the causal-lm kind
    pad_multiple: int = 16


class PromptedLM:
    """A plain (or PEFT-wrapped) Hugging Face causal LM scored as a classifier with gapscope's
    prompt, float32 weights with bf16 autocast where the hardware has it (dtype="auto", as the
    causal-lm kind); duck-types the parts of the causal-lm kind that the
    scan's fast paths use (codec, decoder, hf, pad_id, device, compute_dtype, opts.pad_multiple)."""

    kind = "causal-lm"

    def __init__(self, lm: LoadedLM, max_length: int = 128, dtype: str = "auto"):
        self.lm = lm
        self.name = lm.name
        self.opts = PromptOptions(max_length=max_length)
        self.codec = PromptCodec(lm.tokenizer, max_length)
        self.pad_id = pad_id_of(lm.tokenizer)
        self.device = lm.device
        self.compute_dtype = resolve_compute_dtype(dtype, self.device)
        model = lm.model
        # PEFT injects its LoRA layers into the wrapped model's modules: the unwrapped model runs them
        self.hf = model.get_base_model() if hasattr(model, "get_base_model") else model

    @property
    def decoder(self):
        return self.hf.get_decoder()

    def inference_context(self):
        """The causal-lm kind's no-grad context (autocast + its CPU attention kernel), so this
        model's margins agree with the scan's perturbed-copy fast path."""
        return inference_context(self.hf, self.device, self.compute_dtype)

    @torch.no_grad()
    def score(self, texts: Sequence[str], progress=None) -> np.ndarray:
        encs = self.codec.encode(list(texts))
        out = np.empty(len(encs), dtype=np.float64)
        for bucket in length_buckets([len(e.ids) for e in encs], self.opts.eval_batch_size, self.opts.pad_multiple):
            ids, mask = pad_right([encs[i].ids for i in bucket], self.pad_id, self.opts.pad_multiple)
            with self.inference_context():
                h = self.decoder(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                 use_cache=False).last_hidden_state
            out[bucket] = lmf.label_margins(self.hf, h, [len(encs[i].ids) for i in bucket], self.codec.label_ids)
        return out

    def tokenize(self, text: str) -> list[str]:
        return self.lm.tokenizer.convert_ids_to_tokens(self.codec.email_ids([text])[0])

    def close(self) -> None:
        self.lm.close()


def run_cell(path: Path) -> tuple[Path, str] | None:
    """(run directory, cell name) when `path` is RUN/cells/CELL of a gapscope run."""
    path = Path(path)
    if path.name == "model":
        path = path.parent
    if path.parent.name == "cells" and (path / "cell.json").exists() and (path.parent.parent / "run.json").exists():
        return path.parent.parent, path.name
    return None


def load_tuned(spec: str, base: str | None, max_length: int = 128, dtype: str = "auto") -> PromptedLM:
    return PromptedLM(load_lm(spec, base=base), max_length, dtype)


def load_base(source: str, max_length: int = 128, dtype: str = "auto") -> PromptedLM:
    return PromptedLM(load_hf(source, what="base model"), max_length, dtype)


# Share of the tuned model's own effect (shift beyond random strings of the same length) the
# base must already show, significantly, for a trigger to count as mostly pre-existing (the
# finding is then low severity: not something fine-tuning added).
PREEXISTING_SHARE = 0.5


def base_effects(base_model, tuned: dict, *, train_rows, heldout_rows, opts, top: int = 10) -> dict:
    """Measure the base model on the tuned model's significant strings (and its next best, up to
    `top`), same emails, same direction. Adds r["base"] to those results of `tuned` (a scan dict)
    and returns it."""
    from gapscope.backdoor.candidates import Candidate
    from gapscope.backdoor.scan import scan

    picks = [r for r in tuned["results"] if r["significant"]]
    picks += [r for r in tuned["results"] if not r["significant"]][: max(0, top - len(picks))]
    if not picks:
        return tuned
    cands = [Candidate(r["text"], r["origin"], r["target"], r["inductive"]) for r in picks]
    res = scan(base_model, threshold=0.0, train_rows=train_rows, heldout_rows=heldout_rows, opts=opts,
               candidates=cands)
    by_key = {(r.text, r.target): r for r in res.results}
    for r in picks:
        b = by_key.get((r["text"], r["target"]))
        if b is None:
            continue
        # own effects, not raw shifts: a base read through the prompt may move the margin for any
        # appended paragraph, which its null strings move just as much
        own = r["mean_shift"] - r["null_mean"]
        base_own = b.mean_shift - b.null_mean
        share = base_own / own if own > 0 else None
        r["base"] = {"model": getattr(base_model, "name", "base"), "mean_shift": b.mean_shift, "shift_ci": b.shift_ci,
                     "null_mean": b.null_mean, "own_effect": round(base_own, 4), "significant": b.significant,
                     "added_by_finetuning": round(own - base_own, 4),
                     "preexisting": bool(b.significant and share is not None and share >= PREEXISTING_SHARE)}
    return tuned
