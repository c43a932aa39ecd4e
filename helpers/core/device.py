"""How to run on a device: which device, which precision, which memory format.

``precision`` is one of :data:`PRECISIONS`. "auto" picks mixed precision only where it
pays: bfloat16 on GPUs that support it and on CPUs with native bf16 instructions
(AVX512-BF16, AMX), float16 with a gradient scaler on older GPUs, and plain float32
everywhere else, e.g. on the common AVX2 laptop and server CPUs, where emulated bf16
is slower than float32.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch
from torch import nn

from .errors import ParameterError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_device(parameter: str, name: Any) -> None:
    """A clear error unless ``name`` is one of :data:`DEVICES`, optionally with an index
    (``"cuda:1"``); whether that device exists is :func:`select_device`'s to say."""
    if not isinstance(name, str) or name.split(":")[0] not in DEVICES:
        raise ParameterError(
            f"{parameter}={name!r} is unknown; choose one of {', '.join(DEVICES)}."
        )


def select_device(name: str = "auto") -> torch.device:
    """Return the device for ``name``; "auto" prefers cuda, then mps, then cpu."""
    check_device("device", name)
    kind = name.split(":")[0]
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            "device='cuda' but PyTorch sees no CUDA GPU. Use device='auto' (falls back to the "
            "CPU) or device='cpu'; in Colab choose Runtime > Change runtime type > GPU."
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ParameterError("device='mps' but no Apple GPU is available; use device='auto'.")
    return torch.device(name)


def cpu_capability() -> str:
    """The vector instruction set PyTorch's CPU kernels use, e.g. 'AVX2' or 'AVX512'."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def describe_device(device: torch.device) -> str:
    """A human-readable name, e.g. 'cuda (NVIDIA A100)' or 'cpu (2 threads, AVX2)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        bf16 = ", native bf16" if cpu_has_native_bf16() else ""
        return f"cpu ({torch.get_num_threads()} threads, {cpu_capability()}{bf16})"
    return device.type


def check_precision(precision: str) -> str:
    """``precision`` itself, or a clear error naming the valid choices."""
    if precision not in PRECISIONS:
        raise ParameterError(
            f"precision={precision!r} is unknown; choose one of {', '.join(PRECISIONS)} "
            "(auto: mixed precision only where the hardware runs it natively)."
        )
    return precision


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast type for ``precision`` on ``device``, or None for plain float32.

    "auto": on CUDA bfloat16 where supported (Ampere and newer), else float16 (with a
    gradient scaler); on the CPU bfloat16 only with native bf16 instructions; else None.
    "bf16" and "fp16" are honoured wherever PyTorch has them, even where they are slow
    (a warning says so), so every code path can be tried on any machine.
    """
    check_precision(precision)
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return None
    dtype = _DTYPES[precision]
    if dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ParameterError(
            "precision='bf16' but this GPU has no bfloat16 support; use precision='fp16' or 'auto'."
        )
    if dtype is torch.bfloat16 and device.type == "cpu" and not cpu_has_native_bf16():
        warnings.warn(
            f"precision='bf16' on a CPU without native bf16 instructions ({cpu_capability()}): "
            "it is emulated and slower than float32. precision='auto' picks float32 here.",
            stacklevel=2,
        )
    return dtype


def precision_name(device: torch.device, precision: str = "auto") -> str:
    """What ``precision`` computes in on ``device``: 'float32', 'bfloat16' or 'float16'."""
    dtype = autocast_dtype(device, precision)
    return "float32" if dtype is None else str(dtype).replace("torch.", "")


def autocast(device: torch.device, precision: str = "auto"):
    """Mixed-precision context for ``precision`` on ``device`` (a no-op for float32)."""
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def compute_record(device: torch.device, precision: str) -> dict:
    """What a run's ``metrics.json`` records about how it computed."""
    record: dict[str, Any] = {
        "precision": precision,
        "compute_dtype": precision_name(device, precision),
    }
    if device.type == "cpu":
        record.update(
            cpu_capability=cpu_capability(),
            native_bf16=cpu_has_native_bf16(),
            threads=torch.get_num_threads(),
        )
    return record


def channels_last_is_safe(model: nn.Module, device: torch.device) -> bool:
    """False where oneDNN's channels_last convolution is known to crash on the CPU.

    On AVX2 CPUs (oneDNN issue 5942, seen with torch 2.15 in float32), the backward pass
    of a *strided 1x1* convolution with 2 to 7 input channels in channels_last memory
    segfaults with one thread and hangs with two. Our ResNets have such a convolution
    when ``width`` is 2 to 7 (the first shortcut). Such a model trains in the default
    memory format instead; every other shape keeps channels_last, which is faster.
    """
    if device.type != "cpu":
        return True
    for m in model.modules():
        if (
            isinstance(m, nn.Conv2d)
            and m.kernel_size == (1, 1)
            and max(m.stride) > 1
            and 2 <= m.in_channels // m.groups <= 7
        ):
            return False
    return True
