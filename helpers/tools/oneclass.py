"""One-class CIFAR-10 over all ten classes: ``python -m helpers.tools.oneclass``.

    python -m helpers.tools.oneclass --data-dir path/to/cifar10 \\
        [--classes airplane cat] [--set epochs=4]

runs ``hw2_anomaly.ipynb`` through papermill once per normal class (the other nine
classes of the test split are the anomalies), keeps every executed notebook and run
folder under ``--out``, and writes ``<out>/oneclass.json``, a Markdown table (per-class
AUROC, TPR and TNR at the notebook's label-free threshold, AUPR, how many normal images
trained it, wall time; the mean) and a bar chart beside the published means of other
methods. A finished class is kept, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..core.errors import ParameterError
from ..core.notebooks import run_notebook
from ..core.progress import minutes
from ..core.runs import save_figure, write_json, write_text
from ..data.cifar import CIFAR10_CLASSES
from . import report
from .cli import add_device_arguments, add_set_argument, command_parser, parse_assignments

# Published mean AUROC over the ten classes of one-class CIFAR-10 (5,000 normal training
# images per class, all 10,000 test images).
PUBLISHED = {
    "Deep SVDD (Ruff et al. 2018)": 0.648,
    "GeoTrans (Golan and El-Yaniv 2018)": 0.860,
    "CSI (Tack et al. 2020)": 0.943,
}


def summarise(runs: dict[str, dict]) -> dict:
    """Per-class rows and their means, from each class's ``metrics.json``."""
    rows = []
    for name, m in runs.items():
        rows.append(
            {
                "class": name,
                "train_images": m["data"]["train_images"],
                "auroc": m["auroc"],
                "aupr": m["aupr"],
                "tpr": m["tpr"],
                "tnr": m["tnr"],
                "wall_seconds": m.get("wall_seconds", 0.0),
                "threshold_rule": m["threshold_rule"],
            }
        )
    mean = {
        k: float(np.mean([r[k] for r in rows]))
        for k in ("auroc", "aupr", "tpr", "tnr", "wall_seconds")
    }
    return {"rows": rows, "mean": mean, "min_auroc": float(min(r["auroc"] for r in rows))}


def markdown_table(summary: dict) -> str:
    lines = [
        "| normal class | normal training images | AUROC | TPR | TNR | AUPR | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        lines.append(
            f"| {r['class']} | {r['train_images']:,} | {r['auroc']:.3f} | {r['tpr']:.3f} | "
            f"{r['tnr']:.3f} | {r['aupr']:.3f} | {minutes(r['wall_seconds'])} |"
        )
    m = summary["mean"]
    lines.append(
        f"| **mean** | | **{m['auroc']:.3f}** | **{m['tpr']:.3f}** | **{m['tnr']:.3f}** | "
        f"{m['aupr']:.3f} | {minutes(m['wall_seconds'])} |"
    )
    return "\n".join(lines)


def render(summary: dict) -> str:
    """The documentation's block: provenance, the table, and the published anchors."""
    m = summary["mean"]
    device = summary.get("device") or "unknown device"
    anchors = "; ".join(f"{name} {value:.3f}" for name, value in PUBLISHED.items())
    total = sum(r["wall_seconds"] for r in summary["rows"])
    return (
        f"_Produced by `{summary['command']}`: device {device}; {len(summary['rows'])} classes, "
        f"{minutes(total)} of notebook time ({minutes(total / len(summary['rows']))} per "
        "class)._\n\n"
        f"{markdown_table(summary)}\n\nMean AUROC {m['auroc']:.3f}, lowest "
        f"{summary['min_auroc']:.3f}; "
        f"published means with 5,000 normal training images per class: {anchors}.\n"
    )


def plot_summary(summary: dict):
    """Per-class AUROC bars with their mean, the published means and chance."""
    import matplotlib.pyplot as plt

    rows = summary["rows"]
    fig, ax = plt.subplots(figsize=(11, 5))
    x = np.arange(len(rows))
    bars = ax.bar(
        x,
        [r["auroc"] for r in rows],
        color="tab:blue",
        zorder=2,
        label=f"this notebook (mean {summary['mean']['auroc']:.3f})",
    )
    for label in ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=2):  # readable over the lines
        label.set(zorder=3, bbox=dict(facecolor="white", edgecolor="none", pad=0.5))
    styles = iter(("--", "-.", ":"))
    for name, value in PUBLISHED.items():  # behind the bars
        ax.axhline(
            value,
            color="k",
            ls=next(styles),
            lw=1,
            zorder=1,
            label=f"{name}: mean {value:.3f}, 5,000 normal images",
        )
    ax.axhline(0.5, color="grey", lw=1, zorder=1, label="chance")
    ax.set_xticks(x, [f"{r['class']}\n({r['train_images']} normal)" for r in rows], fontsize=8)
    ax.set(
        ylim=(0.3, 1.0),
        ylabel="test AUROC",
        title="one-class CIFAR-10: each class in turn is normal",
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    fig.tight_layout()
    return fig


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("oneclass", __doc__)
    parser.add_argument("--data-dir", default="data", help="folder holding cifar-10-batches-py/")
    parser.add_argument("--download", action="store_true", help="download CIFAR-10 if missing")
    parser.add_argument(
        "--classes", nargs="+", default=list(CIFAR10_CLASSES), help="normal classes to run"
    )
    add_device_arguments(parser)
    add_set_argument(parser, "any other hw2 notebook parameter for every class, e.g. seed=1")
    parser.add_argument(
        "--out", default="results/hw2/oneclass", help="runs, notebooks and oneclass.json"
    )
    parser.add_argument("--figures-dir", default="figures/hw2/oneclass")
    parser.add_argument("--overwrite", action="store_true", help="run finished classes again")
    parser.add_argument(
        "--write-docs",
        metavar="ROOT",
        help="also rewrite the 'oneclass' results block of ROOT's README.md or docs/*.md",
    )
    args = parser.parse_args(argv)
    unknown = [c for c in args.classes if c not in CIFAR10_CLASSES]
    if unknown:
        raise ParameterError(
            f"--classes {unknown} are not CIFAR-10 classes; choose from "
            f"{', '.join(CIFAR10_CLASSES)}."
        )
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    out = Path(args.out).resolve()
    params = {
        "dataset": "cifar10",
        "data_dir": str(Path(args.data_dir).expanduser().resolve()),
        "download": args.download,
        "device": args.device,
        "precision": args.precision,
        **parse_assignments(args.set),
    }
    started = time.time()
    runs = {
        name: run_notebook(
            "hw2_anomaly.ipynb",
            out,
            name,
            {**params, "normal_class": name, "figures_dir": str(out / "figures" / name)},
            args.overwrite,
            "oneclass",
            progress_bar=False,
        )
        for name in args.classes
    }
    summary = summarise(runs)
    summary["command"] = "python -m helpers.tools.oneclass " + " ".join(argv or [])
    summary["this_invocation_seconds"] = round(time.time() - started, 1)
    summary["device"] = next(iter(runs.values())).get("device")
    write_json(out / "oneclass.json", summary)
    table = markdown_table(summary)
    write_text(out / "oneclass.md", table + "\n")
    save_figure(plot_summary(summary), Path(args.figures_dir).resolve() / "auroc.png")
    if args.write_docs:
        path = report.block_file(report.documentation_files(Path(args.write_docs)), "oneclass")
        write_text(path, report.replace_block(path.read_text(), "oneclass", render(summary)))
    print(table)
    return summary


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
