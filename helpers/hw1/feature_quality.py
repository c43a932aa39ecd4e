"""How good a pretrained encoder's features are, before any fine-tuning, at label cost only.

:func:`knn_accuracy` is the weighted k-nearest-neighbour classifier of the
self-supervised literature (Wu et al. 2018; the kNN monitor of SimCLR/MoCo code bases):
cosine similarity between average-pooled encoder features, each of the ``k`` nearest
labelled images voting with weight ``exp(similarity / temperature)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.augment import to_float
from ..core.images import run_in_batches
from .resnet import CIFAR10_MEAN, CIFAR10_STD, Normalize, ResNetEncoder


@torch.no_grad()
def encoder_features(
    encoder: ResNetEncoder,
    images: torch.Tensor,
    device: torch.device,
    batch_size: int = 512,
    precision: str = "auto",
) -> torch.Tensor:
    """Average-pooled features (float32, on the CPU) of uint8 ``images``; ``encoder``
    is moved to ``device``."""
    normalize = Normalize(CIFAR10_MEAN, CIFAR10_STD).to(device)
    was_training = encoder.training
    encoder.to(device).eval()
    out = run_in_batches(
        lambda x: encoder(x).float().mean((2, 3)).cpu(),
        images,
        device,
        batch_size,
        prepare=lambda batch: normalize(to_float(batch)),
        precision=precision,
    )
    encoder.train(was_training)
    return torch.cat(out)


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    query: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
) -> torch.Tensor:
    """Class of each ``query`` row by a similarity-weighted vote of its ``k`` nearest
    (cosine) ``train_features`` rows."""
    bank = F.normalize(train_features.float(), dim=1)
    q = F.normalize(query.float(), dim=1)
    k = min(k, len(bank))
    similarity, index = (q @ bank.T).topk(k, dim=1)
    votes = torch.zeros(len(q), num_classes)
    votes.scatter_add_(1, train_labels[index], (similarity / temperature).exp())
    return votes.argmax(1)


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Share of test images whose :func:`knn_predict` class is right."""
    predicted = knn_predict(
        train_features, train_labels, test_features, num_classes, k, temperature
    )
    return float((predicted == test_labels).float().mean())
