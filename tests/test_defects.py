"""The defect network: synthetic defects pasted into normals, the U-Net that finds them,
and its score."""

import pytest
import torch

from helpers.core.errors import ParameterError
from helpers.hw2.autoencoder import ConvAutoencoder
from helpers.hw2.defects import (
    DefectNet,
    DefectSegmentation,
    blob_masks,
    defect_loss,
    paste_defects,
    scar_masks,
    top_mean,
)
from helpers.hw2.detector import Detector, check_score
from helpers.hw2.thresholds import separation

CPU = torch.device("cpu")


def normals(n=8, size=(40, 36), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, *size, generator=g) * 0.5 + 0.25


def test_only_the_masked_pixels_change_and_only_in_the_chosen_share_of_images():
    x = normals(64)
    pasted, masks = paste_defects(x, torch.Generator().manual_seed(1), share=0.5)
    assert masks.shape == (64, 1, 40, 36) and set(masks.unique().tolist()) <= {0.0, 1.0}
    outside = masks == 0
    assert torch.equal(pasted[outside], x[outside])  # nothing outside the mask moves
    changed = (pasted != x).flatten(1).any(1)
    with_defect = masks.flatten(1).any(1)
    assert 16 <= int(with_defect.sum()) <= 48  # about half
    assert not changed[~with_defect].any()  # images without a defect are untouched
    assert changed[with_defect].float().mean() > 0.9  # the pasted regions differ
    none, no_masks = paste_defects(x, torch.Generator().manual_seed(1), share=0.0)
    assert torch.equal(none, x) and not no_masks.any()


def test_scars_are_thin_and_blobs_are_regions():
    g = torch.Generator().manual_seed(0)
    scars, blobs = scar_masks(32, (64, 64), g), blob_masks(32, (64, 64), g)
    assert scars.flatten(1).any(1).float().mean() > 0.9 and blobs.flatten(1).any(1).all()
    # a scar covers a strip a few pixels wide: far less than a tenth of the image
    assert scars.mean() < 0.05
    # widest extent across the strip: erode it by a 7x7 window and (nearly) nothing remains
    eroded = -torch.nn.functional.max_pool2d(-scars, 7, 1, 3)
    assert eroded.sum() < 0.05 * scars.sum()


def test_the_network_maps_any_size_and_scores_its_top_share():
    net = DefectNet(in_channels=1)
    x = normals(3, (37, 45))
    assert net(x).shape == (3, 1, 37, 45)
    maps = net.maps(x, CPU)
    assert maps.shape == (3, 37, 45) and ((maps >= 0) & (maps <= 1)).all()
    peaked = torch.zeros(2, 10, 10)
    peaked[0, 0, 0] = 1.0  # one pixel of a hundred: the top 1 %
    assert top_mean(peaked).tolist() == [1.0, 0.0]


def test_the_loss_falls_when_the_predicted_mask_matches():
    masks = torch.zeros(2, 1, 8, 8)
    masks[:, :, 2:4, 2:4] = 1
    right, wrong = (masks * 2 - 1) * 8, (1 - masks * 2) * 8
    assert defect_loss(right, masks) < 0.05 < defect_loss(wrong, masks)


def test_a_trained_network_marks_the_pasted_defects():
    torch.manual_seed(0)
    stripes = torch.linspace(0, 6.28 * 4, 32).sin().view(1, 1, 1, 32) * 0.2 + 0.5
    x = (stripes + 0.03 * torch.randn(64, 1, 32, 32)).clamp(0, 1)
    net, objective = DefectNet(1, (8, 16)), DefectSegmentation()
    optimiser = torch.optim.AdamW(net.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        loss, _ = objective.loss(net, x[torch.randint(0, 64, (16,))], torch.zeros(16), g)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    defective, masks = paste_defects(x[:32], torch.Generator().manual_seed(5), share=1.0)
    maps = net.maps(defective, CPU).flatten()
    inside = masks.flatten().bool()
    # (some pasted stripes line up with the surface and cannot be seen, so not every pixel)
    assert maps[inside].mean() > maps[~inside].mean() + 0.2
    scores_defect, scores_clean = top_mean(net.maps(defective, CPU)), top_mean(net.maps(x, CPU))
    assert separation(scores_clean, scores_defect) > 0.75  # AUROC of the images' scores


def test_the_defects_score_needs_its_network():
    with pytest.raises(ParameterError, match="defects"):
        check_score("defects", ["reconstruction", "local"])
    with pytest.raises(ParameterError, match="train_defect_net"):
        Detector(ConvAutoencoder((8, 16), 4, in_channels=1), CPU, signals=("defects",))


def test_the_budget_is_in_steps_of_the_same_pixels_whatever_the_image_size():
    from types import SimpleNamespace

    from helpers.hw2.steps import DEFECT_STEPS, defect_budget

    tiles = SimpleNamespace(image_size=(96, 88), defect_epochs=None)
    batch, epochs = defect_budget(tiles, 466)  # type: ignore[arg-type]
    assert batch == 16 and epochs * (466 // batch) >= DEFECT_STEPS > (epochs - 1) * (466 // batch)
    small = SimpleNamespace(image_size=(64, 64), defect_epochs=None)
    assert defect_budget(small, 466)[0] == 33  # more, smaller images per step
    given = SimpleNamespace(image_size=(96, 88), defect_epochs=3)
    assert defect_budget(given, 466) == (16, 3)  # the user's epochs win
