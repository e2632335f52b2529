"""`gapscope demo`: the main job on the embedded defaults.

A seeded synthetic corpus with a planted shortcut, the TF-IDF baseline and the
three embedded pretrained models (Llama, Gemma 3, BERT architectures) under the
specialist and generalist paradigms, sized to finish on a 2-core CPU.
"""

from __future__ import annotations

from pathlib import Path

from gapscope import progress

# Sized by measurement on a 2-core CPU (see README, Performance).
DEMO_MODELS = {
    "smollm2": {"kind": "causal-lm", "source": "embedded:smollm2-135m",
                "max_train": 96, "max_length": 96, "epochs": 2},
    "gemma3": {"kind": "causal-lm", "source": "embedded:gemma3-270m",
               "max_train": 96, "max_length": 96, "epochs": 2},
    "minilm": {"kind": "encoder", "source": "embedded:minilm-l6",
               "max_train": 160, "max_length": 128, "epochs": 3},
}
QUICK_MODELS = ("smollm2",)


def demo_spec(corpus_dir: Path, domains: list[str], quick: bool) -> str:
    lines = [
        "[study]", 'name = "gapscope-demo"', "seed = 0", "test_fraction = 0.3",
        f"max_test_per_domain = {40 if quick else 60}", "",
    ]
    for d in domains:
        lines += ["[[datasets]]", f'name = "{d}"', f'path = "{(corpus_dir / (d + ".jsonl")).as_posix()}"', ""]
    names = ", ".join(f'"{d}"' for d in domains)
    lines += ["[paradigms]", f"specialist = [{names}]", f"generalist = [{names}]",
              'generalist_size = "match"', "lodo = false", ""]
    lines += ["[[models]]", 'name = "tfidf"', 'kind = "tfidf-lr"', ""]
    for name, opts in DEMO_MODELS.items():
        if quick and name not in QUICK_MODELS:
            continue
        lines += ["[[models]]", f'name = "{name}"']
        for k, v in opts.items():
            if quick and k == "max_train":
                v = min(v, 64)
            lines.append(f"{k} = " + (f'"{v}"' if isinstance(v, str) else str(v)))
        lines.append("")
    return "\n".join(lines)


def run_demo(out: Path, quick: bool = False) -> Path:
    from gapscope.data.synth import SynthConfig, generate
    from gapscope.study.runner import run_study

    out = Path(out)
    corpus_dir = out / "corpus"
    cfg = SynthConfig(seed=0, n_per_domain=200 if quick else 240,
                      shortcut={"domain": "mailinglist", "string": None, "rate": 0.9})
    corpus = generate(cfg)
    corpus.write(corpus_dir)
    domains = sorted({r.domain for r in corpus.rows})
    spec_path = out / "demo.toml"
    spec_path.write_text(demo_spec(corpus_dir, domains, quick), encoding="utf-8")
    progress.info(f"demo corpus: {len(corpus.rows)} emails in {len(domains)} domains ({', '.join(domains)})")
    res = run_study(spec_path, out / "run")
    progress.info(f"demo finished in {res.seconds:.0f}s")
    return res.report
