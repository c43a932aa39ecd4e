"""Inference with a trained network: its loss and metrics on a labelled set, class
probabilities with test-time augmentation, the gradients of one batch, and the shape of
each stage's output (what a notebook prints to show a network)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .augment import to_float
from .device import autocast
from .images import ImageSet
from .objectives import Objective


def device_batch(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A batch already on its device as float images, in the network's memory format."""
    x = images if images.is_floating_point() else to_float(images)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def tracked_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Conv and linear weights: the layers whose gradient norms we record."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: ImageSet,
    objective: Objective,
    device: torch.device,
    batch_size: int = 1024,
    channels_last: bool = True,
    precision: str = "auto",
    seed: int = 0,
) -> dict[str, float]:
    """Loss and metrics of ``model`` on ``data`` (a fixed seed for any corruption)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    meter = objective.meter(device)
    for start in range(0, len(data), batch_size):
        x = data.images[start : start + batch_size].to(device, non_blocking=True)
        y = data.labels[start : start + batch_size].to(device, non_blocking=True)
        with autocast(device, precision):
            loss, out = objective.loss(model, device_batch(x, channels_last), y, generator)
        meter.update(loss, out, y)
    model.train(was_training)
    return meter.compute()


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    images: torch.Tensor,
    device: torch.device,
    batch_size: int = 1024,
    flip_tta: bool = False,
    channels_last: bool = True,
    precision: str = "auto",
    shift_tta: int = 0,
) -> torch.Tensor:
    """Class probabilities for uint8 ``images`` (on the CPU); ``flip_tta`` averages the
    predictions for each image and its mirror image; ``shift_tta`` (pixels) also averages
    in the image shifted diagonally both ways (reflect padding), each with its mirror,
    weighted like the unshifted views together. ``model`` is moved to ``device``."""
    was_training = model.training
    model.to(device).eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        x = device_batch(images[start : start + batch_size].to(device), channels_last)
        with autocast(device, precision):
            p = _views_proba(model, [x], flip_tta)
            if shift_tta:
                d = shift_tta
                padded = F.pad(x, (d, d, d, d), mode="reflect")
                h, w = x.shape[-2:]
                shifted = [padded[..., :h, :w], padded[..., 2 * d :, 2 * d :]]
                p = (p + _views_proba(model, shifted, flip_tta)) / 2
        outputs.append(p)
    model.train(was_training)
    return torch.cat(outputs).cpu()


def _views_proba(model: nn.Module, views: list[torch.Tensor], flip: bool) -> torch.Tensor:
    """Mean class probabilities over ``views`` (and their mirror images with ``flip``)."""
    views = views + [v.flip(3) for v in views] if flip else views
    return sum(model(v).float().softmax(1) for v in views) / len(views)


def gradient_snapshot(
    model: nn.Module,
    data: ImageSet,
    objective: Objective,
    device: torch.device,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Per-layer gradients of one batch of ``data`` (eval mode, so BN statistics stay put);
    ``model`` is moved to ``device``."""
    was_training = model.training
    model.to(device).eval()
    x = to_float(data.images[:batch_size].to(device))
    y = data.labels[:batch_size].to(device)
    model.zero_grad(set_to_none=True)
    loss, _ = objective.loss(model, x, y, torch.Generator(device=device).manual_seed(0))
    loss.backward()
    grads = {
        name: p.grad.detach().float().cpu().numpy().ravel()
        for name, p in tracked_parameters(model)
        if p.grad is not None
    }
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return grads


@torch.no_grad()
def shape_table(model: nn.Module, images: torch.Tensor, layers: Mapping[str, str]) -> str:
    """One batch of ``images`` (uint8 or float, on the CPU) through ``model`` in eval mode,
    and the shape of each submodule's output in ``layers`` (its name -> a label, in the
    order they run), a line each, with how the image's height and width change:
    ``# 32x32 => 16x16``. The model's weights, statistics and mode are left as they were."""
    x = images if images.is_floating_point() else to_float(images)
    x = x.to(next(model.parameters()).device)
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:  # None: output kept
            shapes.setdefault(name, tuple(out.shape))

        return hook

    modules = dict(model.named_modules())
    hooks = [modules[name].register_forward_hook(record(name)) for name in layers]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    width = max(len(label) for label in ["input", *layers.values()])
    lines, before = [f"{'input':{width}s}  {tuple(x.shape)}"], tuple(x.shape)
    for name, label in layers.items():
        shape = shapes[name]
        note = ""
        if len(shape) == 4 and len(before) == 4:
            note = f"# {before[2]}x{before[3]} => {shape[2]}x{shape[3]}"
        lines.append(f"{label:{width}s}  {str(shape):18s} {note}".rstrip())
        before = shape if len(shape) == 4 else before
    return "\n".join(lines)
