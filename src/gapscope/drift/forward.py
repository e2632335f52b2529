"""Batched probe forwards on a causal LM: next-token distributions, answer log-probabilities
and greedy continuations, from one prompt pass per batch plus a KV cache.

Prompts are left-padded (explicit position ids, so padding never shifts a position);
answer continuations and greedy steps are fed on top of the cached prompt. Everything
runs in float32 without autocast: KL divergences of nearly equal models need it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gapscope.models.tokens import leading_special_ids, pad_id_of


def token_ids(tok, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def encode_prompt(tok, prompt: str) -> list[int]:
    return leading_special_ids(tok) + token_ids(tok, prompt)


def encode_answer(tok, prompt: str, answer: str) -> list[int]:
    """The tokens the model would emit after `prompt` to write `answer` (tokenised in context
    where the tokenizer allows, so leading-space conventions come out right)."""
    p = token_ids(tok, prompt)
    joint = token_ids(tok, prompt + answer)
    if len(joint) > len(p) and joint[: len(p)] == p:
        return joint[len(p):]
    out = token_ids(tok, answer)
    if not out:
        raise ValueError(f"answer {answer!r} tokenises to nothing")
    return out


@dataclass
class ProbeForward:
    """What one model says on a list of prompts."""

    next_logprobs: torch.Tensor  # (n, V) float32 log-softmax at the answer position
    answer_logprobs: list[list[float]]  # per prompt, per requested answer: summed token log-probs
    greedy: list[list[int]]  # first k greedy tokens per prompt (cut after EOS)
    greedy_text: list[str]


class _Batch:
    """A left-padded batch of prompts and its KV cache."""

    def __init__(self, model, prompts: Sequence[Sequence[int]], pad_id: int, device):
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
            mask[i, width - len(p):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        self.model, self.device = model, device
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device),
                    use_cache=True, logits_to_keep=1)
        self.cache = out.past_key_values
        self.mask = mask.to(device)
        self.next_pos = torch.tensor([len(p) for p in prompts], device=device)
        self.last_logits = out.logits[:, -1].float()

    def extend(self, tokens: torch.Tensor, tok_mask: torch.Tensor, *, cache=None, rows=None, all_logits=False):
        """Feed `tokens` (b, m) after the prompts (rows `rows` of the batch, default all).
        With `cache` given it is used (and mutated) instead of the batch's own."""
        mask = self.mask if rows is None else self.mask[rows]
        start = self.next_pos if rows is None else self.next_pos[rows]
        m = tokens.shape[1]
        full_mask = torch.cat([mask, tok_mask.to(self.device)], dim=1)
        pos = start[:, None] + torch.arange(m, device=self.device)[None, :]
        out = self.model(input_ids=tokens.to(self.device), attention_mask=full_mask, position_ids=pos,
                         past_key_values=cache if cache is not None else self.cache, use_cache=True,
                         logits_to_keep=0 if all_logits else 1)
        if cache is None:
            self.mask, self.next_pos = full_mask, self.next_pos + m
        return out.logits.float()


def run_probes(model, tokenizer, prompts: Sequence[str], answers: Sequence[Sequence[str]], *,
               k_greedy: int = 4, batch_size: int = 16) -> ProbeForward:
    """Next-token log-probs, summed log-probs of each answer, and k greedy tokens per prompt."""
    device = next(model.parameters()).device
    pad_id = pad_id_of(tokenizer)
    eos = tokenizer.eos_token_id
    enc = [encode_prompt(tokenizer, p) for p in prompts]
    ans_ids = [[encode_answer(tokenizer, p, a) for a in alts] for p, alts in zip(prompts, answers)]
    next_lp: list[torch.Tensor] = []
    ans_lp: list[list[float]] = []
    greedy: list[list[int]] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            for start in range(0, len(enc), batch_size):
                rows = list(range(start, min(len(enc), start + batch_size)))
                batch = _Batch(model, [enc[i] for i in rows], pad_id, device)
                lp0 = torch.log_softmax(batch.last_logits, dim=-1)
                next_lp.append(lp0.cpu())
                ans_lp += _answer_logprobs(batch, lp0, [ans_ids[i] for i in rows], pad_id)
                greedy += _greedy(batch, lp0, k_greedy, eos)
    finally:
        model.train(was_training)
    texts = [tokenizer.decode(g, skip_special_tokens=True) for g in greedy]
    return ProbeForward(torch.cat(next_lp) if next_lp else torch.zeros((0, 0)), ans_lp, greedy, texts)


def _answer_logprobs(batch: _Batch, lp0: torch.Tensor, answers: list[list[list[int]]], pad_id: int) -> list[list[float]]:
    out = [[float(lp0[b, a[0]]) for a in alts] for b, alts in enumerate(answers)]
    longer = [(b, j, a) for b, alts in enumerate(answers) for j, a in enumerate(alts) if len(a) > 1]
    if not longer:
        return out
    # Each multi-token answer becomes a row over a copy of its prompt's cache; the answer's
    # tokens but the last are fed, and each fed token's logits score the next answer token.
    rows = torch.tensor([b for b, _, _ in longer], device=batch.device)
    width = max(len(a) - 1 for _, _, a in longer)
    toks = torch.full((len(longer), width), pad_id, dtype=torch.long)
    tmask = torch.zeros((len(longer), width), dtype=torch.long)
    for r, (_, _, a) in enumerate(longer):
        toks[r, : len(a) - 1] = torch.tensor(a[:-1])
        tmask[r, : len(a) - 1] = 1
    cache = copy.deepcopy(batch.cache)
    cache.batch_select_indices(rows)
    logits = batch.extend(toks, tmask, cache=cache, rows=rows, all_logits=True)
    lps = torch.log_softmax(logits, dim=-1)
    for r, (b, j, a) in enumerate(longer):
        rest = torch.tensor(a[1:], device=lps.device)
        out[b][j] += float(lps[r, torch.arange(len(a) - 1, device=lps.device), rest].sum())
    return out


def _greedy(batch: _Batch, lp0: torch.Tensor, k: int, eos: int | None) -> list[list[int]]:
    if k <= 0:
        return [[] for _ in range(lp0.shape[0])]
    tokens = [lp0.argmax(-1)]
    for _ in range(k - 1):
        nxt = tokens[-1][:, None]
        logits = batch.extend(nxt, torch.ones_like(nxt))
        tokens.append(logits[:, -1].argmax(-1))
    seqs = torch.stack(tokens, dim=1).cpu().tolist()
    if eos is not None:
        seqs = [s[: s.index(eos) + 1] if eos in s else s for s in seqs]
    return seqs


def kl_divergence(p_log: torch.Tensor, q_log: torch.Tensor) -> np.ndarray:
    """KL(P || Q) per row, in nats, from log-probabilities (n, V).

    Vocabularies of different sizes (a tuned model with an added pad or chat token, or a head
    padded to a multiple of 64) are compared over the ids both have, each renormalised there:
    added tokens are appended, so ids below the smaller size are the same tokens."""
    if p_log.shape[-1] != q_log.shape[-1]:
        v = min(p_log.shape[-1], q_log.shape[-1])
        p_log, q_log = torch.log_softmax(p_log[..., :v], -1), torch.log_softmax(q_log[..., :v], -1)
    p = p_log.exp()
    kl = (p * (p_log - q_log)).sum(-1)
    return kl.clamp(min=0.0).double().numpy()


def vocabularies(p_log: torch.Tensor, q_log: torch.Tensor) -> dict[str, float | int] | None:
    """Where the two vocabularies differ in size: both sizes, the ids compared, and each model's mean
    next-token probability on the ids only it has (mass the KL over the shared ids cannot see).
    None where the sizes are equal."""
    vp, vq = p_log.shape[-1], q_log.shape[-1]
    if vp == vq:
        return None
    v = min(vp, vq)
    return {"base": int(vp), "tuned": int(vq), "shared": int(v),
            "base_mass_outside": float(p_log[..., v:].exp().sum(-1).mean()) if vp > v else 0.0,
            "tuned_mass_outside": float(q_log[..., v:].exp().sum(-1).mean()) if vq > v else 0.0}
