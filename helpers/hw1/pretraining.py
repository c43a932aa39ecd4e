"""hw1's pretraining steps: the encoder learns without labels, on every training image
(restoration of hidden patches, or contrastive), is saved and reused across runs, and
initialises the classifier; a kNN probe says what its features already know."""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.augment import BatchAugment, SameEveryEpoch, to_float
from ..core.runs import fingerprint
from ..core.trainer import FitConfig
from ..core.training import fit
from .contrastive import ContrastiveNet, ContrastiveObjective
from .feature_quality import encoder_features, knn_accuracy
from .masking import random_patch_mask
from .resnet import ResNetClassifier, match_init_norms
from .restoration import (
    MaskedRestoration,
    RestorationNet,
    load_encoder,
    load_restoration_net,
    restoration_recipe,
    save_encoder,
    shown_restoration,
)
from .settings import Hw1Settings
from .steps import Hw1Data


def pretrained_path(s: Hw1Settings, data: Hw1Data) -> Path:
    """Where the pretrained encoder for these settings and images lives: its name holds every
    setting pretraining uses (method, network, epochs, batch size, precision, images)."""
    method = f"restoration-{s.restoration}" if s.pretrain == "restoration" else s.pretrain
    key = (
        f"{method}-{s.arch}-w{s.width}-e{s.pretrain_epochs}-b{pretraining_batch_size(s)}-{s.precision}"
        f"-{fingerprint(data.pool.images)}"
    )
    return Path(s.pretrain_dir) / f"encoder-{key.replace('+', 'plus-')}.pt"


def pretraining_batch_size(s: Hw1Settings) -> int:
    """The batch size of pretraining: 256 for contrastive pretraining whatever ``batch_size``
    says, ``batch_size`` for restoration."""
    return 256 if s.pretrain == "contrastive" else s.batch_size


def pretraining_setup(s: Hw1Settings):
    """The network, objective, training configuration and augmentation of ``s.pretrain``."""
    contrastive = s.pretrain == "contrastive"
    config = FitConfig(
        epochs=s.pretrain_epochs,
        batch_size=pretraining_batch_size(s),
        lr=2e-3,
        optimizer="adamw",
        weight_decay=1e-4,
        seed=0,
        track_gradients=False,
        precision=s.precision,
    )
    if contrastive:  # the objective draws the two views of each uint8 batch itself
        return (
            ContrastiveNet(s.arch, s.width),
            ContrastiveObjective(temperature=0.2),
            config,
            SameEveryEpoch(lambda x, g: x),
        )
    recipe = restoration_recipe(s.restoration)
    return (
        RestorationNet(s.arch, s.width, recipe),
        MaskedRestoration(recipe),
        config,
        BatchAugment(crop_pad=4, flip=True),
    )


def pretrain_encoder(s: Hw1Settings, data: Hw1Data, device: torch.device) -> Path:
    """Pretrain the encoder without labels on every training image (``s.pretrain``:
    restoring hidden patches, or contrastive) and save it; a matching checkpoint is
    reused, not redone.

    Pretraining always uses seed 0, so runs with different seeds (which vary the
    labelled subset and the fine-tuning) share one pretrained encoder.
    """
    path = pretrained_path(s, data)
    if path.exists():
        print(f"reusing the pretrained encoder {path}")
        return path
    torch.manual_seed(0)
    net, objective, config, augment = pretraining_setup(s)
    result = fit(net, data.pool, None, objective, config, device, augment=augment)
    meta = {
        "method": s.pretrain,
        "epochs": s.pretrain_epochs,
        "images": len(data.pool),
        "seconds": round(result.seconds, 1),
        "final_loss": result.history[-1]["train_loss"],
        "history": result.history,
    }
    if s.pretrain == "restoration":
        meta["restoration"] = s.restoration
    save_encoder(net, path, meta)
    print(f"saved the pretrained encoder to {path} ({result.seconds / 60:.1f} min)")
    return path


def apply_pretraining(
    s: Hw1Settings, model: ResNetClassifier, data: Hw1Data, device: torch.device
) -> Path | None:
    """Initialise ``model``'s encoder as ``s.pretrain`` says; returns the checkpoint used."""
    if s.pretrain == "none":
        return None
    path = (
        pretrain_encoder(s, data, device)
        if s.pretrain in ("restoration", "contrastive")
        else Path(s.pretrain)
    )
    load_encoder(model, path)
    if s.match_init_norm:
        factors = match_init_norms(model.encoder)
        print(
            f"rescaled the pretrained convolutions to a fresh encoder's norms (they were "
            f"{min(factors):.2f}x to {max(factors):.2f}x as large)"
        )
    return path


def feature_quality(
    model: ResNetClassifier, data: Hw1Data, device: torch.device, precision: str = "auto"
) -> float:
    """kNN accuracy (cosine, k=20) of the encoder's pooled features: the labelled
    training images vote for each test image's class. Measures what the encoder
    knows before any fine-tuning (a random encoder scores well above chance too)."""
    bank = encoder_features(model.encoder, data.train.images, device, precision=precision)
    assert data.test is not None, "load_data(with_test=True) reads the test set"
    query = encoder_features(model.encoder, data.test.images, device, precision=precision)
    return knn_accuracy(bank, data.train.labels, query, data.test.labels, len(data.train.classes))


def restoration_examples(path: Path, data: Hw1Data, n: int = 8):
    """Inputs as the network saw them (hidden patches grey), restorations (hidden patches
    filled in) and originals of ``n`` test images, for a figure."""
    net = load_restoration_net(path).eval()
    assert data.test is not None, "load_data(with_test=True) reads the test set"
    clean = to_float(data.test.images[:n])
    patch = net.recipe.patch
    mask = random_patch_mask(
        n, (32 // patch, 32 // patch), net.recipe.mask_ratio, torch.Generator().manual_seed(0)
    )
    seen, restored = shown_restoration(net, clean, mask)
    return seen, restored, clean
