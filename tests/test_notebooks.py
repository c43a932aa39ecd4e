"""Execute the notebooks on generated data: papermill injects small parameters into a
copy (prepare only), then nbval runs that copy cell by cell."""

import json
import os
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

from conftest import ROOT


def run_with_nbval(notebook: str, parameters: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    prepared = tmp_path / notebook
    papermill.execute_notebook(
        str(ROOT / notebook),
        str(prepared),
        parameters=parameters,
        prepare_only=True,
        kernel_name="python3",
    )
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-current-env",
            "-q",
            "-p",
            "no:cacheprovider",
            str(prepared),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.notebook
def test_hw1_notebook_executes(cifar_dir, tmp_path):
    params = dict(
        data_dir=str(cifar_dir),
        download=False,
        preset="cpu",
        epochs=2,
        arch="resnet18",
        width=8,
        batch_size=32,
        device="cpu",
        figures_dir=str(tmp_path / "figures"),
        results_dir=str(tmp_path / "results"),
        log_dir=str(tmp_path / "tb"),
    )
    done = run_with_nbval("hw1_classification.ipynb", params, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    metrics = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert {"test_accuracy", "macro_f1", "per_class", "history", "params"} <= set(metrics)
    assert metrics["params"]["epochs"] == 2 and len(metrics["history"]) == 2
    compute = metrics["compute"]  # how it computed: asked precision, type used, CPU kind
    assert compute["precision"] == "auto" and compute["compute_dtype"] in ("float32", "bfloat16")
    assert compute["cpu_capability"] in metrics["device"]
    run = Path(metrics["run_dir"])  # <results_dir>/metrics.json is a copy of the run's own
    assert run.parent == tmp_path / "results" and run.name == metrics["params"]["run_name"]
    assert {"params.json", "metrics.json", "history.json", "checkpoints", "figures"} <= {
        p.name for p in run.iterdir()
    }
    figures = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert {
        "curves.png",
        "confusion_matrix.png",
        "per_class.png",
        "misclassified.png",
        "gradient_norms.png",
        "weight_histograms.png",
        "gradient_histograms.png",
    } <= figures
    assert figures == {p.name for p in (run / "figures").glob("*.png")}
    provenance = (tmp_path / "figures" / "PROVENANCE.md").read_text()  # the figures name their run
    assert str(run.relative_to(tmp_path)) in provenance and "`curves.png`" in provenance
    assert list((tmp_path / "tb" / run.name).glob("events.out.tfevents.*"))


@pytest.mark.notebook
def test_hw2_notebook_executes(anomaly_dir, tmp_path):
    params = dict(
        dataset="folder",
        data_dir=str(anomaly_dir),
        channels=[8, 16, 32],
        latent=8,
        epochs=2,
        batch_size=32,
        device="cpu",
        autoencoders=2,
        figures_dir=str(tmp_path / "figures"),
        results_dir=str(tmp_path / "results"),
    )
    done = run_with_nbval("hw2_anomaly.ipynb", params, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    metrics = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert {"tpr", "tnr", "threshold", "auroc", "aupr", "params"} <= set(metrics)
    scores = (Path(metrics["run_dir"]) / "scores.csv").read_text().splitlines()
    assert (
        scores[0]
        == "file,label,score,reconstruction_mean,reconstruction_median,global,colour,content,"
        "texture,local,combined,in_train"
    )
    assert len(scores) == 49
    assert metrics["params"]["dataset"] == "folder" and metrics["test_anomalies"] == 8
    assert len(metrics["best_epochs"]) == 2  # one per autoencoder of the ensemble
    assert metrics["compute"]["precision"] == "auto" and "compute_dtype" in metrics["compute"]
    figures = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert {
        "loss.png",
        "threshold.png",
        "roc.png",
        "score_histograms.png",
        "reconstructions.png",
        "confusion_matrix.png",
        "signals.png",
    } <= figures
