"""The steps of homework 2 (anomaly detection), each one call from the notebook."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .anomaly import anomaly_report, anomaly_scores, choose_threshold, oracle_threshold
from .augment import BatchAugment
from .autoencoder import ConvAutoencoder
from .cifar import load_cifar10, split_train_val
from .config import Hw2Settings
from .device import compute_record, describe_device
from .folder_data import AnomalyData, load_anomaly_folder, one_class_cifar10
from .runs import environment, fingerprint, history_writer, publish_latest, write_json, write_text
from .training import EpochHook, FitConfig, FitResult, Reconstruction, fit


def load_data(s: Hw2Settings) -> AnomalyData:
    """The course folder layout, or CIFAR-10 with ``normal_class`` as the normal class."""
    if s.dataset == "folder":
        return load_anomaly_folder(s.data_dir, s.image_size, s.train_dir, s.anomalies_dir,
                                   s.test_dir, s.annotation_file)
    train, test = load_cifar10(s.data_dir, s.download)
    return one_class_cifar10(train, test, s.normal_class)


def build_model(s: Hw2Settings) -> ConvAutoencoder:
    torch.manual_seed(s.seed)
    return ConvAutoencoder(s.channels, s.latent)


def train(s: Hw2Settings, model: ConvAutoencoder, data: AnomalyData, device: torch.device,
          run_dir: Path, on_epoch: Sequence[EpochHook] = ()):
    """Split normal images into training and validation, and train to reconstruct them.

    Augmentation keeps images normal: mirror images and a mild colour jitter. Training
    stops early when the validation loss has not improved for ``patience`` epochs.
    Checkpoints and ``history.json`` go to ``run_dir``; ``on_epoch`` hooks (e.g.
    TensorBoard) are called after every epoch. Returns the fit result and the validation
    split (for choosing the threshold).
    """
    fit_part, val = split_train_val(data.train, s.val_fraction, s.seed)
    config = FitConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, optimizer="adamw",
                       weight_decay=1e-4, seed=s.seed, patience=s.patience, warmup=0.1,
                       deterministic=s.deterministic, compile=s.compile_model, precision=s.precision)
    result = fit(model, fit_part, val, Reconstruction(), config, device,
                 augment=BatchAugment(crop_pad=0, flip=True, jitter=0.05),
                 checkpoint_dir=Path(run_dir) / "checkpoints", resume=s.resume,
                 on_epoch=[history_writer(run_dir), *on_epoch])
    return result, val


@dataclass
class Hw2Result:
    threshold: float
    how: str
    val_scores: np.ndarray
    known_scores: np.ndarray | None
    test_scores: np.ndarray
    report: dict


def score_and_threshold(s: Hw2Settings, model: ConvAutoencoder, data: AnomalyData, val,
                        device: torch.device) -> Hw2Result:
    """Score validation normals, known anomalies and the test set; choose the threshold
    from validation normals (and known anomalies) only; report on the test labels."""
    val_scores = anomaly_scores(model, val.images, device, s.score)
    known = (anomaly_scores(model, data.anomalies.images, device, s.score)
             if data.anomalies is not None else None)
    threshold, how = choose_threshold(s.threshold_method, val_scores, known, s.target_tnr)
    test_scores = anomaly_scores(model, data.test.images, device, s.score)
    labels = data.test.labels.numpy()
    report = anomaly_report(labels, test_scores, threshold)
    report["threshold_rule"] = how
    report["test_label_optimum_threshold"] = oracle_threshold(labels, test_scores)  # reported only
    unseen = _unseen_test_images(data)
    if unseen is not None:  # the same threshold, on the test images the model never trained on
        report["unseen_test"] = anomaly_report(labels[unseen], test_scores[unseen], threshold)
    return Hw2Result(threshold, how, val_scores, known, test_scores, report)


def describe(report: dict) -> str:
    """The test metrics as a few printable lines (and again without the test images that
    also occur in the training folder, when there are such)."""
    def line(r: dict) -> str:
        return (f"TPR {r['tpr']:.3f}  TNR {r['tnr']:.3f}  balanced accuracy {r['balanced_accuracy']:.3f}  "
                f"AUROC {r['auroc']:.4f}  AUPR {r['aupr']:.4f}")

    lines = [f"threshold {report['threshold']:.4g}: {report['threshold_rule']}", line(report),
             f"confusion matrix [[TN, FP], [FN, TP]]: {report['confusion_matrix']}"]
    if "unseen_test" in report:
        u = report["unseen_test"]
        lines.append(f"on the {u['test_normals'] + u['test_anomalies']} test images not in the training "
                     f"folder: {line(u)}")
    return "\n".join(lines)


def _unseen_test_images(data: AnomalyData) -> np.ndarray | None:
    """Mask of the test images not pixel-identical to a training image, when some are
    and the rest still hold both classes; otherwise None."""
    if data.test_in_train is None or not data.test_in_train.any():
        return None
    unseen = ~data.test_in_train
    if len(set(data.test.labels.numpy()[unseen].tolist())) < 2:
        return None
    return unseen


def save_metrics(s: Hw2Settings, run_dir: Path, result: Hw2Result, fit_result: FitResult,
                 data: AnomalyData, device: torch.device, started: float) -> Path:
    """Write the run's ``metrics.json`` (test metrics at the chosen threshold, history, the
    record of the run) and ``scores.csv`` (each test image's name, label, score and whether
    it is pixel-identical to a training image), and copy the metrics to
    ``<results_dir>/metrics.json``; returns the run's file."""
    names = data.test_names or [str(i) for i in range(len(data.test))]
    in_train = (data.test_in_train if data.test_in_train is not None
                else np.zeros(len(data.test), dtype=bool))
    rows = [f"{name},{int(label)},{score:.6g},{int(seen)}" for name, label, score, seen
            in zip(names, data.test.labels.tolist(), result.test_scores, in_train)]
    write_text(Path(run_dir) / "scores.csv", "file,label,score,in_train\n" + "\n".join(rows) + "\n")
    path = write_json(Path(run_dir) / "metrics.json", {
        **result.report,
        "best_epoch": fit_result.best_epoch,
        "history": fit_result.history,
        "params": s.as_dict(),
        "data": {"dataset": s.dataset, "data_dir": str(Path(s.data_dir).expanduser().resolve()),
                 "train_images": len(data.train), "test_images": len(data.test),
                 "known_anomalies": 0 if data.anomalies is None else len(data.anomalies),
                 "train_fingerprint": fingerprint(data.train.images),
                 "test_fingerprint": fingerprint(data.test.images, data.test.labels),
                 "notes": data.notes},
        "device": describe_device(device),
        "compute": compute_record(device, s.precision),
        "environment": environment(),
        "train_seconds": round(fit_result.seconds, 1),
        "wall_seconds": round(time.time() - started, 1),
    })
    publish_latest(run_dir)
    return path


def extremes(model: ConvAutoencoder, data: AnomalyData, scores: np.ndarray,
             device: torch.device, k: int = 8):
    """The ``k`` best- and ``k`` worst-reconstructed test images: inputs, reconstructions,
    error maps and titles (true label and score), ready for ``plots.plot_reconstructions``."""
    from .anomaly import error_maps, reconstruct

    order = np.argsort(scores)
    pick = torch.as_tensor(np.r_[order[:k], order[-k:]], dtype=torch.long)
    images = data.test.images[pick]
    rebuilt = reconstruct(model, images, device)
    titles = [f"{data.test.classes[int(data.test.labels[i])]}\n{scores[i]:.2g}" for i in pick]
    return images, rebuilt, error_maps(images, rebuilt), titles
