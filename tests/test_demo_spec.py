"""The demo's spec must load wherever the demo writes it, including a relative --out
(the README's first command uses the default, relative `gapscope-demo`)."""

from __future__ import annotations

from gapscope.data.synth import DOMAIN_NAMES
from gapscope.demo import DEMO_DETECTORS, SPECIALISTS, demo_spec
from gapscope.study.spec import load_spec


def test_demo_spec_resolves_datasets_from_a_relative_out_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "gapscope-demo"
    (out / "corpus").mkdir(parents=True)
    domains = sorted(DOMAIN_NAMES)
    for d in domains:
        (out / "corpus" / f"{d}.jsonl").write_text('{"text": "hi", "label": 0}\n')
    rel = out.relative_to(tmp_path) / "demo.toml"
    rel.write_text(demo_spec(domains, quick=False))
    spec = load_spec(rel)
    assert all(d.path.resolve() == (out / "corpus" / f"{d.domain}.jsonl").resolve() for d in spec.datasets)
    assert all(d.path.exists() for d in spec.datasets)
    assert spec.paradigms.specialist == [d for d in domains if d in SPECIALISTS]
    assert spec.paradigms.generalist == domains
    assert spec.detectors["cells_per_model"] == DEMO_DETECTORS["cells_per_model"]
