"""The documentation's results, written from the metrics files so they cannot disagree.

The README and the pages under ``docs/`` mark each generated block with HTML comments::

    <!-- results:hw1 -->
    ... replaced on every ``python -m helpers.tools.reproduce`` ...
    <!-- /results:hw1 -->

and :func:`replace_block` swaps a block's content; the ``render_*`` functions write it.
The parameters tables are blocks too (``<!-- parameters:hw1 -->``), written from the
settings' declarations by ``python -m helpers.tools.parameters``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.errors import CourseworkError
from ..core.progress import minutes
from ..hw2.detector import SCORE_NAMES
from .study import base_arm


def replace_block(text: str, name: str, content: str, kind: str = "results") -> str:
    """``text`` with the block ``<!-- kind:name -->`` holding ``content``; a missing block is
    an error."""
    pattern = re.compile(
        rf"(<!-- {kind}:{re.escape(name)} -->\n).*?(<!-- /{kind}:{re.escape(name)} -->)", re.S
    )
    if not pattern.search(text):
        raise CourseworkError(
            f"the README has no block '<!-- {kind}:{name} -->' ... '<!-- /{kind}:{name} -->'; "
            "put the two markers back where the block should go."
        )
    return pattern.sub(
        lambda m: m.group(1) + content.rstrip("\n") + "\n" + m.group(2), text, count=1
    )


def documentation_files(root: Path) -> list[Path]:
    """The Markdown files that may hold results blocks: README.md and docs/*.md."""
    return [Path(root) / "README.md", *sorted((Path(root) / "docs").glob("*.md"))]


def block_file(files: list[Path], name: str, kind: str = "results") -> Path:
    """The file among ``files`` that holds the block ``name``; a missing block is an error."""
    for path in files:
        if path.exists() and f"<!-- {kind}:{name} -->\n" in path.read_text():
            return path
    raise CourseworkError(
        f"no block '<!-- {kind}:{name} -->' ... '<!-- /{kind}:{name} -->' in "
        f"{', '.join(str(p) for p in files)}; put the two markers back where the block goes."
    )


def provenance(command: str, metrics: dict, date: str, extra: str = "") -> str:
    """One line saying which command, data, device, library versions and time produced a result."""
    env = metrics.get("environment", {})
    data = metrics.get("data", {})
    where = Path(data.get("data_dir", "?")).name
    compute = metrics.get("compute", {})
    dtype = f", {compute['compute_dtype']}" if "compute_dtype" in compute else ""
    return (
        f"_Produced by `{command}` on {date}: data `{where}`{extra}, device "
        f"{metrics.get('device', '?')}{dtype}, torch {env.get('torch', '?')}._"
    )


def render_hw1(metrics: dict, command: str, date: str) -> str:
    """The hw1 block: provenance, the headline table and the per-class table."""
    p, d = metrics["params"], metrics["data"]
    extra = (
        f" ({d['train_images']:,} training / {d['val_images']:,} validation / "
        f"{d['test_images']:,} test images), recipe `{p['preset']}` ({p['arch']}, width "
        f"{p['width']}, {p['epochs']} epochs, fraction {p['fraction']:g})"
    )
    lines = [
        provenance(command, metrics, date, extra),
        "",
        "| test accuracy | macro precision | macro recall | macro F1 | weighted F1 | best epoch | "
        "wall time |",
        "|---|---|---|---|---|---|---|",
        f"| **{metrics['test_accuracy']:.3f}** | {metrics['macro_precision']:.3f} | "
        f"{metrics['macro_recall']:.3f} | {metrics['macro_f1']:.3f} | {metrics['weighted_f1']:.3f} "
        "| "
        f"{metrics['best_epoch']} of {p['epochs']} | {minutes(metrics['wall_seconds'])} |",
        "",
        "| class | precision | recall | F1 | | class | precision | recall | F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [
        f"{name} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1-score']:.3f}"
        for name, r in metrics["per_class"].items()
    ]
    half = (len(rows) + 1) // 2
    for left, right in zip(
        rows[:half], rows[half:] + [" | | |"] * (2 * half - len(rows)), strict=True
    ):
        lines.append(f"| {left} | | {right} |")
    return "\n".join(lines)


def _anomaly_cells(r: dict) -> str:
    """TPR, TNR, balanced accuracy, AUROC and AUPR as Markdown table cells."""
    return (
        f"**{r['tpr']:.3f}** | **{r['tnr']:.3f}** | {r['balanced_accuracy']:.3f} | "
        f"{r['auroc']:.4f} | {r['aupr']:.3f}"
    )


def render_hw2(runs: list[dict], command: str, date: str) -> str:
    """The hw2 block: one row per run (threshold method, seed), the ablation of the
    first run's scores, and what the loader and the validation split noticed."""
    first = runs[0]
    d = first["data"]
    extra = (
        f" ({d['train_images']:,} normal training images, {first['test_normals']:,} normal and "
        f"{first['test_anomalies']:,} anomalous test images, {d.get('known_anomalies', 0)} known "
        f"anomalies)"
    )
    lines = [
        provenance(command, first, date, extra),
        "",
        "| `threshold_method` | seed | threshold chosen from | TPR | TNR | balanced accuracy | "
        "AUROC | AUPR | wall time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in runs:
        lines.append(
            f"| `{m['params']['threshold_method']}` | {m['params']['seed']} | "
            f"{m['threshold_rule']} | "
            f"{_anomaly_cells(m)} | {minutes(m['wall_seconds'])} |"
        )
    if "ablation" in first:
        lines += _ablation_lines(first)
    unseen = [m for m in runs if "unseen_test" in m]
    if unseen:
        u = unseen[0]["unseen_test"]
        lines += [
            "",
            f"The same thresholds on the {u['test_normals']:,} normal and {u['test_anomalies']:,} "
            "anomalous test images that are not pixel-identical to a training image:",
            "",
            "| `threshold_method` | seed | TPR | TNR | balanced accuracy | AUROC | AUPR |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in unseen:
            lines.append(
                f"| `{m['params']['threshold_method']}` | {m['params']['seed']} | "
                f"{_anomaly_cells(m['unseen_test'])} |"
            )
    notes = ([d["validation_split"]] if d.get("validation_split") else []) + (d.get("notes") or [])
    if notes:
        lines += ["", "What the loader and the validation split noticed in this data:", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def _ablation_lines(first: dict) -> list[str]:
    """The ablation of a run's scores: each with its own threshold, chosen the same way."""
    lines = [
        "",
        f'Ablation (`threshold_method="{first["params"]["threshold_method"]}"`, seed '
        f"{first['params']['seed']}): each score with its own threshold, chosen the same way, "
        "on the same test images:",
        "",
        "| score | TPR | TNR | balanced accuracy | AUROC | AUPR |",
        "|---|---|---|---|---|---|",
    ]
    # the signals the combined score summed: those the run kept, else its candidates
    kept = [r["signal"] for r in first.get("signal_choice") or [] if r["kept"]]
    signals = kept or first["params"].get("signals")
    for row in first["ablation"]:
        name = SCORE_NAMES.get(row["score"], row["score"])
        if row["score"] == "combined" and signals:
            name = f"combined ({' + '.join(signals)})"
        lines.append(f"| {name} | {_anomaly_cells(row)} |")
    return lines


def render_study(summary: dict, table: str, command: str, date: str) -> str:
    """The study block: provenance and the table of the grid."""
    cells = summary["cells"]
    first = cells[0]
    seconds = sum(c.get("wall_seconds") or 0 for c in cells)
    # self-training arms pretrain like their base arm: scratch+self-training does not
    bases = {(base_arm(c["arm"])[0], c["pretrain_epochs"]) for c in cells}
    pretraining = sorted((arm, epochs) for arm, epochs in bases if arm != "scratch")
    pretrained = "; ".join(f"{arm} {epochs} epochs" for arm, epochs in pretraining)
    pretrained = (
        f"; pretraining on every training image without labels: {pretrained}" if pretrained else ""
    )
    line = (
        f"_Produced by `{command}` on {date}: recipe `{first['preset']}` ({first['arch']}, "
        f"width {first['width']}, {first['epochs']} epochs per run{pretrained}), "
        f"{len(cells)} runs, {minutes(seconds)} of notebook time, device {first['device']}, "
        f"{first.get('compute_dtype', '?')}._"
    )
    return f"{line}\n\n{table}"
