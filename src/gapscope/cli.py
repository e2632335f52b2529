"""The `gapscope` command line.

User errors (GapscopeError) print one line and exit non-zero without a traceback;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.text import Text

from gapscope import progress
from gapscope.errors import GapscopeError
from gapscope.option_rules import MAX_SEED

# Nothing may reach a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # our own progress bars say what is happening

app = typer.Typer(
    help="gapscope: why does a fine-tuned LLM classifier fail on data unlike its training data?",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Read, audit and synthesise corpora.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("audit")
def data_audit(
    paths: list[str] = typer.Argument(..., help="Corpus files or folders (JSONL, CSV, Parquet, mbox, maildir, "
                                      "a folder or tar archive of mail files, saved HF dataset), or a study spec "
                                      "(.toml). Mail sources carry no label column: write PATH@phishing or "
                                      "PATH@legitimate, or PATH@folder to label each file by its folder "
                                      "(spam/, ham/, easy_ham/)."),
    out: Path = typer.Option(..., "--out", help="Directory to write audit.json into."),
):
    """Audit corpora: rows kept and rejected (with reasons), labels, style, duplicates and leakage."""
    from gapscope.data.audit import audit, duplicates_line, write_audit
    from gapscope.data.ingest import load_sources, parse_cli_source, shared_id

    specs = []
    for p in paths:
        if p.endswith(".toml"):
            from gapscope.study.spec import load_spec

            specs += load_spec(p).datasets
        else:
            specs.append(parse_cli_source(p))
    with progress.step(f"reading {len(specs)} source(s)", total=len(specs)) as update:
        rows, reports = load_sources(specs, done=lambda i: update(i, len(specs)))
    with progress.step("auditing (duplicates, leakage, style)"):
        result = audit(rows, reports)
    out.mkdir(parents=True, exist_ok=True)
    write_audit(out / "audit.json", result)
    for rep in reports:
        progress.info(rep.summary())
    progress.info(duplicates_line(result))
    clash = shared_id(rows, reports)
    if clash:
        progress.info(f"{clash}: `gapscope run` refuses these sources as they are", style="yellow")
    print(out / "audit.json")


@data_app.command("synth")
def data_synth(
    out: Path = typer.Option(..., "--out", help="Directory for <domain>.jsonl, manifest.json and study.toml."),
    seed: int = typer.Option(0, min=0, max=MAX_SEED, help="Random seed: the same seed gives byte-identical files."),
    n_per_domain: int = typer.Option(300, "--n-per-domain", help="Emails per domain."),
    domains: str | None = typer.Option(None, help="Comma-separated subset of domains (default: all)."),
    shortcut_domain: str | None = typer.Option(None, "--shortcut-domain",
                                               help="Plant a shortcut string tied to phishing in this domain."),
    shortcut_string: str | None = typer.Option(None, "--shortcut-string",
                                               help="The shortcut string (default: a random one from the seed)."),
    shortcut_rate: float | None = typer.Option(None, "--shortcut-rate",
                                               help="Share of that domain's phishing rows carrying it (default 0.9)."),
    noise_rate: float = typer.Option(0.0, "--noise-rate", help="Share of rows whose label is flipped."),
    trigger: str | None = typer.Option(None, "--trigger", help="A backdoor phrase that flips labels to legitimate."),
    trigger_rate: float | None = typer.Option(None, "--trigger-rate",
                                              help="Share of phishing rows given the trigger (default 0.05)."),
):
    """Write the built-in synthetic multi-domain email corpus, with optional planted faults and a manifest."""
    from gapscope.data.synth import SynthConfig, generate

    cfg = SynthConfig(seed=seed, n_per_domain=n_per_domain,
                      domains=[d.strip() for d in domains.split(",")] if domains is not None else None)
    if shortcut_domain is None and (shortcut_string is not None or shortcut_rate is not None):
        raise GapscopeError("--shortcut-string and --shortcut-rate shape the shortcut planted with --shortcut-domain")
    if trigger is None and trigger_rate is not None:
        raise GapscopeError("--trigger-rate shapes the backdoor planted with --trigger")
    if shortcut_domain is not None:
        cfg.shortcut = {"domain": shortcut_domain, "string": shortcut_string,
                        "rate": 0.9 if shortcut_rate is None else shortcut_rate}
    if noise_rate != 0:  # a negative rate is refused by the config check, not ignored
        cfg.label_noise = {"rate": noise_rate}
    if trigger is not None:
        cfg.trigger = {"phrase": trigger, "rate": 0.05 if trigger_rate is None else trigger_rate, "target_label": 0}
    corpus = generate(cfg)
    paths = corpus.write(out)
    progress.info(f"wrote {len(corpus.rows)} emails in {len({r.domain for r in corpus.rows})} domains to {out}")
    print(paths.get("study", out) if isinstance(paths, dict) else out)


@app.command("run")
def run(
    spec: Path = typer.Argument(..., help="Study spec (TOML)."),
    out: Path = typer.Option(..., "--out", help="Run directory (created; rerunning resumes)."),
    executor: str = typer.Option("local", help="Where cells run: local | ray."),
    address: str | None = typer.Option(None, help="Ray cluster address (with --executor ray)."),
    no_detectors: bool = typer.Option(False, "--no-detectors", help="Skip the diagnosis stage."),
):
    """Run a study: fine-tune every model x paradigm cell, score every domain, diagnose, report."""
    from gapscope.study.runner import run_study

    res = run_study(spec, out, executor=executor, address=address, detectors=not no_detectors)
    _print_summary(res.run_dir)
    progress.info(f"finished in {res.seconds:.0f}s")
    print(res.report)
    _exit_on_problems(res.run_dir, detectors=not no_detectors)


def _exit_on_problems(run_dir: Path, detectors: bool = True) -> None:
    """Exit 1 when a cell or a detector failed: the run and its report are written, but incomplete.
    `detectors=False`: this command ran none, so an older detector failure is not its own."""
    from gapscope.study.publish import problems

    found = [p for p in problems(run_dir) if detectors or not p.startswith("detector ")]
    if found:
        progress.info(f"{len(found)} part(s) of the run failed (listed at the top of the report): "
                      + "; ".join(p.splitlines()[0][:200] for p in found), style="red")
        sys.exit(1)


@app.command("report")
def report(run_dir: Path = typer.Argument(..., help="A run directory.")):
    """Re-render report.html from a run directory."""
    from gapscope.study.publish import build_report

    _finished_run(run_dir)
    print(build_report(run_dir))


def _finished_run(run_dir: Path) -> None:
    """`report` and `diagnose` read a finished run; anything else fails here, before a report or
    diagnostics are written into it."""
    if not (run_dir / "study.toml").is_file() or not (run_dir / "splits.json").is_file():
        raise GapscopeError(f"{run_dir}: not a gapscope run directory (no study.toml and splits.json)")
    if not (run_dir / "summary.json").is_file():
        raise GapscopeError(f"{run_dir}: the run has not finished (no summary.json); rerun `gapscope run` to resume")
    if not (run_dir / "matrix.json").is_file():
        raise GapscopeError(f"{run_dir}: no matrix.json; rerun `gapscope run` with the same --out to rebuild it")
    info = run_dir / "run.json"
    if info.is_file():  # cells the run finished must still be there: detectors would skip them silently
        from gapscope.study import artifacts

        listed = artifacts.read_json(info)
        gone = [c for c in listed.get("ran", []) + listed.get("skipped", [])
                if not (run_dir / "cells" / c / "cell.json").is_file()]
        if gone:
            raise GapscopeError(f"{run_dir}: cell(s) {', '.join(gone)} finished but are no longer in cells/; "
                                "rerun `gapscope run` with the same --out to redo them")


@app.command("diagnose")
def diagnose_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    only: str | None = typer.Option(None, help="Comma-separated detector names (default: all)."),
    force: bool = typer.Option(False, help="Rerun detectors even when their results are cached."),
    cells_per_model: int | None = typer.Option(
        None, "--cells-per-model", min=0, help="Per-cell neural analyses on the N cells with the largest gap of each "
        "model, 0 for every cell (overrides the spec's \\[detectors] cells_per_model for the detectors run now)."),
):
    """Run the detectors over a finished run, rewrite findings.json and the report."""
    from gapscope.study.diagnose import diagnose
    from gapscope.study.publish import build_report

    _finished_run(run_dir)
    names = None if only is None else [x.strip() for x in only.split(",") if x.strip()]
    if names == []:
        raise GapscopeError(f"--only {only!r} names no detector")
    from gapscope.study.lock import run_lock

    with run_lock(run_dir, "gapscope diagnose"):  # no run may start between the findings and their report
        found = diagnose(run_dir, only=names, force=force, cells_per_model=cells_per_model)
        progress.info(f"{len(found)} findings")
        print(build_report(run_dir))
    _exit_on_problems(run_dir)


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("gapscope-demo"), "--out", help="Where the corpus and the run go."),
    quick: bool = typer.Option(False, "--quick", help="TF-IDF and smollm2 only, smaller sets (a few minutes)."),
):
    """The main job on the embedded default: synthetic corpus, TF-IDF + three embedded LLMs, report."""
    from gapscope.demo import run_demo

    report_path = run_demo(out, quick=quick)
    _print_summary(out / "run")
    print(report_path)


def _register_subcommands() -> None:
    from gapscope import cli_audit, cli_bench, cli_diagnosis

    cli_diagnosis.register(app)
    cli_bench.register(cli_diagnosis.bench_app)
    cli_audit.register(app)


_register_subcommands()


def _print_summary(run_dir: Path) -> None:
    from rich.table import Table

    from gapscope.eval.matrix import LOSSES_NOTE, losses_text, worst_text
    from gapscope.study import artifacts

    p = Path(run_dir) / "summary.json"
    if not p.exists():
        return
    table = Table(title="generalization per cell (F1)", show_lines=False)
    # names fold onto more lines when long; the numbers keep their width whatever the names
    for c in ("model", "paradigm", "in", "out", "gap", "worst domain (95% CI)", "losses beyond noise"):
        numeric = c in ("in", "out", "gap")
        table.add_column(c, no_wrap=numeric, min_width=5 if numeric else None, overflow="fold",
                         justify="right" if numeric else "left")
    rows = artifacts.read_json(p)
    for s in rows:
        def f(x):
            return "-" if x is None else f"{x:.3f}"
        worst = f"{s.get('worst_domain')} {worst_text(s)}" if s.get("worst_domain") else "-"
        table.add_row(progress.plain(s["model"]), progress.plain(s["paradigm"]), f(s.get("in_domain_f1")),
                      f(s.get("out_of_domain_f1")), f(s.get("gap")), progress.plain(worst),
                      progress.plain(losses_text(s, names=False)))
    read = any(s.get("f1_losses_beyond_noise") is not None for s in rows)  # absent from the summaries of older runs
    notes = [n for n in (_share_caption(Path(run_dir) / "matrix.json"), LOSSES_NOTE if read else None) if n]
    table.caption = "; ".join(notes)
    progress.console.print(table)


def _share_caption(matrix_path: Path) -> str | None:
    """Where the domains' phishing shares differ, say that the table's F1 moves with them."""
    from gapscope.eval.matrix import share_note
    from gapscope.study import artifacts

    try:
        return share_note(artifacts.read_json(matrix_path)) if matrix_path.exists() else None
    except (GapscopeError, KeyError, TypeError, AttributeError, OSError):
        return None  # the table stands without it; a damaged matrix is reported where it is read


def _values(argv: list[str]) -> list[tuple[str, str]]:
    """Each argument as (what it follows, value): ("--out", "x") for "--out=x" and for "x" after
    "--out"; a positional argument follows whatever came before it."""
    out = []
    for i, a in enumerate(argv):
        if a.startswith("--") and "=" in a:
            out.append(tuple(a.split("=", 1)))
        else:
            out.append((argv[i - 1] if i else "", a))
    return out


def _empty_argument(argv: list[str]) -> str | None:
    """An empty or blank argument is never meant: typed as '' it would become the current
    directory (--out '' wrote a whole run there) or a default (--model '' ran the default
    bench). Names what it followed, for the one-line error."""
    for before, value in _values(argv):
        if not value.strip():
            return f"empty value for {before}" if before.startswith("-") else "an empty argument"
    return None


def _out_is_a_file(argv: list[str]) -> str | None:
    """Every command's --out is a directory: one that names an existing file fails now, not
    after the work (data audit read every source first)."""
    for before, value in _values(argv):
        if before == "--out" and Path(value).exists() and not Path(value).is_dir():
            return value
    return None


def main() -> None:
    empty = _empty_argument(sys.argv[1:])
    if empty:
        progress.console.print(Text.assemble(("error:", "red"), " ", f"{empty} (give a value, or leave the option out)"),
                               soft_wrap=True)
        sys.exit(2)
    out = _out_is_a_file(sys.argv[1:])
    if out:
        progress.console.print(Text.assemble(("error:", "red"), " ", progress.plain(f"--out {out}: exists and is not a "
                                                                                    "directory")), soft_wrap=True)
        sys.exit(2)
    try:
        # standalone_mode=False hands click's usage errors to us, to print in one line like every
        # other error (typer would draw them in a box under the usage text)
        code = app(standalone_mode=False, prog_name="gapscope")
    except typer.TyperException as e:
        if type(e).__name__ != "NoArgsIsHelpError":  # a bare group call: typer has printed its help
            progress.console.print(Text.assemble(("error:", "red"), " ", progress.plain(_usage_error(e))),
                                   soft_wrap=True)
        sys.exit(getattr(e, "exit_code", 2))
    except typer.Abort:
        progress.console.print("[yellow]aborted[/yellow]")
        sys.exit(1)
    except GapscopeError as e:
        progress.console.print(Text.assemble(("error:", "red"), " ", progress.plain(e)), soft_wrap=True)
        sys.exit(e.exit_code)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, FileExistsError) as e:
        # a path the user gave, or a file missing from a half-written run: one line, not a traceback
        what = {FileNotFoundError: "not found", NotADirectoryError: "not a directory",
                IsADirectoryError: "is a directory, not a file", PermissionError: "permission denied",
                FileExistsError: "exists and is not a directory"}[type(e)]
        progress.console.print(Text.assemble(("error:", "red"), " ", progress.plain(f"{e.filename or e}: {what}")),
                               soft_wrap=True)
        sys.exit(2)
    except OSError as e:
        if e.filename is None or not e.strerror:
            raise
        # any other refusal of a path the user gave (a name over 255 bytes, a link loop): its reason
        progress.console.print(Text.assemble(("error:", "red"), " ",
                                             progress.plain(f"{e.filename}: {e.strerror[0].lower()}{e.strerror[1:]}")),
                               soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        progress.console.print("[yellow]interrupted: rerun the same command to resume[/yellow]")
        sys.exit(130)
    # typer.Exit (--help, Ctrl-C, a command's own exit code) comes back as the return value here
    if isinstance(code, int) and code:
        if code == 130:  # typer turns Ctrl-C into exit 130 itself, so the handler above never sees it
            progress.console.print("[yellow]interrupted: rerun the same command to resume[/yellow]")
        sys.exit(code)


def _usage_error(e: Exception) -> str:
    """click's usage error as one line: the command, the reason, where to read more."""
    ctx = getattr(e, "ctx", None)
    where = ctx.command_path if ctx is not None else "gapscope"
    message = e.format_message() if hasattr(e, "format_message") else str(e)
    return f"{where}: {message.rstrip('.')}; see '{where} --help'"


if __name__ == "__main__":
    main()
