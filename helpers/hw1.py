"""The steps of homework 1, each one call from the notebook."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .augment import BatchAugment, to_float
from .cifar import ImageSet, load_cifar10, split_train_val, stratified_indices
from .config import Hw1Settings
from .device import compute_record, describe_device
from .metrics import classification_summary
from .models import ResNetClassifier, build_classifier
from .pretrain import RestorationNet, corrupt, load_encoder, load_restoration_net, save_encoder
from .runs import environment, fingerprint, history_writer, publish_latest, write_json
from .training import (Classification, EpochHook, FitConfig, FitResult, Reconstruction, fit,
                       predict_proba)
from .training import gradient_snapshot as _snapshot


@dataclass
class Hw1Data:
    train: ImageSet  # the labelled images trained on (after ``fraction``)
    val: ImageSet  # held out of the pool, for choosing the best epoch
    test: ImageSet  # used once, for the final report
    pool: ImageSet  # every training image (labels unused by pretraining)
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
    return Hw1Data(train, val, test, pool, source)


def build_model(s: Hw1Settings, num_classes: int = 10) -> ResNetClassifier:
    """The classifier, with weights drawn from ``seed``."""
    torch.manual_seed(s.seed)
    return build_classifier(s.arch, s.width, num_classes)


def fit_config(s: Hw1Settings, **overrides) -> FitConfig:
    return FitConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr,
                     weight_decay=s.weight_decay, seed=s.seed, deterministic=s.deterministic,
                     compile=s.compile_model, precision=s.precision, **overrides)


def slow_hint(s: Hw1Settings, device: torch.device) -> str:
    """What to say when a GPU-sized recipe would run for hours on the CPU."""
    if device.type != "cpu" or s.preset == "cpu":
        return ""
    return (f'preset="{s.preset}" is sized for a GPU. On this CPU, preset="cpu" (ResNet-18, width 32, '
            "at most 5,000 training images) trains in a small fraction of that time: interrupt the "
            'kernel and run it instead, e.g. papermill hw1_classification.ipynb out.ipynb -p preset cpu.')


def train(s: Hw1Settings, model: ResNetClassifier, data: Hw1Data, device: torch.device,
          run_dir: Path, on_epoch: Sequence[EpochHook] = ()) -> FitResult:
    """Train with the recipe's augmentation; checkpoints go to ``run_dir/checkpoints``
    (``s.resume`` continues from the last one) and ``run_dir/history.json`` grows each
    epoch; ``on_epoch`` hooks (e.g. TensorBoard) are called after every epoch too."""
    return fit(
        model, data.train, data.val, Classification(len(data.train.classes), s.label_smoothing),
        fit_config(s, slow_hint=slow_hint(s, device)), device,
        augment=BatchAugment(crop_pad=4, flip=True, cutout=s.cutout),
        checkpoint_dir=Path(run_dir) / "checkpoints", resume=s.resume,
        on_epoch=[history_writer(run_dir), *on_epoch],
    )


@dataclass
class TestResult:
    summary: dict
    y_true: np.ndarray
    y_pred: np.ndarray
    confidence: np.ndarray


def test_report(model: ResNetClassifier, data: Hw1Data, device: torch.device,
                precision: str = "auto") -> TestResult:
    """Predict the test set (averaging each image with its mirror image) and score it."""
    probs = predict_proba(model, data.test.images, device, flip_tta=True, precision=precision)
    y_true = data.test.labels.numpy()
    confidence, y_pred = probs.max(1)
    summary = classification_summary(y_true, y_pred.numpy(), data.test.classes)
    return TestResult(summary, y_true, y_pred.numpy(), confidence.numpy())


def save_metrics(s: Hw1Settings, run_dir: Path, test: TestResult, result: FitResult,
                 data: Hw1Data, device: torch.device, started: float,
                 encoder_checkpoint: Path | None = None) -> Path:
    """Write the run's ``metrics.json`` (test scores, history, parameters, data, device,
    versions) and copy it to ``<results_dir>/metrics.json``; returns the run's file."""
    path = write_json(Path(run_dir) / "metrics.json", {
        **test.summary,
        "best_epoch": result.best_epoch,
        "history": result.history,
        "params": s.as_dict(),
        "data": data.source,
        "encoder_checkpoint": str(encoder_checkpoint) if encoder_checkpoint else None,
        "device": describe_device(device),
        "compute": compute_record(device, s.precision),
        "environment": environment(),
        "train_seconds": round(result.seconds, 1),
        "wall_seconds": round(time.time() - started, 1),
    })
    publish_latest(run_dir)
    return path


def gradient_snapshot(model: ResNetClassifier, data: Hw1Data, device: torch.device) -> dict:
    """Per-layer gradients of one batch of training images."""
    return _snapshot(model, data.train, Classification(len(data.train.classes)), device)


def pretrained_path(s: Hw1Settings, data: Hw1Data) -> Path:
    """Where the restoration-pretrained encoder for these settings and images lives."""
    key = (f"{s.arch}-w{s.width}-e{s.pretrain_epochs}-m{s.mask_ratio}-n{s.noise_std}"
           f"-{fingerprint(data.pool.images)}")
    return Path(s.pretrain_dir) / f"encoder-{key}.pt"


def pretrain_encoder(s: Hw1Settings, data: Hw1Data, device: torch.device) -> Path:
    """Pretrain encoder + decoder to restore corrupted images, on every training image
    (no labels), and save the encoder; a matching checkpoint is reused, not redone.

    Pretraining always uses seed 0, so runs with different seeds (which vary the
    labelled subset and the fine-tuning) share one pretrained encoder.
    """
    path = pretrained_path(s, data)
    if path.exists():
        print(f"reusing the pretrained encoder {path}")
        return path
    torch.manual_seed(0)
    net = RestorationNet(s.arch, s.width)
    objective = Reconstruction(partial(corrupt, mask_ratio=s.mask_ratio, noise_std=s.noise_std))
    config = FitConfig(epochs=s.pretrain_epochs, batch_size=s.batch_size, lr=2e-3,
                       optimizer="adamw", weight_decay=1e-4, seed=0, track_gradients=False,
                       precision=s.precision)
    result = fit(net, data.pool, None, objective, config, device,
                 augment=BatchAugment(crop_pad=4, flip=True))
    save_encoder(net, path, {"epochs": s.pretrain_epochs, "mask_ratio": s.mask_ratio,
                             "noise_std": s.noise_std, "images": len(data.pool),
                             "final_loss": result.history[-1]["train_loss"],
                             "history": result.history})
    print(f"saved the pretrained encoder to {path}")
    return path


def apply_pretraining(s: Hw1Settings, model: ResNetClassifier, data: Hw1Data,
                      device: torch.device) -> Path | None:
    """Initialise ``model``'s encoder as ``s.pretrain`` says; returns the checkpoint used."""
    if s.pretrain == "none":
        return None
    path = pretrain_encoder(s, data, device) if s.pretrain == "restoration" else Path(s.pretrain)
    load_encoder(model, path)
    return path


def restoration_examples(path: Path, data: Hw1Data, s: Hw1Settings, n: int = 8):
    """Corrupted inputs, restorations and originals of ``n`` test images, for a figure."""
    net = load_restoration_net(path).eval()
    clean = to_float(data.test.images[:n])
    corrupted = corrupt(clean, torch.Generator().manual_seed(0), s.mask_ratio, noise_std=s.noise_std)
    with torch.no_grad():
        restored = net(corrupted)
    return corrupted, restored, clean
