"""Shared pieces of the benchmarks: the models they run on, test emails, timing, output."""

from __future__ import annotations

import contextlib
import json
import platform
import resource
import time
from contextlib import contextmanager
from typing import Any

import torch

BENCH_SOURCES = {
    "smollm2": "embedded:smollm2-135m",
    "gemma3": "embedded:gemma3-270m",
}


def source_for(model: str) -> str:
    return BENCH_SOURCES.get(model, model)


def bench_emails(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """Emails from the built-in synthetic corpus, all domains interleaved."""
    from gapscope.data.synth import SynthConfig, generate

    per = max(2, -(-n // 6))
    rows = generate(SynthConfig(seed=seed, n_per_domain=per)).rows
    by_domain: dict[str, list] = {}
    for r in rows:
        by_domain.setdefault(r.domain, []).append(r)
    mixed = [r for group in zip(*by_domain.values()) for r in group][:n]
    return [r.text for r in mixed], [r.label for r in mixed]


@contextmanager
def timer(out: dict, key: str):
    t0 = time.perf_counter()
    yield
    out[key] = time.perf_counter() - t0


def machine() -> dict[str, Any]:
    info = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    with contextlib.suppress(OSError):  # no /proc/cpuinfo (not Linux): keep platform's name
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info


def reset_gpu_peak() -> None:
    """Start a fresh GPU peak-memory window (no-op without CUDA)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def gpu_peak_gib() -> float | None:
    """Peak GPU memory allocated by PyTorch since the last reset_gpu_peak, in GiB; None without CUDA."""
    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


def free_models() -> None:
    """Drop gapscope's cached bases and prefix caches, so the next side's memory is its own."""
    import gc

    from gapscope.models.loading import clear_base_cache
    from gapscope.models.prefix_cache import clear_shared_prefix_caches

    clear_base_cache()
    clear_shared_prefix_caches()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_plain(local_dir, device: torch.device, weights_dtype: torch.dtype, load_in_4bit: bool) -> tuple[Any, str]:
    """The baselines' own copy of the weights, as plain transformers loads them, on `device`:
    float32 on CPU (what from_pretrained gives there); on CUDA the dtype and 4-bit quantization
    gapscope loads, so a ratio measures gapscope's method, not a precision. Returns (model, dtype name)."""
    from transformers import AutoModelForCausalLM

    from gapscope.models.loading import load_kwargs

    if device.type != "cuda":
        model = AutoModelForCausalLM.from_pretrained(str(local_dir), dtype=torch.float32, local_files_only=True)
        return model.to(device), "float32"
    kwargs = load_kwargs(device, weights_dtype, load_in_4bit)
    model = AutoModelForCausalLM.from_pretrained(str(local_dir), **kwargs)
    if "device_map" not in kwargs:  # a 4-bit load is placed by its device_map
        model.to(device)
    return model, str(weights_dtype).replace("torch.", "") + (" 4-bit" if load_in_4bit else "")


def gpu_memory_rows(r: dict[str, Any], baseline: str) -> list[tuple[str, str, str]]:
    """The table row comparing GPU peak memory (`gapscope_gpu_peak_gib` vs `{baseline}_gpu_peak_gib`); none without CUDA."""
    if r.get("gapscope_gpu_peak_gib") is None:
        return []
    return [("GPU memory peak", f"{r['gapscope_gpu_peak_gib']:.1f} GiB vs {r[f'{baseline}_gpu_peak_gib']:.1f} GiB",
             f"gapscope vs {baseline}, weights included; {r['machine']['cuda']}")]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result: dict[str, Any], as_json: bool, rows: list[tuple[str, str, str]], title: str) -> None:
    """Print a table (metric, gapscope, baseline/ratio) or the JSON copy."""
    if as_json:
        print(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in ("measure", "value", "note"):
        table.add_column(c)
    for r in rows:
        table.add_row(*r)
    Console().print(table)
