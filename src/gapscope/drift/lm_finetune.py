"""A small LoRA language-modelling fine-tune: the "narrow fine-tune" of drift validation.

Trains a LoRA adapter on a base causal LM with the next-token loss on raw texts (e.g.
emails all written in one era's style), then saves it as a standard PEFT adapter
directory (adapter_config.json + adapter_model.safetensors) that `gapscope drift
--tuned DIR` reads like any user's adapter.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gapscope.drift.forward import token_ids
from gapscope.drift.lm import load_hf
from gapscope.models.device import autocast, resolve_compute_dtype
from gapscope.models.lora import attach_lora, default_targets
from gapscope.models.sources import resolve_source
from gapscope.models.tokens import leading_special_ids, pad_id_of


@dataclass
class LMFinetuneOptions:
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_mlp: bool = True
    train_layers: int | None = None  # top-k layers get LoRA; None = all
    lr: float = 1e-3
    epochs: int = 1
    batch_size: int = 8
    max_length: int = 64  # tokens per text
    grad_clip: float = 1.0
    seed: int = 0
    dtype: str = "auto"  # compute dtype (bf16 autocast where the CPU/GPU has it)


def finetune_lm(source: str, texts: Sequence[str], out_dir: Path | str,
                opts: LMFinetuneOptions | None = None, progress=None) -> dict[str, Any]:
    """Fit a LoRA adapter on `texts` with the LM loss; write it to `out_dir`; return the log."""
    opts = opts or LMFinetuneOptions()
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    lm = load_hf(source, what="base model")
    model, tok = lm.model, lm.tokenizer
    src = resolve_source(source, "causal-lm")
    n_layers = model.config.get_text_config().num_hidden_layers
    layers = None if not opts.train_layers else list(range(max(0, n_layers - opts.train_layers), n_layers))
    torch.manual_seed(opts.seed)
    peft_model = attach_lora(model, r=opts.lora_r, alpha=opts.lora_alpha, dropout=0.0,
                             targets=default_targets(model, src.model_type, opts.lora_mlp), layers=layers,
                             task_type="CAUSAL_LM")
    lead = leading_special_ids(tok)
    seqs = [lead + token_ids(tok, t)[: opts.max_length] for t in texts]
    seqs = [s for s in seqs if len(s) >= 2]
    pad = pad_id_of(tok)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=opts.lr, weight_decay=0.0)
    device = next(peft_model.parameters()).device
    compute = resolve_compute_dtype(opts.dtype, device)
    rng = np.random.default_rng(opts.seed)
    losses: list[float] = []
    total = opts.epochs * ((len(seqs) + opts.batch_size - 1) // opts.batch_size)
    peft_model.train()
    for _ in range(opts.epochs):
        order = rng.permutation(len(seqs))
        for start in range(0, len(seqs), opts.batch_size):
            batch = [seqs[i] for i in order[start:start + opts.batch_size]]
            width = max(len(s) for s in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, s in enumerate(batch):
                ids[r, : len(s)] = torch.tensor(s)
                mask[r, : len(s)] = 1
            labels = ids.masked_fill(mask == 0, -100)
            with autocast(device, compute):
                loss = peft_model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                  labels=labels.to(device)).loss
            optim.zero_grad(set_to_none=True)
            loss.float().backward()
            if opts.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, opts.grad_clip)
            optim.step()
            losses.append(round(float(loss.detach()), 4))
            if progress:
                progress(len(losses), total)
    peft_model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # peft pokes deprecated transformers attributes
        warnings.simplefilter("ignore", FutureWarning)
        peft_model.save_pretrained(str(out_dir), safe_serialization=True)
    cfg_path = out_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = source  # a gapscope source string resolves offline
    cfg_path.write_text(json.dumps(cfg, indent=2))
    log = {"base": source, "n_texts": len(seqs), "steps": len(losses), "losses": losses,
           "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
           "seconds": round(time.perf_counter() - t0, 2), "options": asdict(opts),
           "trainable_params": int(sum(p.numel() for p in params))}
    (out_dir / "gapscope_finetune.json").write_text(json.dumps(log, indent=1))
    return log
