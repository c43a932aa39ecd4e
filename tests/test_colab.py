import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from helpers.core.errors import ParameterError
from helpers.tools.colab import FILES, ROOT, point_at


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
        assert (
            f"colab.research.google.com/github/someone/vision-course/blob/dev/{name}"
            in nb.cells[0].source
        )
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


JUPYTER_PACKAGES = {
    "jupyter",
    "jupyterlab",
    "notebook",
    "nbclassic",
    "jupyter-server",
    "jupyter-client",
    "jupyter-core",
    "ipykernel",
    "ipython",
    "nbconvert",
    "jupyterlab-server",
    "tornado",
}


def requirement_name(line: str) -> str:
    return re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def requirement_names(path):
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.append(requirement_name(line))
    return names


def declared_names() -> set[str]:
    """Every package pyproject.toml declares: the runtime dependencies and every optional group."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lists = [project["dependencies"], *project["optional-dependencies"].values()]
    return {requirement_name(line) for group in lists for line in group}


def test_requirements_txt_installs_the_package_with_every_group():
    """The README's install, `pip install -r requirements.txt`, brings everything declared."""
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    lines = [x.split("#")[0].strip() for x in (ROOT / "requirements.txt").read_text().splitlines()]
    assert [x for x in lines if x] == [f"-e .[{','.join(groups)}]"]


def test_the_colab_setup_cells_install_a_list_without_any_jupyter_package():
    colab = requirement_names(ROOT / "requirements-colab.txt")
    assert not set(colab) & JUPYTER_PACKAGES
    assert set(colab) <= declared_names()  # nothing beyond what the package declares
    for name in FILES[1:]:
        setup = nbformat.read(ROOT / name, as_version=4).cells[1].source
        assert '"requirements-colab.txt"' in setup and '"requirements.txt"' not in setup


@pytest.mark.parametrize("command", [["lab", "--version"], ["nbconvert", "--version"]])
def test_the_readme_jupyter_commands_exist_after_the_install(command):
    assert "jupyter" in declared_names()  # installed by requirements.txt (all groups)
    jupyter = Path(sys.executable).with_name("jupyter")
    done = subprocess.run(
        [str(jupyter) if jupyter.exists() else "jupyter", *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and re.match(r"\d+\.\d+", done.stdout.strip()), done.stderr
