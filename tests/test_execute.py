"""run_notebook: a finished run is kept, ``overwrite`` runs it again, an interrupted one resumes."""

import json

import nbformat
import pytest

from helpers.core.errors import ParameterError
from helpers.core.notebooks import run_notebook

# A notebook with the parameters run_notebook injects; it records what it was given and each
# execution.
PARAMETERS = (
    'results_dir = "results"\nrun_name = "run"\noverwrite = False\nresume = False\nvalue = 0\n'
)
BODY = """import json, pathlib
run = pathlib.Path(results_dir) / run_name
run.mkdir(parents=True, exist_ok=True)
with open(run / "executions.txt", "a") as f:
    f.write("x")
metrics = {"value": value, "overwrite": overwrite, "resume": resume}
(run / "metrics.json").write_text(json.dumps(metrics))
"""


@pytest.fixture
def notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(BODY),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    return str(path)  # absolute: run_notebook joins it to the repository's folder


def test_a_finished_run_is_kept_overwrite_runs_it_again_and_an_interrupted_one_resumes(
    notebook, tmp_path, capsys
):
    out = tmp_path / "out"
    run = out / "runs" / "r"

    def run_it(value, overwrite=False):
        return run_notebook(notebook, out, "r", {"value": value}, overwrite, progress_bar=False)

    assert run_it(1) == {"value": 1, "overwrite": False, "resume": False}
    assert (out / "notebooks" / "r.ipynb").exists()
    assert run_it(2) == {"value": 1, "overwrite": False, "resume": False}  # kept, not run again
    assert "r: finished before, kept" in capsys.readouterr().out
    assert (run / "executions.txt").read_text() == "x"
    assert run_it(2, overwrite=True) == {"value": 2, "overwrite": True, "resume": False}
    (run / "metrics.json").unlink()  # interrupted: a checkpoint but no metrics
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    assert run_it(3, overwrite=True) == {"value": 3, "overwrite": False, "resume": True}
    assert (run / "executions.txt").read_text() == "xxx"
    assert json.loads((run / "metrics.json").read_text())["value"] == 3


def test_a_parameter_the_notebook_does_not_declare_is_refused_before_it_runs(notebook, tmp_path):
    with pytest.raises(
        ParameterError, match=r"tiny.ipynb has no parameter\(s\) \['valeu'\]; its parameters"
    ):
        run_notebook(notebook, tmp_path / "out", "r", {"valeu": 1})
    assert not (tmp_path / "out").exists()
