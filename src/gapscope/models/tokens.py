"""Token-level plumbing shared by the neural kinds: the causal-LM prompt, label
tokens, right padding and length buckets.

The prompt is assembled from separately tokenized pieces (prefix, email, suffix) so
that truncation cuts the EMAIL, never the instruction or the answer cue, and the
answer position is always the last real token of the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gapscope.errors import GapscopeError

INSTRUCTION = "Classify the email as phishing or legitimate.\n\nEmail:\n"
ANSWER_CUE = "\n\nAnswer:"
LABEL_WORDS = (" legitimate", " phishing")  # index = label; margin = logit[1] - logit[0]

# Characters kept before tokenizing: far more than max_length tokens can cover
# (BPE tokens are rarely over 16 characters), and it bounds the cost of huge emails.
CHARS_PER_TOKEN_BOUND = 64


@dataclass(frozen=True)
class Encoded:
    ids: tuple[int, ...]
    email_start: int  # email tokens are ids[email_start:email_end]
    email_end: int

    @property
    def answer_index(self) -> int:
        return len(self.ids) - 1


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def leading_special_ids(tokenizer) -> list[int]:
    """What the tokenizer puts before a text (BOS for Llama/Gemma, nothing for SmolLM2)."""
    with_special = list(tokenizer("a", add_special_tokens=True)["input_ids"])
    without = _ids(tokenizer, "a")
    for start in range(len(with_special) - len(without) + 1):
        if with_special[start:start + len(without)] == without:
            return with_special[:start]  # trailing specials (EOS) would end the prompt: dropped
    return []


def label_token_ids(tokenizer) -> tuple[tuple[int, int], bool]:
    """Ids of the first token of each label word as it follows the answer cue.

    Tokenizing cue+word and stripping the cue's tokens gives the token the model would
    actually produce next (handles the leading-space conventions: Ġ, ▁, ...).
    Returns ((legit_id, phishing_id), both_single_token).
    """
    cue = _ids(tokenizer, ANSWER_CUE)
    firsts, single = [], True
    for word in LABEL_WORDS:
        full = _ids(tokenizer, ANSWER_CUE + word)
        if full[: len(cue)] != cue or len(full) == len(cue):
            raise GapscopeError(f"tokenizer splits the answer cue unexpectedly around {word!r}")
        firsts.append(full[len(cue)])
        single &= len(full) == len(cue) + 1
    if firsts[0] == firsts[1]:
        raise GapscopeError("tokenizer gives ' legitimate' and ' phishing' the same first token")
    return (firsts[0], firsts[1]), single


class PromptCodec:
    """Builds `[specials] INSTRUCTION email[:max_length] ANSWER_CUE` as token ids."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.prefix = leading_special_ids(tokenizer) + _ids(tokenizer, INSTRUCTION)
        self.suffix = _ids(tokenizer, ANSWER_CUE)
        self.label_ids, self.single_token_labels = label_token_ids(tokenizer)

    def _email_tokens(self, texts: Sequence[str], offsets: bool = False):
        cut = self.max_length * CHARS_PER_TOKEN_BOUND
        return self.tokenizer([t[:cut] for t in texts], add_special_tokens=False, return_offsets_mapping=offsets)

    def email_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids[: self.max_length]) for ids in self._email_tokens(texts)["input_ids"]]

    def _assemble(self, email: Sequence[int]) -> Encoded:
        start = len(self.prefix)
        return Encoded(tuple(self.prefix + list(email) + self.suffix), start, start + len(email))

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        return [self._assemble(email) for email in self.email_ids(texts)]

    def encode_with_offsets(self, texts: Sequence[str]) -> list[tuple[Encoded, list[tuple[int, int]] | None]]:
        """`encode`, plus the (start, end) characters in the email of each kept email token, from
        the same tokenizer call; None offsets when the tokenizer cannot give them (slow tokenizers)."""
        try:
            batch = self._email_tokens(texts, offsets=True)
        except (NotImplementedError, ValueError, TypeError):
            return [(e, None) for e in self.encode(texts)]
        return [(self._assemble(ids[: self.max_length]), [(int(a), int(b)) for a, b in offs[: self.max_length]])
                for ids, offs in zip(batch["input_ids"], batch["offset_mapping"])]


def padded_length(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple if multiple > 1 else n


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int, multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right padding: with causal attention real tokens never see pads, so a row's
    result does not depend on what it is batched with. Padding to a multiple makes the
    tensor shape depend only on the row's own length bucket (see length_buckets)."""
    width = padded_length(max(len(s) for s in seqs), multiple)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def length_buckets(lengths: Sequence[int], batch_size: int, multiple: int = 1) -> list[np.ndarray]:
    """Indices grouped into batches whose rows share one padded length.

    Why: under bfloat16, reductions over a differently padded sequence can flip a bf16
    rounding and move a margin by ~0.05. If every row is padded to its OWN bucket
    (length rounded up to `multiple`) and only same-bucket rows share a batch, each row
    always runs in the same shape, so its margin no longer depends on the batch size or
    on its neighbours (matmul rows are computed independently of the other rows).
    """
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        bucket = padded_length(int(lengths[order[start]]), multiple)
        stop = start
        while stop < len(order) and stop - start < batch_size and \
                padded_length(int(lengths[order[stop]]), multiple) == bucket:
            stop += 1
        batches.append(order[start:stop])
        start = stop
    return batches


def pad_id_of(tokenizer) -> int:
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0
