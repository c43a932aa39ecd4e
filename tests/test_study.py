import json

import pytest

from helpers import study


@pytest.mark.notebook
def test_study_runs_the_grid_and_summarises_it(cifar_dir, tmp_path, capsys):
    args = ["--data-dir", str(cifar_dir), "--fractions", "1.0", "0.5", "--seeds", "0",
            "--epochs", "1", "--pretrain-epochs", "1", "--width", "4", "--device", "cpu",
            "--out", str(tmp_path / "study"), "--figures-dir", str(tmp_path / "fig")]
    summary = study.main(args)
    cells = {(c["fraction"], c["arm"]) for c in summary["cells"]}
    assert cells == {(1.0, "scratch"), (1.0, "pretrained"), (0.5, "scratch"), (0.5, "pretrained")}
    assert len(list((tmp_path / "study" / "notebooks").glob("*.ipynb"))) == 4  # executed copies kept
    assert len(list((tmp_path / "study" / "pretrained").glob("encoder-*.pt"))) == 1  # shared encoder
    saved = json.loads((tmp_path / "study" / "study.json").read_text())
    row = saved["table"][0]
    assert row["fraction"] == 1.0 and "gain_points" in row
    full, half = row["scratch"]["train_images"], saved["table"][1]["scratch"]["train_images"]
    assert abs(half - full / 2) <= 10  # half of each class, rounded per class
    assert {p.name for p in (tmp_path / "fig").iterdir()} == {"curves_f1.png", "curves_f0.5.png", "summary.png"}
    assert "| 0.5 |" in capsys.readouterr().out

    # a second invocation keeps finished cells and only runs the new seed
    more = [a if a != "1.0" else "0.5" for a in args]  # fractions 0.5 0.5 -> only 0.5
    summary = study.main(more[:7] + ["1"] + more[7:])
    assert "f0.5-scratch-s0: finished before, kept" in capsys.readouterr().out
    assert len(summary["cells"]) == 6
    assert summary["table"][1]["scratch"]["seeds"] == [0, 1]


def _arm(seeds, acc, std):
    return {"seeds": seeds, "train_images": 100, "test_accuracy_mean": acc, "test_accuracy_std": std,
            "macro_f1_mean": acc, "macro_f1_std": std}


def test_markdown_table_shows_spread_only_over_several_seeds():
    summary = {"table": [
        {"fraction": 1.0, "scratch": _arm([0, 1], 0.7, 0.01), "pretrained": _arm([0, 1], 0.72, 0.02),
         "gain_points": 2.0},
        {"fraction": 0.1, "scratch": _arm([0], 0.3, 0.0), "pretrained": _arm([0], 0.28, 0.0),
         "gain_points": -2.0},
        {"fraction": 0.5, "scratch": _arm([0], 0.5, 0.0)},
    ]}
    rows = study.markdown_table(summary).splitlines()[2:]
    assert "| 0.700 ± 0.010 | 0.720 ± 0.020 | +2.0 |" in rows[0]
    assert "| 0.300 | 0.280 | -2.0 |" in rows[1] and "±" not in rows[1]
    assert rows[2].endswith("| 0.500 | — | — | 0.500 | — |")


def test_summary_figure_labels_fractions_in_percent_and_draws_error_bars_only_over_several_seeds():
    summary = {"table": [
        {"fraction": 1.0, "scratch": _arm([0, 1], 0.7, 0.01), "pretrained": _arm([0, 1], 0.72, 0.02)},
        {"fraction": 0.1, "scratch": _arm([0], 0.3, 0.0), "pretrained": _arm([0], 0.28, 0.0)},
    ]}
    fig = study.plot_summary(summary)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100 % of labels", "10 % of labels"]
    assert "mean of 1-2 seeds per bar" in ax.get_title()
    error_bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert sum(len(c.lines[2][0].get_segments()) for c in error_bars) == 2  # the two-seed bars only
    one_seed = study.plot_summary({"table": summary["table"][1:]})
    assert "one seed per bar (no error bars)" in one_seed.axes[0].get_title()
    assert not [c for c in one_seed.axes[0].containers if type(c).__name__ == "ErrorbarContainer"]
