"""The steps of homework 2 (anomaly detection), each one call from the notebook: the data,
the grouped validation split, the autoencoders and the rotation network, the detector's
scores and thresholds. What the notebook shows and saves of the result is in
:mod:`helpers.hw2.results`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.augment import BatchAugment, SameEveryEpoch
from ..core.errors import ParameterError
from ..core.images import ImageSet
from ..core.objectives import Reconstruction
from ..core.runs import (
    history_writer,
)
from ..core.trainer import FitConfig, FitResult
from ..core.training import EpochHook, fit
from ..data.anomaly_data import AnomalyData, load_anomaly_folder, one_class_cifar10
from ..data.cifar import load_cifar10
from ..data.folder_profile import IMAGE_PASSES, epochs_for_budget, steps_per_epoch
from ..data.near_duplicates import drop_exact_copies, grouped_split, near_duplicate_groups
from .autoencoder import ConvAutoencoder
from .defects import DefectNet, DefectSegmentation
from .detector import (
    FIXED_SIGNALS,
    NEEDS_DEFECT_NET,
    NEEDS_TRANSFORMATION_NET,
    SCORES,
    Detector,
    check_score,
)
from .rotation import (
    TransformationNet,
    TransformationPrediction,
    augment_normals,
    transformation_list,
)
from .settings import Hw2Settings
from .thresholds import (
    anomaly_report,
    choose_signals,
    choose_threshold,
    oracle_threshold,
    separation_warning,
)

TRANSFORMATION_IMAGE_PASSES = 48_000  # the rotation network's default training budget
# The defect network's default budget: 500 optimiser steps of 16 images of 96x88 pixels'
# worth (more, smaller images per step at a smaller image_size), about 4 minutes on 2 CPU cores.
DEFECT_STEPS = 500
DEFECT_BATCH_PIXELS = 16 * 96 * 88


def load_data(s: Hw2Settings) -> AnomalyData:
    """The course folder layout, or CIFAR-10 with ``normal_class`` as the normal class."""
    if s.dataset == "folder":
        return load_anomaly_folder(
            s.data_dir,
            s.image_size,
            s.train_dir,
            s.anomalies_dir,
            s.test_dir,
            s.annotation_file,
            bool(s.grayscale),
        )
    train, test = load_cifar10(s.data_dir, s.download)
    return one_class_cifar10(train, test, s.normal_class)


def build_model(s: Hw2Settings, member: int = 0) -> ConvAutoencoder:
    """One autoencoder, initialised from ``seed`` (and its place in the ensemble)."""
    torch.manual_seed(s.seed + 1000 * member)
    return ConvAutoencoder(s.channels, s.latent, in_channels=s.in_channels())


def build_models(s: Hw2Settings) -> list[ConvAutoencoder]:
    """The ``autoencoders`` members of the ensemble, each initialised differently."""
    return [build_model(s, k) for k in range(s.autoencoders)]


@dataclass
class Hw2Split:
    """Normal images for training and validation, whole near-duplicate groups on each side."""

    train: ImageSet
    val: ImageSet
    groups: np.ndarray  # group id of every normal training image
    note: str


def split(s: Hw2Settings, data: AnomalyData) -> Hw2Split:
    """Hold out whole groups of near-duplicate normal images for validation.

    Validation normals must look as new as test images do: a random hold-out of video
    frames leaves each one's near-twin in training, so thresholds and score scales
    calibrated on them would be far too low (see ``near_duplicates``). Pixel-identical
    copies among the training images (a video's still frames) are trained on once.
    """
    groups = near_duplicate_groups(data.train.images, s.duplicate_rms)
    train_idx, val_idx = grouped_split(groups, s.val_fraction, s.seed)
    before = len(train_idx)
    train_idx = drop_exact_copies(data.train.images, train_idx)
    sizes = np.bincount(groups)
    note = (
        f"{len(groups):,} normal images in {len(sizes):,} groups of near-duplicates (RMS "
        "difference "
        f"< {s.duplicate_rms:g}; largest {sizes.max():,} images); validation: {len(val_idx):,} "
        "images "
        f"in {len(np.unique(groups[val_idx])):,} whole groups; training: {len(train_idx):,} images"
    )
    if len(train_idx) < before:
        note += f" ({before - len(train_idx):,} exact copies of other training images left out)"
    if s.epochs is None:
        note += (
            f"; each autoencoder: at most {autoencoder_epochs(s, len(train_idx))} epochs of "
            f"{steps_per_epoch(len(train_idx), s.batch_size)} steps (a budget of {IMAGE_PASSES:,} "
            "image passes at 32x48 pixels, fewer in proportion at a larger image_size)"
        )
    return Hw2Split(data.train.subset(train_idx), data.train.subset(val_idx), groups, note)


def autoencoder_epochs(s: Hw2Settings, train_images: int) -> int:
    """``s.epochs``, or (None) the epochs of the training budget (:func:`epochs_for_budget`)."""
    return s.epochs or epochs_for_budget(train_images, s.image_size)


def train(
    s: Hw2Settings,
    models: Sequence[ConvAutoencoder],
    parts: Hw2Split,
    device: torch.device,
    run_dir: Path,
    on_epoch: Sequence[EpochHook] = (),
) -> list[FitResult]:
    """Train each autoencoder to rebuild the training normals; early stopping on the
    validation normals' loss.

    Augmentation keeps images normal while covering what changes between scenes:
    mirror images, brightness/contrast/saturation jitter and shifts of a few pixels.
    Member k > 0 differs in its initialisation and batch order only, and keeps its
    checkpoints in ``run_dir/checkpoints-ae<k+1>`` and its history in
    ``history-ae<k+1>.json`` (the first: ``checkpoints/``, ``history.json``, and the
    ``on_epoch`` hooks, e.g. TensorBoard).
    """
    results = []
    for k, model in enumerate(models):
        config = FitConfig(
            epochs=autoencoder_epochs(s, len(parts.train)),
            batch_size=s.batch_size,
            lr=s.lr,
            optimizer="adamw",
            weight_decay=1e-4,
            seed=s.seed + 1000 * k,
            patience=s.patience,
            warmup=0.1,
            deterministic=s.deterministic,
            compile=s.compile_model,
            precision=s.precision,
        )
        suffix = "" if k == 0 else f"-ae{k + 1}"
        checkpoints = Path(run_dir) / f"checkpoints{suffix}"
        history = history_writer(run_dir, f"history{suffix}.json")
        results.append(
            fit(
                model,
                parts.train,
                parts.val,
                Reconstruction(),
                config,
                device,
                augment=BatchAugment(crop_pad=2, flip=True, jitter=0.15),
                checkpoint_dir=checkpoints,
                resume=s.resume and (k == 0 or (checkpoints / "last.pt").exists()),
                on_epoch=[history, *(on_epoch if k == 0 else ())],
            )
        )
    return results


@dataclass
class Hw2Result:
    threshold: float
    how: str
    val_scores: np.ndarray  # the chosen score (s.score) of the validation normals
    known_scores: np.ndarray | None
    test_scores: np.ndarray
    report: dict
    signals: dict[str, np.ndarray]  # every score of every test image (standardised)
    ablation: list[dict]  # per score: its own threshold (same method) and test metrics
    detector: Detector | None = None  # fitted: its maps show where an image looks anomalous


@dataclass
class Transformation:
    """The rotation network (``None`` when no signal needs it) and how it was trained."""

    net: TransformationNet | None
    transformations: list
    result: FitResult | None


def train_transformation_net(
    s: Hw2Settings,
    parts: Hw2Split,
    device: torch.device,
    run_dir: Path,
    on_epoch: Sequence[EpochHook] = (),
) -> Transformation:
    """Train the rotation network on the training normals, when ``s.signals`` use it
    (checkpoints in ``run_dir/checkpoints-transformation``); else return an empty one.

    It has its own batch size (``s.transformation_batch_size``, 32): with a few hundred
    normal images the autoencoder's 128 leaves it 2 steps per epoch, about 270 in all,
    and on one-class CIFAR-10 it then hardly left chance on 4 of the 10 classes (bird,
    cat and frog ended at training loss 1.30-1.38, dog at 1.18; chance is ln 4 = 1.39),
    so its signals were mostly those of an untrained network. With 32 (about 1,500
    steps) those four ended at 0.56-1.12 and the mean AUROC rose from 0.758 to 0.781.
    """
    if not set(s.signals) & set(NEEDS_TRANSFORMATION_NET):
        return Transformation(None, [], None)
    height, width = parts.train.images.shape[-2:]
    transformations = transformation_list(height, width, shifts=False)
    torch.manual_seed(s.seed)
    net = TransformationNet(len(transformations), in_channels=s.in_channels())
    epochs = s.transformation_epochs or math.ceil(TRANSFORMATION_IMAGE_PASSES / len(parts.train))
    config = FitConfig(
        epochs=epochs,
        batch_size=s.transformation_batch_size,
        lr=0.1,
        weight_decay=5e-4,
        seed=s.seed,
        deterministic=s.deterministic,
        compile=s.compile_model,
        precision=s.precision,
        track_gradients=False,
    )
    result = fit(
        net,
        parts.train,
        parts.val,
        TransformationPrediction(transformations),
        config,
        device,
        augment=SameEveryEpoch(augment_normals),
        checkpoint_dir=Path(run_dir) / "checkpoints-transformation",
        resume=s.resume and (Path(run_dir) / "checkpoints-transformation" / "last.pt").exists(),
        on_epoch=on_epoch,
    )
    return Transformation(net, transformations, result)


def train_defect_net(
    s: Hw2Settings,
    parts: Hw2Split,
    device: torch.device,
    run_dir: Path,
    on_epoch: Sequence[EpochHook] = (),
) -> tuple[DefectNet | None, FitResult | None]:
    """Train the defect network (:mod:`helpers.hw2.defects`) to find synthetic defects
    pasted into the training normals, when ``s.signals`` use it (checkpoints in
    ``run_dir/checkpoints-defects``); else return ``(None, None)``.

    Its budget is in optimiser steps (:func:`defect_budget`), so that a few hundred
    photographs get as many as thousands of small frames."""
    if not set(s.signals) & set(NEEDS_DEFECT_NET):
        return None, None
    torch.manual_seed(s.seed)
    net = DefectNet(in_channels=s.in_channels())
    batch_size, epochs = defect_budget(s, len(parts.train))
    config = FitConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=1e-3,
        optimizer="adamw",
        weight_decay=1e-4,
        seed=s.seed,
        warmup=0.05,
        deterministic=s.deterministic,
        compile=s.compile_model,
        precision=s.precision,
        track_gradients=False,
    )
    checkpoints = Path(run_dir) / "checkpoints-defects"
    result = fit(
        net,
        parts.train,
        parts.val,
        DefectSegmentation(),
        config,
        device,
        augment=BatchAugment(crop_pad=0, flip=True, jitter=0.0),
        checkpoint_dir=checkpoints,
        resume=s.resume and (checkpoints / "last.pt").exists(),
        on_epoch=[history_writer(run_dir, "history-defects.json"), *on_epoch],
    )
    return net, result


def defect_budget(s: Hw2Settings, train_images: int) -> tuple[int, int]:
    """The defect network's batch size (``DEFECT_BATCH_PIXELS`` worth of images, at least 4)
    and epochs (``s.defect_epochs``, or enough for ``DEFECT_STEPS`` steps)."""
    height, width = s.image_size
    batch_size = max(4, round(DEFECT_BATCH_PIXELS / (height * width)))
    steps = steps_per_epoch(train_images, batch_size)
    return batch_size, s.defect_epochs or math.ceil(DEFECT_STEPS / steps)


def score_and_threshold(
    s: Hw2Settings,
    models: Sequence[ConvAutoencoder],
    data: AnomalyData,
    parts: Hw2Split,
    device: torch.device,
    transformation: Transformation | None = None,
    defect_net: DefectNet | None = None,
) -> Hw2Result:
    """Fit the detector on the training normals (feature distributions) and the validation
    normals (score scales); choose each score's threshold from validation normals (and
    known anomalies) only; report every score on the test labels (the ablation) and the
    chosen one (``s.score``) in full."""
    # resolve_hw2 checked it; settings changed since would fail at the end
    check_score(s.score, s.signals)
    transformation = transformation or Transformation(None, [], None)
    detector = Detector(
        list(models),
        device,
        s.error_pooling,
        s.signals,
        transformation.net,
        transformation.transformations,
        defect_net,
        seed=s.seed,
    ).fit(parts.train.images, parts.val.images)
    val = detector.scores(parts.val.images)
    known = detector.scores(data.anomalies.images) if data.anomalies is not None else None
    test = detector.scores(data.test.images)
    signal_choice = _choose_signals(detector, parts, val, known, test)
    labels = data.test.labels.numpy()
    unseen = _unseen_test_images(data)
    reports = {
        kind: _threshold_report(s, val[kind], _of(known, kind), test[kind], labels, unseen)
        for kind in SCORES
        if kind in test
    }
    ablation = [{"score": kind, **report} for kind, report in reports.items()]
    if s.score not in reports:  # cannot happen: check_score above found it among those computed
        raise ParameterError(f"score={s.score!r} was not computed.")
    report = reports[s.score]
    # the threshold the test labels would choose: reported only, for comparison
    report["test_label_optimum_threshold"] = oracle_threshold(labels, test[s.score])
    report["signal_choice"] = signal_choice
    report["warning"] = separation_warning(val[s.score], _of(known, s.score))
    return Hw2Result(
        report["threshold"],
        report["threshold_rule"],
        val[s.score],
        _of(known, s.score),
        test[s.score],
        report,
        test,
        ablation,
        detector,
    )


def _of(scores: dict[str, np.ndarray] | None, kind: str) -> np.ndarray | None:
    """The ``kind`` score of a set of images that may be absent (no known anomalies)."""
    return None if scores is None else scores[kind]


def _threshold_report(
    s: Hw2Settings,
    val: np.ndarray,
    known: np.ndarray | None,
    test: np.ndarray,
    labels: np.ndarray,
    unseen: np.ndarray | None,
) -> dict:
    """One score's threshold, chosen from the validation normals (and known anomalies), and
    its test metrics (also on the test images the model never trained on, when some are)."""
    threshold, how = choose_threshold(s.threshold_method, val, known, s.target_tnr)
    report = anomaly_report(labels, test, threshold)
    report["threshold_rule"] = how
    if unseen is not None:
        report["unseen_test"] = anomaly_report(labels[unseen], test[unseen], threshold)
    return report


def _choose_signals(
    detector: Detector, parts: Hw2Split, val: dict, known: dict | None, test: dict
) -> list[dict]:
    """Keep in the combined score the signals that hold on new normal images and see the
    known anomalies (:func:`~helpers.hw2.thresholds.choose_signals`); recombine every score set."""
    candidates = {signal: detector.score_name(signal) for signal in detector.signals}
    fixed = [c for c in candidates if c in FIXED_SIGNALS]
    gaps = detector.scene_gaps(parts.train.images, parts.val.images) if fixed else {}
    kept, rows = choose_signals(val, known, candidates, {c: gaps[c] for c in fixed})
    detector.signals = tuple(kept)
    for scores in (val, known, test):
        if scores is not None:
            detector.recombine(scores)
    return rows


def _unseen_test_images(data: AnomalyData) -> np.ndarray | None:
    """Mask of the test images not pixel-identical to a training image, when some are
    and the rest still hold both classes; otherwise None."""
    if data.test_in_train is None or not data.test_in_train.any():
        return None
    unseen = ~data.test_in_train
    if len(set(data.test.labels.numpy()[unseen].tolist())) < 2:
        return None
    return unseen
