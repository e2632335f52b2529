"""Backdoor scan: candidate trigger strings inserted into held-out emails, effect on the
label margin against a null of random rare-word insertions.

    from gapscope.backdoor import scan, ScanOptions
    result = scan(model, threshold=cell.threshold, train_rows=..., heldout_rows=..., triggers=["..."])
"""

from gapscope.backdoor.candidates import Candidate, MiningOptions
from gapscope.backdoor.margins import as_sentence, insertion_margins
from gapscope.backdoor.scan import CandidateResult, ScanOptions, ScanResult, scan

__all__ = ["Candidate", "CandidateResult", "MiningOptions", "ScanOptions", "ScanResult", "as_sentence",
           "insertion_margins", "scan", "validate_backdoor"]


def validate_backdoor(out_dir, **kw):
    """Planted-truth check of the backdoor scan (see gapscope.backdoor.validate)."""
    from gapscope.backdoor.validate import validate_backdoor as _v

    return _v(out_dir, **kw)
