"""The study grid on a local Ray instance (started and stopped by the test) writes the same run."""

import json

import pytest

from tests.test_runner import make_study

ray = pytest.importorskip("ray")


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_study_matches_local_and_resumes(tmp_path, local_ray):
    from gapscope.study.runner import run_study

    spec = make_study(tmp_path)
    run_study(spec, tmp_path / "local", detectors=False)
    res = run_study(spec, tmp_path / "ray", executor="ray", detectors=False)
    assert all(o.ok for o in res.outcomes) and len(res.outcomes) == 8
    local = json.loads((tmp_path / "local" / "matrix.json").read_text())
    remote = json.loads((tmp_path / "ray" / "matrix.json").read_text())
    assert remote == local
    # resume semantics are the executor's too: nothing left to run
    again = run_study(spec, tmp_path / "ray", executor="ray", detectors=False)
    assert again.outcomes == [] and len(again.skipped) == 8


def test_models_accept_the_ray_resource_keys():
    """`ray_num_cpus` / `ray_num_gpus` in a [[models]] table are for the executor, not the model."""
    from gapscope.models.base import ModelSpec, create_model

    m = create_model(ModelSpec(name="t", kind="tfidf-lr", options={"ray_num_cpus": 2, "ray_num_gpus": 0}))
    assert m is not None
