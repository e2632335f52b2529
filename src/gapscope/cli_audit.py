"""Command-line audits of fine-tuned models: `gapscope drift` and `gapscope backdoor-scan`.

`register(app)` adds both commands to the main Typer app (gapscope.cli). User errors are
raised as GapscopeError (one line, non-zero exit).
"""

from __future__ import annotations

from pathlib import Path

import typer

from gapscope import progress
from gapscope.errors import GapscopeError


def drift(
    tuned: str = typer.Option(..., "--tuned", help="The fine-tuned model: RUN/cells/CELL, a PEFT adapter directory "
                              "(over --base), or a Hugging Face model directory."),
    base: str | None = typer.Option(None, "--base", help="The base model: a source such as embedded:smollm2-135m, a "
                                    "directory or a Hugging Face id (default: the base recorded in the cell or adapter)."),
    probes: list[Path] = typer.Option([], "--probes", help="Extra probe-set TOML files (repeatable); a file whose "
                                      "family exists extends it."),
    family: list[str] = typer.Option([], "--family", help="Only these probe families (repeatable)."),
    judge: str | None = typer.Option(None, "--judge", help="A local causal LM that judges whether greedy answers match "
                                     "the reference answers (off by default)."),
    k_greedy: int = typer.Option(4, "--k", help="Greedy tokens compared per probe."),
    max_probes: int | None = typer.Option(None, "--max-probes", help="At most this many probes per family."),
    bootstrap: int = typer.Option(2000, "--bootstrap", help="Bootstrap resamples for the CIs."),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "--out", help="Write drift.json, findings.json and section.json here."),
):
    """What else did fine-tuning change? Compare a fine-tuned causal LM with its base on probe sets unrelated
    to the task (time period, general knowledge, values, persona): next-token KL, log-prob shift of paired
    answers, greedy-answer change rate, with bootstrap CIs over probes."""
    from gapscope.drift.audit import DriftOptions, drift_audit
    from gapscope.drift.judge import Judge
    from gapscope.drift.lm import infer_base, load_hf, load_lm
    from gapscope.drift.probes import load_probe_sets
    from gapscope.drift.report import drift_findings, section
    from gapscope.study import artifacts

    base = base or infer_base(tuned)
    if not base:
        raise GapscopeError(f"--base is needed: {tuned} records no base model")
    families = load_probe_sets(list(probes), families=list(family) or None)
    opts = DriftOptions(k_greedy=k_greedy, max_probes_per_family=max_probes, n_bootstrap=bootstrap, seed=seed)
    with progress.step(f"loading {base} and {tuned}"):
        base_lm = load_hf(base, what="base model")
        tuned_lm = load_lm(tuned, base=base)
    j = None
    try:
        if judge:
            j = Judge.from_source(judge)
        with progress.step(f"running {sum(len(f.probes) for f in families)} probes through both models"):
            rep = drift_audit(base_lm, tuned_lm, families, opts, judge=j)
    finally:
        tuned_lm.close()
        base_lm.close()
        if j is not None:
            j.close()
    d = rep.to_dict()
    found = drift_findings(d)
    _print_drift(d)
    for f in found:
        progress.info(f"[bold]{f.severity}[/bold] {f.title}")
    if not found:
        progress.info("no significant drift on any probe family")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        artifacts.write_json(out / "drift.json", d)
        artifacts.write_json(out / "findings.json", [f.to_dict() for f in found])
        artifacts.write_json(out / "section.json", section([d]))
        print(out / "drift.json")


def _print_drift(d: dict) -> None:
    from rich.table import Table

    from gapscope.drift.audit import MEASURE_TITLES

    measures = [m for m in MEASURE_TITLES if any(m in f["measures"] for f in d["families"])]
    table = Table(title=f"drift: {d['tuned']} vs {d['base']} (mean [95% CI]; * significant)")
    table.add_column("family")
    table.add_column("probes", justify="right")
    for m in measures:
        table.add_column(m, no_wrap=True)
    for f in d["families"]:
        cells = []
        for m in measures:
            s = f["measures"].get(m)
            cells.append("-" if not s or s["mean"] is None else
                         f"{s['mean']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]{' *' if s['significant'] else ''}")
        table.add_row(f["family"], str(f["n_probes"]), *cells)
    progress.console.print(table)


def backdoor_scan(
    run: Path = typer.Option(..., "--run", help="A finished run directory."),
    cell: list[str] = typer.Option([], "--cell", help="Cell(s) to scan, by directory name (default: every cell)."),
    trigger: list[str] = typer.Option([], "--trigger", help="A candidate trigger string of your own (repeatable)."),
    n_emails: int = typer.Option(32, "--n-emails", help="Held-out emails per direction (bounds the cost)."),
    n_null: int = typer.Option(10, "--n-null", help="Random rare-word insertions per word count (the null)."),
    min_shift: float = typer.Option(1.0, "--min-shift", help="Smallest mean margin shift that can count."),
    mine: bool = typer.Option(True, "--mine/--no-mine", help="Mine label-tied rare n-grams from the training rows."),
    families: bool = typer.Option(True, "--families/--no-families",
                                  help="Test structured families (years, tags, dates, codes), incl. unseen values."),
    min_contradiction: float = typer.Option(0.5, "--min-contradiction",
                                            help="Mined strings must sit in rows whose content reads as the other "
                                                 "label at least this often (0 = no filter)."),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "--out", help="Where to write scan.json, findings.json and section.json "
                                    "(default RUN/diagnostics/backdoor-scan)."),
):
    """Scan fitted cells for backdoor triggers: margin change when a candidate string is inserted into held-out
    emails, against random rare-word insertions of the same length, ranked with bootstrap CIs."""
    from gapscope.backdoor.candidates import MiningOptions
    from gapscope.backdoor.report import backdoor_findings, section
    from gapscope.backdoor.scan import ScanOptions
    from gapscope.detectors.backdoor import scan_cell
    from gapscope.study import artifacts
    from gapscope.study.context import Study

    study = Study(run)
    cells = study.cells
    if cell:
        known = {c.name for c in cells}
        missing = [c for c in cell if c not in known]
        if missing:
            raise GapscopeError(f"no cell {', '.join(missing)} in {run} (cells: {', '.join(sorted(known))})")
        cells = [c for c in cells if c.name in cell]
    if not cells:
        raise GapscopeError(f"{run}: no finished cells to scan")
    opts = ScanOptions(n_emails=n_emails, n_null=n_null, min_shift=min_shift, mine=mine, families=families, seed=seed,
                       mining=MiningOptions(min_contradiction=min_contradiction))
    scans, found = [], []
    for c in cells:
        with progress.step(f"scanning {c.name}"):
            res = scan_cell(study, c, trigger, opts)
        d = res.to_dict()
        d["cell"] = c.name
        scans.append(d)
        found += backdoor_findings(d, who=f"{c.model} ({c.paradigm})", model=c.model, domains=c.train_domains)
        _print_scan(c.name, d)
    for f in found:
        progress.info(f"[bold]{f.severity}[/bold] {f.title}")
    if not found:
        progress.info("no significant trigger")
    out = out or Path(run) / "diagnostics" / "backdoor-scan"
    out.mkdir(parents=True, exist_ok=True)
    artifacts.write_json(out / "scan.json", scans)
    artifacts.write_json(out / "findings.json", [f.to_dict() for f in found])
    artifacts.write_json(out / "section.json", section([(s["cell"], s) for s in scans],
                                                       title="Backdoor scan (command line)", sid="backdoor-scan"))
    print(out / "scan.json")


def _print_scan(name: str, d: dict, top: int = 10) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"backdoor scan: {name} (z critical {d['z_crit']:.2f})")
    for col in ("#", "string", "source", "toward", "shift [95% CI]", "flips", "null", "z", "sig"):
        table.add_column(col, no_wrap=col != "string")
    for r in d["results"][:top]:
        table.add_row(str(r["rank"]), escape(r["text"]), r["origin"] + ("*" if r["inductive"] else ""),
                      "phishing" if r["target"] == 1 else "legitimate",
                      f"{r['mean_shift']:+.2f} [{r['shift_ci'][0]:+.2f}, {r['shift_ci'][1]:+.2f}]",
                      "-" if r["flip_rate"] is None else f"{r['flip_rate']:.0%}",
                      f"{r['null_mean']:+.2f}±{r['null_sd']:.2f}", f"{r['z']:.1f}", "yes" if r["significant"] else "")
    progress.console.print(table)


def register(app: typer.Typer) -> None:
    """Add `drift` and `backdoor-scan` to the gapscope command line."""
    app.command("drift")(drift)
    app.command("backdoor-scan")(backdoor_scan)
