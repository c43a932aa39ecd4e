"""Precision choice, the channels_last guard against a oneDNN crash, and the GPU-only
branches (float16 autocast with a gradient scaler) exercised on the CPU."""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from conftest import CPU
from helpers.core import device
from helpers.core.device import autocast_dtype, channels_last_is_safe, precision_name
from helpers.core.errors import ParameterError
from helpers.core.objectives import Classification
from helpers.core.trainer import FitConfig
from helpers.core.training import fit
from helpers.data.cifar import load_cifar10
from helpers.hw1.resnet import build_classifier


def test_explicit_precisions_map_to_their_types_and_fp32_to_no_autocast(monkeypatch):
    assert autocast_dtype(CPU, "fp32") is None and precision_name(CPU, "fp32") == "float32"
    assert autocast_dtype(CPU, "fp16") is torch.float16
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)  # an AVX2 CPU
    with pytest.warns(UserWarning, match="it is emulated and slower than float32"):
        assert autocast_dtype(CPU, "bf16") is torch.bfloat16


@pytest.mark.parametrize("native", [True, False])
def test_auto_uses_bf16_on_the_cpu_only_with_native_instructions(monkeypatch, native):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    assert autocast_dtype(CPU, "auto") is (torch.bfloat16 if native else None)
    assert precision_name(CPU, "auto") == ("bfloat16" if native else "float32")


@pytest.mark.parametrize("supported", [True, False])
def test_auto_on_a_gpu_takes_bf16_where_it_is_supported_and_fp16_elsewhere(monkeypatch, supported):
    cuda = torch.device("cuda")  # only the choice of type: nothing runs on it
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: supported)
    assert autocast_dtype(cuda, "auto") is (torch.bfloat16 if supported else torch.float16)
    assert autocast_dtype(cuda, "fp16") is torch.float16
    if not supported:
        with pytest.raises(
            ParameterError, match="precision='bf16' but this GPU has no bfloat16 support"
        ):
            autocast_dtype(cuda, "bf16")


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(
        ParameterError, match="precision='half' is unknown; choose one of auto, fp32, bf16, fp16"
    ):
        autocast_dtype(CPU, "half")
    with pytest.raises(ParameterError, match="precision='fp64'"):
        FitConfig(epochs=1, batch_size=8, lr=0.1, precision="fp64")


def test_compute_record_names_precision_and_the_cpu_capability_and_threads_the_run_used():
    """In a subprocess whose kernels are capped to the plainest instruction set, on one thread."""
    code = (
        "import json, torch; torch.set_num_threads(1); "
        "from helpers.core.device import compute_record; "
        "print(json.dumps(compute_record(torch.device('cpu'), 'fp32')))"
    )
    env = {
        **os.environ,
        "ATEN_CPU_CAPABILITY": "default",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    record = json.loads(done.stdout.splitlines()[-1])
    assert {k: v for k, v in record.items() if k != "native_bf16"} == {
        "precision": "fp32",
        "compute_dtype": "float32",
        "cpu_capability": "DEFAULT",
        "threads": 1,
    }
    assert isinstance(record["native_bf16"], bool)


@pytest.mark.parametrize(
    "width, safe", [(1, False), (2, False), (4, False), (7, False), (8, True), (32, True)]
)
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
    from helpers.data.cifar import load_cifar10
    from helpers.hw1.resnet import build_classifier
    from helpers.core.objectives import Classification
    from helpers.core.trainer import FitConfig
    from helpers.core.training import fit
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
    env = {
        **os.environ,
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
    }
    done = subprocess.run(
        [sys.executable, "-c", CRASH_SEQUENCE.format(data=str(cifar_dir))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "survived" in done.stdout, (
        done.returncode,
        done.stderr[-2000:],
    )


def test_float16_autocast_with_a_gradient_scaler_trains_on_the_cpu(cifar_dir, tmp_path):
    """The branch a pre-Ampere GPU takes (float16 + GradScaler), run where PyTorch allows it."""
    train, _ = load_cifar10(cifar_dir)
    torch.manual_seed(0)
    model = build_classifier("resnet18", 8)
    config = FitConfig(epochs=3, batch_size=30, lr=0.05, precision="fp16", progress=False)
    result = fit(model, train, None, Classification(10), config, CPU, checkpoint_dir=tmp_path)
    losses = [h["train_loss"] for h in result.history]
    assert all(map(torch.isfinite, map(torch.tensor, losses))) and losses[-1] < losses[0]
    scaler = torch.load(tmp_path / "last.pt", weights_only=False)["scaler"]  # {} for a disabled one
    halvings = math.log2(2.0**16 / scaler["scale"])  # from 65536, halved on every overflowing step
    assert halvings == int(halvings) >= 0
    assert 1 <= scaler["_growth_tracker"] <= 3 * 4 - halvings  # steps since the last halving, of 12


def test_bfloat16_autocast_trains_on_the_cpu(cifar_dir, monkeypatch):
    """The branch of an Ampere GPU's "auto" (bfloat16, no gradient scaler), emulated where need
    be."""
    monkeypatch.setattr(
        device, "cpu_has_native_bf16", lambda: True
    )  # no warning about the emulation
    train, _ = load_cifar10(cifar_dir)
    train = train.subset(range(40))  # emulated bfloat16 is slow: two steps of 20 images per epoch
    torch.manual_seed(0)
    model = build_classifier("resnet18", 4)
    config = FitConfig(epochs=3, batch_size=20, lr=0.05, precision="bf16", progress=False)
    losses = [
        h["train_loss"] for h in fit(model, train, None, Classification(10), config, CPU).history
    ]
    assert all(map(math.isfinite, losses)) and losses[-1] < losses[0]
    assert (
        next(model.parameters()).dtype == torch.float32
    )  # autocast computes in bf16, keeps fp32 weights


@pytest.mark.parametrize(
    "cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_prefers_cuda_then_mps_then_the_cpu(monkeypatch, cuda, mps, expected):
    from helpers.core.device import select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert select_device("auto").type == expected


def test_a_device_that_is_absent_or_unknown_is_named(monkeypatch):
    from helpers.core.device import select_device

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ParameterError, match="device='mps' but no Apple GPU is available"):
        select_device("mps")
    with pytest.raises(
        ParameterError, match="device='tpu' is unknown; choose one of auto, cpu, cuda, mps"
    ):
        select_device("tpu")
    assert select_device("cpu") == CPU


def test_the_cpu_description_survives_a_torch_without_the_probes(monkeypatch):
    def missing():
        raise AttributeError("not in this build")

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", missing)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", missing, raising=False)
    assert device.cpu_capability() == "unknown" and device.cpu_has_native_bf16() is False
    assert device.describe_device(CPU) == f"cpu ({torch.get_num_threads()} threads, unknown)"
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d: "Tesla T4")
    assert device.describe_device(torch.device("cuda")) == "cuda (Tesla T4)"
