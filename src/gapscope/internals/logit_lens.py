"""Logit lens through the label tokens (causal LMs) or through the head (encoders).

Each cached layer's residual at the readout site is passed through the model's own
read-out: final norm + the " phishing"/" legitimate" unembedding rows for a causal LM
(margin = logit difference), the linear head on the mean-pooled stream for an encoder.
The last layer reproduces the model's margin. Per layer we report, for in-domain and
out-of-domain held-out rows, split into finally correct and wrong:

    signed margin   margin x (+1 phishing, -1 legitimate): > 0 leans to the true label
    AUROC           how well the layer's lens margin ranks phishing above legitimate
"""

from __future__ import annotations

import numpy as np
import torch

from gapscope.internals.activation_cache import Activations
from gapscope.internals.probes import auroc
from gapscope.internals.view import ModelView


def lens_margins(view: ModelView, acts: Activations, chunk: int = 256) -> np.ndarray:
    """(n, L+1) lens margins from the cache (float32)."""
    site = acts.site(view.readout_site)
    n, Lp1, d = site.shape
    out = np.zeros((n, Lp1), dtype=np.float32)
    for l in range(Lp1):
        for s in range(0, n, chunk):
            h = torch.from_numpy(site[s:s + chunk, l].astype(np.float32))
            out[s:s + chunk, l] = view.lens(h).numpy()
    return out


def lens_summary(lens: np.ndarray, y: np.ndarray, in_domain: np.ndarray, correct: np.ndarray) -> dict:
    sign = np.where(y == 1, 1.0, -1.0)[:, None]
    signed = lens * sign
    groups = {}
    for dom_name, dm in (("in-domain", in_domain), ("out-of-domain", ~in_domain)):
        for ok_name, om in (("correct", correct), ("wrong", ~correct)):
            m = dm & om
            if m.any():
                groups[f"{dom_name} {ok_name}"] = {"n": int(m.sum()),
                                                   "signed_margin": [float(v) for v in signed[m].mean(0)]}
    au = {}
    for dom_name, dm in (("in-domain", in_domain), ("out-of-domain", ~in_domain)):
        if dm.any():
            au[dom_name] = [auroc(y[dm], lens[dm, l]) for l in range(lens.shape[1])]
    return {"groups": groups, "auroc": au}


def overwrite(auroc_curve: list[float | None], skip_first: int = 1) -> dict | None:
    """Best intermediate layer vs the final layer: label evidence present earlier and lost later.
    In-sample: the best of many noisy layers is biased upward (see overwrite_crossfit)."""
    vals = [(i, v) for i, v in enumerate(auroc_curve[:-1]) if v is not None and i >= skip_first]
    final = auroc_curve[-1] if auroc_curve else None
    if not vals or final is None:
        return None
    i, best = max(vals, key=lambda t: t[1])
    return {"layer": i, "best": best, "final": final, "drop": best - final}


def overwrite_crossfit(lens: np.ndarray, y: np.ndarray, seed: int = 0, skip_first: int = 1) -> dict | None:
    """`overwrite` with the layer picked on one half of the rows and read on the other, both ways
    round (halves stratified by class), so "best" is not the largest of ~30 noisy AUROCs on the
    rows that picked it. `layer` is the pick on all rows, for naming; `best`, `final` and `drop`
    are the cross-fitted means, read at the layers each half picked (`layers_picked`); `in_sample`
    keeps the plain reading."""
    y = np.asarray(y)
    plain = overwrite([auroc(y, lens[:, l]) for l in range(lens.shape[1])], skip_first)
    if plain is None:
        return None
    rng = np.random.default_rng(seed)
    half = np.zeros(len(y), dtype=bool)
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        half[idx[: len(idx) // 2]] = True
    best, final, picked = [], [], []
    for pick, read in ((half, ~half), (~half, half)):
        ow = overwrite([auroc(y[pick], lens[pick, l]) for l in range(lens.shape[1])], skip_first)
        b, f = auroc(y[read], lens[read, ow["layer"]]) if ow else None, auroc(y[read], lens[read, -1])
        if b is None or f is None:
            return {**plain, "crossfit": False, "in_sample": dict(plain)}  # too few of a class to split
        best.append(b)
        final.append(f)
        picked.append(ow["layer"])
    b, f = float(np.mean(best)), float(np.mean(final))
    return {"layer": plain["layer"], "best": b, "final": f, "drop": b - f, "crossfit": True,
            "layers_picked": picked, "in_sample": dict(plain)}
