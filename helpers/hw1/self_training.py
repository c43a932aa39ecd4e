"""Self-training: a trained classifier (the teacher) labels the unlabelled images, and a
new classifier (the student) learns from the true labels and the confident pseudo-labels.

The pseudo-labels are class-balanced (after Zou et al. 2018, "class-balanced
self-training"): each class keeps at most an equal share of the unlabelled images, its most
confident ones, so a teacher that favours a few classes does not hand its bias to the
student. Images below ``threshold`` confidence are never kept.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..core.images import ImageSet
from ..core.inference import predict_proba
from ..core.trainer import FitResult
from ..core.training import EpochHook
from .pretraining import apply_pretraining
from .resnet import ResNetClassifier
from .settings import STUDENT, Hw1Settings
from .steps import Hw1Data, build_model, fit_labelled


@dataclass
class PseudoLabels:
    """Which unlabelled images were kept, with the teacher's label and confidence."""

    index: torch.Tensor  # positions in the unlabelled set, ascending
    labels: torch.Tensor
    confidence: torch.Tensor

    def __len__(self) -> int:
        return len(self.index)


def select_pseudo_labels(probs: torch.Tensor, share: float, threshold: float) -> PseudoLabels:
    """Keep, per predicted class, the most confident of ``probs``' rows (at most
    ``round(share * N / classes)`` each), and only those with confidence >= ``threshold``."""
    confidence, predicted = probs.max(1)
    classes = probs.shape[1]
    quota = round(share * len(probs) / classes)
    kept = []
    for c in range(classes):
        members = torch.nonzero((predicted == c) & (confidence >= threshold)).flatten()
        order = torch.argsort(confidence[members], descending=True, stable=True)
        kept.append(members[order[:quota]])
    index = torch.sort(torch.cat(kept)).values
    return PseudoLabels(index, predicted[index], confidence[index])


def with_pseudo_labels(labelled: ImageSet, unlabelled: ImageSet, pseudo: PseudoLabels) -> ImageSet:
    """The labelled images with their true labels, then the kept unlabelled images with the
    teacher's labels (the unlabelled set's own labels are never read)."""
    images = torch.cat([labelled.images, unlabelled.images[pseudo.index]])
    labels = torch.cat([labelled.labels, pseudo.labels.to(labelled.labels.dtype)])
    return ImageSet(images, labels, labelled.classes)


def describe(pseudo: PseudoLabels, unlabelled: int, classes: tuple[str, ...]) -> str:
    """One line: how many pseudo-labels, their confidence, and per class."""
    counts = np.bincount(pseudo.labels.numpy(), minlength=len(classes))
    low = float(pseudo.confidence.min()) if len(pseudo) else float("nan")
    per_class = ", ".join(f"{name} {n}" for name, n in zip(classes, counts, strict=True))
    return (
        f"pseudo-labelled {len(pseudo):,} of {unlabelled:,} unlabelled images "
        f"(confidence >= {low:.2f}; {per_class})"
    )


def self_train(
    s: Hw1Settings,
    teacher: ResNetClassifier,
    data: Hw1Data,
    device: torch.device,
    run_dir: Path,
    on_epoch: Sequence[EpochHook] = (),
) -> tuple[ResNetClassifier, FitResult, dict]:
    """Self-training: ``teacher`` labels the unlabelled images (averaging mirrored and
    shifted views), the class-balanced confident share is kept, and a student
    (:func:`start_student`) trains on labels and pseudo-labels with the same budget, at
    ``s.student_lr`` when set; its checkpoints and history go to ``run_dir/student``.
    Returns the student, its training result and a record of the teacher and the
    pseudo-labels for ``metrics.json``."""
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
    print(describe(pseudo, len(data.unlabelled), data.train.classes))
    if not len(pseudo):
        print(
            f"no prediction of the teacher reaches pseudo_threshold={s.pseudo_threshold}: the "
            "student learns from the labels alone (lower pseudo_threshold, or train the teacher "
            "longer)"
        )
    student = start_student(s, teacher, data, device)
    folder = Path(run_dir) / STUDENT
    resume = s.resume and (folder / "checkpoints" / "last.pt").exists()
    images = with_pseudo_labels(data.train, data.unlabelled, pseudo)
    taught = replace(s, lr=s.student_lr or s.lr)  # the student's own learning rate, if set
    result = fit_labelled(taught, student, images, data, device, folder, on_epoch, resume)
    return student, result, pseudo_record(pseudo, data)


def start_student(
    s: Hw1Settings, teacher: ResNetClassifier, data: Hw1Data, device: torch.device
) -> ResNetClassifier:
    """The student before its training: a copy of ``teacher`` with ``s.student_from_teacher``
    (the teacher's training goes on), else initialised as the teacher was (``s.pretrain``)."""
    if s.student_from_teacher:
        return copy.deepcopy(teacher)
    student = build_model(s)
    apply_pretraining(s, student, data, device)
    return student


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
