"""Atomic file writes and validated reads for run state; the output paths a user gives.

Every file a run persists goes through these helpers: the content is written to a temporary
file in the same folder and renamed over the target, so a process killed at any moment leaves
either the old file or the new one, never a torn one (an OSError names the target, not the
temporary). :func:`check_output` checks an ``--out`` before any work; :func:`run_lock` keeps two
commands from writing one run folder at once.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "file_digest",
    "StateFileError",
    "PathError",
    "check_output",
    "check_new_file",
    "run_lock",
    "LOCK_NAME",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save_npy",
    "atomic_torch_save",
    "save_figure",
    "read_json",
    "load_npy",
    "torch_load",
]


class StateFileError(RuntimeError):
    """A persisted file exists but cannot be read back (corrupt, truncated, wrong content)."""


class PathError(ValueError):
    """A path the user gave is of the wrong kind (a file where a folder goes, …) or unusable."""


def file_digest(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, hex (a checkpoint's, an annotation file's identity)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_output(path: str | os.PathLike, flag: str = "--out", *, folder: bool = True) -> Path:
    """Make ``path`` ready to be written: a folder (``folder=True``, created) or a file (its
    folder created), before any work. Raises :class:`PathError` naming ``flag``, the path and
    what was expected when a file stands where a folder is needed (or the reverse) or the
    folder cannot be created (permissions, a read-only disk).
    """
    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise PathError(f"{flag} {path}: {parent} is a file, not a folder")
    if folder and path.exists() and not path.is_dir():
        raise PathError(f"{flag} {path}: is a file; expected a folder (new or existing)")
    if not folder and path.is_dir():
        raise PathError(f"{flag} {path}: is a folder; expected a file name")
    target = path if folder else path.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError(f"{flag} {path}: cannot create {target} ({exc.strerror or exc})") from exc
    return path


def check_new_file(
    path: str | os.PathLike,
    flag: str = "--out",
    *,
    overwrite: bool = False,
    inputs: dict[str, str | os.PathLike] | None = None,
) -> Path:
    """:func:`check_output` for a file that a command writes whole (a merged labelled set, an
    export), before any work: a file already there is refused unless ``overwrite``, so that no
    command silently replaces a user's file. ``inputs`` (flag -> path) names the files the
    command reads; writing one of them is refused with a message that says so, unless
    ``overwrite``.
    """
    path = check_output(path, flag, folder=False)
    if overwrite or not path.exists():
        return path
    for name, source in (inputs or {}).items():
        if Path(source).exists() and path.resolve() == Path(source).resolve():
            raise PathError(
                f"{flag} {path}: is also {name}; writing it would replace that file: give a "
                "new name, or --overwrite to replace it"
            )
    raise PathError(
        f"{flag} {path}: already exists ({path.stat().st_size} bytes); eglpp does not replace "
        "it: give a new name, or --overwrite to replace it"
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


LOCK_NAME = ".eglpp.lock"


def _alive(holder: dict) -> bool:
    """Whether the process that wrote a lock still runs (on another host: assumed so)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def _holder(lock: Path) -> dict | None:
    """The lock's {"pid", "host", "since"}, None while it is being written (or unreadable)."""
    try:
        holder = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(holder, dict) and isinstance(holder.get("pid"), int)
    return holder if ok else None


@contextmanager
def run_lock(folder: str | os.PathLike, log: Callable[[str], None] = print) -> Iterator[Path]:
    """Hold ``folder/.eglpp.lock`` (this process's id, host and start time) while a command
    writes ``folder``, so that two commands never interleave in one run folder.

    A lock of a process that still runs raises :class:`PathError` naming it; a lock left by a
    process that is gone (killed, crashed) is reported through ``log`` and taken over. In a
    folder nobody may write (read-only file system, no write permission) no lock is needed and
    none is taken: a finished run there can still be read back; any write fails by itself.
    """
    folder = Path(folder)
    lock = folder / LOCK_NAME
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(lock)
            young = time.time() - _mtime(lock) < 10
            if holder is None and young or holder is not None and _alive(holder):
                who = "another process" if holder is None else (
                    f"process {holder['pid']} on {holder.get('host')} since "
                    f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(holder.get('since', 0)))}"
                )  # fmt: skip
                raise PathError(
                    f"{folder} is in use by {who}; wait for it to end, or delete {lock} if "
                    "that process is gone"
                ) from None
            what = "unreadable" if holder is None else f"of process {holder['pid']}, gone"
            log(f"note: removed a stale lock ({what}) from {lock}")
            lock.unlink(missing_ok=True)
            continue
        except OSError as exc:
            if exc.errno not in _READ_ONLY or not folder.is_dir():
                raise
            fd = None  # nobody may write here: nothing to keep apart
        break
    else:
        raise PathError(f"{folder}: could not take the lock {lock}")
    if fd is None:
        yield lock
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(mine))
    try:
        yield lock
    finally:
        if (_holder(lock) or {}).get("pid") == mine["pid"]:
            lock.unlink(missing_ok=True)


#: errno values of a folder this process may not write in: read-only file system, no permission.
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename).

    A file that already holds exactly ``data`` is left alone, so that rerunning a finished
    command rewrites nothing (its folder may be read-only, e.g. an archived run).
    """
    path = Path(path)
    if _holds(path, data):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; use open()'s mode
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from exc
        raise
    return path


def _holds(path: Path, data: bytes, block: int = 1 << 20) -> bool:
    """Whether ``path`` is a file whose content is ``data``: the size first, then block by
    block, stopping at the first difference (a checkpoint rewritten each cycle has the same
    size but differs early, so it is not read whole)."""
    try:
        if path.stat().st_size != len(data):
            return False
        view = memoryview(data)
        with open(path, "rb") as fh:
            return all(
                fh.read(block) == view[start : start + block]
                for start in range(0, len(data), block)
            )
    except OSError:
        return False


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` about ``path`` itself (not the temporary file next to it), same errno and type."""
    return exc if exc.errno is None else OSError(exc.errno, exc.strerror, str(path))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf) replaced by None: JSON has neither."""
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as strict JSON (atomically): NaN and ±inf, which JSON lacks, become null."""
    text = json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure atomically (format from the suffix).

    ``fig`` is a :class:`matplotlib.figure.Figure` made directly (``Figure(figsize=...)``), not
    through pyplot: it needs no backend and nothing to close, and is freed with its last
    reference.
    """
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png")
    return atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` atomically (torch is imported here: the file commands start without it)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateFileError(f"{path}: not valid JSON ({exc})") from exc


def load_npy(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise StateFileError(f"{path}: not a readable .npy array ({exc})") from exc


def torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a checkpoint with ``weights_only=True``; a corrupt file raises StateFileError."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise StateFileError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {first})"
        ) from exc
