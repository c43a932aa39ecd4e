import pytest
import torch

from helpers import hw2
from helpers.config import resolve_hw2
from helpers.errors import ParameterError

CPU = torch.device("cpu")


def settings(anomaly_dir, tmp_path, **change):
    params = dict(dataset="folder", data_dir=str(anomaly_dir), download=False, normal_class=0,
                  train_dir=None, anomalies_dir=None, test_dir=None, annotation_file=None,
                  image_size=None, channels=[8, 16, 32], latent=8, epochs=15, batch_size=32,
                  lr=0.005, patience=15, seed=0, device="cpu", score="mse",
                  threshold_method="auto", target_tnr=0.95, val_fraction=0.2,
                  figures_dir=str(tmp_path / "f"), results_dir=str(tmp_path / "r"))
    params.update(change)
    return resolve_hw2(**params)


@pytest.mark.parametrize("change, message", [
    (dict(dataset="mnist"), "dataset='mnist' is unknown; choose one of cifar10, folder"),
    (dict(threshold_method="test"), "threshold_method='test' is unknown"),
    (dict(image_size=[30, 48]), "multiple of 8"),
    (dict(epochs=0), "epochs=0 must be an integer >= 1"),
    (dict(target_tnr=1.0), "target_tnr=1.0 must lie in"),
    (dict(device="gpu"), "device='gpu' is unknown"),
])
def test_bad_parameters(anomaly_dir, tmp_path, change, message):
    with pytest.raises(ParameterError, match=message):
        settings(anomaly_dir, tmp_path, **change)


def test_autoencoder_trained_on_normals_flags_anomalies(anomaly_dir, tmp_path):
    s = settings(anomaly_dir, tmp_path)
    data = hw2.load_data(s)
    model = hw2.build_model(s)
    fit_result, val = hw2.train(s, model, data, CPU, tmp_path / "run")
    losses = [h["train_loss"] for h in fit_result.history]
    assert losses[-1] < 0.5 * losses[0]
    result = hw2.score_and_threshold(s, model, data, val, CPU)
    assert result.report["auroc"] > 0.9
    assert result.report["tpr"] >= 0.75 and result.report["tnr"] >= 0.75
    assert "known anomalies" in result.how  # the threshold came from validation + known anomalies


def test_metrics_are_also_reported_without_test_images_seen_in_training(anomaly_dir, tmp_path):
    import numpy as np

    from helpers.anomaly import anomaly_report

    s = settings(anomaly_dir, tmp_path, epochs=1)
    data = hw2.load_data(s)
    model = hw2.build_model(s)  # untrained: the bookkeeping, not the quality, is tested here
    _, val = hw2.train(s, model, data, CPU, tmp_path / "run")
    result = hw2.score_and_threshold(s, model, data, val, CPU)
    assert "unseen_test" not in result.report and "not in the training folder" not in hw2.describe(result.report)

    labels = data.test.labels.numpy()
    data.test_in_train = np.zeros(len(labels), dtype=bool)
    data.test_in_train[np.flatnonzero(labels == 0)[:5]] = True  # five normals "seen in training"
    result = hw2.score_and_threshold(s, model, data, val, CPU)
    unseen = result.report["unseen_test"]
    expected = anomaly_report(labels[~data.test_in_train], result.test_scores[~data.test_in_train],
                              result.threshold)
    assert unseen == expected and unseen["test_normals"] == int((labels == 0).sum()) - 5
    assert f"on the {len(labels) - 5} test images not in the training folder: TPR" in hw2.describe(result.report)
