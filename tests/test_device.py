"""Precision choice, the channels_last guard against a oneDNN crash, and the GPU-only
branches (float16 autocast with a gradient scaler) exercised on the CPU."""

import contextlib
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from helpers.cifar import load_cifar10
from helpers.device import (autocast_dtype, channels_last_is_safe, compute_record, precision_name)
from helpers.errors import ParameterError
from helpers.models import build_classifier
from helpers.training import Classification, FitConfig, fit

CPU = torch.device("cpu")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_explicit_precisions_map_to_their_types_and_fp32_to_no_autocast():
    assert autocast_dtype(CPU, "fp32") is None and precision_name(CPU, "fp32") == "float32"
    assert autocast_dtype(CPU, "fp16") is torch.float16
    with pytest.warns(UserWarning, match="emulated") if not _native_bf16() else contextlib.nullcontext():
        assert autocast_dtype(CPU, "bf16") is torch.bfloat16


def test_auto_uses_bf16_on_the_cpu_only_with_native_instructions():
    expected = torch.bfloat16 if _native_bf16() else None
    assert autocast_dtype(CPU, "auto") is expected


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(ParameterError, match="precision='half' is unknown; choose one of auto, fp32, bf16, fp16"):
        autocast_dtype(CPU, "half")
    with pytest.raises(ParameterError, match="precision='fp64'"):
        FitConfig(epochs=1, batch_size=8, lr=0.1, precision="fp64")


def test_compute_record_names_precision_and_cpu_capability():
    record = compute_record(CPU, "fp32")
    assert record["precision"] == "fp32" and record["compute_dtype"] == "float32"
    assert record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["threads"] == torch.get_num_threads()


@pytest.mark.parametrize("width, safe", [(1, False), (2, False), (4, False), (7, False), (8, True), (32, True)])
def test_channels_last_is_refused_for_strided_1x1_convolutions_of_2_to_7_channels(width, safe):
    # the shortcuts of stages 2-4 take width, 2 x width and 4 x width channels (width 1: 1, 2, 4)
    assert channels_last_is_safe(build_classifier("resnet18", width), CPU) is safe


def test_only_strided_1x1_convolutions_are_affected():
    assert channels_last_is_safe(nn.Conv2d(4, 8, 1, stride=1), CPU)
    assert channels_last_is_safe(nn.Conv2d(4, 8, 3, stride=2), CPU)
    assert not channels_last_is_safe(nn.Conv2d(4, 8, 1, stride=2), CPU)
    assert channels_last_is_safe(nn.Conv2d(4, 8, 1, stride=2), torch.device("cuda"))


CRASH_SEQUENCE = textwrap.dedent("""
    import torch
    from helpers.cifar import load_cifar10
    from helpers.models import build_classifier
    from helpers.training import Classification, FitConfig, fit
    torch.set_num_threads(1)
    train, _ = load_cifar10({data!r})
    for channels_last in (False, True):  # the reduced sequence: default format, then channels_last
        torch.manual_seed(0)
        model = build_classifier("resnet18", 4)
        config = FitConfig(epochs=1, batch_size=32, lr=0.05, precision="fp32", progress=False,
                           channels_last=channels_last)
        fit(model, train, None, Classification(10), config, torch.device("cpu"))
    print("survived")
""")


def test_the_avx2_crash_sequence_runs_through_fit_in_a_subprocess(cifar_dir):
    """On AVX2 oneDNN, a width-4 ResNet's channels_last backward segfaults (1 thread) or
    hangs (2 threads); fit must keep it in the default format. A subprocess, so that a
    regression fails this test instead of killing the suite."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", CRASH_SEQUENCE.format(data=str(cifar_dir))],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "survived" in done.stdout, (done.returncode, done.stderr[-2000:])


def test_float16_autocast_with_a_gradient_scaler_trains_on_the_cpu(cifar_dir, tmp_path):
    """The branch a pre-Ampere GPU takes (float16 + GradScaler), run where PyTorch allows it."""
    train, _ = load_cifar10(cifar_dir)
    torch.manual_seed(0)
    model = build_classifier("resnet18", 8)
    config = FitConfig(epochs=3, batch_size=30, lr=0.05, precision="fp16", progress=False)
    result = fit(model, train, None, Classification(10), config, CPU, checkpoint_dir=tmp_path)
    losses = [h["train_loss"] for h in result.history]
    assert all(map(torch.isfinite, map(torch.tensor, losses))) and losses[-1] < losses[0]
    scaler = torch.load(tmp_path / "last.pt", weights_only=False)["scaler"]
    assert scaler["scale"] > 0 and scaler["_growth_tracker"] >= 0  # an enabled scaler kept state


def _native_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
