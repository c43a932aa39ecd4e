"""hw1's figures: the per-class test metrics, the most confidently misclassified images,
and restoration pretraining at work; with the shared ones (:mod:`helpers.core.plots`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..core.plots import (
    image_grid,
    layer_weights,
    plot_confusion,
    plot_gradient_norms,
    plot_history,
    plot_layer_histograms,
)

# every figure of the notebook from one module: the shared ones, and this homework's own
__all__ = [
    "image_grid",
    "layer_weights",
    "plot_confusion",
    "plot_gradient_norms",
    "plot_history",
    "plot_layer_histograms",
    "plot_misclassified",
    "plot_per_class",
    "plot_restorations",
]


def plot_per_class(per_class: dict[str, dict]) -> plt.Figure:
    """Grouped bar chart of precision, recall and F1 for each class."""
    names = list(per_class)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(12, 4))
    for i, (key, label) in enumerate(
        (("precision", "precision"), ("recall", "recall"), ("f1-score", "F1"))
    ):
        ax.bar(x + (i - 1) * 0.27, [per_class[n][key] for n in names], 0.27, label=label)
    ax.set_xticks(x, names, rotation=30)
    ax.set(ylim=(0, 1), ylabel="score", title="per-class test metrics")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncols=3, loc="lower right")
    fig.tight_layout()
    return fig


def plot_misclassified(
    images: torch.Tensor,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
    classes: tuple[str, ...] | list[str],
    n: int = 32,
) -> plt.Figure:
    """The most confidently wrong test images, titled true -> predicted (confidence)."""
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))
    wrong = wrong[np.argsort(-np.asarray(confidence)[wrong])][:n]
    titles = [f"{classes[y_true[i]]} -> {classes[y_pred[i]]}\n{confidence[i]:.0%}" for i in wrong]
    fig = image_grid(images[torch.as_tensor(wrong, dtype=torch.long)], titles)
    fig.suptitle("misclassified test images (true -> predicted, confidence)", y=1.0)
    return fig


def plot_restorations(
    seen: torch.Tensor, restored: torch.Tensor, clean: torch.Tensor
) -> plt.Figure:
    """Rows: the input as the network saw it (hidden patches grey), the image with its hidden
    patches restored, the original."""
    n = len(clean)
    fig, axes = plt.subplots(3, n, figsize=(1.4 * n, 4.4), squeeze=False)
    for row, (images, label) in enumerate(
        ((seen, "hidden"), (restored, "restored"), (clean, "original"))
    ):
        for i in range(n):
            axes[row, i].imshow(images[i].permute(1, 2, 0).clamp(0, 1).numpy())
            axes[row, i].set_xticks([])
            axes[row, i].set_yticks([])
        axes[row, 0].set_ylabel(label, fontsize=9)
    fig.suptitle("restoration pretraining on test images (no labels used)")
    fig.tight_layout()
    return fig
