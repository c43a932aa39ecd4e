"""Training throughput benchmark: ``python -m helpers.tools.bench [--json]``.

Measures training images per second, on the current device and on generated
CIFAR-format data (so it runs offline), of:

(a) ``fit``: the repository's shared training function (in-memory uint8 data,
    augmentation on the device, device-side metrics), at the chosen precision;
(a') ``fit_fp32``: the same in float32 (the same loop as (a) where "auto" means float32,
    as on CPUs without native bf16);
(b) ``bare``: forward, backward and step over batches already on the device, no
    augmentation or bookkeeping: the compute bound;
(c) ``conventional``: torchvision's ``CIFAR10`` dataset with PIL transforms
    (padded random crop, flip, ToTensor, Normalize) through a ``DataLoader``, in float32
    and the default memory format, as the PyTorch tutorials write it;
(c') ``conventional_same_precision``: the same loop with ``fit``'s autocast and
    memory format, which isolates what the data path alone is worth.

A shared machine's speed drifts by tens of percent within minutes, so the loops are not
run one after the other: each round runs every loop for one short epoch in turn, and each
ratio (``fit_over_bare`` a/b, ``fit_over_conventional`` a/c,
``fit_over_conventional_same_precision`` a/c') is the median over rounds of the ratio
within the round, printed with its spread (lowest and highest round).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..core.augment import BatchAugment
from ..core.device import (
    PRECISIONS,
    autocast,
    channels_last_is_safe,
    describe_device,
    precision_name,
    select_device,
)
from ..core.errors import ParameterError
from ..core.objectives import Classification
from ..core.trainer import FitConfig
from ..core.training import fit
from ..data.cifar import load_cifar10
from ..data.synthetic import write_cifar10
from ..hw1.resnet import build_classifier


def _sync(device: torch.device) -> None:
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


def timed(loop, device: torch.device) -> float:
    """Images per second of one call of ``loop``."""
    _sync(device)
    start = time.perf_counter()
    images = loop()
    _sync(device)
    return images / (time.perf_counter() - start)


def interleaved(loops: dict, device: torch.device, rounds: int) -> dict[str, list[float]]:
    """Each loop once as warm-up, then ``rounds`` rounds that run every loop in turn."""
    for loop in loops.values():
        loop()
    speeds: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            speeds[name].append(timed(loop, device))
    return speeds


def ratio_summary(numerator: list[float], denominator: list[float]) -> dict:
    """Median, lowest and highest of the per-round ratios."""
    ratios = np.asarray(numerator) / np.asarray(denominator)
    return {
        "median": round(float(np.median(ratios)), 3),
        "min": round(float(ratios.min()), 3),
        "max": round(float(ratios.max()), 3),
    }


def run(
    arch: str = "resnet18",
    width: int = 32,
    batch_size: int = 128,
    images: int = 1280,
    rounds: int = 9,
    device_name: str = "auto",
    workers: int | None = None,
    precision: str = "auto",
    channels_last: bool = True,
    compile_: bool = False,
) -> dict:
    """Measure (a), (a'), (b), (c) and (c') in interleaved rounds; return a JSON-ready dict."""
    if rounds < 1:
        raise ParameterError(f"rounds must be at least 1, got {rounds}.")
    device = select_device(device_name)
    workers = min(os.cpu_count() or 1, 8) if workers is None else workers
    same_as_fp32 = precision_name(device, precision) == precision_name(device, "fp32")
    with tempfile.TemporaryDirectory() as tmp:
        per_batch = max(images // 2, batch_size)
        write_cifar10(tmp, per_batch=per_batch, batches=2, test=10)
        # torchvision's CIFAR10 wants all five training batches: repeat the two we have.
        folder = os.path.join(tmp, "cifar-10-batches-py")
        for k in (3, 4, 5):
            os.link(
                os.path.join(folder, f"data_batch_{1 + k % 2}"),
                os.path.join(folder, f"data_batch_{k}"),
            )
        train, _ = load_cifar10(tmp)
        train = train.subset(torch.arange(2 * per_batch))
        steps = max(len(train) // batch_size, 1)

        def fresh():
            torch.manual_seed(0)
            return build_classifier(arch, width)

        loops: dict[str, FitLoop | BareLoop | ConventionalLoop] = {
            "fit": FitLoop(fresh(), train, device, batch_size, precision, channels_last, compile_)
        }
        if not same_as_fp32:
            loops["fit_fp32"] = FitLoop(
                fresh(), train, device, batch_size, "fp32", channels_last, compile_
            )
        loops["bare"] = BareLoop(fresh(), device, batch_size, steps, precision, channels_last)
        loops["conventional"] = ConventionalLoop(
            fresh(), tmp, device, batch_size, steps, workers, "fp32", channels_last=False
        )
        loops["conventional_same_precision"] = ConventionalLoop(
            fresh(), tmp, device, batch_size, steps, workers, precision, channels_last
        )
        try:
            speeds = interleaved(loops, device, rounds)
        finally:
            for loop in loops.values():
                if hasattr(loop, "close"):
                    loop.close()
    speeds.setdefault("fit_fp32", speeds["fit"])
    out = {
        "device": describe_device(device),
        "arch": arch,
        "width": width,
        "batch_size": batch_size,
        "images": len(train),
        "rounds": rounds,
        "workers": workers,
        "precision": precision,
        "compute_dtype": precision_name(device, precision),
        "channels_last": channels_last,
        "compile": compile_,
    }
    for name, values in speeds.items():
        out[f"{name}_ips"] = round(float(np.median(values)), 1)
    out["fit_fp32_is_fit"] = same_as_fp32
    for name, other in (
        ("fit_over_bare", "bare"),
        ("fit_over_conventional", "conventional"),
        ("fit_over_conventional_same_precision", "conventional_same_precision"),
    ):
        summary = ratio_summary(speeds["fit"], speeds[other])
        out[name] = summary["median"]
        out[f"{name}_range"] = [summary["min"], summary["max"]]
    out["rounds_ips"] = {name: [round(v, 1) for v in values] for name, values in speeds.items()}
    out["torch"] = torch.__version__
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.tools.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--arch", default="resnet18", choices=("resnet18", "resnet34"))
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--images",
        type=int,
        default=1280,
        help="generated training images: one epoch of them per loop and round",
    )
    parser.add_argument(
        "--rounds", type=int, default=9, help="timed rounds (each runs every loop once)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers for (c)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS)
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object as the last line"
    )
    args = parser.parse_args(argv)
    out = run(
        args.arch,
        args.width,
        args.batch_size,
        args.images,
        args.rounds,
        args.device,
        args.workers,
        args.precision,
        not args.no_channels_last,
        args.compile,
    )
    if not args.json:
        print(
            f"device {out['device']}, {out['arch']} width {out['width']}, batch "
            f"{out['batch_size']}, "
            f"precision {out['precision']} ({out['compute_dtype']}), median of {out['rounds']} "
            "rounds"
        )
        print(f"  {'fit (float32)':34s} {out['fit_fp32_ips']:8.1f} images/s")
        print(
            f"  {'fit (' + out['precision'] + ': ' + out['compute_dtype'] + ')':34s} "
            f"{out['fit_ips']:8.1f} images/s"
        )
        for key in ("bare", "conventional", "conventional_same_precision"):
            print(f"  {key:34s} {out[key + '_ips']:8.1f} images/s")
        for key, label in (
            ("fit_over_bare", "fit / bare"),
            ("fit_over_conventional", "fit / conventional"),
            ("fit_over_conventional_same_precision", "fit / conventional same precision"),
        ):
            low, high = out[key + "_range"]
            print(f"  {label:34s} {out[key]:8.3f}   (rounds: {low:.3f} to {high:.3f})")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
