"""Defaults that come from the images: working size, grayscale, training length."""

import numpy as np
import pytest
from PIL import Image

from helpers.data.anomaly_data import image_files
from helpers.data.folder_profile import (
    IMAGE_PASSES,
    MAX_PIXELS,
    epochs_for_budget,
    steps_per_epoch,
    survey_folder,
    working_size,
)


@pytest.mark.parametrize(
    "median, expected",
    [
        (
            (27, 48),
            (32, 48),
        ),  # the course's frames: natural size, each side rounded up to a multiple of 16
        ((300, 300), (96, 96)),  # large square photographs: shrunk to 88x88, rounded up
        (
            (400, 100),
            (176, 48),
        ),  # a tall strip keeps its 4:1 shape (176x44, rounded to multiples)
        ((10, 10), (16, 16)),  # never below one multiple
    ],
)
def test_working_size_keeps_small_images_and_shrinks_large_ones_keeping_their_shape(
    median, expected
):
    size = working_size(median, multiple=16)
    assert size == expected
    assert all(side % 16 == 0 for side in size)


def test_working_size_stays_within_the_pixel_budget_for_any_shape():
    for h, w in [(1000, 50), (50, 1000), (333, 777), (2000, 1500)]:
        sh, sw = working_size((h, w), multiple=8)
        assert (sh - 8) * (sw - 8) < MAX_PIXELS <= sh * sw  # rounding up adds less than a multiple
        assert (sh > sw) == (h > w)


def test_training_length_is_a_budget_of_image_passes_not_of_epochs():
    assert epochs_for_budget(5766, (32, 48)) == 6  # the course's distinct training frames
    assert epochs_for_budget(5600, (32, 48)) == epochs_for_budget(5900, (32, 48)) == 6
    assert epochs_for_budget(466, (32, 48)) == 74  # a few hundred images: many more epochs
    few_large = epochs_for_budget(
        466, (56, 48)
    )  # larger images: fewer, in proportion to the pixels
    assert few_large == 42 and few_large * 466 * 56 * 48 == pytest.approx(
        IMAGE_PASSES * 32 * 48, rel=0.02
    )
    assert epochs_for_budget(10**7, (64, 64)) == 1  # never zero
    assert (
        steps_per_epoch(5766, 128) == 45 and steps_per_epoch(20, 128) == 1
    )  # full batches, as fit() takes


def _write(folder, arrays, mode):
    folder.mkdir()
    for i, a in enumerate(arrays):
        Image.fromarray(a, mode=mode).save(folder / f"{i}.png")
    return image_files(folder)


def test_survey_reads_sizes_and_tells_grey_from_colour(tmp_path):
    rng = np.random.default_rng(0)
    sizes = [(20, 30), (22, 34), (40, 60)]
    grey = _write(tmp_path / "grey", [rng.integers(0, 255, s, dtype=np.uint8) for s in sizes], "L")
    survey = survey_folder(grey)
    assert survey.count == 3 and survey.grayscale
    assert survey.median_size == (22, 34)
    assert survey.size_range == ((20, 30), (40, 60))
    # RGB files whose three channels are equal are grey too; one coloured pixel is not
    flat = [np.repeat(rng.integers(0, 255, (16, 16, 1), dtype=np.uint8), 3, 2) for _ in range(3)]
    assert survey_folder(_write(tmp_path / "rgb_grey", flat, "RGB")).grayscale
    flat[1][5, 5] = (200, 10, 10)
    assert not survey_folder(_write(tmp_path / "colour", flat, "RGB")).grayscale
    assert "3 grayscale training images, median 22x34" in survey.describe()
