"""Batched augmentation on the device, for uint8 image tensors.

Every function takes a whole batch ``(N, C, H, W)`` and a ``torch.Generator`` on the
same device, so augmentation costs a few tensor ops per batch and is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torchvision.transforms import v2


class Augment(Protocol):
    """What :func:`helpers.core.training.fit` does to each uint8 batch on the device, told
    the epoch first (a schedule may change with it)."""

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...

    def set_epoch(self, epoch: int) -> None: ...


class SameEveryEpoch:
    """An :class:`Augment` that does not change with the epoch: ``fn(images, generator)``."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Generator], torch.Tensor]) -> None:
        self.fn = fn

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.fn(images, generator)

    def set_epoch(self, epoch: int) -> None:
        pass


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1], always a new tensor (the input is never changed)."""
    return images.to(torch.float32, copy=True).div_(255.0)


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Reflect-pad by ``pad`` pixels and cut a random window of the original size."""
    if pad <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    padded = padded.gather(2, rows.expand(n, c, h, w + 2 * pad))
    cols = (dx[:, None] + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    return padded.gather(3, cols.expand(n, c, h, w))


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one random ``size`` x ``size`` square per image (may overlap the border)."""
    if size <= 0:
        return x
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1, 1), generator=generator, device=x.device)
    cx = torch.randint(0, w, (n, 1, 1), generator=generator, device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy).abs() <= size // 2) & ((xs - cx).abs() <= size // 2)
    return x.masked_fill(inside[:, None], 0.0)


def color_jitter(x: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Mild random brightness, contrast and saturation changes (float images in [0, 1])."""
    if strength <= 0:
        return x
    n = x.shape[0]

    def factor() -> torch.Tensor:
        u = torch.rand(n, 1, 1, 1, generator=generator, device=x.device)
        return 1.0 + strength * (2.0 * u - 1.0)

    x = x * factor()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor() + mean
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * factor() + gray
    return x.clamp_(0.0, 1.0)


def trivial_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """TrivialAugment (Muller & Hutter 2021, torchvision's ``TrivialAugmentWide``): one
    operation of random strength per uint8 image, drawn from the global RNG re-seeded from
    ``generator``, so a seeded run and its resumed copy draw the same."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    policy = v2.TrivialAugmentWide()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.stack([policy(image) for image in images])


def window(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A random ``size`` x ``size`` window of each image (no padding, no host sync)."""
    n, c, h, w = x.shape
    if size >= min(h, w):
        return x
    dy = torch.randint(0, h - size + 1, (n,), generator=generator, device=x.device)
    dx = torch.randint(0, w - size + 1, (n,), generator=generator, device=x.device)
    rows = (dy[:, None] + torch.arange(size, device=x.device)).view(n, 1, size, 1)
    x = x.gather(2, rows.expand(n, c, size, w))
    cols = (dx[:, None] + torch.arange(size, device=x.device)).view(n, 1, 1, size)
    return x.gather(3, cols.expand(n, c, size, size))


@dataclass
class BatchAugment:
    """The training-time augmentation of a recipe: uint8 batch in, float [0, 1] batch out.

    With ``small_crop`` and ``small_crop_epochs``, the first epochs train on random
    ``small_crop``-pixel windows of the (already shifted and flipped) images: a
    convolutional network with global pooling takes any size, a 24-pixel window costs
    about half the compute of the whole image, and objects keep their size, so the last
    epochs at full size (and the test) see them as the early ones did (progressive
    resizing, as in fast.ai's and FFCV's ImageNet recipes). ``fit`` calls ``set_epoch``.
    ``trivial`` adds :func:`trivial_augment` before the crop (with few labels).
    """

    crop_pad: int = 4
    flip: bool = True
    cutout: int = 0
    trivial: bool = False
    jitter: float = 0.0
    small_crop: int = 0
    small_crop_epochs: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.trivial:
            images = trivial_augment(images, generator)
        x = to_float(images)
        x = random_crop(x, self.crop_pad, generator)
        if self.flip:
            x = random_flip(x, generator)
        x = color_jitter(x, self.jitter, generator)
        x = cutout(x, self.cutout, generator)
        if self.small_crop and self.epoch < self.small_crop_epochs:
            x = window(x, self.small_crop, generator)
        return x
