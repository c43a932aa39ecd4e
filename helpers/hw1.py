"""The steps of homework 1, each one call from the notebook."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .augment import BatchAugment, to_float
from .cifar import ImageSet, load_cifar10, split_train_val, stratified_indices
from .config import Hw1Settings
from .contrastive import ContrastiveNet, ContrastiveObjective
from .device import compute_record, describe_device
from .feature_quality import encoder_features, knn_accuracy
from .masking import random_patch_mask
from .metrics import classification_summary
from .models import ResNetClassifier, build_classifier, match_init_norms
from .pretrain import (
    MaskedRestoration,
    RestorationNet,
    load_encoder,
    load_restoration_net,
    restoration_recipe,
    save_encoder,
    shown_restoration,
)
from .runs import environment, fingerprint, history_writer, publish_latest, write_json
from .training import Classification, EpochHook, FitConfig, FitResult, fit, predict_proba
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
        "train_images": len(train),
        "val_images": len(val),
        "test_images": len(test),
        "train_fingerprint": fingerprint(train.images, train.labels),
        "test_fingerprint": fingerprint(test.images, test.labels),
    }
    return Hw1Data(train, val, test, pool, source)


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
        layer_decay=s.layer_decay,  # type: ignore[arg-type]  # resolve_hw1 replaced None
        bn_lr_factor=s.bn_lr_factor,
        **overrides,
    )


def slow_hint(s: Hw1Settings, device: torch.device) -> str:
    """What to say when a GPU-sized recipe would run for hours on the CPU."""
    if device.type != "cpu" or s.preset == "cpu":
        return ""
    return (
        f'preset="{s.preset}" is sized for a GPU. On this CPU, preset="cpu" (ResNet-18, width 32, '
        "at most 5,000 training images) trains in a small fraction of that time: interrupt the "
        "kernel and run it instead, e.g. papermill hw1_classification.ipynb out.ipynb -p preset "
        "cpu."
    )


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
    epoch; ``on_epoch`` hooks (e.g. TensorBoard) are called after every epoch too."""
    return fit(
        model,
        data.train,
        data.val,
        Classification(len(data.train.classes), s.label_smoothing),
        fit_config(s, slow_hint=slow_hint(s, device)),
        device,
        augment=BatchAugment(
            crop_pad=4,
            flip=True,
            cutout=s.cutout,
            small_crop=s.small_crop,
            small_crop_epochs=round(s.small_crop_share * s.epochs),
        ),
        checkpoint_dir=Path(run_dir) / "checkpoints",
        resume=s.resume,
        on_epoch=[history_writer(run_dir), *on_epoch],
    )


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


def pretrained_path(s: Hw1Settings, data: Hw1Data) -> Path:
    """Where the pretrained encoder for these settings and images lives: its name holds every
    setting pretraining uses (method, network, epochs, batch size, precision, images)."""
    method = f"restoration-{s.restoration}" if s.pretrain == "restoration" else s.pretrain
    key = (
        f"{method}-{s.arch}-w{s.width}-e{s.pretrain_epochs}-b{pretraining_batch_size(s)}-{s.precision}"
        f"-{fingerprint(data.pool.images)}"
    )
    return Path(s.pretrain_dir) / f"encoder-{key.replace('+', 'plus-')}.pt"


def pretraining_batch_size(s: Hw1Settings) -> int:
    """The batch size of pretraining: 256 for contrastive pretraining whatever ``batch_size``
    says, ``batch_size`` for restoration."""
    return 256 if s.pretrain == "contrastive" else s.batch_size


def pretraining_setup(s: Hw1Settings):
    """The network, objective, training configuration and augmentation of ``s.pretrain``."""
    contrastive = s.pretrain == "contrastive"
    config = FitConfig(
        epochs=s.pretrain_epochs,  # type: ignore[arg-type]  # resolve_hw1 replaced None
        batch_size=pretraining_batch_size(s),
        lr=2e-3,
        optimizer="adamw",
        weight_decay=1e-4,
        seed=0,
        track_gradients=False,
        precision=s.precision,
    )
    if contrastive:  # the objective draws the two views of each uint8 batch itself
        return (
            ContrastiveNet(s.arch, s.width),
            ContrastiveObjective(temperature=0.2),
            config,
            (lambda x, g: x),
        )
    recipe = restoration_recipe(s.restoration)
    return (
        RestorationNet(s.arch, s.width, recipe),
        MaskedRestoration(recipe),
        config,
        BatchAugment(crop_pad=4, flip=True),
    )


def pretrain_encoder(s: Hw1Settings, data: Hw1Data, device: torch.device) -> Path:
    """Pretrain the encoder without labels on every training image (``s.pretrain``:
    restoring hidden patches, or contrastive) and save it; a matching checkpoint is
    reused, not redone.

    Pretraining always uses seed 0, so runs with different seeds (which vary the
    labelled subset and the fine-tuning) share one pretrained encoder.
    """
    path = pretrained_path(s, data)
    if path.exists():
        print(f"reusing the pretrained encoder {path}")
        return path
    torch.manual_seed(0)
    net, objective, config, augment = pretraining_setup(s)
    result = fit(net, data.pool, None, objective, config, device, augment=augment)
    meta = {
        "method": s.pretrain,
        "epochs": s.pretrain_epochs,
        "images": len(data.pool),
        "seconds": round(result.seconds, 1),
        "final_loss": result.history[-1]["train_loss"],
        "history": result.history,
    }
    if s.pretrain == "restoration":
        meta["restoration"] = s.restoration
    save_encoder(net, path, meta)
    print(f"saved the pretrained encoder to {path} ({result.seconds / 60:.1f} min)")
    return path


def apply_pretraining(
    s: Hw1Settings, model: ResNetClassifier, data: Hw1Data, device: torch.device
) -> Path | None:
    """Initialise ``model``'s encoder as ``s.pretrain`` says; returns the checkpoint used."""
    if s.pretrain == "none":
        return None
    path = (
        pretrain_encoder(s, data, device)
        if s.pretrain in ("restoration", "contrastive")
        else Path(s.pretrain)
    )
    load_encoder(model, path)
    if s.match_init_norm:
        factors = match_init_norms(model.encoder)
        print(
            f"rescaled the pretrained convolutions to a fresh encoder's norms (they were "
            f"{min(factors):.2f}x to {max(factors):.2f}x as large)"
        )
    return path


def feature_quality(
    model: ResNetClassifier, data: Hw1Data, device: torch.device, precision: str = "auto"
) -> float:
    """kNN accuracy (cosine, k=20) of the encoder's pooled features: the labelled
    training images vote for each test image's class. Measures what the encoder
    knows before any fine-tuning (a random encoder scores well above chance too)."""
    bank = encoder_features(model.encoder, data.train.images, device, precision=precision)
    query = encoder_features(model.encoder, data.test.images, device, precision=precision)
    return knn_accuracy(bank, data.train.labels, query, data.test.labels, len(data.train.classes))


def restoration_examples(path: Path, data: Hw1Data, n: int = 8):
    """Inputs as the network saw them (hidden patches grey), restorations (hidden patches
    filled in) and originals of ``n`` test images, for a figure."""
    net = load_restoration_net(path).eval()
    clean = to_float(data.test.images[:n])
    patch = net.recipe.patch
    mask = random_patch_mask(
        n, (32 // patch, 32 // patch), net.recipe.mask_ratio, torch.Generator().manual_seed(0)
    )
    seen, restored = shown_restoration(net, clean, mask)
    return seen, restored, clean
