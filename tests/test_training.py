import numpy as np
import pytest
import torch
from torch import nn

from conftest import CPU
from helpers.core.augment import BatchAugment
from helpers.core.errors import CheckpointError, ParameterError
from helpers.core.images import ImageSet
from helpers.core.inference import predict_proba
from helpers.core.objectives import Classification
from helpers.core.trainer import FitConfig
from helpers.core.training import TrainingDiverged, fit
from helpers.data.cifar import load_cifar10, split_train_val
from helpers.hw1.resnet import build_classifier


def small_run(cifar_dir, tmp_path, epochs=3, **kw):
    train, _ = load_cifar10(cifar_dir)
    train, val = split_train_val(train, 0.25, seed=0)
    torch.manual_seed(0)
    model = build_classifier("resnet18", width=8)
    config = FitConfig(epochs=epochs, batch_size=30, lr=0.05, seed=0, progress=False)
    result = fit(
        model,
        train,
        val,
        Classification(10),
        config,
        CPU,
        augment=BatchAugment(crop_pad=2),
        checkpoint_dir=tmp_path / "ckpt",
        **kw,
    )
    return model, result


def test_loss_falls_and_history_is_complete(cifar_dir, tmp_path):
    model, result = small_run(cifar_dir, tmp_path, epochs=4)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.8 * losses[0]
    keys = {"train_loss", "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1", "lr"}
    assert keys <= set(result.history[0])
    assert len(result.history[0]["grad_norm"]) == 21  # conv + linear weights of a ResNet-18
    assert (tmp_path / "ckpt" / "last.pt").exists() and (tmp_path / "ckpt" / "best.pt").exists()
    accuracy = [h["val_accuracy"] for h in result.history]
    trailing = [
        sum(accuracy[max(0, i - 4) : i + 1]) / len(accuracy[max(0, i - 4) : i + 1])
        for i in range(len(accuracy))
    ]
    assert result.best_epoch == 1 + max(range(len(trailing)), key=lambda i: (trailing[i], -i))
    assert [h["selection_score"] for h in result.history] == pytest.approx(trailing)


def test_resumed_run_ends_like_an_uninterrupted_one(cifar_dir, tmp_path):
    model_a, full = small_run(cifar_dir, tmp_path / "a", epochs=3)
    small_run(cifar_dir, tmp_path / "b", epochs=3, stop_after_epochs=1)  # "interrupted"
    model_b, resumed = small_run(cifar_dir, tmp_path / "b", epochs=3, resume=True)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_resume_with_other_parameters_is_refused(cifar_dir, tmp_path):
    small_run(cifar_dir, tmp_path, epochs=2, stop_after_epochs=1)
    with pytest.raises(CheckpointError, match="epochs=2"):
        small_run(cifar_dir, tmp_path, epochs=5, resume=True)


def test_nan_loss_stops_with_epoch_and_step(cifar_dir, tmp_path):
    train, _ = load_cifar10(cifar_dir)
    model = build_classifier("resnet18", width=8)
    with torch.no_grad():
        model.fc.bias.fill_(float("nan"))
    config = FitConfig(epochs=2, batch_size=30, lr=0.05, progress=False)
    with pytest.raises(TrainingDiverged, match="epoch 1, step 1 of 4"):
        fit(model, train, None, Classification(10), config, CPU)


def test_predictions_are_probabilities(cifar_dir):
    _, test = load_cifar10(cifar_dir)
    model = build_classifier("resnet18", width=8)
    p = predict_proba(model, test.images, CPU, flip_tta=True)
    assert p.shape == (40, 10) and torch.allclose(p.sum(1), torch.ones(40), atol=1e-5)


def test_resume_into_another_architecture_is_a_clear_error(cifar_dir, tmp_path):
    small_run(cifar_dir, tmp_path, epochs=2, stop_after_epochs=1)
    train, _ = load_cifar10(cifar_dir)
    other = build_classifier("resnet34", width=8)
    config = FitConfig(epochs=2, batch_size=30, lr=0.05, seed=0, progress=False)
    with pytest.raises(CheckpointError, match=r"trained as resnet18, width 8.*resnet34, width 8"):
        fit(
            other,
            train,
            None,
            Classification(10),
            config,
            CPU,
            checkpoint_dir=tmp_path / "ckpt",
            resume=True,
        )


def test_the_time_estimate_extrapolates_the_timed_steps_to_the_whole_run(monkeypatch, capsys):
    from helpers.core import progress

    clock = iter([100.0, 106.0])  # step 1 starts at 100 s; 3 timed steps later it is 106 s
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    told = []
    estimate = progress.TimeEstimate(total_steps=2000, timed_steps=3, on_slow=told.append)
    losses = torch.zeros(2000)
    for step in range(10):
        estimate.before_step(step, losses)
    assert estimate.seconds == pytest.approx(2.0 * 2000)
    out = capsys.readouterr().out
    assert "estimated training time: 67 min (2.00 s per step x 2,000 steps, from steps 2-4" in out
    assert told == [pytest.approx(4000.0)]  # over an hour: the caller's on_slow is told


def test_fit_announces_its_estimate_and_a_gpu_recipe_on_the_cpu_points_to_the_cpu_preset(
    cifar_dir, capsys
):
    from conftest import HW1_BASE as BASE
    from helpers.hw1.settings import resolve_hw1
    from helpers.hw1.steps import slow_hint

    train, _ = load_cifar10(cifar_dir)
    config = FitConfig(epochs=1, batch_size=8, lr=0.05, estimate_after_steps=2)
    fit(build_classifier("resnet18", width=4), train, None, Classification(10), config, CPU)
    assert "estimated training time:" in capsys.readouterr().out
    advise = slow_hint(resolve_hw1("full", **BASE), CPU)
    assert advise is not None
    advise(7200.0)
    assert 'preset="cpu"' in capsys.readouterr().out
    assert slow_hint(resolve_hw1("cpu", **BASE), CPU) is None
    assert slow_hint(resolve_hw1("full", **BASE), torch.device("cuda")) is None


def test_a_schedule_whose_warm_up_is_one_step_runs_and_ends_low():
    from helpers.core.trainer import make_trainer

    model = build_classifier(
        "resnet18", 4
    )  # 10 steps x 10 % warm-up: torch's OneCycleLR divided by zero
    trainer = make_trainer(
        model, FitConfig(epochs=1, batch_size=8, lr=0.1, warmup=0.1), CPU, steps=10
    )
    lrs = []
    for _ in range(10):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()
        trainer.scheduler.step()
    assert lrs[0] > 0.09 and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.02


def test_batch_norm_parameters_and_biases_get_their_own_lr_factor_and_no_weight_decay():
    from helpers.core.trainer import make_trainer

    model = build_classifier("resnet18", 4)
    config = FitConfig(epochs=2, batch_size=8, lr=0.1, weight_decay=1e-4, bn_lr_factor=4.0)
    trainer = make_trainer(model, config, CPU, steps=10)
    for _ in range(12):  # through the warm-up and into the decay: the ratio holds
        trainer.optimizer.step()
        trainer.scheduler.step()
    group_of = {id(p): g for g in trainer.optimizer.param_groups for p in g["params"]}
    weight = group_of[id(model.encoder.layer1[0].conv1.weight)]
    for p in (model.encoder.stem[1].weight, model.encoder.stem[1].bias, model.fc.bias):
        assert (
            group_of[id(p)]["lr"] == pytest.approx(4.0 * weight["lr"])
            and group_of[id(p)]["weight_decay"] == 0
        )
    assert weight["weight_decay"] == 1e-4 and group_of[id(model.fc.weight)]["lr"] == weight["lr"]
    with pytest.raises(ParameterError, match="bn_lr_factor=0"):
        FitConfig(epochs=1, batch_size=8, lr=0.1, bn_lr_factor=0)


def test_layer_wise_lr_decay_gives_each_stage_its_own_lr_through_the_schedule():
    from helpers.core.trainer import layer_depth, make_trainer

    model = build_classifier("resnet18", 4)
    assert [
        layer_depth(n)
        for n in (
            "fc.weight",
            "encoder.layer4.0.conv1.weight",
            "encoder.layer1.1.bn2.bias",
            "encoder.stem.0.weight",
        )
    ] == [0, 1, 4, 5]
    config = FitConfig(epochs=2, batch_size=8, lr=0.1, layer_decay=0.5, weight_decay=1e-4)
    trainer = make_trainer(model, config, torch.device("cpu"), steps=10)
    lr_of = {id(p): g["lr"] for g in trainer.optimizer.param_groups for p in g["params"]}
    decay_of = {
        id(p): g["weight_decay"] for g in trainer.optimizer.param_groups for p in g["params"]
    }
    for _ in range(7):  # into the schedule: every LR keeps its share of the peak
        trainer.optimizer.step()
        trainer.scheduler.step()
        lr_of = {id(p): g["lr"] for g in trainer.optimizer.param_groups for p in g["params"]}
        head = lr_of[id(model.fc.weight)]
        assert lr_of[id(model.encoder.layer4[0].conv1.weight)] == pytest.approx(head * 0.5)
        assert lr_of[id(model.encoder.stem[0].weight)] == pytest.approx(head * 0.5**5)
    assert (
        decay_of[id(model.encoder.stem[1].weight)] == 0.0 and decay_of[id(model.fc.weight)] == 1e-4
    )
    same = make_trainer(
        build_classifier("resnet18", 4),
        FitConfig(epochs=1, batch_size=8, lr=0.1),
        torch.device("cpu"),
        steps=1,
    )
    assert len(same.optimizer.param_groups) == 2  # no decay: one LR, weights and the rest
    with pytest.raises(ParameterError, match="layer_decay=0"):
        FitConfig(epochs=1, batch_size=8, lr=0.1, layer_decay=0)


def test_shift_tta_averages_shifted_and_mirrored_views():
    from helpers.core.inference import predict_proba

    class FirstRow(torch.nn.Module):  # logits read straight off the pixels: every view differs
        def forward(self, x):
            return 10 * x[:, 0, 0, :10]

    model = FirstRow()
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    plain = predict_proba(model, images, CPU)
    flip = predict_proba(model, images, CPU, flip_tta=True)
    both = predict_proba(model, images, CPU, flip_tta=True, shift_tta=2)
    x = images.float() / 255
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    views = [x, padded[..., :32, :32], padded[..., 4:, 4:]]
    p = [model(v).softmax(1) for v in views] + [model(v.flip(3)).softmax(1) for v in views]
    assert torch.allclose(plain, p[0], atol=1e-6) and torch.allclose(
        flip, (p[0] + p[3]) / 2, atol=1e-6
    )
    assert torch.allclose(both, (p[0] + p[3]) / 4 + (p[1] + p[2] + p[4] + p[5]) / 8, atol=1e-6)


class OneWeight(nn.Module):
    """One number, whatever the image: what the :class:`Drift` objective trains."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight.expand(len(x))


class Drift:
    """Training pushes the weight up every step; the validation loss is its distance from 1,
    so validation improves until the weight passes 1 and worsens after (a run that overfits)."""

    monitor, maximize, window = "val_loss", False, 1

    def loss(self, model, x, y, generator):
        out = model(x)
        return (-out.mean() if model.training else ((out - 1) ** 2).mean()), out

    def meter(self, device):
        from helpers.core.metrics import LossMeter

        return LossMeter(device)


@pytest.mark.parametrize("checkpoints", [False, True])
def test_early_stopping_stops_and_the_best_epochs_weights_are_restored(tmp_path, checkpoints):
    """Every other test sets patience >= epochs; here validation worsens after its best epoch."""
    images = ImageSet(
        torch.zeros(4, 3, 4, 4, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), ("x",)
    )
    model, weights = OneWeight(), []
    config = FitConfig(
        epochs=20,
        batch_size=4,
        lr=0.2,
        optimizer="adamw",
        weight_decay=0.0,
        patience=2,
        track_gradients=False,
        progress=False,
    )
    result = fit(
        model,
        images,
        images,
        Drift(),
        config,
        CPU,
        checkpoint_dir=tmp_path if checkpoints else None,
        on_epoch=[lambda history, m: weights.append(m.weight.item())],
    )
    best = min(
        range(len(weights)), key=lambda e: abs(weights[e] - 1)
    )  # closest to 1: lowest val loss
    assert result.best_epoch == best + 1
    assert (
        len(result.history) == len(weights) == best + 1 + 2 < 20
    )  # stopped 2 epochs after the best
    assert weights[-1] > weights[best]  # the last epoch's weight moved on ...
    assert model.weight.item() == weights[best]  # ... and the best epoch's came back


def test_an_empty_training_set_is_refused():
    empty = ImageSet(
        torch.zeros(0, 3, 8, 8, dtype=torch.uint8), torch.zeros(0, dtype=torch.long), ("x",)
    )
    with pytest.raises(ParameterError, match="the training set is empty"):
        fit(OneWeight(), empty, None, Drift(), FitConfig(epochs=1, batch_size=4, lr=0.1), CPU)


def test_a_gradient_snapshot_is_one_batch_of_per_layer_gradients_and_leaves_the_model_as_it_was():
    from helpers.core.inference import gradient_snapshot

    torch.manual_seed(0)
    model = build_classifier("resnet18", width=4).train()
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    data = ImageSet(images, torch.arange(6), tuple("abcdefghij"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = gradient_snapshot(model, data, Classification(10), CPU, batch_size=4)
    assert len(grads) == 21 and model.training  # conv and linear weights; the mode restored
    assert all(
        torch.equal(before[k], v) for k, v in model.state_dict().items()
    )  # BN statistics untouched
    assert all(p.grad is None for p in model.parameters())
    model.eval()  # by hand: the fc layer's gradient of the first four images' loss
    torch.nn.functional.cross_entropy(
        model(data.images[:4].float() / 255), data.labels[:4]
    ).backward()
    assert np.allclose(grads["fc.weight"], model.fc.weight.grad.numpy().ravel(), atol=1e-6)
