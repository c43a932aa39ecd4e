"""What the command-line tools share: their parser, the options that reach the notebooks
(``--device``, ``--precision``, ``--set NAME=VALUE``), and reading ``--set`` items."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..core.device import PRECISIONS
from ..core.errors import ParameterError


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["epochs=5", "channels=[8, 16]", "device=cpu"]`` -> parameters: each value is read
    as JSON when it parses (numbers, true/false/null, lists), else kept as a string."""
    params = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ParameterError(f"{item!r} is not NAME=VALUE; write e.g. epochs=5.")
        try:
            params[name] = json.loads(text)
        except json.JSONDecodeError:
            params[name] = text
    return params


def command_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of ``python -m helpers.tools.<name>``; its help is the module's docstring."""
    return argparse.ArgumentParser(
        prog=f"python -m helpers.tools.{name}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_device_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--device`` and ``--precision``, handed to the notebooks' parameters of those names."""
    parser.add_argument(
        "--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda"
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: bf16/fp16 only where the hardware has them; fp32 everywhere else",
    )


def add_set_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set NAME=VALUE ...``: other notebook parameters (read by :func:`parse_assignments`)."""
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE", help=help)
