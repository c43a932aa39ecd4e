"""CIFAR-10 from the standard python batches, straight into uint8 tensors.

The loader reads ``<data_dir>/cifar-10-batches-py/`` (``data_batch_1`` ... and
``test_batch``). A smaller copy in the same format (fewer images per batch, fewer
training batches) is accepted. Nothing is decoded per image: each batch is one
``(N, 3072)`` uint8 array reshaped to ``(N, 3, 32, 32)``.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import torch

from ..core.errors import DataError, ParameterError
from ..core.images import ImageSet

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> (uint8 images N x 3 x 32 x 32, int64 labels)."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
    except (
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        ImportError,
        IndexError,
    ) as exc:
        raise DataError(
            f"CIFAR batch file {path} is corrupt or not a CIFAR-10 python batch "
            f"({type(exc).__name__}: {exc}). Delete the folder {path.parent} and download "
            "again (download=True), or copy an intact cifar-10-batches-py folder there."
        ) from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"CIFAR batch file {path} holds data of shape {data.shape}; expected "
            "(N, 3072) rows of 32x32 RGB pixels. Replace the file with an intact copy."
        )
    if len(data) != len(labels):
        raise DataError(
            f"CIFAR batch file {path} has {len(data)} images but {len(labels)} labels; "
            "the file is damaged. Replace it with an intact copy."
        )
    return data.reshape(-1, 3, 32, 32), labels


def _class_names(folder: Path) -> tuple[str, ...]:
    meta = folder / "batches.meta"
    if not meta.exists():
        return CIFAR10_CLASSES
    try:
        with open(meta, "rb") as f:
            names = pickle.load(f, encoding="latin1")["label_names"]
        return tuple(str(n) for n in names)
    except Exception:  # a damaged meta file only costs us the names
        return CIFAR10_CLASSES


def download_cifar10(data_dir: str | Path) -> Path:
    """Fetch and unpack the official archive into ``data_dir`` (md5-checked)."""
    from torchvision.datasets.utils import download_and_extract_archive

    data_dir = Path(data_dir)
    try:
        download_and_extract_archive(
            CIFAR10_URL, download_root=str(data_dir), filename=CIFAR10_ARCHIVE, md5=CIFAR10_MD5
        )
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise DataError(
            f"Could not download CIFAR-10 from {CIFAR10_URL} ({type(exc).__name__}: {exc}). "
            f"Without a network, download {CIFAR10_ARCHIVE} elsewhere and put it in "
            f"{data_dir.resolve()} (it is unpacked for you), or unpack it yourself so that "
            f"{(data_dir / CIFAR10_FOLDER).resolve()} holds data_batch_1..5 and test_batch."
        ) from None
    return data_dir / CIFAR10_FOLDER


def find_cifar10(data_dir: str | Path, download: bool = False) -> Path:
    """Return the ``cifar-10-batches-py`` folder, downloading it if asked and missing."""
    data_dir = Path(data_dir).expanduser()
    folder = data_dir / CIFAR10_FOLDER
    if data_dir.name == CIFAR10_FOLDER and (data_dir / "test_batch").exists():
        folder = data_dir  # the user pointed at the batches folder itself
    if (folder / "test_batch").exists():
        return folder
    archive = data_dir / CIFAR10_ARCHIVE
    if archive.exists() or download:
        return download_cifar10(data_dir)  # verifies and unpacks an archive already there
    if folder.is_dir() and any(folder.glob("data_batch_*")):
        raise DataError(
            f"{folder.resolve()} has training batches but no test_batch: the copy is incomplete. "
            "Copy test_batch there, or delete the folder and set download=True to fetch CIFAR-10 "
            "again."
        )
    raise DataError(
        f"CIFAR-10 not found: expected {folder.resolve()}/ with data_batch_* and test_batch. "
        f"Set download=True to fetch it (needs internet), or place {CIFAR10_ARCHIVE} "
        f"(from {CIFAR10_URL}) in {data_dir.resolve()}, or point data_dir at the folder "
        f"that contains {CIFAR10_FOLDER}/."
    )


def load_cifar10(data_dir: str | Path, download: bool = False) -> tuple[ImageSet, ImageSet]:
    """Load the CIFAR-10 training and test sets as in-memory uint8 tensors.

    Accepts any number of ``data_batch_<k>`` files of any size, so a smaller copy
    in the same format works like the full data set.
    """
    train = load_cifar10_training(data_dir, download)
    folder = find_cifar10(data_dir, download=False)
    return train, _labelled_set(folder, [folder / "test_batch"], "test", train.classes)


def load_cifar10_training(data_dir: str | Path, download: bool = False) -> ImageSet:
    """The CIFAR-10 training images only: the test batch is never opened, so choices made
    on them (the recipe search) cannot read the test labels."""
    folder = find_cifar10(data_dir, download)
    train_files = sorted(
        (p for p in folder.iterdir() if re.fullmatch(r"data_batch_\d+", p.name)),
        key=lambda p: int(p.name.rsplit("_", 1)[1]),
    )
    if not train_files:
        raise DataError(
            f"{folder} has test_batch but no data_batch_* training files. "
            "Copy the complete cifar-10-batches-py folder, or download again (download=True)."
        )
    return _labelled_set(folder, train_files, "training", _class_names(folder))


def _labelled_set(folder: Path, files: list[Path], name: str, classes: tuple[str, ...]) -> ImageSet:
    """The batches in ``files`` as one set, after checking their labels are CIFAR-10's."""
    parts = [_read_batch(p) for p in files]
    x = np.concatenate([x for x, _ in parts])
    y = np.concatenate([y for _, y in parts])
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise DataError(
            f"CIFAR {name} labels range over {y.min()}..{y.max()} but there are "
            f"{len(classes)} classes; the files in {folder} are not CIFAR-10."
        )
    return ImageSet(torch.from_numpy(x), torch.from_numpy(y), classes)


def stratified_indices(labels: np.ndarray | torch.Tensor, fraction: float, seed: int) -> np.ndarray:
    """Seeded, class-stratified choice of ``fraction`` of the indices (sorted).

    Each class keeps ``round(fraction * n_class)`` of its images, at least one, so the
    same fraction and seed always give the same images.
    """
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ParameterError(
            f"fraction={fraction!r} is outside (0, 1]: use e.g. 1.0 for all labelled "
            "images, 0.5 for half, 0.1 for a tenth."
        )
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = int(round(fraction * len(members)))
        if k < 1:
            raise ParameterError(
                f"fraction={fraction} leaves class {c} with no image (it has "
                f"{len(members)}); use a fraction of at least {1 / len(members):.4f}."
            )
        chosen.append(rng.permutation(members)[:k])
    return np.sort(np.concatenate(chosen))


def split_train_val(data: ImageSet, val_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Hold a stratified, seeded validation split out of the training images."""
    if not 0 < val_fraction < 1:
        raise ParameterError(f"val_fraction={val_fraction!r} must lie in (0, 1), e.g. 0.1.")
    val_idx = stratified_indices(data.labels, val_fraction, seed + 10_007)
    mask = np.ones(len(data), dtype=bool)
    mask[val_idx] = False
    return data.subset(np.flatnonzero(mask)), data.subset(val_idx)
