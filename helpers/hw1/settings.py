"""Recipes (presets) and the checking of notebook parameters.

A notebook parameter left at ``None`` takes the preset's value; any value given
explicitly wins. Every check raises :class:`ParameterError` naming the parameter, the
bad value and a fix, so a typo is caught in the first cell that can know.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..core.device import DEVICES, check_precision
from ..core.errors import ParameterError
from ..core.training import check_bn_lr_factor
from ..data.folder_profile import MAX_PIXELS
from .resnet import ARCH_BLOCKS

# The recipes of hw1. "full": the GPU recipe for the whole of CIFAR-10. "cpu": a recipe
# for about 5,000 training images that finishes within 20 minutes in float32 on a 2-core
# AVX2 CPU: the first 70 % of its epochs train on random 24-pixel windows (half the
# compute per image), stronger label smoothing and weight decay, 16x the learning rate for
# the batch-norm parameters and biases, and the test averages shifted and mirrored views
# (see docs/speed.md for the measurements behind each choice).
HW1_PRESETS: dict[str, dict[str, Any]] = {
    "full": dict(
        arch="resnet34",
        width=64,
        epochs=100,
        batch_size=256,
        lr=0.2,
        weight_decay=5e-4,
        label_smoothing=0.1,
        cutout=16,
        max_train_images=None,
        small_crop=0,
        small_crop_share=0.0,
        tta_shift=0,
        bn_lr_factor=1.0,
    ),
    "cpu": dict(
        arch="resnet18",
        width=32,
        epochs=45,
        batch_size=64,
        lr=0.1,
        weight_decay=2e-3,
        label_smoothing=0.2,
        cutout=8,
        max_train_images=5000,
        small_crop=24,
        small_crop_share=0.7,
        tta_shift=2,
        bn_lr_factor=16.0,
    ),
}

# Settings tuned per labelled fraction on the validation split (python -m
# helpers.tools.recipe_search, docs/hw1.md#a-fair-budget-for-every-labelled-fraction): a run
# takes the entry of the tuned fraction nearest its own (on a log scale) over the preset;
# explicit parameters win.
HW1_FRACTION_TUNING: dict[str, dict[float, dict[str, Any]]] = {
    "cpu": {1.0: {}, 0.5: {}, 0.1: {}},
    "full": {},
}
# Self-training (hw1.self_train): the class-balanced share of the unlabelled images that
# the teacher labels, and the least confidence a pseudo-label needs.
SELF_TRAINING = {"pseudo_share": 0.5, "pseudo_threshold": 0.5}


def fraction_tuning(preset: str, fraction: float) -> tuple[float | None, dict[str, Any]]:
    """The tuned fraction nearest ``fraction`` (log scale) and its settings; (None, {})
    when the preset has none."""
    tuned = HW1_FRACTION_TUNING.get(preset, {})
    if not tuned:
        return None, {}
    nearest = min(tuned, key=lambda f: abs(math.log(f / fraction)))
    return nearest, dict(tuned[nearest])


# Self-supervised pretraining of hw1's encoder, and its epochs on the training pool.
PRETRAIN_METHODS = ("restoration", "contrastive")
PRETRAIN_EPOCHS = {
    "restoration": 15,
    "contrastive": 7,
}  # about 10 min each in float32 on a 2-core AVX2 CPU
# Fine-tuning a pretrained encoder: each stage below the head gets this factor of the LR
# above it (layer-wise LR decay). Measured (docs/hw1.md): 0.7 gave nothing at 10 % of the
# labels and cost 8 points at 50 %, where the pretrained encoder must still learn much; so
# one LR for every layer, with the decay kept as a parameter.
FINETUNE_LAYER_DECAY = 1.0


def _choice(name: str, value: Any, choices) -> None:
    if value not in choices:
        raise ParameterError(
            f"{name}={value!r} is unknown; choose one of {', '.join(map(str, choices))}."
        )


def _reject_unknown(params: dict[str, Any], settings_class) -> set[str]:
    """The valid parameter names of ``settings_class``; a typo'd name is an error."""
    known = {f.name for f in fields(settings_class)}
    unknown = set(params) - known
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {sorted(unknown)}; valid names: {sorted(known)}."
        )
    return known


def _name_the_run(settings):
    """Check ``run_name`` and ``log_dir``; fill a run_name left at None from the parameters."""
    from ..core.runs import run_name

    name = settings.run_name
    if name is None:
        settings.run_name = run_name(settings.run_label(), settings.as_dict())
    elif (
        not isinstance(name, str)
        or not name.strip()
        or name in (".", "..")
        or any(c in name for c in "/\\")
    ):
        raise ParameterError(
            f"run_name={name!r} must be a plain folder name (no slashes), "
            "or None to name the run from its parameters."
        )
    if settings.log_dir is not None and not isinstance(settings.log_dir, str):
        raise ParameterError(
            f"log_dir={settings.log_dir!r} must be a folder path, or None for no "
            "TensorBoard logging."
        )
    return settings


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["epochs=5", "channels=[8, 16]", "device=cpu"]`` -> parameters: each value is read
    as JSON when it parses (numbers, true/false/null, lists), else kept as a string."""
    import json

    params = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ParameterError(f"{item!r} is not NAME=VALUE; write e.g. epochs=5.")
        try:
            params[name] = json.loads(text)
        except json.JSONDecodeError:
            params[name] = text
    return params


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{name}={value!r} must be an integer >= 1.")


def _share(name: str, value: Any, example: float) -> None:
    """A clear error unless ``value`` is a number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ParameterError(f"{name}={value!r} must lie in (0, 1), e.g. {example}.")


@dataclass
class Hw1Settings:
    """Every setting of an hw1 run, after the preset has been applied and checked."""

    data_dir: str
    download: bool
    fraction: float
    epochs: int
    batch_size: int
    lr: float
    arch: str
    width: int
    seed: int
    device: str
    preset: str
    figures_dir: str
    results_dir: str
    weight_decay: float
    label_smoothing: float
    cutout: int
    max_train_images: int | None
    small_crop: int = 0  # > 0: the first epochs train on random windows of this many pixels
    small_crop_share: float = 0.0  # the share of the epochs that do
    tta_shift: int = 0  # test-time augmentation: also average views shifted by this many pixels
    bn_lr_factor: float = 1.0  # LR of batch-norm parameters and biases, relative to the weights'
    val_fraction: float = 0.1
    overwrite: bool = False
    resume: bool = False
    deterministic: bool = False
    # "none", "restoration", "contrastive", or the path of an encoder checkpoint
    pretrain: str = "none"
    pretrain_epochs: int | None = None  # None: PRETRAIN_EPOCHS[pretrain]
    restoration: str = "spark"  # the restoration recipe (pretrain.RESTORATION_RECIPES)
    # fine-tuning LR decay per stage below the head; None: FINETUNE_LAYER_DECAY
    layer_decay: float | None = None
    # fine-tuning: rescale pretrained convolutions to a fresh one's norm
    match_init_norm: bool = False
    pretrain_dir: str = "results/pretrained"
    run_name: str | None = None  # None: named from the parameters (see runs.run_name)
    log_dir: str | None = None  # TensorBoard event files; None: no TensorBoard logging
    compile_model: bool = False  # torch.compile the model
    precision: str = "auto"  # "auto", "fp32", "bf16", "fp16" (device.autocast_dtype)
    # passes over the labelled images per epoch; None: as many as make one epoch the size
    # of 100 % of the labels (round(1 / fraction)), so every fraction gets the same budget
    repeats: int | None = None
    # self-training: the trained model labels the unlabelled training images, and a new
    # model (initialised like the first) learns from the labels and the pseudo-labels
    self_training: bool = False
    teacher: str | None = (
        None  # a finished run's folder whose model is the teacher; None: train it here
    )
    pseudo_share: float = SELF_TRAINING[
        "pseudo_share"
    ]  # share of the unlabelled images pseudo-labelled
    pseudo_threshold: float = SELF_TRAINING["pseudo_threshold"]  # least teacher confidence kept
    tuned_for: float | None = None  # filled in: the labelled fraction whose tuned settings apply

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


def _check_self_training(p: dict[str, Any]) -> None:
    """Self-training needs unlabelled images (fraction < 1) and a teacher that exists."""
    if not isinstance(p.get("self_training", False), bool):
        raise ParameterError(f"self_training={p['self_training']!r} must be True or False.")
    if p.get("self_training") and p["fraction"] >= 1:
        raise ParameterError(
            "self_training=True needs unlabelled training images: choose fraction < 1, e.g. 0.1."
        )
    teacher = p.get("teacher")
    if teacher is not None and not p.get("self_training"):
        raise ParameterError(f"teacher={teacher!r} is only used with self_training=True.")
    if (
        teacher is not None
        and not (Path(teacher).expanduser() / "checkpoints" / "best.pt").is_file()
    ):
        raise ParameterError(
            f"teacher={teacher!r} has no checkpoints/best.pt: give the folder of a finished hw1 "
            "run with the same fraction and seed, or None to train the teacher in this run."
        )
    _share("pseudo_share", p.get("pseudo_share", SELF_TRAINING["pseudo_share"]), 0.5)
    threshold = p.get("pseudo_threshold", SELF_TRAINING["pseudo_threshold"])
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0 <= threshold < 1
    ):
        raise ParameterError(f"pseudo_threshold={threshold!r} must lie in [0, 1), e.g. 0.5.")


def resolve_hw1(preset: str = "full", **params: Any) -> Hw1Settings:
    """Fill parameters left at ``None`` from ``preset`` and check every value."""
    _choice("preset", preset, HW1_PRESETS)
    known = _reject_unknown(params, Hw1Settings)
    fraction = params.get("fraction")
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not 0 < fraction <= 1
    ):
        raise ParameterError(
            f"fraction={fraction!r} is outside (0, 1]: 1.0 uses all labelled training images, "
            "0.5 half, 0.1 a tenth."
        )
    merged = dict(HW1_PRESETS[preset])
    merged["tuned_for"], tuning = fraction_tuning(preset, fraction)
    merged.update(tuning)
    merged.update({k: v for k, v in params.items() if v is not None})
    merged["preset"] = preset
    optional = {f.name for f in fields(Hw1Settings) if f.default is not MISSING}
    missing = known - set(merged) - optional
    if missing:
        raise ParameterError(f"parameter(s) {sorted(missing)} must be given.")

    _choice("arch", merged["arch"], ARCH_BLOCKS)
    _choice("device", str(merged["device"]).split(":")[0], DEVICES)
    check_precision(merged.get("precision", "auto"))
    for name in ("epochs", "batch_size", "width"):
        _positive_int(name, merged[name])
    if merged.get("repeats") is not None:
        _positive_int("repeats", merged["repeats"])
    _check_self_training(merged)
    if not isinstance(merged["lr"], (int, float)) or merged["lr"] <= 0:
        raise ParameterError(f"lr={merged['lr']!r} must be a positive number, e.g. 0.1.")
    if not isinstance(merged["seed"], int):
        raise ParameterError(f"seed={merged['seed']!r} must be an integer.")
    if merged["max_train_images"] is not None:
        _positive_int("max_train_images", merged["max_train_images"])
    for name in ("small_crop", "tta_shift"):
        value = merged.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ParameterError(f"{name}={value!r} must be an integer >= 0 (0 turns it off).")
    check_bn_lr_factor(merged.get("bn_lr_factor", 1.0))
    share = merged.get("small_crop_share", 0.0)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise ParameterError(f"small_crop_share={share!r} must lie in [0, 1].")
    pretrain = merged.get("pretrain", "none")
    if not isinstance(pretrain, str) or not pretrain:
        raise ParameterError(
            f"pretrain={pretrain!r} must be 'none', 'restoration', 'contrastive' or the path "
            "of an encoder checkpoint."
        )
    if pretrain not in ("none", *PRETRAIN_METHODS) and not Path(pretrain).expanduser().is_file():
        raise ParameterError(
            f"pretrain={pretrain!r} is neither 'none', 'restoration' nor 'contrastive', and no "
            "encoder checkpoint exists at that path."
        )
    if merged.get("pretrain_epochs") is None:
        merged["pretrain_epochs"] = PRETRAIN_EPOCHS.get(pretrain, PRETRAIN_EPOCHS["restoration"])
    _positive_int("pretrain_epochs", merged["pretrain_epochs"])
    from .restoration import restoration_recipe

    restoration_recipe(merged.get("restoration", "spark"))  # a clear error for an unknown recipe
    if merged.get("layer_decay") is None:
        merged["layer_decay"] = FINETUNE_LAYER_DECAY
    decay = merged["layer_decay"]
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay <= 1:
        raise ParameterError(
            f"layer_decay={decay!r} must lie in (0, 1]; 1 gives every layer the same LR."
        )
    if pretrain == "none":  # the decay shapes the fine-tuning of a pretrained encoder only
        merged["layer_decay"] = 1.0
    if not isinstance(merged.get("match_init_norm", False), bool):
        raise ParameterError(
            f"match_init_norm={merged['match_init_norm']!r} must be True or False."
        )
    return _name_the_run(Hw1Settings(**merged))


DATASETS = ("cifar10", "folder")
# What each data set's combined score sums, and the share of validation normals its
# threshold keeps below it, chosen by the evidence in docs/hw2.md: on the course's frames
# reconstruction, global content (autoencoder features and colour averaged: the fixed
# colour view halves the learned view's variation over seeds) and texture; on natural
# images (one-class CIFAR-10), where reconstruction rebuilds any smooth image, the
# rotation network's signals and global content. The course's test set is 3 % anomalies
# (so false alarms are what to avoid); one-class CIFAR-10's test set is 90 % anomalies,
# so a lower TNR target buys much TPR.
HW2_DEFAULT_SIGNALS = {
    "folder": ("reconstruction", "content", "texture", "local"),
    "cifar10": ("global", "transformation", "features", "mahalanobis"),
}
HW2_DEFAULT_TARGET_TNR = {"folder": 0.98, "cifar10": 0.8}
# Share of the normal training images held out for validation. 69 % of the course's 10,000
# frames are one long scene (one group of near-duplicates, always in training), so 10 %
# held out a different part of the other scenes on each seed, which moved the threshold's
# true-negative rate on unseen scenes by +-3 points; 30 % holds out nearly all of them and
# steadies it (docs/hw2.md). CIFAR-10 has no near-duplicates and few normals.
HW2_DEFAULT_VAL_FRACTION = {"folder": 0.3, "cifar10": 0.1}
# Autoencoders averaged, and each one's epochs: on the course's frames the reconstruction
# signal carries most of the weight and one autoencoder's ability to rebuild unseen frames
# varies with its initialisation (AUROC 0.93-0.98 over seeds). Four of 6 epochs, at the
# cost of three of 8, let the seeds' scores of the test anomalies vary less (standard
# deviation 0.22 against 0.36, docs/hw2.md); four of 5 missed more anomalies. The
# training images' exact copies are left out, which pays for the fourth. On CIFAR-10
# only one autoencoder's features are used.
HW2_DEFAULT_AUTOENCODERS = {"folder": 4, "cifar10": 1}
# Epochs per autoencoder on CIFAR-10; on a folder the budget is in optimiser steps instead
# (data_profile.IMAGE_PASSES: the course's 10,000 frames get 6 epochs, a few hundred images more).
HW2_DEFAULT_EPOCHS = {"cifar10": 8}
# Parameters that may be left out (or None): the data set decides them.
HW2_BY_DATASET = ("epochs", "image_size", "target_tnr", "val_fraction")


@dataclass
class Hw2Settings:
    """Every setting of an hw2 run, checked."""

    dataset: str
    data_dir: str
    download: bool
    normal_class: int | str
    train_dir: str | None
    anomalies_dir: str | None
    test_dir: str | None
    annotation_file: str | None
    image_size: tuple[int, int]
    channels: tuple[int, ...]
    latent: int
    epochs: int | None  # per autoencoder; None: cifar10 8, folder data_profile.epochs_for_budget
    batch_size: int
    lr: float
    patience: int
    seed: int
    device: str
    score: str
    threshold_method: str
    target_tnr: float | None
    val_fraction: float
    figures_dir: str
    results_dir: str
    duplicate_rms: float = 0.025  # near-duplicate images (thumbnail RMS difference) stay together
    error_pooling: str = "median"  # the reconstruction error's pooling in the combined score
    signals: tuple[str, ...] | None = None  # summed into the combined score; None: the data set's
    transformation_epochs: int | None = None  # None: about 48,000 image passes
    transformation_batch_size: int = (
        32  # the rotation network's own batch (see hw2.train_transformation_net)
    )
    autoencoders: int | None = None  # averaged; None: the data set's (HW2_DEFAULT_AUTOENCODERS)
    overwrite: bool = False
    resume: bool = False
    deterministic: bool = False
    run_name: str | None = None
    log_dir: str | None = None
    compile_model: bool = False
    precision: str = "auto"
    grayscale: bool | None = (
        None  # folder: decode images as one channel; None: when the images are grey
    )
    chosen_from_data: tuple[str, ...] = ()  # filled in: what the images decided, and why

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def in_channels(self) -> int:
        return 1 if self.grayscale else 3

    def run_label(self) -> str:
        source = f"cifar10-{self.normal_class}" if self.dataset == "cifar10" else "folder"
        return f"{source}-seed{self.seed}"


def _fill_from_images(p: dict[str, Any]) -> None:
    """``image_size`` and ``grayscale`` left at None: chosen from the training images'
    headers (:mod:`helpers.data.folder_profile`), with the reason in ``chosen_from_data``."""
    from ..data.anomaly_data import image_files, training_folder
    from ..data.folder_profile import survey_folder, working_size

    if p.get("grayscale") is not None and not isinstance(p["grayscale"], bool):
        raise ParameterError(
            f"grayscale={p['grayscale']!r} must be True, False or None (None: from the images)."
        )
    if p.get("image_size") is not None and p.get("grayscale") is not None:
        return
    folder = training_folder(p["data_dir"], p.get("train_dir"))
    survey = survey_folder(image_files(folder))
    notes = [survey.describe()]
    if p.get("image_size") is None:
        p["image_size"] = working_size(survey.median_size, 2 ** len(p["channels"]))
        notes.append(
            f"image_size {p['image_size']}: their median size, shrunk to {MAX_PIXELS:,} pixels "
            f"when larger (aspect ratio kept), each side rounded up to a multiple of "
            f"{2 ** len(p['channels'])}"
        )
    if p.get("grayscale") is None:
        p["grayscale"] = survey.grayscale
        notes.append(
            "grayscale: decoded as one channel" if survey.grayscale else "colour: three channels"
        )
    p["chosen_from_data"] = tuple(notes)


def resolve_hw2(**params: Any) -> Hw2Settings:
    """Check the hw2 parameters; ``image_size=None`` means the data set's natural size."""
    from ..hw2.detector import POOLINGS, SCORES, check_score, check_signals
    from ..hw2.thresholds import THRESHOLD_METHODS

    known = _reject_unknown(params, Hw2Settings)
    p = dict(params)
    optional = {f.name for f in fields(Hw2Settings) if f.default is not MISSING} | set(
        HW2_BY_DATASET
    )
    missing = known - set(p) - optional
    if missing:
        raise ParameterError(f"parameter(s) {sorted(missing)} must be given.")
    _choice("dataset", p["dataset"], DATASETS)
    if p["dataset"] == "cifar10":
        from ..data.anomaly_data import normal_class_index

        normal_class_index(p["normal_class"])
    _choice("device", str(p["device"]).split(":")[0], DEVICES)
    check_precision(p.get("precision", "auto"))
    _choice("threshold_method", p["threshold_method"], THRESHOLD_METHODS)
    _choice("score", p["score"], SCORES)
    _choice("error_pooling", p.get("error_pooling", "median"), POOLINGS)
    if p.get("epochs") is None:
        p["epochs"] = HW2_DEFAULT_EPOCHS.get(
            p["dataset"]
        )  # folder: set from the training split's size
    for name in (
        "batch_size",
        "latent",
        "patience",
        *(("epochs",) if p["epochs"] is not None else ()),
    ):
        _positive_int(name, p[name])
    if p["dataset"] == "cifar10":
        p["image_size"] = p.get("image_size") or (32, 32)
        p["grayscale"] = False
    else:
        _fill_from_images(p)
    size = p["image_size"]
    if isinstance(size, int):
        size = (size, size)
    p["image_size"] = tuple(size)
    factor = 2 ** len(p["channels"])
    if len(p["image_size"]) != 2 or any(
        not isinstance(s, int) or s < factor or s % factor for s in p["image_size"]
    ):
        raise ParameterError(
            f"image_size={size!r} must be (height, width), each a multiple of "
            f"{factor}, e.g. (32, 48)."
        )
    if p["dataset"] == "cifar10" and p["image_size"] != (32, 32):
        raise ParameterError("dataset='cifar10' images are 32x32: leave image_size=None.")
    p["channels"] = tuple(p["channels"])
    if not isinstance(p["lr"], (int, float)) or p["lr"] <= 0:
        raise ParameterError(f"lr={p['lr']!r} must be a positive number, e.g. 0.002.")
    if p.get("target_tnr") is None:
        p["target_tnr"] = HW2_DEFAULT_TARGET_TNR[p["dataset"]]
    if p.get("val_fraction") is None:
        p["val_fraction"] = HW2_DEFAULT_VAL_FRACTION[p["dataset"]]
    _share("target_tnr", p["target_tnr"], 0.99)
    _share("val_fraction", p["val_fraction"], 0.3)
    if isinstance(p["seed"], bool) or not isinstance(p["seed"], int):
        raise ParameterError(f"seed={p['seed']!r} must be an integer.")
    signals = p.get("signals")
    p["signals"] = check_signals(HW2_DEFAULT_SIGNALS[p["dataset"]] if signals is None else signals)
    check_score(p["score"], p["signals"])
    if p.get("transformation_epochs") is not None:
        _positive_int("transformation_epochs", p["transformation_epochs"])
    if "transformation_batch_size" in p:
        _positive_int("transformation_batch_size", p["transformation_batch_size"])
    if p.get("autoencoders") is None:
        p["autoencoders"] = HW2_DEFAULT_AUTOENCODERS[p["dataset"]]
    _positive_int("autoencoders", p["autoencoders"])
    rms = p.get("duplicate_rms", 0.025)
    if isinstance(rms, bool) or not isinstance(rms, (int, float)) or not 0 <= rms < 1:
        raise ParameterError(
            f"duplicate_rms={rms!r} must lie in [0, 1), e.g. 0.025 (0: only identical "
            "images are grouped)."
        )
    return _name_the_run(Hw2Settings(**p))
