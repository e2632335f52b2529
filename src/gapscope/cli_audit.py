"""Command-line audits of fine-tuned models: `gapscope drift` and `gapscope backdoor-scan`.

`register(app)` adds both commands to the main Typer app (gapscope.cli). User errors are
raised as GapscopeError (one line, non-zero exit).
"""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.text import Text

from gapscope import progress
from gapscope.errors import GapscopeError
from gapscope.option_rules import MAX_SEED


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
    k_greedy: int = typer.Option(4, "--k", min=1, help="Greedy tokens compared per probe."),
    max_probes: int | None = typer.Option(None, "--max-probes", min=1, help="At most this many probes per family."),
    bootstrap: int = typer.Option(2000, "--bootstrap", min=40, help="Bootstrap resamples for the CIs."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED),
    out: Path | None = typer.Option(None, "--out", help="Write drift.json, findings.json and section.json here."),
):
    """What else did fine-tuning change? Compare a fine-tuned causal LM with its base on probe sets unrelated
    to the task (time period, general knowledge, values, persona): next-token KL, log-prob shift of paired
    answers, greedy-answer change rate, with bootstrap CIs over probes."""
    from gapscope.drift.audit import DriftOptions, drift_audit
    from gapscope.drift.judge import Judge
    from gapscope.drift.lm import check_tuned, infer_base, load_hf, load_lm
    from gapscope.drift.probes import load_probe_sets
    from gapscope.drift.report import drift_findings, section
    from gapscope.study import artifacts

    opts = DriftOptions(k_greedy=k_greedy, max_probes_per_family=max_probes, n_bootstrap=bootstrap, seed=seed)
    if not Path(tuned).expanduser().exists():
        raise GapscopeError(f"{tuned}: not found (--tuned takes RUN/cells/CELL, an adapter directory or a model "
                            "directory)")
    check_tuned(tuned)
    base = base or infer_base(tuned)
    if not base:
        raise GapscopeError(f"--base is needed: {tuned} records no base model")
    families = load_probe_sets(list(probes), families=list(family) or None)
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
        progress.info(Text.assemble((f.severity, "bold"), " ", progress.plain(f.title)))
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
    table = Table(title=progress.plain(f"drift: {d['tuned']} vs {d['base']} (mean [95% CI]; * significant)"))
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
        table.add_row(progress.plain(f["family"]), str(f["n_probes"]), *cells)
    progress.console.print(table)


def backdoor_scan(
    run: Path | None = typer.Option(None, "--run", help="A finished run directory: scan its cells."),
    tuned: str | None = typer.Option(None, "--tuned", help="Or a fine-tuned model of your own: a PEFT LoRA adapter "
                                     "directory, a Hugging Face model directory, or RUN/cells/CELL. Read as a classifier "
                                     "through gapscope's prompt (margin = logit ' phishing' - logit ' legitimate')."),
    base: str | None = typer.Option(None, "--base", help="With --tuned: its base model (default: the base its adapter "
                                    "or cell records); also scanned on the strings the tuned model reacts to."),
    data: list[str] = typer.Option([], "--data", help="With --tuned: corpus file(s) (JSONL, CSV, Parquet, mbox...; "
                                   "PATH@phishing for mail sources), mined for candidates and the emails "
                                   "triggers are inserted into (repeatable)."),
    cell: list[str] = typer.Option([], "--cell", help="Cell(s) to scan, by directory name (default: every cell)."),
    trigger: list[str] = typer.Option([], "--trigger", help="A candidate trigger string of your own (repeatable)."),
    n_emails: int = typer.Option(32, "--n-emails", min=2, help="Held-out emails per direction (bounds the cost)."),
    n_null: int = typer.Option(10, "--n-null", min=2, help="Random rare-word insertions per word count (the null)."),
    min_relative_shift: float | None = typer.Option(None, "--min-relative-shift",
                                                    help="Smallest mean margin shift that can count, as a share of the "
                                                         "median distance of the emails' margins from the threshold "
                                                         "(default 0.25)."),
    min_shift: float | None = typer.Option(None, "--min-shift", help="The same bar in margin units (replaces "
                                           "--min-relative-shift)."),
    mine: bool = typer.Option(True, "--mine/--no-mine", help="Mine label-tied rare n-grams from the training rows."),
    families: bool = typer.Option(True, "--families/--no-families",
                                  help="Test structured families (years, tags, dates, codes), incl. unseen values."),
    min_contradiction: float = typer.Option(0.5, "--min-contradiction",
                                            help="Mined strings must sit in rows whose content reads as the other "
                                                 "label at least this often (0 = no filter)."),
    threshold: float | None = typer.Option(None, "--threshold", help="With --tuned: the margin above which an email "
                                           "counts as phishing (for flip rates; default 0)."),
    max_length: int | None = typer.Option(None, "--max-length", min=1, help="With --tuned: email tokens the model "
                                          "reads (default 128)."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED),
    out: Path | None = typer.Option(None, "--out", help="Where to write scan.json, findings.json and section.json "
                                    "(default RUN/diagnostics/backdoor-scan, also for --tuned RUN/cells/CELL; "
                                    "./backdoor-scan for a model of your own)."),
):
    """Scan fine-tuned models for backdoor triggers: margin change when a candidate string is inserted into
    emails, against random rare-word insertions of the same length, ranked with bootstrap CIs. Scans the cells
    of a run (--run) or a model of your own (--tuned with --data, optionally --base)."""
    from gapscope.backdoor.candidates import MiningOptions
    from gapscope.backdoor.pair import run_cell
    from gapscope.backdoor.scan import ScanOptions

    if run is not None and tuned is not None:
        raise GapscopeError("give --run RUN or --tuned MODEL, not both (--tuned RUN/cells/CELL scans one cell of a run)")
    if run is None and tuned is None:
        raise GapscopeError("give --run RUN (the cells of a gapscope run) or --tuned MODEL --data FILE (a model of "
                            "your own)")
    if min_shift is not None and min_relative_shift is not None:
        raise GapscopeError("--min-shift replaces --min-relative-shift: give one of them")
    if not mine and not families and not trigger:
        raise GapscopeError("--no-mine and --no-families leave nothing to test: give --trigger STRING")
    if min_relative_shift is None:
        min_relative_shift = ScanOptions.min_relative_shift
    opts = ScanOptions(n_emails=n_emails, n_null=n_null, min_shift=min_shift, min_relative_shift=min_relative_shift,
                       mine=mine, families=families, seed=seed,
                       mining=MiningOptions(min_contradiction=min_contradiction))
    if threshold is not None and not math.isfinite(threshold):
        raise GapscopeError(f"--threshold must be a finite margin, got {threshold}")
    pair_only = [o for o, v in (("--base", base), ("--data", data), ("--threshold", threshold),
                                ("--max-length", max_length)) if v not in (None, [])]
    if tuned is not None:
        in_run = run_cell(Path(tuned).expanduser())
        # --cell picks cells of --run; with --tuned it was dropped or overwritten without a word
        if cell and (in_run is None or any(c != in_run[1] for c in cell)):
            raise GapscopeError(f"--cell applies to --run RUN: --tuned {tuned} already names "
                                + (f"the cell {in_run[1]}" if in_run else "the model to scan"))
        if in_run is None:
            if not Path(tuned).expanduser().exists():
                raise GapscopeError(f"{tuned}: not found (--tuned takes an adapter or model directory, or RUN/cells/CELL)")
            _scan_pair(tuned, base, data, trigger, opts, 0.0 if threshold is None else threshold,
                       128 if max_length is None else max_length, out)
            return
        run, cell = in_run[0], [in_run[1]]
    if pair_only:  # a run's cells carry their own base, data, threshold and length
        what = f"the cell {tuned}, which carries its own" if tuned is not None else "the cells of a run, which carry their own"
        raise GapscopeError(f"{', '.join(pair_only)} appl{'y' if len(pair_only) > 1 else 'ies'} to --tuned MODEL "
                            f"(a model of your own), not to {what} base, data, threshold and length")
    from gapscope.study.lock import run_lock

    with run_lock(Path(run), "gapscope backdoor-scan"):  # a run retraining these cells meanwhile would mix them
        _scan_run(run, cell, trigger, opts, out)


def _scan_run(run: Path, cell: list[str], trigger: list[str], opts, out: Path | None) -> None:
    from gapscope.backdoor.report import backdoor_findings
    from gapscope.detectors.backdoor import scan_cell
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
    scans, found, mined = [], [], {}
    for c in cells:
        with progress.step(f"scanning {c.name}"):
            res = scan_cell(study, c, trigger, opts, mined)
        d = res.to_dict()
        d["cell"] = c.name
        scans.append(d)
        found += backdoor_findings(d, who=f"{c.model} ({c.paradigm})", model=c.model, domains=c.train_domains)
        _print_scan(c.name, d)
    _write_scans(scans, found, out or Path(run) / "diagnostics" / "backdoor-scan")


def _scan_pair(tuned: str, base: str | None, data: list[str], trigger: list[str], opts, threshold: float,
               max_length: int, out: Path | None) -> None:
    from gapscope.backdoor.pair import base_effects, load_base, load_tuned
    from gapscope.backdoor.report import backdoor_findings
    from gapscope.backdoor.scan import scan
    from gapscope.drift.lm import infer_base

    if not data:
        raise GapscopeError("--tuned needs --data FILE: the rows to mine candidates from and insert them into")
    rows = _read_rows(data)
    if len({r.label for r in rows}) < 2:
        raise GapscopeError(f"{', '.join(data)}: the scan needs emails of both labels (found only "
                            f"{'phishing' if rows[0].label == 1 else 'legitimate'})")
    base = base or infer_base(tuned)
    name = Path(tuned).name or str(tuned)
    with progress.step(f"loading {tuned}" + (f" over {base}" if base else "")):
        model = load_tuned(tuned, base, max_length)
    try:
        with progress.step(f"scanning {name} on {len(rows)} rows"):
            d = scan(model, threshold=threshold, train_rows=rows, heldout_rows=rows, triggers=trigger,
                     opts=opts).to_dict()
    finally:
        model.close()
    d["cell"] = name
    if base:
        with progress.step(f"measuring the base model {base} on the strings {name} reacts to"):
            bm = load_base(base, max_length)
            try:
                base_effects(bm, d, train_rows=rows, heldout_rows=rows, opts=opts)
            finally:
                bm.close()
    found = backdoor_findings(d, who=name, model=name, domains=sorted({r.domain for r in rows}))
    _print_scan(name, d)
    _write_scans([d], found, out or Path("backdoor-scan"))


def _read_rows(paths: list[str]) -> list:
    from gapscope.data.ingest import load_source, parse_cli_source

    rows = []
    for p in paths:
        r, rep = load_source(parse_cli_source(p))
        progress.info(rep.summary())
        rows += r
    if not rows:
        raise GapscopeError(f"{', '.join(paths)}: no usable rows")
    return rows


def _write_scans(scans: list[dict], found: list, out: Path) -> None:
    from gapscope.backdoor.report import section
    from gapscope.study import artifacts

    for f in found:
        progress.info(Text.assemble((f.severity, "bold"), " ", progress.plain(f.title)))
    if not found:
        progress.info("no significant trigger")
    out.mkdir(parents=True, exist_ok=True)
    artifacts.write_json(out / "scan.json", scans)
    artifacts.write_json(out / "findings.json", [f.to_dict() for f in found])
    artifacts.write_json(out / "section.json", section([(s["cell"], s) for s in scans],
                                                       title="Backdoor scan (command line)", sid="backdoor-scan"))
    print(out / "scan.json")


def _print_scan(name: str, d: dict, top: int = 10) -> None:
    from rich import box
    from rich.table import Table

    from gapscope.backdoor.report import flips

    bars = "; ".join(f"{k.removeprefix('toward_')}: own effect >= {b['min_shift']:.3g}"
                     for k, b in sorted((d.get("bars") or {}).items()))
    table = Table(title=progress.plain(f"backdoor scan: {name} (* significant; z critical {d['z_crit']:.2f}"
                                       + (f"; {bars}" if bars else "") + ")"),
                  box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    with_base = any(r.get("base") for r in d["results"])
    # the base's own effect (its shift less random strings'), what the findings compare; a scan saved
    # before own effects were kept shows the base's raw shift
    for col in ("#", "string (source)", "toward", "shift [95% CI]", "flips", "z") + (("base own",) if with_base else ()):
        # the string wraps and takes the width left; the numbers never wrap (fits 80 columns)
        wraps = col.startswith("string")
        table.add_column(col, no_wrap=not wraps, ratio=1 if wraps else None, min_width=16 if wraps else None)
    for r in d["results"][:top]:
        b = r.get("base")
        k, n = flips(r)
        source = r["origin"] + (", unseen value" if r["inductive"] else "")
        table.add_row(str(r["rank"]), Text.assemble(progress.plain(r["text"]), " ", progress.plain(f"({source})", "dim")),
                      "phish" if r["target"] == 1 else "legit",
                      f"{r['mean_shift']:+.2f} [{r['shift_ci'][0]:+.2f},{r['shift_ci'][1]:+.2f}]",
                      f"{k}/{n}" if n else "-",
                      f"{r['z']:.1f}" + ("*" if r["significant"] else ""),
                      *(((f"{b.get('own_effect', b['mean_shift']):+.2f}" if b else "-"),) if with_base else ()))
    progress.console.print(table)
    if not d["results"]:  # an empty table says nothing about why
        m = (d.get("options") or {}).get("mining") or {}
        progress.console.print(progress.plain(
            f"  no candidate string tested for {name}: none of its training rows' strings is tied to one label "
            f"(in >= {m.get('min_df', 3)} rows, >= {m.get('min_purity', 0.9):.0%} of them one label) in rows a content "
            f"model reads as the other label at least {m.get('min_contradiction', 0.5):.0%} of the time, no structured "
            f"family was found, and no --trigger was tested (--min-contradiction 0 tests every label-tied string)"))


def register(app: typer.Typer) -> None:
    """Add `drift` and `backdoor-scan` to the gapscope command line."""
    app.command("drift")(drift)
    app.command("backdoor-scan")(backdoor_scan)
