"""Atomic file replacement: a crash mid-write never leaves a half-written file at ``path``.

The temporary file of a write to ``DIR/NAME`` is ``DIR/.NAME.PID@HOST-XXXXXXXX.tmp``
(``PID`` the writer's process id, ``HOST`` a short hash of its host name). A writer
killed mid-write (``SIGKILL``, power loss) leaves that file behind; the next write to
the same target removes it once it is stale: its writer process (on this host) is gone,
or it has not been modified for :data:`STALE_AFTER_S` seconds before the current write
began (which also covers temporary files of older trajkit versions, ``.NAME.XXXXXXXX.tmp``).
Temporary files of other targets, and fresh ones of live writers, are never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

#: prefix of the temporary files written next to the target (ignored by loaders)
TMP_PREFIX = "."
TMP_SUFFIX = ".tmp"

#: a temporary file untouched this long before a write to its target began is stale,
#: whatever its writer (no save spends an hour without writing)
STALE_AFTER_S = 3600.0

_OURS = re.compile(r"(?P<pid>\d+)@(?P<host>[0-9a-f]{8})-[A-Za-z0-9_]+")
_LEGACY = re.compile(r"[A-Za-z0-9_]+")


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this host (False when it cannot be told, e.g. on Windows)."""
    if os.name == "nt" or pid <= 0:
        return False  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, under another user
        return False
    return False


def _is_stale(tmp: Path, remainder: str, started: float) -> bool:
    """Whether ``tmp`` (a temporary file of our target, ``remainder`` its middle part) is stale."""
    m = _OURS.fullmatch(remainder)
    if m is None and _LEGACY.fullmatch(remainder) is None:
        return False  # not a temporary file of this target (e.g. of "NAME.1")
    if m is not None and m["host"] == _host_tag() and int(m["pid"]) != os.getpid() and _process_gone(int(m["pid"])):
        return True
    try:
        return tmp.stat().st_mtime < started - STALE_AFTER_S
    except OSError:
        return False


def clean_stale_tmp(target: Path, started: float | None = None) -> list[Path]:
    """Remove the stale temporary files of ``target`` (see the module docstring); return those removed."""
    started = time.time() if started is None else started
    directory = target.parent if str(target.parent) else Path(".")
    head, removed = f"{TMP_PREFIX}{target.name}.", []
    with contextlib.suppress(OSError):
        for tmp in directory.iterdir():
            n = tmp.name
            if not (n.startswith(head) and n.endswith(TMP_SUFFIX)) or len(n) <= len(head) + len(TMP_SUFFIX):
                continue
            if _is_stale(tmp, n[len(head) : -len(TMP_SUFFIX)], started):
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    removed.append(tmp)
    return removed


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
    previous ``path`` is intact and at most a stale ``.tmp`` file is left behind, which
    the next write to ``path`` removes (:func:`clean_stale_tmp`).
    """
    started = time.time()
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(target, started)
    prefix = f"{TMP_PREFIX}{target.name}.{os.getpid()}@{_host_tag()}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=TMP_SUFFIX, dir=directory)
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
