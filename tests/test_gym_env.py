"""``GymEnv``: gymnasium ids and instances, action spaces, Dict observations, legacy gym-API objects."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk


# ---------------------------------------------------------------------- gymnasium ids and instances
def test_gymnasium_id_gives_the_five_value_api_with_numpy_obs():
    env = tk.GymEnv("CartPole-v1")
    assert isinstance(env.action_space, gym.spaces.Discrete)
    obs, info = env.reset(seed=0)
    assert isinstance(obs, np.ndarray) and env.observation_space.contains(obs)
    obs, rew, terminated, truncated, info = env.step(env.action_space.sample())
    assert isinstance(rew, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
    ref = gym.make("CartPole-v1")
    np.testing.assert_array_equal(env.reset(seed=3)[0], ref.reset(seed=3)[0])
    env.close()


def test_gymnasium_instance_and_make_kwargs():
    env = tk.GymEnv(gym.make("Pendulum-v1"))
    assert isinstance(env.action_space, gym.spaces.Box) and env.action_space.shape == (1,)
    assert tk.GymEnv("Pendulum-v1", g=5.0).unwrapped.g == 5.0
    with pytest.raises(TypeError, match="only apply when GymEnv is given an env id"):
        tk.GymEnv(gym.make("Pendulum-v1"), g=5.0)


class MultiDiscreteEnv(gym.Env):
    """Observation = last action; ends after 4 steps."""

    observation_space = gym.spaces.Box(0.0, 10.0, (3,), np.float32)
    action_space = gym.spaces.MultiDiscrete([2, 5, 3])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action)), action
        self.t += 1
        return np.asarray(action, np.float32), 1.0, self.t >= 4, False, {}


@pytest.mark.parametrize("space_kind", ["box", "discrete", "multidiscrete"])
def test_action_spaces_work_end_to_end(space_kind):
    if space_kind == "box":
        env = tk.GymEnv("Pendulum-v1", max_episode_steps=5)
        pol = tk.GaussianPol(env.observation_space, env.action_space, tk.nets.mlp(3, 1, hidden=(8,)))
    elif space_kind == "discrete":
        env = tk.GymEnv("CartPole-v1")
        pol = tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.mlp(4, 2, hidden=(8,)))
    else:
        env = tk.GymEnv(MultiDiscreteEnv())
        pol = tk.MultiCategoricalPol(env.observation_space, env.action_space, tk.nets.mlp(3, 10, hidden=(8,)))
    with tk.EpiSampler(env, pol, num_parallel=1, seed=0) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_epis=2))
    assert traj.num_epi == 2
    assert tuple(traj["acs"].shape[1:]) == tuple(env.action_space.shape)
    llh = pol.pd.llh(traj["acs"], {k: traj[k] for k in pol.pd.param_names})
    assert torch.isfinite(llh).all()


# ---------------------------------------------------------------------- Dict observations
class DictObsEnv(gym.Env):
    """A Dict observation with a Box and a Discrete part."""

    observation_space = gym.spaces.Dict(
        {"pos": gym.spaces.Box(-1.0, 1.0, (2,), np.float32), "mode": gym.spaces.Discrete(3)}
    )
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return {"pos": self.np_random.uniform(-1, 1, 2).astype(np.float32), "mode": int(self.t % 3)}

    def step(self, action):
        self.t += 1
        return self._obs(), 0.0, False, self.t >= 3, {}


def test_dict_observations_are_flattened_and_unflatten_round_trips():
    env = tk.GymEnv(DictObsEnv())
    assert isinstance(env.observation_space, gym.spaces.Box) and env.observation_space.shape == (5,)
    assert isinstance(env.orig_observation_space, gym.spaces.Dict)
    obs, _ = env.reset(seed=0)
    raw = DictObsEnv()
    raw_obs, _ = raw.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs, gym.spaces.flatten(raw.observation_space, raw_obs))
    back = env.unflatten_obs(obs)
    np.testing.assert_array_equal(back["pos"], raw_obs["pos"])
    assert int(back["mode"]) == raw_obs["mode"]
    obs2, *_ = env.step(0)
    assert int(env.unflatten_obs(obs2)["mode"]) == 1


# ---------------------------------------------------------------------- legacy gym API
class Box:
    """A look-alike of old ``gym.spaces.Box`` (not gymnasium's)."""

    def __init__(self, low, high, shape, dtype=np.float32):
        self.low = np.full(shape, low, dtype)
        self.high = np.full(shape, high, dtype)
        self.shape, self.dtype = shape, np.dtype(dtype)


class Discrete:
    """A look-alike of old ``gym.spaces.Discrete``."""

    def __init__(self, n):
        self.n = n
        self.shape, self.dtype = (), np.dtype(np.int64)


class LegacyWalk:
    """Old gym API: ``reset() -> obs``, ``step() -> (obs, rew, done, info)``.

    Action 1 moves right, 0 left; reaching +3 is a true terminal state. After
    ``time_limit`` steps it is cut off with ``info["TimeLimit.truncated"] = True``.
    """

    def __init__(self, time_limit=6):
        self.observation_space = Box(-10.0, 10.0, (1,))
        self.action_space = Discrete(2)
        self.time_limit = time_limit
        self.seeds = []

    def seed(self, seed):
        self.seeds.append(seed)

    def reset(self):
        self.pos, self.t = 0, 0
        return np.array([self.pos], np.float32)

    def step(self, action):
        self.pos += 1 if int(action) == 1 else -1
        self.t += 1
        obs = np.array([self.pos], np.float32)
        if self.pos >= 3:
            return obs, 1.0, True, {}
        if self.t >= self.time_limit:
            return obs, 0.0, True, {"TimeLimit.truncated": True}
        return obs, 0.0, False, {}


def test_legacy_env_spaces_are_converted_to_gymnasium():
    env = tk.GymEnv(LegacyWalk())
    assert isinstance(env.observation_space, gym.spaces.Box) and env.observation_space.shape == (1,)
    np.testing.assert_array_equal(env.observation_space.low, [-10.0])
    assert isinstance(env.action_space, gym.spaces.Discrete) and env.action_space.n == 2


def test_legacy_env_maps_termination_and_truncation():
    legacy = LegacyWalk(time_limit=6)
    env = tk.GymEnv(legacy)
    obs, info = env.reset(seed=5)
    assert obs.shape == (1,) and info == {} and legacy.seeds == [5]
    for _ in range(2):
        _, _, terminated, truncated, _ = env.step(1)
        assert not terminated and not truncated
    obs, rew, terminated, truncated, info = env.step(1)
    assert (terminated, truncated, rew, float(obs[0])) == (True, False, 1.0, 3.0)
    env.reset()
    results = [env.step(0) for _ in range(6)]
    assert not any(r[2] or r[3] for r in results[:-1])
    _, _, terminated, truncated, info = results[-1]
    assert (terminated, truncated) == (False, True)
    assert "TimeLimit.truncated" not in info


def test_legacy_env_episodes_from_the_sampler():
    env = tk.GymEnv(LegacyWalk(time_limit=6))
    pol = tk.RandomPol(env.observation_space, env.action_space)
    with tk.EpiSampler(env, pol, num_parallel=1, seed=0) as sampler:
        epis = sampler.sample(pol, max_epis=20)
    for epi in epis:
        reached_goal = float(epi["final_obs"][0]) >= 3
        assert epi["terminated"] == reached_goal and epi["truncated"] == (not reached_goal)
        assert reached_goal or len(epi["rews"]) == 6
    assert any(e["terminated"] for e in epis) and any(e["truncated"] for e in epis)
