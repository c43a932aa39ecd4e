"""Anomaly scores from reconstruction errors, label-free thresholds, and their metrics."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score, roc_curve
from torch import nn

from .augment import to_float
from .errors import ParameterError

SCORES = ("mse", "max_smoothed")
THRESHOLD_METHODS = ("auto", "quantile", "balanced")


@torch.no_grad()
def reconstruct(model: nn.Module, images: torch.Tensor, device: torch.device,
                batch_size: int = 512) -> torch.Tensor:
    """Reconstructions (float [0, 1], on the CPU) of uint8 ``images``."""
    model.eval()
    out = [model(to_float(images[s:s + batch_size].to(device))).float().cpu()
           for s in range(0, len(images), batch_size)]
    return torch.cat(out)


def error_maps(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """Per-pixel squared error, averaged over colour channels: (N, H, W)."""
    return (to_float(images) - reconstructions).pow(2).mean(1)


def scores_from_errors(maps: torch.Tensor, kind: str = "mse", window: int = 5) -> np.ndarray:
    """One anomaly score per image: the mean error ("mse"), or the largest mean error in
    any ``window`` x ``window`` patch ("max_smoothed"), which favours small, local defects."""
    if kind not in SCORES:
        raise ParameterError(f"score={kind!r} is unknown; choose one of {', '.join(SCORES)}.")
    if kind == "mse":
        return maps.mean((1, 2)).numpy()
    smoothed = F.avg_pool2d(maps[:, None], window, stride=1, padding=window // 2,
                            count_include_pad=False)
    return smoothed.amax((1, 2, 3)).numpy()


def anomaly_scores(model: nn.Module, images: torch.Tensor, device: torch.device,
                   kind: str = "mse") -> np.ndarray:
    """Reconstruct ``images`` and score each one (higher = more anomalous)."""
    return scores_from_errors(error_maps(images, reconstruct(model, images, device)), kind)


def quantile_threshold(normal_scores: np.ndarray, target_tnr: float) -> float:
    """The score below which ``target_tnr`` of the (validation) normal images fall."""
    if not 0 < target_tnr < 1:
        raise ParameterError(f"target_tnr={target_tnr!r} must lie in (0, 1), e.g. 0.98.")
    return float(np.quantile(normal_scores, target_tnr))


def balanced_threshold(normal_scores: np.ndarray, anomaly_scores_: np.ndarray) -> float:
    """The threshold that maximises TPR + TNR on normal and known-anomalous images.

    Of the thresholds that tie, the midpoint of the widest gap is taken, so the
    threshold does not sit on top of one image's score.
    """
    scores = np.concatenate([normal_scores, anomaly_scores_])
    labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomaly_scores_))]
    fpr, tpr, thresholds = roc_curve(labels, scores)
    j = tpr - fpr
    best = int(np.argmax(j))
    upper = thresholds[best]  # "score >= upper" is flagged
    below = scores[scores < upper]
    lower = below.max() if len(below) else upper
    return float((upper + lower) / 2) if np.isfinite(upper) else float(lower)


def choose_threshold(method: str, val_normal: np.ndarray, known_anomalies: np.ndarray | None,
                     target_tnr: float) -> tuple[float, str]:
    """Pick the threshold without test labels; returns it and a description of how."""
    if method not in THRESHOLD_METHODS:
        raise ParameterError(f"threshold_method={method!r} is unknown; choose one of "
                             f"{', '.join(THRESHOLD_METHODS)}.")
    has_known = known_anomalies is not None and len(known_anomalies) > 0
    if method == "balanced" and not has_known:
        raise ParameterError("threshold_method='balanced' needs known anomalies (an anomalies/ "
                             "folder); use 'quantile' or 'auto'.")
    if method == "balanced" or (method == "auto" and has_known):
        return (balanced_threshold(val_normal, known_anomalies),
                f"max TPR+TNR on {len(val_normal)} validation normals and "
                f"{len(known_anomalies)} known anomalies")
    return (quantile_threshold(val_normal, target_tnr),
            f"{target_tnr:.1%} quantile of {len(val_normal)} validation normals")


def anomaly_report(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """TPR, TNR, balanced accuracy, AUROC, AUPR and the confusion matrix at ``threshold``
    (anomaly = positive = score at or above the threshold)."""
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    tpr = tp / max(tp + fn, 1)
    tnr = tn / max(tn + fp, 1)
    return {
        "tpr": float(tpr), "tnr": float(tnr), "balanced_accuracy": float((tpr + tnr) / 2),
        "auroc": float(roc_auc_score(labels, scores)),
        "aupr": float(average_precision_score(labels, scores)),
        "threshold": float(threshold),
        "confusion_matrix": [[int(tn), int(fp)], [int(fn), int(tp)]],
        "test_normals": int((labels == 0).sum()), "test_anomalies": int((labels == 1).sum()),
    }


def oracle_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold maximising TPR + TNR *on the test labels*: for reporting only."""
    labels = np.asarray(labels)
    return balanced_threshold(np.asarray(scores)[labels == 0], np.asarray(scores)[labels == 1])
