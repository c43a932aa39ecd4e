"""The anomaly detector: signals from the trained autoencoder and the image, on one scale.

1. **Reconstruction**: how badly the autoencoder rebuilds the image. The per-pixel
   squared error is pooled over the image by its ``"mean"`` (the classic score: every
   pixel counts, so small defects do too) or its ``"median"`` (robust: an error must
   spread over half the image to count, so an unfamiliar object at the border of an
   otherwise normal frame does not, while an image the autoencoder rebuilds slightly
   wrong everywhere does).
2. **Global content**: how unusual the image's overall make-up is. The first encoder
   stage's feature maps are summarised per channel by their 25 %, 50 % and 75 %
   quantiles over all positions (robust to what covers only part of the image), and the
   Mahalanobis distance of that summary from the training normals' distribution
   (Ledoit-Wolf covariance, fitted on the normals plus brightness/contrast-jittered
   copies, so that lighting changes alone do not look anomalous) is the score. It sees
   what reconstruction cannot: an image that is easy to rebuild but unlike any normal
   one, e.g. an empty, smooth or recoloured frame. With several autoencoders each one's
   distance is computed in its own feature space and the score is their geometric mean.
3. **Texture**: how much fine detail the image has. The local contrast (the standard
   deviation of the grey image in every full 3x3 window) is summarised by its 25 %, 50 %
   and 75 % quantiles, and their Mahalanobis distance from the training normals' (fitted
   the same way) is the score. It needs no training, so it does not vary with the
   autoencoders' random start, and it sees a frame that is smoother than any normal one
   (an empty bowl) or busier.

4. **Colour**: the image's colour make-up. Each colour channel's 25 %, 50 % and 75 %
   quantiles over all positions, and their Mahalanobis distance from the training
   normals' (fitted the same way). Like texture it needs no training, so it does not
   vary with the autoencoders' random start.
5. **Content**: the mean of the standardised global and colour signals: two views of
   the image's global make-up, one learned and one fixed, that count as one vote in the
   combined score (summing both would count global content twice). The learned view
   varies with the autoencoders' random start; the fixed one halves that variation.
6. **Local**: the worst place in the image. A fixed bank of local filters (the grey
   image normalised by its median and spread, differences of Gaussians at three scales,
   horizontal and vertical gradients, 3x3 local contrast) is applied to every image; at
   every pixel position each response is compared with the training normals' mean and
   standard deviation *at that position*, and the image's score is the largest mean
   squared deviation over positions (:func:`local_maps` gives the whole map). It sees a
   defect a few pixels wide that the image-wide statistics above average away, e.g. a
   crack or a hole in a textured surface, and needs no training.

With a :class:`~helpers.hw2.rotation.TransformationNet` trained on the normals, three
more signals are available, for natural images where reconstruction is weak:
``transformation`` (how unsure the network is which rotation was applied),
``features`` (distance to the nearest normals in its feature space, averaged over
rotated and mirrored views) and ``mahalanobis`` (distance from the normals' Gaussian in
that space, likewise).

Each signal is put on a common scale by :class:`Standardizer` (log, then centred and
scaled on the validation normals: "standard deviations above a typical normal image"),
and the combined score adds up what each signal says *above* typical:
``max(reconstruction, 0) + max(global, 0) + ...``. A signal far below typical is no evidence
of normality (an empty frame is rebuilt better than any normal one), so it must not
cancel the other signal's alarm.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from torch import nn
from torch.nn import functional as F

from ..core.augment import BatchAugment, to_float
from ..core.errors import ParameterError
from ..core.images import run_in_batches
from .autoencoder import ConvAutoencoder
from .rotation import (
    TransformationNet,
    check_transformations,
    fit_view_gaussians,
    knn_distance,
    mahalanobis_distance,
    transformation_scores,
)
from .thresholds import separation

POOLINGS = ("median", "mean")
SIGNALS = (
    "reconstruction",
    "global",
    "colour",
    "content",
    "texture",
    "local",
    "transformation",
    "features",
    "mahalanobis",
)
SCORES = (
    "reconstruction_mean",
    "reconstruction_median",
    "global",
    "colour",
    "content",
    "texture",
    "local",
    "transformation",
    "features",
    "mahalanobis",
    "combined",
)
SCORE_NAMES = {
    "reconstruction_mean": "reconstruction (mean error, the classic score)",
    "reconstruction_median": "reconstruction (median error)",
    "global": "global content (autoencoder feature statistics)",
    "colour": "colour (colour statistics)",
    "content": "content (mean of global and colour)",
    "texture": "texture (local contrast statistics)",
    "local": "local (worst place, per-position filter statistics)",
    "transformation": "transformation (unsure which rotation)",
    "features": "features (k-NN in the rotation network's features)",
    "mahalanobis": "mahalanobis (Gaussian of the rotation network's features)",
    "combined": "combined",
}
NEEDS_TRANSFORMATION_NET = ("transformation", "features", "mahalanobis")
FIXED_SIGNALS = ("texture", "local")  # fitted to the training normals without training a network
FEATURE_QUANTILES = (0.25, 0.5, 0.75)


@torch.no_grad()
def reconstruct(
    model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 512
) -> torch.Tensor:
    """Reconstructions (float [0, 1], on the CPU) of uint8 ``images``; ``model`` is moved to
    ``device``."""
    model.to(device).eval()
    out = run_in_batches(lambda x: model(x).float().cpu(), images, device, batch_size)
    return torch.cat(out) if out else torch.zeros(0, *images.shape[1:])


def error_maps(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """Per-pixel squared error, averaged over colour channels: (N, H, W)."""
    return (to_float(images) - reconstructions).pow(2).mean(1)


def ensemble_error_maps(
    models: Sequence[nn.Module], images: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """The mean over ``models`` of each one's per-pixel error maps: (N, H, W)."""
    maps = (error_maps(images, reconstruct(m, images, device)) for m in models)
    return functools.reduce(torch.add, maps) / len(models)


def pool_errors(maps: torch.Tensor, pooling: str = "median") -> np.ndarray:
    """One reconstruction score per image: the median (robust) or mean per-pixel error."""
    if pooling not in POOLINGS:
        raise ParameterError(
            f"pooling={pooling!r} is unknown; choose one of {', '.join(POOLINGS)}."
        )
    flat = maps.flatten(1)
    pooled = flat.median(1).values if pooling == "median" else flat.mean(1)
    return pooled.numpy()


def channel_quantiles(values: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(B, C, positions) -> (B, len(q) x C): each channel's quantiles ``q`` over positions,
    all channels' first quantile, then all channels' second, ..."""
    return torch.quantile(values, q, dim=2).permute(1, 0, 2).flatten(1)


def _prepare(
    augment: BatchAugment | None, generator: torch.Generator | None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """How a feature function readies a uint8 batch: ``augment`` drawing from ``generator``,
    or (no ``augment``) the plain float image."""
    if augment is None:
        return to_float
    if generator is None:
        raise ParameterError("an augmented feature pass needs a generator to draw from.")
    return lambda batch: augment(batch, generator)


@torch.no_grad()
def global_features(
    model: ConvAutoencoder,
    images: torch.Tensor,
    device: torch.device,
    augment: BatchAugment | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """Per image, the 25/50/75 % quantiles over positions of each channel of the
    autoencoder's first encoder stage (:meth:`~ConvAutoencoder.early_features`):
    (N, 3 x channels). ``model`` is moved to ``device``."""
    model.to(device).eval()
    q = torch.tensor(FEATURE_QUANTILES, device=device)
    out = run_in_batches(
        lambda x: channel_quantiles(model.early_features(x).float().flatten(2), q).cpu(),
        images,
        device,
        batch_size,
        _prepare(augment, generator),
    )
    if not out:
        return np.zeros((0, len(FEATURE_QUANTILES) * model.early_channels))
    return torch.cat(out).numpy()


@torch.no_grad()
def texture_features(
    images: torch.Tensor,
    device: torch.device,
    augment: BatchAugment | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """Per image, the 25/50/75 % quantiles of its local contrast: the standard deviation
    of the grey image in every full 3x3 window (no padding, so the frame's border adds
    no false edges): (N, 3)."""
    q = torch.tensor(FEATURE_QUANTILES, device=device)

    def quantiles(x: torch.Tensor) -> torch.Tensor:
        grey = x.float().mean(1, keepdim=True)
        mean = F.avg_pool2d(grey, 3, stride=1)
        contrast = (F.avg_pool2d(grey * grey, 3, stride=1) - mean * mean).clamp_min(0).sqrt()
        return torch.quantile(contrast.flatten(1), q, dim=1).T.cpu()

    out = run_in_batches(quantiles, images, device, batch_size, _prepare(augment, generator))
    return torch.cat(out).numpy() if out else np.zeros((0, len(FEATURE_QUANTILES)))


@torch.no_grad()
def colour_features(
    images: torch.Tensor,
    device: torch.device,
    augment: BatchAugment | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """Per image, the 25/50/75 % quantiles over positions of each colour channel:
    (N, 3 x channels)."""
    q = torch.tensor(FEATURE_QUANTILES, device=device)
    out = run_in_batches(
        lambda x: channel_quantiles(x.float().flatten(2), q).cpu(),
        images,
        device,
        batch_size,
        _prepare(augment, generator),
    )
    return (
        torch.cat(out).numpy() if out else np.zeros((0, len(FEATURE_QUANTILES) * images.shape[1]))
    )


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with mirrored borders (radius capped by the image's size)."""
    radius = max(1, min(int(3 * sigma), min(x.shape[-2:]) - 1))
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = F.pad(x, (radius,) * 4, mode="reflect")
    return F.conv2d(F.conv2d(x, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))


def filter_bank(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) float images -> (N, 7, H, W) local responses of the grey image: itself
    normalised by its median and median absolute deviation, differences of Gaussians
    (sigma 1-2, 2-4, 4-8), x and y gradients, and the standard deviation in 3x3 windows."""
    grey = images.float().mean(1, keepdim=True)
    flat = grey.flatten(1)
    median = flat.median(1, keepdim=True).values
    spread = (flat - median).abs().median(1, keepdim=True).values
    normalised = (grey - median[:, :, None, None]) / (spread[:, :, None, None] + 1e-3)
    blurred = {s: _blur(grey, s) for s in (1, 2, 4, 8)}
    dogs = [blurred[s] - blurred[2 * s] for s in (1, 2, 4)]
    dx = F.pad(grey[..., :, 1:] - grey[..., :, :-1], (0, 1, 0, 0), mode="replicate")
    dy = F.pad(grey[..., 1:, :] - grey[..., :-1, :], (0, 0, 0, 1), mode="replicate")
    mean = F.avg_pool2d(grey, 3, 1, 1, count_include_pad=False)
    contrast = (
        (F.avg_pool2d(grey * grey, 3, 1, 1, count_include_pad=False) - mean**2).clamp_min(0).sqrt()
    )
    return torch.cat([normalised, *dogs, dx, dy, contrast], 1)


@dataclass
class LocalModel:
    """Mean and standard deviation of every :func:`filter_bank` response at every pixel
    position over the training normals (a floor of a tenth of the filter's median
    deviation keeps a position where the normals never vary from dividing by ~0)."""

    mean: torch.Tensor  # (7, H, W)
    std: torch.Tensor

    @classmethod
    @torch.no_grad()
    def fit(cls, images: torch.Tensor, device: torch.device, batch_size: int = 512) -> LocalModel:
        def sums(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            r = filter_bank(x).double()
            return r.sum(0), (r * r).sum(0)

        parts = run_in_batches(sums, images, device, batch_size)
        total = functools.reduce(torch.add, [p[0] for p in parts])
        total_sq = functools.reduce(torch.add, [p[1] for p in parts])
        n = max(len(images), 1)
        mean = total / n
        std = (total_sq / n - mean**2).clamp_min(0).sqrt()
        floor = 0.1 * std.flatten(1).median(1).values.clamp_min(1e-6)
        return cls(mean.float(), torch.maximum(std, floor[:, None, None]).float())

    @torch.no_grad()
    def maps(
        self, images: torch.Tensor, device: torch.device, batch_size: int = 512
    ) -> torch.Tensor:
        """(N, H, W): at each position the mean squared standardised deviation of the responses."""
        out = run_in_batches(
            lambda x: ((filter_bank(x) - self.mean) / self.std).pow(2).mean(1).cpu(),
            images,
            device,
            batch_size,
        )
        return torch.cat(out) if out else torch.zeros(0, *self.mean.shape[1:])


FeatureFunction = Callable[..., np.ndarray]  # (images, device[, augment, generator]) -> (N, D)


def fit_normal_distribution(
    features: FeatureFunction,
    images: torch.Tensor,
    device: torch.device,
    augment: BatchAugment,
    copies: int,
    generator: torch.Generator,
) -> LedoitWolf:
    """Ledoit-Wolf Gaussian of ``features(images, device, augment, generator)`` over the
    images and ``copies`` augmented copies of them (so that lighting changes alone do
    not look anomalous), the copies drawn from ``generator``."""
    parts = [features(images, device)] + [
        features(images, device, augment, generator) for _ in range(copies)
    ]
    return LedoitWolf().fit(np.concatenate(parts))


@dataclass
class Standardizer:
    """``(log(score) - median) / std`` of the validation normals' log scores, so each
    signal reads as "standard deviations above a typical normal image"."""

    center: float = 0.0
    scale: float = 1.0

    @classmethod
    def fit(cls, normal_scores: np.ndarray) -> Standardizer:
        logs = np.log(np.maximum(np.asarray(normal_scores, dtype=np.float64), 1e-12))
        if len(logs) < 2:
            raise ParameterError(
                "at least two validation normals are needed to standardise the scores; "
                "raise val_fraction or add normal images."
            )
        return cls(float(np.median(logs)), float(max(logs.std(), 1e-6)))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return (
            np.log(np.maximum(np.asarray(scores, dtype=np.float64), 1e-12)) - self.center
        ) / self.scale


def check_signals(signals) -> tuple[str, ...]:
    """``signals`` as a tuple, or a clear error naming the valid ones."""
    if isinstance(signals, str) or not signals or any(s not in SIGNALS for s in signals):
        raise ParameterError(
            f"signals={signals!r} must be a non-empty list drawn from {', '.join(SIGNALS)}."
        )
    return tuple(signals)


def computed_scores(signals: Sequence[str]) -> tuple[str, ...]:
    """The scores (in :data:`SCORES` order) of a detector whose combined score sums ``signals``:
    the rotation network's three exist only when a signal needs that network (hw2 trains it
    then)."""
    with_net = bool(set(signals) & set(NEEDS_TRANSFORMATION_NET))
    return tuple(s for s in SCORES if with_net or s not in NEEDS_TRANSFORMATION_NET)


def check_score(score: str, signals: Sequence[str]) -> str:
    """``score`` itself when the detector computes it with ``signals``, else a clear error."""
    computed = computed_scores(signals)
    if score not in SCORES:
        raise ParameterError(f"score={score!r} is unknown; choose one of {', '.join(computed)}.")
    if score not in computed:
        raise ParameterError(
            f"score={score!r} is not computed with signals {tuple(signals)!r}: it needs the "
            "rotation network, trained only when signals hold 'transformation', 'features' "
            f"or 'mahalanobis'; add one of them to signals, or choose one of "
            f"{', '.join(computed)}."
        )
    return score


def score_name(signal: str, pooling: str) -> str:
    """The score a signal of the combined score stands for: itself, or for the
    reconstruction signal its score pooled by ``pooling`` (e.g. ``reconstruction_median``)."""
    return f"reconstruction_{pooling}" if signal == "reconstruction" else signal


def combine(*standardised: np.ndarray) -> np.ndarray:
    """The combined score: the sum of each standardised signal's excess above typical."""
    return sum(np.maximum(z, 0.0) for z in standardised)


NOT_FITTED = "the detector is not fitted yet: call fit(train_images, val_images) first."
Part = TypeVar("Part")


def _fitted(part: Part | None) -> Part:
    """A part of the detector that ``fit`` sets, or a clear error before ``fit`` has run."""
    if part is None:
        raise ParameterError(NOT_FITTED)
    return part


@dataclass
class Detector:
    """Scores images with the signals of trained autoencoders (and the images' colour and texture),
    standardised and summed.

    ``model`` is one autoencoder or several: their error maps are averaged, and so are
    (geometrically) their global-content distances, each measured in the member's own
    feature space (an ensemble steadies both signals; one Mahalanobis distance over the
    members' features side by side would weigh most the directions in which the members
    disagree, i.e. their random start). ``fit`` learns
    the normals' feature, colour and texture distributions from the training normals and the
    standardisation from the validation normals (never from test images).
    """

    model: ConvAutoencoder | Sequence[ConvAutoencoder]
    device: torch.device
    pooling: str = "median"  # of the reconstruction error in the combined score
    signals: tuple[str, ...] = ("reconstruction", "global")  # summed into the combined score
    transformation_net: TransformationNet | None = None
    transformations: list[tuple[int, int, int]] = field(default_factory=list)
    feature_jitter: float = 0.1
    jittered_copies: int = 2
    seed: int = 0
    covariances: list[LedoitWolf] = field(default_factory=list)  # one per autoencoder
    texture_covariance: LedoitWolf | None = None
    colour_covariance: LedoitWolf | None = None
    local_model: LocalModel | None = None
    reference_features: np.ndarray | None = None
    feature_gaussians: list[LedoitWolf] = field(default_factory=list)
    standardizers: dict[str, Standardizer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.members = [self.model] if isinstance(self.model, nn.Module) else list(self.model)
        if not self.members:
            raise ParameterError("the detector needs at least one trained autoencoder.")
        if self.pooling not in POOLINGS:
            raise ParameterError(
                f"error_pooling={self.pooling!r} is unknown; choose one of {', '.join(POOLINGS)}."
            )
        check_signals(self.signals)
        if self.transformation_net is None and set(self.signals) & set(NEEDS_TRANSFORMATION_NET):
            raise ParameterError(
                f"signals {list(self.signals)} need the transformation network; train it "
                "first (hw2.train_transformation_net) or drop 'transformation', 'features' "
                "and 'mahalanobis'."
            )
        if self.transformation_net is not None:
            check_transformations(self.transformation_net, self.transformations)

    def fit(self, train_images: torch.Tensor, val_images: torch.Tensor) -> Detector:
        shared = self._generator()  # the members' jittered copies draw from it in turn
        self.covariances = [
            self._normals(functools.partial(global_features, member), train_images, shared)
            for member in self.members
        ]
        self.texture_covariance = self._normals(texture_features, train_images)
        self.colour_covariance = self._normals(colour_features, train_images)
        self.local_model = LocalModel.fit(train_images, self.device)
        if self.transformation_net is not None:
            _, self.reference_features = transformation_scores(
                self.transformation_net, train_images, self.device, self.transformations
            )
            self.feature_gaussians = fit_view_gaussians(self.reference_features)
        raw = self.raw_scores(val_images)
        self.standardizers = {name: Standardizer.fit(values) for name, values in raw.items()}
        return self

    def global_distance(self, images: torch.Tensor) -> np.ndarray:
        """The geometric mean over the autoencoders of each one's Mahalanobis distance of
        the images' :func:`global_features` from the training normals'."""
        distances = [
            covariance.mahalanobis(global_features(member, images, self.device))
            for member, covariance in zip(self.members, self.covariances, strict=True)
        ]
        logs = [np.log(np.maximum(d, 1e-12)) for d in distances]
        return np.exp(np.mean(logs, axis=0))

    def raw_scores(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """Each signal on its own scale (reconstruction error, Mahalanobis distances)."""
        if not self.covariances:
            raise ParameterError(NOT_FITTED)
        maps = ensemble_error_maps(self.members, images, self.device)
        raw = {
            "reconstruction_mean": pool_errors(maps, "mean"),
            "reconstruction_median": pool_errors(maps, "median"),
            "global": self.global_distance(images),
            "colour": _fitted(self.colour_covariance).mahalanobis(
                colour_features(images, self.device)
            ),
            **self.fixed_raw_scores(images),
        }
        if self.transformation_net is not None:
            unsure, features = transformation_scores(
                self.transformation_net, images, self.device, self.transformations
            )
            raw["transformation"] = unsure
            raw["features"] = knn_distance(features, _fitted(self.reference_features))
            raw["mahalanobis"] = mahalanobis_distance(features, self.feature_gaussians)
        return raw

    def scene_gaps(self, train_images: torch.Tensor, val_images: torch.Tensor) -> dict[str, float]:
        """For each of the :data:`FIXED_SIGNALS`, the AUROC of the validation normals against
        training normals its statistics did not see: fitted on half of the training images
        (a seeded draw), scored on the other half. Near 0.5 when held-out scenes look as
        normal as the training scenes; near 1 when the statistics learnt the training scenes."""
        order = torch.randperm(
            len(train_images), generator=torch.Generator().manual_seed(self.seed)
        )
        fit_half, other_half = train_images[order[::2]], train_images[order[1::2]]
        texture = self._normals(texture_features, fit_half)
        local = LocalModel.fit(fit_half, self.device)
        scorers = {
            "texture": lambda x: texture.mahalanobis(texture_features(x, self.device)),
            "local": lambda x: local.maps(x, self.device).flatten(1).amax(1).numpy(),
        }
        return {
            name: separation(score(other_half), score(val_images))
            for name, score in scorers.items()
        }

    def fixed_raw_scores(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """The :data:`FIXED_SIGNALS` on their own scale (no autoencoder is run)."""
        return {
            "texture": _fitted(self.texture_covariance).mahalanobis(
                texture_features(images, self.device)
            ),
            "local": self.local_maps(images).flatten(1).amax(1).numpy(),
        }

    def local_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Where each image departs from the training normals: the local signal's map, (N, H, W)."""
        return _fitted(self.local_model).maps(images, self.device)

    def scores(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """Every signal standardised, and ``combined`` (:func:`combine`) of ``signals``
        (the reconstruction score with ``pooling``)."""
        raw = self.raw_scores(images)
        out = {name: self.standardizers[name](values) for name, values in raw.items()}
        out["content"] = (out["global"] + out["colour"]) / 2
        return self.recombine(out)

    def recombine(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``scores`` with ``combined`` (re)computed from the standardised scores of ``signals``."""
        scores["combined"] = combine(*(scores[self.score_name(signal)] for signal in self.signals))
        return scores

    def score_name(self, signal: str) -> str:
        """The score a signal stands for (reconstruction: with this detector's pooling)."""
        return score_name(signal, self.pooling)

    def _generator(self) -> torch.Generator:
        """A generator on the device, seeded with ``seed``: the jittered copies' draws."""
        return torch.Generator(device=self.device).manual_seed(self.seed)

    def _normals(
        self,
        features: FeatureFunction,
        images: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> LedoitWolf:
        """:func:`fit_normal_distribution` of ``features`` over ``images`` and
        ``jittered_copies`` brightness/contrast-jittered, mirrored copies, drawn from
        ``generator`` (by default a fresh one seeded with ``seed``)."""
        jitter = BatchAugment(crop_pad=0, flip=True, jitter=self.feature_jitter)
        generator = self._generator() if generator is None else generator
        return fit_normal_distribution(
            features, images, self.device, jitter, self.jittered_copies, generator
        )
