"""Write the notebooks' parameters cells and the docs' parameters tables from the settings'
declarations, where each notebook parameter is declared once.

    python -m helpers.tools.parameters          # rewrite what is stale
    python -m helpers.tools.parameters --check  # exit 1 and name what is stale

Each parameter is a field of its homework's settings (:mod:`helpers.hw1.settings`,
:mod:`helpers.hw2.settings`) with its default, type, bounds and help. From it come the
notebook's parameters cell (papermill needs it and reads each line's type and help for
``papermill --help-notebook``; the comment lines above the parameters are kept) and the
table between ``<!-- parameters:hw1 -->`` and ``<!-- /parameters:hw1 -->`` in
docs/hw1.md (likewise hw2). ``tests/test_parameters.py`` fails when either is stale.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from ..core.notebooks import ROOT
from ..core.params import cell_lines, markdown_table
from ..core.runs import write_text
from ..hw1.settings import Hw1Settings
from ..hw2.settings import Hw2Settings
from .cli import command_parser
from .report import replace_block

# Each homework's settings, notebook and docs page.
HOMEWORKS: dict[str, tuple[type, str, str]] = {
    "hw1": (Hw1Settings, "hw1_classification.ipynb", "docs/hw1.md"),
    "hw2": (Hw2Settings, "hw2_anomaly.ipynb", "docs/hw2.md"),
}
PARAMETER_LINE = re.compile(r"^\w+: ")


def parameters_cell(source: str, settings: type) -> str:
    """``source`` (a parameters cell) with its parameter lines written from ``settings``'
    declaration; the comments above them are kept and ``typing`` imports what they use."""
    lines = cell_lines(settings)
    header = [line for line in source.splitlines() if not PARAMETER_LINE.match(line)]
    used = [name for name in ("Optional", "Union") if any(f"{name}[" in x for x in lines)]
    header = [
        f"from typing import {', '.join(used)}" if x.startswith("from typing import") else x
        for x in header
    ]
    header = [x for x in header if x.strip()]  # no blank line: the cell stays within 40 lines
    return "\n".join([*header, *lines])


def current_notebook(path: Path, settings: type) -> str:
    """The notebook at ``path`` as it should read, its parameters cell from ``settings``."""
    notebook = nbformat.reads(path.read_text(), as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = parameters_cell(cell.source, settings)
    return nbformat.writes(notebook) + "\n"


def current_files(root: Path = ROOT) -> dict[Path, str]:
    """Every notebook and docs page that holds parameters, as it should read."""
    files = {}
    for name, (settings, notebook, page) in HOMEWORKS.items():
        files[root / notebook] = current_notebook(root / notebook, settings)
        text = (root / page).read_text()
        files[root / page] = replace_block(text, name, markdown_table(settings), "parameters")
    return files


def stale_files(root: Path = ROOT) -> dict[Path, str]:
    """The files whose parameters differ from the declarations, with what they should read."""
    return {path: text for path, text in current_files(root).items() if path.read_text() != text}


def main(argv: list[str] | None = None) -> list[Path]:
    parser = command_parser("parameters", __doc__)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a file is stale"
    )
    parser.add_argument("--root", default=str(ROOT), help="the repository (default: this one)")
    args = parser.parse_args(argv)
    stale = stale_files(Path(args.root))
    for path, text in stale.items():
        if args.check:
            print(f"stale: {path}")
        else:
            write_text(path, text)
            print(f"updated {path}")
    if args.check and stale:
        raise SystemExit(
            "the parameters above differ from their declarations: run "
            "python -m helpers.tools.parameters"
        )
    return list(stale)


if __name__ == "__main__":
    main()
