"""The one training function both homeworks share: :func:`fit`, in four steps.

1. :func:`_set_up`: the model, the training images and the trainer (optimiser, one-cycle
   schedule, scaler, generator) on the device;
2. :func:`_train_epoch`: one epoch of optimiser steps. Data stays in memory as uint8
   tensors (on the GPU when there is one); each batch is sliced, augmented and normalised
   on the device, and its metrics are accumulated there and read once per epoch;
3. :func:`_validate` and :func:`_keep_best`: the validation metrics, the best epoch (by the
   objective's monitored metric) saved as ``best.pt``, and ``last.pt``, from which a run
   resumes exactly as if never stopped;
4. :func:`_restore_best`: the model ends with the best epoch's weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn

from .augment import Augment, SameEveryEpoch, to_float
from .device import autocast, channels_last_is_safe
from .errors import CourseworkError, ParameterError
from .images import ImageSet
from .inference import evaluate, tracked_parameters
from .objectives import Objective
from .progress import TimeEstimate, in_notebook_with_widgets, log_line, progress_bar
from .runs import save_torch
from .trainer import FitConfig, FitResult, Trainer, make_trainer, set_up_backends

EpochHook = Callable[[list, nn.Module], None]


class TrainingDiverged(CourseworkError):
    """The loss became NaN or infinite."""


@dataclass
class _Run:
    """One call of :func:`fit`: its trainer and what every epoch reads."""

    trainer: Trainer
    objective: Objective
    augment: Augment
    forward: nn.Module  # the model, or its torch.compile'd version
    images: torch.Tensor  # the training images (uint8) and labels, on the device
    labels: torch.Tensor
    batch_size: int
    steps: int  # optimiser steps per epoch
    channels_last: bool
    tracked: list[tuple[str, nn.Parameter]]  # layers whose gradient norms are recorded
    checkpoints: Path | None
    show_batches: bool  # a progress bar per epoch (in Jupyter)


def fit(
    model: nn.Module,
    train: ImageSet,
    val: ImageSet | None,
    objective: Objective,
    config: FitConfig,
    device: torch.device,
    augment: Augment | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    stop_after_epochs: int | None = None,
    on_epoch: Sequence[EpochHook] = (),
    on_slow: Callable[[float], None] | None = None,
) -> FitResult:
    """Train ``model`` in place and return its per-epoch history.

    ``objective`` says what to minimise and which epoch is best
    (:class:`~helpers.core.objectives.Objective`); ``augment`` readies each uint8 batch on
    the device (default: none, just float). With ``checkpoint_dir``, ``last.pt``
    (everything needed to resume) is written after every epoch and ``best.pt`` whenever
    the monitored metric improves; ``resume`` continues from ``last.pt``. Each hook in
    ``on_epoch`` is called with the history and the model after every epoch (e.g.
    TensorBoard, ``history.json``); ``on_slow`` with the estimated seconds, after the
    first steps, when training will take over an hour. At the end the model holds the best
    epoch's weights. ``stop_after_epochs`` ends the call early (as an interruption would),
    for testing resume.
    """
    run = _set_up(model, train, objective, config, device, augment, checkpoint_dir)
    result = FitResult()
    start = _resume(run, result) if resume else 0
    estimate = TimeEstimate(
        run.steps * (config.epochs - start), config.estimate_after_steps, on_slow
    )
    clock = time.perf_counter()
    best_state: dict[str, torch.Tensor] | None = None
    model.train()
    epochs = range(start, config.epochs)
    for epoch in progress_bar(
        epochs, desc="epochs", initial=start, total=config.epochs, disable=not config.progress
    ):
        began = time.perf_counter()
        record = _train_epoch(run, epoch, estimate if epoch == start and config.progress else None)
        record.update(_validate(run, val))
        record["seconds"] = time.perf_counter() - began
        result.history.append(record)
        best_state = _keep_best(run, result, record) or best_state
        for hook in on_epoch:
            hook(result.history, model)
        log_line(_summary(record, config.epochs))
        if _stop(run, result, epoch + 1 - start, stop_after_epochs):
            break
    _restore_best(run, result, best_state)
    result.seconds = time.perf_counter() - clock
    return result


def _set_up(
    model: nn.Module,
    train: ImageSet,
    objective: Objective,
    config: FitConfig,
    device: torch.device,
    augment: Augment | None,
    checkpoint_dir: str | Path | None,
) -> _Run:
    """The model (in the fastest safe memory format), the training images and the trainer,
    on ``device``."""
    if len(train) == 0:
        raise ParameterError("the training set is empty: there is nothing to train on.")
    set_up_backends(config, device)
    model.to(device)
    channels_last = config.channels_last and channels_last_is_safe(model, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    batch_size = min(config.batch_size, len(train))
    steps = max(1, epoch_images(len(train), config) // batch_size)
    return _Run(
        trainer=make_trainer(model, config, device, steps),
        objective=objective,
        augment=augment or SameEveryEpoch(lambda x, g: to_float(x)),
        # torch.compile of a module returns a module (OptimizedModule)
        forward=cast(nn.Module, torch.compile(model)) if config.compile else model,
        images=train.images.to(device),
        labels=train.labels.to(device),
        batch_size=batch_size,
        steps=steps,
        channels_last=channels_last,
        tracked=tracked_parameters(model) if config.track_gradients else [],
        checkpoints=Path(checkpoint_dir) if checkpoint_dir is not None else None,
        show_batches=config.progress and in_notebook_with_widgets(),
    )


def _resume(run: _Run, result: FitResult) -> int:
    """Load ``last.pt`` into the trainer and ``result``; returns the epoch it ended."""
    last = run.checkpoints / "last.pt" if run.checkpoints is not None else None
    if last is None or not last.exists():
        raise ParameterError(
            f"resume=True but there is no checkpoint {run.checkpoints}/last.pt to resume from; "
            "set resume=False to start a new run."
        )
    epoch = run.trainer.restore(last, result)
    log_line(f"resumed from {last} after epoch {epoch}")
    return epoch


def epoch_images(n: int, config: FitConfig) -> int:
    """How many of ``n`` training images an epoch draws: ``config.epoch_images``, or
    ``repeats`` passes over all of them."""
    return config.epoch_images or n * config.repeats


def _train_epoch(run: _Run, epoch: int, estimate: TimeEstimate | None) -> dict:
    """One epoch: shuffled passes over the training images (``repeats``, or as many as
    ``epoch_images`` needs, the last cut short), a step per batch. Returns the epoch's
    record: its number, the LR, the training metrics and (when tracked) each layer's mean
    gradient norm."""
    trainer, config, device = run.trainer, run.trainer.config, run.trainer.device
    run.augment.set_epoch(epoch)
    n = len(run.labels)
    passes = -(-epoch_images(n, config) // n)
    order = torch.cat(
        [torch.randperm(n, generator=trainer.generator, device=device) for _ in range(passes)]
    )
    meter = run.objective.meter(device)
    step_losses = torch.zeros(run.steps, device=device)
    grad_sums = torch.zeros(len(run.tracked), device=device)
    for step in progress_bar(
        range(run.steps), desc=f"epoch {epoch + 1}", leave=False, disable=not run.show_batches
    ):
        if estimate is not None:
            estimate.before_step(step, step_losses)
        index = order[step * run.batch_size : (step + 1) * run.batch_size]
        loss, out, y = _step(run, index, grad_sums)
        step_losses[step] = loss.detach()
        meter.update(loss.detach(), out.detach(), y)
    _check_finite(step_losses, epoch, config.lr, run.checkpoints)
    record = {"epoch": epoch + 1, "lr": max(g["lr"] for g in trainer.optimizer.param_groups)}
    record.update({f"train_{k}": v for k, v in meter.compute().items()})
    if run.tracked:
        norms = (grad_sums / run.steps).tolist()
        record["grad_norm"] = {name: g for (name, _), g in zip(run.tracked, norms, strict=True)}
    return record


def _step(run: _Run, index: torch.Tensor, grad_sums: torch.Tensor):
    """One optimiser step on the images at ``index``; adds each tracked layer's gradient
    norm to ``grad_sums``. Returns the loss, the objective's outputs and the labels."""
    trainer = run.trainer
    x = run.augment(run.images[index], trainer.generator)
    if run.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = run.labels[index]
    with autocast(trainer.device, trainer.config.precision):
        loss, out = run.objective.loss(run.forward, x, y, trainer.generator)
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.scaler.scale(loss).backward()
    if run.tracked:
        trainer.scaler.unscale_(trainer.optimizer)
        grads = [p.grad for _, p in run.tracked if p.grad is not None]
        if len(grads) == len(run.tracked):
            grad_sums += torch.stack(torch._foreach_norm(grads)).float()
    trainer.scaler.step(trainer.optimizer)
    trainer.scaler.update()
    trainer.scheduler.step()
    return loss, out, y


def _check_finite(step_losses: torch.Tensor, epoch: int, lr: float, ckpt_dir: Path | None) -> None:
    """Stop with the epoch and step of the first NaN/inf loss (one host sync per epoch)."""
    bad = (~torch.isfinite(step_losses)).nonzero()
    if len(bad):
        first = int(bad[0])
        kept = f" The last good checkpoint is {ckpt_dir / 'last.pt'}." if ckpt_dir else ""
        raise TrainingDiverged(
            f"the training loss became {float(step_losses[first])} at epoch {epoch + 1}, "
            f"step {first + 1} of {len(step_losses)}.{kept} Lower lr (now {lr}) and try "
            "again."
        )


def _validate(run: _Run, val: ImageSet | None) -> dict[str, float]:
    """The validation loss and metrics (``val_*``); none without a validation set."""
    if val is None or not len(val):
        return {}
    config = run.trainer.config
    scores = evaluate(
        run.trainer.model,
        val,
        run.objective,
        run.trainer.device,
        config.eval_batch_size,
        run.channels_last,
        config.precision,
        config.seed,
    )
    return {f"val_{k}": v for k, v in scores.items()}


def _monitored(objective: Objective, record: dict) -> tuple[str, bool]:
    """The record's key that chooses the best epoch, and whether higher is better: the
    objective's, or (without it, e.g. no validation set) the lowest training loss."""
    if objective.monitor == "epoch":  # the objective keeps its last epoch
        return "epoch", True
    if objective.monitor in record:
        return objective.monitor, objective.maximize
    return "train_loss", False


def _keep_best(run: _Run, result: FitResult, record: dict) -> dict[str, torch.Tensor] | None:
    """Score the epoch (its monitored value averaged over the objective's ``window``), save
    ``best.pt`` when it is the best so far and ``last.pt`` always; returns the model's
    weights when the epoch is the best, else None."""
    monitor, maximize = _monitored(run.objective, record)
    recent = [h[monitor] for h in result.history[-run.objective.window :]]
    record["selection_score"] = sum(recent) / len(recent)
    best_state = None
    if _better(record["selection_score"], result.best_score, maximize):
        result.best_epoch, result.best_score = record["epoch"], record["selection_score"]
        best_state = {k: v.detach().clone() for k, v in run.trainer.model.state_dict().items()}
        if run.checkpoints is not None:
            save_torch(
                run.checkpoints / "best.pt",
                {"model": best_state, "epoch": record["epoch"], monitor: record[monitor]},
            )
    if run.checkpoints is not None:
        save_torch(run.checkpoints / "last.pt", run.trainer.state(record["epoch"], result))
    return best_state


def _better(score: float, best: float, maximize: bool) -> bool:
    if math.isnan(best):
        return True
    return score > best if maximize else score < best


def _summary(record: dict, epochs: int) -> str:
    """The epoch's log line: its losses and validation metrics, and how long it took."""
    summary = "  ".join(
        f"{k}={record[k]:.4f}"
        for k in ("train_loss", "val_loss", "val_accuracy", "val_f1")
        if k in record
    )
    return f"epoch {record['epoch']:3d}/{epochs}  {summary}  ({record['seconds']:.1f}s)"


def _stop(run: _Run, result: FitResult, epochs_run: int, stop_after: int | None) -> bool:
    """Early stopping (``patience`` epochs without a better one), or ``stop_after`` epochs
    run in this call."""
    patience, last = run.trainer.config.patience, result.history[-1]
    if patience and last["epoch"] - result.best_epoch >= patience:
        monitor, _ = _monitored(run.objective, last)
        log_line(f"early stop: no better {monitor} for {patience} epochs")
        return True
    return stop_after is not None and epochs_run >= stop_after


def _restore_best(run: _Run, result: FitResult, best_state: dict[str, torch.Tensor] | None) -> None:
    """Leave the model with the best epoch's weights (from ``best.pt``, or kept in memory)."""
    if result.best_epoch and result.history and result.best_epoch != result.history[-1]["epoch"]:
        if run.checkpoints is not None:
            best_state = torch.load(run.checkpoints / "best.pt", map_location=run.trainer.device)[
                "model"
            ]
        assert best_state is not None, "without checkpoints the best epoch is kept in memory"
        run.trainer.model.load_state_dict(best_state)
