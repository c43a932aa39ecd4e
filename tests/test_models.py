import pytest
import torch

from helpers.errors import ParameterError
from helpers.models import build_classifier, count_parameters


@pytest.mark.parametrize("arch", ["resnet18", "resnet34"])
def test_logits_shape_and_feature_map(arch):
    model = build_classifier(arch, width=8).eval()
    x = torch.rand(3, 3, 32, 32)
    assert model(x).shape == (3, 10)
    assert model.encoder(model.normalize(x)).shape == (3, 64, 4, 4)  # 32 -> 4: three stride-2 stages


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
