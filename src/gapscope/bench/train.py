"""`gapscope bench train`: LoRA fine-tuning throughput, gapscope vs a plain Trainer + peft recipe.

plain:    transformers.Trainer on AutoModelForCausalLM + peft LoRA (r=8, q/k/v/o, every layer),
          float32 on CPU (on CUDA: bf16 weights with Trainer's bf16, or the 4-bit QLoRA recipe),
          loss = next-token cross-entropy on the label word after the prompt;
gapscope: CausalLM.fit: LoRA on the top third of the layers over a frozen-prefix activation
          cache, bf16 autocast, 2-way loss on the two label logits.
Same emails, epochs, batch size, learning rate and seed. Both trained models are then
scored the same way (2-way loss on the training emails, accuracy/AUROC on held-out ones),
so "equal final loss" compares like with like.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
import warnings
from typing import Any

import numpy as np
import torch

from gapscope.bench.common import (bench_emails, free_models, gpu_memory_rows, gpu_peak_gib, load_plain, machine,
                                   reset_gpu_peak, source_for)


def _two_way_loss(margins: np.ndarray, labels: np.ndarray) -> float:
    # cross-entropy of softmax([legit, phishing]) == BCE on the margin
    m = margins * np.where(labels == 1, 1.0, -1.0)
    return float(np.mean(np.logaddexp(0.0, -m)))


def _auroc(margins: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, margins))


def run(model_name: str = "smollm2", n_train: int = 64, n_eval: int = 64, epochs: int = 2, batch_size: int = 8,
        lr: float = 2e-4, max_length: int = 96, seed: int = 0, load_in_4bit: bool = False) -> dict[str, Any]:
    from gapscope.models.base import ModelSpec
    from gapscope.models.causal_lm import CausalLM

    texts, labels = bench_emails(n_train + n_eval, seed=seed)
    tr_x, tr_y = texts[:n_train], np.array(labels[:n_train])
    ev_x, ev_y = texts[n_train:], np.array(labels[n_train:])
    options = {"max_length": max_length, "epochs": epochs, "batch_size": batch_size, "lr": lr,
               "load_in_4bit": load_in_4bit}
    ours = CausalLM(ModelSpec(name="bench", kind="causal-lm", source=source_for(model_name), options=options))
    try:
        encs = ours.codec.encode(tr_x)
        ev_ids = [e.ids for e in ours.codec.encode(ev_x)]
        tokens = sum(len(e.ids) for e in encs) * epochs
        if ours.device.type == "cuda":
            # A process's first CUDA training steps pay for the context, library handles and lazy
            # kernel loading; the plain side, run second, would get them for free. Warm both on a
            # batch of held-out emails (their prefix states are only ever scored, never timed).
            ours.fit(ev_x[:batch_size], ev_y[:batch_size], seed=seed)
        reset_gpu_peak()
        t0 = time.perf_counter()
        log = ours.fit(tr_x, tr_y, seed=seed)
        t_ours = time.perf_counter() - t0
        ours_gpu = gpu_peak_gib()
        ours_train = ours.score(tr_x)
        ours_eval = ours.score(ev_x)
        train_layers = ours.train_layers
        n_layers = ours.n_layers
        local_dir = ours.source.local_dir
        label_ids = ours.codec.label_ids
        pad_id = ours.pad_id
        device, weights = ours.device, ours.weights_dtype
    finally:
        ours.close()
    free_models()  # the plain side's memory is then its own

    reset_gpu_peak()
    plain = _plain_recipe(local_dir, encs, tr_y, label_ids, pad_id, epochs=epochs, batch_size=batch_size,
                          lr=lr, seed=seed, device=device, weights_dtype=weights, load_in_4bit=load_in_4bit)
    plain_gpu = gpu_peak_gib()
    plain_train = _margins(plain["model"], [e.ids for e in encs], label_ids)
    plain_eval = _margins(plain["model"], ev_ids, label_ids)
    return {
        "benchmark": "train", "model": model_name, "train_emails": n_train, "eval_emails": n_eval,
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "max_length": max_length, "tokens": tokens,
        "device": str(device), "load_in_4bit": load_in_4bit, "plain_dtype": plain["dtype"],
        "gapscope_gpu_peak_gib": ours_gpu, "plain_gpu_peak_gib": plain_gpu,
        "plain_seconds": round(plain["seconds"], 2), "gapscope_seconds": round(t_ours, 2),
        "plain_tokens_per_s": round(tokens / plain["seconds"], 1), "gapscope_tokens_per_s": round(tokens / t_ours, 1),
        "speedup": round(plain["seconds"] / t_ours, 2),
        "gapscope_train_layers": f"{train_layers} of {n_layers}",
        "plain_final_loss": round(_two_way_loss(plain_train, tr_y), 4),
        "gapscope_final_loss": round(_two_way_loss(ours_train, tr_y), 4),
        "plain_eval_auroc": round(_auroc(plain_eval, ev_y), 4),
        "gapscope_eval_auroc": round(_auroc(ours_eval, ev_y), 4),
        "plain_eval_accuracy": round(float(np.mean((plain_eval > 0) == (ev_y == 1))), 4),
        "gapscope_eval_accuracy": round(float(np.mean((ours_eval > 0) == (ev_y == 1))), 4),
        "gapscope_last_step_losses": log.get("losses", [])[-3:],
        "gapscope_prefix_seconds": log.get("prefix_seconds"), "gapscope_loop_seconds": log.get("seconds"),
        "machine": machine(),
    }


def _plain_recipe(local_dir, encs, labels, label_ids, pad_id, *, epochs, batch_size, lr, seed,
                  device: torch.device | None = None, weights_dtype: torch.dtype = torch.float32,
                  load_in_4bit: bool = False) -> dict:
    """The recipe a transformers user writes: float32 on CPU; on CUDA the bf16 (or 4-bit NF4,
    the QLoRA recipe) weights gapscope uses, with Trainer's bf16 mixed precision."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    torch.manual_seed(seed)
    on_gpu = device is not None and device.type == "cuda"
    model, dtype_name = load_plain(local_dir, device or torch.device("cpu"), weights_dtype, load_in_4bit)
    if on_gpu and load_in_4bit:
        from peft import prepare_model_for_kbit_training

        # without gradient checkpointing, as gapscope trains: the faster plain recipe
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    data = []
    for e, y in zip(encs, labels):
        target = label_ids[int(y)]
        data.append({"input_ids": list(e.ids) + [target], "labels": [-100] * len(e.ids) + [target]})

    def collate(batch):
        n = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
        lab = torch.full((len(batch), n), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        for i, b in enumerate(batch):
            k = len(b["input_ids"])
            ids[i, :k] = torch.tensor(b["input_ids"])
            lab[i, :k] = torch.tensor(b["labels"])
            mask[i, :k] = 1
        return {"input_ids": ids, "labels": lab, "attention_mask": mask}

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch_size, num_train_epochs=epochs,
                                 learning_rate=lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
                                 max_grad_norm=1.0, seed=seed, report_to=[], save_strategy="no",
                                 logging_strategy="no", disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
                                 dataloader_num_workers=0, remove_unused_columns=False,
                                 bf16=on_gpu and weights_dtype == torch.bfloat16)
        trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate)
        t0 = time.perf_counter()
        # Trainer prints its closing metrics to stdout; they go to stderr so `--json` stays JSON
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore", FutureWarning)  # peft calls a deprecated helper every step
            trainer.train()
        seconds = time.perf_counter() - t0
    model.eval()
    return {"model": model, "seconds": seconds, "dtype": dtype_name}


def _margins(model, id_lists, label_ids) -> np.ndarray:
    lid, pid = label_ids
    dev = model.get_input_embeddings().weight.device
    out = []
    with torch.no_grad():
        for ids in id_lists:
            logits = model(input_ids=torch.tensor([list(ids)], device=dev)).logits[0, -1].float()
            out.append(float(logits[pid] - logits[lid]))
    return np.array(out)


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("data", f"{r['train_emails']} emails x {r['epochs']} epochs", f"{r['tokens']} tokens, model {r['model']}"),
        ("plain Trainer + peft", f"{r['plain_tokens_per_s']:.0f} tok/s",
         f"{r['plain_seconds']:.1f}s, LoRA on every layer, {r['plain_dtype']}"),
        ("gapscope", f"{r['gapscope_tokens_per_s']:.0f} tok/s",
         f"{r['gapscope_seconds']:.1f}s, LoRA on top {r['gapscope_train_layers']} layers, prefix cache"),
        ("speed-up", f"{r['speedup']:.2f}x", "target >= 2x"),
        ("final 2-way loss", f"{r['gapscope_final_loss']:.4f} vs {r['plain_final_loss']:.4f}", "gapscope vs plain (train emails)"),
        ("held-out AUROC", f"{r['gapscope_eval_auroc']:.3f} vs {r['plain_eval_auroc']:.3f}", "gapscope vs plain"),
        *gpu_memory_rows(r, "plain"),
        ("held-out accuracy", f"{r['gapscope_eval_accuracy']:.3f} vs {r['plain_eval_accuracy']:.3f}", "margin > 0"),
    ]
