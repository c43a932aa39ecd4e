"""SimCLR-style contrastive pretraining: the baseline that restoration pretraining is
measured against.

Two random views of each image are made on the device (:func:`simclr_views`), the
encoder and a small projection head map both to vectors, and :func:`nt_xent` pulls the
two views of an image together and pushes every other image of the batch away
(Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.augment import color_jitter, random_flip, to_float
from .resnet import CIFAR10_MEAN, CIFAR10_STD, Normalize, ResNetEncoder


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """The normalised-temperature cross-entropy of SimCLR for ``n`` pairs of views.

    Each of the ``2n`` vectors must pick out its partner among the other ``2n - 1``;
    similarities are cosines divided by ``temperature``.
    """
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    n = len(z1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))  # a view is not its own partner
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(similarity, partner)


def random_resized_crop(
    x: torch.Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """Per image, a random window of ``scale`` of the area and aspect ``ratio``, resized back
    to the image size (one batched ``grid_sample``)."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=generator, device=x.device)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    log_r = torch.log(torch.tensor(ratio, device=x.device))
    aspect = torch.exp(log_r[0] + (log_r[1] - log_r[0]) * u[:, 1])
    w = (area * aspect).sqrt().clamp(max=1.0)
    h = (area / aspect).sqrt().clamp(max=1.0)
    cx = (1 - w) * (2 * u[:, 2] - 1)  # window centre, in [-1, 1] coordinates
    cy = (1 - h) * (2 * u[:, 3] - 1)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_grayscale(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Turn each image grey with probability ``p``."""
    grey = torch.rand(x.shape[0], generator=generator, device=x.device) < p
    return torch.where(grey[:, None, None, None], x.mean(1, keepdim=True).expand_as(x), x)


def simclr_views(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One SimCLR view of each uint8 image: crop-and-resize, mirror, strong colour jitter
    (80 % of images), grey (20 %); float in [0, 1]."""
    x = random_resized_crop(to_float(images), generator)
    x = random_flip(x, generator)
    jittered = color_jitter(x, 0.4, generator)
    keep = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.8
    x = torch.where(keep[:, None, None, None], jittered, x)
    return random_grayscale(x, 0.2, generator)


class ContrastiveNet(nn.Module):
    """The classifier's encoder, average-pooled, and a two-layer projection head."""

    def __init__(self, arch: str, width: int, projection_dim: int = 128) -> None:
        super().__init__()
        self.normalize = Normalize(CIFAR10_MEAN, CIFAR10_STD)
        self.encoder = ResNetEncoder(arch, width)
        channels = self.encoder.out_channels
        self.head = nn.Sequential(
            nn.Linear(channels, channels),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.Linear(channels, projection_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(self.normalize(x)).mean((2, 3))
        return self.head(features)


class ContrastiveObjective:
    """:func:`nt_xent` between two views of each batch, for :func:`helpers.core.training.fit`
    (its batch arrives as uint8 images; the views are drawn with the run's generator)."""

    monitor, maximize, window = "epoch", True, 1

    def __init__(self, temperature: float = 0.2) -> None:
        self.temperature = temperature

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        v1, v2 = simclr_views(x, generator), simclr_views(x, generator)
        z = model(torch.cat([v1, v2]))
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, self.temperature), z

    def meter(self, device: torch.device):
        from ..core.metrics import LossMeter

        return LossMeter(device)
