"""tqdm progress bars that are widgets in Jupyter and plain text elsewhere."""

from __future__ import annotations

import sys
from typing import Any


def in_notebook_with_widgets() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None or "IPKernelApp" not in shell.config:
            return False
        import ipywidgets  # noqa: F401  (tqdm.notebook needs it)
    except Exception:
        return False
    return True


def progress_bar(*args: Any, **kwargs: Any):
    """``tqdm.notebook.tqdm`` inside Jupyter (when ipywidgets is present), else text tqdm.

    Text bars go to stdout and refresh at most every few seconds, so papermill logs
    and CI output stay readable.
    """
    if in_notebook_with_widgets():
        from tqdm.notebook import tqdm

        return tqdm(*args, **kwargs)
    from tqdm import tqdm

    kwargs.setdefault("file", sys.stdout)
    kwargs.setdefault("mininterval", 5.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(*args, **kwargs)


def log_line(text: str) -> None:
    """Print one line without breaking an active progress bar."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stdout)
