"""What :func:`helpers.core.training.fit` trains for: the :class:`Objective` protocol, and the
two objectives both homeworks use (classification, reconstruction).

The other objectives live with their homework: restoration pretraining and contrastive
pretraining in ``hw1``, the rotation network's in ``hw2``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .metrics import ConfusionMeter, LossMeter


class Meter(Protocol):
    """Accumulates a batch's loss and outputs on the device; read once per epoch."""

    def update(self, loss: torch.Tensor, outputs: Any, targets: torch.Tensor) -> None: ...

    def compute(self) -> dict[str, float]: ...


class Objective(Protocol):
    """A loss, its meter, and which epoch ``fit`` keeps.

    ``monitor`` is the history key that chooses the best epoch (e.g. ``"val_accuracy"``;
    ``"epoch"`` keeps the last epoch; a key an epoch lacks, e.g. without a validation set,
    falls back to the lowest ``train_loss``), ``maximize`` whether higher is better, and
    ``window`` how many of the last epochs' values are averaged before comparing.
    """

    monitor: str
    maximize: bool
    window: int

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, Any]:
        """The batch's mean loss, and what the meter reads (e.g. the logits)."""
        ...

    def meter(self, device: torch.device) -> Meter: ...


class Classification:
    """Cross-entropy (with optional label smoothing and mixup).

    Best epoch = highest validation accuracy averaged over the last 5 epochs. On a small
    validation split the accuracy of single epochs jumps by several points, so the raw
    maximum is often a lucky early epoch; the validation loss is smooth but rises as soon
    as a model trained on few labels grows overconfident, while its accuracy still improves.

    ``mixup`` > 0 (training only): each batch is blended with a shuffled copy of itself,
    ``lam * x + (1 - lam) * x[perm]`` with ``lam ~ Beta(mixup, mixup)``, and the loss blends
    the two labels' cross-entropies alike (Zhang et al. 2018, mixup).
    """

    monitor, maximize, window = "val_accuracy", True, 5

    def __init__(self, num_classes: int, label_smoothing: float = 0.0, mixup: float = 0.0) -> None:
        self.num_classes, self.label_smoothing, self.mixup = num_classes, label_smoothing, mixup

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        if self.mixup > 0 and torch.is_grad_enabled():
            lam, perm = mixing(len(x), self.mixup, generator, x.device)
            logits = model(lam * x + (1 - lam) * x[perm])
            loss = lam * self._ce(logits, y) + (1 - lam) * self._ce(logits, y[perm])
            return loss, logits
        logits = model(x)
        return self._ce(logits, y), logits

    def _ce(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)

    def meter(self, device: torch.device) -> ConfusionMeter:
        return ConfusionMeter(self.num_classes, device)


def mixing(
    n: int, alpha: float, generator: torch.Generator, device: torch.device
) -> tuple[float, torch.Tensor]:
    """mixup's weight ``lam ~ Beta(alpha, alpha)`` and partner permutation, from ``generator``."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    return lam, torch.randperm(n, generator=generator, device=generator.device).to(device)


class Reconstruction:
    """Mean squared error between the output and the input image (the autoencoder's
    objective); best = lowest val loss. Restoration pretraining, which hides parts of the
    input, has its own objective: :class:`helpers.hw1.restoration.MaskedRestoration`."""

    monitor, maximize, window = "val_loss", False, 1

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        output = model(x)
        return F.mse_loss(output.float(), x.float()), output

    def meter(self, device: torch.device) -> LossMeter:
        return LossMeter(device)
