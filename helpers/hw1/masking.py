"""The pieces of masked image modelling for a convolutional encoder (after SparK and MAE).

* :func:`random_patch_mask` hides exactly ``round(ratio * patches)`` patches of each
  image, on a grid whose cell is the encoder's total stride (8 pixels for the CIFAR
  ResNet: one cell of its 4x4 output per 8x8 patch), so no hidden pixel can be filled in
  from a visible neighbour inside the same receptive cell.
* :func:`mask_to` resizes that grid to any feature map, to zero the hidden positions
  again after every stage (the dense-convolution stand-in for SparK's sparse convolutions).
* :func:`patch_normalised` is MAE's target: each patch minus its mean over its pixels
  and channels, divided by its standard deviation.
* :func:`masked_patch_loss` is the mean squared error over hidden patches only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.errors import ParameterError


def random_patch_mask(
    n: int,
    grid: tuple[int, int],
    ratio: float,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Boolean ``(n, 1, gh, gw)``, True where a patch is hidden: exactly ``round(ratio * gh * gw)``
    hidden patches per image (at least one, at most all but one), chosen uniformly."""
    if not 0 < ratio < 1:
        raise ParameterError(f"mask_ratio={ratio!r} must lie strictly between 0 and 1, e.g. 0.6.")
    gh, gw = grid
    patches = gh * gw
    hidden = min(max(round(ratio * patches), 1), patches - 1)
    ranks = torch.rand(n, patches, generator=generator, device=device).argsort(1).argsort(1)
    return (ranks < hidden).view(n, 1, gh, gw)


def mask_to(mask: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """The patch mask resized (nearest) to a ``size`` feature map."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask.float(), size=size, mode="nearest").bool()


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """``(n, c, h, w)`` -> ``(n, h/p * w/p, c * p * p)``: one row per patch, row-major."""
    n, c, h, w = x.shape
    if h % patch or w % patch:
        raise ParameterError(f"images of {h}x{w} pixels do not split into {patch}x{patch} patches.")
    x = x.reshape(n, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(n, (h // patch) * (w // patch), c * patch * patch)


def unpatchify(rows: torch.Tensor, patch: int, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """The inverse of :func:`patchify`, back to images of ``shape``."""
    n, c, h, w = shape
    x = rows.reshape(n, h // patch, w // patch, c, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n, c, h, w)


def patch_normalised(x: torch.Tensor, patch: int, eps: float = 1e-6) -> torch.Tensor:
    """Each patch's pixels (all channels) minus their mean, over their standard deviation:
    ``(n, patches, c * p * p)``."""
    rows = patchify(x, patch)
    mean = rows.mean(-1, keepdim=True)
    var = rows.var(-1, keepdim=True, unbiased=False)
    return (rows - mean) / (var + eps).sqrt()


def masked_patch_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    patch: int,
    normalise_target: bool = True,
    masked_only: bool = True,
) -> torch.Tensor:
    """Mean squared error between ``prediction`` and ``target`` images, per patch, averaged
    over the hidden patches of ``mask`` (``(n, 1, gh, gw)``; every patch if not
    ``masked_only``); with ``normalise_target`` the prediction is compared with the
    patch-normalised target (the decoder then predicts normalised patches)."""
    pred = patchify(prediction.float(), patch)
    tgt = (
        patch_normalised(target.float(), patch)
        if normalise_target
        else patchify(target.float(), patch)
    )
    per_patch = (pred - tgt).pow(2).mean(-1)
    weight = mask.flatten(1).float() if masked_only else torch.ones_like(per_patch)
    return (per_patch * weight).sum() / weight.sum().clamp_min(1.0)
