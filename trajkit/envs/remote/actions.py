"""Checking actions from the network before they reach the env (a robot may sit behind it).

:func:`check_action` turns what a client sent into the action the env's space describes,
or raises :class:`RemoteActionError` naming what is wrong and where. Every action is
checked for structure (Dict keys, Tuple length), shape, dtype kind and finiteness. A Box
action outside its bounds is refused (``out_of_bounds="error"``, the default) or clipped
into them (``"clip"``); values beyond the bounds by a few float rounding steps are always
clipped silently. NaN and infinities are refused in both modes. Discrete, MultiDiscrete
and MultiBinary values out of range are always refused: clipping a category changes its
meaning.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from trajkit.envs.remote.errors import RemoteActionError

OUT_OF_BOUNDS_MODES = ("error", "clip")


def check_out_of_bounds(mode: object) -> str:
    """``mode`` if it is one of :data:`OUT_OF_BOUNDS_MODES`, else ValueError."""
    if mode not in OUT_OF_BOUNDS_MODES:
        raise ValueError(f"out_of_bounds must be one of {OUT_OF_BOUNDS_MODES}, got {mode!r}")
    return str(mode)


def check_action(space: gym.Space, action: Any, out_of_bounds: str = "error", where: str = "action") -> Any:
    """``action`` as the env of ``space`` expects it; :class:`RemoteActionError` if it is not valid.

    ``where`` names the action (or the part of it) in error messages.
    """
    if isinstance(space, gym.spaces.Box):
        return _box(space, action, out_of_bounds, where)
    if isinstance(space, gym.spaces.Discrete):
        return _discrete(space, action, where)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return _multi_discrete(space, action, where)
    if isinstance(space, gym.spaces.MultiBinary):
        return _multi_binary(space, action, where)
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(action, dict) or set(action) != set(space.spaces):
            got = sorted(action) if isinstance(action, dict) else type(action).__name__
            raise RemoteActionError(f"{where} must be a dict with keys {sorted(space.spaces)}, got {got}")
        return {k: check_action(s, action[k], out_of_bounds, f"{where}[{k!r}]") for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        if not isinstance(action, list | tuple) or len(action) != len(space.spaces):
            raise RemoteActionError(f"{where} must be a sequence of {len(space.spaces)} actions, got {action!r:.100}")
        parts = zip(space.spaces, action, strict=True)
        return tuple(check_action(s, a, out_of_bounds, f"{where}[{i}]") for i, (s, a) in enumerate(parts))
    if not space.contains(action):
        raise RemoteActionError(f"{where} {action!r:.100} is not in the action space {space}")
    return action


def _array(action: Any, kinds: str, what: str, where: str) -> np.ndarray:
    """``action`` as an array whose dtype kind is in ``kinds`` (numpy's ``b i u f``)."""
    try:
        arr = np.asarray(action)
    except (ValueError, TypeError) as e:
        raise RemoteActionError(f"{where} is not an array of {what}: {e}") from None
    if arr.dtype.kind not in kinds:
        raise RemoteActionError(f"{where} must hold {what}, got dtype {arr.dtype} ({action!r:.100})")
    return arr


def _shaped(arr: np.ndarray, shape: tuple[int, ...], space: gym.Space, where: str) -> np.ndarray:
    if arr.shape != shape:
        raise RemoteActionError(f"{where} has shape {arr.shape}; the action space {space} needs {shape}")
    return arr


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _box(space: gym.spaces.Box, action: Any, out_of_bounds: str, where: str) -> np.ndarray:
    x = _shaped(_array(action, "iuf", "numbers", where), space.shape, space, where).astype(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        i = _first(bad)
        raise RemoteActionError(f"{where} is not finite: {x[i]} at index {i}")
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    slack = _rounding_slack(space.dtype, low, high)
    outside = (x < low - slack) | (x > high + slack)
    if outside.any() and out_of_bounds == "error":
        i = _first(outside)
        raise RemoteActionError(
            f"{where} is out of bounds: {x[i]} at index {i} is outside [{low[i]}, {high[i]}] "
            "(the server refuses such actions; serve with out_of_bounds='clip' to clip them)"
        )
    x = np.clip(x, low, high)
    if space.dtype.kind in "iu":
        if not np.array_equal(x, np.round(x)):
            raise RemoteActionError(f"{where} must be whole numbers for the {space.dtype} action space {space}")
        return x.astype(space.dtype)
    with np.errstate(over="ignore"):
        out = x.astype(space.dtype)
    if not np.isfinite(out).all():
        i = _first(~np.isfinite(out))
        raise RemoteActionError(f"{where} overflows {space.dtype}: {x[i]} at index {i}")
    return out


def _rounding_slack(dtype: np.dtype, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """How far past a bound rounding may carry a float action mapped onto it (0 for integer spaces)."""
    if dtype.kind != "f":
        return np.zeros_like(low)
    scale = np.maximum(1.0, np.maximum(np.abs(np.where(np.isfinite(low), low, 0.0)),
                                       np.abs(np.where(np.isfinite(high), high, 0.0))))
    return 4 * float(np.finfo(dtype).eps) * scale


def _discrete(space: gym.spaces.Discrete, action: Any, where: str) -> int:
    arr = _array(action, "iu", "an integer", where)
    if arr.size != 1:
        raise RemoteActionError(f"{where} must be one integer for {space}, got shape {arr.shape}")
    v, start, n = int(arr.reshape(-1)[0]), int(space.start), int(space.n)
    if not start <= v < start + n:
        raise RemoteActionError(f"{where} = {v} is outside {space} (valid: {start} to {start + n - 1})")
    return v


def _multi_discrete(space: gym.spaces.MultiDiscrete, action: Any, where: str) -> np.ndarray:
    arr = _shaped(_array(action, "iu", "integers", where), space.shape, space, where).astype(np.int64)
    rel = arr - space.start
    outside = (rel < 0) | (rel >= space.nvec)
    if outside.any():
        i = _first(outside)
        raise RemoteActionError(f"{where} is out of range: {arr[i]} at index {i} (valid: {space.start[i]} "
                                f"to {space.start[i] + space.nvec[i] - 1})")
    return arr.astype(space.dtype)


def _multi_binary(space: gym.spaces.MultiBinary, action: Any, where: str) -> np.ndarray:
    arr = _shaped(_array(action, "biu", "0/1 values", where), space.shape, space, where)
    outside = (arr != 0) & (arr != 1)
    if outside.any():
        i = _first(outside)
        raise RemoteActionError(f"{where} must hold 0 or 1, got {arr[i]} at index {i}")
    return arr.astype(space.dtype)
