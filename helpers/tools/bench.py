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

from ..core.device import (
    describe_device,
    precision_name,
    select_device,
)
from ..core.errors import ParameterError
from ..core.images import ImageSet
from ..data.cifar import load_cifar10
from ..data.synthetic import write_cifar10
from ..hw1.resnet import build_classifier
from .bench_loops import BareLoop, ConventionalLoop, FitLoop, sync
from .cli import add_device_arguments, command_parser


def timed(loop, device: torch.device) -> float:
    """Images per second of one call of ``loop``."""
    sync(device)
    start = time.perf_counter()
    images = loop()
    sync(device)
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
        train = generated_cifar10(tmp, images, batch_size)
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
                if isinstance(loop, ConventionalLoop):
                    loop.close()
    speeds.setdefault("fit_fp32", speeds["fit"])
    setup = dict(arch=arch, width=width, batch_size=batch_size, images=len(train), rounds=rounds)
    setup.update(workers=workers, precision=precision)
    setup.update(compute_dtype=precision_name(device, precision), channels_last=channels_last)
    return summary(speeds, device, {**setup, "compile": compile_}, same_as_fp32)


def generated_cifar10(folder: str, images: int, batch_size: int) -> ImageSet:
    """CIFAR-format training batches of generated images in ``folder`` (for torchvision's
    ``CIFAR10`` too, which wants all five: the two written are linked as the other three),
    loaded as ``fit`` reads them."""
    per_batch = max(images // 2, batch_size)
    write_cifar10(folder, per_batch=per_batch, batches=2, test=10)
    batches = os.path.join(folder, "cifar-10-batches-py")
    for k in (3, 4, 5):
        os.link(
            os.path.join(batches, f"data_batch_{1 + k % 2}"),
            os.path.join(batches, f"data_batch_{k}"),
        )
    train, _ = load_cifar10(folder)
    return train.subset(torch.arange(2 * per_batch))


def summary(
    speeds: dict[str, list[float]], device: torch.device, setup: dict, same_as_fp32: bool
) -> dict:
    """The benchmark's record: its set-up, each loop's median images per second, and the
    ratios of ``fit`` to the others (median and range over rounds)."""
    out = {"device": describe_device(device), **setup}
    for name, values in speeds.items():
        out[f"{name}_ips"] = round(float(np.median(values)), 1)
    out["fit_fp32_is_fit"] = same_as_fp32
    for name, other in RATIOS:
        ratios = ratio_summary(speeds["fit"], speeds[other])
        out[name] = ratios["median"]
        out[f"{name}_range"] = [ratios["min"], ratios["max"]]
    out["rounds_ips"] = {name: [round(v, 1) for v in values] for name, values in speeds.items()}
    out["torch"] = torch.__version__
    return out


# fit's speed over each other loop's, with their labels in the printed table
RATIOS = (
    ("fit_over_bare", "bare"),
    ("fit_over_conventional", "conventional"),
    ("fit_over_conventional_same_precision", "conventional_same_precision"),
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("bench", __doc__)
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
    add_device_arguments(parser)
    parser.add_argument("--workers", type=int, help="DataLoader workers for (c)")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object as the last line"
    )
    return parser.parse_args(argv)


def print_table(out: dict) -> None:
    """The benchmark's images per second and ratios, one line each."""
    print(
        f"device {out['device']}, {out['arch']} width {out['width']}, batch "
        f"{out['batch_size']}, precision {out['precision']} ({out['compute_dtype']}), median "
        f"of {out['rounds']} rounds"
    )
    print(f"  {'fit (float32)':34s} {out['fit_fp32_ips']:8.1f} images/s")
    label = f"fit ({out['precision']}: {out['compute_dtype']})"
    print(f"  {label:34s} {out['fit_ips']:8.1f} images/s")
    for key in ("bare", "conventional", "conventional_same_precision"):
        print(f"  {key:34s} {out[key + '_ips']:8.1f} images/s")
    for key, other in RATIOS:
        low, high = out[key + "_range"]
        label = "fit / " + other.replace("_", " ")
        print(f"  {label:34s} {out[key]:8.3f}   (rounds: {low:.3f} to {high:.3f})")


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
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
        print_table(out)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
