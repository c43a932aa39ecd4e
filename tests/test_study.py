import json
import re

import pytest

from conftest import HW1_BASE
from helpers.core.errors import ParameterError
from helpers.tools import study, study_report


@pytest.mark.notebook
def test_study_runs_the_grid_and_summarises_it(cifar_dir, tmp_path, capsys):
    common = [
        "--data-dir",
        str(cifar_dir),
        "--seeds",
        "0",
        "--epochs",
        "1",
        "--pretrain-epochs",
        "1",
        "--width",
        "4",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "study"),
        "--figures-dir",
        str(tmp_path / "fig"),
    ]
    summary = study.main(
        ["--fractions", "0.5", "--arms", "scratch", "restoration", "contrastive", *common]
    )
    assert {(c["fraction"], c["arm"]) for c in summary["cells"]} == {
        (0.5, "scratch"),
        (0.5, "restoration"),
        (0.5, "contrastive"),
    }
    assert (
        len(list((tmp_path / "study" / "notebooks").glob("*.ipynb"))) == 3
    )  # executed copies kept
    encoders = sorted(p.name for p in (tmp_path / "study" / "pretrained").glob("encoder-*.pt"))
    assert (
        len(encoders) == 2 and "contrastive" in encoders[0] and "restoration-spark" in encoders[1]
    )
    cells = {c["arm"]: c for c in summary["cells"]}
    for (
        cell
    ) in cells.values():  # kNN of every encoder, random included: a share of the 40 test images
        correct = cell["knn_accuracy"] * 40
        assert correct == pytest.approx(round(correct), abs=1e-4)

    # a second invocation keeps finished cells instead of running them again
    capsys.readouterr()
    summary = study.main(["--fractions", "0.5", "--arms", "scratch", "contrastive", *common])
    printed = capsys.readouterr().out
    assert (
        "f0.5-scratch-s0: finished before, kept" in printed
        and "f0.5-contrastive-s0: finished before, kept" in printed
    )
    assert "running" not in printed and "| 0.5 | " in printed and len(summary["cells"]) == 3

    # self-training: the finished scratch cell is the teacher, only the student trains
    summary = study.main(
        [
            "--fractions",
            "0.5",
            "--arms",
            "scratch+self-training",
            *common,
            "--set",
            "pseudo_threshold=0",
        ]
    )
    printed = capsys.readouterr().out
    assert "f0.5-scratch-s0: finished before, kept" in printed
    assert "f0.5-scratchplus-self-training-s0: running" in printed
    student = json.loads(
        (
            tmp_path / "study" / "runs" / "f0.5-scratchplus-self-training-s0" / "metrics.json"
        ).read_text()
    )
    assert (
        student["params"]["teacher"].endswith("f0.5-scratch-s0")
        and student["params"]["self_training"]
    )
    assert student["self_training"]["trained_images"] > student["data"]["train_images"]
    assert {c["arm"] for c in summary["cells"]} == {
        "scratch",
        "restoration",
        "contrastive",
        "scratch+self-training",
    }
    saved = json.loads((tmp_path / "study" / "study.json").read_text())
    arms = saved["table"][0]["arms"]
    from helpers import hw1
    from helpers.hw1.settings import resolve_hw1

    full = len(hw1.load_data(resolve_hw1("cpu", **{**HW1_BASE, "data_dir": str(cifar_dir)})).train)
    assert (
        abs(arms["scratch"]["train_images"] - full / 2) <= 10
    )  # half of each class, rounded per class
    accuracy = {
        arm: json.loads(
            (tmp_path / "study" / "runs" / f"f0.5-{arm}-s0" / "metrics.json").read_text()
        )["test_accuracy"]
        for arm in ("scratch", "contrastive")
    }  # what each run measured
    gain = 100 * (accuracy["contrastive"] - accuracy["scratch"])
    assert arms["contrastive"]["gain_points"] == pytest.approx(gain)
    assert {p.name for p in (tmp_path / "fig").iterdir()} == {
        "curves_f0.5.png",
        "summary.png",
        "accuracy_vs_labels.png",
    }


def test_arms_name_their_notebook_parameters_and_unknown_ones_are_refused():
    assert study.arm_parameters("restoration=+patch8") == {
        "pretrain": "restoration",
        "restoration": "+patch8",
    }
    assert study.arm_parameters("restoration") == {
        "pretrain": "restoration",
        "restoration": "spark",
    }
    assert (
        study.arm_of({"pretrain": "restoration", "restoration": "+patch8"}) == "restoration=+patch8"
    )
    assert study.cell_name(0.1, "restoration=+patch8", 2) == "f0.1-restoration-plus-patch8-s2"
    with pytest.raises(ParameterError, match="arm 'pretrained' is unknown"):
        study.arm_parameters("pretrained")
    assert study.arm_parameters("restoration+self-training") == {
        "pretrain": "restoration",
        "restoration": "spark",
        "self_training": True,
    }
    assert study.arm_of({"pretrain": "none", "self_training": True}) == "scratch+self-training"
    assert study.arm_parameters("scratch+self-training+self-training") == {
        "pretrain": "none",
        "self_training": True,
    }
    assert study.base_arm("restoration=+patch8+self-training+self-training") == (
        "restoration=+patch8",
        2,
    )
    with pytest.raises(ParameterError, match="arm 'pretrained\\+self-training' is unknown"):
        study.arm_parameters("pretrained+self-training")
    with pytest.raises(ParameterError, match="restoration='nope' is unknown"):
        study.arm_parameters("restoration=nope")


def _finished_cell(out, name, **params):
    """A finished cell's metrics.json, as a notebook run writes it (only what summarise reads)."""
    recipe = {
        "preset": "cpu",
        "arch": "resnet18",
        "width": 32,
        "epochs": 50,
        "lr": 0.1,
        "fraction": 0.1,
        "seed": 0,
        "pretrain": "none",
        "restoration": "spark",
        "pretrain_epochs": 15,
        "layer_decay": 1.0,
        "run_name": name,
        "figures_dir": f"fig/{name}",
    }
    folder = out / "runs" / name
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "params": {**recipe, **params},
                "test_accuracy": 0.5,
                "macro_f1": 0.5,
                "data": {"train_images": 100},
                "history": [],
            }
        )
    )


def test_summary_refuses_cells_run_with_different_settings(tmp_path):
    # scratch ignores the fine-tuning's layer decay; the pretrained arm's seeds share theirs
    _finished_cell(tmp_path, "f0.1-scratch-s0")
    _finished_cell(tmp_path, "f0.1-restoration-s0", pretrain="restoration", layer_decay=0.7)
    _finished_cell(tmp_path, "f0.1-restoration-s1", pretrain="restoration", layer_decay=0.7, seed=1)
    summary = study.summarise(tmp_path)
    assert summary["table"][0]["arms"]["restoration"]["seeds"] == [0, 1]

    _finished_cell(tmp_path, "f0.1-restoration-s2", pretrain="restoration", layer_decay=1.0, seed=2)
    with pytest.raises(
        ParameterError,
        match="layer_decay=0.7 in f0.1-restoration-s0 but 1.0 in "
        "f0.1-restoration-s2.*different --out folders",
    ):
        study.summarise(tmp_path)

    # each labelled fraction may have its own tuned settings, shared by its arms
    other = tmp_path / "other"
    _finished_cell(other, "f0.1-scratch-s0")
    _finished_cell(other, "f0.5-contrastive-s0", pretrain="contrastive", fraction=0.5, lr=0.05)
    assert len(study.summarise(other)["table"]) == 2
    _finished_cell(other, "f0.1-contrastive-s0", pretrain="contrastive", lr=0.05)
    with pytest.raises(
        ParameterError, match="lr=0.05 in f0.1-contrastive-s0 but 0.1 in f0.1-scratch-s0"
    ):
        study.summarise(other)
    _finished_cell(other, "f0.1-contrastive-s1", pretrain="contrastive", seed=1, epochs=60)
    with pytest.raises(
        ParameterError, match="epochs=50 in f0.1-contrastive-s0 but 60 in f0.1-contrastive-s1"
    ):
        study.summarise(other)


def test_summary_lets_an_arm_take_each_fraction_s_tuning_but_not_two_pretrainings(tmp_path):
    # the cpu preset tunes 10 % of the labels (mixup) but not 100 %: one arm spans both
    tuned = {"fraction": 0.1, "tuned_for": 0.1, "mixup": 0.2}
    full = {"fraction": 1.0, "tuned_for": 1.0, "mixup": 0.0}
    _finished_cell(tmp_path, "f0.1-scratch-s0", **tuned)
    _finished_cell(tmp_path, "f1-scratch-s0", **full)
    _finished_cell(tmp_path, "f0.1-contrastive-s0", pretrain="contrastive", **tuned)
    _finished_cell(tmp_path, "f1-contrastive-s0", pretrain="contrastive", **full)
    table = study.summarise(tmp_path)["table"]
    assert [(r["fraction"], sorted(r["arms"])) for r in table] == [
        (1.0, ["contrastive", "scratch"]),
        (0.1, ["contrastive", "scratch"]),
    ]

    _finished_cell(
        tmp_path, "f1-contrastive-s1", pretrain="contrastive", seed=1, pretrain_epochs=30, **full
    )
    with pytest.raises(
        ParameterError,
        match="pretrain_epochs=15 in f0.1-contrastive-s0 but 30 in f1-contrastive-s1",
    ):
        study.summarise(tmp_path)


def _arm(seeds, acc, std, knn=None, gain=None):
    arm = {
        "seeds": seeds,
        "train_images": 100,
        "test_accuracy_mean": acc,
        "test_accuracy_std": std,
        "macro_f1_mean": acc,
        "macro_f1_std": std,
        "knn_accuracy_mean": knn,
    }
    if gain is not None:
        arm["gain_points"] = gain
    return arm


def test_markdown_table_shows_spread_only_over_several_seeds():
    summary = {
        "table": [
            {
                "fraction": 1.0,
                "arms": {
                    "scratch": _arm([0, 1], 0.7, 0.01, knn=0.3),
                    "restoration": _arm([0, 1], 0.72, 0.02, knn=0.41, gain=2.0),
                },
            },
            {
                "fraction": 0.1,
                "arms": {
                    "scratch": _arm([0], 0.3, 0.0),
                    "contrastive": _arm([0], 0.28, 0.0, gain=-2.0),
                },
            },
        ]
    }
    rows = study_report.markdown_table(summary).splitlines()[2:]
    assert rows[0] == "| 1 | 100 | scratch | 0,1 | 0.700 ± 0.010 | — | 0.700 ± 0.010 | 0.300 |"
    assert (
        rows[1] == "| 1 | 100 | restoration | 0,1 | 0.720 ± 0.020 | +2.0 | 0.720 ± 0.020 | 0.410 |"
    )
    assert rows[3] == "| 0.1 | 100 | contrastive | 0 | 0.280 | -2.0 | 0.280 | — |"


def test_summary_figure_labels_fractions_in_percent_and_draws_error_bars_only_over_several_seeds():
    summary = {
        "table": [
            {
                "fraction": 1.0,
                "arms": {
                    "scratch": _arm([0, 1], 0.7, 0.01),
                    "restoration": _arm([0, 1], 0.72, 0.02),
                },
            },
            {
                "fraction": 0.1,
                "arms": {
                    "scratch": _arm([0], 0.3, 0.0),
                    "restoration": _arm([0], 0.28, 0.0),
                    "contrastive": _arm([0], 0.29, 0.0),
                },
            },
        ]
    }
    fig = study_report.plot_summary(summary)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100 % of labels", "10 % of labels"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "scratch",
        "restoration",
        "contrastive",
    ]
    assert "mean of 1-2 seeds per bar" in ax.get_title()
    error_bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert sum(len(c.lines[2][0].get_segments()) for c in error_bars) == 2  # the two-seed bars only
    one_seed = study_report.plot_summary({"table": summary["table"][1:]})
    assert "one seed per bar (no error bars)" in one_seed.axes[0].get_title()
    assert not [c for c in one_seed.axes[0].containers if type(c).__name__ == "ErrorbarContainer"]


def test_arms_are_listed_in_the_order_the_restoration_fixes_build_up():
    arms = [
        "contrastive",
        "restoration",
        "restoration=+sparse",
        "restoration=dense",
        "scratch",
        "restoration=+masked-loss",
        "restoration=+patch8",
    ]
    summary = {"table": [{"arms": {arm: {} for arm in arms}}]}
    assert study.arms_in(summary) == [
        "scratch",
        "restoration=dense",
        "restoration=+patch8",
        "restoration=+sparse",
        "restoration=+masked-loss",
        "restoration",
        "contrastive",
    ]


def test_a_folder_without_finished_cells_is_named_instead_of_an_index_error(tmp_path):
    (tmp_path / "runs" / "f0.1-scratch-s0").mkdir(parents=True)  # started, never finished
    with pytest.raises(
        ParameterError, match=f"no finished cell.*{re.escape(str(tmp_path / 'runs'))}.*--out"
    ):
        study.summarise(tmp_path)


@pytest.mark.parametrize("option", ["--epochs", "--width", "--batch-size", "--pretrain-epochs"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_size_below_one_is_refused_before_anything_runs(tmp_path, option, value):
    """``--epochs 0`` was dropped silently and the preset's epochs ran instead."""
    with pytest.raises(ParameterError, match=f"{option} {value} must be an integer >= 1"):
        study.main(["--data-dir", str(tmp_path), option, value, "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_a_second_round_of_self_training_is_told_from_its_teachers_parameters(tmp_path):
    runs = tmp_path / "runs"
    first = {"pretrain": "none", "self_training": True, "teacher": str(runs / "f0.1-scratch-s0")}
    (runs / "f0.1-scratchplus-self-training-s0").mkdir(parents=True)
    (runs / "f0.1-scratchplus-self-training-s0" / "params.json").write_text(json.dumps(first))
    second = {
        "pretrain": "none",
        "self_training": True,
        "teacher": "/moved/elsewhere/f0.1-scratchplus-self-training-s0",
    }
    assert study.arm_of(first, runs) == "scratch+self-training"  # its teacher did not self-train
    # the recorded folder is gone (the study moved): the teacher is found by name under runs
    assert study.arm_of(second, runs) == "scratch+self-training+self-training"
    assert study.arm_of(second) == "scratch+self-training"  # without runs, only one round is known
    assert study.cell_name(0.1, "scratch+self-training+self-training", 0) == (
        "f0.1-scratchplus-self-trainingplus-self-training-s0"
    )


def test_the_curves_draw_each_arm_once_as_its_seeds_mean_and_range():
    def history(value):
        return [
            {
                "epoch": e,
                "val_loss": 2.0,
                "val_recall": value + e,
                "val_precision": 0.3,
                "val_f1": 0.3,
            }
            for e in (1, 2)
        ]

    cells = [
        {"fraction": 0.1, "arm": arm, "seed": seed, "history": history(0.1 * seed)}
        for seed in (0, 1, 2)
        for arm in ("scratch+self-training+self-training", "scratch")
    ]
    table = [{"fraction": 0.1, "arms": {"scratch+self-training+self-training": {}, "scratch": {}}}]
    fig = study_report.plot_fraction_curves({"cells": cells, "table": table}, 0.1)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "scratch (3 seeds)",
        "scratch + 2 rounds of self-training (3 seeds)",
    ]
    recall = fig.axes[1]
    assert len(recall.lines) == 2  # one line per arm, not per seed
    assert [line.get_linestyle() for line in recall.lines] == ["--", "-"]  # scratch first, dashed
    assert recall.lines[0].get_ydata() == pytest.approx([1.1, 2.1])  # the mean of 1, 1.1, 1.2 ...
    band = recall.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(1.0) and band.max() == pytest.approx(2.2)  # seeds' range
    assert fig._suptitle.get_text() == "10 % of labels: scratch (dashed) and the other arms (solid)"

    one_seed = [c for c in cells if c["arm"] != "scratch" and c["seed"] == 0]
    fig = study_report.plot_fraction_curves({"cells": one_seed, "table": table}, 0.1)
    assert not fig.axes[1].collections  # no range to draw for one seed
    assert fig._suptitle.get_text() == "10 % of labels: scratch + 2 rounds of self-training"


def test_figures_name_the_rounds_of_self_training_in_words():
    assert study.arm_label("contrastive") == "contrastive"
    assert study.arm_label("scratch+self-training") == "scratch + self-training"
    four = "contrastive" + study.SELF_TRAINING * 4
    assert study.arm_label(four) == "contrastive + 4 rounds of self-training"
    assert study.arm_color(four, 0) != study.arm_color("contrastive+self-training", 0)


def test_accuracy_against_labels_marks_each_fraction_and_keeps_its_arms_apart():
    def arm(images, acc):
        return {**_arm([0, 1], acc, 0.01), "train_images": images}

    four = "contrastive" + study.SELF_TRAINING * 4
    summary = {
        "table": [
            {"fraction": 1.0, "arms": {"scratch": arm(1000, 0.7), "contrastive": arm(1000, 0.71)}},
            {"fraction": 0.1, "arms": {"scratch": arm(100, 0.4), four: arm(100, 0.5)}},
        ]
    }
    ax = study_report.plot_accuracy_vs_labels(summary).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1,000\n(100 %)", "100\n(10 %)"]
    assert "mean of 2 seeds per point" in ax.get_title()
    points = {c.get_label(): c.lines[0].get_xdata() for c in ax.containers}  # an arm's line
    assert list(points) == ["scratch", "contrastive", "contrastive + 4 rounds of self-training"]
    tenth = points["scratch"][0], points["contrastive + 4 rounds of self-training"][0]
    assert tenth[0] != tenth[1]  # side by side, not on top of each other ...
    assert all(abs(x / 100 - 1) < 0.1 for x in tenth)  # ... and still at 100 labels
