"""The same parameters and seed give the same metrics.json numbers on two CPU runs
(pretraining, fine-tuning, test report and kNN for hw1; the whole notebook for hw2)."""

import json

import papermill
import pytest

from test_notebooks import ROOT

TIMING = {"seconds", "train_seconds", "wall_seconds"}


def numbers(path):
    """metrics.json without wall-clock timings."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(path.read_text()))


def run_twice(notebook, params, tmp_path):
    results = []
    for run in ("a", "b"):
        out = tmp_path / run
        out.mkdir()
        papermill.execute_notebook(
            str(ROOT / notebook), str(out / notebook), cwd=str(ROOT), kernel_name="python3",
            progress_bar=False,
            parameters={**params, "results_dir": str(out / "results"), "figures_dir": str(out / "fig")})
        results.append(numbers(out / "results" / "metrics.json"))
    return results


def run_hw1_steps(cifar_dir, out):
    """The notebook's computing cells, in-process (the notebook itself runs in
    test_notebooks; its figures change no number)."""
    import time

    import torch

    from helpers import hw1
    from helpers.config import resolve_hw1
    from helpers.runs import start_run

    s = resolve_hw1("cpu", data_dir=str(cifar_dir), download=False, fraction=1.0, epochs=2, width=8,
                    batch_size=32, seed=0, device="cpu", figures_dir=str(out / "fig"),
                    results_dir=str(out / "results"), pretrain="restoration", pretrain_epochs=1,
                    pretrain_dir=str(out / "pre"))
    device = torch.device("cpu")
    run_dir = start_run(s)
    data = hw1.load_data(s)
    model = hw1.build_model(s)
    encoder = hw1.apply_pretraining(s, model, data, device)
    knn = hw1.feature_quality(model, data, device, s.precision)
    result = hw1.train(s, model, data, device, run_dir)
    test = hw1.test_report(model, data, device, s.precision, s.tta_shift)
    return numbers(hw1.save_metrics(s, run_dir, test, result, data, device, time.time(), encoder, knn))


def test_hw1_twice_gives_identical_metrics(cifar_dir, tmp_path):
    a, b = (run_hw1_steps(cifar_dir, tmp_path / run) for run in ("a", "b"))
    assert a["history"] and a["test_accuracy"] == b["test_accuracy"]
    assert a["history"] == b["history"] and a["per_class"] == b["per_class"]
    assert a["encoder_knn_accuracy"] == b["encoder_knn_accuracy"]
    assert a["data"]["train_fingerprint"] == b["data"]["train_fingerprint"]


@pytest.mark.notebook
def test_hw2_twice_gives_identical_metrics(anomaly_dir, tmp_path):
    a, b = run_twice("hw2_anomaly.ipynb", dict(
        dataset="folder", data_dir=str(anomaly_dir), channels=[8, 16, 32], latent=8, epochs=2,
        batch_size=32, device="cpu", autoencoders=1), tmp_path)
    for key in ("tpr", "tnr", "threshold", "auroc", "aupr", "history"):
        assert a[key] == b[key], key
