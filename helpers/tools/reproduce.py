"""Reproduce every result in the README with one command.

    python -m helpers.tools.reproduce --recipe cpu --cifar-dir path/to/cifar10 \\
        --anomaly-dir path/to/anomaly-data

runs, through papermill and with the documented parameters:

1. ``hw1_classification.ipynb`` with the chosen recipe (``--recipe cpu`` or ``full``);
2. ``hw2_anomaly.ipynb`` on the course's anomaly data (``--anomaly-dir``; without it,
   one-class CIFAR-10), once per threshold method in ``--threshold-methods``;
3. the hw1 data-fraction study (``python -m helpers.tools.study``);
4. the ablation of the restoration pretext's fixes at 10 % of the labels (the same study
   command with one arm per restoration recipe, see ``ABLATION_ARMS``);

keeps every executed notebook under ``--out``, regenerates the figures under
``figures/`` (with a ``PROVENANCE.md`` beside them: which command, data, device and time
produced them), and rewrites the results blocks of the README and docs/ from the metrics files.
A finished step is not run again (delete its folder under ``--out``, or pass
``--overwrite``, to redo it); an interrupted training run resumes from its checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from ..core.device import PRECISIONS
from ..core.errors import ParameterError
from ..core.notebooks import ROOT, check_parameters, run_notebook
from ..core.runs import write_provenance, write_text
from ..hw1.restoration import RESTORATION_RECIPES
from ..hw2.thresholds import THRESHOLD_METHODS
from . import report, study
from .cli import parse_assignments

# The ablation: scratch, each restoration recipe on the way to the default ("spark", the
# arm "restoration") and the contrastive baseline. It was measured with the layer-wise LR
# decay that was then the default, which it keeps so that its rows compare the pretexts only.
ABLATION_ARMS = (
    "scratch",
    *(f"restoration={name}" for name in RESTORATION_RECIPES if name != "spark"),
    "restoration",
    "contrastive",
)
ABLATION_SETTINGS = {"layer_decay": 0.7}
STEPS = ("hw1", "hw2", "study", "ablation")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.tools.reproduce",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--recipe", choices=("cpu", "full"), default="cpu", help="hw1 preset (default cpu)"
    )
    parser.add_argument("--cifar-dir", default="data", help="folder holding cifar-10-batches-py/")
    parser.add_argument("--download", action="store_true", help="download CIFAR-10 if missing")
    parser.add_argument(
        "--anomaly-dir",
        default=None,
        help="the course's anomaly data (train/, anomalies/, test/); default: one-class CIFAR-10",
    )
    parser.add_argument(
        "--threshold-methods",
        nargs="+",
        default=["auto", "quantile"],
        choices=THRESHOLD_METHODS,
        help="hw2 runs, one per method (checked now, not after hw1 has trained)",
    )
    parser.add_argument(
        "--hw2-seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="hw2 seeds (each method runs with the first; the other seeds with the first method)",
    )
    parser.add_argument("--study-fractions", type=float, nargs="+", default=[1.0, 0.5, 0.1])
    parser.add_argument("--study-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--study-arms",
        nargs="+",
        default=list(study.DEFAULT_ARMS),
        help="the study's arms: scratch, restoration, contrastive, restoration=<recipe>",
    )
    parser.add_argument(
        "--study-epochs",
        type=int,
        default=None,
        help="epochs per study run (default: the preset's)",
    )
    parser.add_argument("--ablation-fraction", type=float, default=0.1)
    parser.add_argument(
        "--ablation-arms",
        nargs="+",
        default=list(ABLATION_ARMS),
        help="the ablation's arms (default: scratch, every restoration recipe, contrastive)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: bf16/fp16 only where the hardware has them; fp32 everywhere else",
    )
    parser.add_argument("--only", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="extra notebook parameters for quick checks, e.g. epochs=2; "
        "hw1.width=8 or hw2.latent=8 sets one homework's parameter only",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="executed notebooks and runs (default results/reproduce-<recipe>)",
    )
    parser.add_argument("--figures-dir", default=str(ROOT / "figures"))
    parser.add_argument(
        "--docs-root",
        default=str(ROOT),
        help="folder whose README.md and docs/*.md hold the results blocks",
    )
    parser.add_argument("--overwrite", action="store_true", help="run finished steps again")
    return parser.parse_args(argv)


def homework_settings(items: list[str]) -> dict[str, dict]:
    """The ``--set`` items per homework: ``NAME=VALUE`` reaches both, ``hw1.NAME=VALUE`` or
    ``hw2.NAME=VALUE`` one; any other dotted name is refused (it would reach neither)."""
    chosen: dict[str, list[str]] = {"hw1": [], "hw2": []}
    for item in items:
        prefix, dot, _ = item.split("=", 1)[0].partition(".")
        if dot and prefix not in chosen:
            raise ParameterError(
                f"--set {item}: a name with a dot must start with 'hw1.' or 'hw2.' "
                "(hw1.NAME or hw2.NAME sets one homework's parameter, NAME both)."
            )
        for hw in [prefix] if dot else chosen:
            chosen[hw].append(item.removeprefix(hw + "."))
    return {hw: parse_assignments(found) for hw, found in chosen.items()}


def hw2_runs(
    args: argparse.Namespace, cifar: str, figures: Path, out: Path, extra: dict
) -> list[tuple[str, dict]]:
    """The hw2 notebook's runs, each a name and parameters: every threshold method with the
    first seed, then the first method with each other seed; on the course's data
    (``--anomaly-dir``), else on one-class CIFAR-10."""
    data = (
        {"dataset": "folder", "data_dir": str(Path(args.anomaly_dir).expanduser().resolve())}
        if args.anomaly_dir
        else {"dataset": "cifar10", "data_dir": cifar, "download": args.download}
    )
    plan = [(method, args.hw2_seeds[0]) for method in args.threshold_methods]
    plan += [(args.threshold_methods[0], seed) for seed in args.hw2_seeds[1:]]
    runs = []
    for i, (method, seed) in enumerate(plan):
        name = f"hw2-{method}" + (f"-seed{seed}" if seed != args.hw2_seeds[0] else "")
        runs.append(
            (
                name,
                {
                    **data,
                    "device": args.device,
                    "precision": args.precision,
                    "threshold_method": method,
                    "seed": seed,
                    **extra,
                    # the first run's figures are the README's; the others' stay in their run
                    # folders
                    "figures_dir": str(figures / "hw2" if i == 0 else out / "figures" / name),
                },
            )
        )
    return runs


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = "python -m helpers.tools.reproduce " + " ".join(shlex.quote(a) for a in argv)
    out = Path(args.out or ROOT / "results" / f"reproduce-{args.recipe}").resolve()
    figures = Path(args.figures_dir).resolve()
    docs = report.documentation_files(Path(args.docs_root))
    if not docs[0].exists():
        raise ParameterError(
            f"--docs-root {args.docs_root} holds no README.md; point it at the repository."
        )
    extra = homework_settings(args.set)
    for block in args.only:  # fail now, not after an hour of training
        report.block_file(docs, block)
    if set(args.only) - {"hw2"}:  # hw1, study and ablation run the hw1 notebook
        check_parameters("hw1_classification.ipynb", extra["hw1"])
    if "hw2" in args.only:
        check_parameters("hw2_anomaly.ipynb", extra["hw2"])
    cifar = str(Path(args.cifar_dir).expanduser().resolve())
    date = time.strftime("%Y-%m-%d")
    done: dict = {}

    def publish(block: str, content: str, folder: Path) -> None:
        """Rewrite the results block, and the figures' PROVENANCE.md, as soon as a step is done."""
        path = report.block_file(docs, block)
        write_text(path, report.replace_block(path.read_text(), block, content))
        write_provenance(folder, content)

    if "hw1" in args.only:
        params = {
            "preset": args.recipe,
            "data_dir": cifar,
            "download": args.download,
            "device": args.device,
            "precision": args.precision,
            "figures_dir": str(figures / "hw1"),
            **extra["hw1"],
        }
        done["hw1"] = run_notebook(
            "hw1_classification.ipynb",
            out,
            f"hw1-{args.recipe}",
            params,
            args.overwrite,
            "reproduce",
        )
        publish("hw1", report.render_hw1(done["hw1"], command, date), figures / "hw1")

    if "hw2" in args.only:
        done["hw2"] = [
            run_notebook("hw2_anomaly.ipynb", out, name, params, args.overwrite, "reproduce")
            for name, params in hw2_runs(args, cifar, figures, out, extra["hw2"])
        ]
        publish("hw2", report.render_hw2(done["hw2"], command, date), figures / "hw2")

    def run_study(
        block: str, fractions: list[float], arms: list[str], settings: dict, folder: Path
    ) -> None:
        """One ``helpers.tools.study`` grid, its results block and its figures."""
        study_args = [
            "--data-dir",
            cifar,
            "--preset",
            args.recipe,
            "--device",
            args.device,
            "--precision",
            args.precision,
            "--fractions",
            *map(str, fractions),
            "--seeds",
            *map(str, args.study_seeds),
            "--arms",
            *arms,
            "--out",
            str(out / block),
            "--figures-dir",
            str(folder),
            "--pretrain-dir",
            str(out / "pretrained"),
        ]  # the study and the ablation share encoders
        if args.study_epochs:
            study_args += ["--epochs", str(args.study_epochs)]
        if args.download:
            study_args.append("--download")
        if settings:
            study_args += ["--set", *(f"{k}={json.dumps(v)}" for k, v in settings.items())]
        print(
            f"[reproduce] {block}: python -m helpers.tools.study " + " ".join(study_args),
            flush=True,
        )
        summary = study.main(study_args)
        done[block] = summary
        publish(
            block,
            report.render_study(summary, study.markdown_table(summary), command, date),
            folder,
        )

    if "study" in args.only:
        run_study(
            "study", args.study_fractions, args.study_arms, extra["hw1"], figures / "hw1" / "study"
        )
    if "ablation" in args.only:
        run_study(
            "ablation",
            [args.ablation_fraction],
            args.ablation_arms,
            {**ABLATION_SETTINGS, **extra["hw1"]},
            figures / "hw1" / "study-ablation",
        )

    print(
        f"[reproduce] results blocks rewritten under {args.docs_root}; figures under {figures}; "
        f"executed notebooks under {out / 'notebooks'}",
        flush=True,
    )
    return done


if __name__ == "__main__":
    main()
