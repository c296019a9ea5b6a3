"""Traj and episode files: an open ``.npz`` format that round-trips exactly.

A file written by :func:`save_traj` or :func:`save_epis` is a plain NumPy ``.npz``
archive (readable with ``numpy.load(path, allow_pickle=False)`` from any language with
an npz reader) holding

* ``__meta__``: a JSON string with ``format`` (``"trajkit.traj"``), ``version``
  (:data:`FORMAT_VERSION`), ``kind`` (``"traj"`` or ``"epis"``), and for every column
  its name, dtype (``"float32"``, ``"int64"``, ``"bool"``, ``"bfloat16"``, ...) and
  shape;
* ``step/NAME``: each step column, shape ``(N, ...)``, all episodes concatenated;
* ``epi/NAME``: each episode column (``terminated``, ``truncated``, ``final_obs``, ...),
  shape ``(E, ...)``;
* ``bounds``: ``(E + 1,)`` int64 offsets; episode ``e`` owns steps ``bounds[e]:bounds[e+1]``.

Loading never unpickles (``allow_pickle=False``), checks the format name and version,
and checks every array against the metadata, so a truncated, corrupted (the zip CRC
is verified) or foreign file raises :class:`TrajFileError` with the reason. ``bfloat16``,
which NumPy lacks, is stored as its ``uint16`` bit pattern. Files are written
atomically.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from trajkit._atomic import atomic_open
from trajkit.traj import EPI_KEYS, Traj

FORMAT_NAME = "trajkit.traj"
FORMAT_VERSION = 1

PathLike = str | os.PathLike[str]


class TrajFileError(ValueError):
    """A Traj/episode file is unreadable, truncated, corrupted or of an unknown format."""


# ---------------------------------------------------------------------------- dtypes
def _torch_to_numpy(t: torch.Tensor) -> tuple[np.ndarray, str]:
    """A NumPy array holding ``t`` exactly, and the dtype name to restore."""
    t = t.detach().cpu().contiguous()
    name = str(t.dtype).removeprefix("torch.")
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16), name
    return t.numpy(), name


def _numpy_to_torch(a: np.ndarray, name: str) -> torch.Tensor:
    if name == "bfloat16":
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a).copy())


def _as_numpy(x: Any, where: str) -> tuple[np.ndarray, str]:
    if isinstance(x, torch.Tensor):
        return _torch_to_numpy(x)
    a = np.asarray(x)
    if a.dtype.kind not in "biufc":
        raise TypeError(f"{where} has dtype {a.dtype}; only numeric and bool columns can be saved")
    return a, a.dtype.name


# ---------------------------------------------------------------------------- writing
def _write(path: PathLike, kind: str, step: Mapping[str, Any], epi: Mapping[str, Any], bounds: Any) -> None:
    arrays: dict[str, np.ndarray] = {}
    columns: dict[str, dict[str, Any]] = {}
    for prefix, cols in (("step", step), ("epi", epi)):
        for name, value in cols.items():
            key = f"{prefix}/{name}"
            arr, dtype = _as_numpy(value, f"column {name!r}")
            arrays[key] = arr
            columns[key] = {"dtype": dtype, "shape": list(arr.shape)}
    arrays["bounds"] = np.asarray(bounds, dtype=np.int64)
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "kind": kind, "columns": columns}
    arrays["__meta__"] = np.array(json.dumps(meta))
    with atomic_open(path) as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def save_traj(traj: Traj, path: PathLike) -> None:
    """Write ``traj`` (step columns, episode columns, bounds) to ``path`` (``.npz``), atomically."""
    _write(path, "traj", traj.data, traj.epi, traj.bounds.numpy())


def save_epis(epis: Sequence[Mapping[str, Any]], path: PathLike) -> None:
    """Write a list of episode dicts (as samplers return them) to ``path``, keeping every dtype.

    Keys in :data:`trajkit.traj.EPI_KEYS` are episode-level (one value per episode);
    every other key must be an array of the episode's length ``T``. All episodes need
    the same keys.
    """
    if len(epis) == 0:
        raise ValueError("save_epis needs at least one episode")
    keys = list(epis[0])
    for i, e in enumerate(epis):
        if set(e) != set(keys):
            raise ValueError(f"episode {i} has keys {sorted(e)}, episode 0 has {sorted(keys)}")
    step_keys = [k for k in keys if k not in EPI_KEYS]
    lens = [_epi_len(e, step_keys, i) for i, e in enumerate(epis)]
    step = {k: np.concatenate([np.asarray(e[k]) for e in epis]) for k in step_keys}
    epi = {k: np.stack([np.asarray(e[k]) for e in epis]) for k in keys if k in EPI_KEYS}
    bounds = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    _write(path, "epis", step, epi, bounds)


def _epi_len(epi: Mapping[str, Any], step_keys: Sequence[str], i: int) -> int:
    lens = {k: len(np.asarray(epi[k])) for k in step_keys}
    if len(set(lens.values())) > 1:
        raise ValueError(f"episode {i}: step columns have different lengths {lens}")
    return next(iter(lens.values()), 0)


# ---------------------------------------------------------------------------- reading
def _read(path: PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray]:
    """Meta, validated arrays by key, bounds; any problem raises :class:`TrajFileError`."""
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if "__meta__" not in files:
                raise TrajFileError(f"{path}: not a trajkit Traj file (no __meta__ entry)")
            meta = _parse_meta(path, z["__meta__"])
            arrays = {key: z[key] for key in meta["columns"] if key in files}
            bounds = z["bounds"] if "bounds" in files else None
    except TrajFileError:
        raise
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        reason = str(e) if len(str(e)) < 200 else str(e)[:200] + "..."
        raise TrajFileError(f"{path}: unreadable, truncated or corrupted Traj file ({reason})") from e
    if bounds is None:
        raise TrajFileError(f"{path}: no 'bounds' entry")
    _check_arrays(path, meta, arrays, bounds)
    return meta, arrays, bounds


def _parse_meta(path: PathLike, raw: np.ndarray) -> dict[str, Any]:
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as e:
        raise TrajFileError(f"{path}: metadata is not valid JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise TrajFileError(f"{path}: not a trajkit Traj file (format {meta.get('format')!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise TrajFileError(
            f"{path}: format version {meta.get('version')!r}; this trajkit reads version {FORMAT_VERSION}"
        )
    if meta.get("kind") not in ("traj", "epis") or not isinstance(meta.get("columns"), dict):
        raise TrajFileError(f"{path}: malformed metadata (kind {meta.get('kind')!r})")
    return meta


def _check_arrays(
    path: PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray], bounds: np.ndarray
) -> None:
    if bounds.dtype != np.int64 or bounds.ndim != 1 or len(bounds) < 1 or bounds[0] != 0:
        raise TrajFileError(f"{path}: 'bounds' must be 1-D int64 offsets starting at 0")
    if (np.diff(bounds) < 0).any():
        raise TrajFileError(f"{path}: 'bounds' is not non-decreasing")
    rows = {"step": int(bounds[-1]), "epi": len(bounds) - 1}
    for key, spec in meta["columns"].items():
        if key not in arrays:
            raise TrajFileError(f"{path}: column {key!r} is listed in the metadata but missing")
        arr = arrays[key]
        stored = "uint16" if spec["dtype"] == "bfloat16" else spec["dtype"]
        if arr.dtype.name != stored or list(arr.shape) != spec["shape"]:
            raise TrajFileError(
                f"{path}: column {key!r} is {arr.dtype.name}{list(arr.shape)}, "
                f"metadata says {spec['dtype']}{spec['shape']}"
            )
        prefix = key.split("/", 1)[0]
        if prefix not in rows or arr.shape[0:1] != (rows[prefix],):
            raise TrajFileError(
                f"{path}: column {key!r} has {arr.shape[:1]} rows, expected {rows.get(prefix)}"
            )


def _split(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(prefix + "/")}


def load_traj(path: PathLike, device: torch.device | str = "cpu") -> Traj:
    """Read a file written by :func:`save_traj` (or :func:`save_epis`) as a :class:`Traj`.

    Tensors come back with the dtypes and shapes they were saved with. A file written
    by :func:`save_epis` is converted with :meth:`Traj.from_epis` (float64 becomes
    float32, as for freshly sampled episodes).

    Raises:
        TrajFileError: the file is truncated, corrupted, not a Traj file, or from an
            unknown format version.
    """
    meta, arrays, bounds = _read(path)
    if meta["kind"] == "epis":
        return Traj.from_epis(_to_epis(meta, arrays, bounds), device=device)
    dtypes = {k: v["dtype"] for k, v in meta["columns"].items()}
    step = {k: _numpy_to_torch(v, dtypes["step/" + k]) for k, v in _split(arrays, "step").items()}
    epi = {k: _numpy_to_torch(v, dtypes["epi/" + k]) for k, v in _split(arrays, "epi").items()}
    return Traj(step, epi, torch.from_numpy(bounds.copy())).to(device)


def load_epis(path: PathLike) -> list[dict[str, Any]]:
    """Read a file written by :func:`save_epis` (or :func:`save_traj`) as a list of episode dicts.

    Step columns are NumPy arrays ``(T, ...)`` with their saved dtypes; ``terminated`` and
    ``truncated`` are Python bools; ``final_obs`` is an array. (``bfloat16`` columns of a
    Traj file come back as torch tensors, since NumPy has no such dtype.)
    """
    meta, arrays, bounds = _read(path)
    return _to_epis(meta, arrays, bounds)


def _to_epis(meta: dict[str, Any], arrays: dict[str, np.ndarray], bounds: np.ndarray) -> list[dict[str, Any]]:
    dtypes = {k: v["dtype"] for k, v in meta["columns"].items()}

    def restore(key: str, a: np.ndarray) -> Any:
        return _numpy_to_torch(a, "bfloat16") if dtypes[key] == "bfloat16" else a

    step, epi = _split(arrays, "step"), _split(arrays, "epi")
    out: list[dict[str, Any]] = []
    for e in range(len(bounds) - 1):
        s, t = int(bounds[e]), int(bounds[e + 1])
        d: dict[str, Any] = {k: restore("step/" + k, v[s:t].copy()) for k, v in step.items()}
        for k, v in epi.items():
            d[k] = bool(v[e]) if k in ("terminated", "truncated") else restore("epi/" + k, v[e].copy())
        out.append(d)
    return out
