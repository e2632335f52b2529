"""Where a model runs and in which precision.

Master weights stay float32 on CPU (small models, and GGUF dequantizes to
float32 anyway); speed comes from bfloat16 *autocast*, which on CPUs with
AVX512-BF16/AMX runs the matmuls ~2.5x faster while the weights, the optimizer
state and the residual adds stay float32. On CUDA the weights themselves are
loaded in bfloat16 (an 8B model in float32 would not fit a typical GPU).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from gapscope.errors import GapscopeError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def resolve_device(option: str = "auto") -> torch.device:
    if option == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if option.startswith("cuda") and not torch.cuda.is_available():
        raise GapscopeError(f"device {option!r} requested but no CUDA GPU is available")
    try:
        return torch.device(option)
    except RuntimeError as exc:
        raise GapscopeError(f"unknown device {option!r} (use auto, cpu or cuda)") from exc


def cpu_supports_bf16() -> bool:
    # Without native bf16 instructions autocast emulates bf16 and is *slower* than float32.
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older/newer torch without the private probes
        return False


def resolve_compute_dtype(option: str, device: torch.device) -> torch.dtype:
    """The dtype matmuls run in: `auto` picks bfloat16 where the hardware has it."""
    if option == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    if option not in DTYPES:
        raise GapscopeError(f"unknown dtype {option!r} (use auto, float32 or bfloat16)")
    return DTYPES[option]


def weights_dtype(device: torch.device, compute: torch.dtype) -> torch.dtype:
    """Storage dtype of the base weights: float32 masters on CPU, compute dtype on GPU."""
    return compute if device.type == "cuda" else torch.float32


def frozen_linear_dtype(device: torch.device, compute: torch.dtype) -> torch.dtype | None:
    """Storage dtype of a frozen base's linear weights, or None to keep `weights_dtype`.

    On CPU, autocast re-casts every float32 weight to bf16 at every call (the weights do not
    require grad, so its cast cache never applies): 6-8% of a SmolLM2 scoring pass went to those
    copies. Storing the frozen linear weights in the compute dtype gives bit-identical products
    (the stored value is the same rounding autocast made) and halves their memory. Norms,
    embeddings, the residual stream and LoRA weights stay float32."""
    return compute if device.type == "cpu" and compute != torch.float32 else None


@contextlib.contextmanager
def autocast(device: torch.device, compute: torch.dtype) -> Iterator[None]:
    if compute == torch.float32:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=compute):
        yield
