"""Partially observed tasks: a wrapper that masks observation entries, and the ``*NoVel`` ids.

:class:`MaskObsEnv` sets chosen entries of a Box observation to zero (the space is kept,
so a policy sees the same shape). Importing :mod:`trajkit.envs` registers the
partially observed ids of rl-zoo (``rl_zoo3.import_envs`` with sb3-contrib's
``MaskVelocityWrapper``), where every velocity is masked to zero:

========================  ================  ================================
id                        base id           masked entries
========================  ================  ================================
``CartPoleNoVel-v1``      ``CartPole-v1``   1 (cart velocity), 3 (pole angular velocity)
``PendulumNoVel-v1``      ``Pendulum-v1``   2 (angular velocity)
========================  ================  ================================

They keep the base env's time limit and reward threshold. Only a policy with memory
(a recurrent one, or stacked frames) can infer the masked velocities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

__all__ = ["MaskObsEnv", "NO_VEL_IDS", "make_masked", "register_no_vel_envs"]

#: partially observed id -> (base id, masked observation indices), as rl-zoo defines them
NO_VEL_IDS: dict[str, tuple[str, tuple[int, ...]]] = {
    "CartPoleNoVel-v1": ("CartPole-v1", (1, 3)),
    "PendulumNoVel-v1": ("Pendulum-v1", (2,)),
}


class MaskObsEnv(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Sets the observation entries ``indices`` (of the flattened Box observation) to zero.

    The observation space is unchanged. ``indices`` must be distinct and inside the
    observation (ValueError naming the bad one otherwise); a non-Box observation space
    is a TypeError.
    """

    def __init__(self, env: gym.Env, indices: Sequence[int]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, indices=tuple(int(i) for i in indices))
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"MaskObsEnv needs a Box observation space, got {space}")
        n = int(np.prod(space.shape))
        idx = [int(i) for i in indices]
        for i in idx:
            if not 0 <= i < n:
                raise ValueError(f"MaskObsEnv: index {i} is outside the observation's {n} entries")
        if len(set(idx)) != len(idx):
            raise ValueError(f"MaskObsEnv: indices must be distinct, got {idx}")
        keep = np.ones(n, dtype=space.dtype)
        keep[idx] = 0
        self.indices = tuple(idx)
        self._keep = keep.reshape(space.shape)

    def observation(self, observation: Any) -> np.ndarray:
        return (np.asarray(observation) * self._keep).astype(self.observation_space.dtype, copy=False)


def make_masked(base_id: str, indices: Sequence[int], **kwargs: Any) -> MaskObsEnv:
    """The base env of ``base_id`` (without its time limit: ``gymnasium.make`` adds one) with ``indices`` masked."""
    spec = gym.spec(base_id)
    creator: Any = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    return MaskObsEnv(creator(**{**spec.kwargs, **kwargs}), indices)


def register_no_vel_envs() -> None:
    """Register the ids of :data:`NO_VEL_IDS` with gymnasium (ids already registered are left as they are)."""
    for env_id, (base_id, indices) in NO_VEL_IDS.items():
        if env_id in gym.registry:
            continue
        base = gym.spec(base_id)
        gym.register(
            id=env_id,
            entry_point="trajkit.envs.partial_obs:make_masked",
            kwargs={"base_id": base_id, "indices": indices},
            max_episode_steps=base.max_episode_steps,
            reward_threshold=base.reward_threshold,
        )


register_no_vel_envs()
