"""What the command-line tools share: their parser, and ``--set NAME=VALUE`` items."""

from __future__ import annotations

import argparse
import json
from typing import Any

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
