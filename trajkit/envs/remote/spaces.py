"""Spaces as plain data, so that the client learns the server env's spaces without pickles."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from trajkit.envs.remote.wire import _checked_dtype


def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """A plain-data description of a Box/Discrete/MultiDiscrete/MultiBinary/Dict/Tuple space."""
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "low": space.low, "high": space.high, "dtype": space.dtype.str}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec, "start": space.start}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(s) for k, s in space.spaces.items()}}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_dict(s) for s in space.spaces]}
    raise TypeError(f"cannot describe space {space} for the remote env protocol")


def space_from_dict(d: dict[str, Any]) -> gym.Space:
    """The inverse of :func:`space_to_dict`."""
    kind = d.get("type")
    if kind == "Box":
        return gym.spaces.Box(np.asarray(d["low"]), np.asarray(d["high"]), dtype=np.dtype(_checked_dtype(d["dtype"])))
    if kind == "Discrete":
        return gym.spaces.Discrete(int(d["n"]), start=int(d["start"]))
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(np.asarray(d["nvec"]), start=np.asarray(d["start"]))
    if kind == "MultiBinary":
        return gym.spaces.MultiBinary(d["n"])
    if kind == "Dict":
        return gym.spaces.Dict({k: space_from_dict(v) for k, v in d["spaces"].items()})
    if kind == "Tuple":
        return gym.spaces.Tuple([space_from_dict(v) for v in d["spaces"]])
    raise ValueError(f"unknown space type {kind!r}")
