"""The same parameters and seed give the same metrics.json numbers on two CPU runs
(pretraining, fine-tuning, test report and kNN for hw1; training the autoencoder ensemble,
scoring and the threshold for hw2), with the notebooks' computing steps run in-process."""

import json

import nbformat
import papermill

from conftest import ROOT, hw1_settings

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


def run_hw1_steps(cifar_dir, out):
    """The notebook's computing cells, in-process (the notebook itself runs in
    test_notebooks; its figures change no number)."""
    import time

    import torch

    from helpers import hw1
    from helpers.core.runs import start_run

    s = hw1_settings(cifar_dir, out, batch_size=32, pretrain="restoration", pretrain_epochs=1)
    device = torch.device("cpu")
    run_dir = start_run(s)
    data = hw1.load_data(s)
    model = hw1.build_model(s)
    encoder = hw1.apply_pretraining(s, model, data, device)
    knn = hw1.feature_quality(model, data, device, s.precision)
    result = hw1.train(s, model, data, device, run_dir)
    test = hw1.test_report(model, data, device, s.precision, s.tta_shift)
    return numbers(
        hw1.save_metrics(s, run_dir, test, result, data, device, time.time(), encoder, knn)
    )


def test_hw1_twice_gives_identical_metrics(cifar_dir, tmp_path):
    a, b = (run_hw1_steps(cifar_dir, tmp_path / run) for run in ("a", "b"))
    assert a["history"] and a["test_accuracy"] == b["test_accuracy"]
    assert a["history"] == b["history"] and a["per_class"] == b["per_class"]
    assert a["encoder_knn_accuracy"] == b["encoder_knn_accuracy"]
    assert a["data"]["train_fingerprint"] == b["data"]["train_fingerprint"]


def notebook_defaults(notebook: str) -> dict:
    """The values the notebook's parameters cell assigns to the parameters it declares."""
    cell = next(
        c
        for c in nbformat.read(ROOT / notebook, as_version=4).cells
        if "parameters" in c.metadata.get("tags", [])
    )
    namespace: dict = {}
    exec(cell.source, namespace)
    return {name: namespace[name] for name in papermill.inspect_notebook(str(ROOT / notebook))}


def run_hw2_steps(anomaly_dir, out):
    """The hw2 notebook's computing cells, in-process, as for hw1 (the notebook itself runs
    in test_notebooks; its figures change no number)."""
    import time

    import torch

    from helpers import hw2
    from helpers.core.runs import start_run
    from helpers.hw2.settings import resolve_hw2

    params = notebook_defaults("hw2_anomaly.ipynb") | dict(
        dataset="folder",
        data_dir=str(anomaly_dir),
        channels=[8, 16, 32],
        latent=8,
        epochs=2,
        batch_size=32,
        device="cpu",
        autoencoders=2,
        defect_epochs=2,
        figures_dir=str(out / "fig"),
        results_dir=str(out / "results"),
    )
    s = resolve_hw2(**params)
    device = torch.device("cpu")
    run_dir = start_run(s)
    data = hw2.load_data(s)
    parts = hw2.split(s, data)
    models = hw2.build_models(s)
    fits = hw2.train(s, models, parts, device, run_dir)
    transformation = hw2.train_transformation_net(s, parts, device, run_dir)
    defect_net, _ = hw2.train_defect_net(s, parts, device, run_dir)
    result = hw2.score_and_threshold(s, models, data, parts, device, transformation, defect_net)
    return numbers(hw2.save_metrics(s, run_dir, result, fits, data, parts, device, time.time()))


def test_hw2_twice_gives_identical_metrics(anomaly_dir, tmp_path):
    a, b = (run_hw2_steps(anomaly_dir, tmp_path / run) for run in ("a", "b"))
    assert a["history"] and len(a["best_epochs"]) == 2
    for key in ("tpr", "tnr", "threshold", "auroc", "aupr", "history", "best_epochs"):
        assert a[key] == b[key], key
