"""Pick the compute device: CUDA, Apple's MPS, or the CPU."""

from __future__ import annotations

import contextlib

import torch

from .errors import ParameterError

DEVICES = ("auto", "cpu", "cuda", "mps")


def select_device(name: str = "auto") -> torch.device:
    """Return the device for ``name``; "auto" prefers cuda, then mps, then cpu."""
    if not isinstance(name, str) or name.split(":")[0] not in DEVICES:
        raise ParameterError(f"device={name!r} is unknown; choose one of {', '.join(DEVICES)}.")
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


def describe_device(device: torch.device) -> str:
    """A human-readable name, e.g. 'cuda (NVIDIA A100)' or 'cpu (2 threads)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision type worth using on ``device``, or None for plain float32.

    CUDA: bfloat16 where supported (Ampere and newer), else float16 (with a gradient
    scaler). CPU: bfloat16 only where the processor has native bf16 instructions
    (e.g. AVX512-BF16, AMX), since emulated bf16 is slower than float32.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        try:
            if torch.ops.mkldnn._is_mkldnn_bf16_supported():
                return torch.bfloat16
        except (AttributeError, RuntimeError):
            pass
    return None


def autocast(device: torch.device, enabled: bool = True):
    """Mixed-precision context for ``device`` (see :func:`autocast_dtype`), or a no-op."""
    dtype = autocast_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
