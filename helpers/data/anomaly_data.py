"""The anomaly task's course layout, decoded once into uint8 tensors.

    <data_dir>/train/                    normal images only
    <data_dir>/anomalies/                optional: known anomalous images
    <data_dir>/test/imgs/                test images
    <data_dir>/test/test_annotation.txt  lines "<file name> <0|1>", 1 = anomaly

Images of different sizes are resized to one ``image_size`` (height, width) when they
are decoded (``data_profile`` chooses it from the images); grayscale images are decoded
as one channel. Training never touches PIL again.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..core.errors import DataError, ParameterError
from ..core.images import ImageSet
from .cifar import CIFAR10_CLASSES
from .near_duplicates import pixel_digest

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
ANOMALY_CLASSES = ("normal", "anomaly")
LAYOUT = (
    "expected <data_dir>/train/ (normal images), optional <data_dir>/anomalies/, "
    "<data_dir>/test/imgs/ and <data_dir>/test/test_annotation.txt"
)


@dataclass
class AnomalyData:
    """Normal training images, optional known anomalies, and the labelled test set."""

    train: ImageSet
    test: ImageSet
    anomalies: ImageSet | None = None
    test_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the loader skipped or noticed
    test_in_train: np.ndarray | None = None  # per test image: pixel-identical to a training image


def decode_image(path: Path, image_size: tuple[int, int], grayscale: bool = False) -> np.ndarray:
    """One image file -> uint8 array (C, H, W) at ``image_size``, C = 1 with ``grayscale``
    else 3; raises on a bad file."""
    with Image.open(path) as im:
        im = im.convert("L" if grayscale else "RGB").resize(
            (image_size[1], image_size[0]), Image.Resampling.BILINEAR
        )
        arr = np.asarray(im, dtype=np.uint8)
        return arr[None].copy() if grayscale else arr.transpose(2, 0, 1).copy()


def image_files(folder: Path) -> list[Path]:
    """The image files in ``folder`` (by suffix), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _require_folder(path: Path, what: str, parameter: str) -> None:
    if not path.is_dir():
        raise DataError(
            f"{what} folder {path} does not exist: {LAYOUT}. "
            f"Fix data_dir, or set {parameter} to where the folder is."
        )


def _decode_folder(
    folder: Path, image_size, skip_bad: bool, grayscale: bool = False
) -> tuple[np.ndarray, list[str], list[str]]:
    images, names, skipped = [], [], []
    for path in image_files(folder):
        try:
            images.append(decode_image(path, image_size, grayscale))
            names.append(path.name)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            if not skip_bad:
                raise DataError(
                    f"image {path} cannot be decoded ({exc}); replace or remove it."
                ) from None
            skipped.append(path.name)
    stack = (
        np.stack(images) if images else np.zeros((0, 1 if grayscale else 3, *image_size), np.uint8)
    )
    return stack, names, skipped


def training_folder(data_dir: str | Path, train_dir: str | Path | None = None) -> Path:
    """``train_dir``, or ``<data_dir>/train``; an error naming the fix when it is missing."""
    root = Path(data_dir).expanduser()
    if not train_dir and not root.is_dir():
        raise DataError(f"data_dir {root} does not exist: {LAYOUT}.")
    path = Path(train_dir).expanduser() if train_dir else root / "train"
    _require_folder(path, "training", "train_dir")
    return path


def read_annotation(path: Path, image_dir: Path) -> list[tuple[str, int]]:
    """Parse ``<file name> <0|1>`` lines; every problem names the file and the line."""
    if not path.is_file():
        raise DataError(
            f"annotation file {path} does not exist: {LAYOUT}. "
            "Fix data_dir, or set annotation_file to the file's path."
        )
    entries: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}, line {number}"
        if len(parts) != 2:
            raise DataError(f"{where}: expected '<file name> <0|1>', found {line!r}.")
        name, label = parts
        if label not in ("0", "1"):
            raise DataError(
                f"{where}: label {label!r} for {name} must be 0 (normal) or 1 (anomaly)."
            )
        if name in seen:
            raise DataError(
                f"{where}: {name} is listed twice (first on line {seen[name]}); "
                "keep one line per image."
            )
        if not (image_dir / name).is_file():
            raise DataError(
                f"{where}: {name} is not in {image_dir}; fix the name or add the image."
            )
        seen[name] = number
        entries.append((name, int(label)))
    if not entries:
        raise DataError(f"annotation file {path} lists no images.")
    labels = {label for _, label in entries}
    if len(labels) < 2:
        missing = "no anomalous image (label 1)" if 0 in labels else "no normal image (label 0)"
        raise DataError(
            f"annotation file {path} lists {len(entries)} test images but {missing}: TPR, TNR and "
            "AUROC need both kinds; label each image 0 (normal) or 1 (anomaly), or add images "
            "of the missing kind."
        )
    return entries


def load_anomaly_folder(
    data_dir: str | Path,
    image_size: tuple[int, int] = (32, 48),
    train_dir: str | Path | None = None,
    anomalies_dir: str | Path | None = None,
    test_dir: str | Path | None = None,
    annotation_file: str | Path | None = None,
    grayscale: bool = False,
) -> AnomalyData:
    """Decode the course layout under ``data_dir`` (each folder can be overridden).

    An undecodable *training* image is skipped with a warning and counted in
    ``notes``; an undecodable *test* image is an error, so the test set is never
    silently smaller than its annotation file. With ``grayscale`` every image is
    decoded as one channel.
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir() and not all((train_dir, test_dir, annotation_file)):
        raise DataError(f"data_dir {root} does not exist: {LAYOUT}.")
    train_path = training_folder(root, train_dir)
    test_path = Path(test_dir) if test_dir else root / "test" / "imgs"
    annotation = Path(annotation_file) if annotation_file else root / "test" / "test_annotation.txt"
    anomalies_path = Path(anomalies_dir) if anomalies_dir else root / "anomalies"
    _require_folder(test_path, "test image", "test_dir")
    if anomalies_dir and not anomalies_path.is_dir():
        _require_folder(anomalies_path, "anomalies", "anomalies_dir")

    notes: list[str] = []
    train_x = _training_images(train_path, image_size, grayscale, notes)
    entries = read_annotation(annotation, test_path)
    test_x = _test_images(test_path, [name for name, _ in entries], image_size, grayscale)
    test_y = np.array([label for _, label in entries], dtype=np.int64)
    anomalies = _known_anomalies(anomalies_path, image_size, grayscale, notes)

    train_digests = {pixel_digest(x) for x in train_x}
    in_train = np.array([pixel_digest(x) in train_digests for x in test_x], dtype=bool)
    if in_train.any():
        notes.append(f"{int(in_train.sum())} test image(s) are pixel-identical to training images")
    if anomalies is not None:
        anomalies = _without_test_images(anomalies, test_x, notes)

    train = ImageSet(
        torch.from_numpy(train_x), torch.zeros(len(train_x), dtype=torch.long), ANOMALY_CLASSES
    )
    test = ImageSet(torch.from_numpy(test_x), torch.from_numpy(test_y), ANOMALY_CLASSES)
    return AnomalyData(train, test, anomalies, [name for name, _ in entries], notes, in_train)


def _training_images(
    folder: Path, image_size: tuple[int, int], grayscale: bool, notes: list[str]
) -> np.ndarray:
    """The normal training images; an undecodable one is skipped with a warning and a note."""
    images, _, skipped = _decode_folder(folder, image_size, skip_bad=True, grayscale=grayscale)
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} training image(s) that cannot be decoded: "
            f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}",
            stacklevel=3,
        )
        notes.append(f"skipped {len(skipped)} undecodable training image(s)")
    if len(images) == 0:
        raise DataError(
            f"training folder {folder} holds no decodable images "
            f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))})."
        )
    return images


def _test_images(
    folder: Path, names: list[str], image_size: tuple[int, int], grayscale: bool
) -> np.ndarray:
    """The annotated test images, in the annotation file's order; a bad one is an error."""
    images = np.empty((len(names), 1 if grayscale else 3, *image_size), np.uint8)
    for i, name in enumerate(names):
        try:
            images[i] = decode_image(folder / name, image_size, grayscale)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(
                f"test image {folder / name} cannot be decoded ({exc}); "
                "replace it, or remove its line from the annotation file."
            ) from None
    return images


def _known_anomalies(
    folder: Path, image_size: tuple[int, int], grayscale: bool, notes: list[str]
) -> ImageSet | None:
    """The known anomalous images of ``folder`` (optional), or None when there are none."""
    if not folder.is_dir():
        return None
    images, _, bad = _decode_folder(folder, image_size, skip_bad=True, grayscale=grayscale)
    if bad:
        notes.append(f"skipped {len(bad)} undecodable known-anomaly image(s)")
    if not len(images):
        return None
    return ImageSet(
        torch.from_numpy(images), torch.ones(len(images), dtype=torch.long), ANOMALY_CLASSES
    )


def _without_test_images(
    anomalies: ImageSet, test_images: np.ndarray, notes: list[str]
) -> ImageSet | None:
    """The known anomalies less those pixel-identical to a test image, so that thresholds
    never see a test image (None when none is left)."""
    test_digests = {pixel_digest(x) for x in test_images}
    unseen = [
        i for i, x in enumerate(anomalies.images) if pixel_digest(x.numpy()) not in test_digests
    ]
    if len(unseen) == len(anomalies):
        return anomalies
    notes.append(
        f"dropped {len(anomalies) - len(unseen)} known anomalies that are "
        "pixel-identical to test images, so thresholds never see a test image"
    )
    return anomalies.subset(unseen) if unseen else None


def normal_class_index(normal_class: int | str, classes: Sequence[str] = CIFAR10_CLASSES) -> int:
    """The index of ``normal_class`` (a class index or name), or an error naming the choices."""
    last = len(classes) - 1
    if isinstance(normal_class, str):
        if normal_class not in classes:
            raise ParameterError(
                f"normal_class={normal_class!r} is not a CIFAR-10 class; "
                f"choose one of {', '.join(classes)} (or its index 0-{last})."
            )
        return list(classes).index(normal_class)
    if (
        isinstance(normal_class, bool)
        or not isinstance(normal_class, int)
        or not 0 <= normal_class <= last
    ):
        raise ParameterError(
            f"normal_class={normal_class!r} must be a CIFAR-10 class index (an integer "
            f"0-{last}) or name, e.g. 3 or {classes[3]!r}."
        )
    return normal_class


def one_class_cifar10(train: ImageSet, test: ImageSet, normal_class: int | str) -> AnomalyData:
    """The standard one-class protocol: one CIFAR-10 class is normal, the rest anomalies."""
    classes = list(train.classes)
    normal_class = normal_class_index(normal_class, classes)
    keep = (train.labels == normal_class).nonzero().flatten()
    normal_train = ImageSet(
        train.images[keep], torch.zeros(len(keep), dtype=torch.long), ANOMALY_CLASSES
    )
    test_y = (test.labels != normal_class).long()
    return AnomalyData(
        normal_train,
        ImageSet(test.images, test_y, ANOMALY_CLASSES),
        notes=[f"normal class: {classes[normal_class]}"],
    )
