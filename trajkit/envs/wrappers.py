"""Gymnasium wrappers for common RL setups.

* :class:`C2DEnv`: a Box action space as ``MultiDiscrete`` bins (for categorical policies).
* :class:`AcInObEnv`, :class:`RewInObEnv`: the previous action / reward appended to the
  observation (meta-RL and recurrent policies need them).
* :class:`SkillEnv`: a skill index appended to the observation as one-hot (DIAYN).
* :class:`ObsNormEnv`, :class:`RewNormEnv`: running observation / reward
  normalization with ``state_dict``/``load_state_dict``.

Where gymnasium has the building block it is used: ``C2DEnv`` is gymnasium's
``DiscretizeAction`` in its MultiDiscrete mode (bin centers), and the normalizers are
gymnasium's ``NormalizeObservation``/``NormalizeReward`` with saveable state. The
other three are written here: gymnasium has no previous-action, previous-reward or
skill wrappers.

All wrappers record their constructor arguments (``gymnasium.utils.RecordConstructorArgs``),
so ``gymnasium.make(env.spec)`` re-makes a wrapped registered env (samplers use this
for envs that do not pickle, such as Bullet's). They apply to any gymnasium env (a :class:`trajkit.GymEnv` included), so
``tk.GymEnv(AcInObEnv(gym.make("Pendulum-v1")))`` or a factory
``lambda: AcInObEnv(tk.GymEnv("Pendulum-v1"))`` can be handed to a sampler.

Env-side normalization keeps separate statistics in every sampler worker; for
multi-worker training prefer :class:`trajkit.ObsNormalizer` inside the policy, whose
statistics travel with the weights. These wrappers suit a single env (a real robot
behind :func:`trajkit.envs.serve`, an evaluation env restored from a checkpoint).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import DiscretizeAction, NormalizeObservation, NormalizeReward


class C2DEnv(DiscretizeAction):
    """Continuous to discrete: a Box action space becomes ``MultiDiscrete([n_bins] * A)``.

    Action ``k`` in dimension ``i`` is the center of the ``k``-th of ``n_bins`` equal
    bins of ``[low_i, high_i]`` (gymnasium's ``DiscretizeAction(multidiscrete=True)``).
    The Box must be finite and of any shape (it is flattened into ``A`` dimensions).
    """

    def __init__(self, env: gym.Env, n_bins: int | tuple[int, ...] = 11) -> None:
        super().__init__(env, bins=n_bins, multidiscrete=True)
        gym.utils.RecordConstructorArgs.__init__(self, n_bins=n_bins)  # so gymnasium.make(spec) can re-make it


def _flat_box(space: gym.Space, what: str) -> gym.spaces.Box:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise TypeError(f"{what} needs a 1-D Box observation space, got {space}")
    return space


def _append_box(space: gym.spaces.Box, low: np.ndarray, high: np.ndarray) -> gym.spaces.Box:
    """``space`` with extra trailing dimensions bounded by ``low``/``high`` (float32)."""
    return gym.spaces.Box(
        np.concatenate([space.low.astype(np.float32), low.astype(np.float32)]),
        np.concatenate([space.high.astype(np.float32), high.astype(np.float32)]),
        dtype=np.float32,
    )


def _ac_features(space: gym.Space) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the flat encoding of one action: Box as is, Discrete/MultiDiscrete as one-hot."""
    if isinstance(space, gym.spaces.Box):
        return space.low.reshape(-1).astype(np.float32), space.high.reshape(-1).astype(np.float32)
    if isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete | gym.spaces.MultiBinary):
        n = gym.spaces.flatdim(space)
        return np.zeros(n, np.float32), np.ones(n, np.float32)
    raise TypeError(f"AcInObEnv supports Box, Discrete, MultiDiscrete and MultiBinary actions, got {space}")


class AcInObEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Appends the previous action to the observation: ``obs' = [obs, enc(prev_ac)]``.

    Box actions are appended as they are (flattened; the action actually sent, as
    float32); Discrete and MultiDiscrete actions as one-hot (``gymnasium.spaces.flatten``).
    The previous action after a reset is all zeros (no action).
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        base = _flat_box(env.observation_space, "AcInObEnv")
        low, high = _ac_features(env.action_space)
        self._ac_dim = len(low)
        self.observation_space = _append_box(base, np.minimum(low, 0.0), np.maximum(high, 0.0))

    def _with(self, obs: np.ndarray, feat: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(obs, dtype=np.float32), feat])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._with(obs, np.zeros(self._ac_dim, np.float32)), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict]:
        obs, rew, terminated, truncated, info = self.env.step(action)
        feat = np.asarray(gym.spaces.flatten(self.env.action_space, action), dtype=np.float32).reshape(-1)
        return self._with(obs, feat), rew, terminated, truncated, info


class RewInObEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Appends the previous reward to the observation: ``obs' = [obs, prev_rew]`` (0 after a reset)."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        base = _flat_box(env.observation_space, "RewInObEnv")
        self.observation_space = _append_box(base, np.array([-np.inf]), np.array([np.inf]))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return np.append(np.asarray(obs, dtype=np.float32), np.float32(0.0)), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict]:
        obs, rew, terminated, truncated, info = self.env.step(action)
        return np.append(np.asarray(obs, dtype=np.float32), np.float32(rew)), rew, terminated, truncated, info


class SkillEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Appends a skill index as one-hot to the observation: ``obs' = [obs, one_hot(skill)]`` (DIAYN).

    Each reset draws the episode's skill uniformly from ``num_skills`` with the env's
    seeded ``np_random`` (so a sampler's seed fixes the skills too), unless
    ``reset(options={"skill": k})`` fixes it. The current skill is ``self.skill`` and
    is reported in ``info["skill"]`` at every reset and step; a discriminator
    recovers it from ``obs'[..., -num_skills:]``.
    """

    def __init__(self, env: gym.Env, num_skills: int) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, num_skills=num_skills)
        super().__init__(env)
        if num_skills < 1:
            raise ValueError(f"num_skills must be >= 1, got {num_skills}")
        base = _flat_box(env.observation_space, "SkillEnv")
        self.num_skills = num_skills
        self.skill = 0
        self.observation_space = _append_box(base, np.zeros(num_skills), np.ones(num_skills))

    def _with_skill(self, obs: np.ndarray) -> np.ndarray:
        one_hot = np.zeros(self.num_skills, np.float32)
        one_hot[self.skill] = 1.0
        return np.concatenate([np.asarray(obs, dtype=np.float32), one_hot])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        options = dict(options or {})
        skill = options.pop("skill", None)
        obs, info = self.env.reset(seed=seed, options=options or None)
        if skill is None:
            skill = int(self.np_random.integers(self.num_skills))
        if not 0 <= int(skill) < self.num_skills:
            raise ValueError(f"skill must be in [0, {self.num_skills}), got {skill}")
        self.skill = int(skill)
        return self._with_skill(obs), {**info, "skill": self.skill}

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict]:
        obs, rew, terminated, truncated, info = self.env.step(action)
        return self._with_skill(obs), rew, terminated, truncated, {**info, "skill": self.skill}


def _rms_state(rms: Any) -> dict[str, Any]:
    return {"mean": np.array(rms.mean, dtype=np.float64), "var": np.array(rms.var, dtype=np.float64),
            "count": float(rms.count)}


def _load_rms(rms: Any, state: dict[str, Any]) -> None:
    mean, var = np.asarray(state["mean"], dtype=np.float64), np.asarray(state["var"], dtype=np.float64)
    if mean.shape != np.shape(rms.mean):
        raise ValueError(f"state has statistics of shape {mean.shape}, this wrapper needs {np.shape(rms.mean)}")
    rms.mean, rms.var, rms.count = mean.copy(), var.copy(), float(state["count"])


class ObsNormEnv(NormalizeObservation):
    """Running observation normalization (gymnasium's ``NormalizeObservation``) with saveable state.

    ``obs' = (obs - mean) / sqrt(var + eps)`` with running ``mean``/``var``, updated on
    every observation while ``update_running_mean`` is True (set it False to freeze,
    e.g. for evaluation). :meth:`state_dict` / :meth:`load_state_dict` save and restore
    the statistics as plain numpy data.
    """

    def __init__(self, env: gym.Env, epsilon: float = 1e-8) -> None:
        super().__init__(env, epsilon=epsilon)

    def state_dict(self) -> dict[str, Any]:
        """``{"mean", "var", "count", "update"}``: the statistics and whether they are updated."""
        return {**_rms_state(self.obs_rms), "update": bool(self.update_running_mean)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        _load_rms(self.obs_rms, state)
        self.update_running_mean = bool(state.get("update", True))


class RewNormEnv(NormalizeReward):
    """Running reward scaling (gymnasium's ``NormalizeReward``) with saveable state.

    Rewards are divided by the running standard deviation of the discounted return
    (``gamma``), as in PPO implementations; :meth:`state_dict` includes the return
    accumulator so a restored env continues exactly.
    """

    def __init__(self, env: gym.Env, gamma: float = 0.99, epsilon: float = 1e-8) -> None:
        super().__init__(env, gamma=gamma, epsilon=epsilon)

    def state_dict(self) -> dict[str, Any]:
        """``{"mean", "var", "count", "update", "discounted_reward"}``."""
        return {
            **_rms_state(self.return_rms),
            "update": bool(self.update_running_mean),
            "discounted_reward": np.array(self.discounted_reward, dtype=np.float64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        _load_rms(self.return_rms, state)
        self.update_running_mean = bool(state.get("update", True))
        self.discounted_reward = np.array(state.get("discounted_reward", [0.0]), dtype=np.float64)
