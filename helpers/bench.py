"""Training throughput benchmark: ``python -m helpers.bench [--json]``.

Measures training images per second, on the current device and on generated
CIFAR-format data (so it runs offline), of:

(a) ``fit``: the repository's shared training function (in-memory uint8 data,
    augmentation on the device, device-side metrics);
(b) ``bare``: forward, backward and step over batches already on the device, no
    augmentation or bookkeeping: the compute bound;
(c) ``conventional``: torchvision's ``CIFAR10`` dataset with PIL transforms
    (padded random crop, flip, ToTensor, Normalize) through a ``DataLoader``, in float32
    and the default memory format, as the PyTorch tutorials write it;
(c') ``conventional_same_precision``: the same loop with ``fit``'s autocast and
    memory format, which isolates what the data path alone is worth.

It prints ``fit_over_bare`` (a/b, how close to the bound), ``fit_over_conventional``
(a/c, the speed-up over the usual recipe) and ``fit_over_conventional_same_precision``
(a/c').
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch
import torch.nn.functional as F

from .augment import BatchAugment
from .cifar import load_cifar10
from .device import (PRECISIONS, autocast, channels_last_is_safe, describe_device, precision_name,
                     select_device)
from .models import build_classifier
from .synthetic import write_cifar10
from .training import Classification, FitConfig, fit


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_fit(model, train, device, batch_size, epochs, precision, channels_last, compile_) -> float:
    config = FitConfig(epochs=epochs + 1, batch_size=batch_size, lr=0.05, progress=False,
                       track_gradients=False, precision=precision, channels_last=channels_last,
                       compile=compile_)
    fit(model, train, None, Classification(10), config, device, BatchAugment(4, True),
        stop_after_epochs=1)  # warm-up epoch (and compilation)
    _sync(device)
    start = time.perf_counter()
    fit(model, train, None, Classification(10), config, device, BatchAugment(4, True))
    _sync(device)
    steps = len(train) // batch_size
    return (epochs + 1) * steps * batch_size / (time.perf_counter() - start)


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


def bench_bare(model, device, batch_size, steps, precision, channels_last) -> float:
    memory, step = _plain_step(model, device, precision, channels_last)
    x = torch.rand(batch_size, 3, 32, 32, device=device).contiguous(memory_format=memory)
    y = torch.randint(0, 10, (batch_size,), device=device)
    for _ in range(3):
        step(x, y)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    _sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def bench_conventional(model, root, device, batch_size, steps, workers, precision, channels_last) -> float:
    import torchvision.transforms as T
    from torchvision.datasets import CIFAR10

    class GeneratedCIFAR10(CIFAR10):
        """Generated batches cannot match the official md5 sums: skip those checks."""

        meta = {**CIFAR10.meta, "md5": None}

        def _check_integrity(self) -> bool:
            return True

    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])
    dataset = GeneratedCIFAR10(root, train=True, transform=transform, download=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                         num_workers=workers, drop_last=True,
                                         pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0)
    memory, step = _plain_step(model, device, precision, channels_last)
    done, start = 0, None
    while done < steps + 2:
        for x, y in loader:
            if done == 2:  # the first batches start the workers: not counted
                _sync(device)
                start = time.perf_counter()
            x = x.to(device, non_blocking=True).contiguous(memory_format=memory)
            step(x, y.to(device, non_blocking=True)).item()  # the usual per-step logging sync
            done += 1
            if done >= steps + 2:
                break
    _sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def run(arch: str = "resnet18", width: int = 32, batch_size: int = 128, images: int = 2560,
        epochs: int = 2, device_name: str = "auto", workers: int | None = None,
        precision: str = "auto", channels_last: bool = True, compile_: bool = False) -> dict:
    """Measure (a), (b) and (c) and return a JSON-ready dict."""
    device = select_device(device_name)
    workers = min(os.cpu_count() or 1, 8) if workers is None else workers
    with tempfile.TemporaryDirectory() as tmp:
        per_batch = max(images // 2, batch_size)
        write_cifar10(tmp, per_batch=per_batch, batches=2, test=10)
        # torchvision's CIFAR10 wants all five training batches: repeat the two we have.
        folder = os.path.join(tmp, "cifar-10-batches-py")
        for k in (3, 4, 5):
            os.link(os.path.join(folder, f"data_batch_{1 + k % 2}"), os.path.join(folder, f"data_batch_{k}"))
        train, _ = load_cifar10(tmp)
        train = train.subset(torch.arange(2 * per_batch))
        steps = max(len(train) // batch_size, 1) * epochs

        def fresh():
            torch.manual_seed(0)
            return build_classifier(arch, width)

        fit_ips = bench_fit(fresh(), train, device, batch_size, epochs, precision, channels_last, compile_)
        bare_ips = bench_bare(fresh(), device, batch_size, steps, precision, channels_last)
        conventional_ips = bench_conventional(fresh(), tmp, device, batch_size, steps, workers,
                                              precision="fp32", channels_last=False)
        same_precision_ips = bench_conventional(fresh(), tmp, device, batch_size, steps, workers,
                                                precision, channels_last)
    return {
        "device": describe_device(device), "arch": arch, "width": width,
        "batch_size": batch_size, "images": len(train), "epochs": epochs, "workers": workers,
        "precision": precision, "compute_dtype": precision_name(device, precision),
        "channels_last": channels_last, "compile": compile_,
        "fit_ips": round(fit_ips, 1), "bare_ips": round(bare_ips, 1),
        "conventional_ips": round(conventional_ips, 1),
        "conventional_same_precision_ips": round(same_precision_ips, 1),
        "fit_over_bare": round(fit_ips / bare_ips, 3),
        "fit_over_conventional": round(fit_ips / conventional_ips, 3),
        "fit_over_conventional_same_precision": round(fit_ips / same_precision_ips, 3),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m helpers.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet18", choices=("resnet18", "resnet34"))
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=2560, help="generated training images")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers for (c)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS)
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    out = run(args.arch, args.width, args.batch_size, args.images, args.epochs, args.device,
              args.workers, args.precision, not args.no_channels_last, args.compile)
    if not args.json:
        print(f"device {out['device']}, {out['arch']} width {out['width']}, batch {out['batch_size']}")
        for key in ("fit_ips", "bare_ips", "conventional_ips", "conventional_same_precision_ips"):
            print(f"  {key:32s} {out[key]:10.1f} images/s")
        print(f"  fit / bare                        {out['fit_over_bare']:.3f}")
        print(f"  fit / conventional                {out['fit_over_conventional']:.3f}")
        print(f"  fit / conventional same precision {out['fit_over_conventional_same_precision']:.3f}")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
