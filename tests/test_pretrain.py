from dataclasses import replace

import pytest
import torch

from conftest import CPU, hw1_settings
from helpers import hw1
from helpers.core.errors import CheckpointError, ParameterError
from helpers.core.images import ImageSet
from helpers.hw1.presets import FINETUNE_LAYER_DECAY
from helpers.hw1.pretraining import pretrained_path
from helpers.hw1.resnet import build_classifier
from helpers.hw1.restoration import RestorationNet, load_encoder, load_restoration_net, save_encoder


def test_encoder_round_trip_and_mismatch_errors(tmp_path):
    net = RestorationNet("resnet18", 8)
    assert net(torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 4, 4, dtype=torch.bool)).shape == (
        2,
        3,
        32,
        32,
    )
    path = save_encoder(net, tmp_path / "enc.pt", {"epochs": 1})
    classifier = build_classifier("resnet18", 8)
    assert load_encoder(classifier, path) == {"epochs": 1}
    for a, b in zip(
        classifier.encoder.state_dict().values(), net.encoder.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    with pytest.raises(
        CheckpointError, match="is for resnet18, width 8, but the classifier is resnet18, width 16"
    ):
        load_encoder(build_classifier("resnet18", 16), path)
    with pytest.raises(CheckpointError, match="resnet34, width 8"):
        load_encoder(build_classifier("resnet34", 8), path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder(classifier, tmp_path / "missing.pt")


def settings(cifar_dir, tmp_path, **change):
    """A small run that pretrains by restoration (2 epochs) and fine-tunes on half of the labels."""
    pretrained = {"fraction": 0.5, "pretrain": "restoration", "pretrain_epochs": 2}
    return hw1_settings(cifar_dir, tmp_path, **{**pretrained, **change})


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
    seen, restored, clean = hw1.restoration_examples(path, data, n=4)
    assert seen.shape == restored.shape == clean.shape == (4, 3, 32, 32)
    assert load_restoration_net(path).recipe == net_recipe("spark")
    # kNN of the labelled training images' features: the generated classes differ in colour, so any
    # encoder separates them; with labels that say nothing about the images it falls to about chance
    assert hw1.feature_quality(model, data, CPU) >= 0.9
    shuffled = data.train.labels[
        torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
    ]
    noise = replace(data, train=ImageSet(data.train.images, shuffled, data.train.classes))
    assert hw1.feature_quality(model, noise, CPU) < 0.5


def net_recipe(name):
    from helpers.hw1.restoration import RESTORATION_RECIPES

    return RESTORATION_RECIPES[name]


def test_contrastive_pretraining_shares_the_encoder_format_and_reuse(cifar_dir, tmp_path):
    s = settings(cifar_dir, tmp_path, pretrain="contrastive")
    assert s.layer_decay == FINETUNE_LAYER_DECAY and s.run_label().endswith("-contrastive-seed0")
    assert settings(cifar_dir, tmp_path, pretrain="contrastive", layer_decay=0.7).layer_decay == 0.7
    data = hw1.load_data(s)
    path = hw1.apply_pretraining(s, hw1.build_model(s), data, CPU)
    assert (
        "contrastive" in path.name
        and torch.load(path, weights_only=True)["meta"]["method"] == "contrastive"
    )
    assert hw1.apply_pretraining(s, hw1.build_model(s), data, CPU) == path  # reused
    with pytest.raises(CheckpointError, match="without a restoration decoder"):
        load_restoration_net(path)
    other = settings(cifar_dir, tmp_path, restoration="dense")
    assert pretrained_path(other, data) != pretrained_path(settings(cifar_dir, tmp_path), data)


def test_pretrain_parameter_is_checked(cifar_dir, tmp_path):
    with pytest.raises(ParameterError, match="no encoder checkpoint exists"):
        settings(cifar_dir, tmp_path, pretrain="nowhere.pt")
    with pytest.raises(
        ParameterError, match="restoration='sparse' is unknown; choose one of dense"
    ):
        settings(cifar_dir, tmp_path, restoration="sparse")
    with pytest.raises(ParameterError, match="layer_decay=1.5 must lie in"):
        settings(cifar_dir, tmp_path, layer_decay=1.5)
    assert settings(cifar_dir, tmp_path, pretrain="none").layer_decay == 1.0
    with pytest.raises(ParameterError, match="match_init_norm='yes' must be True or False"):
        settings(cifar_dir, tmp_path, match_init_norm="yes")


def test_match_init_norm_rescales_the_loaded_encoder_only_when_asked(cifar_dir, tmp_path):
    s = settings(cifar_dir, tmp_path, pretrain_epochs=1)
    data = hw1.load_data(s)
    plain = hw1.build_model(s)
    path = hw1.apply_pretraining(s, plain, data, CPU)
    rescaled = hw1.build_model(s)
    hw1.apply_pretraining(
        settings(cifar_dir, tmp_path, pretrain_epochs=1, match_init_norm=True), rescaled, data, CPU
    )
    as_saved = torch.load(path, weights_only=True)["encoder"]
    assert torch.equal(plain.encoder.stem[0].weight, as_saved["stem.0.weight"])
    fresh = (2 * 8) ** 0.5  # a fresh layer1 convolution: sqrt(2 x its 8 input channels)
    assert float(rescaled.encoder.layer1[0].conv1.weight.detach().norm()) == pytest.approx(
        fresh, rel=1e-5
    )
    direction = torch.nn.functional.cosine_similarity(
        rescaled.encoder.layer1[0].conv1.weight.detach().flatten(),
        as_saved["layer1.0.conv1.weight"].flatten(),
        dim=0,
    )
    assert float(direction) == pytest.approx(1.0, abs=1e-5)  # the same weights, rescaled


def test_the_pretrained_encoder_is_reused_only_for_the_settings_pretraining_used(
    cifar_dir, tmp_path
):
    """The cache key left out batch_size and precision: a second run with another batch
    size silently reused the first run's encoder."""
    s = settings(cifar_dir, tmp_path)
    data = hw1.load_data(s)
    key = pretrained_path(s, data)
    for change in (
        dict(batch_size=60),
        dict(precision="bf16"),
        dict(pretrain_epochs=3),
        dict(width=16),
    ):
        assert pretrained_path(settings(cifar_dir, tmp_path, **change), data) != key, change
    # what pretraining does not use is shared: the seed and labelled fraction of the fine-tuning
    assert pretrained_path(settings(cifar_dir, tmp_path, seed=1, fraction=0.1), data) == key
    # contrastive pretraining draws batches of its own size, whatever batch_size says
    contrastive = [
        pretrained_path(settings(cifar_dir, tmp_path, pretrain="contrastive", batch_size=b), data)
        for b in (30, 60)
    ]
    assert contrastive[0] == contrastive[1]
    assert (
        pretrained_path(
            settings(cifar_dir, tmp_path, pretrain="contrastive", precision="fp16"), data
        )
        != contrastive[0]
    )


@pytest.mark.parametrize("content", ["weights", "text", "other dict"])
def test_a_file_that_is_not_an_encoder_checkpoint_is_named(tmp_path, content):
    path = tmp_path / "model.pt"
    if content == "weights":  # a classifier's state dict, not an encoder checkpoint
        torch.save(build_classifier("resnet18", 8).state_dict(), path)
    elif content == "text":
        path.write_text("not a checkpoint")
    else:
        torch.save({"arch": "resnet18", "width": 8}, path)  # no weights
    with pytest.raises(CheckpointError, match=f"{path} is not an encoder checkpoint"):
        load_encoder(build_classifier("resnet18", 8), path)
