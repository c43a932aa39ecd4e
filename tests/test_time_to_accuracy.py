import json

import pytest

from helpers.core.errors import DataError
from helpers.tools import time_to_accuracy


def write_run(folder, seconds, accuracies, test):
    folder.mkdir(parents=True)
    history = [
        {"epoch": i + 1, "seconds": s, "val_accuracy": a}
        for i, (s, a) in enumerate(zip(seconds, accuracies, strict=True))
    ]
    (folder / "metrics.json").write_text(
        json.dumps({"history": history, "test_accuracy": test, "params": {}})
    )


def test_curves_accumulate_epoch_seconds_and_the_figure_has_a_line_per_run(tmp_path):
    write_run(tmp_path / "old", [60, 60, 60], [0.3, 0.5, 0.6], 0.61)
    write_run(tmp_path / "new", [30, 30], [0.5, 0.7], 0.72)
    curve = time_to_accuracy.load_curve(tmp_path / "old")
    assert curve["minutes"].tolist() == [1.0, 2.0, 3.0] and curve["test_accuracy"] == 0.61
    out = time_to_accuracy.main(
        [
            str(tmp_path / "old"),
            str(tmp_path / "new"),
            "--labels",
            "old",
            "new",
            "--target",
            "0.78",
            "--scale",
            "2",
            "--out",
            str(tmp_path / "t.png"),
        ]
    )
    assert out.exists()
    fig = time_to_accuracy.plot_time_to_accuracy(
        {"old": curve, "new": time_to_accuracy.load_curve(tmp_path / "new")}, target=0.78, scale=2
    )
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["old: test 0.610 after 6 min", "new: test 0.720 after 2 min", "target 0.78"]


def test_a_folder_without_metrics_is_named(tmp_path):
    with pytest.raises(DataError, match="does not exist: give the folder of a finished hw1 run"):
        time_to_accuracy.load_curve(tmp_path / "nowhere")
