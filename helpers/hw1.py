"""The steps of homework 1, each one call from the notebook."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .augment import BatchAugment
from .cifar import ImageSet, load_cifar10, split_train_val, stratified_indices
from .config import Hw1Settings
from .device import describe_device
from .metrics import classification_summary
from .models import ResNetClassifier, build_classifier
from .runs import environment, fingerprint, write_json
from .training import Classification, FitConfig, FitResult, fit, predict_proba
from .training import gradient_snapshot as _snapshot


@dataclass
class Hw1Data:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    source: dict


def load_data(s: Hw1Settings) -> Hw1Data:
    """Training, validation and test sets for the settings.

    The preset's ``max_train_images`` caps the training pool (stratified), the
    validation split is held out of that pool, and ``fraction`` then keeps that share
    of the remaining labelled images. The test set is only used for the final report.
    """
    train_all, test = load_cifar10(s.data_dir, s.download)
    pool = train_all
    if s.max_train_images and len(train_all) > s.max_train_images:
        share = s.max_train_images / len(train_all)
        pool = train_all.subset(stratified_indices(train_all.labels, share, s.seed))
    train, val = split_train_val(pool, s.val_fraction, s.seed)
    if s.fraction < 1:
        train = train.subset(stratified_indices(train.labels, s.fraction, s.seed))
    source = {
        "data_dir": str(Path(s.data_dir).expanduser().resolve()),
        "train_images": len(train), "val_images": len(val), "test_images": len(test),
        "train_fingerprint": fingerprint(train.images, train.labels),
        "test_fingerprint": fingerprint(test.images, test.labels),
    }
    return Hw1Data(train, val, test, source)


def build_model(s: Hw1Settings, num_classes: int = 10) -> ResNetClassifier:
    """The classifier, with weights drawn from ``seed``."""
    torch.manual_seed(s.seed)
    return build_classifier(s.arch, s.width, num_classes)


def fit_config(s: Hw1Settings, **overrides) -> FitConfig:
    return FitConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr,
                     weight_decay=s.weight_decay, seed=s.seed, **overrides)


def train(s: Hw1Settings, model: ResNetClassifier, data: Hw1Data, device: torch.device,
          run_dir: Path, resume: bool = False) -> FitResult:
    """Train with the recipe's augmentation; checkpoints go to ``run_dir/checkpoints``."""
    return fit(
        model, data.train, data.val, Classification(len(data.train.classes), s.label_smoothing),
        fit_config(s), device, augment=BatchAugment(crop_pad=4, flip=True, cutout=s.cutout),
        checkpoint_dir=Path(run_dir) / "checkpoints", resume=resume,
    )


@dataclass
class TestResult:
    summary: dict
    y_true: np.ndarray
    y_pred: np.ndarray
    confidence: np.ndarray


def test_report(model: ResNetClassifier, data: Hw1Data, device: torch.device) -> TestResult:
    """Predict the test set (averaging each image with its mirror image) and score it."""
    probs = predict_proba(model, data.test.images, device, flip_tta=True)
    y_true = data.test.labels.numpy()
    confidence, y_pred = probs.max(1)
    summary = classification_summary(y_true, y_pred.numpy(), data.test.classes)
    return TestResult(summary, y_true, y_pred.numpy(), confidence.numpy())


def save_metrics(s: Hw1Settings, run_dir: Path, test: TestResult, result: FitResult,
                 data: Hw1Data, device: torch.device, started: float) -> Path:
    """Write ``metrics.json``: test scores, history, parameters, data, device, versions."""
    return write_json(Path(run_dir) / "metrics.json", {
        **test.summary,
        "best_epoch": result.best_epoch,
        "history": result.history,
        "params": s.as_dict(),
        "data": data.source,
        "device": describe_device(device),
        "environment": environment(),
        "train_seconds": round(result.seconds, 1),
        "wall_seconds": round(time.time() - started, 1),
    })


def gradient_snapshot(model: ResNetClassifier, data: Hw1Data, device: torch.device) -> dict:
    """Per-layer gradients of one batch of training images."""
    return _snapshot(model, data.train, Classification(len(data.train.classes)), device)
