"""Atomic file writes.

A result file that is half written (crash, Ctrl-C, full disk) is worse than no file: DVC and the
training code would take it for a finished result. Every writer in the package therefore writes to a
temporary file in the *same directory* as the target and renames it into place with ``os.replace``,
which is atomic on POSIX and Windows when source and target are on the same file system.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_path", "write_json_atomic", "write_text_atomic"]


def _default_mode() -> int:
    # mkstemp creates files with mode 0600; a renamed result should get the permissions an ordinary
    # ``open(path, "w")`` would give, i.e. 0666 minus the umask. The umask can only be read by setting
    # it, so set it back immediately.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds.

    Parameters
    ----------
    path : str or path-like
        Final destination. Its parent directory must exist.
    fsync : bool, default True
        Flush the temporary file to disk before the rename, so that a power loss cannot leave an empty
        file under the final name.

    Yields
    ------
    pathlib.Path
        An existing, empty temporary file in the same directory as ``path``. Write to it (by name).

    Notes
    -----
    On any exception inside the block the temporary file is removed and ``path`` is left untouched.
    If ``path`` already exists, its permission bits are kept.

    Examples
    --------
    >>> with atomic_path("results.csv") as tmp:          # doctest: +SKIP
    ...     frame.to_csv(tmp)
    """
    target = Path(path)
    parent = target.parent
    # output folders (artifacts/..., reports/...) are created on first write
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = _default_mode()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_text_atomic(text: str, path: str | os.PathLike, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding=encoding, newline="") as fh:
            fh.write(text)
    return Path(path)


def write_json_atomic(obj: Any, path: str | os.PathLike, *, indent: int | None = 2, **dumps_kwargs: Any) -> Path:
    """Serialise ``obj`` as JSON and write it to ``path`` atomically; return the path.

    The object is serialised *before* the temporary file is created, so an unserialisable object
    raises ``TypeError`` without touching the file system. ``dumps_kwargs`` go to ``json.dumps``
    (``sort_keys=True`` is the default, for reproducible files).
    """
    dumps_kwargs.setdefault("sort_keys", True)
    text = json.dumps(obj, indent=indent, **dumps_kwargs) + "\n"
    return write_text_atomic(text, path)
