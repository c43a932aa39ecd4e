import json

import pytest

from helpers.errors import ParameterError
from helpers.runs import fingerprint, prepare_run_dir, write_json


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
    with pytest.raises(ParameterError, match="is not writable"):
        prepare_run_dir(blocker / "run")


def test_interrupted_write_keeps_the_old_file(tmp_path):
    from helpers import runs

    path = write_json(tmp_path / "metrics.json", {"ok": 1})

    def crash_half_way(tmp):
        with open(tmp, "w") as f:
            f.write('{"trunc')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs._atomic(path, crash_half_way)
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary left behind


def test_fingerprint_changes_with_the_data():
    import torch

    a = torch.arange(12, dtype=torch.uint8)
    assert fingerprint(a) == fingerprint(a.clone())
    b = a.clone()
    b[3] = 99
    assert fingerprint(a) != fingerprint(b)
