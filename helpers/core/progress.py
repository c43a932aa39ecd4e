"""What a long computation tells its user: tqdm progress bars (widgets in Jupyter, plain
text elsewhere), log lines, the estimated training time, and durations in words."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import torch

SLOW_SECONDS = 3600  # an estimate over an hour calls TimeEstimate's on_slow


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


class TimeEstimate:
    """Announce, after the first few steps, how long the whole training will take.

    The first step (warm-up, kernel selection, compilation) is not timed; the next
    ``timed_steps`` are, and the announcement extrapolates them to every step left. When
    that is over :data:`SLOW_SECONDS`, ``on_slow`` is called with it (the caller's advice,
    e.g. a smaller recipe).
    """

    def __init__(
        self,
        total_steps: int,
        timed_steps: int,
        on_slow: Callable[[float], None] | None = None,
    ) -> None:
        self.total_steps, self.timed_steps, self.on_slow = total_steps, timed_steps, on_slow
        self.start = 0.0  # set at step 1, read from step timed_steps + 1 on
        self.seconds: float | None = None

    def before_step(self, step: int, losses: torch.Tensor) -> None:
        if (
            self.timed_steps < 1
            or self.seconds is not None
            or self.total_steps <= self.timed_steps + 1
        ):
            return
        if step == 1 or step == self.timed_steps + 1:
            losses[step - 1].item()  # wait for the device to finish the previous step
            now = time.perf_counter()
            if step == 1:
                self.start = now
            else:
                per_step = (now - self.start) / self.timed_steps
                self.seconds = per_step * self.total_steps
                log_line(self.message(per_step))
                if self.on_slow is not None and self.seconds > SLOW_SECONDS:
                    self.on_slow(self.seconds)

    def message(self, per_step: float) -> str:
        return (
            f"estimated training time: {_duration(per_step * self.total_steps)} "
            f"({per_step:.2f} s per step x {self.total_steps:,} steps, from steps "
            f"2-{self.timed_steps + 1}; evaluation not included)"
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def minutes(seconds: float) -> str:
    """``874.2`` -> ``"14 min 34 s"``."""
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
