"""hw2's figures: the threshold, ROC curves, score histograms, the signals, the
reconstructions and where images look anomalous; with the shared ones
(:mod:`helpers.core.plots`)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..core.plots import bare_axes, image_grid, plot_confusion, plot_history, show_image

# every figure of the notebook from one module: the shared ones, and this homework's own
__all__ = [
    "image_grid",
    "plot_anomaly_maps",
    "plot_confusion",
    "plot_history",
    "plot_reconstructions",
    "plot_roc",
    "plot_score_histograms",
    "plot_signals",
    "plot_threshold",
]


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
    fig, axes = bare_axes(3 * blocks, cols, (1.5 * cols, 3.3 * blocks))
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
    fig, axes = bare_axes(rows * blocks, cols, (1.5 * cols, 1.2 * rows * blocks + 0.4))
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
