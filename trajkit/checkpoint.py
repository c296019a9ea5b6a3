"""Checkpoints: everything a run needs to continue exactly, in one atomically written file.

:func:`save_checkpoint` takes a mapping of names to things and stores each by kind:

* a ``torch.nn.Module``: its ``state_dict()`` (parameters and buffers, so observation
  normalizers' running statistics are included);
* a ``torch.optim.Optimizer``: its ``state_dict()``;
* a ``torch.Generator``: its ``get_state()``;
* anything with ``state_dict()`` and ``load_state_dict()`` (an
  :class:`~trajkit.EpiSampler`'s env and action RNG states, a replay buffer, ...): its
  ``state_dict()``;
* plain data (numbers, strings, bools, None, tensors, NumPy arrays and scalars, and
  dicts/lists/tuples of them: counters, configs): as is;
* any other object: pickled with cloudpickle, only with ``allow_pickle=True``;

plus the global RNG states (torch, NumPy's legacy global generator, Python's
``random``, CUDA when present).

:func:`load_checkpoint` restores into the objects you pass under the same names. It
first reads and validates everything (format and version, a SHA-256 digest of the
content, each module's keys, shapes and dtypes, each optimizer's parameter groups and
state shapes, each stateful object's keys) and only then loads anything, so an
incompatible or corrupted checkpoint raises :class:`CheckpointError` and leaves your
objects untouched.

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
crash or ``SIGKILL`` during a save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import random
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
import numpy as np
import torch

from trajkit._atomic import atomic_open

FORMAT_NAME = "trajkit.checkpoint"
FORMAT_VERSION = 1

PathLike = str | os.PathLike[str]

#: optimizer state entries that have the shape of their parameter
_PARAM_SHAPED = (
    "exp_avg",
    "exp_avg_sq",
    "max_exp_avg_sq",
    "momentum_buffer",
    "square_avg",
    "acc_delta",
    "sum",
)

_NDARRAY_TAG = "__trajkit_ndarray__"
_NPSCALAR_TAG = "__trajkit_npscalar__"


class CheckpointError(ValueError):
    """A checkpoint is unreadable, corrupted, of another format version, or does not fit the objects."""


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


# ---------------------------------------------------------------------------- plain data
def _to_safe(x: Any, where: str) -> Any:
    """``x`` with NumPy arrays/scalars replaced by tagged dicts that ``weights_only`` loading accepts."""
    if x is None or isinstance(x, bool | int | float | str | bytes | torch.Tensor | torch.dtype | torch.Size):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biufc":
            raise TypeError(f"{where}: NumPy array of dtype {x.dtype} cannot be saved without pickle")
        return {_NDARRAY_TAG: np.ascontiguousarray(x).tobytes(), "dtype": x.dtype.str, "shape": list(x.shape)}
    if isinstance(x, np.generic):
        return {_NPSCALAR_TAG: _to_safe(np.asarray(x), where)}
    if isinstance(x, Mapping):
        out = {k: _to_safe(v, f"{where}[{k!r}]") for k, v in x.items()}
        return OrderedDict(out) if isinstance(x, OrderedDict) else out
    if isinstance(x, list | tuple):
        items = [_to_safe(v, f"{where}[{i}]") for i, v in enumerate(x)]
        return items if isinstance(x, list) else tuple(items)
    raise TypeError(
        f"{where}: cannot store a {type(x).__name__} as plain data; give it state_dict()/load_state_dict() "
        "or save with allow_pickle=True"
    )


def _from_safe(x: Any) -> Any:
    """Inverse of :func:`_to_safe`."""
    if isinstance(x, dict):
        if _NDARRAY_TAG in x:
            arr = np.frombuffer(x[_NDARRAY_TAG], dtype=np.dtype(x["dtype"]))
            return arr.reshape(x["shape"]).copy()
        if _NPSCALAR_TAG in x:
            return _from_safe(x[_NPSCALAR_TAG])[()]
        out = {k: _from_safe(v) for k, v in x.items()}
        return OrderedDict(out) if isinstance(x, OrderedDict) else out
    if isinstance(x, list):
        return [_from_safe(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_from_safe(v) for v in x)
    return x


# ---------------------------------------------------------------------------- kinds
def _is_stateful(x: Any) -> bool:
    return callable(getattr(x, "state_dict", None)) and callable(getattr(x, "load_state_dict", None))


def _kind(x: Any) -> str:
    if isinstance(x, torch.nn.Module):
        return "module"
    if isinstance(x, torch.optim.Optimizer):
        return "optimizer"
    if isinstance(x, torch.Generator):
        return "generator"
    if _is_stateful(x):
        return "stateful"
    return "data"


def _entry(name: str, x: Any, allow_pickle: bool) -> dict[str, Any]:
    kind = _kind(x)
    if kind in ("module", "optimizer"):
        return {"kind": kind, "state": x.state_dict()}
    if kind == "generator":
        return {"kind": kind, "state": x.get_state()}
    if kind == "stateful":
        return {"kind": kind, "state": _to_safe(x.state_dict(), f"{name}.state_dict()")}
    try:
        return {"kind": "data", "state": _to_safe(x, name)}
    except TypeError:
        if not allow_pickle:
            raise
    return {"kind": "pickle", "state": cloudpickle.dumps(x)}


def rng_states() -> dict[str, Any]:
    """The global RNG states: torch (CPU, and CUDA if available), NumPy's global generator, ``random``."""
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _to_safe(np.random.get_state(), "numpy rng"),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(states: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    torch.set_rng_state(states["torch"])
    np.random.set_state(_from_safe(states["numpy"]))
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
    rng: bool = True,
    allow_pickle: bool = False,
) -> None:
    """Write ``state`` (name -> module, optimizer, generator, stateful object or plain data) to ``path``.

    Args:
        path: the checkpoint file; replaced atomically (a crash mid-write leaves the old one).
        state: what to save, by name (see the module docstring for how each kind is stored).
        rng: also store the global torch/NumPy/Python RNG states.
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


def _check_module(name: str, saved: Mapping[str, Any], module: torch.nn.Module) -> None:
    current = module.state_dict()
    missing, unexpected = sorted(set(current) - set(saved)), sorted(set(saved) - set(current))
    if missing or unexpected:
        raise CheckpointError(f"{name!r}: state_dict keys differ; missing {missing}, unexpected {unexpected}")
    for k, v in current.items():
        s = saved[k]
        if not isinstance(s, torch.Tensor) or s.shape != v.shape or s.dtype != v.dtype:
            got = f"{s.dtype}{list(s.shape)}" if isinstance(s, torch.Tensor) else type(s).__name__
            raise CheckpointError(
                f"{name!r}: {k} is {got} in the checkpoint, {v.dtype}{list(v.shape)} in the model"
            )


def _check_optimizer(name: str, saved: Mapping[str, Any], optim: torch.optim.Optimizer) -> None:
    groups = saved.get("param_groups")
    if not isinstance(groups, list) or len(groups) != len(optim.param_groups):
        n = len(groups) if isinstance(groups, list) else None
        raise CheckpointError(
            f"{name!r}: {n} parameter groups in the checkpoint, {len(optim.param_groups)} here"
        )
    params: dict[int, torch.Tensor] = {}
    for i, (sg, g) in enumerate(zip(groups, optim.param_groups, strict=True)):
        if len(sg["params"]) != len(g["params"]):
            raise CheckpointError(
                f"{name!r}: group {i} has {len(sg['params'])} parameters in the checkpoint, "
                f"{len(g['params'])} here"
            )
        params.update(zip(sg["params"], g["params"], strict=True))
    for pid, st in saved.get("state", {}).items():
        if pid not in params:
            raise CheckpointError(f"{name!r}: state for unknown parameter id {pid}")
        for k in _PARAM_SHAPED:
            if k in st and isinstance(st[k], torch.Tensor) and st[k].shape != params[pid].shape:
                raise CheckpointError(
                    f"{name!r}: {k} of parameter {pid} has shape {list(st[k].shape)}, "
                    f"the parameter has {list(params[pid].shape)}"
                )


def _check_stateful(name: str, saved: Any, obj: Any) -> None:
    check = getattr(obj, "check_state_dict", None)
    if callable(check):
        try:
            check(saved)
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{name!r}: {e}") from e
        return
    from trajkit.samplers import EpiSampler

    if isinstance(obj, EpiSampler):
        n = saved.get("num_parallel") if isinstance(saved, dict) else None
        if n != obj.num_parallel:
            raise CheckpointError(
                f"{name!r}: sampler state is for num_parallel={n}, this sampler has {obj.num_parallel}"
            )
        return
    current = obj.state_dict()
    if isinstance(current, Mapping) and isinstance(saved, Mapping) and set(current) != set(saved):
        raise CheckpointError(
            f"{name!r}: state keys {sorted(saved)} in the checkpoint, {sorted(current)} here"
        )


def _validate(path: PathLike, content: dict[str, Any], targets: Mapping[str, Any], strict: bool) -> None:
    entries: dict[str, Any] = content["entries"]
    for name, obj in targets.items():
        if name not in entries:
            raise CheckpointError(f"{path}: no entry {name!r}; the checkpoint has {sorted(entries)}")
        kind, saved = entries[name]["kind"], entries[name]["state"]
        want = _kind(obj)
        if kind != want:
            raise CheckpointError(f"{path}: entry {name!r} is a {kind} in the checkpoint, a {want} was given")
        if kind == "module":
            _check_module(name, saved, obj)
        elif kind == "optimizer":
            _check_optimizer(name, saved, obj)
        elif kind == "generator":
            if not isinstance(saved, torch.Tensor) or saved.shape != obj.get_state().shape:
                raise CheckpointError(
                    f"{path}: generator state {name!r} does not fit a {obj.device} generator"
                )
        elif kind == "stateful":
            _check_stateful(name, saved, obj)
    if strict:
        left = sorted(
            n for n, e in entries.items() if e["kind"] not in ("data", "pickle") and n not in targets
        )
        if left:
            raise CheckpointError(
                f"{path}: entries {left} have no object to load into (pass strict=False to skip)"
            )


# ---------------------------------------------------------------------------- load
def _snapshot(targets: Mapping[str, Any]) -> dict[str, Any]:
    return {
        n: copy.deepcopy(o.state_dict())
        for n, o in targets.items()
        if isinstance(o, torch.nn.Module | torch.optim.Optimizer)
    }


def _apply(entries: Mapping[str, Any], targets: Mapping[str, Any]) -> None:
    for name, obj in targets.items():
        kind, saved = entries[name]["kind"], entries[name]["state"]
        if kind in ("module", "optimizer"):
            obj.load_state_dict(saved)
        elif kind == "generator":
            obj.set_state(saved)
        elif kind == "stateful":
            obj.load_state_dict(_from_safe(saved))


def load_checkpoint(
    path: PathLike,
    targets: Mapping[str, Any] | None = None,
    *,
    strict: bool = True,
    restore_rng: bool = True,
    allow_pickle: bool = False,
) -> Checkpoint:
    """Validate the checkpoint at ``path`` against ``targets``, then restore them in place.

    Args:
        targets: name -> module, optimizer, generator or stateful object to load into
            (the names used at save time). Plain-data entries need no target: they are
            returned in :attr:`Checkpoint.data`.
        strict: every module/optimizer/generator/stateful entry in the file must have a
            target (False: load only the given ones, e.g. just ``"pol"`` for evaluation).
        restore_rng: also restore the global RNG states, if the file has them.
        allow_pickle: unpickle entries that were saved with ``allow_pickle=True``; only
            for files you trust.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: unreadable, truncated or corrupted file, another format
            version, a missing entry, or an entry that does not fit its target (keys,
            shapes, dtypes, parameter groups). Nothing has been loaded when it is raised.
    """
    targets = dict(targets or {})
    content = _read(path)
    _validate(path, content, targets, strict)
    entries = content["entries"]
    pickled = [n for n, e in entries.items() if e["kind"] == "pickle"]
    if pickled and not allow_pickle:
        raise CheckpointError(
            f"{path}: entries {pickled} are pickled objects; "
            "pass allow_pickle=True only if you trust this file"
        )
    data = {n: _from_safe(e["state"]) for n, e in entries.items() if e["kind"] == "data"}
    data.update({n: cloudpickle.loads(entries[n]["state"]) for n in pickled})
    snapshot = _snapshot(targets)
    try:
        _apply(entries, targets)
    except Exception as e:
        for n, st in snapshot.items():
            targets[n].load_state_dict(st)
        raise CheckpointError(
            f"{path}: loading failed, models and optimizers were restored ({_short(e)})"
        ) from e
    if restore_rng and content.get("rng") is not None:
        set_rng_states(content["rng"])
    names = {n: e["kind"] for n, e in entries.items()}
    return Checkpoint(data=data, meta=dict(content.get("meta", {})), names=names)


def read_checkpoint_data(path: PathLike) -> dict[str, Any]:
    """Only the plain-data entries (counters, config) of a checkpoint, validated; loads nothing."""
    content = _read(path)
    return {n: _from_safe(e["state"]) for n, e in content["entries"].items() if e["kind"] == "data"}
