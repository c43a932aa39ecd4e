"""Time-to-accuracy of hw1 runs: validation accuracy against training minutes.

    python -m helpers.tools.time_to_accuracy results/hw1/<old run> results/hw1/<new run> \
        --labels "old recipe" "new recipe" --out figures/hw1/time_to_accuracy.png

reads each run folder's ``metrics.json`` (its per-epoch history, with the seconds each
epoch took, and the final test accuracy) and draws one curve per run, the test accuracy
as a marker at the end, and an optional target line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from ..core.runs import save_figure
from .cli import command_parser


def load_curve(run_dir: str | Path) -> dict:
    """Minutes of training after each epoch, validation accuracy, and the run's test accuracy."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise DataError(
            f"{path} does not exist: give the folder of a finished hw1 run (it holds metrics.json)."
        )
    metrics = json.loads(path.read_text())
    history = metrics["history"]
    if not history or "val_accuracy" not in history[0]:
        raise DataError(f"{path} has no per-epoch validation accuracy to draw.")
    minutes = np.cumsum([h["seconds"] for h in history]) / 60
    return {
        "minutes": minutes,
        "val_accuracy": np.array([h["val_accuracy"] for h in history]),
        "test_accuracy": metrics["test_accuracy"],
        "epochs": len(history),
        "compute": metrics.get("compute", {}),
        "params": metrics["params"],
    }


def plot_time_to_accuracy(
    curves: dict[str, dict],
    target: float | None = None,
    scale: float = 1.0,
    time_label: str = "training time (min)",
):
    """One line per run (validation accuracy per epoch), its test accuracy as a star at
    the end; minutes multiplied by ``scale`` (e.g. to convert to a reference machine)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, c in curves.items():
        minutes = c["minutes"] * scale
        (line,) = ax.plot(
            minutes,
            c["val_accuracy"],
            label=f"{label}: test {c['test_accuracy']:.3f} after {minutes[-1]:.0f} min",
            alpha=0.85,
        )
        ax.plot(minutes[-1], c["test_accuracy"], "*", markersize=12, color=line.get_color())
    if target is not None:
        ax.axhline(target, color="grey", linestyle=":", label=f"target {target:.2f}")
    ax.set(
        xlabel=time_label,
        ylabel="validation accuracy (line), test accuracy (star)",
        title="time to accuracy",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> Path:
    parser = command_parser("time_to_accuracy", __doc__)
    parser.add_argument("runs", nargs="+", help="hw1 run folders (each holds metrics.json)")
    parser.add_argument(
        "--labels", nargs="+", default=None, help="one label per run (default: folder names)"
    )
    parser.add_argument("--target", type=float, default=None, help="draw a target accuracy line")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the minutes, e.g. 191/127 to show a reference machine's time",
    )
    parser.add_argument("--time-label", default="training time (min)")
    parser.add_argument("--out", default="figures/hw1/time_to_accuracy.png")
    args = parser.parse_args(argv)
    labels = args.labels or [Path(r).name for r in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"{len(args.runs)} runs but {len(labels)} labels: give one label per run.")
    curves = {label: load_curve(run) for label, run in zip(labels, args.runs, strict=True)}
    fig = plot_time_to_accuracy(curves, args.target, args.scale, args.time_label)
    return save_figure(fig, args.out)


if __name__ == "__main__":
    main()
