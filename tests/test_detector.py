"""The detector's signals, their common scale, and what the global, colour and texture signals
add."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from conftest import CPU
from conftest import hw2_settings as settings
from helpers import hw2
from helpers.core.errors import ParameterError
from helpers.data.synthetic import write_anomaly_folder
from helpers.hw2 import steps as steps2
from helpers.hw2.detector import Detector, Standardizer
from helpers.hw2.signals import colour_features, global_features, pool_errors, texture_features
from helpers.hw2.thresholds import quantile_threshold


def test_median_pooling_ignores_a_defect_on_a_small_part_of_the_image():
    maps = torch.full((2, 10, 10), 0.01)
    maps[1, :3, :3] = 1.0  # an unfamiliar object in a corner: 9 % of the pixels
    assert pool_errors(maps, "median")[1] == pytest.approx(0.01)
    assert pool_errors(maps, "mean")[1] == pytest.approx(0.01 * 0.91 + 0.09)
    maps[1] = 0.5  # the whole image changed
    assert pool_errors(maps, "median")[1] == pytest.approx(0.5)
    with pytest.raises(ParameterError, match="median, mean"):
        pool_errors(maps, "max")


def test_standardizer_puts_validation_normals_at_zero_with_unit_spread():
    normal = np.exp(np.random.default_rng(0).normal(2.0, 0.5, 1000))
    z = Standardizer.fit(normal)(normal)
    assert abs(np.median(z)) < 1e-9 and z.std() == pytest.approx(1.0)
    logs = np.log(normal)  # three spreads above the typical normal reads as 3
    assert Standardizer.fit(normal)(np.exp([np.median(logs) + 3 * logs.std()]))[0] == pytest.approx(
        3
    )


def test_global_features_are_channel_quantiles_of_the_first_stage():
    from helpers.hw2.autoencoder import ConvAutoencoder

    model = ConvAutoencoder((4, 8, 16), latent=4)
    feats = global_features(model, torch.randint(0, 256, (5, 3, 16, 24), dtype=torch.uint8), CPU)
    assert feats.shape == (5, 3 * 4)
    q25, q50, q75 = feats[:, :4], feats[:, 4:8], feats[:, 8:]
    assert (q25 <= q50).all() and (q50 <= q75).all()


def test_texture_features_measure_local_contrast_and_ignore_the_frame_border():
    flat = torch.full(
        (1, 3, 12, 16), 200, dtype=torch.uint8
    )  # bright and uniform: no contrast anywhere
    assert np.allclose(
        texture_features(flat, CPU), 0.0, atol=1e-3
    )  # zero padding would see edges at the border
    rng = np.random.default_rng(0)
    grain = torch.from_numpy(rng.integers(0, 256, (2, 3, 12, 16), dtype=np.uint8))
    stripes = flat.clone()
    stripes[..., ::2] = 0  # every window of 3 columns holds 0 and 200: known contrast
    feats = texture_features(torch.cat([flat, grain, stripes]), CPU)
    assert feats.shape == (4, 3) and (np.diff(feats, axis=1) >= -1e-6).all()  # 25 <= 50 <= 75 %
    assert (feats[1:3] > 0.05).all()
    assert np.allclose(
        feats[3], np.std([0, 200 / 255, 0]), atol=1e-3
    )  # every window: columns 0, 200, 0 or 200, 0, 200


def test_colour_features_are_each_channels_quantiles():
    image = torch.zeros((1, 3, 10, 10), dtype=torch.uint8)
    image[0, 0] = 255  # red everywhere
    image[0, 1, :6] = 255  # green in the top 60 % of the rows
    feats = colour_features(image, CPU)
    assert feats.shape == (1, 9)
    q25, q50, q75 = feats[0, :3], feats[0, 3:6], feats[0, 6:]  # each of red, green, blue
    assert (
        np.allclose(q25, [1, 0, 0]) and np.allclose(q50, [1, 1, 0]) and np.allclose(q75, [1, 1, 0])
    )


@pytest.fixture(scope="module")
def two_kinds(tmp_path_factory):
    """Course layout whose test anomalies are local blobs and whole-image changes (empty
    and recoloured frames); known anomalies are blobs only."""
    return write_anomaly_folder(
        tmp_path_factory.mktemp("kinds"),
        train=240,
        test_normal=60,
        test_anomalies=30,
        kinds=("blob", "empty", "recolour"),
        seed=3,
    )


def test_the_combined_score_catches_whole_image_anomalies_that_reconstruction_misses(
    two_kinds, tmp_path
):
    s = settings(two_kinds, tmp_path, epochs=12, patience=12, val_fraction=0.15)
    data = hw2.load_data(s)
    parts = hw2.split(s, data)
    model = steps2.build_model(s)
    hw2.train(s, [model], parts, CPU, tmp_path / "run")
    kinds = np.array(
        [line.split()[1] for line in (two_kinds / "test" / "kinds.txt").read_text().splitlines()]
    )

    def auroc(scores, kind):
        keep = (kinds == "normal") | (kinds == kind)
        return roc_auc_score(kinds[keep] == kind, scores[keep])

    # the classic reconstruction error sees the local defect but not the empty frame,
    # which is rebuilt better than any normal one
    detector = Detector(model, CPU, "mean").fit(parts.train.images, parts.val.images)
    val, test = detector.scores(parts.val.images), detector.scores(data.test.images)
    assert auroc(test["reconstruction_mean"], "blob") > 0.95
    assert auroc(test["reconstruction_mean"], "empty") < 0.3
    assert auroc(test["global"], "empty") > 0.9  # the global signal sees it
    assert auroc(test["texture"], "empty") > 0.9  # and so does texture: the empty frame is smoother
    assert (
        auroc(test["colour"], "recolour") > 0.9
    )  # colour sees the recoloured frame without any training
    assert np.allclose(
        test["content"], (test["global"] + test["colour"]) / 2
    )  # two views, one vote

    def flagged(score, kind):  # at a label-free threshold: 95 % of validation normals below
        return (test[score][kinds == kind] >= quantile_threshold(val[score], 0.95)).mean()

    assert flagged("reconstruction_mean", "empty") <= 0.1 and flagged("combined", "empty") >= 0.4
    for kind in ("blob", "recolour"):  # and the combined score keeps what reconstruction caught
        assert auroc(test["combined"], kind) > 0.95 and flagged("combined", kind) >= 0.8, kind
    assert auroc(test["combined"], "empty") > 0.8
    # the pooling changes the reconstruction signal only
    median = (
        Detector(model, CPU, "median")
        .fit(parts.train.images, parts.val.images)
        .scores(data.test.images)
    )
    assert np.array_equal(median["global"], test["global"])
    assert not np.array_equal(median["combined"], test["combined"])


def test_a_rotation_network_without_its_transformations_is_refused():
    """With no transformations the rotation scores divided by zero and then failed in
    torch.stack([]); with the wrong number they would read the wrong logits."""
    from helpers.hw2.autoencoder import ConvAutoencoder
    from helpers.hw2.rotation import (
        TransformationNet,
        transformation_list,
        transformation_scores,
    )

    model, net = ConvAutoencoder((4, 8, 16), latent=4), TransformationNet(4, width=4)
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    with pytest.raises(ParameterError, match=r"transformations=\[\] is empty.*transformation_list"):
        Detector(model, CPU, signals=("global", "features"), transformation_net=net)
    with pytest.raises(ParameterError, match="2 transformations for a network that names 4"):
        Detector(
            model,
            CPU,
            signals=("features",),
            transformation_net=net,
            transformations=transformation_list(16, 24, shifts=False),
        )
    with pytest.raises(ParameterError, match=r"transformations=\[\] is empty"):
        transformation_scores(net, images, CPU, [])
    scores, features = transformation_scores(
        net, images, CPU, transformation_list(16, 16, shifts=False)
    )
    assert np.isfinite(scores).all() and features.shape[:2] == (3, 8)


def test_the_detector_refuses_scoring_before_fit_and_standardising_on_fewer_than_two_normals():
    from helpers.hw2.autoencoder import ConvAutoencoder

    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    detector = Detector(ConvAutoencoder((4, 8), latent=4), CPU, jittered_copies=0)
    with pytest.raises(
        ParameterError, match=r"not fitted yet: call fit\(train_images, val_images\) first"
    ):
        detector.scores(images)
    with pytest.raises(ParameterError, match="at least two validation normals.*raise val_fraction"):
        detector.fit(images, images[:1])
    assert set(detector.fit(images, images[:2]).scores(images)) >= {"combined", "global", "texture"}


def test_detector_needs_an_autoencoder_a_known_pooling_and_the_rotation_network_its_signals_use():
    from helpers.hw2.autoencoder import ConvAutoencoder

    model = ConvAutoencoder((4, 8), latent=4)
    with pytest.raises(ParameterError, match="at least one trained autoencoder"):
        Detector([], CPU)
    with pytest.raises(
        ParameterError, match="error_pooling='max' is unknown; choose one of median, mean"
    ):
        Detector(model, CPU, pooling="max")
    with pytest.raises(ParameterError, match=r"need the transformation network; train it first"):
        Detector(model, CPU, signals=("reconstruction", "features"))


def test_check_score_names_an_unknown_score_with_the_scores_the_signals_compute():
    from helpers.hw2.detector import check_score

    with pytest.raises(
        ParameterError, match="score='mse' is unknown; choose one of reconstruction_mean, "
    ):
        check_score("mse", ("reconstruction", "global"))
    assert check_score("features", ("global", "features")) == "features"
