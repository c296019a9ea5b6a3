"""Atomic file replacement: a crash mid-write never leaves a half-written file at ``path``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

#: prefix of the temporary files written next to the target (ignored by loaders)
TMP_PREFIX = "."
TMP_SUFFIX = ".tmp"


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _mode_for(target: Path) -> int:
    """Keep an existing file's permissions; new files get ``rw-r--r--`` (mkstemp's default is owner-only)."""
    try:
        return os.stat(target).st_mode & 0o777
    except OSError:
        return 0o644


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``path`` for binary writing; on success it replaces ``path``.

    The sequence is: write to ``.NAME.XXXX.tmp`` in the same directory, flush,
    ``os.fsync``, ``os.replace`` onto ``path`` (atomic on POSIX and Windows), then fsync
    the directory so the rename itself survives a power loss. If the body raises, the
    temporary file is removed and ``path`` is untouched. If the process is killed, the
    previous ``path`` is intact and at most a stale ``.tmp`` file is left behind.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{target.name}.", suffix=TMP_SUFFIX, dir=directory)
    try:
        os.chmod(tmp, _mode_for(target))
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(f)`` on a temporary binary file and atomically move it to ``path``."""
    with atomic_open(path) as f:
        write(f)
