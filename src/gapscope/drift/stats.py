"""Small, seeded statistics shared by the drift audit, the backdoor scan and the detectors.

Percentile bootstrap of a mean over independent units (probes, emails), a Student t interval
below SMALL_N units, and the significance rule both use: the CI lies entirely on one side of
zero and the point estimate exceeds a minimum effect (for non-negative measures such as KL divergence,
the CI's lower bound itself must exceed the minimum, since "above zero" says nothing).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of k successes in n (flips, flagged rows): 1 of 1 is not evidence of 100%."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class MeanCI:
    mean: float | None
    lo: float | None
    hi: float | None
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


# Below this many units the percentile bootstrap's interval is far too narrow (it resamples
# only the values seen: null families of 2 probes with sd 1.5 nats passed the drift rule, CI
# off zero and |mean| >= 1, in 27% of draws; with a t interval in 3%).
SMALL_N = 8


def mean_ci(values, *, n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> MeanCI:
    """Mean and CI of `values` (NaNs dropped): percentile bootstrap, or a t interval when
    there are fewer than SMALL_N values. n = 1 (or n_resamples = 0) gives a point CI."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    n = int(v.size)
    if n == 0:
        return MeanCI(None, None, None, 0)
    mean = float(v.mean())
    if n == 1 or n_resamples <= 0:
        return MeanCI(mean, mean, mean, n)
    if n < SMALL_N:
        from scipy.stats import t

        half = float(t.ppf((1.0 + level) / 2, n - 1)) * float(v.std(ddof=1)) / math.sqrt(n)
        return MeanCI(mean, mean - half, mean + half, n)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2**20 // n)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = v[idx].mean(axis=1)
    alpha = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(means, [alpha, 100 - alpha])
    return MeanCI(mean, float(lo), float(hi), n)


def significant(ci: MeanCI, min_effect: float, *, nonnegative: bool = False) -> bool:
    """CI excludes 0 on the side of the mean and the effect is at least `min_effect`.

    For a non-negative measure the whole CI must clear `min_effect` (lo >= min_effect)."""
    if ci.mean is None or ci.n < 2:
        return False
    if nonnegative:
        return ci.lo >= min_effect and ci.lo > 0
    if ci.mean > 0:
        return ci.lo > 0 and ci.mean >= min_effect
    return ci.hi < 0 and -ci.mean >= min_effect
