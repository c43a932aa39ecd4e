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
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ParameterError
from ..core.notebooks import ROOT, check_parameters, run_notebook
from ..core.runs import write_provenance, write_text
from ..hw1.restoration import RESTORATION_RECIPES
from ..hw2.thresholds import THRESHOLD_METHODS
from . import report, study, study_report
from .cli import add_device_arguments, add_set_argument, command_parser, parse_assignments

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
    parser = command_parser("reproduce", __doc__)
    parser.add_argument("--only", nargs="+", choices=STEPS, default=list(STEPS))
    add_device_arguments(parser)
    add_set_argument(
        parser,
        "extra notebook parameters for quick checks, e.g. epochs=2; hw1.width=8 or "
        "hw2.latent=8 sets one homework's parameter only",
    )
    parser.add_argument(
        "--out", help="executed notebooks and runs (default results/reproduce-<recipe>)"
    )
    parser.add_argument("--figures-dir", default=str(ROOT / "figures"))
    parser.add_argument(
        "--docs-root",
        default=str(ROOT),
        help="folder whose README.md and docs/*.md hold the results blocks",
    )
    parser.add_argument("--overwrite", action="store_true", help="run finished steps again")
    _add_hw1_arguments(parser.add_argument_group("hw1, its study and its ablation"))
    _add_hw2_arguments(parser.add_argument_group("hw2"))
    return parser.parse_args(argv)


def _add_hw1_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--recipe", choices=("cpu", "full"), default="cpu", help="hw1 preset (default cpu)"
    )
    group.add_argument("--cifar-dir", default="data", help="folder holding cifar-10-batches-py/")
    group.add_argument("--download", action="store_true", help="download CIFAR-10 if missing")
    group.add_argument("--study-fractions", type=float, nargs="+", default=[1.0, 0.5, 0.1])
    group.add_argument("--study-seeds", type=int, nargs="+", default=[0, 1, 2])
    group.add_argument(
        "--study-arms",
        nargs="+",
        default=list(study.DEFAULT_ARMS),
        help="the study's arms: scratch, restoration, contrastive, restoration=<recipe>, each "
        "optionally followed by +self-training (default: " + " ".join(study.DEFAULT_ARMS) + ")",
    )
    group.add_argument(
        "--study-epochs", type=int, help="epochs per study run (default: the preset's)"
    )
    group.add_argument("--ablation-fraction", type=float, default=0.1)
    group.add_argument(
        "--ablation-arms",
        nargs="+",
        default=list(ABLATION_ARMS),
        help="the ablation's arms (default: scratch, every restoration recipe, contrastive)",
    )


def _add_hw2_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--anomaly-dir",
        help="the course's anomaly data (train/, anomalies/, test/); default: one-class CIFAR-10",
    )
    group.add_argument(
        "--threshold-methods",
        nargs="+",
        default=["auto", "quantile"],
        choices=THRESHOLD_METHODS,
        help="hw2 runs, one per method (checked now, not after hw1 has trained)",
    )
    group.add_argument(
        "--hw2-seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="hw2 seeds (each method runs with the first; the other seeds with the first method)",
    )


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


@dataclass
class Reproduction:
    """One call of the tool: what it was asked, where it writes, and what it has done."""

    args: argparse.Namespace
    command: str  # as the results blocks and PROVENANCE.md quote it
    out: Path
    figures: Path
    docs: list[Path]  # README.md and docs/*.md, which hold the results blocks
    extra: dict[str, dict]  # --set, per homework
    cifar: str
    date: str = field(default_factory=lambda: time.strftime("%Y-%m-%d"))
    done: dict = field(default_factory=dict)

    def publish(self, block: str, content: str, folder: Path) -> None:
        """Rewrite the results block, and the figures' PROVENANCE.md, as soon as a step is done."""
        path = report.block_file(self.docs, block)
        write_text(path, report.replace_block(path.read_text(), block, content))
        write_provenance(folder, content)

    def hw1(self) -> None:
        a = self.args
        params = {
            "preset": a.recipe,
            "data_dir": self.cifar,
            "download": a.download,
            "device": a.device,
            "precision": a.precision,
            "figures_dir": str(self.figures / "hw1"),
            **self.extra["hw1"],
        }
        self.done["hw1"] = run_notebook(
            "hw1_classification.ipynb",
            self.out,
            f"hw1-{a.recipe}",
            params,
            a.overwrite,
            "reproduce",
        )
        content = report.render_hw1(self.done["hw1"], self.command, self.date)
        self.publish("hw1", content, self.figures / "hw1")

    def hw2(self) -> None:
        runs = hw2_runs(self.args, self.cifar, self.figures, self.out, self.extra["hw2"])
        self.done["hw2"] = [
            run_notebook(
                "hw2_anomaly.ipynb", self.out, name, params, self.args.overwrite, "reproduce"
            )
            for name, params in runs
        ]
        content = report.render_hw2(self.done["hw2"], self.command, self.date)
        self.publish("hw2", content, self.figures / "hw2")

    def study(self, block: str, fractions: list[float], arms: list[str], settings: dict) -> None:
        """One ``helpers.tools.study`` grid, its results block and its figures."""
        folder = self.figures / "hw1" / ("study" if block == "study" else f"study-{block}")
        study_args = self.study_arguments(block, fractions, arms, settings, folder)
        print(
            f"[reproduce] {block}: python -m helpers.tools.study " + " ".join(study_args),
            flush=True,
        )
        summary = self.done[block] = study.main(study_args)
        table = study_report.markdown_table(summary)
        self.publish(block, report.render_study(summary, table, self.command, self.date), folder)

    def study_arguments(
        self, block: str, fractions: list[float], arms: list[str], settings: dict, folder: Path
    ) -> list[str]:
        """The study's command line: the study and the ablation share pretrained encoders."""
        a = self.args
        found = ["--data-dir", self.cifar, "--preset", a.recipe, "--device", a.device]
        found += ["--precision", a.precision, "--fractions", *map(str, fractions)]
        found += ["--seeds", *map(str, a.study_seeds), "--arms", *arms]
        found += ["--out", str(self.out / block), "--figures-dir", str(folder)]
        found += ["--pretrain-dir", str(self.out / "pretrained")]
        if a.study_epochs:
            found += ["--epochs", str(a.study_epochs)]
        if a.download:
            found.append("--download")
        if settings:
            found += ["--set", *(f"{k}={json.dumps(v)}" for k, v in settings.items())]
        return found


def prepare(argv: list[str] | None) -> Reproduction:
    """The parsed command, checked before anything runs (not after an hour of training):
    the results blocks exist, the ``--set`` names are the notebooks' parameters."""
    args = parse(argv)
    argv = sys.argv[1:] if argv is None else argv
    docs = report.documentation_files(Path(args.docs_root))
    if not docs[0].exists():
        raise ParameterError(
            f"--docs-root {args.docs_root} holds no README.md; point it at the repository."
        )
    extra = homework_settings(args.set)
    for block in args.only:
        report.block_file(docs, block)
    if set(args.only) - {"hw2"}:  # hw1, study and ablation run the hw1 notebook
        check_parameters("hw1_classification.ipynb", extra["hw1"])
    if "hw2" in args.only:
        check_parameters("hw2_anomaly.ipynb", extra["hw2"])
    return Reproduction(
        args,
        command="python -m helpers.tools.reproduce " + " ".join(shlex.quote(a) for a in argv),
        out=Path(args.out or ROOT / "results" / f"reproduce-{args.recipe}").resolve(),
        figures=Path(args.figures_dir).resolve(),
        docs=docs,
        extra=extra,
        cifar=str(Path(args.cifar_dir).expanduser().resolve()),
    )


def main(argv: list[str] | None = None) -> dict:
    r = prepare(argv)
    a = r.args
    steps = {
        "hw1": r.hw1,
        "hw2": r.hw2,
        "study": lambda: r.study("study", a.study_fractions, a.study_arms, r.extra["hw1"]),
        "ablation": lambda: r.study(
            "ablation",
            [a.ablation_fraction],
            a.ablation_arms,
            {**ABLATION_SETTINGS, **r.extra["hw1"]},
        ),
    }
    for step in STEPS:
        if step in a.only:
            steps[step]()
    print(
        f"[reproduce] results blocks rewritten under {a.docs_root}; figures under {r.figures}; "
        f"executed notebooks under {r.out / 'notebooks'}",
        flush=True,
    )
    return r.done


if __name__ == "__main__":
    main()
