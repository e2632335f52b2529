"""Validation of the internals detector against a planted shortcut (DESIGN.md: "a detector is
done when it finds what was planted ... and stays quiet on a clean control").

    validate_internals(out_dir) -> dict

1. Generates the synthetic corpus on two domains with a shortcut string planted in the
   phishing rows of the first. Bodies are clipped to `clip_words` words before the string
   is re-appended, so the planted footer survives the model's `max_length` truncation
   (the generator appends it at the very end of emails that are often longer than that).
   Row ids are kept, so the manifest still names the planted rows.
2. Fine-tunes SmolLM2-135M (kind causal-lm, LoRA on the top `train_layers` layers) as a
   specialist on the shortcut domain, through the ordinary study runner.
3. Runs the internals detector and checks:
     attention  the answer position's attention to the string rises after fine-tuning
                (the head that gained most: fine-tuned vs base, adapter switched off)
     patching   patching the string's positions from the email with it into its neutral
                minimal pair restores most of the margin (median over pairs, at the
                residual stream entering the first fine-tuned layer)
     finding    a high-severity `shortcut_attention` finding names the string
4. With `control=True`, repeats on a control corpus where the same string is planted at the
   same rate in phishing AND legitimate rows (uninformative), and checks:
     quiet      no high-severity shortcut_attention finding appears on the control
     direction  the specialist's label direction is aligned with its domain's phishing-class
                direction (the class the string was planted in) at the read-out layer: the
                cross-validated whitened cosine (internals/domain_direction.py) is above the
                permuted-label null, and above the control specialist's by more than either
                null (`direction_verdict`). Without a control it is reported, not checked
                (`require_direction` overrides).
   Measured on SmolLM2, seeds 0-4 (README, Validation). The earlier cosine in standardised
   coordinates was not a usable test: its null was 0.35-0.54, the planted footer showed
   only through the legitimate-class direction on 2 of 3 seeds, and at seed 3 the control
   exceeded its null while the planted cell did not.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

SOURCE = "embedded:smollm2-135m"


def _clip(body: str, words: int) -> str:
    spans = list(re.finditer(r"\S+", body))
    if len(spans) <= words:
        return body
    return body[: spans[words - 1].end()]


def write_corpus(out: Path, *, seed: int, domains: tuple[str, str], n_per_domain: int, clip_words: int,
                 rate: float, leak_rate: float) -> dict:
    from gapscope.data.rows import compose_text
    from gapscope.data.synth import SynthConfig, generate

    corpus = generate(SynthConfig(seed=seed, n_per_domain=n_per_domain, domains=list(domains),
                                  shortcut={"domain": domains[0], "rate": rate, "leak_rate": leak_rate}))
    sc = corpus.manifest["shortcut"]
    string, planted = sc["string"], set(sc["row_ids"])
    out.mkdir(parents=True, exist_ok=True)
    for d in domains:
        lines = []
        for r in corpus.by_domain(d):
            body = r.body or r.text
            had = r.id in planted
            if had and body.endswith(string):
                body = body[: -len(string)].rstrip()
            body = _clip(body, clip_words)
            if had:
                body = f"{body}\n\n{string}"
            lines.append(json.dumps({"id": r.id, "text": compose_text(r.subject, body), "label": r.label}))
        (out / f"{d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps(corpus.manifest, indent=1), encoding="utf-8")
    return corpus.manifest


def write_spec(out: Path, *, domains: tuple[str, str], seed: int, source: str, model_options: dict,
               detector_options: dict, max_test_per_domain: int) -> Path:
    from gapscope.study.spec import toml_value

    lines = ["[study]", 'name = "internals-validation"', f"seed = {seed}", "test_fraction = 0.3",
             "bootstrap = 100", f"max_test_per_domain = {max_test_per_domain}", ""]
    for d in domains:
        lines += ["[[datasets]]", f"name = {toml_value(d)}", f"path = {toml_value(d + '.jsonl')}", ""]
    lines += ["[paradigms]", f"specialist = {toml_value([domains[0]])}", "generalist = []", "lodo = false", "",
              "[[models]]", 'name = "smollm2"', 'kind = "causal-lm"', f"source = {toml_value(source)}"]
    lines += [f"{k} = {toml_value(v)}" for k, v in model_options.items()]
    lines += ["", "[detectors]", 'enabled = ["internals"]', "", "[detectors.internals]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in detector_options.items()]
    p = out / "study.toml"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _nearest_at_most(layers: list[int], target: int) -> int:
    ok = [i for i, l in enumerate(layers) if l <= target]
    return ok[-1] if ok else 0


def _cached(idx: int) -> str:
    return "embed" if idx == 0 else f"resid_post.{idx - 1}"


def measure(res: dict, train_layers: int) -> dict[str, Any]:
    """The validation numbers of one analysed cell."""
    from gapscope.detectors.internals import decision_summary

    L = res["n_layers"]
    split = L - train_layers  # first fine-tuned layer
    out: dict[str, Any] = {"n_layers": L, "first_tuned_layer": split}
    strings = (res.get("attention") or {}).get("strings") or []
    e = strings[0] if strings else {}
    out["string"] = e.get("string")
    out["n_string_emails"] = e.get("n", 0)
    if e.get("max_gain_head"):
        h = e["max_gain_head"]
        out["attention_head"] = f"{h['layer']}.{h['head']}"
        out["attention_base"] = h["base"]
        out["attention_tuned"] = h["tuned"]
        out["attention_control"] = h["control"]
        if "heldout_tuned" in h:  # chosen on half the emails, measured on the other half
            out["attention_heldout_head"] = h["heldout_head"]
            out["attention_heldout_base"] = h["heldout_base"]
            out["attention_heldout_tuned"] = h["heldout_tuned"]
            out["attention_heldout_control"] = h["heldout_control"]
        tuned = np.asarray(e["tuned_by_layer"], dtype=float)[split:]
        base = np.asarray(e["base_by_layer"], dtype=float)[split:]
        out["attention_tuned_layers_mean"] = float(np.nanmean(tuned))
        out["attention_base_layers_mean"] = float(np.nanmean(base))
        out["token_share"] = e.get("frac")
    pt = res.get("patching") or {}
    layers = pt.get("layers") or []
    sc = (pt.get("shortcut") or [{}])[0] if pt.get("shortcut") else {}
    out["margin_gap_mean"] = sc.get("mean_gap")
    out["flips"] = sc.get("flips")
    pairs = sc.get("pairs") or []
    out["patched_pairs"] = len(pairs)
    if pairs and layers:
        i = _nearest_at_most(layers, split - 1)
        vals = []
        for p in pairs:
            j = p["groups"].index("edited")
            vals.append(p["restored"][i][j])
        out["patching_layer"] = "embed" if layers[i] < 0 else f"resid_post.{layers[i]}"
        out["patching_restored"] = float(np.median([v for v in vals if v is not None])) if vals else None
        out["patching_restored_by_layer"] = decision_summary(res)["edited_curve"]
        out["patching_layers"] = layers
    d = res.get("direction") or {}
    if d:
        per = next(iter(d.values()))
        out["direction_metric"] = per[-1].get("metric", "standardised")
        out["cos_readout"] = per[-1].get("cos_max", per[-1].get("cos"))
        out["cos_aligned_with"] = per[-1].get("aligned_with")
        out["cos_balanced_readout"] = per[-1].get("cos")
        out["cos_phishing_readout"] = per[-1].get("cos_phishing")
        out["cos_legitimate_readout"] = per[-1].get("cos_legitimate")
        out["cos_null95"] = per[-1].get("null95")
        out["domain_auroc_along_label"] = per[-1].get("domain_auroc")
        out["domain_separability_along_label"] = per[-1].get("domain_separability")
        out["cos_by_layer"] = [p.get("cos_max", p.get("cos")) for p in per]
        out["null95_by_layer"] = [p.get("null95") for p in per]
        out["direction_layers"] = [_cached(l) for l in res["layers"]]
    out["model_auroc"] = res.get("model_auroc")
    out["timings"] = res.get("timings")
    out["cpu_seconds"] = res.get("cpu_seconds")
    return out


def direction_verdict(planted: dict, control: dict | None) -> dict[str, Any]:
    """Is the specialist's label direction aligned with its domain's phishing-class direction (the
    class the footer was planted in), at the read-out layer? Aligned when its cosine is positive
    and above the permuted-label null, and (with a control) above the control specialist's same
    cosine by more than either null: the footer, not the domains' other differences, made it."""
    cos, null = planted.get("cos_phishing_readout"), planted.get("cos_null95")
    out: dict[str, Any] = {"direction": "phishing", "metric": planted.get("direction_metric"), "cos": cos,
                           "null95": null}
    above_null = cos is not None and null is not None and cos > null
    aligned = above_null
    if control is not None:
        c_cos, c_null = control.get("cos_phishing_readout"), control.get("cos_null95")
        out.update({"control_cos": c_cos, "control_null95": c_null})
        beyond = (cos is not None and c_cos is not None and c_null is not None and null is not None
                  and cos - c_cos > max(null, c_null))
        out["beyond_control"] = beyond
        aligned = above_null and beyond
    out["above_null"] = above_null
    out["aligned"] = bool(aligned)
    return out


def _run_one(root: Path, *, control: bool, seed: int, domains, n_per_domain, clip_words, max_train, max_length,
             train_layers, epochs, lr, max_test_per_domain, source, detector_options) -> dict[str, Any]:
    from gapscope.detectors.internals import run as run_detector
    from gapscope.study.context import Study
    from gapscope.study.runner import run_study

    data = root / "data"
    manifest = write_corpus(data, seed=seed, domains=domains, n_per_domain=n_per_domain, clip_words=clip_words,
                            rate=0.5 if control else 0.9, leak_rate=0.5 if control else 0.0)
    spec = write_spec(data, domains=domains, seed=seed, source=source, max_test_per_domain=max_test_per_domain,
                      model_options={"max_length": max_length, "max_train": max_train, "train_layers": train_layers,
                                     "epochs": epochs, "lr": lr},
                      detector_options=detector_options)
    t0 = time.perf_counter()
    run_study(spec, root / "run", detectors=False, restart=True)
    t_study = time.perf_counter() - t0
    study = Study(root / "run")
    t1 = time.perf_counter()
    findings = run_detector(study)
    t_detector = time.perf_counter() - t1
    cell = next(c for c in study.cells if c.is_specialist)
    res = json.loads((root / "run" / "diagnostics" / "internals" / f"{cell.name}.json").read_text())
    out = measure(res, train_layers)
    out.update({"planted_string": manifest["shortcut"]["string"], "study_seconds": round(t_study, 1),
                "detector_seconds": round(t_detector, 1),
                "findings": [{"kind": f.kind, "severity": f.severity, "title": f.title} for f in findings]})
    return out


def validate_internals(out_dir: Path | str, *, seed: int = 0, domains: tuple[str, str] = ("personal", "corporate"),
                       n_per_domain: int = 120, clip_words: int = 40, max_train: int = 64, max_length: int = 96,
                       train_layers: int = 8, epochs: int = 3, lr: float = 1e-3, max_test_per_domain: int = 60,
                       source: str = SOURCE, control: bool = False, require_direction: bool | None = None,
                       threads: int | None = 2,
                       detector_options: dict | None = None) -> dict[str, Any]:
    """Fine-tune on a planted shortcut, run the internals detector, and check what it measured.
    Returns {"passed", "checks", "observations", "planted": {...numbers...}, "control": {...} (when run),
    "seconds"}."""
    import torch

    if threads:
        torch.set_num_threads(min(threads, torch.get_num_threads()))
    out_dir = Path(out_dir)
    # The detector's own row counts (InternalsOptions): the direction estimates need them
    det = {"max_train": 96, "max_test_per_domain": max_test_per_domain, "layers": 11, "attention_examples": 6,
           "shortcut_examples": 8, "patch_pairs": 3, "patch_layers": 6, "base_examples": 12,
           "oracle": False}
    det.update(detector_options or {})
    kw = dict(seed=seed, domains=tuple(domains), n_per_domain=n_per_domain, clip_words=clip_words,
              max_train=max_train, max_length=max_length, train_layers=train_layers, epochs=epochs, lr=lr,
              max_test_per_domain=max_test_per_domain, source=source, detector_options=det)
    t0 = time.perf_counter()
    planted = _run_one(out_dir / "planted", control=False, **kw)
    rise_t = planted.get("attention_heldout_tuned", planted.get("attention_tuned")) or 0
    rise_b = planted.get("attention_heldout_base", planted.get("attention_base")) or 0
    checks = {
        "attention_rises": rise_t > rise_b + 0.05,
        "patching_restores_most": (planted.get("patching_restored") or 0) >= 0.5,
        "high_shortcut_finding": any(f["kind"] == "shortcut_attention" and f["severity"] == "high"
                                     for f in planted["findings"]),
    }
    result: dict[str, Any] = {"planted": planted}
    ctrl = None
    if control:
        ctrl = _run_one(out_dir / "control", control=True, **kw)
        result["control"] = ctrl
        checks["control_quiet"] = not any(f["kind"] == "shortcut_attention" and f["severity"] == "high"
                                          for f in ctrl["findings"])
    direction = direction_verdict(planted, ctrl)
    result["direction"] = direction
    result["observations"] = {"direction_aligned": direction["aligned"]}
    if require_direction if require_direction is not None else control:
        checks["direction_aligned"] = direction["aligned"]
    result["checks"] = checks
    result["passed"] = all(checks.values())
    result["seconds"] = round(time.perf_counter() - t0, 1)
    (out_dir / "validation.json").write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")
    return result
