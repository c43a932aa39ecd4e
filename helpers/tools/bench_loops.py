"""The loops that :mod:`helpers.tools.bench` times, each one short epoch per call returning
the images it trained on: ``fit`` itself, bare steps on a batch already on the device, and
the conventional torchvision ``DataLoader`` pipeline."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.augment import BatchAugment
from ..core.device import autocast, channels_last_is_safe
from ..core.objectives import Classification
from ..core.trainer import FitConfig
from ..core.training import fit


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class FitLoop:
    """(a): one ``fit`` epoch per round, on one model that keeps training."""

    def __init__(self, model, train, device, batch_size, precision, channels_last, compile_):
        self.args = (model, train, None, Classification(10))
        self.config = FitConfig(
            epochs=1,
            batch_size=batch_size,
            lr=0.05,
            progress=False,
            track_gradients=False,
            precision=precision,
            channels_last=channels_last,
            compile=compile_,
        )
        self.device, self.images = device, len(train) // batch_size * batch_size

    def __call__(self) -> int:
        fit(*self.args, self.config, self.device, BatchAugment(4, True))
        return self.images


def _plain_step(model, device, precision, channels_last):
    """Put ``model`` on ``device`` and return (memory format, step(x, y) -> loss): plain SGD
    forward, backward and update, with the same autocast choice as ``fit``."""
    model.to(device)
    safe = channels_last and channels_last_is_safe(model, device)  # as fit decides
    memory = torch.channels_last if safe else torch.contiguous_format
    model.to(memory_format=memory).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(device, precision):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return memory, step


class BareLoop:
    """(b): plain steps on one batch that is already on the device."""

    def __init__(self, model, device, batch_size, steps, precision, channels_last):
        memory, self.step = _plain_step(model, device, precision, channels_last)
        self.x = torch.rand(batch_size, 3, 32, 32, device=device).contiguous(memory_format=memory)
        self.y = torch.randint(0, 10, (batch_size,), device=device)
        self.steps, self.batch_size = steps, batch_size

    def __call__(self) -> int:
        for _ in range(self.steps):
            loss = self.step(self.x, self.y)
        loss.item()
        return self.steps * self.batch_size


class ConventionalLoop:
    """(c), (c'): torchvision's dataset and PIL transforms through a ``DataLoader``."""

    def __init__(self, model, root, device, batch_size, steps, workers, precision, channels_last):
        import torchvision.transforms as T
        from torchvision.datasets import CIFAR10

        class GeneratedCIFAR10(CIFAR10):
            """Generated batches cannot match the official md5 sums: skip those checks."""

            meta = {**CIFAR10.meta, "md5": None}

            def _check_integrity(self) -> bool:
                return True

        transform = T.Compose(
            [
                T.RandomCrop(32, padding=4),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
            ]
        )
        dataset = GeneratedCIFAR10(root, train=True, transform=transform, download=False)
        # as many images as the other loops
        subset: torch.utils.data.Subset = torch.utils.data.Subset(
            dataset, range(steps * batch_size)
        )
        self.loader: torch.utils.data.DataLoader = torch.utils.data.DataLoader(
            subset,
            batch_size=batch_size,
            shuffle=True,
            num_workers=workers,
            drop_last=True,
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
        )
        self.memory, self.step = _plain_step(model, device, precision, channels_last)
        self.device, self.batch_size = device, batch_size
        self.steps = len(self.loader)  # one whole epoch per call: no iterator is left mid-way

    def __call__(self) -> int:
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory)
            self.step(
                x, y.to(self.device, non_blocking=True)
            ).item()  # the usual per-step logging sync
        return self.steps * self.batch_size

    def close(self) -> None:
        """Stop the worker processes now: left to the interpreter's exit (with a pin-memory
        thread, on a GPU machine) they kept the finished benchmark from exiting."""
        del self.loader
