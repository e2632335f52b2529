"""The machine's matrix-multiply peak, measured in the same run as the thing compared with it."""

from __future__ import annotations

import time

import torch


def matmul_peak_flops(dtype: torch.dtype, device: str = "cpu", n: int = 2048, repeats: int = 12) -> float:
    """Best-of-`repeats` FLOP/s of an n×n @ n×n matmul (2·n³ FLOPs). Many repeats: the best
    one is the peak, and a peak measured too low would flatter every fraction of it."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.matmul(a, b)  # warm-up: thread pool, kernels
    best = float("inf")
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        torch.matmul(a, b)
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best
