"""hw1's settings, each declared once: default, type, bounds or choices, and help.

The notebook's parameters cell, papermill's ``--help-notebook`` and the parameters table
of docs/hw1.md are written from these declarations (``python -m
helpers.tools.parameters``); :func:`resolve_hw1` fills what is left at ``None`` from the
recipe (:mod:`helpers.hw1.presets`) and checks every value, each error naming the
parameter, the bad value and a fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core import notebook_params as shared
from ..core.errors import ParameterError
from ..core.params import FOLDER, check_values, defaults, notebook_values, param, setting
from ..core.runs import name_run
from .presets import (
    FINETUNE_LAYER_DECAY,
    HW1_PRESETS,
    PRETRAIN_EPOCHS,
    PRETRAIN_METHODS,
    fraction_tuning,
)
from .resnet import ARCH_BLOCKS
from .restoration import RESTORATION_RECIPES


def _pretrain_source(name: str, value: str) -> None:
    """``"none"``, a pretraining method, or an encoder checkpoint that exists."""
    if not value:
        raise ParameterError(
            f"{name}={value!r} must be 'none', 'restoration', 'contrastive' or the path "
            "of an encoder checkpoint."
        )
    if value not in ("none", *PRETRAIN_METHODS) and not Path(value).expanduser().is_file():
        raise ParameterError(
            f"{name}={value!r} is neither 'none', 'restoration' nor 'contrastive', and no "
            "encoder checkpoint exists at that path."
        )


@dataclass
class Hw1Settings:
    """Every setting of an hw1 run; ``None`` means "the preset's" until :func:`resolve_hw1`."""

    data_dir: str = param(
        "data",
        "folder that holds cifar-10-batches-py/, or where to download it",
        what=FOLDER,
        doc="folder holding `cifar-10-batches-py/` (or where to download it)",
    )
    download: bool = param(
        True,
        "fetch CIFAR-10 (163 MB) if it is not in data_dir",
        doc="fetch CIFAR-10 (163 MB) if it is missing (md5-checked)",
    )
    fraction: float = param(
        1.0,
        "share of the labelled training images to train on, in (0, 1]",
        bounds="(0, 1]",
        hint="1.0 uses all labelled training images, 0.5 half, 0.1 a tenth",
        doc="share of the labelled training images to train on, in (0, 1]; class-stratified "
        "and seeded",
    )
    epochs: int = param(
        None,
        "training epochs (each as long as one over 100 % of the labels: see repeats)",
        bounds=">= 1",
    )
    batch_size: int = param(None, "images per step", bounds=">= 1")
    lr: float = param(
        None,
        "peak learning rate of the one-cycle schedule",
        bounds="> 0",
        hint="e.g. 0.1",
        doc="peak learning rate of the one-cycle schedule (SGD, Nesterov momentum)",
    )
    bn_lr_factor: float = param(
        None,
        "LR of the batch-norm parameters and biases relative to the weights'; None: the "
        "preset's (cpu 16, full 1)",
        bounds="> 0",
        hint="1: the weights' LR",
        doc="the learning rate of the batch-norm parameters and biases, as a multiple of the "
        "weights' (`cpu`: 16, `full`: 1; the speed-run recipes train them faster: "
        "[Speed](speed.md#the-cpu-recipe-accuracy-per-minute-in-float32))",
    )
    weight_decay: float = param(
        None,
        "L2 penalty on the weights (batch-norm parameters and biases get none); None: the "
        "preset's (cpu 2e-3, full 5e-4)",
        bounds=">= 0",
    )
    arch: str = param(
        None, '"resnet34" (preset full) or "resnet18" (preset cpu)', choices=tuple(ARCH_BLOCKS)
    )
    width: int = param(
        None, "channels of the first stage (64: the usual CIFAR ResNet)", bounds=">= 1"
    )
    seed: int = param(0, "data subset, validation split, initial weights and augmentation")
    device: str = shared.device()
    precision: str = shared.precision()
    preset: str = param(
        "full",
        '"full": GPU recipe, all of CIFAR-10; "cpu": ~5,000 images, <20 min on 2 cores',
        choices=tuple(HW1_PRESETS),
        doc='the recipe: `"full"` (for a GPU; on a CPU it announces after its first steps '
        'that it would take days, and points to `"cpu"`) or `"cpu"` (below)',
    )
    figures_dir: str = shared.figures_dir("figures/hw1")
    results_dir: str = shared.results_dir("results/hw1", "params, metrics, history, checkpoints")
    run_name: str = shared.run_name("cpu-resnet18-w32-frac0.5-scratch-seed0-3fa2c1")
    overwrite: bool = shared.overwrite()
    resume: bool = shared.resume()
    deterministic: bool = shared.deterministic()
    compile_model: bool = param(
        False,
        "True: torch.compile the model (slower on a 2-core CPU; may pay on a GPU, after a slow "
        "first epoch)",
        doc="`torch.compile` the model (on this 2-core CPU it was slower: see "
        "[Speed](speed.md#speed))",
    )
    log_dir: str | None = shared.log_dir()
    pretrain: str = param(
        "none",
        '"none", "restoration" or "contrastive" (pretrain now or reuse), or an encoder '
        "checkpoint's path",
        check=_pretrain_source,
        doc='`"restoration"`: pretrain the encoder, without labels, on restoring hidden '
        'patches; `"contrastive"`: SimCLR, the baseline (either reuses a matching pretrained '
        "encoder); or the path of an encoder checkpoint",
    )
    pretrain_epochs: int = param(
        None,
        "epochs of pretraining on every training image; None: the method's default",
        bounds=">= 1",
        doc="epochs of pretraining on every training image; `None`: 15 for restoration, 7 "
        "for contrastive (each about 10 min in float32 on a 2-core AVX2 CPU)",
    )
    restoration: str = param(
        "spark",
        'restoration recipe: "spark" (hidden 8x8 patches, the fixes of SparK/MAE) ... "dense" '
        "(the first one)",
        choices=tuple(RESTORATION_RECIPES),
        doc='the restoration recipe (see [Pretraining](#pretraining)): `"spark"`, or `"dense"` '
        '(the first pretext) and the steps between them, `"+patch8"`, `"+sparse"`, '
        '`"+masked-loss"`',
    )
    layer_decay: float = param(
        None,
        "fine-tuning: LR factor per stage below the head (< 1: layer-wise LR decay); None: 1, "
        "one LR",
        bounds="(0, 1]",
        hint="1 gives every layer the same LR",
        doc="fine-tuning a pretrained encoder: each stage below the head gets this factor of "
        "the LR of the one above (layer-wise LR decay, e.g. 0.7; from scratch it is always "
        "1); `None`: 1, one LR for every layer (the decay was measured not to pay, "
        "[below](#layer-wise-lr-decay-against-one-lr))",
    )
    match_init_norm: bool = param(
        False,
        "fine-tuning: rescale the pretrained convolutions to a fresh encoder's norms (same "
        "function, faster learning)",
        doc="fine-tuning: rescale every convolution of the pretrained encoder (and its batch "
        "norm's running statistics) to the norm a freshly initialised one has: the network "
        "computes the same function, but its effective learning rate (LR / ‖w‖² under batch "
        "norm) is a fresh network's again; with a restoration encoder and half the labels or "
        "more it turns −3.4 points into −1.2 (50 %) and −0.7 into +0.1 (100 %) "
        "([below](#why-the-restoration-encoder-learns-slowly))",
    )
    pretrain_dir: str = param(
        "results/pretrained",
        "pretrained encoders, reused across runs",
        what=FOLDER,
        doc="where pretrained encoders are kept and looked up",
    )
    repeats: int | None = param(
        None,
        "passes over the labelled images per epoch; None: as many images per epoch as 100 % "
        "of the labels, up to the recipe's cap (the budget does not shrink with the fraction)",
        bounds=">= 1",
    )
    self_training: bool = param(
        False,
        "True (fraction < 1): the trained model labels the unlabelled images, a student "
        "learns from both",
    )
    teacher: str | None = param(
        None,
        "self-training: a finished run's folder whose final model labels the images (a "
        "self-training run's student: a second round); None: train it here",
    )
    pseudo_share: float = param(
        0.5,
        "self-training: share of the unlabelled images pseudo-labelled (class-balanced, "
        "most confident first)",
        bounds="(0, 1)",
        hint="e.g. 0.5",
    )
    pseudo_threshold: float = param(
        0.5,
        "self-training: least teacher confidence a pseudo-label needs",
        bounds="[0, 1)",
        hint="e.g. 0.5",
    )
    student_from_teacher: bool = param(
        True,
        "self-training: the student starts from the teacher's weights (its training goes on "
        "with the pseudo-labels); False: where the teacher started",
    )
    student_lr: float | None = param(
        None,
        "self-training: the student's peak learning rate; None: the preset's for a student "
        "that starts from its teacher (cpu 0.03, full 0.06), lr for one that does not",
        bounds="> 0",
        hint="e.g. 0.03",
    )
    # The recipe's own settings: the preset's (presets.HW1_PRESETS), or a tool's.
    label_smoothing: float = setting(None, "label smoothing of the loss", bounds="[0, 1)")
    cutout: int = setting(None, "side of the cutout square", bounds=">= 0", hint="0: none")
    mixup: float = setting(
        0.0,
        "mixup's Beta(a, a) parameter: images and labels blended in pairs",
        bounds=">= 0",
        hint="0 turns it off",
    )
    trivial_augment: bool = setting(
        False, "TrivialAugment: one random colour or geometric change per training image"
    )
    max_train_images: int | None = setting(
        None, "cap on the training pool (stratified); None: every image", bounds=">= 1"
    )
    max_epoch_images: int | None = setting(
        None,
        "cap on the images an epoch draws, whatever the training set's size (a time budget); "
        "None: as many as 100 % of the labels",
        bounds=">= 1",
    )
    small_crop: int = setting(
        0,
        "> 0: the first epochs train on random windows of this many pixels",
        bounds=">= 0",
        hint="0 turns it off",
    )
    small_crop_share: float = setting(0.0, "the share of the epochs that do", bounds="[0, 1]")
    tta_shift: int = setting(
        0,
        "test-time augmentation: also average views shifted by this many pixels",
        bounds=">= 0",
        hint="0 turns it off",
    )
    val_fraction: float = setting(
        0.1, "share of the training pool held out for validation", bounds="(0, 1)"
    )
    tuned_for: float | None = setting(
        None, "filled in: the labelled fraction whose tuned settings apply"
    )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def run_label(self) -> str:
        arm = (
            "scratch"
            if self.pretrain == "none"
            else self.pretrain
            if self.pretrain in PRETRAIN_METHODS
            else "pretrained"
        )
        return (
            f"{self.preset}-{self.arch}-w{self.width}-frac{self.fraction:g}-{arm}-seed{self.seed}"
        )


def parameters_of(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's parameters, by their declared names, from its ``globals()``."""
    return notebook_values(Hw1Settings, namespace)


BEST = "checkpoints/best.pt"
STUDENT = "student"  # the folder, inside a self-training run's, of its student


def final_model_folder(run: Path) -> Path:
    """The folder that holds a finished hw1 run's final model: ``run/student`` when the run
    self-trained (its student is what it reported), else ``run``."""
    student = run / STUDENT
    return student if (student / BEST).is_file() else run


def _check_together(p: dict[str, Any]) -> None:
    """The rules between parameters: self-training needs unlabelled images (fraction < 1),
    and a teacher is only read by self-training, from a finished run's folder."""
    if p["self_training"] and p["fraction"] >= 1:
        raise ParameterError(
            "self_training=True needs unlabelled training images: choose fraction < 1, e.g. 0.1."
        )
    if p["teacher"] is not None and not p["self_training"]:
        raise ParameterError(
            f"teacher={p['teacher']!r} is only used with self_training=True: set "
            "self_training=True, or teacher=None."
        )
    teacher = p["teacher"]
    if (
        teacher is not None
        and not (final_model_folder(Path(teacher).expanduser()) / BEST).is_file()
    ):
        raise ParameterError(
            f"teacher={teacher!r} has no {BEST} (nor {STUDENT}/{BEST}): give the folder of a "
            "finished hw1 run with the same fraction and seed, or None to train the teacher in "
            "this run."
        )


def resolve_hw1(preset: str = "full", **params: Any) -> Hw1Settings:
    """Check every parameter against its declaration, then fill those left at ``None``:
    from ``preset``, the settings tuned for the nearest labelled fraction, and the
    pretraining method's defaults; an explicit value always wins."""
    check_values(Hw1Settings, {"preset": preset, **params})
    given = {k: v for k, v in params.items() if v is not None}
    p = {**defaults(Hw1Settings), **HW1_PRESETS[preset], "preset": preset}
    p["tuned_for"], tuning = fraction_tuning(preset, given.get("fraction", p["fraction"]))
    p.update({**tuning, **given})
    if not (p["self_training"] and p["student_from_teacher"]) and "student_lr" not in given:
        p["student_lr"] = None  # no student, or a fresh one: it trains as its teacher did
    if p["pretrain_epochs"] is None:
        p["pretrain_epochs"] = PRETRAIN_EPOCHS.get(p["pretrain"], PRETRAIN_EPOCHS["restoration"])
    if p["layer_decay"] is None:
        p["layer_decay"] = FINETUNE_LAYER_DECAY
    if p["pretrain"] == "none":  # the decay shapes the fine-tuning of a pretrained encoder only
        p["layer_decay"] = 1.0
    _check_together(p)
    return name_run(Hw1Settings(**p))
