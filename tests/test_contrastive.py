import math

import torch

from helpers.hw1.contrastive import (
    ContrastiveNet,
    ContrastiveObjective,
    nt_xent,
    random_resized_crop,
    simclr_views,
)


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
    x = torch.rand(2, 3, 8, 8)
    full = random_resized_crop(
        x, g, scale=(1.0, 1.0), ratio=(1.0, 1.0)
    )  # the whole image, unresized
    assert torch.allclose(full, x, atol=1e-5)
    quarter = random_resized_crop(x, g, scale=(0.25, 0.25), ratio=(1.0, 1.0))  # a quarter, enlarged
    assert quarter.shape == x.shape and not torch.allclose(quarter, x, atol=0.05)


def test_the_objective_trains_the_encoder_and_head():
    torch.manual_seed(0)
    net = ContrastiveNet("resnet18", 4, projection_dim=16)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    objective = ContrastiveObjective(0.5)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    stem, head = net.encoder.stem[0].weight.detach().clone(), net.head[-1].weight.detach().clone()
    losses = []
    for _ in range(10):  # the same two views each step: the pairs must come to agree
        loss, z = objective.loss(net, images, None, torch.Generator().manual_seed(1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert z.shape == (16, 16) and losses[-1] < 0.7 * losses[0]
    assert not torch.equal(net.encoder.stem[0].weight, stem) and not torch.equal(
        net.head[-1].weight, head
    )
