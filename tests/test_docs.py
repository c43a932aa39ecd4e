"""The README front page and the pages under docs/: every local link and image resolves."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """GitHub's id for a Markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {github_anchor(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def local_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_anchors_are_made_as_github_makes_them():
    assert (
        github_anchor('The course\'s data layout (`dataset="folder"`)')
        == "the-courses-data-layout-datasetfolder"
    )
    assert github_anchor("Runs, resume and reproducibility") == "runs-resume-and-reproducibility"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_local_link_and_image_resolves(page):
    for target in local_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: {target} does not exist"
        ignored = subprocess.run(["git", "check-ignore", "-q", str(file)], cwd=ROOT).returncode == 0
        assert not ignored, (
            f"{page.name}: {target} is git-ignored (a local-only file): do not link it"
        )
        if anchor:
            assert anchor in anchors(file), (
                f"{page.name}: {target}: no heading with that anchor in {file.name}"
            )


def test_the_front_page_is_short_and_links_every_docs_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in text, f"README.md does not link docs/{page.name}"


def test_every_documented_command_names_a_tool_that_exists():
    """`python -m helpers.tools.study` and the like, wherever a command is written (README,
    docs, the figures' PROVENANCE.md, notebooks, docstrings): a stale module name fails here
    (a placeholder, `helpers.tools.<name>`, is not a command)."""
    import importlib

    written = [*PAGES, *ROOT.glob("figures/**/PROVENANCE.md"), *ROOT.glob("*.ipynb")]
    written += [*ROOT.glob("helpers/**/*.py"), ROOT / ".ci" / "run"]
    found = {
        (module, path.relative_to(ROOT))
        for path in written
        for module in re.findall(r"python -m (helpers(?:\.\w+)+)(?![\w.])", path.read_text())
    }
    assert len({module for module, _ in found}) >= 8
    aliases = {"helpers.bench"}  # the name the reference machine's timings use
    for module, path in sorted(found):
        assert module.startswith("helpers.tools.") or module in aliases, (
            f"{path}: {module} is not a tool's module"
        )
        assert hasattr(importlib.import_module(module), "main"), f"{path}: {module} has no main"
