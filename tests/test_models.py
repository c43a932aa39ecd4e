import pytest
import torch

from helpers.core.errors import ParameterError
from helpers.hw1.resnet import build_classifier, conv_norm_pairs, count_parameters, match_init_norms


@pytest.mark.parametrize("arch", ["resnet18", "resnet34"])
def test_logits_shape_and_feature_map(arch):
    model = build_classifier(arch, width=8).eval()
    x = torch.rand(3, 3, 32, 32)
    feature_map = model.encoder(model.normalize(x))
    assert feature_map.shape == (
        3,
        64,
        4,
        4,
    )  # 32 -> 4: three stride-2 stages, width 8 -> 64 channels
    with torch.no_grad():  # the logits: a linear layer on each image's averaged feature map
        assert torch.allclose(model(x), model.fc(feature_map.mean((2, 3))), atol=1e-5)
        assert torch.allclose(model(x[1:2]), model(x)[1:2], atol=1e-5)  # per image, batch or not


def test_stem_keeps_full_resolution():
    model = build_classifier("resnet18", width=8)
    stem_conv = model.encoder.stem[0]
    assert stem_conv.stride == (1, 1) and stem_conv.kernel_size == (3, 3)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())


def test_resnet34_is_deeper_and_width_scales_parameters():
    small, deep = build_classifier("resnet18", 16), build_classifier("resnet34", 16)
    assert count_parameters(deep) > 1.8 * count_parameters(small)
    ratio = count_parameters(build_classifier("resnet18", 32)) / count_parameters(small)
    assert 3.5 < ratio < 4.1  # conv parameters grow with width squared


def test_usual_cifar_resnet18_size():
    assert 11.0e6 < count_parameters(build_classifier("resnet18", 64)) < 11.3e6


def test_unknown_arch_lists_choices():
    with pytest.raises(ParameterError, match="resnet18, resnet34"):
        build_classifier("resnet50")


def test_match_init_norms_keeps_the_function_and_restores_a_fresh_encoders_norms():
    torch.manual_seed(0)
    model = build_classifier("resnet18", 8)
    x = torch.randn(16, 3, 32, 32)
    with (
        torch.no_grad()
    ):  # a "pretrained" encoder: weights grown 3x, running statistics that match them
        for conv, _ in conv_norm_pairs(model.encoder):
            conv.weight.mul_(3.0)
        model.train()
        for _ in range(30):
            model(x)
        before_train = model(
            x
        )  # (a train-mode pass updates the running statistics: before the eval pass)
        model.eval()
        before_eval = model(x)
    assert (
        len(conv_norm_pairs(model.encoder)) == 1 + 2 * 8 + 3
    )  # stem, two per block, three shortcuts

    factors = match_init_norms(model.encoder)
    assert (
        min(factors) > 2.0 and max(factors) < 4.5
    )  # about 3x, give or take the random init's spread
    for conv, _ in conv_norm_pairs(model.encoder):
        assert float(conv.weight.detach().norm()) == pytest.approx(
            (2 * conv.in_channels) ** 0.5, rel=1e-5
        )
    with torch.no_grad():
        after_eval = model(x)
        model.train()
        after_train = model(x)
    assert torch.allclose(
        after_train, before_train, atol=1e-4
    )  # batch norm is blind to the weights' scale
    assert torch.allclose(
        after_eval, before_eval, atol=1e-3
    )  # and so are the rescaled running statistics


def test_the_stage_table_shows_the_32x32_stem_and_leaves_the_model_as_it_was():
    """What the notebook prints to show the adaptation: no stage shrinks the image before
    stage 2, and a forward pass for the table changes no weight, statistic or mode."""
    from helpers.hw1.resnet import stage_shapes

    model = build_classifier("resnet18", width=8).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    table = stage_shapes(model, torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
    lines = table.splitlines()
    assert lines[1].startswith("stem: 3x3 conv, stride 1") and "# 32x32 => 32x32" in lines[1]
    assert "# 32x32 => 32x32" in lines[2] and "(4, 16, 16, 16)" in lines[3]
    assert "# 8x8 => 4x4" in lines[5] and lines[-1].endswith("(4, 10)")
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
