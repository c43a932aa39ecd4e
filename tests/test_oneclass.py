import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from helpers.core.errors import ParameterError
from helpers.tools import oneclass


@pytest.mark.notebook
def test_the_ten_class_runner_runs_each_class_and_writes_table_and_chart(
    cifar_dir, tmp_path, capsys
):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("front page\n")
    (tmp_path / "docs" / "hw2.md").write_text(
        "before\n<!-- results:oneclass -->\nold\n<!-- /results:oneclass -->\nafter\n"
    )
    args = [
        "--write-docs",
        str(tmp_path),
        "--data-dir",
        str(cifar_dir),
        "--classes",
        "airplane",
        "ship",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "out"),
        "--figures-dir",
        str(tmp_path / "fig"),
        "--set",
        "epochs=1",
        "batch_size=16",
        "channels=[8,16,32]",
        "latent=8",
        "transformation_epochs=1",
        "val_fraction=0.3",
    ]
    summary = oneclass.main(args)
    assert [r["class"] for r in summary["rows"]] == ["airplane", "ship"]
    measured = {}
    for row in summary[
        "rows"
    ]:  # each row: the AUROC of the scores its run wrote for the test images
        assert row["train_images"] == 12  # 120 generated images, 10 classes
        scores = np.genfromtxt(
            tmp_path / "out" / "runs" / row["class"] / "scores.csv",
            delimiter=",",
            names=True,
            dtype=None,
            encoding="utf-8",
        )
        assert len(scores) == 40 and set(scores["label"]) == {0, 1}
        measured[row["class"]] = roc_auc_score(scores["label"], scores["score"])
        assert row["auroc"] == pytest.approx(measured[row["class"]], abs=1e-4)
    assert summary["mean"]["auroc"] == pytest.approx(
        (measured["airplane"] + measured["ship"]) / 2, abs=1e-4
    )
    saved = json.loads((tmp_path / "out" / "oneclass.json").read_text())
    assert saved["rows"] == summary["rows"]
    table = (tmp_path / "out" / "oneclass.md").read_text()
    assert "| airplane | 12 |" in table and "| **mean** |" in table
    assert (tmp_path / "fig" / "auroc.png").stat().st_size > 10_000
    assert {p.name for p in (tmp_path / "out" / "notebooks").iterdir()} == {
        "airplane.ipynb",
        "ship.ipynb",
    }
    page = (tmp_path / "docs" / "hw2.md").read_text()
    assert (
        "old" not in page
        and "| airplane | 12 |" in page
        and page.endswith("<!-- /results:oneclass -->\nafter\n")
    )

    capsys.readouterr()  # a second call keeps the finished classes
    oneclass.main(args)
    assert capsys.readouterr().out.count("finished before, kept") == 2


def test_unknown_classes_are_named():
    with pytest.raises(ParameterError, match=r"\['plane'\] are not CIFAR-10 classes"):
        oneclass.main(["--classes", "plane"])


def test_table_has_a_row_per_class_and_the_mean():
    runs = {
        c: {
            "data": {"train_images": 500},
            "auroc": a,
            "aupr": 0.9,
            "tpr": 0.7,
            "tnr": 0.8,
            "wall_seconds": 100,
            "threshold_rule": "q",
        }
        for c, a in (("cat", 0.6), ("dog", 0.8))
    }
    summary = oneclass.summarise(runs)
    assert summary["mean"]["auroc"] == pytest.approx(0.7) and summary["min_auroc"] == 0.6
    table = oneclass.markdown_table(summary).splitlines()
    assert table[2] == "| cat | 500 | 0.600 | 0.700 | 0.800 | 0.900 | 1 min 40 s |"
    assert table[-1].startswith("| **mean** | | **0.700** |")
