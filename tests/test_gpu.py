"""The CUDA path: skipped where PyTorch sees no GPU (CI, laptops); run on a GPU machine
(Colab: `!pytest tests/test_gpu.py`) before a change to device handling lands.

Each evaluation helper is handed a model that still lives on the CPU, as the notebooks
do between building a model and training it: the helper must move it, not fail with
"Input type (torch.cuda...) and weight type (torch.FloatTensor) should be the same"."""

import pytest
import torch

from helpers.core.augment import BatchAugment
from helpers.core.inference import gradient_snapshot, predict_proba
from helpers.core.objectives import Classification
from helpers.core.trainer import FitConfig
from helpers.core.training import fit
from helpers.data.cifar import load_cifar10, split_train_val
from helpers.hw1.feature_quality import encoder_features
from helpers.hw1.resnet import build_classifier
from helpers.hw2.autoencoder import ConvAutoencoder
from helpers.hw2.rotation import TransformationNet, transformation_list, transformation_scores
from helpers.hw2.signals import global_features, reconstruct

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def test_evaluation_helpers_move_a_cpu_model_to_the_gpu(cifar_dir):
    train, _ = load_cifar10(cifar_dir)
    model = build_classifier("resnet18", width=8)
    features = encoder_features(model.encoder, train.images[:16], CUDA, precision="bf16")
    assert (
        features.shape == (16, 64) and features.device.type == "cpu" and features.isfinite().all()
    )
    probs = predict_proba(
        build_classifier("resnet18", width=8), train.images[:16], CUDA, flip_tta=True, shift_tta=2
    )
    assert probs.shape == (16, 10) and torch.allclose(probs.sum(1), torch.ones(16), atol=1e-3)
    grads = gradient_snapshot(
        build_classifier("resnet18", width=8), train, Classification(10), CUDA, batch_size=8
    )
    assert len(grads) == 21


def test_anomaly_scoring_moves_a_cpu_model_to_the_gpu():
    images = torch.randint(0, 256, (6, 3, 32, 48), dtype=torch.uint8)
    model = ConvAutoencoder(channels=[8, 16], latent=4)
    restored = reconstruct(model, images, CUDA)
    assert restored.shape == (6, 3, 32, 48) and restored.device.type == "cpu"
    assert global_features(ConvAutoencoder(channels=[8, 16], latent=4), images, CUDA).shape == (
        6,
        3 * 8,
    )
    transformations = transformation_list(32, 48, shifts=False)
    net = TransformationNet(len(transformations), width=4)
    nll, features = transformation_scores(net, images, CUDA, transformations)
    assert nll.shape == (6,) and features.shape == (
        6,
        2 * len(transformations),
        net.encoder.out_channels,
    )


@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_training_on_the_gpu_lowers_the_loss(cifar_dir, tmp_path, precision):
    """fp16 is the branch with a gradient scaler (T4-class GPUs); bf16 is "auto" on Ampere and
    later."""
    train, _ = load_cifar10(cifar_dir)
    train, val = split_train_val(train, 0.25, seed=0)
    torch.manual_seed(0)
    model = build_classifier("resnet18", width=8)
    config = FitConfig(
        epochs=4, batch_size=30, lr=0.05, seed=0, precision=precision, progress=False
    )
    result = fit(
        model,
        train,
        val,
        Classification(10),
        config,
        CUDA,
        augment=BatchAugment(crop_pad=2),
        checkpoint_dir=tmp_path / "ckpt",
    )
    losses = [h["train_loss"] for h in result.history]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < 0.8 * losses[0]
    assert next(model.parameters()).device.type == "cuda"
