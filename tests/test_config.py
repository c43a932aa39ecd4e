import pytest

from conftest import HW1_BASE as BASE
from helpers.core.device import select_device
from helpers.core.errors import ParameterError
from helpers.hw1.presets import HW1_PRESETS
from helpers.hw1.settings import resolve_hw1


def test_preset_fills_what_is_not_given_and_explicit_values_win():
    s = resolve_hw1("cpu", **BASE, epochs=None, arch=None)
    assert s.epochs == HW1_PRESETS["cpu"]["epochs"] and s.arch == HW1_PRESETS["cpu"]["arch"]
    s = resolve_hw1("cpu", **BASE, epochs=3, arch="resnet34", width=8)
    assert (s.epochs, s.arch, s.width) == (3, "resnet34", 8)
    assert resolve_hw1("full", **BASE).arch == "resnet34"


def test_the_cpu_recipe_hands_its_batch_norm_lr_factor_to_training():
    from helpers.hw1.steps import fit_config

    cpu_factor = fit_config(resolve_hw1("cpu", **BASE)).bn_lr_factor
    assert cpu_factor == HW1_PRESETS["cpu"]["bn_lr_factor"] > 1  # the recipe trains them faster
    assert fit_config(resolve_hw1("full", **BASE)).bn_lr_factor == 1.0
    assert (
        fit_config(resolve_hw1("cpu", **BASE, bn_lr_factor=2.0)).bn_lr_factor == 2.0
    )  # a given value wins


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(preset="fast"), "preset='fast' is unknown; choose one of full, cpu"),
        (dict(arch="vgg"), "arch='vgg' is unknown; choose one of resnet18, resnet34"),
        (dict(device="tpu"), "device='tpu' is unknown"),
        (dict(epochs=0), "epochs=0 must be an integer >= 1"),
        (dict(batch_size=-2), "batch_size=-2 must be an integer >= 1"),
        (dict(fraction=0), r"fraction=0 must lie in \(0, 1\] \(1.0 uses all labelled"),
        (dict(fraction=1.2), r"fraction=1.2 must lie in \(0, 1\]"),
        (dict(lr=0), "lr=0 must be a positive number"),
        (dict(bn_lr_factor=0), "bn_lr_factor=0 must be a positive number"),
        (dict(widht=32), "unknown parameter"),
        (dict(run_name="a/b"), "run_name='a/b' must be a plain folder name"),
        (dict(run_name=".."), "run_name='..' must be a plain folder name"),
        (dict(log_dir=3), "log_dir=3 must be a folder path"),
        (dict(seed=0.5), "seed=0.5 must be an integer"),
        (dict(max_train_images=0), "max_train_images=0 must be an integer >= 1"),
        (dict(small_crop=-1), r"small_crop=-1 must be an integer >= 0 \(0 turns it off\)"),
        (dict(tta_shift=1.5), "tta_shift=1.5 must be an integer >= 0"),
        (dict(small_crop_share=1.5), r"small_crop_share=1.5 must lie in \[0, 1\]"),
        (dict(pretrain=""), "pretrain='' must be 'none', 'restoration', 'contrastive' or the path"),
        (dict(pretrain_epochs=0), "pretrain_epochs=0 must be an integer >= 1"),
    ],
)
def test_bad_parameters_name_the_problem(change, message):
    params = {**BASE, **change}
    preset = params.pop("preset", "cpu")
    with pytest.raises(ParameterError, match=message):
        resolve_hw1(preset, **params)


def test_cuda_without_gpu_is_explained(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParameterError, match="no CUDA GPU"):
        select_device("cuda")
    assert select_device("auto").type in ("cpu", "mps")


def test_layer_decay_shapes_only_the_fine_tuning_of_a_pretrained_encoder():
    """A study's `--set layer_decay=0.7` reaches every arm: from scratch it must not slow the
    stem."""
    assert resolve_hw1("cpu", **BASE, layer_decay=0.7).layer_decay == 1.0
    assert resolve_hw1("cpu", **BASE, pretrain="restoration", layer_decay=0.7).layer_decay == 0.7
    assert (
        resolve_hw1("cpu", **BASE, pretrain="contrastive").layer_decay == 1.0
    )  # the default: one LR
    with pytest.raises(ParameterError, match="layer_decay=2 must lie in"):
        resolve_hw1("cpu", **BASE, layer_decay=2)


def test_assignments_are_read_as_json_when_they_parse_else_kept_as_text():
    from helpers.tools.cli import parse_assignments

    assert parse_assignments(
        [
            "epochs=5",
            "channels=[8, 16]",
            "device=cpu",
            "resume=true",
            "log_dir=null",
            "run_name=a=b",
        ]
    ) == {
        "epochs": 5,
        "channels": [8, 16],
        "device": "cpu",
        "resume": True,
        "log_dir": None,
        "run_name": "a=b",
    }


@pytest.mark.parametrize("item", ["epochs", "=5", ""])
def test_an_assignment_without_name_or_value_sign_is_named(item):
    from helpers.tools.cli import parse_assignments

    with pytest.raises(ParameterError, match=f"'{item}' is not NAME=VALUE; write e.g. epochs=5"):
        parse_assignments(["lr=0.1", item])
