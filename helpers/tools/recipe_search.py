"""The search behind hw1's per-fraction settings, on the validation split only.

    python -m helpers.tools.recipe_search --data-dir data --preset cpu --fraction 0.1 --seeds 0 \\
        --try lr=0.05 --try weight_decay=5e-3 --try label_smoothing=0.1 --epochs 15

trains the base recipe (the preset with the settings tuned for that fraction) and each
``--try`` (settings that replace the base's, several per try allowed) on the labelled
images of ``--fraction``, and ranks them by the best 5-epoch mean validation accuracy,
averaged over the seeds. The test batch is never opened (``load_data(with_test=False)``).
``--epochs`` shortens every candidate alike (the ranking is what counts); each finished
candidate is kept in ``<out>/<name>.json`` and not trained again.

The student of a self-training round is searched the same way: with
``--set self_training=true teacher=<finished run>`` each candidate's settings train the
student only (the teacher is loaded, not trained), and its validation accuracy ranks it.
``{seed}`` in ``teacher`` stands for the candidate's seed, so one search can read each
seed's own teacher, e.g. ``teacher=results/hw1/study/runs/f0.1-contrastive-s{seed}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import hw1
from ..core.device import select_device
from ..core.runs import write_json
from ..hw1.settings import resolve_hw1
from .cli import add_device_arguments, add_set_argument, command_parser, parse_assignments


def candidate_name(overrides: dict[str, Any]) -> str:
    """``{"lr": 0.05}`` -> ``"lr=0.05"``; the base recipe is ``"base"``."""
    return ",".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "base"


def for_seed(params: dict[str, Any], seed: int) -> dict[str, Any]:
    """The parameters of one seed's run: ``seed`` set, and ``{seed}`` in ``teacher``
    replaced by it (each seed's teacher saw that seed's labelled images)."""
    teacher = params.get("teacher")
    if teacher:
        params = {**params, "teacher": str(teacher).replace("{seed}", str(seed))}
    return {**params, "seed": seed}


def validation_score(base: dict[str, Any], overrides: dict[str, Any], seed: int, out: Path) -> dict:
    """Train one candidate on one seed (or read its finished record) and return its best
    5-epoch mean validation accuracy, with the run's length. With ``self_training`` the
    score is the student's, trained with the candidate's settings."""
    path = out / f"{candidate_name(overrides)}-s{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    s = resolve_hw1(**for_seed({**base, **overrides}, seed), run_name=f"search-{seed}")
    device = select_device(s.device)
    data = hw1.load_data(s, with_test=False)
    model = hw1.build_model(s)
    hw1.apply_pretraining(s, model, data, device)
    started = time.time()
    run = out / "runs" / path.stem
    result = hw1.train(s, model, data, device, run)
    pseudo = {}
    if s.self_training:  # the teacher (loaded or trained above) labels, the student is scored
        _, result, kept = hw1.self_train(s, model, data, device, run)
        pseudo = {"pseudo_labels": kept["pseudo_labels"]}
    record = {
        "overrides": overrides,
        "seed": seed,
        "val_score": result.best_score,
        "best_epoch": result.best_epoch,
        "epochs": s.epochs,
        "train_images": len(data.train),
        **pseudo,
        "seconds": round(time.time() - started, 1),
    }
    write_json(path, record)
    return record


def rank(records: list[dict]) -> list[dict]:
    """Mean validation score per candidate over its seeds, best first."""
    by_name: dict[str, list[dict]] = {}
    for r in records:
        by_name.setdefault(candidate_name(r["overrides"]), []).append(r)
    rows = [
        {
            "candidate": name,
            "overrides": group[0]["overrides"],
            "seeds": [r["seed"] for r in group],
            "val_score": float(np.mean([r["val_score"] for r in group])),
            "seconds": float(sum(r["seconds"] for r in group)),
        }
        for name, group in by_name.items()
    ]
    return sorted(rows, key=lambda r: -r["val_score"])


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("recipe_search", __doc__)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--preset", default="cpu", choices=("cpu", "full"))
    parser.add_argument("--fraction", type=float, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, help="shorten every candidate alike")
    parser.add_argument(
        "--try",
        dest="tries",
        nargs="+",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one candidate: settings replacing the base's (repeat --try for more candidates)",
    )
    add_set_argument(parser, "for every candidate")
    add_device_arguments(parser)
    parser.add_argument("--out", default="results/hw1/recipe_search")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse(argv)
    out = Path(args.out) / f"f{args.fraction:g}"
    base: dict[str, Any] = {
        "preset": args.preset,
        "data_dir": str(Path(args.data_dir).expanduser().resolve()),
        "download": False,
        "fraction": args.fraction,
        "device": args.device,
        "precision": args.precision,
        "figures_dir": str(out / "figures"),
        "results_dir": str(out / "runs"),
        "epochs": args.epochs,
        **parse_assignments(args.set),
    }
    candidates: list[dict[str, Any]] = [{}] + [parse_assignments(items) for items in args.tries]
    for overrides in candidates:  # every candidate is checked before any trains
        for seed in args.seeds:
            resolve_hw1(**for_seed({**base, **overrides}, seed))
    records = [validation_score(base, o, seed, out) for o in candidates for seed in args.seeds]
    table = rank(records)
    command = "python -m helpers.tools.recipe_search " + " ".join(argv or [])
    write_json(out / "search.json", {"command": command, "ranking": table})
    for row in table:
        print(
            f"{row['val_score']:.4f}  {row['candidate']}  "
            f"(seeds {row['seeds']}, {row['seconds'] / 60:.1f} min)"
        )
    return table


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
