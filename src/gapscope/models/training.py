"""The seeded mini-batch training loop shared by the neural kinds.

Order comes from numpy's Generator(seed) and initialisation from torch.manual_seed
(set by the caller before creating trainable weights), so the same seed gives the
same model. The loss is 2-way cross-entropy on [legitimate, phishing] logits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gapscope.models.base import ProgressFn

# step(batch_indices) -> (logits (b, 2) with grad, number of tokens in the batch)
StepFn = Callable[[np.ndarray], tuple[torch.Tensor, int]]


def train_loop(step: StepFn, labels: np.ndarray, *, param_groups: Sequence[dict], epochs: int,
               batch_size: int, seed: int, weight_decay: float = 0.0, grad_clip: float = 1.0,
               progress: ProgressFn | None = None) -> dict:
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    params = [p for g in param_groups for p in g["params"]]
    optimizer = torch.optim.AdamW(param_groups, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    n = len(labels_t)
    steps_per_epoch = (n + batch_size - 1) // batch_size
    total = steps_per_epoch * epochs
    losses: list[float] = []
    tokens = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start: start + batch_size]
            logits, ntok = step(idx)
            loss = F.cross_entropy(logits.float(), labels_t[idx].to(logits.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            losses.append(round(float(loss.detach()), 4))
            tokens += ntok
            if progress:
                progress(len(losses), total)
    seconds = time.perf_counter() - t0
    return {"steps": len(losses), "losses": losses, "tokens": tokens, "seconds": round(seconds, 3),
            "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None}
