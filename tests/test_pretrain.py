import pytest
import torch

from helpers import hw1
from helpers.config import resolve_hw1
from helpers.errors import CheckpointError, ParameterError
from helpers.models import build_classifier
from helpers.pretrain import RestorationNet, corrupt, load_encoder, save_encoder

CPU = torch.device("cpu")


def test_corruption_masks_about_the_asked_share_of_patches():
    x = torch.rand(64, 3, 32, 32) * 0.4  # never exactly grey
    out = corrupt(x, torch.Generator().manual_seed(0), mask_ratio=0.5, patch=4, noise_std=0.0)
    masked = (out == 0.5).all(1)  # (N, H, W): grey in every channel
    assert 0.45 < masked.float().mean() < 0.55
    assert torch.equal(out[~masked[:, None].expand_as(out)], x[~masked[:, None].expand_as(x)])
    patches = masked.view(64, 8, 4, 8, 4)
    assert (patches.all((2, 4)) | ~patches.any((2, 4))).all()  # whole 4x4 squares only


def test_noise_is_added_and_clamped():
    x = torch.full((4, 3, 8, 8), 0.99)
    out = corrupt(x, torch.Generator().manual_seed(1), mask_ratio=0.0, noise_std=0.2)
    assert not torch.equal(out, x) and out.max() <= 1.0 and out.min() >= 0.0


def test_encoder_round_trip_and_mismatch_errors(tmp_path):
    net = RestorationNet("resnet18", 8)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    path = save_encoder(net, tmp_path / "enc.pt", {"epochs": 1})
    classifier = build_classifier("resnet18", 8)
    assert load_encoder(classifier, path) == {"epochs": 1}
    for a, b in zip(classifier.encoder.state_dict().values(), net.encoder.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError, match="is for resnet18, width 8, but the classifier is resnet18, width 16"):
        load_encoder(build_classifier("resnet18", 16), path)
    with pytest.raises(CheckpointError, match="resnet34, width 8"):
        load_encoder(build_classifier("resnet34", 8), path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder(classifier, tmp_path / "missing.pt")


def settings(cifar_dir, tmp_path, **change):
    params = dict(data_dir=str(cifar_dir), download=False, fraction=0.5, epochs=2, arch="resnet18",
                  width=8, batch_size=30, seed=0, device="cpu", figures_dir=str(tmp_path / "f"),
                  results_dir=str(tmp_path / "r"), pretrain="restoration", pretrain_epochs=2,
                  pretrain_dir=str(tmp_path / "pre"))
    params.update(change)
    return resolve_hw1("cpu", **params)


def test_pretrain_then_finetune_and_reuse(cifar_dir, tmp_path):
    s = settings(cifar_dir, tmp_path)
    data = hw1.load_data(s)
    model = hw1.build_model(s)
    path = hw1.apply_pretraining(s, model, data, CPU)
    state = torch.load(path, weights_only=True)
    losses = [h["train_loss"] for h in state["meta"]["history"]]
    assert losses[-1] < losses[0] and state["meta"]["images"] == len(data.pool) == 120
    stamp = path.stat().st_mtime_ns
    assert hw1.apply_pretraining(s, hw1.build_model(s), data, CPU) == path  # reused
    assert path.stat().st_mtime_ns == stamp
    result = hw1.train(s, model, data, CPU, tmp_path / "run")
    assert len(result.history) == 2
    corrupted, restored, clean = hw1.restoration_examples(path, data, s, n=4)
    assert corrupted.shape == restored.shape == clean.shape == (4, 3, 32, 32)


def test_pretrain_parameter_is_checked(cifar_dir, tmp_path):
    with pytest.raises(ParameterError, match="no encoder checkpoint exists"):
        settings(cifar_dir, tmp_path, pretrain="nowhere.pt")
