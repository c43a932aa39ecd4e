import numpy as np
import pytest
import torch

from helpers.core.errors import ParameterError
from helpers.data.near_duplicates import (
    drop_exact_copies,
    grouped_split,
    near_duplicate_groups,
    thumbnails,
)


def clusters(seed=0):
    """Six scenes of 1-5 near-identical frames each (noise of about 1 grey level), plus
    4 unrelated frames: 10 groups in all."""
    rng = np.random.default_rng(seed)
    frames, scene = [], []
    for s, size in enumerate([5, 4, 3, 3, 2, 1] + [1] * 4):
        base = rng.integers(0, 256, (3, 24, 40))
        for _ in range(size):
            frames.append(np.clip(base + rng.normal(0, 1, base.shape), 0, 255))
            scene.append(s)
    return torch.tensor(np.array(frames), dtype=torch.uint8), np.array(scene)


def test_thumbnails_keep_the_aspect_and_never_enlarge():
    assert thumbnails(torch.zeros(2, 3, 64, 96, dtype=torch.uint8)).shape == (2, 3 * 21 * 32)
    assert thumbnails(torch.zeros(2, 3, 8, 8, dtype=torch.uint8)).shape == (2, 3 * 8 * 8)


def test_near_copies_share_a_group_and_different_frames_do_not():
    images, scene = clusters()
    groups = near_duplicate_groups(images, max_rms=0.02)
    assert len(np.unique(groups)) == len(np.unique(scene))
    for s in np.unique(scene):  # the groups are exactly the scenes
        assert len(np.unique(groups[scene == s])) == 1
        assert not np.isin(groups[scene != s], groups[scene == s]).any()
    assert len(np.unique(near_duplicate_groups(images, max_rms=0.0))) == len(
        images
    )  # nothing within 0


def test_chains_of_near_copies_form_one_group():
    ramp = torch.stack([torch.full((3, 8, 8), 100 + 3 * i, dtype=torch.uint8) for i in range(6)])
    # neighbours differ by 3/255 = 0.012 < 0.02; the ends by 15/255, yet one chain
    assert len(np.unique(near_duplicate_groups(ramp, max_rms=0.02))) == 1


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_grouped_split_never_puts_near_duplicates_on_both_sides(seed):
    images, _ = clusters()
    groups = near_duplicate_groups(images)
    train, val = grouped_split(groups, 0.25, seed)
    assert len(train) + len(val) == len(images) and not set(train) & set(val)
    assert not set(groups[train]) & set(groups[val])
    assert 0 < len(val) <= 0.25 * len(images) * 1.5
    assert np.array_equal(val, grouped_split(groups, 0.25, seed)[1])  # seeded


def test_one_huge_group_never_swallows_the_split_whatever_the_seed():
    groups = np.r_[np.zeros(690, dtype=int), np.arange(1, 311)]  # one long scene + 310 singletons
    for seed in range(400):  # the huge group comes first in the random order for some seeds
        _, val = grouped_split(groups, 0.3, seed)
        assert 0 < len(val) <= 0.3 * len(groups) * 1.5 and 0 not in groups[val]
    _, val = grouped_split(np.r_[np.zeros(6, dtype=int), np.ones(4, dtype=int)], 0.1, 0)
    assert len(val) == 4  # every group too large: the smallest one


def test_a_single_group_cannot_be_split():
    with pytest.raises(ParameterError, match="one group"):
        grouped_split(np.zeros(10, dtype=int), 0.1, 0)
    with pytest.raises(ParameterError, match="val_fraction"):
        grouped_split(np.arange(10), 0.0, 0)


def test_exact_copies_are_dropped_and_the_first_of_each_kept():
    images = torch.randint(0, 256, (6, 3, 8, 12), dtype=torch.uint8)
    images[3] = images[1]
    images[5] = images[1]
    near = images[2].clone()
    near[0, 0, 0] ^= 1  # one grey level apart: not a copy
    images[4] = near
    assert drop_exact_copies(images, np.array([0, 1, 2, 3, 4, 5])).tolist() == [0, 1, 2, 4]
    assert drop_exact_copies(images, np.array([5, 3, 0])).tolist() == [5, 0]


def test_no_images_make_no_groups():
    assert near_duplicate_groups(torch.zeros(0, 3, 8, 8, dtype=torch.uint8), 0.025).shape == (0,)
