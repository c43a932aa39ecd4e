"""The anomaly detector's signals: what each measures of an image, and the statistics of
the training normals it is compared with (:class:`~helpers.hw2.detector.Detector` puts
them on one scale and sums them).

1. **Reconstruction**: how badly the autoencoder rebuilds the image. The per-pixel
   squared error is pooled over the image by its ``"mean"`` (the classic score: every
   pixel counts, so small defects do too) or its ``"median"`` (robust: an error must
   spread over half the image to count, so an unfamiliar object at the border of an
   otherwise normal frame does not, while an image the autoencoder rebuilds slightly
   wrong everywhere does).
2. **Global content**: how unusual the image's overall make-up is. The first encoder
   stage's feature maps are summarised per channel by their 25 %, 50 % and 75 %
   quantiles over all positions (robust to what covers only part of the image), and the
   Mahalanobis distance of that summary from the training normals' distribution
   (Ledoit-Wolf covariance, fitted on the normals plus brightness/contrast-jittered
   copies, so that lighting changes alone do not look anomalous) is the score. It sees
   what reconstruction cannot: an image that is easy to rebuild but unlike any normal
   one, e.g. an empty, smooth or recoloured frame. With several autoencoders each one's
   distance is computed in its own feature space and the score is their geometric mean.
3. **Texture**: how much fine detail the image has. The local contrast (the standard
   deviation of the grey image in every full 3x3 window) is summarised by its 25 %, 50 %
   and 75 % quantiles, and their Mahalanobis distance from the training normals' (fitted
   the same way) is the score. It needs no training, so it does not vary with the
   autoencoders' random start, and it sees a frame that is smoother than any normal one
   (an empty bowl) or busier.

4. **Colour**: the image's colour make-up. Each colour channel's 25 %, 50 % and 75 %
   quantiles over all positions, and their Mahalanobis distance from the training
   normals' (fitted the same way). Like texture it needs no training, so it does not
   vary with the autoencoders' random start.
5. **Content**: the mean of the standardised global and colour signals: two views of
   the image's global make-up, one learned and one fixed, that count as one vote in the
   combined score (summing both would count global content twice). The learned view
   varies with the autoencoders' random start; the fixed one halves that variation.
6. **Local**: the worst place in the image. A fixed bank of local filters (the grey
   image normalised by its median and spread, differences of Gaussians at three scales,
   horizontal and vertical gradients, 3x3 local contrast) is applied to every image; at
   every pixel position each response is compared with the training normals' mean and
   standard deviation *at that position*, and the image's score is the largest mean
   squared deviation over positions (:func:`local_maps` gives the whole map). It sees a
   defect a few pixels wide that the image-wide statistics above average away, e.g. a
   crack or a hole in a textured surface, and needs no training.

With a :class:`~helpers.hw2.rotation.TransformationNet` trained on the normals, three
more signals are available, for natural images where reconstruction is weak:
``transformation`` (how unsure the network is which rotation was applied),
``features`` (distance to the nearest normals in its feature space, averaged over
rotated and mirrored views) and ``mahalanobis`` (distance from the normals' Gaussian in
that space, likewise).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from torch import nn
from torch.nn import functional as F

from ..core.augment import BatchAugment, to_float
from ..core.errors import ParameterError
from ..core.images import run_in_batches
from .autoencoder import ConvAutoencoder

POOLINGS = ("median", "mean")
FEATURE_QUANTILES = (0.25, 0.5, 0.75)


@torch.no_grad()
def reconstruct(
    model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 512
) -> torch.Tensor:
    """Reconstructions (float [0, 1], on the CPU) of uint8 ``images``; ``model`` is moved to
    ``device``."""
    model.to(device).eval()
    out = run_in_batches(lambda x: model(x).float().cpu(), images, device, batch_size)
    return torch.cat(out) if out else torch.zeros(0, *images.shape[1:])


def error_maps(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """Per-pixel squared error, averaged over colour channels: (N, H, W)."""
    return (to_float(images) - reconstructions).pow(2).mean(1)


def ensemble_error_maps(
    models: Sequence[nn.Module], images: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """The mean over ``models`` of each one's per-pixel error maps: (N, H, W)."""
    maps = (error_maps(images, reconstruct(m, images, device)) for m in models)
    return functools.reduce(torch.add, maps) / len(models)


def pool_errors(maps: torch.Tensor, pooling: str = "median") -> np.ndarray:
    """One reconstruction score per image: the median (robust) or mean per-pixel error."""
    if pooling not in POOLINGS:
        raise ParameterError(
            f"pooling={pooling!r} is unknown; choose one of {', '.join(POOLINGS)}."
        )
    flat = maps.flatten(1)
    pooled = flat.median(1).values if pooling == "median" else flat.mean(1)
    return pooled.numpy()


def channel_quantiles(values: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(B, C, positions) -> (B, len(q) x C): each channel's quantiles ``q`` over positions,
    all channels' first quantile, then all channels' second, ..."""
    return torch.quantile(values, q, dim=2).permute(1, 0, 2).flatten(1)


def _prepare(
    augment: BatchAugment | None, generator: torch.Generator | None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """How a feature function readies a uint8 batch: ``augment`` drawing from ``generator``,
    or (no ``augment``) the plain float image."""
    if augment is None:
        return to_float
    if generator is None:
        raise ParameterError("an augmented feature pass needs a generator to draw from.")
    return lambda batch: augment(batch, generator)


def _per_image(
    features: Callable[[torch.Tensor], torch.Tensor],
    batches: tuple[torch.Tensor, torch.device, int, BatchAugment | None, torch.Generator | None],
    width: int,
) -> np.ndarray:
    """``features`` of each batch of images (readied by :func:`_prepare`), one row of
    ``width`` numbers per image: (N, width). ``batches`` is (images, device, batch size,
    augment, generator)."""
    images, device, batch_size, augment, generator = batches
    out = run_in_batches(features, images, device, batch_size, _prepare(augment, generator))
    return torch.cat(out).numpy() if out else np.zeros((0, width))


@torch.no_grad()
def global_features(
    model: ConvAutoencoder,
    images: torch.Tensor,
    device: torch.device,
    augment: BatchAugment | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """Per image, the 25/50/75 % quantiles over positions of each channel of the
    autoencoder's first encoder stage (:meth:`~ConvAutoencoder.early_features`):
    (N, 3 x channels). ``model`` is moved to ``device``."""
    model.to(device).eval()
    q = torch.tensor(FEATURE_QUANTILES, device=device)
    return _per_image(
        lambda x: channel_quantiles(model.early_features(x).float().flatten(2), q).cpu(),
        (images, device, batch_size, augment, generator),
        len(FEATURE_QUANTILES) * model.early_channels,
    )


@torch.no_grad()
def texture_features(
    images: torch.Tensor,
    device: torch.device,
    augment: BatchAugment | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """Per image, the 25/50/75 % quantiles of its local contrast: the standard deviation
    of the grey image in every full 3x3 window (no padding, so the frame's border adds
    no false edges): (N, 3)."""
    q = torch.tensor(FEATURE_QUANTILES, device=device)

    def quantiles(x: torch.Tensor) -> torch.Tensor:
        grey = x.float().mean(1, keepdim=True)
        mean = F.avg_pool2d(grey, 3, stride=1)
        contrast = (F.avg_pool2d(grey * grey, 3, stride=1) - mean * mean).clamp_min(0).sqrt()
        return torch.quantile(contrast.flatten(1), q, dim=1).T.cpu()

    return _per_image(
        quantiles, (images, device, batch_size, augment, generator), len(FEATURE_QUANTILES)
    )


@torch.no_grad()
def colour_features(
    images: torch.Tensor,
    device: torch.device,
    augment: BatchAugment | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """Per image, the 25/50/75 % quantiles over positions of each colour channel:
    (N, 3 x channels)."""
    q = torch.tensor(FEATURE_QUANTILES, device=device)
    return _per_image(
        lambda x: channel_quantiles(x.float().flatten(2), q).cpu(),
        (images, device, batch_size, augment, generator),
        len(FEATURE_QUANTILES) * images.shape[1],
    )


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with mirrored borders (radius capped by the image's size)."""
    radius = max(1, min(int(3 * sigma), min(x.shape[-2:]) - 1))
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = F.pad(x, (radius,) * 4, mode="reflect")
    return F.conv2d(F.conv2d(x, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))


def filter_bank(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) float images -> (N, 7, H, W) local responses of the grey image: itself
    normalised by its median and median absolute deviation, differences of Gaussians
    (sigma 1-2, 2-4, 4-8), x and y gradients, and the standard deviation in 3x3 windows."""
    grey = images.float().mean(1, keepdim=True)
    flat = grey.flatten(1)
    median = flat.median(1, keepdim=True).values
    spread = (flat - median).abs().median(1, keepdim=True).values
    normalised = (grey - median[:, :, None, None]) / (spread[:, :, None, None] + 1e-3)
    blurred = {s: _blur(grey, s) for s in (1, 2, 4, 8)}
    dogs = [blurred[s] - blurred[2 * s] for s in (1, 2, 4)]
    dx = F.pad(grey[..., :, 1:] - grey[..., :, :-1], (0, 1, 0, 0), mode="replicate")
    dy = F.pad(grey[..., 1:, :] - grey[..., :-1, :], (0, 0, 0, 1), mode="replicate")
    mean = F.avg_pool2d(grey, 3, 1, 1, count_include_pad=False)
    contrast = (
        (F.avg_pool2d(grey * grey, 3, 1, 1, count_include_pad=False) - mean**2).clamp_min(0).sqrt()
    )
    return torch.cat([normalised, *dogs, dx, dy, contrast], 1)


@dataclass
class LocalModel:
    """Mean and standard deviation of every :func:`filter_bank` response at every pixel
    position over the training normals (a floor of a tenth of the filter's median
    deviation keeps a position where the normals never vary from dividing by ~0)."""

    mean: torch.Tensor  # (7, H, W)
    std: torch.Tensor

    @classmethod
    @torch.no_grad()
    def fit(cls, images: torch.Tensor, device: torch.device, batch_size: int = 512) -> LocalModel:
        def sums(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            r = filter_bank(x).double()
            return r.sum(0), (r * r).sum(0)

        parts = run_in_batches(sums, images, device, batch_size)
        total = functools.reduce(torch.add, [p[0] for p in parts])
        total_sq = functools.reduce(torch.add, [p[1] for p in parts])
        n = max(len(images), 1)
        mean = total / n
        std = (total_sq / n - mean**2).clamp_min(0).sqrt()
        floor = 0.1 * std.flatten(1).median(1).values.clamp_min(1e-6)
        return cls(mean.float(), torch.maximum(std, floor[:, None, None]).float())

    @torch.no_grad()
    def maps(
        self, images: torch.Tensor, device: torch.device, batch_size: int = 512
    ) -> torch.Tensor:
        """(N, H, W): at each position the mean squared standardised deviation of the responses."""
        out = run_in_batches(
            lambda x: ((filter_bank(x) - self.mean) / self.std).pow(2).mean(1).cpu(),
            images,
            device,
            batch_size,
        )
        return torch.cat(out) if out else torch.zeros(0, *self.mean.shape[1:])


FeatureFunction = Callable[..., np.ndarray]  # (images, device[, augment, generator]) -> (N, D)


def fit_normal_distribution(
    features: FeatureFunction,
    images: torch.Tensor,
    device: torch.device,
    augment: BatchAugment,
    copies: int,
    generator: torch.Generator,
) -> LedoitWolf:
    """Ledoit-Wolf Gaussian of ``features(images, device, augment, generator)`` over the
    images and ``copies`` augmented copies of them (so that lighting changes alone do
    not look anomalous), the copies drawn from ``generator``."""
    parts = [features(images, device)] + [
        features(images, device, augment, generator) for _ in range(copies)
    ]
    return LedoitWolf().fit(np.concatenate(parts))
