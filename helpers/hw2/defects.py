"""The ``defects`` signal: a small U-Net trained to find synthetic defects pasted into the
training normals, so that it learns where a normal image's local structure is broken.

Only normal images are needed. Each training image gets, with probability one half, a
defect: a region cut out of *another* training image (mirrored, shifted, its brightness and
contrast changed), blended in under a mask, and the network must output that mask. Two
kinds of masks cover what local defects look like without knowing a data set's defects:

* blobs: smooth random noise, upsampled from a random grid (2x2 to 16x16) and thresholded
  at a random high quantile (the Perlin-noise masks of DRAEM, Zavrtanik et al. 2021);
* scars: thin rotated strips a few pixels wide (CutPaste's "scar", Li et al. 2021), the
  shape of cracks and scratches.

An image's score is the mean of the top 1 % of its defect map: large where a small part of
the image looks pasted in. The map itself shows where (``DefectNet.maps``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.images import run_in_batches
from ..core.metrics import LossMeter

DEFECT_SHARE = 0.5  # of the training images that get a synthetic defect
TOP_SHARE = 0.01  # of the map's pixels averaged into the image's score
OPACITY = (0.0, 0.7)  # how much of the original shows through the pasted region
GAIN = (0.3, 1.5)  # brightness gain and offset of the pasted region
OFFSET = (-0.3, 0.3)


def blob_masks(n: int, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """(n, 1, H, W) masks of smooth random blobs: noise on a grid of 2-16 cells, upsampled
    bicubically and thresholded at a random quantile between 0.85 and 0.99."""
    device = generator.device
    masks = []
    for _ in range(n):
        cells = 2 ** int(torch.randint(1, 5, (1,), generator=generator, device=device))
        noise = torch.randn(1, 1, cells + 1, cells + 1, generator=generator, device=device)
        noise = F.interpolate(noise, size=size, mode="bicubic", align_corners=True)[0, 0]
        quantile = float(torch.empty(1, device=device).uniform_(0.85, 0.99, generator=generator))
        masks.append((noise > torch.quantile(noise.flatten(), quantile)).float())
    return torch.stack(masks)[:, None]


def scar_masks(n: int, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """(n, 1, H, W) masks of thin strips: length 10-40 % of the shorter side, width about
    1.5-5 % of it (a few pixels), any angle, anywhere."""
    device = generator.device
    h, w = size
    side = min(h, w)
    rows, cols = (torch.arange(k, device=device).float() for k in (h, w))
    yy, xx = torch.meshgrid(rows, cols, indexing="ij")
    u = torch.rand(n, 5, generator=generator, device=device)
    cy, cx, angle = u[:, 0, None, None] * h, u[:, 1, None, None] * w, u[:, 2, None, None] * math.pi
    length = (0.1 + 0.3 * u[:, 3, None, None]) * side
    width = (0.8 + 1.7 * u[:, 4, None, None]) * side / 64
    dx, dy = torch.cos(angle), torch.sin(angle)
    along = ((xx - cx) * dx + (yy - cy) * dy).clamp(-length / 2, length / 2)
    distance = torch.hypot(xx - cx - along * dx, yy - cy - along * dy)
    return (distance < width).float()[:, None]


def _uniform(n: int, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    low, high = bounds
    return torch.empty(n, 1, 1, 1, device=generator.device).uniform_(low, high, generator=generator)


def paste_defects(
    images: torch.Tensor, generator: torch.Generator, share: float = DEFECT_SHARE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1], (N, C, H, W) -> (images with synthetic defects, their masks).

    About ``share`` of the images get one defect (a blob or a scar, even odds) filled with
    another image of the batch, mirrored and shifted, its brightness changed; the others and
    their masks stay as they were (all-zero masks)."""
    n, _, h, w = images.shape
    device = generator.device
    is_blob = torch.rand(n, generator=generator, device=device) < 0.5
    masks = torch.where(
        is_blob[:, None, None, None],
        blob_masks(n, (h, w), generator),
        scar_masks(n, (h, w), generator),
    )
    chosen = torch.rand(n, generator=generator, device=device) < share
    masks = masks * chosen.float()[:, None, None, None]
    source = images[torch.randperm(n, generator=generator, device=device)]
    mirror = torch.rand(2, generator=generator, device=device) < 0.5
    flips = [dim for dim, flip in zip((-1, -2), mirror.tolist(), strict=True) if flip]
    if flips:
        source = source.flip(flips)
    shift = torch.randint(0, max(h, w), (2,), generator=generator, device=device).tolist()
    source = torch.roll(source, (shift[0] % h, shift[1] % w), (-2, -1))
    source = (source * _uniform(n, GAIN, generator) + _uniform(n, OFFSET, generator)).clamp(0, 1)
    opacity = _uniform(n, OPACITY, generator)
    pasted = opacity * images + (1 - opacity) * source
    return images * (1 - masks) + pasted * masks, masks


def standardise(images: torch.Tensor) -> torch.Tensor:
    """Each image to zero mean and unit standard deviation (lighting changes between images
    are not defects)."""
    x = images.float()
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) / (x.std((1, 2, 3), keepdim=True) + 1e-3)


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
        nn.GroupNorm(4, outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        nn.GroupNorm(4, outputs),
        nn.ReLU(inplace=True),
    )


class DefectNet(nn.Module):
    """A small U-Net: (N, C, H, W) images -> (N, 1, H, W) defect logits.

    Four stages of (16, 32, 64, 96) channels, each halving the image, then back up with the
    skip connections; any H and W work (the decoder matches each skip's size)."""

    def __init__(self, in_channels: int = 3, channels: tuple[int, ...] = (16, 32, 64, 96)) -> None:
        super().__init__()
        widths = (in_channels, *channels)
        self.down = nn.ModuleList(_block(widths[i], widths[i + 1]) for i in range(len(channels)))
        self.up = nn.ModuleList(
            _block(channels[i] + channels[i - 1], channels[i - 1])
            for i in range(len(channels) - 1, 0, -1)
        )
        self.head = nn.Conv2d(channels[0], 1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x, skips = standardise(images), []
        for i, stage in enumerate(self.down):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for stage, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], 1))
        return self.head(x)

    @torch.no_grad()
    def maps(
        self, images: torch.Tensor, device: torch.device, batch_size: int = 64
    ) -> torch.Tensor:
        """(N, H, W): each pixel's probability of being part of a defect."""
        self.eval()
        parts = run_in_batches(
            lambda x: torch.sigmoid(self(x.float())).squeeze(1).float().cpu(),
            images,
            device,
            batch_size,
        )
        return torch.cat(parts) if parts else torch.zeros(0, *images.shape[-2:])


def top_mean(maps: torch.Tensor, share: float = TOP_SHARE) -> np.ndarray:
    """(N, H, W) maps -> (N,) the mean of each map's top ``share`` of pixels (at least one)."""
    flat = maps.flatten(1)
    k = max(1, round(share * flat.shape[1]))
    return flat.topk(k, dim=1).values.mean(1).numpy()


def defect_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Focal loss (gamma 2, weighted 10) plus soft Dice loss over the batch: the defect
    pixels are a few percent of all, which plain cross-entropy would learn to ignore."""
    logits, masks = logits.float(), masks.float()
    p = torch.sigmoid(logits)
    focal = F.binary_cross_entropy_with_logits(logits, masks, reduction="none") * (p - masks).pow(2)
    dice = 1 - (2 * (p * masks).sum() + 1) / (p.sum() + masks.sum() + 1)
    return 10 * focal.mean() + dice


class DefectSegmentation:
    """The training objective for :func:`helpers.core.training.fit`: paste synthetic defects
    (:func:`paste_defects`) into the batch and predict their masks (:func:`defect_loss`).
    The last epoch is kept: the validation loss on freshly drawn defects is noisy and
    says little about how the real ones are seen."""

    monitor, maximize, window = "epoch", True, 1

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        images, masks = paste_defects(x.float(), generator)
        logits = model(images.to(x.dtype))
        return defect_loss(logits, masks), logits

    def meter(self, device: torch.device) -> LossMeter:
        return LossMeter(device)
