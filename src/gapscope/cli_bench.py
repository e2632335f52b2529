"""`gapscope bench score|train|study`: speed and memory, measured side by side in one run."""

from __future__ import annotations

from pathlib import Path

import typer
from gapscope.option_rules import MAX_SEED


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("score")
    def bench_score(
        model: str = typer.Option("smollm2", help="smollm2 | gemma3 | a source (HF id, directory, .gguf)."),
        n: int = typer.Option(64, "--n", min=1, help="Emails scored."),
        max_length: int = typer.Option(128, "--max-length", min=1, help="Email tokens kept."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="gapscope's scoring batch size (the causal-lm default)."),
        load_in_4bit: bool = typer.Option(False, "--load-in-4bit", help="4-bit NF4 weights on both sides (CUDA, bitsandbytes)."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ):
        """Batched scoring vs a naive per-email loop: tokens/s, ratio, FLOP/s vs the measured matmul peak."""
        from gapscope.bench import score
        from gapscope.bench.common import emit

        r = score.run(model, n=n, max_length=max_length, batch_size=batch_size, load_in_4bit=load_in_4bit)
        emit(r, as_json, score.rows(r), "bench score")

    @bench_app.command("train")
    def bench_train(
        model: str = typer.Option("smollm2", help="smollm2 | gemma3 | a source."),
        n: int = typer.Option(64, "--n", min=2, help="Training emails."),
        n_eval: int = typer.Option(64, "--n-eval", min=2, help="Held-out emails for the accuracy check."),
        epochs: int = typer.Option(2, min=1, help="Epochs (both recipes)."),
        batch_size: int = typer.Option(8, "--batch-size", min=1),
        max_length: int = typer.Option(96, "--max-length", min=1),
        load_in_4bit: bool = typer.Option(False, "--load-in-4bit", help="QLoRA: 4-bit NF4 base on both sides (CUDA, bitsandbytes)."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ):
        """LoRA fine-tuning tokens/s vs a plain transformers Trainer + peft recipe, final losses side by side."""
        from gapscope.bench import train
        from gapscope.bench.common import emit

        r = train.run(model, n_train=n, n_eval=n_eval, epochs=epochs, batch_size=batch_size, max_length=max_length,
                      load_in_4bit=load_in_4bit)
        emit(r, as_json, train.rows(r), "bench train")

    @bench_app.command("random-model")
    def bench_random_model(
        out: Path = typer.Option(..., "--out", help="New directory to write (config, bf16 safetensors, tokenizer)."),
        preset: str = typer.Option("llama-3.1-8b", help="Shape to copy: llama-3.1-8b | mistral-7b | gemma-2-9b."),
        tokenizer: str = typer.Option("embedded:smollm2-135m", help="Tokenizer: a source, or a directory with tokenizer.json."),
        layers: int | None = typer.Option(None, "--layers", min=1, help="Fewer layers than the preset (smaller, same widths)."),
        seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED),
        device: str = typer.Option("auto", "--device", help="Where to initialise: auto | cpu | cuda."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ):
        """A randomly initialised model with a real model's shape, for bench score/train (--model DIR) when no weights can be had."""
        from gapscope.bench import random_model
        from gapscope.bench.common import emit

        r = random_model.write(preset, out, tokenizer=tokenizer, seed=seed, layers=layers, device=device)
        emit(r, as_json, random_model.rows(r), "bench random-model")

    @bench_app.command("study")
    def bench_study(
        quick: bool = typer.Option(False, "--quick", help="The quick demo."),
        out: Path | None = typer.Option(None, "--out", help="Keep the demo run here (default: a temp dir)."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ):
        """The demo's wall time and peak memory."""
        from gapscope.bench import study
        from gapscope.bench.common import emit

        r = study.run(quick=quick, out=out)
        emit(r, as_json, study.rows(r), "bench study")
