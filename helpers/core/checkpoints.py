"""Loading weights with a clear error when the checkpoint is for another model."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError


def describe(model: nn.Module) -> str:
    """'resnet34, width 64' for our ResNets, else the class name."""
    encoder = getattr(model, "encoder", model)
    if hasattr(encoder, "arch"):
        return f"{encoder.arch}, width {encoder.width}"
    return type(model).__name__


def load_checked(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    source: str | Path,
    trained_as: str | None = None,
) -> None:
    """``model.load_state_dict(state)`` after checking every name and shape.

    A mismatch raises :class:`CheckpointError` naming the checkpoint, what it was
    trained as (when known) and the first differences, never a partial load.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    reshaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or extra or reshaped:
        details = []
        if reshaped:
            details.append(f"{len(reshaped)} tensor(s) of another shape, e.g. {reshaped[0]}")
        if missing:
            details.append(f"{len(missing)} missing, e.g. {missing[0]}")
        if extra:
            details.append(f"{len(extra)} unexpected, e.g. {extra[0]}")
        was = f" (trained as {trained_as})" if trained_as else ""
        raise CheckpointError(
            f"checkpoint {source}{was} does not fit this model ({describe(model)}): "
            f"{'; '.join(details)}. Use the arch and width it was trained with, "
            "or a checkpoint made for this model."
        )
    model.load_state_dict(state)
