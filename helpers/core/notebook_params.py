"""The notebook parameters both homeworks declare alike: the device and precision a run
computes with, where its figures and run folder go, the run folder (name, overwrite,
resume), determinism and TensorBoard logging. Each function returns a declared settings
field (:func:`helpers.core.params.param`)."""

from __future__ import annotations

from typing import Any

from .device import PRECISIONS, check_device
from .params import FOLDER, param
from .runs import check_run_name


def device() -> Any:
    return param("auto", '"auto" (cuda, then mps, then cpu), "cpu" or "cuda"', check=check_device)


def precision() -> Any:
    return param(
        "auto",
        '"auto" (bf16/fp16 only where the hardware has them), "fp32", "bf16" or "fp16"',
        choices=PRECISIONS,
        doc='`"auto"`: bfloat16 on GPUs that have it and on CPUs with native bf16 '
        "(AVX512-BF16, AMX), float16 with a gradient scaler on older GPUs, float32 elsewhere "
        '(e.g. AVX2 CPUs); or force `"fp32"`, `"bf16"`, `"fp16"`',
    )


def run_name(example: str) -> Any:
    """``example``: a name the parameters give, for the docs."""
    return param(
        None,
        "that folder's name; None: named from the parameters (same parameters, same folder)",
        check=check_run_name,
        doc=f"the run folder's name; `None`: named from the parameters, e.g. `{example}`",
    )


def overwrite() -> Any:
    return param(
        False,
        "True: replace a finished run in that folder (otherwise it is refused)",
        doc="a run folder that already holds a finished run is refused unless this is `True`",
    )


def resume() -> Any:
    return param(
        False, "True: continue the interrupted run in that folder from checkpoints/last.pt"
    )


def deterministic() -> Any:
    return param(
        False,
        "True: PyTorch's deterministic algorithms (GPU; slower)",
        doc="PyTorch's deterministic algorithms (for bit-reproducible GPU runs; slower)",
    )


def log_dir() -> Any:
    return param(
        None,
        "a folder: also log to TensorBoard (tensorboard --logdir <log_dir>)",
        what=FOLDER,
        doc="a folder: also log losses, metrics, weight histograms and the figures to "
        "TensorBoard (`tensorboard --logdir <log_dir>`)",
    )


def figures_dir(default: str) -> Any:
    return param(default, "PNG figures are written here", what=FOLDER)


def results_dir(default: str, holds: str) -> Any:
    """``holds``: what a run's folder holds, e.g. "params, metrics, history, checkpoints"."""
    return param(
        default,
        f"each run gets its own folder here: {holds}",
        what=FOLDER,
        doc="each run gets its own folder here (see [Runs](runs.md#runs-resume-and-"
        "reproducibility)); `<results_dir>/metrics.json` is a copy of the latest run's metrics",
    )
