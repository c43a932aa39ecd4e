"""Optional TensorBoard logging of a run: the notebooks' ``log_dir`` parameter.

Per epoch: every scalar of the history (losses, accuracy, precision, recall, F1,
learning rate), the per-layer gradient norms, and histograms of the weights. At the
end: every figure the notebook saves. Watch a run live with
``tensorboard --logdir <log_dir>`` (in Colab: ``%load_ext tensorboard`` then
``%tensorboard --logdir <log_dir>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .errors import ParameterError


def _tag(key: str) -> str:
    """``train_loss`` -> ``loss/train``: TensorBoard groups a metric's train and val curves."""
    for split in ("train", "val"):
        if key.startswith(split + "_"):
            return f"{key[len(split) + 1 :]}/{split}"
    return key


class TensorBoardLog:
    """Writes one run's event files under ``<log_dir>/<run_name>``."""

    def __init__(self, log_dir: str | Path, run_name: str) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ParameterError(
                f"log_dir={str(log_dir)!r} needs the tensorboard package: pip install tensorboard "
                "(or set log_dir=None for no TensorBoard logging)."
            ) from None
        self.path = Path(log_dir).expanduser() / run_name
        self.writer = SummaryWriter(str(self.path))

    def epoch(self, history: list[dict], model: nn.Module) -> None:
        """An ``on_epoch`` hook for ``fit``: the latest epoch's scalars and weight histograms."""
        record = history[-1]
        step = record["epoch"]
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(_tag(key), value, step)
        for layer, norm in record.get("grad_norm", {}).items():
            self.writer.add_scalar(f"grad_norm/{layer}", norm, step)
        for name, p in model.named_parameters():
            if p.dim() > 1:
                self.writer.add_histogram(f"weights/{name}", p.detach().float().cpu(), step)
        self.writer.flush()

    def figure(self, name: str, fig: Any) -> None:
        """Log a matplotlib figure as an image (the figure stays open for the notebook)."""
        self.writer.add_figure(name, fig, close=False)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class NoLog:
    """Stands in for :class:`TensorBoardLog` when ``log_dir`` is None: does nothing."""

    path = None

    def epoch(self, history: list[dict], model: nn.Module) -> None:
        pass

    def figure(self, name: str, fig: Any) -> None:
        pass

    def close(self) -> None:
        pass


def open_log(log_dir: str | Path | None, run_name: str) -> TensorBoardLog | NoLog:
    """A TensorBoard log for the run, or a do-nothing stand-in when ``log_dir`` is None."""
    return NoLog() if log_dir is None else TensorBoardLog(log_dir, run_name)
