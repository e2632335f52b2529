"""CLI commands of the diagnosis layer: `explain`, `validate`, `bench attribution`.

gapscope/cli.py registers them on the main app with `register(app)`.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from gapscope import progress
from gapscope.option_rules import MAX_SEED

bench_app = typer.Typer(help="Benchmarks of the diagnosis methods.", no_args_is_help=True)


def explain(
    run: Path = typer.Option(..., "--run", help="A finished run directory."),
    model: str = typer.Option(..., "--model", help="Model name (as in the spec's \\[\\[models]])."),
    cell: str | None = typer.Option(None, "--cell", help="Paradigm of the cell: specialist:<domain>, generalist, "
                                    "lodo:<domain> (or just the domain, where it names one cell: with lodo it "
                                    "names two). Default: the model's only cell, "
                                    "else its generalist."),
    text: str | None = typer.Option(None, "--text", help="The email to explain."),
    file: Path | None = typer.Option(None, "--file", help="Read the email from a file ('-' for stdin)."),
    row: str | None = typer.Option(None, "--id", help="Explain a row of the run by its id."),
    method: str = typer.Option("occlusion", "--method", help="occlusion (fast; for neural kinds split within spans by "
                                "relevance) | relevance (one backward pass, neural kinds) | shap (SHAP Partition, "
                                "reference)."),
    max_evals: int | None = typer.Option(None, "--max-evals", min=1, help="Budget per email. Occlusion: "
                                         "spans (default one per word for tf-idf, 20 for neural kinds, which "
                                         "also keep each span alone: about twice as many evaluations, as the "
                                         "header counts); shap: model evaluations (500)."),
    top: int | None = typer.Option(None, "--top", min=1, help="Top tokens listed each way (default 10; the "
                                   "terminal view only: --json prints every token)."),
    as_json: bool = typer.Option(False, "--json", help="Print {tokens, weights, margin, ...} as JSON."),
):
    """Explain one email: its words colour-coded (red toward phishing, blue toward legitimate) and the top tokens."""
    from gapscope.errors import GapscopeError
    from gapscope.explain import explain as run_explain
    from gapscope.explain import pick, render

    if method not in ("occlusion", "relevance", "shap"):
        raise GapscopeError(f"--method must be occlusion, relevance or shap, got {method!r}")
    if as_json and top is not None:
        raise GapscopeError("--top shapes the terminal view; --json prints every token")
    if max_evals is not None and method == "relevance":
        raise GapscopeError("--max-evals sets occlusion's or SHAP's evaluations; relevance is one backward pass")
    if max_evals is not None and method == "shap" and max_evals < 2:
        raise GapscopeError("--max-evals: SHAP Partition evaluates at least the whole and the empty email (2)")
    study, info = pick(run, model, cell)
    given = [x is not None for x in (text, file, row)]
    if sum(given) != 1:
        raise GapscopeError("give exactly one of --text, --file, --id")
    explained = None
    if file is not None:
        from gapscope.explain import read_email_file

        body, explained = read_email_file(file)  # a mail file as training read mail, not its raw MIME
    elif row is not None:
        rows = study.rows
        if row not in rows:
            raise GapscopeError(f"no row {row!r} in {run}")
        body = rows[row].text
        if any(r.id == row for r in study.train_rows(info)):
            progress.info(f"{row} is one of {info.name}'s training rows: its attribution shows what the cell "
                          "learned from it, not how it reads mail it has not seen")
    else:
        body = text
    if not body.strip():
        raise GapscopeError("the email to explain is empty")
    with progress.step(f"explaining with {method}"):
        att = run_explain(study, info, body, method=method, max_evals=max_evals)
    if as_json:
        from gapscope.visible import json_escaped

        print(json_escaped(json.dumps({"cell": info.name, "threshold": info.threshold,
                                       **({"explained": explained} if explained else {}), **att.to_dict()},
                                      ensure_ascii=False)))
        return
    from rich.console import Console

    render(att, title=f"{info.model} · {info.paradigm}", threshold=float(info.threshold), top=top or 10,
           console=Console(), explained=explained)


def validate(
    models: str = typer.Option("tfidf", "--models", help="Comma-separated: tfidf (seconds), smollm2 (LoRA on "
                               "a small slice; several minutes on a CPU)."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of the synthetic corpora (the planted string changes with it)."),
    checks: str = typer.Option("shortcut,quiet,twin,share,noise,backdoor,drift,internals", "--checks", help="Comma-"
                               "separated subset of shortcut, quiet, twin, share, noise, backdoor, drift, internals "
                               "(twin and share run on tfidf; drift and internals need a causal LM: smollm2)."),
    out: Path | None = typer.Option(None, "--out", help="Keep the corpora and runs here (default: a temp dir)."),
    llm_rows: int | None = typer.Option(None, "--llm-rows", min=10, help="Emails per domain of the smollm2 slice "
                                        "(default 160 for the shortcut checks, 1200 for noise; more is slower "
                                        "and gives the LoRA cell more to learn from)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
):
    """Validate the detectors against planted truth (synthetic corpora): shortcut rank, quiet clean control,
    no shortcut between two random halves of one corpus, no generalization gap where only the phishing share
    differs, label-noise precision and recall, backdoor trigger rank, behaviour drift, internals (attention,
    patching and the label-vs-domain direction on a planted footer). Exit 1 when a check fails."""
    from gapscope.errors import GapscopeError
    from gapscope.validate import CHECKS, validate as run_validate

    names = [c.strip() for c in checks.split(",") if c.strip()]
    bad = [c for c in names if c not in CHECKS]
    if bad:
        from gapscope.suggest import with_hints

        raise GapscopeError(f"unknown check(s) {with_hints(bad, CHECKS)} (known: {', '.join(CHECKS)})")
    model_names = [m.strip() for m in models.split(",") if m.strip()]
    if not model_names or not names:
        raise GapscopeError("--models and --checks each need at least one name: nothing would be checked")
    if llm_rows is not None and "smollm2" not in model_names:
        raise GapscopeError("--llm-rows sizes the smollm2 slice, and --models does not include smollm2")
    results = run_validate(model_names, seed=seed, out=out, checks=names,
                           sizes={"smollm2": llm_rows} if llm_rows else None)
    if not results:
        raise GapscopeError(f"no check of {', '.join(names)} applies to {', '.join(model_names)} "
                            "(drift and internals need a causal LM: --models smollm2)")
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"gapscope validate (seed {seed})")
        for c in ("check", "model", "result", "evidence"):
            t.add_column(c, overflow="fold")
        for r in results:
            t.add_row(r.check, r.model, "[green]pass[/green]" if r.passed else "[red]FAIL[/red]", progress.plain(r.detail))
        Console().print(t)
    if not all(r.passed for r in results):
        raise typer.Exit(1)


@bench_app.command("attribution")
def bench_attribution(
    model: str = typer.Option("tfidf", "--model", help="tfidf | smollm2 (zero-shot base model margin unless --fit)."),
    n: int | None = typer.Option(None, "--n", min=1, help="Emails (default 10 for tfidf, 3 for smollm2)."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED),
    shap_evals: int = typer.Option(500, "--shap-evals", min=2, help="SHAP Partition evaluations per email."),
    occlusion_evals: int | None = typer.Option(None, "--occlusion-evals", min=1, help="Occlusion budget per email "
                                               "(default: every word for tf-idf, 20 spans for neural kinds)."),
    fit: int = typer.Option(0, "--fit", min=0, help="smollm2 only: fine-tune a LoRA adapter on this many emails first."),
    run: Path | None = typer.Option(None, "--run", help="Use a fitted cell of this finished run instead "
                                    "(--model is then the model name in its spec)."),
    cell: str | None = typer.Option(None, "--cell", help="With --run: the cell's paradigm."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
):
    """SHAP Partition (reference) vs occlusion (fast) on the same model and emails: time ratio and faithfulness."""
    from gapscope.bench.attribution import bench, print_table
    from gapscope.errors import GapscopeError

    if fit and (run is not None or model != "smollm2"):
        raise GapscopeError("--fit fine-tunes the embedded smollm2 (--model smollm2, without --run)")
    if cell is not None and run is None:
        raise GapscopeError("--cell picks a cell of --run RUN")

    res = bench(model, n, seed=seed, shap_evals=shap_evals, occlusion_evals=occlusion_evals, fit=fit,
                run=run, cell=cell)
    if as_json:
        print(json.dumps(res, indent=2))
    else:
        from rich.console import Console

        print_table(res, Console())


def register(app: typer.Typer) -> None:
    """Add `explain`, `validate` and `bench attribution` to the main gapscope app."""
    app.command("explain")(explain)
    app.command("validate")(validate)
    app.add_typer(bench_app, name="bench")
