"""What hw1's data-fraction study (:mod:`helpers.tools.study`) shows: its table (a row per
fraction and arm) and its figures (per fraction the validation curves of every arm and
seed; the summary of test accuracy and macro F1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.runs import save_figure
from .study import SELF_TRAINING, arm_color, arm_label, arms_in


def markdown_table(summary: dict) -> str:
    """The summary as a Markdown table, a row per fraction and arm (mean ± std over seeds;
    the value alone for one seed)."""
    lines = [
        "| labelled fraction | training images | arm | seeds | test accuracy | gain over scratch "
        "(points) "
        "| macro F1 | kNN accuracy before fine-tuning |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = arms_in(summary)
    for row in summary["table"]:
        for arm in sorted(row["arms"], key=order.index):
            a = row["arms"][arm]

            def fmt(key, a=a):
                if len(a["seeds"]) < 2:
                    return f"{a[key + '_mean']:.3f}"
                return f"{a[key + '_mean']:.3f} ± {a[key + '_std']:.3f}"

            gain = f"{a['gain_points']:+.1f}" if "gain_points" in a else "—"
            knn = f"{a['knn_accuracy_mean']:.3f}" if a.get("knn_accuracy_mean") is not None else "—"
            lines.append(
                f"| {row['fraction']:g} | {a['train_images']} | {arm} | "
                f"{','.join(map(str, a['seeds']))} | {fmt('test_accuracy')} | {gain} | "
                f"{fmt('macro_f1')} | {knn} |"
            )
    return "\n".join(lines)


def write_figures(summary: dict, folder: Path) -> None:
    """Every figure of ``summary`` into ``folder``: ``curves_f<fraction>.png`` per fraction,
    ``summary.png`` and ``accuracy_vs_labels.png``."""
    for fraction in sorted({c["fraction"] for c in summary["cells"]}, reverse=True):
        save_figure(plot_fraction_curves(summary, fraction), folder / f"curves_f{fraction:g}.png")
    save_figure(plot_summary(summary), folder / "summary.png")
    save_figure(plot_accuracy_vs_labels(summary), folder / "accuracy_vs_labels.png")


def plot_fraction_curves(summary: dict, fraction: float):
    """Validation loss, recall, precision and F1 per epoch: for every arm the mean over its
    seeds, and the range between them as a band (one colour per arm; scratch dashed; the
    legend, beside the panels, names the arms)."""
    import matplotlib.pyplot as plt

    keys = (
        ("val_loss", "validation loss"),
        ("val_recall", "macro recall"),
        ("val_precision", "macro precision"),
        ("val_f1", "macro F1"),
    )
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    order = arms_in(summary)
    cells = [c for c in summary["cells"] if c["fraction"] == fraction]
    drawn = [arm for arm in order if any(c["arm"] == arm for c in cells)]
    for arm in drawn:
        group = [c["history"] for c in cells if c["arm"] == arm]
        epochs = [h["epoch"] for h in min(group, key=len)]  # the epochs every seed reached
        style = "--" if arm == "scratch" else "-"
        color = arm_color(arm, order.index(arm))
        seeds = f" ({len(group)} seeds)" if len(group) > 1 else ""
        for ax, (key, _) in zip(axes, keys, strict=True):
            values = np.array([[h[key] for h in history[: len(epochs)]] for history in group])
            ax.plot(epochs, values.mean(axis=0), style, color=color, label=arm_label(arm) + seeds)
            if len(group) > 1:
                ax.fill_between(
                    epochs, values.min(axis=0), values.max(axis=0), color=color, alpha=0.15
                )
    for ax, (_, title) in zip(axes, keys, strict=True):
        ax.set(title=title, xlabel="epoch")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=8,
        title="arm: mean of its seeds,\nband: their range",
    )
    arms = (
        "scratch (dashed) and the other arms (solid)"
        if "scratch" in drawn
        else ", ".join(arm_label(a) for a in drawn)
    )
    fig.suptitle(f"{fraction_label(fraction)}: {arms}")
    fig.tight_layout()
    return fig


def fraction_label(fraction: float) -> str:
    """``1.0`` -> ``"100 % of labels"``."""
    return f"{100 * fraction:g} % of labels"


def seeds_note(rows: list[dict], unit: str = "bar") -> str:
    """How many seeds each bar (or point) averages, for the figure's title."""
    counts = sorted({len(a["seeds"]) for r in rows for a in r["arms"].values()})
    if counts == [1]:
        return f"one seed per {unit} (no error bars)"
    return f"mean of {'-'.join(map(str, counts))} seeds per {unit}, error bars: std over seeds"


def plot_summary(summary: dict):
    """Bars of test accuracy and macro F1 per fraction and arm (mean; error bars = std over
    seeds, drawn only where a bar averages two seeds or more)."""
    import matplotlib.pyplot as plt

    rows = summary["table"]
    arms = arms_in(summary)
    x = np.arange(len(rows))
    bar = 0.8 / len(arms)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.1))
    for ax, key, title in (
        (axes[0], "test_accuracy", "test accuracy"),
        (axes[1], "macro_f1", "macro F1"),
    ):
        for i, arm in enumerate(arms):
            stats = [r["arms"].get(arm) for r in rows]
            means = np.array([a[f"{key}_mean"] if a else np.nan for a in stats])
            stds = np.array(
                [a[f"{key}_std"] if a and len(a["seeds"]) > 1 else np.nan for a in stats]
            )
            where = x + (i - (len(arms) - 1) / 2) * bar
            ax.bar(where, means, bar, label=arm_label(arm), color=arm_color(arm, i))
            several = ~np.isnan(stds)  # one seed has no spread to draw
            if several.any():
                ax.errorbar(
                    where[several],
                    means[several],
                    yerr=stds[several],
                    fmt="none",
                    ecolor="black",
                    capsize=3,
                )
            for w, mean, std in zip(where, means, np.nan_to_num(stds), strict=True):
                if not np.isnan(mean):  # the value above its bar and error bar
                    ax.text(
                        w,
                        mean + std + 0.01,
                        f"{mean:.3f}",
                        ha="center",
                        va="bottom",
                        fontsize=6,
                        rotation=90 if len(arms) > 4 else 0,
                    )
        ax.set_xticks(x, [fraction_label(r["fraction"]) for r in rows])
        ax.set(title=f"{title}: {seeds_note(rows)}", ylim=(0, 1))
        ax.grid(axis="y", alpha=0.3)
    columns = min(len(arms), 4)  # one legend for both panels, below them, off the bars
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=columns, fontsize=8)
    fig.tight_layout(rect=(0, 0.055 * -(-len(arms) // columns), 1, 1))
    return fig


def plot_accuracy_vs_labels(summary: dict):
    """Test accuracy against the number of labelled images, a line per arm (mean; error
    bars: std over seeds). The arms' points at one fraction are spread sideways a little
    (a few per cent of the number of labels), so that their error bars stay apart."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2))
    arms = arms_in(summary)
    for i, arm in enumerate(arms):
        dodge = 10 ** (0.008 * (i - (len(arms) - 1) / 2))
        rows = sorted(
            (r["arms"][arm] for r in summary["table"] if arm in r["arms"]),
            key=lambda a: a["train_images"],
        )
        style = "--" if arm.startswith("scratch") else "-"
        marker = "s" if arm.endswith(SELF_TRAINING) else "o"
        ax.errorbar(
            [a["train_images"] * dodge for a in rows],
            [a["test_accuracy_mean"] for a in rows],
            yerr=[a["test_accuracy_std"] for a in rows],
            fmt=style + marker,
            capsize=3,
            color=arm_color(arm, i),
            label=arm_label(arm),
        )
    ax.set_xscale("log")
    sizes = {
        r["fraction"]: max(a["train_images"] for a in r["arms"].values()) for r in summary["table"]
    }
    ax.set_xticks(
        list(sizes.values()), [f"{n:,}\n({100 * f:g} %)" for f, n in sizes.items()], minor=False
    )
    ax.minorticks_off()
    ax.set(
        xlabel="labelled training images (each fraction's points spread sideways)",
        ylabel="test accuracy",
        title=f"test accuracy against labels ({seeds_note(summary['table'], 'point')})",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))  # beside the lines
    fig.tight_layout()
    return fig
