"""Classification metrics: accumulated on the device during training, and the
final test report through scikit-learn."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import classification_report, confusion_matrix


class ConfusionMeter:
    """Running confusion matrix and loss sum, kept on the device (no host sync)."""

    def __init__(self, num_classes: int, device: torch.device) -> None:
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.count = 0

    @torch.no_grad()
    def update(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch; ``loss`` is the batch's mean loss."""
        k = self.num_classes
        pred = logits.argmax(1)
        self.matrix += torch.bincount(targets * k + pred, minlength=k * k)
        self.loss_sum += loss.double() * len(targets)
        self.count += len(targets)

    def compute(self) -> dict[str, float]:
        """Loss, accuracy and macro precision/recall/F1 (one transfer to the host)."""
        cm = self.matrix.view(self.num_classes, self.num_classes).cpu().numpy()
        out = prf_from_confusion(cm)
        out["loss"] = float(self.loss_sum.cpu()) / max(self.count, 1)
        return out


class LossMeter:
    """Running mean of a loss, kept on the device."""

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.count = 0

    @torch.no_grad()
    def update(self, loss: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.loss_sum += loss.double() * len(outputs)
        self.count += len(outputs)

    def compute(self) -> dict[str, float]:
        return {"loss": float(self.loss_sum.cpu()) / max(self.count, 1)}


def prf_from_confusion(cm: np.ndarray) -> dict[str, float]:
    """Accuracy and macro precision, recall and F1 from a confusion matrix (rows = truth).

    Matches scikit-learn's ``average="macro"`` with ``zero_division=0`` over the classes
    that appear in the truth or the predictions.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted, actual = cm.sum(0), cm.sum(1)
    present = (predicted + actual) > 0
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    total = cm.sum()
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "precision": float(precision[present].mean()) if present.any() else 0.0,
        "recall": float(recall[present].mean()) if present.any() else 0.0,
        "f1": float(f1[present].mean()) if present.any() else 0.0,
    }


def classification_summary(
    y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...] | list[str]
) -> dict:
    """Test report: accuracy, macro/weighted averages, per-class P/R/F1/support and
    the confusion matrix, as plain JSON-ready Python values."""
    labels = list(range(len(classes)))
    report = classification_report(
        y_true, y_pred, labels=labels, target_names=list(classes), output_dict=True, zero_division=0
    )
    per_class = {name: report[name] for name in classes}
    return {
        "test_accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        "macro_precision": report["macro avg"]["precision"],
        "macro_recall": report["macro avg"]["recall"],
        "macro_f1": report["macro avg"]["f1-score"],
        "weighted_f1": report["weighted avg"]["f1-score"],
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def report_table(summary: dict) -> str:
    """The per-class report as aligned text, like scikit-learn's."""
    lines = [f"{'class':>12} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>8}"]
    for name, row in summary["per_class"].items():
        lines.append(
            f"{name:>12} {row['precision']:9.3f} {row['recall']:9.3f} "
            f"{row['f1-score']:9.3f} {int(row['support']):8d}"
        )
    lines.append("")
    lines.append(f"{'accuracy':>12} {summary['test_accuracy']:29.3f}")
    lines.append(
        f"{'macro avg':>12} {summary['macro_precision']:9.3f} {summary['macro_recall']:9.3f} "
        f"{summary['macro_f1']:9.3f}"
    )
    lines.append(f"{'weighted F1':>12} {summary['weighted_f1']:29.3f}")
    return "\n".join(lines)
