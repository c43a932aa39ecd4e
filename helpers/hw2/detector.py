"""The anomaly detector: the signals of :mod:`helpers.hw2.signals`, from the trained
autoencoders and the image, fitted to the normal images and put on one scale.

Each signal is put on a common scale by :class:`Standardizer` (log, then centred and
scaled on the validation normals: "standard deviations above a typical normal image"),
and the combined score adds up what each signal says *above* typical:
``max(reconstruction, 0) + max(global, 0) + ...``. A signal far below typical is no evidence
of normality (an empty frame is rebuilt better than any normal one), so it must not
cancel the other signal's alarm.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from torch import nn

from ..core.augment import BatchAugment
from ..core.errors import ParameterError
from .autoencoder import ConvAutoencoder
from .defects import DefectNet, top_mean
from .rotation import (
    TransformationNet,
    check_transformations,
    fit_view_gaussians,
    knn_distance,
    mahalanobis_distance,
    transformation_scores,
)
from .signals import (
    POOLINGS,
    FeatureFunction,
    LocalModel,
    colour_features,
    ensemble_error_maps,
    fit_normal_distribution,
    global_features,
    pool_errors,
    texture_features,
)
from .thresholds import separation

SIGNALS = (
    "reconstruction",
    "global",
    "colour",
    "content",
    "texture",
    "local",
    "defects",
    "transformation",
    "features",
    "mahalanobis",
)
# every score a detector reports: the reconstruction signal pooled both ways, the others
# as they are, and their combination
SCORES = (
    "reconstruction_mean",
    "reconstruction_median",
    *(signal for signal in SIGNALS if signal != "reconstruction"),
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
    "defects": "defects (U-Net trained on synthetic defects, top 1 % of its map)",
    "transformation": "transformation (unsure which rotation)",
    "features": "features (k-NN in the rotation network's features)",
    "mahalanobis": "mahalanobis (Gaussian of the rotation network's features)",
    "combined": "combined",
}
NEEDS_TRANSFORMATION_NET = ("transformation", "features", "mahalanobis")
NEEDS_DEFECT_NET = ("defects",)
FIXED_SIGNALS = ("texture", "local")  # fitted to the training normals without training a network


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
    the rotation network's three and the defect network's one exist only when a signal
    needs that network (hw2 trains it then)."""
    with_net = bool(set(signals) & set(NEEDS_TRANSFORMATION_NET))
    with_defects = bool(set(signals) & set(NEEDS_DEFECT_NET))
    return tuple(
        s
        for s in SCORES
        if (with_net or s not in NEEDS_TRANSFORMATION_NET)
        and (with_defects or s not in NEEDS_DEFECT_NET)
    )


def check_score(score: str, signals: Sequence[str]) -> str:
    """``score`` itself when the detector computes it with ``signals``, else a clear error."""
    computed = computed_scores(signals)
    if score in NEEDS_DEFECT_NET and score not in computed:
        raise ParameterError(
            f"score={score!r} needs the defect network, trained only when signals hold "
            f"'defects'; add it to signals, or choose one of {', '.join(computed)}."
        )
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
    defect_net: DefectNet | None = None
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
        if self.defect_net is None and set(self.signals) & set(NEEDS_DEFECT_NET):
            raise ParameterError(
                "signal 'defects' needs the defect network; train it first "
                "(hw2.train_defect_net) or drop 'defects' from signals."
            )

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
        if self.defect_net is not None:
            raw["defects"] = top_mean(self.defect_maps(images))
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

    def defect_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Where the defect network sees a defect: each pixel's probability, (N, H, W)."""
        return _fitted(self.defect_net).maps(images, self.device)

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
