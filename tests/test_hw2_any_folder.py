"""hw2 on any course's images: the defaults adapt to the data, and say when they cannot work."""

from pathlib import Path

import pytest
import torch

from conftest import hw2_settings
from helpers import hw2
from helpers.core.errors import DataError, ParameterError
from helpers.data.synthetic import write_tile_folder

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tile_dir(tmp_path_factory):
    """Grey 100-120 x 80-100 pixel tiles with holes and cracks a few pixels wide."""
    return write_tile_folder(tmp_path_factory.mktemp("tiles"))


def folder_settings(data_dir, tmp_path, **change):
    """Notebook defaults for what the data decides, a small autoencoder trained briefly."""
    return hw2_settings(
        data_dir,
        tmp_path,
        **{"epochs": 3, "patience": 5, "target_tnr": None, "val_fraction": None, **change},
    )


def run(s):
    data = hw2.load_data(s)
    parts = hw2.split(s, data)
    models = hw2.build_models(s)
    hw2.train(s, models, parts, CPU, Path(s.results_dir))
    defect_net, _ = hw2.train_defect_net(s, parts, CPU, Path(s.results_dir))
    return data, hw2.score_and_threshold(s, models, data, parts, CPU, None, defect_net)


def test_small_frames_and_large_grey_tiles_get_their_own_resolution_and_colour(
    anomaly_dir, tile_dir, tmp_path
):
    frames = folder_settings(anomaly_dir, tmp_path)
    tiles = folder_settings(tile_dir, tmp_path)
    assert frames.image_size == (
        32,
        56,
    )  # 26-30 x 46-50 pixel frames: their natural size, rounded up
    assert not frames.grayscale and frames.in_channels() == 3
    assert tiles.image_size == (104, 80)  # 100-120 x 80-100 pixels: shrunk, aspect ratio kept
    assert tiles.grayscale and tiles.in_channels() == 1
    assert any("grayscale" in line for line in tiles.chosen_from_data)
    assert any("image_size (104, 80)" in line for line in tiles.chosen_from_data)
    # the defect network is a candidate for the tiles only (32x56 frames are too small)
    assert "defects" in tiles.signals and "defects" not in frames.signals
    assert any("signals without defects" in line for line in frames.chosen_from_data)
    assert "defects" in folder_settings(anomaly_dir, tmp_path, signals=["defects"]).signals
    # what the user gives is kept
    assert folder_settings(tile_dir, tmp_path, image_size=[64, 64], grayscale=False).image_size == (
        64,
        64,
    )


def test_defects_a_few_pixels_wide_are_detected_at_the_chosen_resolution(tile_dir, tmp_path):
    # (the small frames' whole-frame anomalies:
    # test_hw2.test_autoencoder_trained_on_normals_flags_anomalies)
    s = folder_settings(tile_dir, tmp_path / "tiles", epochs=1)
    data, result = run(s)
    assert data.train.images.shape[1:] == (1, 104, 80)
    assert result.report["auroc"] > 0.9  # holes and cracks a few pixels wide on a streaked surface
    kept = [r["signal"] for r in result.report["signal_choice"] if r["kept"]]
    assert "local" in kept  # the known holes chose the signal that sees them
    assert result.report["warning"] is None
    maps = hw2.anomaly_maps(result, data.test.images[:4], CPU)
    assert list(maps) == ["reconstruction error", "local deviation", "defect map"]
    assert {tuple(m.shape) for m in maps.values()} == {(4, 104, 80)}
    images, titles = hw2.mistakes(result, data, s)
    shown = {"local": "loc ", "defects": "def ", "reconstruction": "rec ", "texture": "tex "}
    assert len(images) == len(titles)
    assert all((shown[x] in t) == (x in kept) for t in titles for x in shown)  # the kept ones


def test_anomalies_indistinguishable_from_normals_are_reported_as_such(tmp_path):
    root = write_tile_folder(
        tmp_path / "same",
        train=60,
        test_normal=10,
        test_anomalies=10,
        known=10,
        indistinguishable=True,
    )
    s = folder_settings(root, tmp_path, epochs=1)
    _, result = run(s)
    assert result.report["warning"].startswith("WARNING: the detector cannot reliably separate")
    assert "WARNING" in hw2.describe(result.report)


def test_the_training_folder_is_checked_with_the_parameters(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        folder_settings(tmp_path / "nowhere", tmp_path)
    with pytest.raises(ParameterError, match="grayscale='yes' must be True, False or None"):
        folder_settings(tmp_path, tmp_path, grayscale="yes")
