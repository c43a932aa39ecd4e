"""Run folders, atomic file writes, and the record of what produced a result."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .errors import ParameterError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _atomic(path: str | Path, write: Callable[[str], object]) -> Path:
    """Write through a temporary file in the same folder, then rename over ``path``.

    An interrupted write leaves the old file (or nothing), never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private (0600); give the usual mode
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


# Settings that say where or how a run executes, not what it computes: they do not
# change a run's name, and may differ when a run is resumed.
OPERATIONAL = frozenset(
    {
        "overwrite",
        "resume",
        "figures_dir",
        "results_dir",
        "run_name",
        "device",
        "download",
        "log_dir",
        "deterministic",
        "compile_model",
    }
)


def run_name(label: str, params: dict[str, Any]) -> str:
    """``<label>-<6 hex digits>``: the digits hash every setting that changes the result, so
    the same parameters always give the same name and different ones a different name."""
    key = {k: v for k, v in params.items() if k not in OPERATIONAL}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return f"{label}-{digest[:6]}"


def check_run_name(name: str, value: Any) -> None:
    """A run folder's name must be a plain folder name: no slashes, not ``.`` or ``..``."""
    if not value.strip() or value in (".", "..") or any(c in value for c in "/\\"):
        raise ParameterError(
            f"{name}={value!r} must be a plain folder name (no slashes), "
            "or None to name the run from its parameters."
        )


def name_run(settings: Any) -> Any:
    """``settings``, its ``run_name`` (when None) named from its parameters (:func:`run_name`)."""
    if settings.run_name is None:
        settings.run_name = run_name(settings.run_label(), settings.as_dict())
    return settings


def prepare_run_dir(run_dir: str | Path, overwrite: bool = False, resume: bool = False) -> Path:
    """Create the folder of one run, refusing to replace a finished run's results.

    A folder that already holds ``metrics.json`` is a finished run: it is reused only
    with ``overwrite=True`` (start again) or ``resume=True`` (continue from its checkpoint).
    """
    path = Path(run_dir).expanduser()
    if (path / "metrics.json").exists() and not (overwrite or resume):
        raise ParameterError(
            f"{path} already holds a finished run (metrics.json). "
            "Give another run_name (or results_dir) to keep it and start a new one, or set "
            "overwrite=True to replace it."
        )
    if resume and not (path / "checkpoints" / "last.pt").exists():
        raise ParameterError(
            f"resume=True but {path / 'checkpoints' / 'last.pt'} does not exist: there is no "
            "interrupted run in this run folder (check results_dir and run_name). Set "
            "resume=False to start one."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ParameterError(
            f"results_dir: cannot write to {str(path)!r} ({exc.strerror}). "
            "Choose a results_dir you can write to."
        ) from None
    return path


def start_run(settings) -> Path:
    """Make ``<results_dir>/<run_name>/`` for ``settings`` and record its parameters there
    (``params.json``). Resuming checks that the parameters are those of the interrupted run."""
    params = settings.as_dict()
    run = prepare_run_dir(
        Path(settings.results_dir) / settings.run_name, settings.overwrite, settings.resume
    )
    recorded = run / "params.json"
    if settings.resume and recorded.exists():
        before = json.loads(recorded.read_text())
        changed = sorted(
            k
            for k in set(before) | set(params)
            if k not in OPERATIONAL
            and json.dumps(before.get(k), default=str) != json.dumps(params.get(k), default=str)
        )
        if changed:
            raise ParameterError(
                f"cannot resume {run}: it was started with different {', '.join(changed)} "
                f"({', '.join(f'{k}={before.get(k)!r}' for k in changed)}). Use the original "
                "parameters, or set resume=False to start a new run."
            )
    write_json(recorded, params)
    return run


def history_writer(
    run_dir: str | Path, name: str = "history.json"
) -> Callable[[list[dict], Any], None]:
    """An ``on_epoch`` hook for ``fit`` that keeps ``history.json`` (or ``name``) in the run
    folder current."""
    path = Path(run_dir) / name

    def write(history: list[dict], model: Any) -> None:
        write_json(path, history)

    return write


def publish_latest(run_dir: str | Path) -> Path:
    """Copy the run's ``metrics.json`` to ``<results_dir>/metrics.json`` (the latest run,
    naming its folder); the run folder keeps the original."""
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return write_json(run_dir.parent / "metrics.json", {"run_dir": str(run_dir), **metrics})


def write_provenance(folder: str | Path, text: str) -> Path:
    """Write ``<folder>/PROVENANCE.md``: where the figures in that folder come from."""
    return write_text(
        Path(folder) / "PROVENANCE.md", f"# Where the figures in this folder come from\n\n{text}\n"
    )


def figure_saver(
    figures_dir: str | Path, run_dir: str | Path, also: Callable[[str, Any], None] | None = None
) -> Callable[[Any, str], Path]:
    """``save(fig, name)`` writes ``<name>.png`` into ``figures_dir`` and into the run folder's
    own ``figures/``, hands the figure to ``also`` (e.g. TensorBoard), and keeps
    ``figures_dir/PROVENANCE.md`` naming the run that wrote the figures."""
    figures_dir, run_dir = Path(figures_dir), Path(run_dir)
    own = run_dir / "figures"
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    saved: list[str] = []

    def save(fig, name: str) -> Path:
        path = save_figure(fig, figures_dir / f"{name}.png")
        if (
            own.resolve() != figures_dir.resolve()
        ):  # the same bytes: a figure is drawn once, not twice
            _atomic(own / f"{name}.png", lambda tmp: shutil.copyfile(path, tmp))
        if also is not None:
            also(name, fig)
        saved.append(name)
        write_provenance(
            figures_dir,
            (
                f"_Written on {date} by the notebook run in `{run_dir}` (its parameters: "
                "`params.json`, "
                f"its results: `metrics.json` there)._\n\nFigures from that run: "
                + ", ".join(f"`{n}.png`" for n in saved)
                + ". Any other PNG here comes from an earlier run."
            ),
        )
        return path

    return save


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
