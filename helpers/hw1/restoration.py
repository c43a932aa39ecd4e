"""Self-supervised pretraining of the ResNet encoder by image restoration.

The classifier's encoder plus a light decoder learn to restore the patches a random mask
hides (no labels are used). How they are hidden and scored is a :class:`RestorationRecipe`:
the homework's first pretext ("dense": grey 4x4 patches plus noise through dense
convolutions, every pixel scored) or the fixes that masked image modelling for
convolutional networks found (SparK, MAE; "spark": 8x8 patches, hidden positions kept
empty after every stage, only hidden patches scored, against per-patch normalised targets).
The encoder is saved on its own, with its arch and width, and loaded into a classifier
before fine-tuning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..core.checkpoints import load_checked
from ..core.errors import CheckpointError, ParameterError
from ..core.metrics import LossMeter
from ..core.runs import save_torch
from .masking import mask_to, masked_patch_loss, patchify, random_patch_mask, unpatchify
from .resnet import CIFAR10_MEAN, CIFAR10_STD, Normalize, ResNetClassifier, ResNetEncoder


@dataclass(frozen=True)
class RestorationRecipe:
    """How the restoration pretext hides and scores the image (see ``RESTORATION_RECIPES``)."""

    patch: int = 8  # side of a hidden square; 8 = the encoder's total stride on 32x32 images
    mask_ratio: float = 0.6
    noise_std: float = 0.0  # Gaussian noise added to the whole input (the first recipe: 0.1)
    sparse: bool = True  # zero hidden positions and re-zero them after every stage (else grey them)
    masked_loss: bool = True  # score hidden patches only (else every pixel)
    normalised_targets: bool = True  # predict each patch minus its mean, over its std (MAE)


# "dense" is the homework's first pretext; each later recipe adds one of the fixes of the
# masked-image-modelling work for convolutional networks (SparK, MAE), up to "spark".
RESTORATION_RECIPES: dict[str, RestorationRecipe] = {
    "dense": RestorationRecipe(
        patch=4,
        mask_ratio=0.5,
        noise_std=0.1,
        sparse=False,
        masked_loss=False,
        normalised_targets=False,
    ),
    "+patch8": RestorationRecipe(sparse=False, masked_loss=False, normalised_targets=False),
    "+sparse": RestorationRecipe(masked_loss=False, normalised_targets=False),
    "+masked-loss": RestorationRecipe(normalised_targets=False),
    "spark": RestorationRecipe(),
}


def restoration_recipe(name: str) -> RestorationRecipe:
    if name not in RESTORATION_RECIPES:
        raise ParameterError(
            f"restoration={name!r} is unknown; choose one of {', '.join(RESTORATION_RECIPES)}."
        )
    return RESTORATION_RECIPES[name]


class RestorationNet(nn.Module):
    """The classifier's encoder and a light upsampling decoder back to the image.

    ``forward(x, mask)`` restores the images ``x`` (float, [0, 1]) whose patches ``mask``
    (``(n, 1, gh, gw)``, True = hidden) the network does not see. With a sparse recipe the
    hidden positions are zero (the normalised mean) at the input and after every stage,
    as if the convolutions skipped them, and the decoder sees a learnt mask token there.
    """

    def __init__(
        self, arch: str, width: int, recipe: RestorationRecipe = RestorationRecipe()
    ) -> None:
        super().__init__()
        self.recipe = recipe
        self.normalize = Normalize(CIFAR10_MEAN, CIFAR10_STD)
        self.encoder = ResNetEncoder(arch, width)
        channels = self.encoder.out_channels
        self.mask_token = nn.Parameter(torch.zeros(1, channels, 1, 1))
        # The decoder works at the encoder's 4x4 resolution: two 3x3 convolutions carry
        # context from visible cells into hidden ones, then a 1x1 convolution predicts each
        # cell's 8x8 pixels (pixel shuffle), as SimMIM's light head; cheap next to the encoder.
        scale = 8  # the encoder's total stride on 32x32 images
        layers = []
        for _ in range(2):
            layers += [
                nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.Conv2d(channels, 3 * scale * scale, 1), nn.PixelShuffle(scale)]
        if not recipe.normalised_targets:
            layers += [nn.Sigmoid()]  # pixels in [0, 1]
        self.decoder = nn.Sequential(*layers)

    def hide(
        self, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The network's input: normalised images with the hidden patches removed."""
        hidden = mask_to(mask, x.shape[-2:])
        if self.recipe.sparse:
            return self.normalize(x).masked_fill(hidden, 0.0)
        grey = torch.where(hidden, torch.full_like(x, 0.5), x)
        if self.recipe.noise_std > 0:
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            grey = (grey + self.recipe.noise_std * noise).clamp(0.0, 1.0)
        return self.normalize(grey)

    def encode(self, hidden_input: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        if not self.recipe.sparse:
            return enc(hidden_input)
        h = hidden_input
        for stage in (enc.stem, enc.layer1, enc.layer2, enc.layer3, enc.layer4):
            h = stage(h)
            h = h.masked_fill(mask_to(mask, h.shape[-2:]), 0.0)
        return torch.where(mask_to(mask, h.shape[-2:]), self.mask_token.to(h.dtype), h)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.decoder(self.encode(self.hide(x, mask, generator), mask))


class MaskedRestoration:
    """The restoration objective for :func:`helpers.core.training.fit`: hide patches of each
    batch, restore them, score as the recipe says."""

    monitor, maximize, window = "val_loss", False, 1

    def __init__(self, recipe: RestorationRecipe) -> None:
        self.recipe = recipe

    def loss(
        self, model: RestorationNet, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ):
        r = self.recipe
        mask = random_patch_mask(
            len(x),
            (x.shape[-2] // r.patch, x.shape[-1] // r.patch),
            r.mask_ratio,
            generator,
            x.device,
        )
        output = model(x, mask, generator)
        return masked_patch_loss(
            output, x, mask, r.patch, r.normalised_targets, r.masked_loss
        ), output

    def meter(self, device: torch.device) -> LossMeter:
        return LossMeter(device)


def shown_restoration(
    net: RestorationNet, x: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """What to draw: the input as the network saw it (hidden patches grey) and the image
    with its hidden patches replaced by the restoration. A network that predicts
    normalised patches is shown with each patch's true mean and spread put back, as
    the MAE figures do."""
    r = net.recipe
    hidden = mask_to(mask, x.shape[-2:])
    seen = x.masked_fill(hidden, 0.5)
    with torch.no_grad():
        output = net(x, mask).float()
    if r.normalised_targets:
        rows = patchify(x, r.patch)
        mean, std = rows.mean(-1, keepdim=True), rows.std(-1, unbiased=False, keepdim=True)
        pixels = patchify(output, r.patch) * std + mean
        output = unpatchify(pixels, r.patch, x.shape)
    return seen, torch.where(hidden, output.clamp(0, 1), x)


def save_encoder(net: RestorationNet, path: str | Path, meta: dict) -> Path:
    """Save the encoder's weights with its arch, width and how it was pretrained (the
    decoder is kept too, so the restorations can be shown again later)."""
    state = {
        "arch": net.encoder.arch,
        "width": net.encoder.width,
        "encoder": net.encoder.state_dict(),
        "meta": meta,
    }
    if isinstance(net, RestorationNet):
        state.update(
            decoder=net.decoder.state_dict(),
            mask_token=net.mask_token.detach(),
            recipe=asdict(net.recipe),
        )
    return save_torch(path, state)


def load_restoration_net(path: str | Path) -> RestorationNet:
    """The whole encoder-decoder saved by :func:`save_encoder`."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "decoder" not in state:
        raise CheckpointError(
            f"{path} holds an encoder without a restoration decoder "
            "(e.g. a contrastive one): there are no restorations to show."
        )
    net = RestorationNet(
        state["arch"], state["width"], RestorationRecipe(**state.get("recipe", {}))
    )
    net.encoder.load_state_dict(state["encoder"])
    net.decoder.load_state_dict(state["decoder"])
    if "mask_token" in state:
        net.mask_token.data.copy_(state["mask_token"])
    return net


def load_encoder(classifier: ResNetClassifier, path: str | Path) -> dict:
    """Load a pretrained encoder into ``classifier``; returns the checkpoint's ``meta``.

    A checkpoint of another arch or width is refused with a clear error.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"encoder checkpoint {path} does not exist; use pretrain='restoration' "
            "to make one, or give the path of an existing one."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        arch, width, weights = state["arch"], state["width"], state["encoder"]
    except Exception as exc:  # not a file we wrote
        raise CheckpointError(
            f"{path} is not an encoder checkpoint ({type(exc).__name__}: {exc})."
        ) from None
    enc = classifier.encoder
    if (arch, width) != (enc.arch, enc.width):
        raise CheckpointError(
            f"encoder checkpoint {path} is for {arch}, width {width}, but the classifier is "
            f"{enc.arch}, width {enc.width}: set arch={arch!r}, width={width}, or pretrain again."
        )
    load_checked(enc, weights, path, f"{arch}, width {width}")
    return state.get("meta", {})
