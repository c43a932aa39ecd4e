"""Run folders, atomic file writes, and the record of what produced a result."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import ParameterError


def _atomic(path: str | Path, write: Callable[[str], None]) -> Path:
    """Write through a temporary file in the same folder, then rename over ``path``.

    An interrupted write leaves the old file (or nothing), never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Atomically write ``data`` as indented JSON."""
    return write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write ``text``."""
    return _atomic(path, lambda tmp: Path(tmp).write_text(text))


def save_torch(path: str | Path, obj: Any) -> Path:
    """Atomically ``torch.save`` ``obj``."""
    return _atomic(path, lambda tmp: torch.save(obj, tmp))


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Atomically save a matplotlib figure as PNG."""
    return _atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def prepare_run_dir(results_dir: str | Path, overwrite: bool = False, resume: bool = False) -> Path:
    """Create ``results_dir`` for a run, refusing to replace a finished run's results.

    A folder that already holds ``metrics.json`` is a finished run: it is reused only
    with ``overwrite=True`` (start again) or ``resume=True`` (continue from its checkpoint).
    """
    path = Path(results_dir).expanduser()
    if (path / "metrics.json").exists() and not (overwrite or resume):
        raise ParameterError(
            f"results_dir={str(results_dir)!r} already holds a finished run (metrics.json). "
            "Choose a new results_dir to keep it, or set overwrite=True to replace it."
        )
    if resume and not (path / "checkpoints" / "last.pt").exists():
        raise ParameterError(
            f"resume=True but {path / 'checkpoints' / 'last.pt'} does not exist: there is no "
            "interrupted run in this results_dir. Set resume=False to start one."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ParameterError(
            f"results_dir={str(results_dir)!r} is not writable ({exc.strerror}). "
            "Choose a folder you can write to."
        ) from None
    return path


def fingerprint(*tensors: torch.Tensor) -> str:
    """A short SHA-256 of the tensors' bytes: the same images give the same string."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def environment() -> dict[str, str]:
    """Library versions and platform, for the record of a run."""
    import numpy
    import sklearn
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
        "cuda": torch.version.cuda or "none",
    }
