"""Point the "Open in Colab" badges and the notebooks' Colab setup cell at your copy.

    python -m helpers.tools.colab https://github.com/OWNER/REPO [--branch main]

rewrites, in ``README.md`` and both notebooks, the badge links
(``colab.research.google.com/github/<owner>/<repo>/blob/<branch>/...``) and the
``REPOSITORY = "..."`` line of the setup cell, which clones the repository in Colab.
Run it once after publishing the repository (or a fork) on GitHub, and commit.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.errors import ParameterError
from ..core.notebooks import ROOT
from ..core.runs import write_text
from .cli import command_parser

FILES = ("README.md", "hw1_classification.ipynb", "hw2_anomaly.ipynb")
BADGE = re.compile(r"colab\.research\.google\.com/github/[^/\s)\"]+/[^/\s)\"]+/blob/[^/\s)\"]+/")
REPOSITORY = re.compile(r'REPOSITORY = \\?"[^"\\]*\\?"')


def owner_and_repo(url: str) -> tuple[str, str]:
    """``https://github.com/me/course.git`` -> ``("me", "course")``."""
    match = re.fullmatch(
        r"(?:https://github\.com/|git@github\.com:)([\w.-]+)/([\w.-]+?)(?:\.git)?/?", url
    )
    if not match:
        raise ParameterError(
            f"{url!r} is not a GitHub repository address; write it like "
            "https://github.com/OWNER/REPO."
        )
    return match.group(1), match.group(2)


def point_at(url: str, branch: str = "main", root: Path = ROOT) -> list[Path]:
    """Rewrite the badges and setup cells under ``root``; returns the files changed."""
    owner, repo = owner_and_repo(url)
    changed = []
    for name in FILES:
        path = Path(root) / name
        text = path.read_text()
        new = BADGE.sub(f"colab.research.google.com/github/{owner}/{repo}/blob/{branch}/", text)
        quote = '\\"' if name.endswith(".ipynb") else '"'  # inside a notebook's JSON string
        new = REPOSITORY.sub(f"REPOSITORY = {quote}https://github.com/{owner}/{repo}{quote}", new)
        if new != text:
            write_text(path, new)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> None:
    parser = command_parser("colab", __doc__)
    parser.add_argument("url", help="https://github.com/OWNER/REPO")
    parser.add_argument("--branch", default="main")
    args = parser.parse_args(argv)
    for path in point_at(args.url, args.branch):
        print(f"updated {path.name}")


if __name__ == "__main__":
    main()
