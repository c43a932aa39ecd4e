"""The anomaly homework's convolutional autoencoder.

Encoder: strided conv stages that halve the image each time; bottleneck: a 1x1 conv to
a few channels, gated by a channel-attention mask (squeeze-and-excitation: each channel
is scaled by a weight in (0, 1) computed from the whole image); decoder: the mirror
image with nearest-neighbour upsampling. The output is a [0, 1] image.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.errors import ParameterError
from ..core.images import run_in_batches
from ..core.inference import shape_table


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation mask: ``x * sigmoid(MLP(mean over pixels of x))``."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x.mean((2, 3)))[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask(x)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.1, inplace=True),
    )


class ConvAutoencoder(nn.Module):
    """``len(channels)`` downsampling stages, a masked bottleneck of ``latent`` channels."""

    def __init__(
        self, channels: tuple[int, ...] = (32, 64, 128), latent: int = 16, in_channels: int = 3
    ) -> None:
        super().__init__()
        if not channels or any(c < 1 for c in channels) or latent < 1:
            raise ParameterError(
                f"autoencoder channels={channels!r}, latent={latent!r} must be positive."
            )
        self.factor = 2 ** len(channels)
        self.early_channels = channels[0]  # of early_features
        layers: list[nn.Module] = []
        cin = in_channels
        for c in channels:
            layers += [_conv(cin, c, stride=2), _conv(c, c)]
            cin = c
        self.encoder = nn.Sequential(*layers)
        self.bottleneck = nn.Conv2d(cin, latent, 1)
        self.attention = ChannelAttention(latent)
        layers, cin = [nn.Conv2d(latent, channels[-1], 1)], channels[-1]
        for c in reversed(channels):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, c), _conv(c, c)]
            cin = c
        layers += [nn.Conv2d(cin, in_channels, 3, 1, 1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)

    def stages(self) -> dict[str, str]:
        """The submodules whose outputs show the shapes along the way (name -> label): each
        encoder stage, the bottleneck and its mask, each decoder stage, the output."""
        stages = len(self.encoder) // 2  # two convolutions a stage
        names = {f"encoder.{2 * k + 1}": f"encoder stage {k + 1} (stride 2)" for k in range(stages)}
        names["bottleneck"] = "bottleneck: 1x1 conv"
        names["attention"] = "x channel-attention mask"
        # the decoder: a 1x1 conv, then per stage an upsampling and two convolutions
        names |= {f"decoder.{3 * k + 3}": f"decoder stage {k + 1} (x2)" for k in range(stages)}
        names["decoder"] = "output: 3x3 conv, sigmoid"
        return names

    @torch.no_grad()
    def attention_mask(self, x: torch.Tensor) -> torch.Tensor:
        """The channel-attention mask of each image: (N, latent), each weight in (0, 1)."""
        return self.attention.mask(self.bottleneck(self.encoder(x))).flatten(1)

    def early_features(self, x: torch.Tensor) -> torch.Tensor:
        """The first encoder stage's feature maps, ``early_channels`` of them at half the
        image's height and width: what the detector's global-content signal summarises."""
        return self.encoder[:2](x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(self.bottleneck(self.encoder(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ParameterError(
                f"image size {h}x{w} must be divisible by {self.factor} for this autoencoder; "
                f"choose image_size as multiples of {self.factor}, e.g. (32, 48)."
            )
        return self.decoder(self.encode(x))


def stage_shapes(model: ConvAutoencoder, images: torch.Tensor) -> str:
    """One batch of ``images`` through ``model`` (eval mode, nothing changed) and the shape
    after each of its stages (:meth:`ConvAutoencoder.stages`), a line each."""
    return shape_table(model, images, model.stages())


def attention_masks(model: ConvAutoencoder, images: torch.Tensor) -> torch.Tensor:
    """The channel-attention mask of each of ``images`` (uint8, on the CPU): (N, latent), on
    the CPU; ``model`` runs in eval mode and is left as it was."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        masks = run_in_batches(lambda x: model.attention_mask(x).cpu(), images, device, 512)
    finally:
        model.train(was_training)
    return torch.cat(masks)
