import re

import numpy as np
import pytest
import torch

from conftest import CPU
from conftest import hw2_parameters as params
from conftest import hw2_settings as settings
from helpers import hw2
from helpers.core.errors import ParameterError
from helpers.hw2 import steps as steps2
from helpers.hw2.settings import HW2_DEFAULT_SIGNALS, resolve_hw2


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(dataset="mnist"), "dataset='mnist' is unknown; choose one of cifar10, folder"),
        (dict(threshold_method="test"), "threshold_method='test' is unknown"),
        (dict(image_size=[30, 48]), "multiple of 8"),
        (dict(epochs=0), "epochs=0 must be an integer >= 1"),
        (dict(target_tnr=1.0), "target_tnr=1.0 must lie in"),
        (dict(device="gpu"), "device='gpu' is unknown"),
        (
            dict(score="mse"),
            "score='mse' is unknown; choose one of reconstruction_mean, reconstruction_median, "
            "global, colour, content, texture, local, defects, transformation, features, "
            "mahalanobis, combined",
        ),
        (dict(duplicate_rms=-0.1), "duplicate_rms=-0.1 must lie in"),
        (dict(precision="int8"), "precision='int8' is unknown"),
        (
            dict(signals=["reconstruction", "color"]),
            "signals=.* must be a non-empty list drawn from reconstruction, global, colour, "
            "content, texture, local, defects, transformation, features, mahalanobis",
        ),
        (dict(signals=[]), "must be a non-empty list"),
        (dict(transformation_batch_size=0), "transformation_batch_size=0 must be an integer >= 1"),
        (dict(transformation_epochs=0), "transformation_epochs=0 must be an integer >= 1"),
        (dict(lr=0), "lr=0 must be a positive number"),
    ],
)
def test_bad_parameters(anomaly_dir, tmp_path, change, message):
    with pytest.raises(ParameterError, match=message):
        settings(anomaly_dir, tmp_path, **change)


def test_autoencoder_trained_on_normals_flags_anomalies(anomaly_dir, tmp_path):
    s = settings(anomaly_dir, tmp_path)
    data = hw2.load_data(s)
    parts = hw2.split(s, data)
    models = hw2.build_models(s)
    [fit_result] = hw2.train(s, models, parts, CPU, tmp_path / "run")
    losses = [h["train_loss"] for h in fit_result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert "defects" not in s.signals  # 32x56 frames: too small for the defect network
    assert hw2.train_defect_net(s, parts, CPU, tmp_path / "run") == (None, None)
    result = hw2.score_and_threshold(s, models, data, parts, CPU)
    assert result.report["auroc"] > 0.9
    assert result.report["tpr"] >= 0.75 and result.report["tnr"] >= 0.75
    # label-free: never above the validation normals' quantile (known anomalies may only lower it)
    assert result.threshold <= np.quantile(result.val_scores, s.target_tnr) + 1e-9
    assert result.how.startswith(("95.0% quantile of", "halfway from the 95.0% quantile"))
    assert [r["score"] for r in result.ablation] == [
        "reconstruction_mean",
        "reconstruction_median",
        "global",
        "colour",
        "content",
        "texture",
        "local",
        "combined",
    ]
    chosen = next(
        row for row in result.ablation if row["score"] == s.score
    )  # the ablation's row of s.score
    assert all(chosen[key] == result.report[key] for key in chosen if key != "score")
    table = hw2.ablation_table(result)
    assert list(table.columns) == ["TPR", "TNR", "AUROC", "AUPR"] and len(table) == 8


def test_metrics_are_also_reported_without_test_images_seen_in_training(anomaly_dir, tmp_path):
    from helpers.hw2.thresholds import anomaly_report

    s = settings(anomaly_dir, tmp_path, epochs=1, signals=["reconstruction", "content"])
    data = hw2.load_data(s)
    model = steps2.build_model(
        s
    )  # barely trained: the bookkeeping, not the quality, is tested here
    parts = hw2.split(s, data)
    hw2.train(s, [model], parts, CPU, tmp_path / "run")
    result = hw2.score_and_threshold(s, [model], data, parts, CPU)
    assert "unseen_test" not in result.report and "not in the training folder" not in hw2.describe(
        result.report
    )

    labels = data.test.labels.numpy()
    data.test_in_train = np.zeros(len(labels), dtype=bool)
    data.test_in_train[np.flatnonzero(labels == 0)[:5]] = True  # five normals "seen in training"
    result = hw2.score_and_threshold(s, [model], data, parts, CPU)
    unseen = result.report["unseen_test"]
    expected = anomaly_report(
        labels[~data.test_in_train], result.test_scores[~data.test_in_train], result.threshold
    )
    assert unseen == expected and unseen["test_normals"] == int((labels == 0).sum()) - 5
    assert f"on the {len(labels) - 5} test images not in the training folder: TPR" in hw2.describe(
        result.report
    )


def test_the_split_trains_on_each_distinct_image_once_and_keeps_validation_whole(
    anomaly_dir, tmp_path
):
    from helpers.core.images import ImageSet

    s = settings(anomaly_dir, tmp_path)
    data = hw2.load_data(s)
    copies = data.train.images[:5]
    images = torch.cat([data.train.images, copies])
    data.train = ImageSet(images, torch.zeros(len(images), dtype=torch.long), data.train.classes)
    parts = hw2.split(s, data)
    train = {bytes(x.numpy().tobytes()) for x in parts.train.images}
    assert len(train) == len(parts.train)  # no image twice
    every = {bytes(x.numpy().tobytes()) for x in images} - {
        bytes(x.numpy().tobytes()) for x in parts.val.images
    }
    assert train == every  # every distinct image outside validation is trained on
    assert len(parts.train) + len(parts.val) < len(images) and "exact copies" in parts.note


def test_an_ensemble_trains_each_autoencoder_from_its_own_seed_and_averages_their_error_maps(
    anomaly_dir, tmp_path
):
    from helpers.hw2.detector import Detector
    from helpers.hw2.signals import ensemble_error_maps, error_maps, reconstruct

    s = settings(anomaly_dir, tmp_path, epochs=1, autoencoders=2)
    data = hw2.load_data(s)
    parts = hw2.split(s, data)
    models = hw2.build_models(s)
    assert not torch.equal(models[0].encoder[0][0].weight, models[1].encoder[0][0].weight)
    results = hw2.train(s, models, parts, CPU, tmp_path / "run")
    assert len(results) == 2
    assert (tmp_path / "run" / "checkpoints-ae2" / "best.pt").exists()
    assert (tmp_path / "run" / "history.json").exists() and (
        tmp_path / "run" / "history-ae2.json"
    ).exists()
    images = data.test.images[:6]
    each = [error_maps(images, reconstruct(m, images, CPU)) for m in models]
    assert torch.allclose(ensemble_error_maps(models, images, CPU), (each[0] + each[1]) / 2)
    each = [
        Detector([m], CPU, jittered_copies=0)
        .fit(parts.train.images, parts.val.images)
        .raw_scores(images)
        for m in models
    ]
    both = (
        Detector(models, CPU, jittered_copies=0)
        .fit(parts.train.images, parts.val.images)
        .raw_scores(images)
    )
    # each member's global distance in its own feature space, averaged geometrically
    assert np.allclose(both["global"], np.sqrt(each[0]["global"] * each[1]["global"]))
    assert not np.allclose(each[0]["global"], each[1]["global"])
    # colour and texture need no training: the same whichever autoencoders the detector holds
    for signal in ("colour", "texture"):
        assert np.array_equal(each[0][signal], each[1][signal]) and np.array_equal(
            both[signal], each[0][signal]
        )


def test_the_ensemble_size_and_epochs_default_by_data_set_and_are_checked(anomaly_dir, tmp_path):
    folder = settings(anomaly_dir, tmp_path, autoencoders=None, epochs=None)
    cifar = settings(anomaly_dir, tmp_path, dataset="cifar10", autoencoders=None, epochs=None)
    assert (folder.autoencoders, folder.epochs, cifar.autoencoders, cifar.epochs) == (3, None, 1, 8)
    # the folder's epochs come from the training budget once the split is known (test_data_profile)
    assert steps2.autoencoder_epochs(folder, 466) > 6 * steps2.autoencoder_epochs(folder, 5766)
    with pytest.raises(ParameterError, match="autoencoders=0 must be an integer >= 1"):
        settings(anomaly_dir, tmp_path, autoencoders=0)


def test_the_course_layout_holds_out_more_validation_normals_by_default(anomaly_dir, tmp_path):
    s = settings(anomaly_dir, tmp_path, val_fraction=None, target_tnr=None)
    assert (s.val_fraction, s.target_tnr) == (0.3, 0.98)
    with pytest.raises(ParameterError, match="val_fraction=0 must lie in"):
        settings(
            anomaly_dir, tmp_path, val_fraction=0
        )  # with the parameters, before any data is read


@pytest.mark.parametrize("score", ["features", "transformation", "mahalanobis"])
def test_a_score_its_signals_do_not_compute_is_refused_before_training(
    anomaly_dir, tmp_path, score
):
    """The course's default signals train no rotation network, so its scores never exist:
    refuse them when the parameters are checked, not after every autoencoder has trained."""
    # (the 32x56 frames leave the defect network out of the folder's default candidates)
    defaults = re.escape(repr(tuple(x for x in HW2_DEFAULT_SIGNALS["folder"] if x != "defects")))
    with pytest.raises(
        ParameterError, match=f"score='{score}' is not computed with signals {defaults}"
    ):
        settings(anomaly_dir, tmp_path, score=score, signals=None)
    assert settings(anomaly_dir, tmp_path, score=score, signals=["global", score]).score == score


def test_scoring_refuses_a_score_it_does_not_compute_instead_of_returning_none(
    anomaly_dir, tmp_path
):
    from dataclasses import replace

    s = replace(settings(anomaly_dir, tmp_path), score="features")  # past the parameter check
    with pytest.raises(ParameterError, match="score='features' is not computed"):
        hw2.score_and_threshold(s, [steps2.build_model(s)], None, None, CPU)


@pytest.mark.parametrize(
    "value, message",
    [
        (3.0, r"normal_class=3.0 must be a CIFAR-10 class index \(an integer 0-9\) or name"),
        (True, r"normal_class=True must be a CIFAR-10 class index"),
        (10, r"normal_class=10 must be a CIFAR-10 class index \(an integer 0-9\)"),
        (
            "plane",
            "normal_class='plane' is not a CIFAR-10 class; choose one of airplane, automobile, "
            "bird",
        ),
    ],
)
def test_normal_class_must_be_a_class_index_or_name(anomaly_dir, tmp_path, value, message):
    """3.0 passed the range check, then failed in the loader with a bare TypeError."""
    with pytest.raises(ParameterError, match=message):
        settings(anomaly_dir, tmp_path, dataset="cifar10", normal_class=value)


def test_one_class_cifar10_takes_a_class_index_or_name_and_refuses_anything_else(cifar_dir):
    from helpers.data.anomaly_data import one_class_cifar10
    from helpers.data.cifar import load_cifar10

    train, test = load_cifar10(cifar_dir)
    by_index, by_name = one_class_cifar10(train, test, 3), one_class_cifar10(train, test, "cat")
    assert torch.equal(by_index.train.images, train.images[train.labels == 3])
    assert torch.equal(by_name.train.images, by_index.train.images) and len(by_index.train) > 0
    assert torch.equal(by_index.test.labels, (test.labels != 3).long())
    with pytest.raises(ParameterError, match="normal_class=3.0 must be a CIFAR-10 class index"):
        one_class_cifar10(train, test, 3.0)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(seed=1.5), "seed=1.5 must be an integer"),
        (dict(seed="0"), "seed='0' must be an integer"),
        (dict(val_fraction=0), r"val_fraction=0 must lie in \(0, 1\)"),
        (dict(val_fraction=1.0), r"val_fraction=1.0 must lie in \(0, 1\)"),
        (dict(val_fraction="0.3"), r"val_fraction='0.3' must lie in \(0, 1\)"),
        (dict(target_tnr="0.9"), r"target_tnr='0.9' must lie in \(0, 1\)"),
    ],
)
def test_seed_val_fraction_and_target_tnr_are_checked_with_the_parameters(
    anomaly_dir, tmp_path, change, message
):
    """They were caught late (deep inside near_duplicates) or with a bare TypeError."""
    with pytest.raises(ParameterError, match=message):
        settings(anomaly_dir, tmp_path, **change)


def test_a_parameter_left_out_takes_its_declared_default_and_a_typo_is_named(anomaly_dir, tmp_path):
    """A missing key was a bare KeyError; now every parameter has its declared default (the
    notebook's), and a name the declaration does not know is refused with the closest one."""
    given = params(anomaly_dir, tmp_path)
    del given["patience"], given["seed"]
    s = resolve_hw2(**given)
    assert (s.patience, s.seed) == (4, 0)
    with pytest.raises(
        ParameterError, match=r"unknown parameter\(s\) \['pateince'\]. Did you mean"
    ):
        resolve_hw2(**given, pateince=3)


class Interrupted(Exception):
    """Stands for a run stopped from outside (a closed laptop, a Colab time-out)."""


def _losses(fit_result):
    return [(h["train_loss"], h["val_loss"]) for h in fit_result.history]


def test_resume_continues_each_autoencoder_from_its_own_checkpoint(
    anomaly_dir, tmp_path, monkeypatch
):
    """The second autoencoder stops after one of two epochs; resuming keeps the finished first
    one and continues the second, ending as a run that was never interrupted."""
    from dataclasses import replace

    s = settings(anomaly_dir, tmp_path, epochs=2, patience=2, autoencoders=2)
    data = hw2.load_data(s)
    parts = hw2.split(s, data)
    whole = hw2.build_models(s)
    expected = hw2.train(s, whole, parts, CPU, tmp_path / "whole")

    writer = steps2.history_writer

    def stop_the_second_after_one_epoch(run_dir, name):
        hook = writer(run_dir, name)

        def record(history, model):
            hook(history, model)
            if name == "history-ae2.json" and len(history) == 1:
                raise Interrupted

        return record

    monkeypatch.setattr(steps2, "history_writer", stop_the_second_after_one_epoch)
    with pytest.raises(Interrupted):
        hw2.train(s, hw2.build_models(s), parts, CPU, tmp_path / "run")
    monkeypatch.setattr(steps2, "history_writer", writer)
    models = hw2.build_models(s)
    resumed = hw2.train(replace(s, resume=True), models, parts, CPU, tmp_path / "run")
    assert [_losses(r) for r in resumed] == [_losses(r) for r in expected]
    for a, b in zip(whole, models, strict=True):
        assert all(
            torch.equal(x, y)
            for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
        )


def test_resume_continues_the_rotation_network_from_its_checkpoint(anomaly_dir, tmp_path):
    from dataclasses import replace

    s = settings(
        anomaly_dir, tmp_path, signals=["reconstruction", "transformation"], transformation_epochs=2
    )
    parts = hw2.split(s, hw2.load_data(s))
    expected = hw2.train_transformation_net(s, parts, CPU, tmp_path / "whole")

    def stop_after_one_epoch(history, model):
        if len(history) == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        hw2.train_transformation_net(
            s, parts, CPU, tmp_path / "run", on_epoch=[stop_after_one_epoch]
        )
    resumed = hw2.train_transformation_net(replace(s, resume=True), parts, CPU, tmp_path / "run")
    assert _losses(resumed.result) == _losses(expected.result) and len(resumed.result.history) == 2
    assert all(
        torch.equal(x, y)
        for x, y in zip(
            expected.net.state_dict().values(), resumed.net.state_dict().values(), strict=True
        )
    )


def test_the_mistakes_are_the_missed_anomalies_lowest_first_and_the_false_alarms_highest_first(
    anomaly_dir, tmp_path
):
    from helpers.core.images import ImageSet
    from helpers.data.anomaly_data import ANOMALY_CLASSES, AnomalyData

    s = settings(anomaly_dir, tmp_path, signals=["reconstruction", "content", "texture"])
    labels = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    scores = np.array(
        [0.1, 0.3, 2.0, 5.0, 0.2, 3.0, 0.5, 4.0]
    )  # threshold 1: two missed, two false alarms
    images = torch.arange(8, dtype=torch.uint8).view(8, 1, 1, 1).expand(8, 3, 2, 2)
    test = ImageSet(images, labels, ANOMALY_CLASSES)
    data = AnomalyData(test.subset(torch.arange(0)), test)  # only the test images matter here
    signals = {name: scores + k for k, name in enumerate(hw2.combined_signals(s))}
    result = steps2.Hw2Result(1.0, "rule", scores, None, scores, {}, signals, [])
    picked, titles = hw2.mistakes(result, data, s)
    assert picked[:, 0, 0, 0].tolist() == [4, 1, 5, 2]  # missed 0.2, 0.3; false alarms 3.0, 2.0
    assert titles[0].startswith("missed 0.2\n") and titles[2].startswith("false alarm 3.0\n")
    assert hw2.combined_signals(s) == [f"reconstruction_{s.error_pooling}", "content", "texture"]
    assert titles[0].split("\n")[1] == "rec 0.2 cont 1.2 tex 2.2"  # each combined signal's score
