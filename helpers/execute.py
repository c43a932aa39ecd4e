"""Run a notebook headlessly into its own run folder: the one way the command-line
tools (``reproduce``, ``study``, ``oneclass``) execute the homeworks."""

from __future__ import annotations

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(notebook: str, out: Path, name: str, params: dict, overwrite: bool = False,
                 tag: str = "run", progress_bar: bool = True) -> dict:
    """Execute ``notebook`` (a file in the repository) through papermill into
    ``out/notebooks/<name>.ipynb``, with its run folder ``out/runs/<name>``; returns the
    run's metrics.

    A run that finished before (its ``metrics.json`` exists) is kept, unless
    ``overwrite``; an interrupted one resumes from its last checkpoint.
    """
    import papermill

    from .report import minutes

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
        str(ROOT / notebook), str(out / "notebooks" / f"{name}.ipynb"),
        parameters={**params, "results_dir": str(run_dir.parent), "run_name": name,
                    "overwrite": overwrite and metrics_path.exists(),
                    "resume": not metrics_path.exists() and (run_dir / "checkpoints" / "last.pt").exists()},
        cwd=str(ROOT), kernel_name="python3", progress_bar=progress_bar,
    )
    print(f"[{tag}] {name}: done in {minutes(time.time() - started)}", flush=True)
    return json.loads(metrics_path.read_text())
