"""The steps of homework 1, each one call from the notebook: the data, the model, training,
the test report and the record of the run. Pretraining is in :mod:`helpers.hw1.pretraining`,
self-training in :mod:`helpers.hw1.self_training`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.augment import BatchAugment
from ..core.checkpoints import load_checked
from ..core.device import compute_record, describe_device
from ..core.errors import ParameterError
from ..core.images import ImageSet
from ..core.inference import gradient_snapshot as _snapshot
from ..core.inference import predict_proba
from ..core.metrics import classification_summary
from ..core.objectives import Classification
from ..core.progress import log_line
from ..core.runs import environment, fingerprint, history_writer, publish_latest, write_json
from ..core.trainer import FitConfig, FitResult
from ..core.training import EpochHook, fit
from ..data.cifar import (
    load_cifar10,
    load_cifar10_training,
    split_train_val,
    stratified_indices,
)
from .resnet import ResNetClassifier, build_classifier
from .settings import BEST, Hw1Settings, final_model_folder


@dataclass
class Hw1Data:
    train: ImageSet  # the labelled images trained on (after ``fraction``)
    val: ImageSet  # held out of the pool, for choosing the best epoch
    test: ImageSet | None  # used once, for the final report (None in the recipe search)
    pool: ImageSet  # every training image (labels unused by pretraining)
    source: dict
    unlabelled: ImageSet | None = None  # training images whose labels ``fraction`` left out

    @property
    def all_labels(self) -> int:
        """How many images 100 % of the labels would train on."""
        return len(self.train) + (len(self.unlabelled) if self.unlabelled is not None else 0)


def load_data(s: Hw1Settings, with_test: bool = True) -> Hw1Data:
    """Training, validation and test sets for the settings.

    The preset's ``max_train_images`` caps the training pool (stratified), the
    validation split is held out of that pool, and ``fraction`` then keeps that share
    of the remaining labelled images; the rest are the unlabelled images (self-training
    reads them without their labels). The test set is only used for the final report;
    ``with_test=False`` does not even read it (the recipe search).
    """
    if with_test:
        train_all, test = load_cifar10(s.data_dir, s.download)
    else:
        train_all, test = load_cifar10_training(s.data_dir, s.download), None
    pool = train_all
    if s.max_train_images and len(train_all) > s.max_train_images:
        share = s.max_train_images / len(train_all)
        pool = train_all.subset(stratified_indices(train_all.labels, share, s.seed))
    train, val = split_train_val(pool, s.val_fraction, s.seed)
    unlabelled = None
    if s.fraction < 1:
        chosen = stratified_indices(train.labels, s.fraction, s.seed)
        rest = np.setdiff1d(np.arange(len(train)), chosen)
        train, unlabelled = train.subset(chosen), train.subset(rest)
    source = {
        "data_dir": str(Path(s.data_dir).expanduser().resolve()),
        "train_images": len(train),
        "val_images": len(val),
        "test_images": len(test) if test is not None else None,
        "unlabelled_images": len(unlabelled) if unlabelled is not None else 0,
        "train_fingerprint": fingerprint(train.images, train.labels),
        "test_fingerprint": fingerprint(test.images, test.labels) if test is not None else None,
    }
    return Hw1Data(train, val, test, pool, source, unlabelled)


def budget(s: Hw1Settings, all_labels: int) -> dict[str, int]:
    """An epoch's length: ``s.repeats`` passes over the training images when given, or else
    exactly ``all_labels`` images (an epoch over 100 % of the labels), so that every
    labelled fraction, and a self-training student with any number of pseudo-labels, trains
    for the same number of optimiser steps; at most ``s.max_epoch_images`` (the recipe's
    time budget)."""
    if s.repeats:
        return {"repeats": s.repeats}
    return {"epoch_images": min(all_labels, s.max_epoch_images or all_labels)}


def build_model(s: Hw1Settings, num_classes: int = 10) -> ResNetClassifier:
    """The classifier, with weights drawn from ``seed``."""
    torch.manual_seed(s.seed)
    return build_classifier(s.arch, s.width, num_classes)


def fit_config(s: Hw1Settings, **overrides) -> FitConfig:
    return FitConfig(
        epochs=s.epochs,
        batch_size=s.batch_size,
        lr=s.lr,
        weight_decay=s.weight_decay,
        seed=s.seed,
        deterministic=s.deterministic,
        compile=s.compile_model,
        precision=s.precision,
        layer_decay=s.layer_decay,
        bn_lr_factor=s.bn_lr_factor,
        **overrides,
    )


def slow_hint(s: Hw1Settings, device: torch.device) -> Callable[[float], None] | None:
    """What ``fit`` calls (``on_slow``) when its estimate is over an hour: on the CPU with a
    GPU-sized recipe, the advice to run the cpu preset instead; None elsewhere."""
    if device.type != "cpu" or s.preset == "cpu":
        return None

    def advise(seconds: float) -> None:
        log_line(
            f'preset="{s.preset}" is sized for a GPU. On this CPU, preset="cpu" (ResNet-18, '
            "width 32, at most 5,000 training images) trains in a small fraction of that time: "
            "interrupt the kernel and run it instead, e.g. papermill hw1_classification.ipynb "
            "out.ipynb -p preset cpu."
        )

    return advise


def train(
    s: Hw1Settings,
    model: ResNetClassifier,
    data: Hw1Data,
    device: torch.device,
    run_dir: Path,
    on_epoch: Sequence[EpochHook] = (),
) -> FitResult:
    """Train with the recipe's augmentation; checkpoints go to ``run_dir/checkpoints``
    (``s.resume`` continues from the last one) and ``run_dir/history.json`` grows each
    epoch; ``on_epoch`` hooks (e.g. TensorBoard) are called after every epoch too. With
    ``s.teacher`` (self-training), the model is that finished run's instead."""
    if s.teacher:
        return load_teacher(s, model, Path(s.teacher), device)
    return fit_labelled(s, model, data.train, data, device, Path(run_dir), on_epoch, s.resume)


def fit_labelled(
    s: Hw1Settings,
    model: ResNetClassifier,
    images: ImageSet,
    data: Hw1Data,
    device: torch.device,
    folder: Path,
    on_epoch: Sequence[EpochHook],
    resume: bool,
) -> FitResult:
    """``fit`` on ``images`` with the recipe, the budget of 100 % of the labels, checkpoints
    in ``folder/checkpoints`` and the history in ``folder/history.json``."""
    config = fit_config(s, **budget(s, data.all_labels))
    augment = BatchAugment(
        crop_pad=4,
        flip=True,
        cutout=s.cutout,
        trivial=s.trivial_augment,
        small_crop=s.small_crop,
        small_crop_epochs=round(s.small_crop_share * s.epochs),
    )
    objective = Classification(len(images.classes), s.label_smoothing, s.mixup)
    return fit(
        model,
        images,
        data.val,
        objective,
        config,
        device,
        augment=augment,
        checkpoint_dir=folder / "checkpoints",
        resume=resume,
        on_epoch=[history_writer(folder), *on_epoch],
        on_slow=slow_hint(s, device),
    )


# Settings a teacher must share with the self-training run that reuses it.
TEACHER_MUST_MATCH = (
    "fraction",
    "seed",
    "arch",
    "width",
    "max_train_images",
    "val_fraction",
    "data_dir",
    "pretrain",
    "restoration",
    "pretrain_epochs",
)


def load_teacher(
    s: Hw1Settings, model: ResNetClassifier, run: Path, device: torch.device
) -> FitResult:
    """Load the best weights and the history of the finished run in ``run`` into ``model``,
    after checking it was trained on the same labelled images. A self-training run's final
    model is its student, which then teaches a second round."""
    params = json.loads((run / "params.json").read_text())
    mine = s.as_dict()
    differ = [
        f"{k}={params.get(k)!r} (this run: {mine[k]!r})"
        for k in TEACHER_MUST_MATCH
        if params.get(k) != mine[k]
    ]
    if differ:
        raise ParameterError(
            f"teacher={str(run)!r} was trained with "
            + ", ".join(differ)
            + ": give a run with this run's labelled images and network, or teacher=None."
        )
    folder = final_model_folder(run)
    state = torch.load(folder / BEST, map_location="cpu")
    load_checked(model, state["model"], folder / BEST)
    model.to(device)
    history = json.loads((folder / "history.json").read_text())
    best = max(history, key=lambda h: h.get("selection_score", float("-inf")))
    print(f"teacher: the model of {folder} (best epoch {state['epoch']})")
    return FitResult(history, state["epoch"], best.get("selection_score", float("nan")), 0.0)


@dataclass
class TestResult:
    summary: dict
    y_true: np.ndarray
    y_pred: np.ndarray
    confidence: np.ndarray


def test_report(
    model: ResNetClassifier,
    data: Hw1Data,
    device: torch.device,
    precision: str = "auto",
    shift: int = 0,
) -> TestResult:
    """Predict the test set (averaging each image with its mirror image, and with ``shift``
    also with views shifted by that many pixels) and score it."""
    assert data.test is not None, "load_data(with_test=True) reads the test set"
    probs = predict_proba(
        model, data.test.images, device, flip_tta=True, precision=precision, shift_tta=shift
    )
    y_true = data.test.labels.numpy()
    confidence, y_pred = probs.max(1)
    summary = classification_summary(y_true, y_pred.numpy(), data.test.classes)
    return TestResult(summary, y_true, y_pred.numpy(), confidence.numpy())


def save_metrics(
    s: Hw1Settings,
    run_dir: Path,
    test: TestResult,
    result: FitResult,
    data: Hw1Data,
    device: torch.device,
    started: float,
    encoder_checkpoint: Path | None = None,
    knn_accuracy: float | None = None,
    self_training: dict | None = None,
) -> Path:
    """Write the run's ``metrics.json`` (test scores, history, parameters, data, device,
    versions) and copy it to ``<results_dir>/metrics.json``; returns the run's file."""
    path = write_json(
        Path(run_dir) / "metrics.json",
        {
            **test.summary,
            "best_epoch": result.best_epoch,
            "history": result.history,
            "params": s.as_dict(),
            "data": data.source,
            "encoder_checkpoint": str(encoder_checkpoint) if encoder_checkpoint else None,
            "encoder_knn_accuracy": knn_accuracy,
            "self_training": self_training,
            "device": describe_device(device),
            "compute": compute_record(device, s.precision),
            "environment": environment(),
            "train_seconds": round(result.seconds, 1),
            "wall_seconds": round(time.time() - started, 1),
        },
    )
    publish_latest(run_dir)
    return path


def gradient_snapshot(model: ResNetClassifier, data: Hw1Data, device: torch.device) -> dict:
    """Per-layer gradients of one batch of training images."""
    return _snapshot(model, data.train, Classification(len(data.train.classes)), device)
