"""``GymEnv``: one adapter for gymnasium ids, gymnasium envs and legacy gym-API objects."""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np

#: modules that register env ids when imported, by a substring of the id, and the extra that installs them
_REGISTERING_MODULES = {"Bullet": ("pybullet_envs_gymnasium", "bullet")}


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)``, importing the package that registers the id first.

    Bullet ids (``HalfCheetahBulletEnv-v0``, ...) need the ``bullet`` extra; without it the
    error says how to install it.
    """
    import_registering_module(env_id)
    return gym.make(env_id, **kwargs)


def import_registering_module(env_id: str) -> None:
    """Import the package that registers ``env_id`` (Bullet ids: ``pybullet_envs_gymnasium``), if any.

    Raises an ImportError naming the extra to install when it is missing.
    """
    for marker, (module, extra) in _REGISTERING_MODULES.items():
        if marker in env_id:
            try:
                importlib.import_module(module)
            except ImportError as e:
                raise ImportError(
                    f"{env_id} needs the {module} package: pip install 'trajkit[{extra}]'"
                ) from e


def to_gymnasium_space(space: Any) -> gym.Space:
    """Convert a legacy ``gym.spaces`` object (or any look-alike) to the gymnasium space, without importing gym."""
    if isinstance(space, gym.Space):
        return space
    kind = type(space).__name__
    if kind == "Box":
        return gym.spaces.Box(np.asarray(space.low), np.asarray(space.high), dtype=space.dtype)
    if kind == "Discrete":
        return gym.spaces.Discrete(int(space.n), start=int(getattr(space, "start", 0)))
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(np.asarray(space.nvec))
    if kind == "MultiBinary":
        return gym.spaces.MultiBinary(space.n)
    if kind == "Dict":
        return gym.spaces.Dict({k: to_gymnasium_space(v) for k, v in space.spaces.items()})
    if kind == "Tuple":
        return gym.spaces.Tuple([to_gymnasium_space(s) for s in space.spaces])
    raise TypeError(f"cannot convert space {space!r} of type {kind} to a gymnasium space")


class LegacyGymEnv(gym.Env):
    """A gymnasium view of an object with the old gym API.

    The legacy API: ``reset()`` returns only the observation, ``step()`` returns
    ``(obs, rew, done, info)``, and a time-limit cut is flagged by
    ``info["TimeLimit.truncated"]``. Here ``done`` becomes ``terminated`` unless that
    flag is set, in which case it becomes ``truncated``. ``reset(seed=s)`` calls the
    object's ``seed(s)`` when it has one.
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        self.observation_space = to_gymnasium_space(env.observation_space)
        self.action_space = to_gymnasium_space(env.action_space)
        self.metadata = getattr(env, "metadata", {})

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if seed is not None and hasattr(self.env, "seed"):
            self.env.seed(seed)
        out = self.env.reset()
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
            return out
        return out, {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        out = self.env.step(action)
        if len(out) == 5:
            return out
        obs, rew, done, info = out
        info = dict(info or {})
        truncated = bool(info.pop("TimeLimit.truncated", False)) and bool(done)
        return obs, float(rew), bool(done) and not truncated, truncated, info

    def close(self) -> None:
        if hasattr(self.env, "close"):
            self.env.close()


def _is_legacy(env: Any) -> bool:
    return not isinstance(env, gym.Env) and hasattr(env, "step") and hasattr(env, "reset")


class GymEnv(gym.Env):
    """The environment adapter samplers use.

    ``GymEnv("CartPole-v1")`` makes a registered gymnasium env (``**kwargs`` go to
    ``gymnasium.make``); ``GymEnv(env)`` wraps a gymnasium env or a legacy gym-API
    object (see :class:`LegacyGymEnv`).

    Observations: Box observations are passed through. Dict, Tuple, Discrete and
    MultiBinary observation spaces are **flattened** into one float Box with
    ``gymnasium.spaces.flatten`` (Discrete becomes one-hot); ``orig_observation_space``
    keeps the original and :meth:`unflatten_obs` recovers a structured observation.
    Actions are passed to the wrapped env unchanged.

    ``make_args`` is ``(env_id, kwargs)`` when the env was made from an id (samplers
    re-make it from these in their workers) and ``None`` otherwise.
    """

    def __init__(self, id_or_env: str | Any, **kwargs: Any) -> None:
        self.make_args: tuple[str, dict[str, Any]] | None = None
        if isinstance(id_or_env, str):
            env = make_env(id_or_env, **kwargs)
            self.make_args = (id_or_env, dict(kwargs))
        elif kwargs:
            raise TypeError(f"keyword arguments {sorted(kwargs)} only apply when GymEnv is given an env id")
        elif isinstance(id_or_env, gym.Env):
            env = id_or_env
        elif _is_legacy(id_or_env):
            env = LegacyGymEnv(id_or_env)
        else:
            raise TypeError(f"GymEnv needs an env id or an env object, got {type(id_or_env).__name__}")
        self.env = env
        self.orig_observation_space = env.observation_space
        self._flatten = not isinstance(env.observation_space, gym.spaces.Box)
        if self._flatten:
            self.observation_space = gym.spaces.flatten_space(env.observation_space)
        else:
            self.observation_space = env.observation_space
        self.action_space = env.action_space
        self.metadata = getattr(env, "metadata", {})
        self.spec = getattr(env, "spec", None)

    def _obs(self, obs: Any) -> np.ndarray:
        if self._flatten:
            return np.asarray(gym.spaces.flatten(self.orig_observation_space, obs), dtype=np.float32)
        return np.asarray(obs)

    def unflatten_obs(self, obs: np.ndarray) -> Any:
        """The structured observation for a flattened one (identity for Box spaces)."""
        if self._flatten:
            return gym.spaces.unflatten(self.orig_observation_space, obs)
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self.action_space.seed(seed)
        obs, info = self.env.reset(seed=seed, options=options)
        return self._obs(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, rew, terminated, truncated, info = self.env.step(action)
        return self._obs(obs), float(rew), bool(terminated), bool(truncated), info

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    @property
    def unwrapped(self) -> gym.Env:
        return self.env.unwrapped

    def __repr__(self) -> str:
        return f"GymEnv({self.env!r})"
