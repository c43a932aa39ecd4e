import json
import re
import shutil

import pytest

from helpers.core.errors import CourseworkError
from helpers.tools import reproduce
from helpers.tools.report import render_hw2, render_study, replace_block

README = "intro\n<!-- results:hw1 -->\nold table\n<!-- /results:hw1 -->\noutro\n"


def test_replace_block_swaps_only_the_block():
    new = replace_block(README, "hw1", "| new | table |")
    assert new == "intro\n<!-- results:hw1 -->\n| new | table |\n<!-- /results:hw1 -->\noutro\n"
    assert replace_block(new, "hw1", "x") == replace_block(README, "hw1", "x")


def test_a_missing_block_names_the_markers():
    with pytest.raises(CourseworkError, match="no block '<!-- results:hw2 -->'"):
        replace_block(README, "hw2", "x")


def _hw2_metrics(method, tnr, unseen_tnr=None, seed=0):
    r = {
        "tpr": 1.0,
        "tnr": tnr,
        "balanced_accuracy": (1 + tnr) / 2,
        "auroc": 0.99,
        "aupr": 0.9,
        "test_normals": 90,
        "test_anomalies": 10,
    }
    m = {
        **r,
        "params": {
            "threshold_method": method,
            "seed": seed,
            "signals": ["reconstruction", "global"],
        },
        "threshold_rule": f"rule of {method}",
        "wall_seconds": 61,
        "device": "cpu",
        "environment": {"torch": "2.x"},
        "ablation": [{**r, "score": "reconstruction_mean", "tpr": 0.5}, {**r, "score": "combined"}],
        "data": {
            "dataset": "folder",
            "data_dir": "/x/anomaly-course",
            "train_images": 500,
            "known_anomalies": 5,
            "validation_split": "500 normal images in 400 groups",
            "notes": ["3 test image(s) are pixel-identical to training images"],
        },
    }
    if unseen_tnr is not None:
        m["unseen_test"] = {
            **r,
            "tnr": unseen_tnr,
            "balanced_accuracy": (1 + unseen_tnr) / 2,
            "test_normals": 87,
        }
    return m


def test_the_study_block_names_each_pretraining_once_and_self_training_as_none():
    def cell(arm, seconds, pretrain_epochs):
        return {
            "arm": arm,
            "wall_seconds": seconds,
            "pretrain_epochs": pretrain_epochs,
            "preset": "cpu",
            "arch": "resnet18",
            "width": 32,
            "epochs": 45,
            "device": "cpu (2 threads, AVX2)",
            "compute_dtype": "float32",
        }

    cells = [
        cell("scratch", 600, 15),
        cell("scratch+self-training", 700, 15),
        cell("scratch+self-training+self-training", 700, 15),
        cell("contrastive", 650, 7),
        cell("contrastive+self-training", 700, 7),
        cell("restoration", 640, 15),
    ]
    line = render_study({"cells": cells}, "| table |", "python -m x", "2026-12-07").splitlines()[0]

    pretraining = "without labels: contrastive 7 epochs; restoration 15 epochs)"
    assert pretraining in line
    assert "self-training" not in line and "scratch" not in line
    assert "6 runs, 66 min 30 s of notebook time" in line


def test_hw2_block_has_a_row_per_run_the_ablation_and_the_unseen_images_table_when_there_is_one():
    runs = [
        _hw2_metrics("auto", 0.95, 0.9),
        _hw2_metrics("quantile", 0.97, 0.8),
        _hw2_metrics("auto", 0.96, 0.9, seed=1),
    ]
    block = render_hw2(runs, "cmd", "today")
    assert "| `auto` | 0 | rule of auto | **1.000** | **0.950** |" in block
    assert "| `auto` | 1 | rule of auto | **1.000** | **0.960** |" in block
    assert (
        "| reconstruction (mean error, the classic score) | **0.500** | **0.950** |" in block
    )  # the first run's ablation
    assert "| combined (reconstruction + global) | **1.000** | **0.950** |" in block
    assert "on the 87 normal and 10 anomalous test images that are not pixel-identical" in block
    assert "| `quantile` | 0 | **1.000** | **0.800** | 0.900 |" in block
    assert "- 500 normal images in 400 groups" in block
    assert block.rstrip().endswith("- 3 test image(s) are pixel-identical to training images")
    plain = render_hw2([_hw2_metrics("auto", 0.95)], "cmd", "today")
    assert "not pixel-identical" not in plain


def test_the_ablation_names_the_signals_the_combined_score_kept_not_the_candidates():
    run = _hw2_metrics("auto", 0.95)
    run["signal_choice"] = [
        {"signal": "reconstruction", "kept": True},
        {"signal": "global", "kept": False},
    ]
    block = render_hw2([run], "cmd", "today")
    assert "| combined (reconstruction) | **1.000** | **0.950** |" in block


def _copy_of_the_docs(tmp_path):
    """README.md and docs/*.md copied to a folder of their own, for --docs-root."""
    root = tmp_path / "docs-root"
    (root / "docs").mkdir(parents=True)
    shutil.copy(reproduce.ROOT / "README.md", root / "README.md")
    for page in (reproduce.ROOT / "docs").glob("*.md"):
        shutil.copy(page, root / "docs" / page.name)
    return root


@pytest.mark.notebook
def test_one_command_runs_everything_and_rewrites_the_readme(
    cifar_dir, anomaly_dir, tmp_path, capsys
):
    root = _copy_of_the_docs(tmp_path)
    args = [
        "--cifar-dir",
        str(cifar_dir),
        "--anomaly-dir",
        str(anomaly_dir),
        "--device",
        "cpu",
        "--threshold-methods",
        "auto",
        "--hw2-seeds",
        "0",
        "--study-fractions",
        "1.0",
        "--study-epochs",
        "1",
        "--study-arms",
        "scratch",
        "--study-seeds",
        "0",
        "--only",
        "hw1",
        "hw2",
        "study",
        "--out",
        str(tmp_path / "out"),
        "--figures-dir",
        str(tmp_path / "figures"),
        "--docs-root",
        str(root),
        "--set",
        "epochs=1",
        "batch_size=32",
        "hw1.width=4",
        "hw1.pretrain_epochs=1",
        "hw2.channels=[8,16,32]",
        "hw2.latent=8",
        "hw2.autoencoders=1",
    ]
    done = reproduce.main(args)

    text = (root / "docs" / "hw1.md").read_text() + (root / "docs" / "hw2.md").read_text()
    hw1 = done["hw1"]
    assert f"| **{hw1['test_accuracy']:.3f}** | {hw1['macro_precision']:.3f} |" in text
    for run in done["hw2"]:
        assert (
            f"| `{run['params']['threshold_method']}` | {run['params']['seed']} | "
            f"{run['threshold_rule']} | "
            f"**{run['tpr']:.3f}** |"
        ) in text
    assert text.count("_Produced by `python -m helpers.tools.reproduce --cifar-dir") == 3
    assert (
        f"device {hw1['device']}, {hw1['compute']['compute_dtype']}, torch" in text
    )  # CPU kind, precision
    assert {c["arm"] for c in done["study"]["cells"]} == {"scratch"}
    assert "ablation" not in done
    # outside the blocks, the pages are unchanged
    assert (root / "README.md").read_text() == (reproduce.ROOT / "README.md").read_text()
    original = (reproduce.ROOT / "docs" / "hw1.md").read_text()
    page = (root / "docs" / "hw1.md").read_text()
    assert page.split("<!-- results:hw1 -->")[0] == original.split("<!-- results:hw1 -->")[0]

    figures = tmp_path / "figures"
    assert (figures / "hw1" / "confusion_matrix.png").exists() and (
        figures / "hw2" / "roc.png"
    ).exists()
    assert (figures / "hw1" / "study" / "summary.png").exists()
    for folder in ("hw1", "hw2", "hw1/study"):
        assert "_Produced by" in (figures / folder / "PROVENANCE.md").read_text()
    notebooks = {p.name for p in (tmp_path / "out" / "notebooks").glob("*.ipynb")}
    assert notebooks == {"hw1-cpu.ipynb", "hw2-auto.ipynb"}
    assert (
        json.loads((tmp_path / "out" / "runs" / "hw1-cpu" / "metrics.json").read_text())["params"][
            "width"
        ]
        == 4
    )

    # a second call keeps the finished steps instead of training again
    capsys.readouterr()
    again = reproduce.main(args + ["--only", "hw1", "hw2"])
    assert again["hw1"]["test_accuracy"] == hw1["test_accuracy"]
    assert capsys.readouterr().out.count("finished before, kept") == 2


def test_the_ablation_step_runs_the_study_over_every_recipe_with_the_measured_decay(
    tmp_path, monkeypatch
):
    """The ablation goes through the same study call as the grid (executed end to end above);
    here only what it asks the study for, and where its block and figures go."""
    root = _copy_of_the_docs(tmp_path)
    calls = []
    cell = {
        "fraction": 0.1,
        "seed": 0,
        "test_accuracy": 0.5,
        "macro_f1": 0.4,
        "knn_accuracy": 0.3,
        "train_images": 9,
        "epochs": 1,
        "wall_seconds": 5,
        "history": [],
        "preset": "cpu",
        "arch": "resnet18",
        "width": 4,
        "pretrain_epochs": 1,
        "device": "cpu",
        "compute_dtype": "float32",
    }
    stats = {
        "seeds": [0],
        "train_images": 9,
        "test_accuracy_mean": 0.5,
        "test_accuracy_std": 0.0,
        "macro_f1_mean": 0.4,
        "macro_f1_std": 0.0,
        "knn_accuracy_mean": 0.3,
    }

    def fake_study(argv):
        calls.append(argv)
        arms = argv[argv.index("--arms") + 1 : argv.index("--out")]
        return {
            "cells": [{**cell, "arm": arm} for arm in arms],
            "table": [{"fraction": 0.1, "arms": {arm: dict(stats) for arm in arms}}],
        }

    monkeypatch.setattr(reproduce.study, "main", fake_study)
    out, figures = tmp_path / "out", tmp_path / "figures"
    done = reproduce.main(
        [
            "--cifar-dir",
            str(tmp_path),
            "--only",
            "ablation",
            "--out",
            str(out),
            "--figures-dir",
            str(figures),
            "--docs-root",
            str(root),
            "--set",
            "hw1.width=4",
            "lr=0.05",
        ]
    )  # a value with a dot: not a homework's prefix
    (argv,) = calls
    assert argv[argv.index("--fractions") + 1] == "0.1"
    assert argv[argv.index("--arms") + 1 : argv.index("--out")] == [
        "scratch",
        "restoration=dense",
        "restoration=+patch8",
        "restoration=+sparse",
        "restoration=+masked-loss",
        "restoration",
        "contrastive",
    ]
    assert argv[argv.index("--set") + 1 :] == ["layer_decay=0.7", "width=4", "lr=0.05"]
    assert argv[argv.index("--out") + 1] == str(out.resolve() / "ablation")
    assert argv[argv.index("--pretrain-dir") + 1] == str(
        out.resolve() / "pretrained"
    )  # the study's encoders
    page = (root / "docs" / "hw1.md").read_text()
    block = page.split("<!-- results:ablation -->")[1].split("<!-- /results:ablation -->")[0]
    assert (
        block.startswith("\n_Produced by `python -m helpers.tools.reproduce --cifar-dir")
        and "| restoration=+sparse |" in block
    )
    assert "_Produced by" in (figures / "hw1" / "study-ablation" / "PROVENANCE.md").read_text()
    assert set(done) == {"ablation"}


@pytest.mark.parametrize(
    "setting, message",
    [
        ("momentum=0.8", r"hw1_classification.ipynb has no parameter\(s\) \['momentum'\]"),
        ("hw2.widht=8", r"hw2_anomaly.ipynb has no parameter\(s\) \['widht'\]"),
        ("bn_lr_factor=2", r"hw2_anomaly.ipynb has no parameter\(s\) \['bn_lr_factor'\].*hw1.NAME"),
    ],
)
def test_a_setting_no_notebook_declares_is_refused_before_anything_runs(tmp_path, setting, message):
    """papermill only warns about such a name and runs the notebook without it."""
    root = _copy_of_the_docs(tmp_path)
    with pytest.raises(CourseworkError, match=message):
        reproduce.main(
            [
                "--cifar-dir",
                str(tmp_path),
                "--out",
                str(tmp_path / "out"),
                "--docs-root",
                str(root),
                "--figures-dir",
                str(tmp_path / "figures"),
                "--set",
                setting,
            ]
        )
    assert not (tmp_path / "out").exists()


def test_hw1_settings_through_set_reach_the_notebook(tmp_path):
    """``--set hw1.bn_lr_factor=1`` (how docs/hw1.md repeats the study as measured) is a
    parameter the notebook declares, so it is passed on, not dropped."""
    from helpers.core.notebooks import check_parameters

    extra = reproduce.homework_settings(
        ["hw1.bn_lr_factor=1", "hw1.layer_decay=0.7", "hw1.width=4", "epochs=2"]
    )
    assert extra == {
        "hw1": {"bn_lr_factor": 1, "layer_decay": 0.7, "width": 4, "epochs": 2},
        "hw2": {"epochs": 2},
    }
    check_parameters("hw1_classification.ipynb", extra["hw1"])  # declared there: passed on
    check_parameters("hw2_anomaly.ipynb", extra["hw2"])
    with pytest.raises(
        CourseworkError, match=r"hw2_anomaly.ipynb has no parameter\(s\) \['bn_lr_factor'"
    ):
        check_parameters(
            "hw2_anomaly.ipynb", {"bn_lr_factor": 1}
        )  # which is why it takes the prefix


@pytest.mark.parametrize("setting", ["HW1.width=4", "hw3.width=4", "model.width=4"])
def test_a_dotted_setting_without_a_homeworks_prefix_is_refused(tmp_path, setting):
    """It was dropped for both homeworks without a word."""
    root = _copy_of_the_docs(tmp_path)
    with pytest.raises(
        CourseworkError, match=f"--set {re.escape(setting)}: .*hw1.NAME or hw2.NAME"
    ):
        reproduce.main(
            [
                "--cifar-dir",
                str(tmp_path),
                "--out",
                str(tmp_path / "out"),
                "--docs-root",
                str(root),
                "--figures-dir",
                str(tmp_path / "figures"),
                "--set",
                setting,
            ]
        )
    assert not (tmp_path / "out").exists()


def test_an_unknown_threshold_method_is_refused_before_hw1_trains(tmp_path, capsys):
    with pytest.raises(SystemExit):
        reproduce.parse(["--threshold-methods", "auto", "quantil"])
    assert "argument --threshold-methods: invalid choice: 'quantil'" in capsys.readouterr().err
    assert reproduce.parse(["--threshold-methods", "balanced"]).threshold_methods == ["balanced"]


def test_hw2_runs_one_class_cifar10_without_anomaly_dir_and_names_each_seeds_run(tmp_path):
    args = reproduce.parse(
        ["--threshold-methods", "auto", "quantile", "--hw2-seeds", "3", "4", "5", "--download"]
    )
    figures, out = tmp_path / "figures", tmp_path / "out"
    runs = dict(reproduce.hw2_runs(args, "/data/cifar", figures, out, {"epochs": 2}))
    # every method with the first seed, then the first method with each other seed
    assert list(runs) == ["hw2-auto", "hw2-quantile", "hw2-auto-seed4", "hw2-auto-seed5"]
    assert [(p["threshold_method"], p["seed"]) for p in runs.values()] == [
        ("auto", 3),
        ("quantile", 3),
        ("auto", 4),
        ("auto", 5),
    ]
    for params in runs.values():  # no --anomaly-dir: one-class CIFAR-10 from --cifar-dir
        assert (params["dataset"], params["data_dir"], params["download"], params["epochs"]) == (
            "cifar10",
            "/data/cifar",
            True,
            2,
        )
    assert runs["hw2-auto"]["figures_dir"] == str(figures / "hw2")  # the README's figures
    assert runs["hw2-auto-seed5"]["figures_dir"] == str(out / "figures" / "hw2-auto-seed5")
    course = reproduce.hw2_runs(
        reproduce.parse(["--anomaly-dir", str(tmp_path)]), "/data/cifar", figures, out, {}
    )
    assert {(p["dataset"], p["data_dir"]) for _, p in course} == {
        ("folder", str(tmp_path.resolve()))
    }
