import torch

from helpers.core.augment import BatchAugment, cutout, random_crop, random_flip, trivial_augment


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_crop_is_a_shifted_window_of_the_reflect_padded_image():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = random_crop(x, 2, gen())
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    for i in range(2):
        windows = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_crop_shifts_vary_and_are_seeded():
    x = torch.rand(64, 3, 16, 16)
    a, b = random_crop(x, 4, gen(1)), random_crop(x, 4, gen(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, x)
    assert sum(torch.equal(a[i], x[i]) for i in range(64)) < 16


def test_flip_mirrors_about_half():
    x = torch.rand(400, 3, 4, 4)
    out = random_flip(x, gen())
    flipped = sum(torch.equal(out[i], x[i].flip(2)) for i in range(400))
    kept = sum(torch.equal(out[i], x[i]) for i in range(400))
    assert flipped + kept == 400 and 150 < flipped < 250


def test_cutout_zeroes_one_square():
    x = torch.ones(200, 3, 32, 32)
    out = cutout(x, 8, gen())
    assert torch.equal(out[:, :1].expand_as(out), out)  # the same pixels in every channel
    inside = 0
    for zeroed in out[:, 0] == 0:
        rows, cols = zeroed.any(1).nonzero().flatten(), zeroed.any(0).nonzero().flatten()
        block = torch.zeros_like(zeroed)
        block[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
        assert torch.equal(zeroed, block)  # one filled rectangle
        height, width = len(rows), len(cols)
        assert height <= 9 and width <= 9  # size // 2 pixels either side of its centre
        clipped = rows.min() == 0 or rows.max() == 31 or cols.min() == 0 or cols.max() == 31
        inside += not clipped
        assert clipped or height == width == 9  # a square wherever the border does not cut it
    assert inside > 50  # about half of the squares lie wholly inside


def test_batch_augment_turns_uint8_into_unit_floats():
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    out = BatchAugment(crop_pad=4, flip=True, cutout=8, jitter=0.2)(x, gen())
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert 0 <= out.min() and out.max() <= 1


def test_windows_are_cut_per_image_and_only_in_the_early_epochs():
    from helpers.core.augment import window

    x = torch.arange(4 * 32 * 32, dtype=torch.float32).view(4, 1, 32, 32)
    w = window(x, 24, torch.Generator().manual_seed(0))
    assert w.shape == (4, 1, 24, 24)
    for img, orig in zip(w, x, strict=True):  # a contiguous block of the original image
        top, left = divmod(int(img[0, 0, 0] - orig[0, 0, 0]), 32)
        assert torch.equal(img, orig[:, top : top + 24, left : left + 24])
    assert (
        len(
            {
                int(img[0, 0, 0]) % 1024
                for img in window(
                    x[:1].expand(64, 1, 32, 32).clone(), 24, torch.Generator().manual_seed(1)
                )
            }
        )
        > 20
    )
    augment = BatchAugment(crop_pad=0, flip=False, small_crop=24, small_crop_epochs=2)
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    sizes = []
    for epoch in range(4):
        augment.set_epoch(epoch)
        sizes.append(augment(images, torch.Generator().manual_seed(0)).shape[-1])
    assert sizes == [24, 24, 32, 32]


def test_to_float_scales_to_unit_range_without_changing_its_input():
    """``.float()`` returns a float32 tensor itself, so an in-place division changed the
    caller's images."""
    from helpers.core.augment import to_float

    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    as_float = images.float()
    before = as_float.clone()
    assert torch.equal(to_float(images), before / 255)
    assert torch.equal(to_float(as_float), before / 255)
    assert torch.equal(as_float, before)  # the caller's float32 tensor is untouched


def test_trivial_augment_changes_each_image_on_its_own_and_is_seeded():
    x = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    a, b = trivial_augment(x, gen(3)), trivial_augment(x, gen(3))
    assert a.dtype == torch.uint8 and a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, trivial_augment(x, gen(4)))
    changed = [not torch.equal(a[i], x[i]) for i in range(64)]
    assert 32 < sum(changed) < 64  # most images change, the identity draw keeps some


def test_trivial_augment_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    trivial_augment(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), gen())
    assert torch.equal(torch.rand(3), expected)


def test_batch_augment_applies_trivial_augment_only_when_asked():
    x = torch.randint(0, 256, (32, 3, 16, 16), dtype=torch.uint8)
    plain = BatchAugment(crop_pad=0, flip=False)(x, gen())
    assert torch.equal(plain, x.float() / 255)
    strong = BatchAugment(crop_pad=0, flip=False, trivial=True)(x, gen())
    assert not torch.equal(strong, plain)
