"""Run a notebook headlessly into its own run folder: the one way the command-line
tools (``reproduce``, ``study``, ``oneclass``) execute the homeworks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: helpers/core/ is two below


def check_parameters(notebook: str, names: Iterable[str]) -> None:
    """Refuse parameter names that ``notebook``'s parameters cell does not declare:
    papermill would only warn and inject an unused variable, so a typo or a recipe
    setting the notebook does not expose (``--set weight_decay=...``) would change nothing."""
    import papermill

    from .errors import ParameterError

    declared = papermill.inspect_notebook(str(ROOT / notebook))
    unknown = sorted(set(names) - set(declared))
    if unknown:
        raise ParameterError(
            f"{notebook} has no parameter(s) {unknown}; its parameters are "
            f"{sorted(declared)}. Check the spelling (with --set, hw1.NAME or "
            "hw2.NAME sets one homework's parameter only)."
        )


def run_notebook(
    notebook: str,
    out: Path,
    name: str,
    params: dict,
    overwrite: bool = False,
    tag: str = "run",
    progress_bar: bool = True,
) -> dict:
    """Execute ``notebook`` (a file in the repository) through papermill into
    ``out/notebooks/<name>.ipynb``, with its run folder ``out/runs/<name>``; returns the
    run's metrics.

    A run that finished before (its ``metrics.json`` exists) is kept, unless
    ``overwrite``; an interrupted one resumes from its last checkpoint.
    """
    import papermill

    from .progress import minutes

    check_parameters(notebook, params)
    out = Path(out)
    run_dir = out / "runs" / name
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists() and not overwrite:
        print(f"[{tag}] {name}: finished before, kept ({metrics_path})", flush=True)
        return json.loads(metrics_path.read_text())
    print(f"[{tag}] {name}: running {notebook} ...", flush=True)
    started = time.time()
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(ROOT / notebook),
        str(out / "notebooks" / f"{name}.ipynb"),
        parameters={
            **params,
            "results_dir": str(run_dir.parent),
            "run_name": name,
            "overwrite": overwrite and metrics_path.exists(),
            "resume": not metrics_path.exists() and (run_dir / "checkpoints" / "last.pt").exists(),
        },
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=progress_bar,
    )
    print(f"[{tag}] {name}: done in {minutes(time.time() - started)}", flush=True)
    return json.loads(metrics_path.read_text())
