"""Each notebook parameter is declared once (helpers/hw1/settings.py, helpers/hw2/settings.py):
the parameters cells, papermill's --help-notebook and the docs' tables agree with it, and
every value is checked against it."""

import ast
from dataclasses import MISSING

import nbformat
import papermill
import pytest

from conftest import ROOT
from helpers.core.errors import ParameterError
from helpers.core.params import declared, notebook_fields, notebook_type, setting, spec_of
from helpers.core.trainer import FitConfig
from helpers.hw1.presets import HW1_FRACTION_TUNING, HW1_PRESETS
from helpers.hw1.settings import Hw1Settings, parameters_of, resolve_hw1
from helpers.hw2.settings import Hw2Settings
from helpers.tools import parameters

NOTEBOOKS = {"hw1_classification.ipynb": Hw1Settings, "hw2_anomaly.ipynb": Hw2Settings}


def parameters_cell(notebook: str) -> dict[str, tuple[str, object, str]]:
    """name -> (annotation, default, help) as the notebook's parameters cell writes them."""
    nb = nbformat.read(ROOT / notebook, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    found = {}
    for line in cell.source.splitlines():
        if line.startswith(("#", "from ")) or not line.strip():
            continue
        code, _, help_ = line.partition("  # ")
        node = ast.parse(code).body[0]
        assert isinstance(node, ast.AnnAssign), f"{notebook}: {line!r} is not `name: type = value`"
        found[node.target.id] = (  # type: ignore[attr-defined]
            ast.unparse(node.annotation),
            ast.literal_eval(node.value),  # type: ignore[arg-type]
            help_,
        )
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_parameters_cell_matches_the_declaration(notebook):
    """Names, order, types, defaults and help: the cell is the declaration, written out."""
    settings = NOTEBOOKS[notebook]
    cell = parameters_cell(notebook)
    fields = notebook_fields(settings)
    assert list(cell) == [f.name for f in fields]
    for f in fields:
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        assert cell[f.name] == (notebook_type(f), default, spec_of(f).help), f.name


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_papermill_lists_every_declared_parameter_with_its_type_and_help(notebook):
    listed = papermill.inspect_notebook(str(ROOT / notebook))
    fields = notebook_fields(NOTEBOOKS[notebook])
    assert list(listed) == [f.name for f in fields]
    for f in fields:
        assert listed[f.name]["inferred_type_name"] == notebook_type(f)
        assert listed[f.name]["help"] == spec_of(f).help


def test_the_parameters_cells_and_docs_tables_are_current():
    """Stale when a declaration changed without `python -m helpers.tools.parameters`."""
    stale = parameters.stale_files()
    assert not stale, (
        f"{', '.join(p.name for p in stale)} disagree with the settings' declarations: "
        "run python -m helpers.tools.parameters"
    )


def test_the_regenerating_command_rewrites_a_stale_table(tmp_path):
    for name in ("hw1_classification.ipynb", "hw2_anomaly.ipynb"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "docs").mkdir()
    for page in ("hw1.md", "hw2.md"):
        (tmp_path / "docs" / page).write_text((ROOT / "docs" / page).read_text())
    page = tmp_path / "docs" / "hw2.md"
    page.write_text(page.read_text().replace("| `latent` | `16` |", "| `latent` | `8` |"))
    with pytest.raises(SystemExit, match="run python -m helpers.tools.parameters"):
        parameters.main(["--check", "--root", str(tmp_path)])
    assert parameters.main(["--root", str(tmp_path)]) == [page]
    assert page.read_text() == (ROOT / "docs" / "hw2.md").read_text()


def test_every_setting_has_one_line_of_help_and_checks_that_parse():
    for settings in (Hw1Settings, Hw2Settings, FitConfig):
        for f in declared(settings):
            spec = spec_of(f)
            assert spec.help and "\n" not in spec.help, f"{settings.__name__}.{f.name}"
            if f.default is not MISSING and f.default is not None:
                from helpers.core.params import check_value

                check_value(f, f.default)  # a default passes its own checks


def test_every_preset_and_tuned_setting_passes_its_declared_checks():
    """resolve_hw1 checks the values it is given; the recipes' own values are checked here."""
    from helpers.core.params import check_values

    for preset, values in HW1_PRESETS.items():
        check_values(Hw1Settings, values)
        for tuned in HW1_FRACTION_TUNING.get(preset, {}).values():
            check_values(Hw1Settings, tuned)


def test_a_notebook_hands_over_its_parameters_by_their_declared_names():
    namespace = {"fraction": 0.5, "preset": "cpu", "data_dir": "d", "np": object(), "_": 1}
    assert parameters_of(namespace) == {"fraction": 0.5, "preset": "cpu", "data_dir": "d"}
    s = resolve_hw1(**parameters_of(namespace))
    assert (s.fraction, s.preset, s.epochs) == (0.5, "cpu", HW1_PRESETS["cpu"]["epochs"])


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(seed="1"), "seed='1' must be an integer."),
        (dict(download="no"), "download='no' must be True or False."),
        (dict(epochs=2.0), r"epochs=2.0 must be an integer >= 1, or None."),
        (dict(lr=float("nan")), r"lr=nan must be a positive number, or None \(e.g. 0.1\)."),
        (dict(pseudo_threshold=1), r"pseudo_threshold=1 must lie in \[0, 1\) \(e.g. 0.5\)."),
        (dict(teacher=3), "teacher=3 must be a string, or None."),
        (dict(self_training=True, fraction=1.0), "self_training=True needs unlabelled"),
        (dict(teacher="t"), "teacher=.t. is only used with self_training=True"),
        (dict(teacher="t", self_training=True), "teacher=.t. has no checkpoints/best.pt"),
    ],
)
def test_each_check_names_the_parameter_the_value_and_what_it_must_be(change, message):
    params = dict(data_dir="d", fraction=0.5, device="cpu") | change
    with pytest.raises(ParameterError, match=message):
        resolve_hw1("cpu", **params)


def test_a_declaration_checks_any_settings_class():
    from dataclasses import dataclass

    from helpers.core.params import check_values

    @dataclass
    class Small:
        size: tuple[int, ...] = setting((8, 16), "sizes", bounds=">= 1")
        share: float = setting(0.5, "a share", bounds="(0, 1]")

    check_values(Small, {"size": [1, 2], "share": 1})
    with pytest.raises(ParameterError, match=r"size=\[0, 2\] must be a list of integers >= 1"):
        check_values(Small, {"size": [0, 2]})
    with pytest.raises(ParameterError, match=r"share=True must lie in \(0, 1\]"):
        check_values(Small, {"share": True})
    with pytest.raises(ParameterError, match="unknown parameter"):
        check_values(Small, {"sise": [1]})
