"""The figures both homeworks draw: training curves, confusion matrices, image grids, and
what happens inside a network (gradient norms, weight histograms). Each function returns a
matplotlib Figure; the notebooks show it and save it with
:func:`helpers.core.runs.save_figure`. Each homework's own figures are in its ``plots``."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.ticker import LogLocator, NullLocator
from torch import nn

CURVES = (
    ("loss", "loss"),
    ("accuracy", "accuracy"),
    ("precision", "macro precision"),
    ("recall", "macro recall"),
    ("f1", "macro F1"),
)


def plot_history(history: list[dict], title: str = "") -> plt.Figure:
    """Per-epoch curves of loss, accuracy and macro precision/recall/F1, train vs validation."""
    keys = [
        (k, label) for k, label in CURVES if f"train_{k}" in history[0] or f"val_{k}" in history[0]
    ]
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    epochs = [h["epoch"] for h in history]
    for ax, (key, label) in zip(axes.flat, keys, strict=False):
        for split, style in (("train", "--"), ("val", "-")):
            values = [h.get(f"{split}_{key}") for h in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, label=split)
        ax.set(title=label, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(matrix: np.ndarray | list, classes: tuple[str, ...] | list[str]) -> plt.Figure:
    """Confusion matrix as two heatmaps: counts, and rows normalised to recall."""
    cm = np.asarray(matrix)
    normed = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(15, 6))
    shared = dict(annot=True, cmap="Blues", xticklabels=classes, yticklabels=classes, cbar=False)
    sns.heatmap(cm, fmt="d", ax=axes[0], **shared)
    sns.heatmap(normed, fmt=".2f", ax=axes[1], vmin=0, vmax=1, **shared)
    for ax, title in zip(axes, ("counts", "row-normalised (recall per class)"), strict=True):
        ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def show_image(ax: plt.Axes, image: torch.Tensor) -> None:
    """One (C, H, W) image, uint8 or [0, 1] float; a one-channel image in grey."""
    arr = image.detach().permute(1, 2, 0).cpu().numpy()
    arr = arr if arr.dtype == np.uint8 else np.clip(arr, 0, 1)
    if arr.shape[2] == 1:
        ax.imshow(
            arr[:, :, 0],
            cmap="gray",
            vmin=0,
            vmax=255 if arr.dtype == np.uint8 else 1,
            interpolation="nearest",
        )
    else:
        ax.imshow(arr, interpolation="nearest")


def image_grid(
    images: torch.Tensor, titles: list[str], cols: int = 8, size: float = 1.6
) -> plt.Figure:
    """uint8 or [0, 1] float images (N, C, H, W) in a grid with a title each."""
    n = len(images)
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * 1.25 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, title in zip(axes.flat, images, titles, strict=False):
        show_image(ax, img)
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return fig


def plot_gradient_norms(history: list[dict]) -> plt.Figure:
    """Heatmap of each layer's mean gradient L2 norm per epoch (log10 scale)."""
    layers = list(history[0]["grad_norm"])
    data = np.array([[h["grad_norm"][name] for h in history] for name in layers])
    fig, ax = plt.subplots(figsize=(min(3 + 0.25 * len(history), 16), 2 + 0.22 * len(layers)))
    with np.errstate(divide="ignore"):
        logged = np.where(data > 0, np.log10(data), np.nan)  # exact zeros (e.g. at init) stay blank
    import pandas as pd

    frame = pd.DataFrame(
        logged,
        index=[name.removesuffix(".weight") for name in layers],
        columns=[h["epoch"] for h in history],
    )
    sns.heatmap(
        frame,
        ax=ax,
        cmap="viridis",
        yticklabels=True,
        xticklabels=max(1, len(history) // 20),
        cbar_kws={"label": "log10 mean gradient norm"},
    )
    ax.set(xlabel="epoch", title="gradient norm per layer and epoch")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def plot_layer_histograms(values: dict[str, np.ndarray], title: str, cols: int = 6) -> plt.Figure:
    """One histogram per layer (weights, or gradients of one batch)."""
    names = list(values)
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        fig.delaxes(ax)
    for ax, name in zip(axes.flat, names, strict=False):
        counts, edges = np.histogram(np.asarray(values[name]).ravel(), bins=60)
        ax.stairs(
            counts, edges, fill=True, color="tab:blue"
        )  # one artist, not 60 bars: quicker to draw
        ax.set_title(name.removesuffix(".weight"), fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_yscale("log")
        # decades only: a log axis's minor ticks (and their labels, on a short axis) took
        # half the figure's drawing time
        ax.yaxis.set_major_locator(LogLocator(numticks=4))
        ax.yaxis.set_minor_locator(NullLocator())
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def layer_weights(model: nn.Module) -> dict[str, np.ndarray]:
    """Conv and linear weights of ``model`` by layer name, as flat numpy arrays."""
    return {
        name: p.detach().float().cpu().numpy().ravel()
        for name, p in model.named_parameters()
        if p.dim() > 1
    }


def bare_axes(rows: int, cols: int, figsize: tuple[float, float]):
    """A grid of axes without ticks or frames, for images and maps."""
    fig, axes = plt.subplots(rows, cols, figsize=figsize, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    return fig, axes
