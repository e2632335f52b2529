"""`gapscope bench score|train|study`: speed and memory, measured side by side in one run."""

from __future__ import annotations

from pathlib import Path

import typer


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("score")
    def bench_score(
        model: str = typer.Option("smollm2", help="smollm2 | gemma3 | a source (HF id, directory, .gguf)."),
        n: int = typer.Option(64, "--n", help="Emails scored."),
        max_length: int = typer.Option(128, "--max-length", help="Email tokens kept."),
        batch_size: int = typer.Option(8, "--batch-size", help="gapscope's scoring batch size (the causal-lm default)."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ):
        """Batched scoring vs a naive per-email loop: tokens/s, ratio, FLOP/s vs the measured matmul peak."""
        from gapscope.bench import score
        from gapscope.bench.common import emit

        r = score.run(model, n=n, max_length=max_length, batch_size=batch_size)
        emit(r, as_json, score.rows(r), "bench score")

    @bench_app.command("train")
    def bench_train(
        model: str = typer.Option("smollm2", help="smollm2 | gemma3 | a source."),
        n: int = typer.Option(64, "--n", help="Training emails."),
        n_eval: int = typer.Option(64, "--n-eval", help="Held-out emails for the accuracy check."),
        epochs: int = typer.Option(2, help="Epochs (both recipes)."),
        batch_size: int = typer.Option(8, "--batch-size"),
        max_length: int = typer.Option(96, "--max-length"),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ):
        """LoRA fine-tuning tokens/s vs a plain transformers Trainer + peft recipe, final losses side by side."""
        from gapscope.bench import train
        from gapscope.bench.common import emit

        r = train.run(model, n_train=n, n_eval=n_eval, epochs=epochs, batch_size=batch_size, max_length=max_length)
        emit(r, as_json, train.rows(r), "bench train")

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
