"""Checkpoints: everything a run needs to continue exactly, in one atomically written file.

:func:`save_checkpoint` takes a mapping of names to things and stores each by kind:

* a ``torch.nn.Module``: its ``state_dict()`` (parameters and buffers, so observation
  normalizers' running statistics are included);
* a ``torch.optim.Optimizer``: its ``state_dict()`` and its class name;
* a ``torch.Generator``: its ``get_state()``;
* anything with ``state_dict()`` and ``load_state_dict()`` (:class:`Stateful`: an
  :class:`~trajkit.EpiSampler`'s env and action RNG states, a replay buffer, ...): its
  ``state_dict()``;
* plain data (numbers, strings, bools, None, tensors, NumPy arrays and scalars, and
  dicts/lists/tuples of them: counters, configs): as is;
* any other object: pickled with cloudpickle, only with ``allow_pickle=True``.

The process-global RNG states (torch, NumPy's legacy global generator, Python's
``random``, CUDA when present) are saved only with ``rng=True`` and restored only with
``restore_rng=True``: a library call does not touch global state unless asked (the
``trajkit`` command line asks, for exact resume).

:func:`load_checkpoint` restores into the objects you pass under the same names. It
first reads and validates everything (format and version, a SHA-256 digest of the
content, each module's keys, shapes and dtypes, each optimizer's class, parameter
groups and state shapes, each generator's state size, and each stateful object's state,
by its ``check_state_dict(state)`` where it has one (:class:`CheckableState`), else by
its keys) and only then loads anything, so an incompatible or corrupted checkpoint
raises :class:`CheckpointError` and leaves your objects untouched. Should a
``load_state_dict`` still fail after the checks, the objects loaded so far are put
back as they were.

**File format.** The file is an ordinary ``torch.save`` archive of a small dict
``{"format": "trajkit.checkpoint", "version": 1, "sha256": ..., "payload": bytes}``
where ``payload`` is itself a ``torch.save`` archive of the content. The outer digest
is there because ``torch.load`` does not notice flipped bytes inside tensor data.
Both levels are read with ``torch.load(..., weights_only=True)``: loading a checkpoint
never runs arbitrary pickled code. NumPy arrays are stored as raw bytes plus dtype and
shape for the same reason. The only exception is an object saved with
``allow_pickle=True`` (something with no ``state_dict``): its bytes are unpickled only
when :func:`load_checkpoint` is also given ``allow_pickle=True``.

**Atomicity.** The file is written to a temporary file in the same directory,
flushed, fsynced and renamed over the old one (then the directory is fsynced), so a
crash or ``SIGKILL`` during a save leaves the previous checkpoint intact; the next save
removes the temporary file such a crash left behind.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
import numpy as np
import torch

from trajkit._atomic import atomic_open
from trajkit._checkpoint_checks import CheckableState, CheckpointError, Stateful, check_entry, kind_of
from trajkit._safe_data import from_safe, to_safe

__all__ = [
    "CheckableState",
    "Checkpoint",
    "CheckpointError",
    "Stateful",
    "load_checkpoint",
    "read_checkpoint_data",
    "rng_states",
    "save_checkpoint",
    "set_rng_states",
]

FORMAT_NAME = "trajkit.checkpoint"
FORMAT_VERSION = 1

PathLike = str | os.PathLike[str]


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes:
        data: the plain-data entries (counters, configs, ...) and, with
            ``allow_pickle=True``, the unpickled objects, by name.
        meta: ``trajkit_version``, ``torch_version``, ``time`` (seconds since the epoch)
            of the save.
        names: every entry name in the file, with its kind (``module``, ``optimizer``,
            ``generator``, ``stateful``, ``data``, ``pickle``).
    """

    data: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------- entries
def _entry(name: str, x: Any, allow_pickle: bool) -> dict[str, Any]:
    kind = kind_of(x)
    if kind == "optimizer":
        return {"kind": kind, "state": x.state_dict(), "type": type(x).__name__}
    if kind == "module":
        return {"kind": kind, "state": x.state_dict()}
    if kind == "generator":
        return {"kind": kind, "state": x.get_state()}
    if kind == "stateful":
        return {"kind": kind, "state": to_safe(x.state_dict(), f"{name}.state_dict()")}
    try:
        return {"kind": "data", "state": to_safe(x, name)}
    except TypeError:
        if not allow_pickle:
            raise
    return {"kind": "pickle", "state": cloudpickle.dumps(x)}


def rng_states() -> dict[str, Any]:
    """The global RNG states: torch (CPU, and CUDA if available), NumPy's global generator, ``random``."""
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": to_safe(np.random.get_state(), "numpy rng"),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(states: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    torch.set_rng_state(states["torch"])
    np.random.set_state(from_safe(states["numpy"]))
    random.setstate(_to_tuple(states["python"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _to_tuple(x: Any) -> Any:
    return tuple(_to_tuple(v) for v in x) if isinstance(x, list | tuple) else x


# ---------------------------------------------------------------------------- save
def save_checkpoint(
    path: PathLike,
    state: Mapping[str, Any],
    *,
    rng: bool = False,
    allow_pickle: bool = False,
) -> None:
    """Write ``state`` (name -> module, optimizer, generator, stateful object or plain data) to ``path``.

    Args:
        path: the checkpoint file; replaced atomically (a crash mid-write leaves the old one).
        state: what to save, by name (see the module docstring for how each kind is stored).
        rng: also store the process-global torch/NumPy/Python RNG states (off by
            default: a library call leaves global state alone; pass the
            ``torch.Generator`` objects you sample with as entries instead).
        allow_pickle: store objects that have no ``state_dict`` and are not plain data
            with cloudpickle (loading them then needs ``allow_pickle=True`` too).

    Raises:
        TypeError: an entry cannot be stored without pickle and ``allow_pickle`` is False.
    """
    from trajkit import __version__

    content = {
        "meta": {
            "trajkit_version": __version__,
            "torch_version": str(torch.__version__),
            "time": time.time(),
        },
        "entries": {name: _entry(name, x, allow_pickle) for name, x in state.items()},
        "rng": rng_states() if rng else None,
    }
    buf = io.BytesIO()
    torch.save(content, buf)
    payload = buf.getvalue()
    outer = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "payload": payload,
    }
    with atomic_open(path) as f:
        torch.save(outer, f)


# ---------------------------------------------------------------------------- read + validate
def _read(path: PathLike) -> dict[str, Any]:
    """The content dict of a checkpoint file, after checking format, version and digest."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        outer = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: unreadable or truncated checkpoint ({_short(e)})") from e
    if not isinstance(outer, dict) or outer.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a trajkit checkpoint")
    if outer.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {outer.get('version')!r}; "
            f"this trajkit reads version {FORMAT_VERSION}"
        )
    payload = outer.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != outer.get("sha256"):
        raise CheckpointError(f"{path}: checkpoint is corrupted (SHA-256 digest mismatch)")
    try:
        content = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: checkpoint content unreadable ({_short(e)})") from e
    if not isinstance(content, dict) or not isinstance(content.get("entries"), dict):
        raise CheckpointError(f"{path}: malformed checkpoint content")
    return content


def _short(e: BaseException) -> str:
    s = f"{type(e).__name__}: {e}"
    return s if len(s) < 300 else s[:300] + "..."


def _validate(
    path: PathLike, content: dict[str, Any], targets: Mapping[str, Any], strict: bool
) -> dict[str, Any]:
    """Check every target against its entry (loading nothing); return the states to load by name."""
    entries: dict[str, Any] = content["entries"]
    states: dict[str, Any] = {}
    for name, obj in targets.items():
        if name not in entries:
            raise CheckpointError(f"{path}: no entry {name!r}; the checkpoint has {sorted(entries)}")
        try:
            states[name] = check_entry(name, entries[name], obj)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from e
    if strict:
        left = sorted(
            n for n, e in entries.items() if _entry_kind(e) not in ("data", "pickle") and n not in targets
        )
        if left:
            raise CheckpointError(
                f"{path}: entries {left} have no object to load into (pass strict=False to skip)"
            )
    return states


def _entry_kind(entry: Any) -> Any:
    return entry.get("kind") if isinstance(entry, Mapping) else None


# ---------------------------------------------------------------------------- load
#: the order targets are loaded in: the kinds whose load can still fail go first
_LOAD_ORDER = ("stateful", "generator", "module", "optimizer")


def _snapshot(obj: Any) -> Any:
    """What restores ``obj`` should a later load fail: deep copies of module/optimizer/generator
    state; a stateful object's own ``state_dict()`` (not copied: it may be a large buffer)."""
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    state = obj.state_dict()
    return state if kind_of(obj) == "stateful" else copy.deepcopy(state)


def _restore(obj: Any, state: Any) -> None:
    if isinstance(obj, torch.Generator):
        obj.set_state(state)
    else:
        obj.load_state_dict(state)


def _apply(path: PathLike, states: Mapping[str, Any], targets: Mapping[str, Any]) -> None:
    """Load every checked state; if one load fails, restore the targets loaded before it."""
    order = sorted(targets, key=lambda n: _LOAD_ORDER.index(kind_of(targets[n])))
    done: list[tuple[str, Any]] = []
    for name in order:
        obj = targets[name]
        try:
            before = _snapshot(obj)
            _restore(obj, states[name])
        except Exception as e:
            for n, st in reversed(done):
                _restore(targets[n], st)
            raise CheckpointError(
                f"{path}: loading {name!r} failed after the checks passed; "
                f"{[n for n, _ in done] or 'nothing'} loaded before it restored ({_short(e)})"
            ) from e
        done.append((name, before))


def load_checkpoint(
    path: PathLike,
    targets: Mapping[str, Any] | None = None,
    *,
    strict: bool = True,
    restore_rng: bool = False,
    allow_pickle: bool = False,
) -> Checkpoint:
    """Validate the checkpoint at ``path`` against ``targets``, then restore them in place.

    Args:
        targets: name -> module, optimizer, generator or stateful object to load into
            (the names used at save time). Plain-data entries need no target: they are
            returned in :attr:`Checkpoint.data`.
        strict: every module/optimizer/generator/stateful entry in the file must have a
            target (False: load only the given ones, e.g. just ``"pol"`` for evaluation).
        restore_rng: also restore the process-global RNG states, if the file has them
            (saved with ``save_checkpoint(..., rng=True)``); off by default.
        allow_pickle: unpickle entries that were saved with ``allow_pickle=True``; only
            for files you trust.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: unreadable, truncated or corrupted file, another format
            version, a missing entry, or an entry that does not fit its target (keys,
            shapes, dtypes, optimizer class, parameter groups, a stateful object's
            ``check_state_dict``). Nothing has been loaded when it is raised.
    """
    targets = dict(targets or {})
    content = _read(path)
    states = _validate(path, content, targets, strict)
    entries = content["entries"]
    pickled = [n for n, e in entries.items() if _entry_kind(e) == "pickle"]
    if pickled and not allow_pickle:
        raise CheckpointError(
            f"{path}: entries {pickled} are pickled objects; "
            "pass allow_pickle=True only if you trust this file"
        )
    data = {n: from_safe(e["state"]) for n, e in entries.items() if _entry_kind(e) == "data"}
    data.update({n: cloudpickle.loads(entries[n]["state"]) for n in pickled})
    rng = content.get("rng") if restore_rng else None
    _apply(path, states, targets)
    if rng is not None:
        set_rng_states(rng)
    names = {n: _entry_kind(e) for n, e in entries.items()}
    return Checkpoint(data=data, meta=dict(content.get("meta", {})), names=names)


def read_checkpoint_data(path: PathLike) -> dict[str, Any]:
    """Only the plain-data entries (counters, config) of a checkpoint, validated; loads nothing."""
    content = _read(path)
    return {n: from_safe(e["state"]) for n, e in content["entries"].items() if _entry_kind(e) == "data"}
