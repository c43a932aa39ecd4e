import shutil

import nbformat
import pytest

from helpers.colab import FILES, ROOT, point_at
from helpers.errors import ParameterError


def copy_repo_files(tmp_path):
    for name in FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_badges_and_setup_cells_point_at_the_given_repository(tmp_path):
    root = copy_repo_files(tmp_path)
    changed = point_at("https://github.com/someone/vision-course.git", "dev", root)
    assert sorted(p.name for p in changed) == sorted(FILES)
    for name in FILES[1:]:
        nb = nbformat.read(root / name, as_version=4)
        nbformat.validate(nb)
        assert f"colab.research.google.com/github/someone/vision-course/blob/dev/{name}" in nb.cells[0].source
        setup = nb.cells[1].source
        assert 'REPOSITORY = "https://github.com/someone/vision-course"' in setup
        compile(setup, name, "exec")
    readme = (root / "README.md").read_text()
    assert "github/someone/vision-course/blob/dev/hw1_classification.ipynb" in readme
    assert "OWNER/REPO/blob" not in readme
    assert point_at("https://github.com/someone/vision-course", "dev", root) == []  # idempotent


def test_an_address_that_is_not_github_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="not a GitHub repository address"):
        point_at("https://example.com/x", root=copy_repo_files(tmp_path))
