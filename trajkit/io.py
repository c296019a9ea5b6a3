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

Loading never unpickles, checks the format name, version and the shape of the
metadata, then reads each member's ``.npy`` header and checks its dtype and shape
against the metadata, the row counts against ``bounds``, the zip entry's declared
uncompressed size against the header, and the total against ``max_bytes`` (default
:data:`DEFAULT_MAX_BYTES`, 1 GiB), all before any array data is decompressed. So a
truncated, corrupted (the zip CRC is verified), foreign or malformed file, or a small
file that declares a huge array, raises :class:`TrajFileError` with the reason and
costs no memory. ``bfloat16``, which NumPy lacks, is stored as its ``uint16`` bit
pattern. Files are written atomically.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from trajkit import _npz
from trajkit._atomic import atomic_open
from trajkit.checks import check_int
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
#: column dtypes a file may declare (``bfloat16`` is stored as ``uint16``)
DTYPES = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float16", "bfloat16", "float32", "float64", "complex64", "complex128"}
)

#: default of ``max_bytes``: the most array data (uncompressed) a load reads, 1 GiB
DEFAULT_MAX_BYTES = 1 << 30

_READ_ERRORS = (
    OSError, ValueError, EOFError, KeyError, TypeError, OverflowError, RuntimeError,
    NotImplementedError, zipfile.BadZipFile, zlib.error,
)


def _stored_dtype(name: str) -> np.dtype:
    return np.dtype("uint16" if name == "bfloat16" else name)


def _read(
    path: PathLike, max_bytes: int | None
) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray]:
    """Meta, validated arrays by key, bounds; any problem raises :class:`TrajFileError`.

    Every ``.npy`` header is checked against the metadata, and the declared sizes
    against ``max_bytes``, before any array data is decompressed.
    """
    if max_bytes is not None:
        max_bytes = check_int("max_bytes", max_bytes, min_value=0)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no Traj file at {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            entries = _npz.members(zf)
            meta = _read_meta(path, zf, entries, max_bytes)
            specs = _column_specs(path, meta)
            headers = _headers(path, zf, entries, specs)
            _check_size(path, headers, max_bytes)
            bounds = _npz.read_data(zf, headers["bounds"])
            _check_bounds(path, bounds, specs)
            arrays = {k: _npz.read_data(zf, h) for k, h in headers.items() if k != "bounds"}
    except (TrajFileError, FileNotFoundError):
        raise
    except _READ_ERRORS as e:
        reason = str(e) if len(str(e)) < 200 else str(e)[:200] + "..."
        raise TrajFileError(f"{path}: unreadable, truncated or corrupted Traj file ({reason})") from e
    return meta, arrays, bounds


def _read_meta(
    path: PathLike, zf: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo], max_bytes: int | None
) -> dict[str, Any]:
    if "__meta__" not in entries:
        raise TrajFileError(f"{path}: not a trajkit Traj file (no __meta__ entry)")
    header = _npz.read_header(zf, entries["__meta__"])
    if header.dtype.kind != "U" or header.shape != () or not header.size_matches:
        raise TrajFileError(f"{path}: __meta__ must be a JSON string, got {header.dtype}{list(header.shape)}")
    _check_size(path, {"__meta__": header}, max_bytes)
    raw = str(_npz.read_data(zf, header)[()])
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise TrajFileError(f"{path}: metadata is not valid JSON ({e})") from e
    return _check_meta(path, meta)


def _check_meta(path: PathLike, meta: Any) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise TrajFileError(f"{path}: metadata must be a JSON object, got a {type(meta).__name__}")
    if meta.get("format") != FORMAT_NAME:
        raise TrajFileError(f"{path}: not a trajkit Traj file (format {meta.get('format')!r})")
    version = meta.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise TrajFileError(f"{path}: format version {version!r}; this trajkit reads version {FORMAT_VERSION}")
    kind = meta.get("kind")
    if not isinstance(kind, str) or kind not in ("traj", "epis"):
        raise TrajFileError(f"{path}: malformed metadata: kind {kind!r} is neither 'traj' nor 'epis'")
    if not isinstance(meta.get("columns"), dict):
        raise TrajFileError(f"{path}: malformed metadata: 'columns' must be an object, got {meta.get('columns')!r}")
    return meta


def _column_specs(path: PathLike, meta: dict[str, Any]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``key -> (dtype name, shape)`` of every column in the (checked) metadata."""
    specs: dict[str, tuple[str, tuple[int, ...]]] = {}
    for key, spec in meta["columns"].items():
        prefix, _, name = key.partition("/")
        if prefix not in ("step", "epi") or not name:
            raise TrajFileError(f"{path}: malformed metadata: column key {key!r} is not 'step/NAME' or 'epi/NAME'")
        if not isinstance(spec, dict) or "dtype" not in spec or "shape" not in spec:
            raise TrajFileError(f"{path}: malformed metadata: column {key!r} needs 'dtype' and 'shape', got {spec!r}")
        dtype, shape = spec["dtype"], spec["shape"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise TrajFileError(f"{path}: malformed metadata: column {key!r} has unknown dtype {dtype!r}")
        ok = isinstance(shape, list) and len(shape) >= 1
        if not ok or not all(type(s) is int and s >= 0 for s in shape):
            raise TrajFileError(
                f"{path}: malformed metadata: column {key!r} has shape {shape!r}; "
                "expected a list of non-negative integers, rows first"
            )
        specs[key] = (dtype, tuple(shape))
    return specs


def _headers(
    path: PathLike,
    zf: zipfile.ZipFile,
    entries: dict[str, zipfile.ZipInfo],
    specs: dict[str, tuple[str, tuple[int, ...]]],
) -> dict[str, _npz.NpyHeader]:
    """The checked ``.npy`` headers of ``bounds`` and of every column (no data read yet)."""
    if "bounds" not in entries:
        raise TrajFileError(f"{path}: no 'bounds' entry")
    headers = {"bounds": _npz.read_header(zf, entries["bounds"])}
    b = headers["bounds"]
    if b.dtype != np.dtype(np.int64) or len(b.shape) != 1 or b.shape[0] < 1:
        raise TrajFileError(f"{path}: 'bounds' must be 1-D int64 offsets starting at 0, got {b.dtype}{list(b.shape)}")
    for key, (dtype, shape) in specs.items():
        if key not in entries:
            raise TrajFileError(f"{path}: column {key!r} is listed in the metadata but missing")
        h = _npz.read_header(zf, entries[key])
        if h.dtype != _stored_dtype(dtype) or h.shape != shape:
            raise TrajFileError(
                f"{path}: column {key!r} is {h.dtype}{list(h.shape)}, metadata says {dtype}{list(shape)}"
            )
        headers[key] = h
    for key, h in headers.items():
        if not h.size_matches:
            raise TrajFileError(
                f"{path}: entry {key!r} declares {h.info.file_size} bytes, "
                f"its header needs {h.offset + h.nbytes} ({h.dtype}{list(h.shape)})"
            )
    return headers


def _check_size(path: PathLike, headers: Mapping[str, _npz.NpyHeader], max_bytes: int | None) -> None:
    total = sum(h.info.file_size for h in headers.values())
    if max_bytes is not None and total > max_bytes:
        raise TrajFileError(
            f"{path}: the file declares {total} bytes of array data, more than max_bytes={max_bytes}; "
            "pass a larger max_bytes (or None) to load it if you trust the file"
        )


def _check_bounds(path: PathLike, bounds: np.ndarray, specs: Mapping[str, tuple[str, tuple[int, ...]]]) -> None:
    if bounds[0] != 0:
        raise TrajFileError(f"{path}: 'bounds' must be 1-D int64 offsets starting at 0, got {bounds[0]} first")
    if (np.diff(bounds) < 0).any():
        raise TrajFileError(f"{path}: 'bounds' is not non-decreasing")
    rows = {"step": int(bounds[-1]), "epi": len(bounds) - 1}
    for key, (_, shape) in specs.items():
        prefix = key.split("/", 1)[0]
        if shape[0] != rows[prefix]:
            raise TrajFileError(f"{path}: column {key!r} has {shape[0]} rows, expected {rows[prefix]}")


def _split(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(prefix + "/")}


def load_traj(
    path: PathLike, device: torch.device | str = "cpu", *, max_bytes: int | None = DEFAULT_MAX_BYTES
) -> Traj:
    """Read a file written by :func:`save_traj` (or :func:`save_epis`) as a :class:`Traj`.

    Tensors come back with the dtypes and shapes they were saved with. A file written
    by :func:`save_epis` is converted with :meth:`Traj.from_epis` (float64 becomes
    float32, as for freshly sampled episodes).

    Args:
        path: the ``.npz`` file.
        device: where the Traj's tensors go.
        max_bytes: the most array data (uncompressed, as the archive declares it) to
            read; larger files are refused before anything is decompressed. Default
            :data:`DEFAULT_MAX_BYTES` (1 GiB); ``None`` for no limit.

    Raises:
        FileNotFoundError: no file at ``path``.
        TrajFileError: the file is truncated, corrupted, not a Traj file, from an
            unknown format version, has malformed metadata, arrays that disagree with
            it, more than ``max_bytes`` of data, or columns that do not form a valid
            Traj (e.g. a non-finite observation in an episode file).
    """
    meta, arrays, bounds = _read(path, max_bytes)
    try:
        if meta["kind"] == "epis":
            return Traj.from_epis(_to_epis(meta, arrays, bounds), device=device)
        dtypes = {k: v["dtype"] for k, v in meta["columns"].items()}
        step = {k: _numpy_to_torch(v, dtypes["step/" + k]) for k, v in _split(arrays, "step").items()}
        epi = {k: _numpy_to_torch(v, dtypes["epi/" + k]) for k, v in _split(arrays, "epi").items()}
        traj = Traj(step, epi, torch.from_numpy(bounds.copy()))
    except (ValueError, TypeError) as e:
        raise TrajFileError(f"{path}: the file's columns do not form a valid Traj ({e})") from e
    return traj.to(device)


def load_epis(path: PathLike, *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> list[dict[str, Any]]:
    """Read a file written by :func:`save_epis` (or :func:`save_traj`) as a list of episode dicts.

    Step columns are NumPy arrays ``(T, ...)`` with their saved dtypes; ``terminated`` and
    ``truncated`` are Python bools; ``final_obs`` is an array. (``bfloat16`` columns of a
    Traj file come back as torch tensors, since NumPy has no such dtype.) ``max_bytes``
    and the errors are as for :func:`load_traj`.
    """
    meta, arrays, bounds = _read(path, max_bytes)
    try:
        return _to_epis(meta, arrays, bounds)
    except (ValueError, TypeError) as e:
        raise TrajFileError(f"{path}: the file's columns do not form episodes ({e})") from e


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
