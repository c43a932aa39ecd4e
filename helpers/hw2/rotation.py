"""A self-supervised signal for natural images: which transformation was applied?

A small ResNet learns, from the normal images alone, to tell which of a few geometric
transformations (rotations by multiples of 90 degrees, and shifts) was applied to an
image (RotNet, Gidaris et al. 2018; GeoTrans, Golan and El-Yaniv 2018). To do that it
must learn what upright normal images look like, so it is confident on normal images
and unsure on images of other content. Three signals come from it:

- ``transformation``: the mean negative log-probability it gives the true
  transformation, over all of them (low on normal images);
- ``features``: the cosine distance from an image's features to their nearest training
  normals' (k-nearest neighbours), in every view: each rotation of the image and of its
  mirror image is compared with the training normals under the same view, and the
  distances are averaged (as CSI, Tack et al. 2020, ensembles its score over
  transformations). On one-class CIFAR-10 this lifted the signal's mean AUROC from 0.713
  (the upright image alone) to 0.741.
- ``mahalanobis``: the Mahalanobis distance of the same features from the training
  normals' Gaussian (Ledoit-Wolf covariance), one Gaussian per view, averaged.

Rotations by 90 and 270 degrees need square images; other images use 0 and 180 only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.covariance import LedoitWolf
from torch import nn

from ..core.augment import random_crop, random_flip, to_float
from ..core.errors import ParameterError
from ..core.images import run_in_batches
from ..core.metrics import ConfusionMeter
from ..hw1.resnet import Normalize, ResNetEncoder

SHIFT = 8  # pixels of the shift transformations, when they are used


def transformation_list(height: int, width: int, shifts: bool = True) -> list[tuple[int, int, int]]:
    """(quarter turns, dy, dx) of every transformation: the rotations the image's shape
    allows, each with or without the eight shifts by ``SHIFT`` pixels."""
    turns = (0, 1, 2, 3) if height == width else (0, 2)
    offsets = (
        [(dy, dx) for dy in (-SHIFT, 0, SHIFT) for dx in (-SHIFT, 0, SHIFT)] if shifts else [(0, 0)]
    )
    return [(k, dy, dx) for dy, dx in offsets for k in turns]


def apply_transformation(x: torch.Tensor, turns: int, dy: int, dx: int) -> torch.Tensor:
    """Rotate float images (N, C, H, W) by ``turns`` quarter turns, then shift them by
    (dy, dx) pixels, filling the border by reflection."""
    x = torch.rot90(x, turns, (2, 3)) if turns else x
    if dy or dx:
        p = max(abs(dy), abs(dx))
        h, w = x.shape[-2:]
        padded = F.pad(x, (p, p, p, p), mode="reflect")
        x = padded[:, :, p + dy : p + dy + h, p + dx : p + dx + w]
    return x


class TransformationNet(nn.Module):
    """Normalise, a ResNet encoder, global average pooling, one logit per transformation."""

    def __init__(
        self,
        num_transformations: int,
        arch: str = "resnet18",
        width: int = 16,
        in_channels: int = 3,
        mean: float = 0.5,
        std: float = 0.25,
    ) -> None:
        super().__init__()
        self.normalize = Normalize((mean,) * in_channels, (std,) * in_channels)
        self.encoder = ResNetEncoder(arch, width, in_channels)
        self.head = nn.Linear(self.encoder.out_channels, num_transformations)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.normalize(x)).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class TransformationPrediction:
    """The training objective for :func:`helpers.core.training.fit`: each image of the batch
    gets a random transformation, and the network must name it (cross-entropy).

    The last epoch is kept: with a few hundred normal images the validation loss of
    this task rises early as the network grows confident (on one-class CIFAR-10 birds,
    its minimum came at epoch 32 of 136), while the network's anomaly scores keep
    improving, so selecting on it would keep an undertrained network. The validation
    curves are still recorded.
    """

    monitor, maximize, window = "epoch", True, 1

    def __init__(self, transformations: list[tuple[int, int, int]]) -> None:
        self.transformations = transformations

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        which = torch.randint(
            len(self.transformations), (len(x),), generator=generator, device=x.device
        )
        order = torch.argsort(which)  # one transformation at a time, all images at once
        x, which = x[order], which[order]
        parts, start = [], 0
        for t, count in enumerate(
            torch.bincount(which, minlength=len(self.transformations)).tolist()
        ):
            if count:
                parts.append(
                    apply_transformation(x[start : start + count], *self.transformations[t])
                )
                start += count
        logits = model(torch.cat(parts).contiguous(memory_format=torch.channels_last))
        return F.cross_entropy(logits.float(), which), _Scored(logits, which)

    def meter(self, device: torch.device) -> _TransformationMeter:
        return _TransformationMeter(len(self.transformations), device)


@dataclass
class _Scored:
    """Logits with the transformations they should name (the shuffled batch's labels)."""

    logits: torch.Tensor
    targets: torch.Tensor

    def detach(self) -> _Scored:
        return _Scored(self.logits.detach(), self.targets)


class _TransformationMeter(ConfusionMeter):
    """Loss and accuracy of naming the transformations (the batch's own labels are unused)."""

    # fit hands a meter what its own objective's loss returns: here a _Scored, not logits
    def update(self, loss: torch.Tensor, out: _Scored, targets: torch.Tensor) -> None:  # type: ignore[override]
        super().update(loss, out.logits, out.targets)


def check_transformations(
    model: TransformationNet, transformations: list[tuple[int, int, int]]
) -> None:
    """A clear error unless ``transformations`` is the non-empty list ``model`` names."""
    if not transformations:
        raise ParameterError(
            "transformations=[] is empty: pass the list the rotation network was trained "
            "to name, e.g. transformation_list(height, width, shifts=False)."
        )
    if len(transformations) != model.head.out_features:
        raise ParameterError(
            f"{len(transformations)} transformations for a network that names "
            f"{model.head.out_features}: pass the list it was trained with "
            "(transformation_list(height, width, shifts=False) for the images' shape)."
        )


def augment_normals(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Training-time augmentation that keeps images normal: mirror images and small
    shifts (smaller than the shift transformations, so they stay distinguishable)."""
    return random_flip(random_crop(to_float(images), 2, generator), generator)


@torch.no_grad()
def transformation_scores(
    model: TransformationNet,
    images: torch.Tensor,
    device: torch.device,
    transformations: list[tuple[int, int, int]],
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Per image: the mean negative log-probability of the true transformation over all
    of them, and the L2-normalised features of every view, (N, views, D): each unshifted
    transformation (rotation) of the image, then each of its mirror image. ``model`` is moved
    to ``device``."""
    check_transformations(model, transformations)
    model.to(device).eval()

    def score(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        nll = torch.zeros(len(x), device=device)
        views, mirrored = [], []
        for t, (turns, dy, dx) in enumerate(transformations):
            h = model.features(
                apply_transformation(x, turns, dy, dx).contiguous(memory_format=torch.channels_last)
            )
            nll -= F.log_softmax(model.head(h).float(), 1)[:, t]
            if not (dy or dx):
                views.append(F.normalize(h.float(), dim=1))
                mirror = apply_transformation(x.flip(-1), turns, 0, 0).contiguous(
                    memory_format=torch.channels_last
                )
                mirrored.append(F.normalize(model.features(mirror).float(), dim=1))
        return (nll / len(transformations)).cpu(), torch.stack(views + mirrored, 1).cpu()

    parts = run_in_batches(score, images, device, batch_size)
    return torch.cat([p[0] for p in parts]).numpy(), torch.cat([p[1] for p in parts]).numpy()


def knn_distance(features: np.ndarray, reference: np.ndarray, k: int = 5) -> np.ndarray:
    """Mean cosine distance from each (normalised) feature vector to its ``k`` nearest
    reference vectors. With views, (N, views, D) against (M, views, D), each view is
    compared with the same view of the references and the distances are averaged."""
    if features.ndim == 3:
        return np.mean(
            [knn_distance(features[:, v], reference[:, v], k) for v in range(features.shape[1])], 0
        )
    similarity = torch.from_numpy(features) @ torch.from_numpy(reference).T
    k = min(k, similarity.shape[1])
    return (1 - similarity.topk(k, dim=1).values.mean(1)).numpy()


def fit_view_gaussians(reference: np.ndarray) -> list[LedoitWolf]:
    """One Gaussian (Ledoit-Wolf covariance) per view of the reference features
    (M, views, D); a single (M, D) array counts as one view."""
    views = reference[:, None] if reference.ndim == 2 else reference
    return [LedoitWolf().fit(views[:, v]) for v in range(views.shape[1])]


def mahalanobis_distance(features: np.ndarray, gaussians: list[LedoitWolf]) -> np.ndarray:
    """Per image, the Mahalanobis distance of each view's features from that view's
    Gaussian (:func:`fit_view_gaussians`), averaged over the views."""
    views = features[:, None] if features.ndim == 2 else features
    if views.shape[1] != len(gaussians):
        raise ValueError(
            f"features have {views.shape[1]} views but {len(gaussians)} Gaussians were fitted."
        )
    return np.mean([g.mahalanobis(views[:, v]) for v, g in enumerate(gaussians)], 0)
