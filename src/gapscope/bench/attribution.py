"""`gapscope bench attribution`: the reference (SHAP Partition, 500 evaluations) against the fast
method (occlusion) on the same model and the same emails, in one run.

Reports the wall-clock time of each method (the ratio is SHAP / occlusion), the model
evaluations each used, and both methods' faithfulness (deletion and insertion AUC,
comprehensiveness, sufficiency; gapscope.attribution.faithfulness) next to a random
ranking, the floor any method should beat. Faithfulness is scored on every word the model
reads (a causal LM's window cuts long emails; both methods explain that part) with the same
deletion perturbation for both methods. The verdict compares the means; next to it each
method's paired difference from SHAP over the same emails, with a 95% t interval and a
sign-flip permutation test, says which gaps stand out from the email-to-email noise (no
reading below 8 emails; `vs_shap` in --json). The emails are held out of the model's training rows.

Models:
  tfidf    gapscope's tfidf-lr kind fitted on the training rows of a synthetic corpus
           (all domains); occlusion is leave-one-word-out.
  smollm2  the embedded SmolLM2-135M causal LM *as a zero-shot classifier*: its margin is
           logit(" phishing") - logit(" legitimate") with no fine-tuning (a cell's LoRA adapter
           changes what is explained, not what either method costs or how faithful it is, and
           fine-tuning on this CPU takes minutes). Pass --fit N to fine-tune a quick LoRA cell on
           N training emails first. Occlusion uses the default for neural kinds (20 two-sided
           spans, each split among its words by relevance). Context rows, not the verdict: the
           same spans without the split, the spans read by removal only, and relevance alone
           (one forward and backward, attribution/relevance.py), each with its own ratio.
           Every perturbation method scores its texts through the same path (for a causal LM:
           KV-cache reuse of the shared prompt and email prefix, models/prefix_reuse.py).

  --run RUN  a fitted cell of a finished run (the model name as in its spec, --cell to pick the
           paradigm), on held-out emails of the cell's training domain: the realistic case.

Both methods are warmed up on one extra email (numba compiles shap's partition code on
first use) before timing.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np

from gapscope import progress

DEFAULT_N = {"tfidf": 10, "smollm2": 3}


def _emails(seed: int, n: int, n_train: int):
    from gapscope.attribution.corpus import sample_rows
    from gapscope.data.synth import SynthConfig, generate

    corpus = generate(SynthConfig(seed=seed, n_per_domain=max(60, (n_train + n + 6) // 6 + 20)))
    rows = sorted(corpus.rows, key=lambda r: r.id)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    test = sample_rows([rows[i] for i in order[: max(4 * (n + 1), 40)]], n + 1, seed, "bench")
    test_ids = {r.id for r in test}
    train = [rows[i] for i in order if rows[i].id not in test_ids][:n_train]
    return train, test


TFIDF_TRAIN = 1200


def build_model(name: str, seed: int, train: list):
    """The bench model, fitted on `train` (drawn by _emails with the bench's emails held out;
    two separate draws overlapped: 7 of 8 emails of `--fit 64 --n 8` were training rows)."""
    from gapscope.models.base import ModelSpec, create_model

    if name == "tfidf":
        model = create_model(ModelSpec(name="tfidf", kind="tfidf-lr"))
        model.fit([r.text for r in train], np.array([r.label for r in train]), seed=seed)
        return model, f"tfidf-lr fitted on {len(train)} synthetic emails"
    if name == "smollm2":
        model = create_model(ModelSpec(name="smollm2", kind="causal-lm", source="embedded:smollm2-135m"))
        if train:
            with progress.step(f"fine-tuning smollm2 (LoRA) on {len(train)} emails"):
                model.fit([r.text for r in train], np.array([r.label for r in train]), seed=seed)
            return model, f"smollm2-135m with a LoRA adapter fine-tuned on {len(train)} synthetic emails"
        return model, "smollm2-135m zero-shot (base model margin, no fine-tuning)"
    from gapscope.errors import GapscopeError

    raise GapscopeError(f"unknown bench model {name!r} (tfidf | smollm2)")


def from_run(run, model_name: str, cell: str | None, n: int, seed: int):
    """A fitted cell of a finished run, and n + 1 held-out emails of its (first) training domain."""
    from gapscope.attribution.corpus import sample_rows
    from gapscope.explain import resolve_cell
    from gapscope.study.context import Study

    study = Study(run)
    info = resolve_cell(study, model_name, cell)
    domain = info.train_domains[0]
    rows = sample_rows(study.test_rows(domain), n + 1, seed, f"bench-{domain}")
    return study.load_model(info), rows, f"{info.name} of {run} on held-out {domain} emails"


def bench(model_name: str = "tfidf", n: int | None = None, *, seed: int = 0, shap_evals: int = 500,
          occlusion_evals: int | None = None, fit: int = 0, run=None, cell: str | None = None) -> dict[str, Any]:
    from gapscope.attribution import faithfulness as F
    from gapscope.attribution import relevance
    from gapscope.attribution.base import default_occlusion_options, get_method

    if run is not None:
        n = n or 3
        model, emails, described = from_run(run, model_name, cell, n, seed)
    else:
        n = n or DEFAULT_N.get(model_name, 10)
        train, emails = _emails(seed, n, TFIDF_TRAIN if model_name == "tfidf" else fit)
        model, described = build_model(model_name, seed, train)
    warm, emails = emails[0], emails[1:n + 1]
    if len(emails) < n:  # said, not silently fewer
        progress.info(f"--n {n}: only {len(emails)} emails are available (one more warms the model up)",
                      style="yellow")
    occ_opts = default_occlusion_options(model)
    if occlusion_evals:
        occ_opts["max_evals"] = occlusion_evals
    methods = {"shap": get_method("shap", max_evals=shap_evals), "occlusion": get_method("occlusion", **occ_opts)}
    # Context rows (not the verdict): what each ingredient of the default gives on its own.
    if occ_opts.get("refine"):
        methods["occlusion, spans only"] = get_method("occlusion", **(occ_opts | {"refine": None}))
    if occ_opts.get("two_sided"):
        methods["occlusion, removal only"] = get_method("occlusion", **(occ_opts | {"two_sided": False, "refine": None}))
    if relevance.supports(model):
        methods["relevance"] = get_method("relevance")
    for m in methods.values():  # not timed: numba compilation, model warm-up
        m.attribute(model, warm.text)
    out: dict[str, Any] = {"model": model_name, "described": described, "n": len(emails), "seed": seed,
                           "words_per_email": float(np.mean([len(a) for a in [_words(r.text) for r in emails]])),
                           "methods": {}}
    atts: dict[str, list] = {}
    for name, m in methods.items():
        t0 = time.perf_counter()
        with progress.step(f"bench: {name} on {len(emails)} emails", total=len(emails)) as up:
            atts[name] = m.attribute_many(model, [r.text for r in emails], progress=up)
        secs = time.perf_counter() - t0
        out["methods"][name] = {"seconds": round(secs, 4), "seconds_per_email": round(secs / len(emails), 4),
                                "evals_per_email": round(float(np.mean([a.evals for a in atts[name]])), 1),
                                "params": m.params()}
    per_email: dict[str, list] = {}
    with progress.step("bench: faithfulness (deletion / insertion curves)"):
        for name in methods:
            per_email[name] = [F.evaluate(model, a) for a in atts[name]]
            out["methods"][name]["faithfulness"] = F.summarize(per_email[name])
        out["random"] = F.summarize([F.evaluate(model, a, order=F.random_order(len(a.tokens), seed + i))
                                     for i, a in enumerate(atts["occlusion"])])
    s = out["methods"]["shap"]
    for name, o in out["methods"].items():
        if name == "shap":
            continue
        o["speedup"] = round(s["seconds"] / max(o["seconds"], 1e-9), 2)
        o["at_least_as_faithful"] = at_least_as_faithful(o["faithfulness"], s["faithfulness"])
        o["vs_shap"] = F.compare(per_email[name], per_email["shap"], seed=seed)
    out["speedup"] = out["methods"]["occlusion"]["speedup"]
    out["occlusion_at_least_as_faithful"] = out["methods"]["occlusion"]["at_least_as_faithful"]
    with contextlib.suppress(Exception):  # freeing the model must not lose the results
        model.close()
    return out


def at_least_as_faithful(fast: dict, ref: dict) -> dict[str, bool]:
    from gapscope.attribution.faithfulness import HIGHER_IS_BETTER

    return {k: fast[k] >= ref[k] if higher else fast[k] <= ref[k] for k, higher in HIGHER_IS_BETTER.items()}


def _words(text: str):
    from gapscope.attribution.words import split_words

    return split_words(text)


_SCORE_LABELS = {"deletion_auc": "deletion AUC", "insertion_auc": "insertion AUC",
                 "comprehensiveness": "comprehensiveness", "sufficiency": "sufficiency"}


def _score_columns() -> dict[str, str]:
    """Column header per score, keyed by score name (both tables read cells by key, not position)."""
    from gapscope.attribution.faithfulness import HIGHER_IS_BETTER

    return {k: f"{label} ({'higher' if HIGHER_IS_BETTER[k] else 'lower'})" for k, label in _SCORE_LABELS.items()}


def print_table(res: dict[str, Any], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    from gapscope.progress import plain  # the title holds the run path and cell name

    console = console or Console()
    cols = _score_columns()
    t = Table(title=plain(f"attribution bench: {res['described']}, {res['n']} emails "
                          f"(~{res['words_per_email']:.0f} words)"))
    for c in ("method", "ms / email", "evals / email", *cols.values()):
        t.add_column(c, justify="right" if c != "method" else "left")
    rows = [(k, v) for k, v in res["methods"].items()] + [("random ranking", {"faithfulness": res["random"]})]
    for name, v in rows:
        f = v["faithfulness"]
        t.add_row(name, f"{1000 * v['seconds_per_email']:.1f}" if "seconds_per_email" in v else "-",
                  f"{v['evals_per_email']:.0f}" if "evals_per_email" in v else "-",
                  *(f"{f[k]:.3f}" for k in cols))
    console.print(t)
    for name, v in res["methods"].items():
        if name == "shap":
            continue
        ok = v["at_least_as_faithful"]
        style = "bold" if name == "occlusion" else "dim"
        console.print(f"[{style}]{name}[/{style}]: [bold]{v['speedup']:.1f}x[/bold] faster than SHAP Partition "
                      f"({res['methods']['shap']['params']['max_evals']} evaluations); at least as faithful on "
                      f"{sum(ok.values())} of 4 scores ({', '.join(k for k, x in ok.items() if x) or 'none'})")
    print_paired(res, console)


_READING_STYLE = {"better": "green", "worse": "red", "within noise": "dim", "too few emails": "dim"}


def print_paired(res: dict[str, Any], console) -> None:
    """Each method minus SHAP on the same emails: 95% t interval, permutation p-value, reading."""
    from rich.table import Table

    rows = [(k, v["vs_shap"]) for k, v in res["methods"].items() if "vs_shap" in v]
    if not rows:
        return
    t = Table(title=f"paired difference, method - SHAP over the same {res['n']} emails (95% t interval, "
                    "sign-flip permutation p)")
    cols = _score_columns()
    t.add_column("method")
    for c in cols.values():
        t.add_column(c, justify="right")
    for name, cmp in rows:
        cells = []
        for d in (cmp[k] for k in cols):
            ci = "" if d["ci95"] is None else f" [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
            p = "" if d.get("p") is None else f" p={d['p']:.2f}"
            style = _READING_STYLE[d["reading"]]
            cells.append(f"[{style}]{d['difference']:+.3f}{ci}{p} {d['reading']}[/{style}]")
        t.add_row(name, *cells)
    console.print(t)
