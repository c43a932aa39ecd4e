import json
from pathlib import Path

import numpy as np
import pytest

from conftest import hw1_settings
from helpers.core.errors import ParameterError
from helpers.core.runs import (
    figure_saver,
    fingerprint,
    history_writer,
    prepare_run_dir,
    publish_latest,
    start_run,
    write_json,
    write_text,
)


def test_finished_run_is_not_overwritten_unless_asked(tmp_path):
    run = prepare_run_dir(tmp_path / "run")
    write_json(run / "metrics.json", {"test_accuracy": 0.9})
    with pytest.raises(ParameterError, match="already holds a finished run.*overwrite=True"):
        prepare_run_dir(tmp_path / "run")
    assert prepare_run_dir(tmp_path / "run", overwrite=True) == run
    assert json.loads((run / "metrics.json").read_text()) == {"test_accuracy": 0.9}


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(ParameterError, match="resume=True but .*last.pt does not exist"):
        prepare_run_dir(tmp_path / "run", resume=True)


def test_unwritable_results_dir_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ParameterError, match="results_dir: cannot write to .*a_file"):
        prepare_run_dir(blocker / "run")


def test_interrupted_write_keeps_the_old_file(tmp_path):
    from helpers.core import runs

    path = write_json(tmp_path / "metrics.json", {"ok": 1})

    def crash_half_way(tmp):
        with open(tmp, "w") as f:
            f.write('{"trunc')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs._atomic(path, crash_half_way)
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary left behind


def test_written_files_get_the_same_mode_as_a_plain_open(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = write_text(tmp_path / "written.txt", "x")
    assert written.stat().st_mode == plain.stat().st_mode  # not mkstemp's private 0600


def test_fingerprint_changes_with_the_data():
    import torch

    a = torch.arange(12, dtype=torch.uint8)
    assert fingerprint(a) == fingerprint(a.clone())
    b = a.clone()
    b[3] = 99
    assert fingerprint(a) != fingerprint(b)


def settings(tmp_path, **changes):
    """The cpu preset's network (ResNet-18 of width 32) for 2 epochs; nothing is trained here."""
    return hw1_settings("data", tmp_path, **{"arch": None, "width": None, **changes})


def test_run_name_follows_the_parameters_that_change_the_result(tmp_path):
    a = settings(tmp_path)
    assert a.run_name.startswith("cpu-resnet18-w32-frac1-scratch-seed0-")
    assert settings(tmp_path).run_name == a.run_name
    assert settings(tmp_path, lr=0.05).run_name != a.run_name
    assert settings(tmp_path, seed=1).run_name != a.run_name
    # where and how a run executes does not rename it (so resume finds it)
    assert settings(tmp_path, device="auto", resume=True, overwrite=True).run_name == a.run_name
    assert settings(tmp_path, run_name="mine").run_name == "mine"


def test_each_run_gets_its_own_folder_and_a_rerun_is_refused(tmp_path):
    first = start_run(settings(tmp_path))
    second = start_run(settings(tmp_path, seed=1))
    assert first.parent == second.parent == tmp_path / "results" and first != second
    assert json.loads((first / "params.json").read_text())["seed"] == 0
    write_json(first / "metrics.json", {"test_accuracy": 0.5})
    with pytest.raises(
        ParameterError, match="already holds a finished run.*run_name.*overwrite=True"
    ):
        start_run(settings(tmp_path))
    assert json.loads((first / "metrics.json").read_text()) == {"test_accuracy": 0.5}


def test_resume_refuses_changed_parameters(tmp_path):
    run = start_run(settings(tmp_path, run_name="r"))
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    with pytest.raises(ParameterError, match="cannot resume .*different lr .*lr=0.1"):
        start_run(settings(tmp_path, run_name="r", lr=0.05, resume=True))
    assert start_run(settings(tmp_path, run_name="r", resume=True, device="auto")) == run


def test_latest_metrics_are_copied_to_results_dir(tmp_path):
    run = start_run(settings(tmp_path))
    write_json(run / "metrics.json", {"test_accuracy": 0.7})
    latest = json.loads(publish_latest(run).read_text())
    assert latest == {"run_dir": str(run), "test_accuracy": 0.7}
    assert json.loads((run / "metrics.json").read_text()) == {"test_accuracy": 0.7}


def test_history_writer_keeps_history_json_current(tmp_path):
    hook = history_writer(tmp_path)
    hook([{"epoch": 1, "train_loss": 2.0}], None)
    hook([{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 1.5}], None)
    assert [h["epoch"] for h in json.loads((tmp_path / "history.json").read_text())] == [1, 2]


def test_figure_saver_writes_both_folders_names_the_run_and_hands_on_the_figure(tmp_path):
    import matplotlib.pyplot as plt

    seen = []
    figures, run_dir = tmp_path / "figures", tmp_path / "results" / "run-1"
    figures.mkdir()
    (figures / "old.png").write_bytes(b"earlier run")
    save = figure_saver(figures, run_dir, also=lambda name, fig: seen.append(name))
    fig = plt.figure()
    draws = []
    fig.savefig = lambda *args, _save=fig.savefig, **kwargs: (
        draws.append(1) or _save(*args, **kwargs)
    )
    path = save(fig, "curves")
    save(fig, "roc")
    plt.close(fig)
    assert path == figures / "curves.png"
    assert (run_dir / "figures" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "figures" / "curves.png").read_bytes() == path.read_bytes()
    assert len(draws) == 2  # one drawing per figure; the run folder gets a copy of its bytes
    assert seen == ["curves", "roc"]
    provenance = (figures / "PROVENANCE.md").read_text()
    assert str(run_dir) in provenance and "`curves.png`, `roc.png`" in provenance
    assert "old.png" not in provenance and (figures / "old.png").read_bytes() == b"earlier run"
    assert not (run_dir / "figures" / "PROVENANCE.md").exists()


def test_figure_saver_into_the_run_folder_itself_writes_each_figure_once(tmp_path):
    import matplotlib.pyplot as plt

    run_dir = tmp_path / "run"
    save = figure_saver(run_dir / "figures", run_dir)
    fig = plt.figure()
    save(fig, "curves")
    plt.close(fig)
    assert sorted(p.name for p in (run_dir / "figures").iterdir()) == [
        "PROVENANCE.md",
        "curves.png",
    ]


def test_json_takes_arrays_and_paths_and_names_what_it_cannot_write(tmp_path):
    path = write_json(tmp_path / "m.json", {"scores": np.array([0.5, 1.0]), "where": Path("a/b")})
    assert json.loads(path.read_text()) == {"scores": [0.5, 1.0], "where": "a/b"}
    with pytest.raises(TypeError, match="cannot write object to JSON"):
        write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists()  # nothing half-written
