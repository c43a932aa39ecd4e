import pytest
import torch

from helpers.core.errors import ParameterError
from helpers.hw1.masking import (
    mask_to,
    masked_patch_loss,
    patch_normalised,
    patchify,
    random_patch_mask,
    unpatchify,
)
from helpers.hw1.restoration import (
    RESTORATION_RECIPES,
    MaskedRestoration,
    RestorationNet,
    shown_restoration,
)


def test_each_image_hides_exactly_the_asked_share_of_patches_at_random():
    mask = random_patch_mask(2000, (4, 4), 0.6, torch.Generator().manual_seed(0))
    assert mask.shape == (2000, 1, 4, 4) and mask.dtype == torch.bool
    assert (mask.flatten(1).sum(1) == 10).all()  # round(0.6 * 16)
    assert len({tuple(m.flatten().tolist()) for m in mask}) > 1000  # not one fixed pattern
    assert (
        0.58 < mask.float().mean(0).min() and mask.float().mean(0).max() < 0.67
    )  # every cell alike (10/16)
    with pytest.raises(ParameterError, match="mask_ratio=0"):
        random_patch_mask(1, (4, 4), 0.0, torch.Generator())


def test_the_mask_covers_whole_patches_at_every_resolution():
    mask = random_patch_mask(3, (4, 4), 0.5, torch.Generator().manual_seed(1))
    pixels = mask_to(mask, (32, 32))
    assert pixels.shape == (3, 1, 32, 32)
    blocks = pixels.view(3, 1, 4, 8, 4, 8)
    assert torch.equal(blocks.all(5).all(3), mask) and torch.equal(blocks.any(5).any(3), mask)
    assert torch.equal(mask_to(mask, (8, 8)), mask.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_patches_round_trip_and_normalised_targets_have_zero_mean_unit_spread():
    x = torch.rand(2, 3, 32, 32)
    rows = patchify(x, 8)
    assert rows.shape == (2, 16, 3 * 64)
    assert torch.equal(rows[0, 1], x[0, :, 0:8, 8:16].reshape(-1))  # row-major patch order
    assert torch.equal(unpatchify(rows, 8, x.shape), x)
    target = patch_normalised(x, 8)
    assert torch.allclose(target.mean(-1), torch.zeros(2, 16), atol=1e-5)
    assert torch.allclose(target.std(-1, unbiased=False), torch.ones(2, 16), atol=1e-3)


def test_the_loss_scores_hidden_patches_only():
    x = torch.rand(2, 3, 32, 32)
    mask = random_patch_mask(2, (4, 4), 0.5, torch.Generator().manual_seed(2))
    hidden = mask_to(mask, (32, 32))
    wrong_where_visible = torch.where(hidden, x, 1 - x)
    assert masked_patch_loss(wrong_where_visible, x, mask, 8, normalise_target=False) == 0
    assert (
        masked_patch_loss(
            wrong_where_visible, x, mask, 8, normalise_target=False, masked_only=False
        )
        > 0
    )
    perfect = unpatchify(patch_normalised(x, 8), 8, x.shape)
    assert masked_patch_loss(perfect, x, mask, 8, normalise_target=True) < 1e-8


@pytest.mark.parametrize("recipe", ["dense", "spark"])
def test_the_network_never_sees_what_hides_under_the_mask(recipe):
    torch.manual_seed(0)
    net = RestorationNet("resnet18", 4, RESTORATION_RECIPES[recipe]).eval()
    r = net.recipe
    x = torch.rand(4, 3, 32, 32)
    mask = random_patch_mask(
        4, (32 // r.patch, 32 // r.patch), r.mask_ratio, torch.Generator().manual_seed(3)
    )
    other = torch.where(
        mask_to(mask, (32, 32)), torch.rand_like(x), x
    )  # new content under the mask only
    with torch.no_grad():
        a = net(x, mask, torch.Generator().manual_seed(4))
        b = net(other, mask, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and torch.allclose(a, b)


def test_a_restoration_step_lowers_the_masked_loss_and_the_figure_keeps_visible_pixels():
    torch.manual_seed(0)
    net = RestorationNet("resnet18", 4)
    objective = MaskedRestoration(net.recipe)
    x = torch.rand(8, 3, 32, 32)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    losses = []
    for _ in range(8):
        loss, _ = objective.loss(
            net, x, None, torch.Generator().manual_seed(5)
        )  # same mask each step
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    mask = random_patch_mask(8, (4, 4), 0.6, torch.Generator().manual_seed(6))
    seen, restored = shown_restoration(net.eval(), x, mask)
    visible = ~mask_to(mask, (32, 32)).expand_as(x)
    assert torch.equal(restored[visible], x[visible]) and (seen[~visible] == 0.5).all()
