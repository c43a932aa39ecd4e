"""Defaults that come from the images: working resolution, colour, training length.

A course's images can be 48x27-pixel video frames or 300x250-pixel photographs of
tiles; one fixed ``image_size`` and epoch count cannot serve both. Before anything is
decoded, :func:`survey_folder` reads the training images' headers (sizes and colour
modes), and the run's defaults are derived from that survey:

* :func:`working_size`: the training images' median size, shrunk (keeping the aspect
  ratio) to ``MAX_PIXELS`` pixels when larger, each side rounded up to a multiple the
  autoencoder needs. Small frames keep their natural size (the course's 48x27 frames
  work at 32x48); large photographs are shrunk until training fits the time budget.
* grayscale: images whose files are all single-channel (or whose colour channels are
  equal) are decoded as one channel, so no model learns three copies of one image.
* :func:`epochs_for_budget`: the training length as a budget of image passes, not
  epochs: each autoencoder sees as many pixels as 270 steps of 128 images of 32x48 (the
  course's 10,000 frames: 6 epochs), however few or large the images are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# The largest working resolution (height x width) chosen by default: 88x88 pixels. A hole or a
# crack a few pixels wide in a 300-pixel photograph must stay at least a pixel wide for the
# defect network (hw2/defects.py) to see it; training time grows with the pixels, and at
# 96x88 the three autoencoders and the defect network train in about 8 minutes on 2 CPU
# cores (the whole notebook: 10.5-11.5 min on the reference CPU). On the tiles of
# docs/hw2.md the defect network saw the 20 known blowholes about as
# well at 128x112 (validation normals against them: AUROC 0.84-0.93 over two runs) as at
# 96x88 (0.85-0.94) at twice the cost.
MAX_PIXELS = 88 * 88
# Each autoencoder's training budget: image passes at 32x48 pixels (270 steps of 128: the
# course's 5,766 distinct training frames get 6 epochs); larger images get fewer passes in
# proportion to their pixels, so training time stays about the same, and a few hundred
# images get many more epochs instead of 6 epochs of 3 steps.
IMAGE_PASSES = 270 * 128
BUDGET_PIXELS = 32 * 48
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F", "P;L"}
COLOUR_SAMPLE = 64  # RGB files decoded to see whether their channels are equal


@dataclass(frozen=True)
class FolderSurvey:
    """What the headers of a folder's images say: how many, their sizes, their colour."""

    count: int
    median_size: tuple[int, int]  # (height, width)
    size_range: tuple[tuple[int, int], tuple[int, int]]  # smallest and largest (height, width)
    grayscale: bool

    def describe(self) -> str:
        (h0, w0), (h1, w1) = self.size_range
        h, w = self.median_size
        colour = "grayscale" if self.grayscale else "colour"
        return (
            f"{self.count:,} {colour} training images, median {h}x{w} pixels "
            f"(height x width; from {h0}x{w0} to {h1}x{w1})"
        )


def _is_grey(path: Path, mode: str) -> bool:
    if mode in GREY_MODES:
        return True
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB").reduce(4) if min(im.size) >= 8 else im.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def survey_folder(paths: list[Path]) -> FolderSurvey:
    """Sizes and colour of the images at ``paths`` (headers only, plus a sample of RGB files)."""
    sizes, modes = [], []
    for path in paths:
        try:
            with Image.open(path) as im:
                sizes.append((im.height, im.width))
                modes.append(im.mode)
        except (UnidentifiedImageError, OSError):
            continue  # the loader skips (and reports) undecodable files
    if not sizes:
        return FolderSurvey(0, (0, 0), ((0, 0), (0, 0)), False)
    hw = np.array(sizes)
    sample = np.linspace(0, len(sizes) - 1, min(COLOUR_SAMPLE, len(sizes))).astype(int)
    grey = all(m in GREY_MODES for m in modes) or all(_is_grey(paths[i], modes[i]) for i in sample)
    median = (int(np.median(hw[:, 0])), int(np.median(hw[:, 1])))
    area = hw[:, 0] * hw[:, 1]
    smallest, largest = ((int(hw[i, 0]), int(hw[i, 1])) for i in (area.argmin(), area.argmax()))
    return FolderSurvey(len(sizes), median, (smallest, largest), grey)


def working_size(
    median_size: tuple[int, int], multiple: int, max_pixels: int = MAX_PIXELS
) -> tuple[int, int]:
    """The median size shrunk to ``max_pixels`` when larger (aspect ratio kept), each side
    then rounded up to a multiple of ``multiple`` (so a small image is never shrunk)."""
    h, w = median_size
    scale = min(1.0, math.sqrt(max_pixels / max(h * w, 1)))
    return (
        max(1, math.ceil(h * scale / multiple)) * multiple,
        max(1, math.ceil(w * scale / multiple)) * multiple,
    )


def epochs_for_budget(
    images: int,
    image_size: tuple[int, int],
    passes: int = IMAGE_PASSES,
    budget_pixels: int = BUDGET_PIXELS,
) -> int:
    """Epochs over ``images`` of ``image_size`` that spend ``passes`` image passes of
    ``budget_pixels`` pixels each (rounded to the nearest epoch, at least one)."""
    pixels = image_size[0] * image_size[1]
    return max(1, round(passes * budget_pixels / (max(images, 1) * pixels)))


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Full batches per epoch (one, smaller, when there are fewer images than a batch), as
    :func:`helpers.core.training.fit` takes them."""
    return max(1, images // batch_size)
