"""How :func:`helpers.core.training.fit` trains (:class:`FitConfig`), what it returns
(:class:`FitResult`), and what one run holds and checkpoints (:class:`Trainer`): the
optimiser (its parameter groups: weight decay, batch-norm LR factor, layer-wise LR decay),
the one-cycle schedule, the gradient scaler and the random generator, resumed exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .checkpoints import describe, load_checked
from .device import PRECISIONS, autocast_dtype
from .errors import CheckpointError
from .params import check_values, setting

OPTIMIZERS = ("sgd", "adamw")


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
    epoch_images: int | None = setting(
        None,
        "images an epoch draws, in shuffled passes, the last one cut short (a budget that "
        "does not depend on the training set's size); None: repeats passes",
        bounds=">= 1",
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

    def __post_init__(self) -> None:
        check_values(FitConfig, asdict(self))


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("nan")
    seconds: float = 0.0


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


def make_optimizer(model: nn.Module, config: FitConfig) -> torch.optim.Optimizer:
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


@dataclass
class Trainer:
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


def make_trainer(model: nn.Module, config: FitConfig, device: torch.device, steps: int) -> Trainer:
    optimizer = make_optimizer(model, config)
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
    return Trainer(model, optimizer, scheduler, scaler, generator, device, config)


def set_up_backends(config: FitConfig, device: torch.device) -> None:
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
