"""The machine's matrix-multiply peak, measured in the same run as the thing compared with it."""

from __future__ import annotations

import time

import torch

# A CPU with AMX reaches its rate only on larger products (one 2-core Xeon: 812 GFLOP/s bf16 at
# 2048², 1,946 at 4096²), so the CPU peak is the best over two sizes; a GPU needs 8192 to fill
# its matrix units.
CPU_SIZES = (2048, 4096)
GPU_SIZES = (8192,)


def matmul_peak_flops(dtype: torch.dtype, device: str = "cpu", sizes: tuple[int, ...] | None = None,
                      repeats: int = 12) -> float:
    """Best FLOP/s of an n×n @ n×n matmul (2·n³ FLOPs) over `sizes` and `repeats` runs each. The
    best is the peak, and a peak measured too low would flatter every fraction of it."""
    best_rate = 0.0
    for n in sizes or (CPU_SIZES if device == "cpu" else GPU_SIZES):
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
        best_rate = max(best_rate, 2 * n**3 / best)
    return best_rate
