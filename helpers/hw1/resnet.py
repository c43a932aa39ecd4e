"""ResNet-18/34 for 32x32 images, built from torchvision's ``BasicBlock``.

The ImageNet ResNet shrinks a 224x224 image 4x in its stem (7x7 stride-2 conv and a
max-pool); at 32x32 that throws away most of the image, so the CIFAR variant uses a
3x3 stride-1 stem and no max-pool. ``width`` is the number of channels of the first
stage (64 = the usual CIFAR ResNet); the stages have width, 2x, 4x and 8x channels.
The model takes float images in [0, 1] and normalises them itself, so a checkpoint
carries everything needed to classify a raw image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from ..core.errors import ParameterError
from ..core.inference import shape_table

ARCH_BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def check_arch(arch: str) -> tuple[int, ...]:
    """Blocks per stage for ``arch``, or a clear error listing the valid names."""
    if arch not in ARCH_BLOCKS:
        raise ParameterError(f"arch={arch!r} is unknown; choose one of {', '.join(ARCH_BLOCKS)}.")
    return ARCH_BLOCKS[arch]


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` with the statistics stored as buffers."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ResNetEncoder(nn.Module):
    """Stem and four residual stages; returns the final feature map (8x width channels)."""

    def __init__(self, arch: str = "resnet34", width: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        blocks = check_arch(arch)
        if not isinstance(width, int) or width < 1:
            raise ParameterError(f"width={width!r} must be a positive integer, e.g. 64 or 32.")
        self.arch, self.width = arch, width
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages, channels = [], width
        for i, n_blocks in enumerate(blocks):
            out = width * 2**i
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or channels != out:
                downsample = nn.Sequential(
                    nn.Conv2d(channels, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
                )
            layers = [BasicBlock(channels, out, stride, downsample)]
            layers += [BasicBlock(out, out) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*layers))
            channels = out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for (
            m
        ) in self.modules():  # zero-init the last BN of each block: each block starts as identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _conv_norm(conv: Any, norm: Any) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    if not (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)):
        raise TypeError(f"expected a convolution and a batch norm, got {conv!r} and {norm!r}")
    return conv, norm


def conv_norm_pairs(encoder: ResNetEncoder) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """Every convolution of ``encoder`` with the batch norm that follows it."""
    pairs = [_conv_norm(encoder.stem[0], encoder.stem[1])]
    for stage in (encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4):
        for block in stage:
            pairs += [_conv_norm(block.conv1, block.bn1), _conv_norm(block.conv2, block.bn2)]
            if isinstance(block.downsample, nn.Sequential):  # else None: no shortcut conv
                pairs.append(_conv_norm(block.downsample[0], block.downsample[1]))
    return pairs


@torch.no_grad()
def match_init_norms(encoder: ResNetEncoder) -> list[float]:
    """Rescale every convolution to the norm a freshly initialised one has (Kaiming normal,
    fan-out: sqrt(2 x input channels)), and its batch norm's running statistics with it;
    returns each convolution's factor (old norm / new norm).

    The network computes the same function afterwards (a convolution followed by batch
    norm is blind to the scale of its weights), but it learns at another speed: under
    batch norm a weight's effective learning rate is LR / |w|^2, so a pretrained
    convolution whose weights grew twice as large learns four times slower than a fresh one.
    """
    factors = []
    for conv, norm in conv_norm_pairs(encoder):
        current = float(conv.weight.norm())
        target = (2.0 * conv.in_channels) ** 0.5
        scale = target / max(current, 1e-12)
        conv.weight.mul_(scale)
        if norm.running_mean is not None and norm.running_var is not None:
            norm.running_mean.mul_(scale)
            norm.running_var.mul_(scale**2)
        factors.append(current / target)
    return factors


class ResNetClassifier(nn.Module):
    """Normalise, encode, global-average-pool, and a linear layer to class logits."""

    def __init__(
        self,
        arch: str = "resnet34",
        width: int = 64,
        num_classes: int = 10,
        mean: tuple[float, ...] = CIFAR10_MEAN,
        std: tuple[float, ...] = CIFAR10_STD,
    ) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.encoder = ResNetEncoder(arch, width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.encoder.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.encoder(self.normalize(x))).flatten(1)
        return self.fc(features)


def build_classifier(arch: str, width: int = 64, num_classes: int = 10) -> ResNetClassifier:
    """The classifier for ``arch`` ("resnet18" or "resnet34") at ``width`` base channels."""
    return ResNetClassifier(arch, width, num_classes)


# The submodules whose outputs show how the image shrinks: the stem keeps 32x32 (3x3
# convolution of stride 1, no max-pool), each stage after the first halves it.
STAGES = {
    "encoder.stem": "stem: 3x3 conv, stride 1",
    "encoder.layer1": "stage 1",
    "encoder.layer2": "stage 2 (stride 2)",
    "encoder.layer3": "stage 3 (stride 2)",
    "encoder.layer4": "stage 4 (stride 2)",
    "pool": "global average pool",
    "fc": "linear: class logits",
}


def stage_shapes(model: ResNetClassifier, images: torch.Tensor) -> str:
    """One batch of ``images`` through ``model`` (eval mode, nothing changed) and the shape
    after the stem, each stage, the pooling and the classifier, a line each."""
    return shape_table(model, images, STAGES)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
