"""Images in memory (:class:`ImageSet`: a uint8 tensor with labels), and running them through a
network (or any function) a batch at a time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from .augment import to_float
from .device import autocast
from .errors import DataError

T = TypeVar("T")


@dataclass
class ImageSet:
    """Images as a uint8 ``(N, C, H, W)`` tensor with int64 labels and class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise DataError(
                f"images and labels have different lengths ({len(self.images)} images, "
                f"{len(self.labels)} labels): each image needs exactly one label."
            )

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray | torch.Tensor | list[int]) -> ImageSet:
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[index], self.labels[index], self.classes)


@torch.no_grad()
def run_in_batches(
    fn: Callable[[torch.Tensor], T],
    images: torch.Tensor,
    device: torch.device,
    batch_size: int,
    prepare: Callable[[torch.Tensor], torch.Tensor] = to_float,
    precision: str = "fp32",
) -> list[T]:
    """``fn`` of each batch of ``images`` in order, without gradients: each batch is moved to
    ``device`` and ``prepare``-d there (by default uint8 -> float [0, 1]; an augmentation
    that draws from a generator draws batch after batch), and ``fn`` runs under the autocast
    of ``precision`` ("fp32": none). ``fn`` should return what the caller keeps (e.g. moved to
    the CPU), so that the device holds one batch at a time."""
    out = []
    for start in range(0, len(images), batch_size):
        x = prepare(images[start : start + batch_size].to(device))
        with autocast(device, precision):
            out.append(fn(x))
    return out
