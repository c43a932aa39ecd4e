"""Groups of near-duplicate images, and validation splits that keep every group whole.

Frames cut from a video are near-copies of their neighbours. Holding out images at
random then leaves a near-twin of almost every validation image in the training split,
so validation images look far more familiar than genuinely new images do, and any
threshold or standardisation calibrated on them is too low. Here images are linked when
their small thumbnails differ by less than ``max_rms`` (root-mean-square over pixels and
channels, on a [0, 1] scale), the connected components of those links are the groups,
and a validation split takes whole groups only.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..core.errors import ParameterError


def thumbnails(images: torch.Tensor, longest_side: int = 32) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> float thumbnails (N, C * h * w) in [0, 1], area-averaged
    so that the longer side has ``longest_side`` pixels (never enlarged)."""
    h, w = images.shape[-2:]
    scale = min(1.0, longest_side / max(h, w))
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = images.float().div(255.0)
    if size != (h, w):
        x = F.interpolate(x, size=size, mode="area")
    return x.flatten(1)


def near_duplicate_groups(
    images: torch.Tensor, max_rms: float = 0.02, chunk: int = 1024
) -> np.ndarray:
    """A group id per image: images linked by thumbnails closer than ``max_rms`` (RMS
    difference per value) share a group, and so do chains of such links."""
    n = len(images)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    t = thumbnails(images)
    radius = max_rms * t.shape[1] ** 0.5  # the RMS bound as a Euclidean distance
    row_parts, col_parts = [], []
    for start in range(0, n, chunk):
        close = (torch.cdist(t[start : start + chunk], t) < radius).nonzero().numpy()
        row_parts.append(close[:, 0] + start)
        col_parts.append(close[:, 1])
    rows, cols = np.concatenate(row_parts), np.concatenate(col_parts)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def grouped_split(
    groups: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices (sorted) with whole groups on each side: groups in
    a seeded random order go to validation until it holds ``val_fraction`` of the images.

    A group larger than what is left of the validation share is skipped while smaller
    ones can still fill it, so one huge group does not swallow the split.
    """
    if not 0 < val_fraction < 1:
        raise ParameterError(f"val_fraction={val_fraction!r} must lie in (0, 1), e.g. 0.1.")
    groups = np.asarray(groups)
    ids, sizes = np.unique(groups, return_counts=True)
    if len(ids) < 2:
        raise ParameterError(
            "every image is a near-duplicate of another (one group), so no validation split can "
            "hold new images; add more varied normal images."
        )
    target = val_fraction * len(groups)
    chosen, taken = [], 0
    for i in np.random.default_rng(seed).permutation(len(ids)):
        if taken >= target:
            break
        if taken + sizes[i] <= target * 1.5:
            chosen.append(ids[i])
            taken += sizes[i]
    if not chosen:  # every group is larger than the share: the smallest one
        chosen.append(ids[np.argmin(sizes)])
    in_val = np.isin(groups, chosen)
    if in_val.all():
        raise ParameterError(
            "the validation split would take every normal image; lower val_fraction."
        )
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


def pixel_digest(array: np.ndarray) -> str:
    """A fingerprint of an image's pixels: equal for pixel-identical images only."""
    return hashlib.sha1(array.tobytes()).hexdigest()


def drop_exact_copies(images: torch.Tensor, indices: np.ndarray) -> np.ndarray:
    """``indices`` without the images that are pixel-identical to an earlier one among them.

    A video's still frames come out as exact copies; each copy costs a training step and
    teaches nothing new (it only weighs that frame double).
    """
    seen, keep = set(), []
    for i in np.asarray(indices):
        digest = pixel_digest(images[int(i)].numpy())
        if digest not in seen:
            seen.add(digest)
            keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)
