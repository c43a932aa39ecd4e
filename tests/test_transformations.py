"""The rotation network's self-supervised task: its labels, its loss, its scores."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from helpers.hw2.rotation import (
    SHIFT,
    TransformationNet,
    TransformationPrediction,
    apply_transformation,
    fit_view_gaussians,
    knn_distance,
    mahalanobis_distance,
    transformation_list,
    transformation_scores,
)


def test_square_images_get_four_rotations_and_others_two():
    assert transformation_list(32, 32, shifts=False) == [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0)]
    assert transformation_list(32, 48, shifts=False) == [(0, 0, 0), (2, 0, 0)]
    shifted = transformation_list(32, 32, shifts=True)
    assert len(shifted) == 36 and (0, -SHIFT, SHIFT) in shifted and len(set(shifted)) == 36


def test_rotations_and_shifts_move_pixels_where_expected():
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 2, 5] = 1.0  # one bright pixel at row 2, column 5
    quarter = apply_transformation(x, 1, 0, 0)  # rot90 counter-clockwise: (r, c) -> (15 - c, r)
    assert quarter[0, 0, 15 - 5, 2] == 1.0 and quarter.sum() == 1
    assert torch.equal(apply_transformation(x, 2, 0, 0), x.flip(2).flip(3))
    y = torch.zeros(1, 1, 16, 16)
    y[0, 0, 8, 8] = 1.0
    shifted = apply_transformation(y, 0, 3, -2)  # output[r, c] = input[r + 3, c - 2]
    assert shifted[0, 0, 5, 10] == 1.0 and shifted.sum() == 1 and shifted.shape == y.shape


class Fixed(nn.Module):
    """Logits that depend only on the rotation: the mean of the top-left pixel region."""

    def forward(self, x):
        corner = x[:, 0, :4, :4].mean((1, 2))
        return torch.stack([corner, -corner, 2 * corner, torch.zeros_like(corner)], 1)


def test_each_image_gets_a_random_transformation_and_the_loss_is_cross_entropy_on_its_label():
    transformations = transformation_list(8, 8, shifts=False)
    objective = TransformationPrediction(transformations)
    x = torch.rand(6, 3, 8, 8)
    generator = torch.Generator().manual_seed(0)
    loss, out = objective.loss(Fixed(), x, torch.zeros(6, dtype=torch.long), generator)
    # by hand: the same draw, each image transformed by its own label, then cross-entropy
    which = torch.randint(4, (6,), generator=torch.Generator().manual_seed(0))
    assert sorted(out.targets.tolist()) == sorted(which.tolist())  # labels = transformations drawn
    expected = []
    for i in range(6):
        logits = Fixed()(apply_transformation(x[i : i + 1], *transformations[int(which[i])]))[0]
        expected.append(-torch.log_softmax(logits, 0)[which[i]])
    assert loss.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)
    assert out.logits.shape == (6, 4)


def test_uniform_logits_give_log_k():
    objective = TransformationPrediction(transformation_list(8, 8, shifts=False))

    class Unsure(nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), 4)

    loss, _ = objective.loss(
        Unsure(),
        torch.rand(5, 3, 8, 8),
        torch.zeros(5, dtype=torch.long),
        torch.Generator().manual_seed(1),
    )
    assert loss.item() == pytest.approx(math.log(4))


def test_knn_distance_is_zero_for_a_reference_vector_and_grows_away_from_them():
    ref = np.eye(3, dtype=np.float32)
    near = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    far = np.array([[-1.0, 0.0, 0.0]], dtype=np.float32)
    assert knn_distance(near, ref, k=1)[0] == pytest.approx(0.0)
    assert knn_distance(far, ref, k=1)[0] > knn_distance(near, ref, k=2)[0]


def test_knn_distance_over_views_compares_each_view_with_the_same_view_and_averages():
    ref = np.stack(
        [np.eye(3, dtype=np.float32), -np.eye(3, dtype=np.float32)], 1
    )  # (3 refs, 2 views, 3)
    # view 0 matches reference 0's view 0 exactly; view 1 matches nothing in view 1 but would in
    # view 0
    query = np.array([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]], dtype=np.float32)
    per_view = [knn_distance(query[:, v], ref[:, v], k=1)[0] for v in range(2)]
    assert per_view == [pytest.approx(0.0), pytest.approx(1.0)]  # view 1: nearest is 0 (orthogonal)
    assert knn_distance(query, ref, k=1)[0] == pytest.approx(0.5)


def test_mahalanobis_distance_fits_a_gaussian_per_view_and_averages_the_views():
    rng = np.random.default_rng(0)
    narrow, wide = rng.normal(0, 0.1, (500, 1, 3)), rng.normal(0, 10.0, (500, 1, 3))
    reference = np.concatenate([narrow, wide], 1)  # view 0 varies little, view 1 much
    gaussians = fit_view_gaussians(reference)
    assert len(gaussians) == 2
    step = np.array([[[1.0, 0, 0], [1.0, 0, 0]]])  # one unit off-centre in both views
    d0, d1 = (g.mahalanobis(step[:, v]) for v, g in enumerate(gaussians))
    assert d0[0] > 10 * d1[0]  # far out in the narrow view, well inside the wide one
    assert mahalanobis_distance(step, gaussians)[0] == pytest.approx((d0[0] + d1[0]) / 2)
    inside = mahalanobis_distance(np.zeros((1, 2, 3)), gaussians)[0]
    assert inside < mahalanobis_distance(step, gaussians)[0]
    with pytest.raises(ValueError, match="3 views but 2"):
        mahalanobis_distance(np.zeros((1, 3, 3)), gaussians)


def test_transformation_scores_give_every_rotation_of_the_image_and_of_its_mirror_as_a_view():
    torch.manual_seed(0)
    transformations = transformation_list(8, 8, shifts=False)
    net = TransformationNet(len(transformations), width=4).eval()
    images = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    nll, features = transformation_scores(net, images, torch.device("cpu"), transformations)
    assert nll.shape == (3,) and features.shape == (3, 8, net.encoder.out_channels)
    x = images.float() / 255
    with torch.no_grad():
        expected = [net.features(apply_transformation(x, 1, 0, 0)), net.features(x.flip(-1))]
    assert np.allclose(
        features[:, 1], torch.nn.functional.normalize(expected[0], dim=1).numpy(), atol=1e-5
    )
    assert np.allclose(
        features[:, 4], torch.nn.functional.normalize(expected[1], dim=1).numpy(), atol=1e-5
    )
    shifted = transformation_list(
        16, 16, shifts=True
    )  # the shifts are scored, not compared as views
    nll, features = transformation_scores(
        TransformationNet(len(shifted), width=4),
        torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8),
        torch.device("cpu"),
        shifted,
    )
    assert nll.shape == (2,) and features.shape[:2] == (2, 8)


@pytest.fixture(scope="module")
def one_class_data(tmp_path_factory):
    from helpers.data.synthetic import write_cifar10

    return write_cifar10(
        tmp_path_factory.mktemp("cifar-oneclass"), per_batch=400, batches=2, test=200
    )


def test_the_rotation_network_keeps_its_last_epoch_and_records_validation(one_class_data, tmp_path):
    from conftest import hw2_settings as settings
    from helpers import hw2

    s = settings(
        one_class_data,
        tmp_path,
        dataset="cifar10",
        image_size=None,
        normal_class=0,
        transformation_epochs=3,
        batch_size=32,
        transformation_batch_size=8,
    )
    data = hw2.load_data(s)
    trained = hw2.train_transformation_net(
        s, hw2.split(s, data), torch.device("cpu"), tmp_path / "run"
    )
    assert trained.result.best_epoch == 3 and len(trained.result.history) == 3
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(trained.result.history[-1])
    checkpoint = torch.load(
        tmp_path / "run" / "checkpoints-transformation" / "last.pt", weights_only=False
    )
    assert checkpoint["config"]["batch_size"] == 8  # its own batch size, not the autoencoder's 32
    none = hw2.train_transformation_net(
        settings(
            one_class_data,
            tmp_path,
            dataset="cifar10",
            image_size=None,
            signals=["reconstruction", "global"],
        ),
        hw2.split(s, data),
        torch.device("cpu"),
        tmp_path / "run2",
    )
    assert none.net is None  # no signal needs it: not trained


def test_the_one_class_detector_ranks_other_classes_above_the_normal_one(one_class_data, tmp_path):
    from conftest import hw2_settings as settings
    from helpers import hw2
    from helpers.hw2.steps import build_model

    s = settings(
        one_class_data,
        tmp_path,
        dataset="cifar10",
        image_size=None,
        normal_class=3,
        epochs=5,
        transformation_epochs=20,
        batch_size=32,
        target_tnr=None,
        val_fraction=None,
    )
    assert s.signals == ("global", "transformation", "features", "mahalanobis")  # the defaults
    assert (s.target_tnr, s.val_fraction) == (0.8, 0.1)
    data = hw2.load_data(s)
    parts = hw2.split(s, data)
    model = build_model(s)
    hw2.train(s, [model], parts, torch.device("cpu"), tmp_path / "run")
    trained = hw2.train_transformation_net(s, parts, torch.device("cpu"), tmp_path / "run")
    result = hw2.score_and_threshold(s, [model], data, parts, torch.device("cpu"), trained)
    by_score = {row["score"]: row for row in result.ablation}
    assert {"transformation", "features", "mahalanobis"} <= set(by_score)
    assert by_score["combined"]["auroc"] > 0.9
    assert result.report["tpr"] > 0.6 and result.report["tnr"] > 0.6
