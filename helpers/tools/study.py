"""The data-fraction study of hw1: do the unlabelled images help, how, and when?

    python -m helpers.tools.study --data-dir data --preset cpu --fractions 1.0 0.5 0.1 --seeds 0 1 2

runs ``hw1_classification.ipynb`` through papermill for every cell of the grid
fraction x arm x seed (by default every arm below but the ablation's), keeping each
executed notebook, then writes ``<out>/study.json`` and figures: per fraction, validation
loss, recall, precision and F1 per epoch (each arm), and a summary of test accuracy and
macro F1. The arms are ``scratch``, ``restoration`` (the "spark" recipe), ``contrastive``
(SimCLR), and for the ablation any restoration recipe as ``restoration=<recipe>`` (e.g.
``--arms scratch restoration=dense restoration``).
An arm ending in ``+self-training`` uses the unlabelled images once more: the finished cell
of the arm before the suffix labels them for a new student (``scratch+self-training``;
``scratch+self-training+self-training`` is a second round, taught by the first's student;
each further suffix one more round).
A cell whose ``metrics.json`` already exists is not run again, and an interrupted cell
resumes from its last checkpoint, so an interrupted study continues where it stopped and
more seeds can be added later.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ..core.errors import ParameterError
from ..core.notebooks import run_notebook
from ..core.runs import write_json
from ..hw1.restoration import RESTORATION_RECIPES, restoration_recipe
from .cli import add_device_arguments, add_set_argument, command_parser, parse_assignments

# The grid the docs report: the two pretrainings, two rounds of self-training from scratch
# and four from the contrastive encoder (the best arm at 10 % of the labels), against
# scratch. The self-training arms are skipped at 100 %: no image is left unlabelled.
DEFAULT_ARMS = (
    "scratch",
    "restoration",
    "contrastive",
    "scratch+self-training",
    "scratch+self-training+self-training",
    *("contrastive" + "+self-training" * rounds for rounds in (1, 2, 3, 4)),
)
ARM_COLORS = {
    "scratch": "tab:blue",
    "restoration": "tab:orange",
    "contrastive": "tab:green",
    "scratch+self-training": "tab:purple",
    "restoration+self-training": "tab:red",
    "contrastive+self-training": "tab:olive",
    "contrastive+self-training+self-training": "tab:cyan",
    "contrastive+self-training+self-training+self-training": "tab:brown",
    "contrastive+self-training+self-training+self-training+self-training": "black",
    "scratch+self-training+self-training": "tab:pink",
}


SELF_TRAINING = "+self-training"  # an arm's suffix: its model, as teacher, pseudo-labels the rest


def base_arm(arm: str) -> tuple[str, int]:
    """The arm without its ``+self-training`` suffixes, and how many rounds they ask for."""
    rounds = 0
    while arm.endswith(SELF_TRAINING):
        arm, rounds = arm.removesuffix(SELF_TRAINING), rounds + 1
    return arm, rounds


def arm_parameters(arm: str) -> dict:
    """Notebook parameters of an arm: ``scratch``, ``contrastive``, ``restoration`` or
    ``restoration=<recipe>``, each optionally followed by ``+self-training`` (twice: a second
    round, whose teacher is the first round's student; and so on)."""

    base, rounds = base_arm(arm)
    extra = {"self_training": True} if rounds else {}
    method, _, recipe = base.partition("=")
    if method == "scratch" and not recipe:
        return {"pretrain": "none", **extra}
    if method == "contrastive" and not recipe:
        return {"pretrain": "contrastive", **extra}
    if method == "restoration":
        restoration_recipe(recipe or "spark")  # a clear error for an unknown recipe
        return {"pretrain": "restoration", "restoration": recipe or "spark", **extra}
    raise ParameterError(
        f"arm {arm!r} is unknown; use scratch, restoration, contrastive or restoration=<recipe>, "
        f"each optionally followed by {SELF_TRAINING} (e.g. scratch{SELF_TRAINING})."
    )


def self_training_rounds(params: dict, runs: Path | None = None) -> int:
    """How many rounds of self-training made a finished run: 0 without, 1 + the teacher's
    rounds with (its folder as recorded, or of the same name under ``runs``)."""
    if not params.get("self_training"):
        return 0
    if not params.get("teacher"):
        return 1
    recorded = Path(params["teacher"])
    for folder in [recorded, *([runs / recorded.name] if runs else [])]:
        if (folder / "params.json").is_file():
            return 1 + self_training_rounds(json.loads((folder / "params.json").read_text()), runs)
    return 1


def arm_of(params: dict, runs: Path | None = None) -> str:
    """The arm a finished run belongs to, from its parameters (and its teacher's, found as
    :func:`self_training_rounds` says)."""
    suffix = SELF_TRAINING * self_training_rounds(params, runs)
    pretrain = params["pretrain"]
    if pretrain == "none":
        return "scratch" + suffix
    if pretrain == "restoration":
        # runs made before recipes existed used the first pretext
        recipe = params.get("restoration", "dense")
        return ("restoration" if recipe == "spark" else f"restoration={recipe}") + suffix
    return (pretrain if pretrain == "contrastive" else "pretrained") + suffix


def cell_name(fraction: float, arm: str, seed: int) -> str:
    safe = arm.replace("=", "-").replace("+", "plus-")
    return f"f{fraction:g}-{safe}-s{seed}"


def run_cell(
    out: Path, fraction: float, arm: str, seed: int, params: dict, pretrain_dir: Path
) -> dict:
    """Execute one cell of the grid (kept if it finished before); returns its metrics. A
    self-training arm's teacher is the cell of its base arm, run first when missing."""
    name = cell_name(fraction, arm, seed)
    teacher = {}
    if arm.endswith(SELF_TRAINING):
        base = arm.removesuffix(SELF_TRAINING)  # one round fewer: the teacher's arm
        run_cell(out, fraction, base, seed, params, pretrain_dir)
        teacher = {"teacher": str(out / "runs" / cell_name(fraction, base, seed))}
    return run_notebook(
        "hw1_classification.ipynb",
        out,
        name,
        {
            **params,
            "fraction": fraction,
            "seed": seed,
            **arm_parameters(arm),
            **teacher,
            "figures_dir": str(out / "figures" / name),
            "pretrain_dir": str(pretrain_dir),
        },
        tag="study",
        progress_bar=False,
    )


def arms_in(summary: dict) -> list[str]:
    """The summary's arms: scratch, the restoration recipes in the order their fixes build
    up (dense, +patch8, ..., the default), then the others."""
    steps = [f"restoration={name}" for name in RESTORATION_RECIPES if name != "spark"] + [
        "restoration"
    ]
    found = {arm for row in summary["table"] for arm in row["arms"]}
    return sorted(
        found, key=lambda a: (a != "scratch", steps.index(a) if a in steps else len(steps), a)
    )


# Parameters that differ from cell to cell by design, and those that only a pretrained arm uses.
PER_CELL = (
    "fraction",
    "seed",
    "run_name",
    "results_dir",
    "figures_dir",
    "log_dir",
    "pretrain_dir",
    "resume",
    "overwrite",
    "teacher",
)
PER_ARM = (
    "pretrain",
    "restoration",
    "pretrain_epochs",
    "layer_decay",
    "match_init_norm",
    "self_training",
    "pseudo_share",
    "pseudo_threshold",
    "student_from_teacher",
    "student_lr",
)
# What the tuning per labelled fraction may change (presets.HW1_FRACTION_TUNING): equal
# within a fraction, free between fractions.
PER_FRACTION = (
    "tuned_for",
    "repeats",
    "lr",
    "weight_decay",
    "label_smoothing",
    "batch_size",
    "cutout",
    "trivial_augment",
    "mixup",
    "bn_lr_factor",
)


def check_same_settings(runs: list[tuple[str, dict]], runs_dir: Path | None = None) -> None:
    """Refuse to summarise cells trained with different settings: every cell must share the
    recipe, and the cells of one arm its pretraining and fine-tuning parameters too, so a
    row never averages, say, two layer-wise LR decays."""

    def differences(group: list[tuple[str, dict]], ignored: tuple[str, ...]) -> list[str]:
        first_name, first = group[0]
        found = []
        for name, params in group[1:]:
            for key in sorted(
                (set(first) & set(params)) - set(ignored)
            ):  # a key only some have: added since
                if first[key] != params[key]:
                    found.append(
                        f"{key}={first[key]!r} in {first_name} but {params[key]!r} in {name}"
                    )
        return found

    problems = differences(runs, PER_CELL + PER_ARM + PER_FRACTION)
    for fraction in {p["fraction"] for _, p in runs}:
        problems += differences(
            [(n, p) for n, p in runs if p["fraction"] == fraction], PER_CELL + PER_ARM
        )
    arms = {name: arm_of(p, runs_dir) for name, p in runs}
    for arm in set(arms.values()) - {"scratch"}:  # one pretraining, each fraction's tuning
        problems += differences(
            [(n, p) for n, p in runs if arms[n] == arm], PER_CELL + PER_FRACTION
        )
    if problems:
        raise ParameterError(
            "the study's cells were run with different settings ("
            + "; ".join(sorted(set(problems))[:3])
            + "): keep studies with different settings in different --out folders."
        )


def summarise(out: Path) -> dict:
    """Collect every finished cell under ``out/runs`` into one summary (all of them run
    with the same settings: :func:`check_same_settings`)."""
    finished = [
        (path.parent.name, json.loads(path.read_text()))
        for path in sorted((out / "runs").glob("*/metrics.json"))
    ]
    if not finished:
        raise ParameterError(
            f"no finished cell (runs/<cell>/metrics.json) in {out / 'runs'}: point --out at "
            "a study's folder, or run the study there first."
        )
    check_same_settings([(name, m["params"]) for name, m in finished], out / "runs")
    cells = []
    for _, m in finished:
        p = m["params"]
        cells.append(
            {
                "fraction": p["fraction"],
                "arm": arm_of(p, out / "runs"),
                "seed": p["seed"],
                "test_accuracy": m["test_accuracy"],
                "macro_f1": m["macro_f1"],
                "knn_accuracy": m.get("encoder_knn_accuracy"),
                "train_images": m["data"]["train_images"],
                "epochs": p["epochs"],
                "wall_seconds": m.get("wall_seconds"),
                "history": m["history"],
                "preset": p["preset"],
                "arch": p["arch"],
                "width": p["width"],
                "pretrain_epochs": p["pretrain_epochs"],
                "device": m.get("device"),
                "compute_dtype": m.get("compute", {}).get("compute_dtype", "?"),
            }
        )
    return {"cells": cells, "table": table_of(cells)}


def table_of(cells: list[dict]) -> list[dict]:
    """Per fraction, per arm: the seeds' mean and spread of test accuracy and macro F1, the
    kNN accuracy before fine-tuning, and the gain over scratch in points."""
    table = []
    for fraction in sorted({c["fraction"] for c in cells}, reverse=True):
        row = {"fraction": fraction, "arms": {}}
        for arm in sorted({c["arm"] for c in cells if c["fraction"] == fraction}):
            group = [c for c in cells if c["fraction"] == fraction and c["arm"] == arm]
            acc = np.array([c["test_accuracy"] for c in group])
            f1 = np.array([c["macro_f1"] for c in group])
            knn = np.array([c["knn_accuracy"] for c in group if c["knn_accuracy"] is not None])
            row["arms"][arm] = {
                "seeds": sorted(c["seed"] for c in group),
                "train_images": group[0]["train_images"],
                "test_accuracy_mean": float(acc.mean()),
                "test_accuracy_std": float(acc.std()),
                "macro_f1_mean": float(f1.mean()),
                "macro_f1_std": float(f1.std()),
                "knn_accuracy_mean": float(knn.mean()) if len(knn) else None,
            }
        scratch = row["arms"].get("scratch")
        for arm, stats in row["arms"].items():
            if scratch and arm != "scratch":
                stats["gain_points"] = 100 * (
                    stats["test_accuracy_mean"] - scratch["test_accuracy_mean"]
                )
        table.append(row)
    return table


def arm_color(arm: str, index: int) -> str:
    return ARM_COLORS.get(arm, f"C{3 + index}")


def arm_label(arm: str) -> str:
    """An arm as a figure's legend names it: ``contrastive+self-training+self-training`` ->
    ``contrastive + 2 rounds of self-training``."""
    base, rounds = base_arm(arm)
    if rounds == 0:
        return base
    return (
        f"{base} + self-training" if rounds == 1 else f"{base} + {rounds} rounds of self-training"
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("study", __doc__)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--preset", default="cpu", choices=("cpu", "full"))
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.5, 0.1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--arms",
        nargs="+",
        default=list(DEFAULT_ARMS),
        help="scratch, restoration, contrastive, or restoration=<recipe> for the ablation; "
        "each may end in +self-training, repeated for more rounds; default: "
        + " ".join(DEFAULT_ARMS),
    )
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--pretrain-epochs", type=int, help="default: each method's own")
    parser.add_argument("--arch")
    parser.add_argument("--width", type=int)
    parser.add_argument("--batch-size", type=int)
    add_device_arguments(parser)
    add_set_argument(parser, "any other notebook parameter for every run, e.g. lr=0.1")
    parser.add_argument("--out", default="results/hw1/study", help="runs, notebooks and study.json")
    parser.add_argument("--figures-dir", default="figures/hw1/study")
    parser.add_argument(
        "--pretrain-dir",
        help="pretrained encoders (default <out>/pretrained); share one between studies",
    )
    return parser.parse_args(argv)


def grid_parameters(args: argparse.Namespace) -> dict:
    """The notebook parameters every cell shares, checked before anything runs."""
    for arm in args.arms:
        arm_parameters(arm)  # refuse an unknown arm before anything runs
    sizes = {
        "epochs": args.epochs,
        "pretrain_epochs": args.pretrain_epochs,
        "width": args.width,
        "batch_size": args.batch_size,
    }
    for name, value in sizes.items():
        if value is not None and value < 1:  # refused now, not dropped for the preset's value
            raise ParameterError(f"--{name.replace('_', '-')} {value} must be an integer >= 1.")
    given = {k: v for k, v in {**sizes, "arch": args.arch}.items() if v is not None}
    return {
        "data_dir": str(Path(args.data_dir).expanduser().resolve()),
        "preset": args.preset,
        "download": args.download,
        "device": args.device,
        "precision": args.precision,
        **given,
        **parse_assignments(args.set),
    }


def run_grid(args: argparse.Namespace, params: dict, out: Path) -> None:
    """Every cell fraction x seed x arm, pretrained arms first (they make the shared
    encoders); a self-training arm at 100 % of the labels has nothing to pseudo-label."""
    pretrain_dir = Path(args.pretrain_dir or out / "pretrained").expanduser().resolve()
    for fraction in args.fractions:
        for seed in args.seeds:
            for arm in sorted(args.arms, key=lambda a: a == "scratch"):
                if arm.endswith(SELF_TRAINING) and fraction >= 1:
                    print(
                        f"[study] {cell_name(fraction, arm, seed)}: skipped, 100 % leaves no "
                        "unlabelled image to pseudo-label",
                        flush=True,
                    )
                    continue
                run_cell(out.resolve(), fraction, arm, seed, params, pretrain_dir)


def main(argv: list[str] | None = None) -> dict:
    # The table and figures use this module's arms and colours: imported here, one direction.
    from .study_report import markdown_table, write_figures

    args = parse(argv)
    out = Path(args.out)
    params = grid_parameters(args)
    started = time.time()
    run_grid(args, params, out)
    summary = summarise(out)
    summary["command"] = "python -m helpers.tools.study " + " ".join(argv or [])
    summary["this_invocation_seconds"] = round(time.time() - started, 1)
    write_json(out / "study.json", summary)
    write_figures(summary, Path(args.figures_dir))
    table = markdown_table(summary)
    (out / "study.md").write_text(table + "\n")
    print(table)
    return summary


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
