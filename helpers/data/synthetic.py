"""Small generated data sets in the real formats, for tests, benchmarks and demos.

The images are learnable on purpose: each class has its own colour and stripe
pattern under noise, so a short training run shows a falling loss.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .cifar import CIFAR10_CLASSES, CIFAR10_FOLDER


def class_images(labels: np.ndarray, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """uint8 images (N, 3, size, size) whose colour and stripes depend on the label."""
    n = len(labels)
    hues = np.linspace(0, 1, 10, endpoint=False)
    base = np.stack([np.sin(2 * np.pi * (hues + k / 3)) for k in range(3)], 1) * 0.35 + 0.5
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, 3, size, size), dtype=np.float32)
    for i, c in enumerate(labels):
        angle = np.pi * c / 10
        stripes = 0.15 * np.sin(2 * np.pi * (3 + c % 4) * (xx * np.cos(angle) + yy * np.sin(angle)))
        images[i] = base[c][:, None, None] + stripes + rng.normal(0, 0.08, (3, size, size))
    return (np.clip(images, 0, 1) * 255).astype(np.uint8)


def write_cifar10(
    data_dir: str | Path, per_batch: int = 50, batches: int = 2, test: int = 50, seed: int = 0
) -> Path:
    """Write a CIFAR-10 python-batch folder with generated images; returns ``data_dir``."""
    rng = np.random.default_rng(seed)
    folder = Path(data_dir) / CIFAR10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, n: int) -> None:
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        data = class_images(labels, rng).reshape(n, -1)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels.tolist(), "data": data}, f)

    for k in range(1, batches + 1):
        dump(f"data_batch_{k}", per_batch)
    dump("test_batch", test)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR10_CLASSES), "num_vis": 3072}, f)
    return Path(data_dir)


ANOMALY_KINDS = ("blob", "empty", "recolour")


def _crop(rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """A small RGB crop of varying size, like the course's frames of a bowl.

    Normal (``kind=None``): a dim, slowly varying background with a textured patch in the
    middle (the bowl's contents). Anomalies: ``"blob"`` a bright coloured blob somewhere
    (a local defect, the kind in ``anomalies/``); ``"empty"`` the middle without its texture
    (a smooth frame that an autoencoder rebuilds easily); ``"recolour"`` the whole frame's
    colours shifted.
    """
    h, w = int(rng.integers(26, 30)), int(rng.integers(46, 51))
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.array([90, 120, 100]) + rng.normal(0, 6, 3)
    img = base[None, None, :] + 10 * np.sin(xx / 7 + rng.uniform(0, 6))[..., None]
    middle = np.exp(-(((yy - h / 2) / (0.45 * h)) ** 2 + ((xx - w / 2) / (0.45 * w)) ** 2))
    if kind != "empty":
        texture = rng.normal(0, 1, (h // 2 + 1, w // 2 + 1)).repeat(2, 0).repeat(2, 1)[:h, :w]
        img = img + (middle * (25 + 18 * texture))[..., None] * np.array([1.0, 1.0, 0.9])
    img = img + rng.normal(0, 3, (h, w, 3))
    if kind == "blob":
        cy, cx, r = rng.uniform(5, h - 5), rng.uniform(8, w - 8), rng.uniform(4, 8)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
        img = img + blob[..., None] * np.array([150, 120, -60])
    elif kind == "recolour":
        img = img[..., ::-1] * np.array([1.0, 0.9, 1.3])
    elif kind is not None and kind != "empty":
        raise ValueError(f"kind={kind!r}: choose None or one of {ANOMALY_KINDS}")
    return np.clip(img, 0, 255).astype(np.uint8)


def _course_folders(root: str | Path) -> Path:
    """``root`` with the course layout's folders made: train/, anomalies/, test/imgs/."""
    root = Path(root)
    for sub in ("train", "anomalies", "test/imgs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def write_anomaly_folder(
    root: str | Path,
    train: int = 120,
    test_normal: int = 40,
    test_anomalies: int = 8,
    known: int = 8,
    seed: int = 0,
    kinds: tuple[str, ...] = ("blob",),
) -> Path:
    """Write the course layout (train/, anomalies/, test/imgs/, test/test_annotation.txt).

    Known anomalies are always of the ``"blob"`` kind; the test anomalies cycle through
    ``kinds`` (see :func:`_crop`), and ``<root>/test/kinds.txt`` names each test image's kind.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = _course_folders(root)
    for i in range(train):
        Image.fromarray(_crop(rng)).save(root / "train" / f"n{i:04d}.jpg", quality=95)
    for i in range(known):
        Image.fromarray(_crop(rng, "blob")).save(root / "anomalies" / f"a{i:04d}.jpg", quality=95)
    test_kinds = ["normal"] * test_normal + [kinds[i % len(kinds)] for i in range(test_anomalies)]
    rng.shuffle(test_kinds)
    lines, kind_lines = [], []
    for i, kind in enumerate(test_kinds):
        name = f"t{i:04d}.jpg"
        Image.fromarray(_crop(rng, None if kind == "normal" else kind)).save(
            root / "test" / "imgs" / name, quality=95
        )
        lines.append(f"{name} {int(kind != 'normal')}")
        kind_lines.append(f"{name} {kind}")
    (root / "test" / "test_annotation.txt").write_text("\n".join(lines) + "\n")
    (root / "test" / "kinds.txt").write_text("\n".join(kind_lines) + "\n")
    return root


TILE_KINDS = ("hole", "crack")


def _tile(rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """A grey image of a ground surface, larger than the course's frames and of varying size.

    Normal (``kind=None``): vertical grinding streaks over a slow brightness gradient,
    with fine noise. Anomalies are a few pixels wide: ``"hole"`` a small dark pit,
    ``"crack"`` a thin dark line across the streaks.
    """
    h, w = int(rng.integers(100, 121)), int(rng.integers(80, 101))
    yy, xx = np.mgrid[0:h, 0:w]
    streaks = np.convolve(rng.normal(0, 14, w + 4), np.ones(5) / 5, mode="valid")
    img = 115 + rng.normal(0, 8) + 0.2 * (yy - h / 2) + streaks[None, :] + rng.normal(0, 4, (h, w))
    if kind == "hole":
        cy, cx, r = rng.uniform(12, h - 12), rng.uniform(12, w - 12), rng.uniform(3, 4.5)
        img = img - 80 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (r / 2) ** 2))
    elif kind == "crack":
        cy, cx, half = rng.uniform(15, h - 15), rng.uniform(20, w - 20), rng.uniform(10, 16)
        line = (np.abs(yy - cy - 0.3 * (xx - cx)) < 1.5) & (np.abs(xx - cx) < half)
        img = img - 70 * line
    elif kind is not None:
        raise ValueError(f"kind={kind!r}: choose None or one of {TILE_KINDS}")
    return np.clip(img, 0, 255).astype(np.uint8)


def write_tile_folder(
    root: str | Path,
    train: int = 120,
    test_normal: int = 30,
    test_anomalies: int = 30,
    known: int = 8,
    seed: int = 0,
    indistinguishable: bool = False,
) -> Path:
    """The course layout with grey tiles (:func:`_tile`): local defects a few pixels wide on a
    textured surface; known anomalies are holes, test anomalies holes and cracks. With
    ``indistinguishable`` every "anomaly" is drawn like a normal tile (a detector cannot
    separate them)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = _course_folders(root)

    def save(kind: str | None, path: Path) -> None:
        Image.fromarray(_tile(rng, None if indistinguishable else kind), mode="L").save(path)

    for i in range(train):
        save(None, root / "train" / f"n{i:04d}.png")
    for i in range(known):
        save("hole", root / "anomalies" / f"a{i:04d}.png")
    labels = [0] * test_normal + [1] * test_anomalies
    rng.shuffle(labels)
    for i, label in enumerate(labels):
        save(TILE_KINDS[i % 2] if label else None, root / "test" / "imgs" / f"t{i:04d}.png")
    (root / "test" / "test_annotation.txt").write_text(
        "".join(f"t{i:04d}.png {label}\n" for i, label in enumerate(labels))
    )
    return root
