"""The steps of homework 1, each one call from the notebook."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.augment import BatchAugment, SameEveryEpoch, to_float
from ..core.checkpoints import load_checked
from ..core.device import compute_record, describe_device
from ..core.errors import ParameterError
from ..core.inference import gradient_snapshot as _snapshot
from ..core.inference import predict_proba
from ..core.metrics import classification_summary
from ..core.objectives import Classification
from ..core.progress import log_line
from ..core.runs import environment, fingerprint, history_writer, publish_latest, write_json
from ..core.trainer import FitConfig, FitResult
from ..core.training import EpochHook, fit
from ..data.cifar import (
    ImageSet,
    load_cifar10,
    load_cifar10_training,
    split_train_val,
    stratified_indices,
)
from .contrastive import ContrastiveNet, ContrastiveObjective
from .feature_quality import encoder_features, knn_accuracy
from .masking import random_patch_mask
from .resnet import ResNetClassifier, build_classifier, match_init_norms
from .restoration import (
    MaskedRestoration,
    RestorationNet,
    load_encoder,
    load_restoration_net,
    restoration_recipe,
    save_encoder,
    shown_restoration,
)
from .self_training import PseudoLabels, select_pseudo_labels, with_pseudo_labels
from .self_training import describe as describe_pseudo
from .settings import Hw1Settings


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


def repeats(s: Hw1Settings, images: int, all_labels: int) -> int:
    """Passes over ``images`` training images per epoch: ``s.repeats``, or as many as make
    an epoch as long as one over ``all_labels`` images (100 % of the labels), so that every
    labelled fraction trains for the same number of optimiser steps."""
    return s.repeats or max(1, round(all_labels / images))


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
    return _fit_labelled(s, model, data.train, data, device, Path(run_dir), on_epoch, s.resume)


def _fit_labelled(
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
    config = fit_config(s, repeats=repeats(s, len(images), data.all_labels))
    augment = BatchAugment(
        crop_pad=4,
        flip=True,
        cutout=s.cutout,
        small_crop=s.small_crop,
        small_crop_epochs=round(s.small_crop_share * s.epochs),
    )
    objective = Classification(len(images.classes), s.label_smoothing)
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
)


def load_teacher(
    s: Hw1Settings, model: ResNetClassifier, run: Path, device: torch.device
) -> FitResult:
    """Load the best weights and the history of the finished run in ``run`` into ``model``,
    after checking it was trained on the same labelled images."""
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
    state = torch.load(run / "checkpoints" / "best.pt", map_location="cpu")
    load_checked(model, state["model"], run / "checkpoints" / "best.pt")
    model.to(device)
    history = json.loads((run / "history.json").read_text())
    best = max(history, key=lambda h: h.get("selection_score", float("-inf")))
    print(f"teacher: the model of {run} (best epoch {state['epoch']})")
    return FitResult(history, state["epoch"], best.get("selection_score", float("nan")), 0.0)


def self_train(
    s: Hw1Settings,
    teacher: ResNetClassifier,
    data: Hw1Data,
    device: torch.device,
    run_dir: Path,
    on_epoch: Sequence[EpochHook] = (),
) -> tuple[ResNetClassifier, FitResult, dict]:
    """Self-training: ``teacher`` labels the unlabelled images (averaging mirrored and
    shifted views), the class-balanced confident share is kept, and a student, initialised
    as the teacher was (``s.pretrain``), trains on labels and pseudo-labels with the same
    budget; its checkpoints and history go to ``run_dir/student``. Returns the student, its
    training result and a record of the teacher and the pseudo-labels for ``metrics.json``."""
    assert data.unlabelled is not None, "self-training needs fraction < 1 (checked in resolve_hw1)"
    probs = predict_proba(
        teacher,
        data.unlabelled.images,
        device,
        flip_tta=True,
        precision=s.precision,
        shift_tta=s.tta_shift,
    )
    pseudo = select_pseudo_labels(probs, s.pseudo_share, s.pseudo_threshold)
    print(describe_pseudo(pseudo, len(data.unlabelled), data.train.classes))
    if not len(pseudo):
        print(
            f"no prediction of the teacher reaches pseudo_threshold={s.pseudo_threshold}: the "
            "student learns from the labels alone (lower pseudo_threshold, or train the teacher "
            "longer)"
        )
    student = build_model(s)
    apply_pretraining(s, student, data, device)
    folder = Path(run_dir) / "student"
    resume = s.resume and (folder / "checkpoints" / "last.pt").exists()
    images = with_pseudo_labels(data.train, data.unlabelled, pseudo)
    result = _fit_labelled(s, student, images, data, device, folder, on_epoch, resume)
    return student, result, pseudo_record(pseudo, data)


def pseudo_record(pseudo: PseudoLabels, data: Hw1Data) -> dict:
    """What self-training kept. The accuracy of the pseudo-labels against the training
    labels ``fraction`` hid is reported for the docs only; nothing chooses by it."""
    assert data.unlabelled is not None
    hidden = data.unlabelled.labels[pseudo.index]
    return {
        "unlabelled_images": len(data.unlabelled),
        "pseudo_labels": len(pseudo),
        "least_confidence": float(pseudo.confidence.min()) if len(pseudo) else None,
        "pseudo_label_accuracy": float((hidden == pseudo.labels).float().mean())
        if len(pseudo)
        else None,
        "trained_images": len(data.train) + len(pseudo),
    }


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
        epochs=s.pretrain_epochs,
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
            SameEveryEpoch(lambda x, g: x),
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
    assert data.test is not None, "load_data(with_test=True) reads the test set"
    query = encoder_features(model.encoder, data.test.images, device, precision=precision)
    return knn_accuracy(bank, data.train.labels, query, data.test.labels, len(data.train.classes))


def restoration_examples(path: Path, data: Hw1Data, n: int = 8):
    """Inputs as the network saw them (hidden patches grey), restorations (hidden patches
    filled in) and originals of ``n`` test images, for a figure."""
    net = load_restoration_net(path).eval()
    assert data.test is not None, "load_data(with_test=True) reads the test set"
    clean = to_float(data.test.images[:n])
    patch = net.recipe.patch
    mask = random_patch_mask(
        n, (32 // patch, 32 // patch), net.recipe.mask_ratio, torch.Generator().manual_seed(0)
    )
    seen, restored = shown_restoration(net, clean, mask)
    return seen, restored, clean
