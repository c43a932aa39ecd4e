import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from helpers.core.errors import ParameterError
from helpers.hw2.autoencoder import ChannelAttention, ConvAutoencoder
from helpers.hw2.thresholds import (
    anomaly_report,
    balanced_threshold,
    choose_threshold,
    informed_threshold,
    quantile_threshold,
)


def test_autoencoder_learns_to_rebuild_its_input_in_unit_range():
    from helpers.data.synthetic import class_images

    torch.manual_seed(0)
    model = ConvAutoencoder((8, 16, 32), latent=4)
    x = (
        torch.from_numpy(class_images(np.arange(4), np.random.default_rng(0), size=16)).float()
        / 255
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    errors = []
    for _ in range(40):
        error = torch.nn.functional.mse_loss(model(x), x)
        optimizer.zero_grad()
        error.backward()
        optimizer.step()
        errors.append(error.item())
    assert errors[-1] < 0.3 * errors[0]  # it learns to rebuild them
    far = model.eval()(torch.randn(2, 3, 32, 48) * 10)  # any input, any size divisible by 8
    assert far.shape == (2, 3, 32, 48) and 0 <= far.min() and far.max() <= 1


def test_autoencoder_refuses_sizes_it_cannot_halve():
    with pytest.raises(ParameterError, match="divisible by 8"):
        ConvAutoencoder((8, 16, 32), latent=4)(torch.rand(1, 3, 28, 48))


def test_channel_attention_mask_scales_each_channel_by_a_unit_weight():
    att = ChannelAttention(8)
    x = torch.rand(2, 8, 4, 6)
    mask = att.mask(x)
    assert mask.shape == (2, 8, 1, 1) and ((0 < mask) & (mask < 1)).all()
    assert torch.allclose(att(x), x * mask)


def test_quantile_threshold_gives_the_target_tnr_on_its_normals():
    normal = np.random.default_rng(0).normal(size=1000)
    t = quantile_threshold(normal, 0.95)
    assert abs((normal < t).mean() - 0.95) < 0.002


def test_balanced_threshold_separates_separable_scores_in_the_gap():
    t = balanced_threshold(np.array([0.1, 0.2, 0.3]), np.array([0.9, 1.0]))
    assert 0.3 < t < 0.9
    report = anomaly_report([0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.9, 1.0], t)
    assert report["tpr"] == 1 and report["tnr"] == 1


def test_informed_threshold_moves_halfway_down_when_known_anomalies_would_be_missed():
    normal = np.linspace(0, 1, 101)  # its 90 % quantile is 0.9
    overlapping = np.linspace(0.5, 2.5, 101)  # its 5 % quantile, 0.6, lies below the quantile
    assert np.isclose(informed_threshold(normal, overlapping, 0.9), (0.9 + 0.6) / 2)
    far = np.linspace(3, 5, 101)  # known anomalies well above: they never raise the threshold
    assert np.isclose(informed_threshold(normal, far, 0.9), 0.9)


def test_choose_threshold_auto_uses_known_anomalies_only_when_present_and_needed():
    normal, low_known, high_known = (
        np.linspace(0, 1, 51),
        np.array([0.5, 6.0]),
        np.array([5.0, 6.0]),
    )
    t_known, how = choose_threshold("auto", normal, low_known, 0.9)
    assert (
        np.isclose(t_known, (0.9 + np.quantile(low_known, 0.05)) / 2)
        and "down to the 5% quantile" in how
    )
    for known in (high_known, None):
        t_q, how = choose_threshold("auto", normal, known, 0.9)
        assert np.isclose(t_q, 0.9) and how == "90.0% quantile of 51 validation normals"
    assert choose_threshold("quantile", normal, low_known, 0.9)[0] == t_q
    t_b, how = choose_threshold("balanced", normal, high_known, 0.9)
    assert 1 < t_b < 5 and "max TPR+TNR" in how
    with pytest.raises(ParameterError, match="needs known anomalies"):
        choose_threshold("balanced", normal, None, 0.9)
    with pytest.raises(ParameterError, match="auto, quantile, balanced"):
        choose_threshold("oracle", normal, high_known, 0.9)


def test_report_counts_and_matches_scikit_learn():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(90), np.ones(10)].astype(int)
    scores = rng.normal(size=100) + 2 * labels
    r = anomaly_report(labels, scores, 1.0)
    assert r["tpr"] == (scores[labels == 1] >= 1).mean()
    assert r["tnr"] == (scores[labels == 0] < 1).mean()
    assert np.isclose(r["auroc"], roc_auc_score(labels, scores))
    assert sum(map(sum, r["confusion_matrix"])) == 100


def test_informed_threshold_without_known_anomalies_is_the_quantile_threshold():
    """An empty array of known anomalies raised numpy's IndexError; with none known there
    is nothing to move the threshold towards."""
    normal = np.linspace(0, 1, 101)
    assert informed_threshold(normal, np.array([]), 0.9) == quantile_threshold(normal, 0.9)
    assert choose_threshold("auto", normal, np.array([]), 0.9)[0] == quantile_threshold(normal, 0.9)


@pytest.mark.parametrize("target", [0, 1, 1.5])
def test_a_target_tnr_outside_the_open_unit_interval_is_named(target):
    with pytest.raises(ParameterError, match=f"target_tnr={target!r} must lie in \\(0, 1\\)"):
        quantile_threshold(np.linspace(0, 1, 11), target)


def test_the_autoencoder_shows_its_stages_and_its_masks_without_changing():
    from helpers.hw2.autoencoder import attention_masks, stage_shapes

    model = ConvAutoencoder((8, 16), latent=6, in_channels=1).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.randint(0, 256, (3, 1, 16, 24), dtype=torch.uint8)
    lines = stage_shapes(model, images).splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "input",
        "encoder stage 1 (stride 2)",
        "encoder stage 2 (stride 2)",
        "bottleneck: 1x1 conv",
        "x channel-attention mask",
        "decoder stage 1 (x2)",
        "decoder stage 2 (x2)",
        "output: 3x3 conv, sigmoid",
    ]
    assert "(3, 6, 4, 6)" in lines[3] and "# 8x12 => 4x6" in lines[2]
    masks = attention_masks(model, images)
    assert masks.shape == (3, 6) and bool(((masks > 0) & (masks < 1)).all())
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
