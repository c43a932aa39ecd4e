"""The committed notebooks are clean: no outputs, no local paths, a tagged parameters cell,
and a Colab setup cell that does nothing outside Colab."""

import os
import re

import nbformat
import pytest

from test_notebooks import ROOT

NOTEBOOKS = ["hw1_classification.ipynb", "hw2_anomaly.ipynb"]
LOCAL_PATH = re.compile(r"(/work/|/home/|/Users/|/tmp/|[A-Z]:\\\\)")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs_or_local_paths(name):
    nb = nbformat.read(ROOT / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{name}: strip outputs before committing (jupyter nbconvert --clear-output --inplace {name})")
        assert not LOCAL_PATH.search(cell.source), f"{name}: a local path in a cell: {cell.source[:200]}"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_colab_cell_comes_first_and_does_nothing_elsewhere(name, tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "google.colab" in code[0].source and "parameters" in code[1].metadata.get("tags", [])
    monkeypatch.chdir(tmp_path)
    exec(code[0].source, {})
    assert os.getcwd() == str(tmp_path) and list(tmp_path.iterdir()) == []
