"""Self-supervised pretraining of the ResNet encoder by image restoration.

The classifier's encoder plus a light decoder learn to rebuild clean images from
corrupted ones (random masked patches plus Gaussian noise). No labels are used. The
encoder is saved on its own, with its arch and width, and loaded into a classifier
before fine-tuning.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .checkpoints import load_checked
from .errors import CheckpointError
from .models import CIFAR10_MEAN, CIFAR10_STD, Normalize, ResNetClassifier, ResNetEncoder
from .runs import save_torch


def corrupt(x: torch.Tensor, generator: torch.Generator, mask_ratio: float = 0.5,
            patch: int = 4, noise_std: float = 0.1) -> torch.Tensor:
    """Grey out a random ``mask_ratio`` of the ``patch`` x ``patch`` squares of each image
    and add Gaussian noise of ``noise_std``; float images in [0, 1] in and out."""
    n, _, h, w = x.shape
    keep = torch.rand(n, 1, -(-h // patch), -(-w // patch), generator=generator,
                      device=x.device) >= mask_ratio
    keep = keep.repeat_interleave(patch, 2).repeat_interleave(patch, 3)[:, :, :h, :w]
    out = torch.where(keep, x, torch.full_like(x, 0.5))
    if noise_std > 0:
        out = out + noise_std * torch.randn(x.shape, generator=generator, device=x.device,
                                            dtype=x.dtype)
    return out.clamp(0.0, 1.0)


class RestorationNet(nn.Module):
    """The classifier's encoder and a light upsampling decoder back to the image."""

    def __init__(self, arch: str, width: int) -> None:
        super().__init__()
        self.normalize = Normalize(CIFAR10_MEAN, CIFAR10_STD)
        self.encoder = ResNetEncoder(arch, width)
        layers, channels = [], self.encoder.out_channels
        for _ in range(3):  # 4x4 -> 32x32
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False),
                       nn.BatchNorm2d(channels // 2), nn.ReLU(inplace=True)]
            channels //= 2
        layers += [nn.Conv2d(channels, 3, 3, padding=1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(self.normalize(x)))


def save_encoder(net: RestorationNet, path: str | Path, meta: dict) -> Path:
    """Save the encoder's weights with its arch, width and how it was pretrained (the
    decoder is kept too, so the restorations can be shown again later)."""
    return save_torch(path, {"arch": net.encoder.arch, "width": net.encoder.width,
                             "encoder": net.encoder.state_dict(),
                             "decoder": net.decoder.state_dict(), "meta": meta})


def load_restoration_net(path: str | Path) -> RestorationNet:
    """The whole encoder-decoder saved by :func:`save_encoder`."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = RestorationNet(state["arch"], state["width"])
    net.encoder.load_state_dict(state["encoder"])
    net.decoder.load_state_dict(state["decoder"])
    return net


def load_encoder(classifier: ResNetClassifier, path: str | Path) -> dict:
    """Load a pretrained encoder into ``classifier``; returns the checkpoint's ``meta``.

    A checkpoint of another arch or width is refused with a clear error.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"encoder checkpoint {path} does not exist; use pretrain='restoration' "
                              "to make one, or give the path of an existing one.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        arch, width, weights = state["arch"], state["width"], state["encoder"]
    except Exception as exc:  # not a file we wrote
        raise CheckpointError(f"{path} is not an encoder checkpoint ({type(exc).__name__}: {exc}).") from None
    enc = classifier.encoder
    if (arch, width) != (enc.arch, enc.width):
        raise CheckpointError(
            f"encoder checkpoint {path} is for {arch}, width {width}, but the classifier is "
            f"{enc.arch}, width {enc.width}: set arch={arch!r}, width={width}, or pretrain again."
        )
    load_checked(enc, weights, path, f"{arch}, width {width}")
    return state.get("meta", {})
