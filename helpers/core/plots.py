"""Figures for both homeworks. Each function returns a matplotlib Figure; the
notebooks show it and save it with :func:`helpers.core.runs.save_figure`."""

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
    sns.heatmap(
        cm,
        annot=True,
        fmt="d",
        cmap="Blues",
        xticklabels=classes,
        yticklabels=classes,
        ax=axes[0],
        cbar=False,
    )
    sns.heatmap(
        normed,
        annot=True,
        fmt=".2f",
        cmap="Blues",
        xticklabels=classes,
        yticklabels=classes,
        ax=axes[1],
        vmin=0,
        vmax=1,
        cbar=False,
    )
    for ax, title in zip(axes, ("counts", "row-normalised (recall per class)"), strict=True):
        ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


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


# --- anomaly detection (hw2) ---------------------------------------------------------


def plot_threshold(
    labels: np.ndarray, scores: np.ndarray, chosen: float, test_optimum: float, how: str = ""
) -> plt.Figure:
    """TPR and TNR on the test set as the threshold sweeps; the chosen threshold and the
    test-label optimum (shown for reference, never used) are marked."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    grid = np.quantile(scores, np.linspace(0, 1, 400))
    tpr = [(scores[labels == 1] >= t).mean() for t in grid]
    tnr = [(scores[labels == 0] < t).mean() for t in grid]
    fig, ax = plt.subplots(figsize=(9, 5))
    ax.plot(grid, tpr, label="TPR (anomalies caught)")
    ax.plot(grid, tnr, label="TNR (normals passed)")
    ax.axvline(chosen, color="k", label=f"chosen: {chosen:.3g}" + (f"\n({how})" if how else ""))
    ax.axvline(
        test_optimum,
        color="tab:red",
        ls=":",
        label=f"test-label optimum: {test_optimum:.3g}\n(reference only, not used)",
    )
    if scores.min() > 0 and scores.max() / scores.min() > 100:  # raw errors span decades
        ax.set_xscale("log")
    ax.set(
        xlabel="threshold on the anomaly score",
        ylabel="rate",
        ylim=(0, 1.02),
        title="TPR and TNR on the test set against the threshold",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.tight_layout()
    return fig


def plot_roc(labels: np.ndarray, scores: np.ndarray | dict[str, np.ndarray]) -> plt.Figure:
    """ROC curves with their AUROC: one score, or several (a dict name -> scores)."""
    from sklearn.metrics import RocCurveDisplay

    curves = scores if isinstance(scores, dict) else {"anomaly score": scores}
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for i, (name, values) in enumerate(curves.items()):
        RocCurveDisplay.from_predictions(
            labels, values, ax=ax, name=name, plot_chance_level=i == len(curves) - 1
        )
    ax.set(title="ROC on the test set")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_score_histograms(labels: np.ndarray, scores: np.ndarray, threshold: float) -> plt.Figure:
    """Histograms of normal and anomalous test scores, threshold marked (log-spaced bins
    for positive scores spanning decades, such as raw errors; else even bins)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    logged = scores.min() > 0 and scores.max() / scores.min() > 100
    bins = (
        np.geomspace(scores.min(), scores.max(), 60)
        if logged
        else np.linspace(scores.min(), scores.max(), 60)
    )
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.hist(scores[labels == 0], bins.tolist(), alpha=0.6, label=f"normal ({(labels == 0).sum()})")
    ax.hist(scores[labels == 1], bins.tolist(), alpha=0.6, label=f"anomaly ({(labels == 1).sum()})")
    ax.axvline(threshold, color="k", label="chosen threshold")
    ax.set(
        xscale="log" if logged else "linear",
        yscale="log",
        xlabel="anomaly score",
        ylabel="images",
        title="test scores by true label",
    )
    ax.legend()
    fig.tight_layout()
    return fig


def plot_signals(
    labels: np.ndarray, signals: dict[str, np.ndarray], names: list[str], threshold: float
) -> plt.Figure:
    """Each test image as a point, for every pair of the combined score's standardised
    signals, by true label. With two signals the dashed line is the threshold on the
    combined score (``max(x, 0) + max(y, 0)``): images beyond it are flagged."""
    import itertools

    labels = np.asarray(labels)
    pairs = list(itertools.combinations(names, 2)) or [(names[0], names[0])]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 5), squeeze=False)
    for ax, (x, y) in zip(axes.flat, pairs, strict=True):
        for value, name, style in (
            (0, "normal", dict(s=8, alpha=0.4)),
            (1, "anomaly", dict(s=22, marker="x")),
        ):
            ax.scatter(
                signals[x][labels == value], signals[y][labels == value], label=name, **style
            )
        if len(names) == 2:
            lo = min(signals[x].min(), signals[y].min())
            line = np.linspace(0, threshold, 50)
            ax.plot(
                np.r_[lo, 0, line, threshold, threshold],
                np.r_[threshold, threshold, threshold - line, 0, lo],
                "k--",
                label=f"combined score = threshold ({threshold:.2f})",
            )
        ax.set(
            xlim=(signals[x].min() - 0.5, signals[x].max() + 0.5),
            ylim=(signals[y].min() - 0.5, signals[y].max() + 0.5),
            xlabel=f"{x} (standard deviations above validation normals)",
            ylabel=f"{y} (same scale)",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("the signals of every test image")
    fig.tight_layout()
    return fig


def _bare_axes(rows: int, cols: int, figsize: tuple[float, float]):
    """A grid of axes without ticks or frames, for images and maps."""
    fig, axes = plt.subplots(rows, cols, figsize=figsize, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    return fig, axes


def plot_reconstructions(
    images: torch.Tensor,
    reconstructions: torch.Tensor,
    maps: torch.Tensor,
    titles: list[str],
    cols: int = 8,
) -> plt.Figure:
    """Blocks of three rows (input, reconstruction, error map), ``cols`` images a block;
    error maps share one colour scale, so a dark map is a good reconstruction."""
    n = len(images)
    blocks = math.ceil(n / cols)
    fig, axes = _bare_axes(3 * blocks, cols, (1.5 * cols, 3.3 * blocks))
    vmax = float(maps.max())
    for i in range(n):
        b, c = divmod(i, cols)
        show_image(axes[3 * b, c], images[i])
        show_image(axes[3 * b + 1, c], reconstructions[i])
        axes[3 * b + 2, c].imshow(maps[i].numpy(), cmap="inferno", vmin=0, vmax=vmax)
        axes[3 * b, c].set_title(titles[i], fontsize=7)
    for b in range(blocks):
        for r, label in enumerate(("input", "rebuilt", "error")):
            axes[3 * b + r, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig


def plot_anomaly_maps(
    images: torch.Tensor, maps: dict[str, torch.Tensor], titles: list[str], cols: int = 8
) -> plt.Figure:
    """Blocks of rows: each image, then each of its ``maps`` (name -> (N, H, W)), every map
    kind on one colour scale across the images, so a bright spot is where it looks anomalous."""
    n, rows = len(images), 1 + len(maps)
    blocks = math.ceil(n / cols)
    fig, axes = _bare_axes(rows * blocks, cols, (1.5 * cols, 1.2 * rows * blocks + 0.4))
    for i in range(n):
        b, c = divmod(i, cols)
        show_image(axes[rows * b, c], images[i])
        axes[rows * b, c].set_title(titles[i], fontsize=6)
        for r, values in enumerate(maps.values(), 1):
            axes[rows * b + r, c].imshow(
                values[i].numpy(), cmap="inferno", vmin=0, vmax=float(values.max()) or 1.0
            )
    for b in range(blocks):
        for r, label in enumerate(("image", *maps), 0):
            axes[rows * b + r, 0].set_ylabel(label.replace(" ", "\n"), fontsize=7)
    fig.tight_layout()
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
