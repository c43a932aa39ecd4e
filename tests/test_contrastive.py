import math

import torch

from helpers.contrastive import ContrastiveNet, ContrastiveObjective, nt_xent, random_resized_crop, simclr_views


def test_nt_xent_matches_the_hand_computed_value():
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # two images; each view equal to its partner
    # every row: partner at cosine 1, the two others at cosine 0
    for t in (1.0, 0.5):
        expected = -1 / t + math.log(2 + math.exp(1 / t))
        assert math.isclose(nt_xent(z, z.clone(), t).item(), expected, rel_tol=1e-5)
    # one pair only: the partner is the only candidate, so the loss is zero
    assert nt_xent(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])).item() == 0


def test_nt_xent_prefers_views_that_agree():
    torch.manual_seed(0)
    z1 = torch.randn(16, 8)
    assert nt_xent(z1, z1 + 0.01 * torch.randn(16, 8)) < nt_xent(z1, torch.randn(16, 8))


def test_views_differ_per_image_and_stay_images():
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    a, b = simclr_views(images, g), simclr_views(images, g)
    assert a.shape == (6, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(a, b)
    full = random_resized_crop(torch.rand(2, 3, 8, 8), g, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert full.shape == (2, 3, 8, 8)


def test_the_objective_trains_the_encoder_and_head():
    torch.manual_seed(0)
    net = ContrastiveNet("resnet18", 4, projection_dim=16)
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    loss, z = ContrastiveObjective(0.5).loss(net, images, None, torch.Generator().manual_seed(1))
    assert z.shape == (16, 16) and loss.item() > 0
    loss.backward()
    assert net.encoder.stem[0].weight.grad.abs().sum() > 0
