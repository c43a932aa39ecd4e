"""The one training function both homeworks share.

Data stays in memory as uint8 tensors (on the GPU when there is one); each batch is
sliced, augmented and normalised on the device. Metrics are accumulated on the device
and read once per epoch. Every epoch writes a resumable checkpoint, and the best epoch
(by the objective's validation metric) is kept separately.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.cifar import ImageSet
from .augment import BatchAugment, to_float
from .checkpoints import describe, load_checked
from .device import PRECISIONS, autocast, autocast_dtype, channels_last_is_safe
from .errors import CheckpointError, CourseworkError, ParameterError
from .metrics import ConfusionMeter, LossMeter
from .params import check_values, setting
from .progress import in_notebook_with_widgets, log_line, progress_bar
from .runs import save_torch

OPTIMIZERS = ("sgd", "adamw")


class TrainingDiverged(CourseworkError):
    """The loss became NaN or infinite."""


@dataclass
class FitConfig:
    """How to train: optimiser, schedule and the device-side tricks."""

    epochs: int = setting(help="training epochs", bounds=">= 1")
    batch_size: int = setting(help="images per step", bounds=">= 1")
    lr: float = setting(
        help="peak learning rate of the one-cycle schedule", bounds="> 0", hint="e.g. 0.1 for SGD"
    )
    repeats: int = setting(
        1, "passes over the training images per epoch (few labels: more passes)", bounds=">= 1"
    )
    optimizer: str = setting("sgd", "SGD with Nesterov momentum, or AdamW", choices=OPTIMIZERS)
    weight_decay: float = setting(5e-4, "L2 penalty on conv and linear weights", bounds=">= 0")
    momentum: float = setting(0.9, "SGD's momentum", bounds="[0, 1)")
    warmup: float = setting(
        0.15, "share of all steps spent ramping the learning rate up", bounds="[0, 1)"
    )
    precision: str = setting("auto", "autocast: see device.autocast_dtype", choices=PRECISIONS)
    channels_last: bool = setting(
        True, "unless the model hits a known oneDNN bug (device.channels_last_is_safe)"
    )
    compile: bool = setting(False, "torch.compile the model")
    deterministic: bool = setting(False, "PyTorch's deterministic algorithms")
    seed: int = setting(0, "batch order, augmentation and any corruption")
    patience: int | None = setting(
        None, "early stopping: epochs without improvement", bounds=">= 1"
    )
    eval_batch_size: int = setting(1024, "images per evaluation step", bounds=">= 1")
    track_gradients: bool = setting(True, "record each layer's mean gradient norm per epoch")
    progress: bool = setting(True, "progress bars, log lines and the time estimate")
    layer_decay: float = setting(
        1.0,
        "< 1: layer-wise LR decay for fine-tuning a pretrained encoder",
        bounds="(0, 1]",
        hint="1 = one LR for all layers",
    )
    bn_lr_factor: float = setting(
        1.0,
        "LR of the 1-D parameters (batch-norm scales and shifts, biases) / the weights'",
        bounds="> 0",
        hint="1: the weights' LR",
    )
    estimate_after_steps: int = setting(
        5, "announce the expected training time after this many timed steps", bounds=">= 0"
    )
    slow_hint: str = setting(
        "", "appended to that announcement when training will take over an hour"
    )

    def __post_init__(self) -> None:
        check_values(FitConfig, asdict(self))


class Classification:
    """Cross-entropy (with optional label smoothing).

    Best epoch = highest validation accuracy averaged over the last 5 epochs. On a small
    validation split the accuracy of single epochs jumps by several points, so the raw
    maximum is often a lucky early epoch; the validation loss is smooth but rises as soon
    as a model trained on few labels grows overconfident, while its accuracy still improves.
    """

    monitor, maximize, window = "val_accuracy", True, 5

    def __init__(self, num_classes: int, label_smoothing: float = 0.0) -> None:
        self.num_classes, self.label_smoothing = num_classes, label_smoothing

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        logits = model(x)
        return F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing), logits

    def meter(self, device: torch.device) -> ConfusionMeter:
        return ConfusionMeter(self.num_classes, device)


class Reconstruction:
    """Mean squared error between the output and the input image (the autoencoder's
    objective); best = lowest val loss. Restoration pretraining, which hides parts of the
    input, has its own objective: :class:`helpers.hw1.restoration.MaskedRestoration`."""

    monitor, maximize, window = "val_loss", False, 1

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        output = model(x)
        return F.mse_loss(output.float(), x.float()), output

    def meter(self, device: torch.device) -> LossMeter:
        return LossMeter(device)


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("nan")
    seconds: float = 0.0


def _to_device_batch(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    x = images if images.is_floating_point() else to_float(images)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _tracked_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Conv and linear weights: the layers whose gradient norms we record."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: ImageSet,
    objective,
    device: torch.device,
    batch_size: int = 1024,
    channels_last: bool = True,
    precision: str = "auto",
    seed: int = 0,
) -> dict[str, float]:
    """Loss and metrics of ``model`` on ``data`` (a fixed seed for any corruption)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    meter = objective.meter(device)
    for start in range(0, len(data), batch_size):
        x = data.images[start : start + batch_size].to(device, non_blocking=True)
        y = data.labels[start : start + batch_size].to(device, non_blocking=True)
        with autocast(device, precision):
            loss, out = objective.loss(model, _to_device_batch(x, channels_last), y, generator)
        meter.update(loss, out, y)
    model.train(was_training)
    return meter.compute()


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    images: torch.Tensor,
    device: torch.device,
    batch_size: int = 1024,
    flip_tta: bool = False,
    channels_last: bool = True,
    precision: str = "auto",
    shift_tta: int = 0,
) -> torch.Tensor:
    """Class probabilities for uint8 ``images`` (on the CPU); ``flip_tta`` averages the
    predictions for each image and its mirror image; ``shift_tta`` (pixels) also averages
    in the image shifted diagonally both ways (reflect padding), each with its mirror,
    weighted like the unshifted views together. ``model`` is moved to ``device``."""
    was_training = model.training
    model.to(device).eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        x = _to_device_batch(images[start : start + batch_size].to(device), channels_last)
        with autocast(device, precision):
            p = _views_proba(model, [x], flip_tta)
            if shift_tta:
                d = shift_tta
                padded = F.pad(x, (d, d, d, d), mode="reflect")
                h, w = x.shape[-2:]
                shifted = [padded[..., :h, :w], padded[..., 2 * d :, 2 * d :]]
                p = (p + _views_proba(model, shifted, flip_tta)) / 2
        outputs.append(p)
    model.train(was_training)
    return torch.cat(outputs).cpu()


ENCODER_DEPTH = {"layer4": 1, "layer3": 2, "layer2": 3, "layer1": 4, "stem": 5}


def layer_depth(name: str) -> int:
    """How far below the head a parameter sits: 0 for the head (and any non-encoder part),
    1 for the last encoder stage, ..., 5 for the stem."""
    parts = name.split(".")
    if "encoder" in parts[:-1]:
        after = parts[parts.index("encoder") + 1]
        return ENCODER_DEPTH.get(after, 0)
    return 0


def parameter_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    layer_decay: float = 1.0,
    bn_lr_factor: float = 1.0,
) -> list[dict]:
    """Optimizer groups: weight decay on conv and linear weights only (not biases and
    batch-norm parameters, which get ``bn_lr_factor`` times the LR instead: the speed-run
    recipes, e.g. airbench, train them faster), and with ``layer_decay`` < 1 an LR of
    ``lr * layer_decay**depth`` (layer-wise LR decay: the stem moves least, the head most)."""
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        depth = layer_depth(name) if layer_decay < 1 else 0
        decays = p.dim() > 1
        group = groups.setdefault(
            (depth, decays),
            {
                "params": [],
                "lr": lr * layer_decay**depth * (1.0 if decays else bn_lr_factor),
                "weight_decay": weight_decay if decays else 0.0,
                "depth": depth,
            },
        )
        group["params"].append(p)
    return [
        groups[key] for key in sorted(groups, key=lambda k: (k[0], not k[1]))
    ]  # decayed first, as before


def _views_proba(model: nn.Module, views: list[torch.Tensor], flip: bool) -> torch.Tensor:
    """Mean class probabilities over ``views`` (and their mirror images with ``flip``)."""
    views = views + [v.flip(3) for v in views] if flip else views
    return sum(model(v).float().softmax(1) for v in views) / len(views)


def _make_optimizer(model: nn.Module, config: FitConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(
        model, config.lr, config.weight_decay, config.layer_decay, config.bn_lr_factor
    )
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.lr)


def _rng_state(generator: torch.Generator, device: torch.device) -> dict:
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, generator: torch.Generator, device: torch.device) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _better(score: float, best: float, maximize: bool) -> bool:
    if math.isnan(best):
        return True
    return score > best if maximize else score < best


@dataclass
class _Trainer:
    """What one training run holds: the model and everything that must be checkpointed."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    device: torch.device
    config: FitConfig

    def state(self, epoch: int, result: FitResult) -> dict:
        """Everything needed to continue after ``epoch`` exactly as if never stopped."""
        return {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": _rng_state(self.generator, self.device),
            "history": result.history,
            "best_epoch": result.best_epoch,
            "best_score": result.best_score,
            "config": asdict(self.config),
            "model_name": describe(self.model),
        }

    def restore(self, path: Path, result: FitResult) -> int:
        """Load ``path`` (a ``last.pt``) into the trainer and ``result``; returns its epoch."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        for key in ("epochs", "batch_size", "lr", "optimizer", "repeats"):
            if state["config"].get(key, 1) != getattr(self.config, key):
                raise CheckpointError(
                    f"cannot resume: the checkpoint was trained with {key}="
                    f"{state['config'][key]!r}, this run asks for {getattr(self.config, key)!r}. "
                    "Use the original parameters, or start a new run in a new results_dir."
                )
        load_checked(self.model, state["model"], path, state.get("model_name"))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"], self.generator, self.device)
        result.history = state["history"]
        result.best_epoch, result.best_score = state["best_epoch"], state["best_score"]
        return state["epoch"]


def _make_trainer(
    model: nn.Module, config: FitConfig, device: torch.device, steps: int
) -> _Trainer:
    optimizer = _make_optimizer(model, config)
    total_steps = config.epochs * steps
    warmup = config.warmup
    if warmup * total_steps == 1:  # torch's OneCycleLR divides by zero on a one-step warm-up
        warmup = 0.5 / total_steps  # (e.g. 10 steps, 10 %): start at the peak instead
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[g["lr"] for g in optimizer.param_groups],
        total_steps=total_steps,
        pct_start=warmup,
        anneal_strategy="linear",
        cycle_momentum=False,
        div_factor=10.0,
        final_div_factor=100.0,
    )
    use_fp16 = autocast_dtype(device, config.precision) == torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=use_fp16)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    return _Trainer(model, optimizer, scheduler, scaler, generator, device, config)


def _set_up_backends(config: FitConfig, device: torch.device) -> None:
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def _check_finite(
    step_losses: torch.Tensor, epoch: int, config: FitConfig, ckpt_dir: Path | None
) -> None:
    """Stop with the epoch and step of the first NaN/inf loss (one host sync per epoch)."""
    bad = (~torch.isfinite(step_losses)).nonzero()
    if len(bad):
        first = int(bad[0])
        kept = f" The last good checkpoint is {ckpt_dir / 'last.pt'}." if ckpt_dir else ""
        raise TrainingDiverged(
            f"the training loss became {float(step_losses[first])} at epoch {epoch + 1}, "
            f"step {first + 1} of {len(step_losses)}.{kept} Lower lr (now {config.lr}) and try "
            "again."
        )


EpochHook = Callable[[list, nn.Module], None]


class TimeEstimate:
    """Announce, after the first few steps, how long the whole training will take.

    The first step (warm-up, kernel selection, compilation) is not timed; the next
    ``timed_steps`` are, and the announcement extrapolates them to every step left.
    """

    def __init__(self, total_steps: int, timed_steps: int, slow_hint: str = ""):
        self.total_steps, self.timed_steps, self.slow_hint = total_steps, timed_steps, slow_hint
        self.start = 0.0  # set at step 1, read from step timed_steps + 1 on
        self.seconds: float | None = None

    def before_step(self, step: int, losses: torch.Tensor) -> None:
        if (
            self.timed_steps < 1
            or self.seconds is not None
            or self.total_steps <= self.timed_steps + 1
        ):
            return
        if step == 1 or step == self.timed_steps + 1:
            losses[step - 1].item()  # wait for the device to finish the previous step
            now = time.perf_counter()
            if step == 1:
                self.start = now
            else:
                per_step = (now - self.start) / self.timed_steps
                self.seconds = per_step * self.total_steps
                log_line(self.message(per_step))

    def message(self, per_step: float) -> str:
        seconds = per_step * self.total_steps
        text = (
            f"estimated training time: {_duration(seconds)} "
            f"({per_step:.2f} s per step x {self.total_steps:,} steps, from steps "
            f"2-{self.timed_steps + 1};"
            " evaluation not included)"
        )
        if self.slow_hint and seconds > 3600:
            text += f"\n{self.slow_hint}"
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def fit(
    model: nn.Module,
    train: ImageSet,
    val: ImageSet | None,
    objective,
    config: FitConfig,
    device: torch.device,
    augment: BatchAugment | Callable | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    stop_after_epochs: int | None = None,
    on_epoch: Sequence[EpochHook] = (),
) -> FitResult:
    """Train ``model`` in place and return its per-epoch history.

    ``objective`` is :class:`Classification`, :class:`Reconstruction` or another object
    with ``loss``, ``meter``, ``monitor`` (a history key, or "epoch" to keep the last
    epoch), ``maximize`` and ``window``. With
    ``checkpoint_dir``, ``last.pt`` (everything needed to resume) is written after every
    epoch and ``best.pt`` whenever the monitored validation metric improves; ``resume``
    continues from ``last.pt``. Each hook in ``on_epoch`` is called with the history and
    the model after every epoch (e.g. TensorBoard, ``history.json``). At the end the model
    holds the best epoch's weights. ``stop_after_epochs`` ends the call early (as an
    interruption would), for testing resume.
    """
    if len(train) == 0:
        raise ParameterError("the training set is empty: there is nothing to train on.")
    _set_up_backends(config, device)
    model.to(device)
    channels_last = config.channels_last and channels_last_is_safe(model, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    forward_model = torch.compile(model) if config.compile else model
    images = train.images.to(device)
    labels = train.labels.to(device)
    augment = augment or (lambda x, g: to_float(x))

    n = len(train)
    batch_size = min(config.batch_size, n)
    steps = max(1, n * config.repeats // batch_size)
    trainer = _make_trainer(model, config, device, steps)
    optimizer, scheduler, scaler, generator = (
        trainer.optimizer,
        trainer.scheduler,
        trainer.scaler,
        trainer.generator,
    )
    tracked = _tracked_parameters(model) if config.track_gradients else []

    result = FitResult()
    start_epoch = 0
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume:
        if ckpt_dir is None or not (ckpt_dir / "last.pt").exists():
            raise ParameterError(
                f"resume=True but there is no checkpoint {ckpt_dir}/last.pt to resume from; "
                "set resume=False to start a new run."
            )
        start_epoch = trainer.restore(ckpt_dir / "last.pt", result)
        log_line(f"resumed from {ckpt_dir / 'last.pt'} after epoch {start_epoch}")

    show_batches = config.progress and in_notebook_with_widgets()
    epoch_bar = progress_bar(
        range(start_epoch, config.epochs),
        desc="epochs",
        initial=start_epoch,
        total=config.epochs,
        disable=not config.progress,
    )
    clock = time.perf_counter()
    estimator = TimeEstimate(
        steps * (config.epochs - start_epoch), config.estimate_after_steps, config.slow_hint
    )
    model.train()
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        if hasattr(augment, "set_epoch"):
            augment.set_epoch(epoch)
        order = torch.cat(
            [torch.randperm(n, generator=generator, device=device) for _ in range(config.repeats)]
        )
        meter = objective.meter(device)
        step_losses = torch.zeros(steps, device=device)
        grad_sums = torch.zeros(len(tracked), device=device)
        for step in progress_bar(
            range(steps), desc=f"epoch {epoch + 1}", leave=False, disable=not show_batches
        ):
            if epoch == start_epoch and config.progress:
                estimator.before_step(step, step_losses)
            index = order[step * batch_size : (step + 1) * batch_size]
            x = augment(images[index], generator)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = labels[index]
            with autocast(device, config.precision):
                loss, out = objective.loss(forward_model, x, y, generator)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tracked:
                scaler.unscale_(optimizer)
                grads = [p.grad for _, p in tracked if p.grad is not None]
                if len(grads) == len(tracked):
                    grad_sums += torch.stack(torch._foreach_norm(grads)).float()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step_losses[step] = loss.detach()
            meter.update(loss.detach(), out.detach(), y)

        _check_finite(step_losses, epoch, config, ckpt_dir)
        record = {"epoch": epoch + 1, "lr": max(g["lr"] for g in optimizer.param_groups)}
        record.update({f"train_{k}": v for k, v in meter.compute().items()})
        if val is not None and len(val):
            scores = evaluate(
                model,
                val,
                objective,
                device,
                config.eval_batch_size,
                channels_last,
                config.precision,
                config.seed,
            )
            record.update({f"val_{k}": v for k, v in scores.items()})
        if tracked:
            norms = (grad_sums / steps).tolist()
            record["grad_norm"] = {name: g for (name, _), g in zip(tracked, norms, strict=True)}
        record["seconds"] = time.perf_counter() - t0
        result.history.append(record)

        if objective.monitor == "epoch":  # the objective keeps its last epoch
            monitor, maximize = "epoch", True
        else:
            monitor = objective.monitor if objective.monitor in record else "train_loss"
            maximize = objective.maximize if monitor == objective.monitor else False
        recent = [h[monitor] for h in result.history[-getattr(objective, "window", 1) :]]
        record["selection_score"] = sum(recent) / len(recent)
        if _better(record["selection_score"], result.best_score, maximize):
            result.best_epoch, result.best_score = epoch + 1, record["selection_score"]
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if ckpt_dir is not None:
                save_torch(
                    ckpt_dir / "best.pt",
                    {"model": best_state, "epoch": epoch + 1, monitor: record[monitor]},
                )
        if ckpt_dir is not None:
            save_torch(ckpt_dir / "last.pt", trainer.state(epoch + 1, result))
        for hook in on_epoch:
            hook(result.history, model)
        summary = "  ".join(
            f"{k}={record[k]:.4f}"
            for k in ("train_loss", "val_loss", "val_accuracy", "val_f1")
            if k in record
        )
        log_line(f"epoch {epoch + 1:3d}/{config.epochs}  {summary}  ({record['seconds']:.1f}s)")
        if config.patience and epoch + 1 - result.best_epoch >= config.patience:
            log_line(f"early stop: no better {monitor} for {config.patience} epochs")
            break
        if stop_after_epochs is not None and epoch + 1 - start_epoch >= stop_after_epochs:
            break

    if result.best_epoch and result.history and result.best_epoch != result.history[-1]["epoch"]:
        if ckpt_dir is not None:
            best_state = torch.load(ckpt_dir / "best.pt", map_location=device)["model"]
        model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - clock
    return result


def gradient_snapshot(
    model: nn.Module, data: ImageSet, objective, device: torch.device, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Per-layer gradients of one batch of ``data`` (eval mode, so BN statistics stay put);
    ``model`` is moved to ``device``."""
    was_training = model.training
    model.to(device).eval()
    x = to_float(data.images[:batch_size].to(device))
    y = data.labels[:batch_size].to(device)
    model.zero_grad(set_to_none=True)
    loss, _ = objective.loss(model, x, y, torch.Generator(device=device).manual_seed(0))
    loss.backward()
    grads = {
        name: p.grad.detach().float().cpu().numpy().ravel()
        for name, p in _tracked_parameters(model)
        if p.grad is not None
    }
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return grads
