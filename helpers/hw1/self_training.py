"""Self-training: a trained classifier (the teacher) labels the unlabelled images, and a
new classifier (the student) learns from the true labels and the confident pseudo-labels.

The pseudo-labels are class-balanced (after Zou et al. 2018, "class-balanced
self-training"): each class keeps at most an equal share of the unlabelled images, its most
confident ones, so a teacher that favours a few classes does not hand its bias to the
student. Images below ``threshold`` confidence are never kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.images import ImageSet


@dataclass
class PseudoLabels:
    """Which unlabelled images were kept, with the teacher's label and confidence."""

    index: torch.Tensor  # positions in the unlabelled set, ascending
    labels: torch.Tensor
    confidence: torch.Tensor

    def __len__(self) -> int:
        return len(self.index)


def select_pseudo_labels(probs: torch.Tensor, share: float, threshold: float) -> PseudoLabels:
    """Keep, per predicted class, the most confident of ``probs``' rows (at most
    ``round(share * N / classes)`` each), and only those with confidence >= ``threshold``."""
    confidence, predicted = probs.max(1)
    classes = probs.shape[1]
    quota = round(share * len(probs) / classes)
    kept = []
    for c in range(classes):
        members = torch.nonzero((predicted == c) & (confidence >= threshold)).flatten()
        order = torch.argsort(confidence[members], descending=True, stable=True)
        kept.append(members[order[:quota]])
    index = torch.sort(torch.cat(kept)).values
    return PseudoLabels(index, predicted[index], confidence[index])


def with_pseudo_labels(labelled: ImageSet, unlabelled: ImageSet, pseudo: PseudoLabels) -> ImageSet:
    """The labelled images with their true labels, then the kept unlabelled images with the
    teacher's labels (the unlabelled set's own labels are never read)."""
    images = torch.cat([labelled.images, unlabelled.images[pseudo.index]])
    labels = torch.cat([labelled.labels, pseudo.labels.to(labelled.labels.dtype)])
    return ImageSet(images, labels, labelled.classes)


def describe(pseudo: PseudoLabels, unlabelled: int, classes: tuple[str, ...]) -> str:
    """One line: how many pseudo-labels, their confidence, and per class."""
    counts = np.bincount(pseudo.labels.numpy(), minlength=len(classes))
    low = float(pseudo.confidence.min()) if len(pseudo) else float("nan")
    per_class = ", ".join(f"{name} {n}" for name, n in zip(classes, counts, strict=True))
    return (
        f"pseudo-labelled {len(pseudo):,} of {unlabelled:,} unlabelled images "
        f"(confidence >= {low:.2f}; {per_class})"
    )
