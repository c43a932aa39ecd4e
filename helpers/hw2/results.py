"""What the hw2 notebook shows and saves of a run's result: the ablation table, the test
metrics in words, the mistakes and where they look anomalous, the best and worst
reconstructions, and ``metrics.json`` with ``scores.csv``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..core.device import compute_record, describe_device
from ..core.errors import ParameterError
from ..core.runs import environment, fingerprint, publish_latest, write_json, write_text
from ..core.trainer import FitResult
from ..data.anomaly_data import AnomalyData
from .autoencoder import ConvAutoencoder
from .detector import SCORE_NAMES, SCORES, score_name
from .settings import Hw2Settings
from .signals import ensemble_error_maps, reconstruct
from .steps import Hw2Result, Hw2Split


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
        said = []
        if known is not None:
            low = r.get("known_auroc_lower")
            bound = "" if low is None else f", 95 % lower bound {low:.3f}"
            said.append(f"known anomalies vs validation normals {known:.3f}{bound}")
        if r["scene_gap"] is not None:
            said.append(f"validation vs training normals {r['scene_gap']:.3f}")
        return f" (AUROC {'; '.join(said)})" if said else ""

    text = ", ".join(f"{r['signal']} {'kept' if r['kept'] else 'left out'}{why(r)}" for r in rows)
    if all(r["known_auroc"] is None for r in rows):
        text += "; fewer than 5 known anomalies: none judged on them"
    return text


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
    write_text(Path(run_dir) / "scores.csv", scores_csv(result, data))
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


def scores_csv(result: Hw2Result, data: AnomalyData) -> str:
    """Each test image's name, label, chosen score, every signal, and whether it is
    pixel-identical to a training image, as CSV."""
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
    return ",".join(columns) + "\n" + "\n".join(rows) + "\n"


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
    "defects": "def",
}


def mistakes(result: Hw2Result, data: AnomalyData, s: Hw2Settings, k: int = 16):
    """The missed anomalies (lowest scores first) and the false alarms (highest first) at
    the chosen threshold, with titles giving the standardised score of each signal the
    combined score kept, ready for ``plots.image_grid``."""
    labels = data.test.labels.numpy()
    flagged = result.test_scores >= result.threshold
    missed = np.flatnonzero((labels == 1) & ~flagged)
    missed = missed[np.argsort(result.test_scores[missed])][:k]
    false_alarms = np.flatnonzero((labels == 0) & flagged)
    false_alarms = false_alarms[np.argsort(-result.test_scores[false_alarms])][:k]
    pick = np.r_[missed, false_alarms].astype(int)
    kept = result.detector.signals if result.detector is not None else s.signals
    names = {SHORT[x]: score_name(x, s.error_pooling) for x in kept}
    titles = [
        f"{'missed' if labels[i] else 'false alarm'} {result.test_scores[i]:.1f}\n"
        + " ".join(f"{short} {result.signals[name][i]:.1f}" for short, name in names.items())
        for i in pick
    ]
    return data.test.images[torch.as_tensor(pick, dtype=torch.long)], titles


def anomaly_maps(
    result: Hw2Result, images: torch.Tensor, device: torch.device
) -> dict[str, torch.Tensor]:
    """Where each image looks anomalous: the autoencoders' mean reconstruction error, the
    local signal's map (each position's deviation from the training normals there) and,
    when it was trained, the defect network's map."""
    detector = result.detector
    if detector is None or detector.local_model is None:
        raise ParameterError(
            "anomaly_maps needs the fitted detector of score_and_threshold's result."
        )
    maps = {
        "reconstruction error": ensemble_error_maps(detector.members, images, device),
        "local deviation": detector.local_model.maps(images, device),
    }
    if detector.defect_net is not None:
        maps["defect map"] = detector.defect_maps(images)
    return maps
