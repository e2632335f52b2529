"""Drift audit: what else did fine-tuning change? A fine-tuned causal LM against its base on
probe families unrelated to the task (time period, general knowledge, values, persona).

    from gapscope.drift import load_lm, load_probe_sets, drift_audit
    report = drift_audit(load_lm("embedded:smollm2-135m"), load_lm("RUN/cells/smollm2__generalist"),
                         load_probe_sets())
"""

from gapscope.drift.audit import DriftOptions, DriftReport, compare, drift_audit, probe_forward
from gapscope.drift.lm import LoadedLM, infer_base, load_hf, load_lm
from gapscope.drift.probes import Probe, ProbeFamily, load_probe_file, load_probe_sets

__all__ = ["DriftOptions", "DriftReport", "LoadedLM", "Probe", "ProbeFamily", "compare", "drift_audit", "infer_base",
           "load_hf", "load_lm", "load_probe_file", "load_probe_sets", "probe_forward", "validate_drift"]


def validate_drift(out_dir, **kw):
    """Planted-truth check of the drift audit (see gapscope.drift.validate)."""
    from gapscope.drift.validate import validate_drift as _v

    return _v(out_dir, **kw)
