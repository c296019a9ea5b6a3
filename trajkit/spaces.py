"""Spaces: sizes of gymnasium spaces, an env's spaces, and mapping policy actions onto a Box.

Shared by policies, value functions and their ``for_env`` constructors.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


@runtime_checkable
class HasSpaces(Protocol):
    """Anything with an observation and an action space: a trajkit ``GymEnv``, a gymnasium env."""

    observation_space: Any
    action_space: Any


EnvOrSpaces = HasSpaces | tuple[gym.Space, gym.Space]


def env_spaces(env: EnvOrSpaces) -> tuple[gym.Space, gym.Space]:
    """``(observation_space, action_space)`` of an env, or of an ``(ob_space, ac_space)`` pair."""
    if isinstance(env, tuple):
        if len(env) != 2 or not all(isinstance(s, gym.Space) for s in env):
            raise TypeError(f"expected an env or an (ob_space, ac_space) pair, got a tuple {env!r}")
        return env[0], env[1]
    if not isinstance(env, HasSpaces):
        raise TypeError(f"expected an env with observation_space and action_space, got {type(env).__name__}")
    return env.observation_space, env.action_space


def flat_dim(space: gym.Space) -> int:
    """Number of scalars in one element of a Box/Discrete/MultiDiscrete space."""
    return int(gym.spaces.flatdim(space))


class BoxBounds:
    """A Box's bounds prepared once for :func:`box_to_env` (it runs at every env step)."""

    def __init__(self, space: gym.spaces.Box) -> None:
        self.space = space
        low = space.low.astype(np.float64).reshape(-1)
        high = space.high.astype(np.float64).reshape(-1)
        self.finite = np.isfinite(low) & np.isfinite(high)
        self.all_finite = bool(self.finite.all())
        self.low, self.high = low[self.finite], high[self.finite]
        self.half_range = 0.5 * (self.high - self.low)


def box_to_env(
    ac: np.ndarray, space: gym.spaces.Box, rescale: bool, bounds: BoxBounds | None = None
) -> np.ndarray:
    """Map one policy action to a Box: affinely from ``[-1, 1]`` (``rescale``) or by clipping.

    Dimensions with an infinite bound pass through unchanged. ``bounds`` (for ``space``)
    saves recomputing them.
    """
    bb = bounds if bounds is not None else BoxBounds(space)
    ac = np.asarray(ac, dtype=np.float64).reshape(-1)
    part = ac if bb.all_finite else ac[bb.finite]
    if rescale:
        mapped = bb.low + (np.clip(part, -1.0, 1.0) + 1.0) * bb.half_range
    else:
        mapped = np.clip(part, bb.low, bb.high)
    if bb.all_finite:
        out = mapped
    else:
        out = ac.copy()
        out[bb.finite] = mapped
    return out.reshape(space.shape).astype(space.dtype)


def require_box(space: gym.Space, owner: str) -> gym.spaces.Box:
    """``space`` if it is a Box, else a TypeError saying that ``owner`` needs one."""
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(f"{owner} needs a Box action space, got {space}")
    return space
