"""The steps of homework 2 (anomaly detection), each one call from the notebook."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.augment import BatchAugment, SameEveryEpoch
from ..core.device import compute_record, describe_device
from ..core.errors import ParameterError
from ..core.images import ImageSet
from ..core.objectives import Reconstruction
from ..core.runs import (
    environment,
    fingerprint,
    history_writer,
    publish_latest,
    write_json,
    write_text,
)
from ..core.trainer import FitConfig, FitResult
from ..core.training import EpochHook, fit
from ..data.anomaly_data import AnomalyData, load_anomaly_folder, one_class_cifar10
from ..data.cifar import load_cifar10
from ..data.folder_profile import IMAGE_PASSES, epochs_for_budget, steps_per_epoch
from ..data.near_duplicates import drop_exact_copies, grouped_split, near_duplicate_groups
from .autoencoder import ConvAutoencoder
from .detector import (
    FIXED_SIGNALS,
    NEEDS_TRANSFORMATION_NET,
    SCORE_NAMES,
    SCORES,
    Detector,
    check_score,
    ensemble_error_maps,
    reconstruct,
    score_name,
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


def score_and_threshold(
    s: Hw2Settings,
    models: Sequence[ConvAutoencoder],
    data: AnomalyData,
    parts: Hw2Split,
    device: torch.device,
    transformation: Transformation | None = None,
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
        seed=s.seed,
    ).fit(parts.train.images, parts.val.images)
    val = detector.scores(parts.val.images)
    known = detector.scores(data.anomalies.images) if data.anomalies is not None else None
    test = detector.scores(data.test.images)
    signal_choice = _choose_signals(detector, parts, val, known, test)
    labels = data.test.labels.numpy()
    unseen = _unseen_test_images(data)
    ablation, chosen = [], None
    for kind in (k for k in SCORES if k in test):
        threshold, how = choose_threshold(
            s.threshold_method,
            val[kind],
            None if known is None else known[kind],
            s.target_tnr,
        )
        report = anomaly_report(labels, test[kind], threshold)
        report["threshold_rule"] = how
        if unseen is not None:  # the same threshold, on the test images the model never trained on
            report["unseen_test"] = anomaly_report(labels[unseen], test[kind][unseen], threshold)
        ablation.append({"score": kind, **report})
        if kind == s.score:
            report["test_label_optimum_threshold"] = oracle_threshold(
                labels, test[kind]
            )  # reported only
            report["signal_choice"] = signal_choice
            report["warning"] = separation_warning(
                val[kind], None if known is None else known[kind]
            )
            chosen = Hw2Result(
                threshold,
                how,
                val[kind],
                None if known is None else known[kind],
                test[kind],
                report,
                test,
                ablation,
                detector,
            )
    if chosen is None:  # cannot happen: check_score above found s.score among those computed
        raise ParameterError(f"score={s.score!r} was not computed.")
    return chosen


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


def ablation_table(result: Hw2Result):
    """The ablation as a table: each score's TPR, TNR, AUROC and AUPR at its own threshold."""
    import pandas as pd

    rows = [
        {
            "score": SCORE_NAMES[r["score"]],
            "TPR": r["tpr"],
            "TNR": r["tnr"],
            "AUROC": r["auroc"],
            "AUPR": r["aupr"],
        }
        for r in result.ablation
    ]
    return pd.DataFrame(rows).set_index("score").round(3)


def describe(report: dict) -> str:
    """The test metrics as a few printable lines (and again without the test images that
    also occur in the training folder, when there are such)."""

    def line(r: dict) -> str:
        return (
            f"TPR {r['tpr']:.3f}  TNR {r['tnr']:.3f}  balanced accuracy "
            f"{r['balanced_accuracy']:.3f}  "
            f"AUROC {r['auroc']:.4f}  AUPR {r['aupr']:.4f}"
        )

    choice = report.get("signal_choice")
    lines = [f"combined score: {_describe_choice(choice)}"] if choice else []
    if report.get("warning"):
        lines.append(report["warning"])
    lines += [
        f"threshold {report['threshold']:.4g}: {report['threshold_rule']}",
        line(report),
        f"confusion matrix [[TN, FP], [FN, TP]]: {report['confusion_matrix']}",
    ]
    if "unseen_test" in report:
        u = report["unseen_test"]
        lines.append(
            f"on the {u['test_normals'] + u['test_anomalies']} test images not in the training "
            f"folder: {line(u)}"
        )
    return "\n".join(lines)


def _describe_choice(rows: list[dict]) -> str:
    """Each candidate signal, whether it was kept, and the AUROCs that decided it."""

    def why(r: dict) -> str:
        known = r["known_auroc"]
        said = [] if known is None else [f"known anomalies vs validation normals {known:.3f}"]
        if r["scene_gap"] is not None:
            said.append(f"validation vs training normals {r['scene_gap']:.3f}")
        return f" (AUROC {'; '.join(said)})" if said else ""

    text = ", ".join(f"{r['signal']} {'kept' if r['kept'] else 'left out'}{why(r)}" for r in rows)
    if all(r["known_auroc"] is None for r in rows):
        text += "; fewer than 5 known anomalies: none judged on them"
    return text


def _unseen_test_images(data: AnomalyData) -> np.ndarray | None:
    """Mask of the test images not pixel-identical to a training image, when some are
    and the rest still hold both classes; otherwise None."""
    if data.test_in_train is None or not data.test_in_train.any():
        return None
    unseen = ~data.test_in_train
    if len(set(data.test.labels.numpy()[unseen].tolist())) < 2:
        return None
    return unseen


def save_metrics(
    s: Hw2Settings,
    run_dir: Path,
    result: Hw2Result,
    fit_results: Sequence[FitResult],
    data: AnomalyData,
    parts: Hw2Split,
    device: torch.device,
    started: float,
) -> Path:
    """Write the run's ``metrics.json`` (test metrics at the chosen threshold, the ablation
    of every score, history, the record of the run) and ``scores.csv`` (each test image's
    name, label, chosen score, every signal, and whether it is pixel-identical to a
    training image), and copy the metrics to ``<results_dir>/metrics.json``; returns the
    run's file."""
    names = data.test_names or [str(i) for i in range(len(data.test))]
    in_train = (
        data.test_in_train
        if data.test_in_train is not None
        else np.zeros(len(data.test), dtype=bool)
    )
    kinds = [k for k in SCORES if k in result.signals]
    columns = ["file", "label", "score", *kinds, "in_train"]
    rows = [
        ",".join(
            [
                name,
                str(int(label)),
                f"{result.test_scores[i]:.6g}",
                *(f"{result.signals[k][i]:.6g}" for k in kinds),
                str(int(in_train[i])),
            ]
        )
        for i, (name, label) in enumerate(zip(names, data.test.labels.tolist(), strict=True))
    ]
    write_text(Path(run_dir) / "scores.csv", ",".join(columns) + "\n" + "\n".join(rows) + "\n")
    path = write_json(
        Path(run_dir) / "metrics.json",
        {
            **result.report,
            "score": s.score,
            "ablation": result.ablation,
            "best_epoch": fit_results[0].best_epoch,
            "best_epochs": [f.best_epoch for f in fit_results],  # of each autoencoder
            "history": fit_results[0].history,
            "params": s.as_dict(),
            "data": {
                "dataset": s.dataset,
                "data_dir": str(Path(s.data_dir).expanduser().resolve()),
                "train_images": len(data.train),
                "test_images": len(data.test),
                "known_anomalies": 0 if data.anomalies is None else len(data.anomalies),
                "train_fingerprint": fingerprint(data.train.images),
                "test_fingerprint": fingerprint(data.test.images, data.test.labels),
                "validation_split": parts.note,
                "notes": data.notes,
            },
            "device": describe_device(device),
            "compute": compute_record(device, s.precision),
            "environment": environment(),
            "train_seconds": round(sum(f.seconds for f in fit_results), 1),
            "wall_seconds": round(time.time() - started, 1),
        },
    )
    publish_latest(run_dir)
    return path


def extremes(
    models: Sequence[ConvAutoencoder],
    data: AnomalyData,
    scores: np.ndarray,
    device: torch.device,
    k: int = 8,
):
    """The ``k`` best- and ``k`` worst-reconstructed test images: inputs, the autoencoders'
    mean reconstructions, their mean error maps and titles (true label and score), ready
    for ``plots.plot_reconstructions``."""
    order = np.argsort(scores)
    pick = torch.as_tensor(np.r_[order[:k], order[-k:]], dtype=torch.long)
    images = data.test.images[pick]
    rebuilt = sum(reconstruct(m, images, device) for m in models) / len(models)
    titles = [f"{data.test.classes[int(data.test.labels[i])]}\n{scores[i]:.2g}" for i in pick]
    return images, rebuilt, ensemble_error_maps(models, images, device), titles


def combined_signals(s: Hw2Settings, result: Hw2Result | None = None) -> list[str]:
    """The names of the scores the combined score sums (reconstruction with its pooling):
    of ``s.signals``, those the known anomalies kept (``result``)."""
    signals: tuple[str, ...] = s.signals
    rows = [] if result is None else result.report.get("signal_choice", [])
    kept = {r["signal"] for r in rows if r["kept"]} if rows else set(signals)
    return [score_name(x, s.error_pooling) for x in signals if x in kept]


SHORT = {
    "reconstruction": "rec",
    "global": "glob",
    "colour": "col",
    "content": "cont",
    "texture": "tex",
    "local": "loc",
    "transformation": "rot",
    "features": "knn",
    "mahalanobis": "maha",
}


def mistakes(result: Hw2Result, data: AnomalyData, s: Hw2Settings, k: int = 16):
    """The missed anomalies (lowest scores first) and the false alarms (highest first) at
    the chosen threshold, with titles giving each combined signal's standardised score,
    ready for ``plots.image_grid``."""
    labels = data.test.labels.numpy()
    flagged = result.test_scores >= result.threshold
    missed = np.flatnonzero((labels == 1) & ~flagged)
    missed = missed[np.argsort(result.test_scores[missed])][:k]
    false_alarms = np.flatnonzero((labels == 0) & flagged)
    false_alarms = false_alarms[np.argsort(-result.test_scores[false_alarms])][:k]
    pick = np.r_[missed, false_alarms].astype(int)
    names = {SHORT[x]: score_name(x, s.error_pooling) for x in s.signals}
    titles = [
        f"{'missed' if labels[i] else 'false alarm'} {result.test_scores[i]:.1f}\n"
        + " ".join(f"{short} {result.signals[name][i]:.1f}" for short, name in names.items())
        for i in pick
    ]
    return data.test.images[torch.as_tensor(pick, dtype=torch.long)], titles


def anomaly_maps(
    result: Hw2Result, images: torch.Tensor, device: torch.device
) -> dict[str, torch.Tensor]:
    """Where each image looks anomalous: the autoencoders' mean reconstruction error and the
    local signal's map (each position's deviation from the training normals there)."""
    detector = result.detector
    if detector is None or detector.local_model is None:
        raise ParameterError(
            "anomaly_maps needs the fitted detector of score_and_threshold's result."
        )
    return {
        "reconstruction error": ensemble_error_maps(detector.members, images, device),
        "local deviation": detector.local_model.maps(images, device),
    }
