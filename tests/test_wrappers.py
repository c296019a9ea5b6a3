"""Env wrappers, each on a real gymnasium env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit.envs import AcInObEnv, C2DEnv, ObsNormEnv, RewInObEnv, RewNormEnv, SkillEnv


def test_c2d_maps_bins_to_box_centers() -> None:
    env = C2DEnv(gym.make("Pendulum-v1"), n_bins=5)
    assert env.action_space == gym.spaces.MultiDiscrete([5])
    ref = gym.make("Pendulum-v1")
    env.reset(seed=0)
    ref.reset(seed=0)
    centers = [-1.6, -0.8, 0.0, 0.8, 1.6]  # bins of width 0.8 over [-2, 2]
    for k in [0, 4, 2, 1, 3]:
        obs, rew, *_ = env.step(np.array([k]))
        ref_obs, ref_rew, *_ = ref.step(np.array([centers[k]], np.float32))
        np.testing.assert_allclose(obs, ref_obs, rtol=1e-6)
        assert rew == pytest.approx(ref_rew)


def test_c2d_trains_a_multicategorical_policy_through_the_sampler() -> None:
    env = tk.GymEnv(C2DEnv(gym.make("MountainCarContinuous-v0"), n_bins=7))
    pol = tk.MultiCategoricalPol(env.observation_space, env.action_space, tk.nets.mlp(2, 7))
    with tk.EpiSampler(env, pol, seed=0) as sampler:
        epis = sampler.sample(pol, max_steps=50)
    traj = tk.Traj.from_epis(epis)
    assert traj.num_step == 50
    assert traj["acs"].shape == (50, 1) and int(traj["acs"].max()) < 7


def test_c2d_rejects_unbounded_boxes() -> None:
    env = gym.make("Pendulum-v1")
    env.action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    with pytest.raises(ValueError, match="finite"):
        C2DEnv(env)


def test_ac_in_ob_box_actions() -> None:
    env = AcInObEnv(gym.make("Pendulum-v1"))
    assert env.observation_space.shape == (4,)
    obs, _ = env.reset(seed=0)
    assert obs[-1] == 0.0 and env.observation_space.contains(obs)
    for a in (0.5, -1.25):
        obs, *_ = env.step(np.array([a], np.float32))
        assert obs[-1] == pytest.approx(a)
    obs, _ = env.reset()
    assert obs[-1] == 0.0


def test_ac_in_ob_discrete_actions_are_one_hot() -> None:
    env = AcInObEnv(gym.make("CartPole-v1"))
    assert env.observation_space.shape == (6,)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs[4:], [0, 0])
    obs, *_ = env.step(1)
    np.testing.assert_array_equal(obs[4:], [0, 1])
    obs, *_ = env.step(0)
    np.testing.assert_array_equal(obs[4:], [1, 0])


def test_rew_in_ob_appends_previous_reward() -> None:
    env = RewInObEnv(gym.make("Pendulum-v1"))
    assert env.observation_space.shape == (4,)
    obs, _ = env.reset(seed=0)
    assert obs[-1] == 0.0
    for _ in range(3):
        obs, rew, *_ = env.step(np.array([1.0], np.float32))
        assert obs[-1] == pytest.approx(rew) and rew != 0.0


@pytest.mark.slow  # worker processes or long training: seconds on a small machine (slow tier)
def test_wrapped_env_reaches_sampler_workers_intact() -> None:
    """A GymEnv around a wrapper is shipped whole, not re-made from the inner id."""
    env = tk.GymEnv(RewInObEnv(AcInObEnv(gym.make("Pendulum-v1"))))
    pol = tk.GaussianPol(env.observation_space, env.action_space, tk.nets.mlp(5, 1))
    with tk.EpiSampler(env, pol, num_parallel=2, seed=0) as sampler:
        epis = sampler.sample(pol, max_steps=20)
    assert all(e["obs"].shape[1] == 5 for e in epis)
    assert sum(len(e["rews"]) for e in epis) == 20


def test_skill_env_one_hot_and_seeded_draws() -> None:
    env = SkillEnv(gym.make("Pendulum-v1"), num_skills=4)
    assert env.observation_space.shape == (7,)
    obs, info = env.reset(seed=0)
    assert obs[3:].sum() == 1.0 and obs[3 + info["skill"]] == 1.0
    skills = [env.reset()[1]["skill"] for _ in range(200)]
    assert set(skills) == {0, 1, 2, 3}
    obs, _, _, _, info = env.step(np.array([0.0], np.float32))
    assert info["skill"] == env.skill and obs[3 + env.skill] == 1.0
    other = SkillEnv(gym.make("Pendulum-v1"), num_skills=4)
    other.reset(seed=0)
    assert [other.reset()[1]["skill"] for _ in range(200)] == skills


def test_skill_env_fixed_skill_and_bad_skill() -> None:
    env = SkillEnv(gym.make("CartPole-v1"), num_skills=3)
    obs, info = env.reset(seed=1, options={"skill": 2})
    assert info["skill"] == 2 and list(obs[4:]) == [0, 0, 1]
    with pytest.raises(ValueError, match="skill"):
        env.reset(options={"skill": 3})
    with pytest.raises(ValueError):
        SkillEnv(gym.make("CartPole-v1"), num_skills=0)


def _run(env: gym.Env, n: int, seed: int) -> list[np.ndarray]:
    env.action_space.seed(seed)
    out = []
    for _ in range(n):
        obs, rew, terminated, truncated, _ = env.step(env.action_space.sample())
        out.append(np.append(obs, rew))
        if terminated or truncated:
            env.reset()
    return out


def test_obs_norm_normalizes_and_state_round_trips() -> None:
    env = ObsNormEnv(gym.make("Pendulum-v1"))
    env.reset(seed=0)
    obs = np.stack(_run(env, 2000, 0))[:, :3]
    raw_std = np.sqrt(env.obs_rms.var)
    assert np.all(np.abs(obs[-500:].mean(0)) < 0.5) and np.all(raw_std > 0.1)
    state = env.state_dict()
    fresh = ObsNormEnv(gym.make("Pendulum-v1"))
    fresh.load_state_dict(state)
    for e in (env, fresh):
        e.update_running_mean = False
    np.testing.assert_allclose(env.reset(seed=5)[0], fresh.reset(seed=5)[0], rtol=1e-6)
    np.testing.assert_allclose(np.stack(_run(env, 50, 1)), np.stack(_run(fresh, 50, 1)), rtol=1e-5)
    assert fresh.state_dict()["update"] is False
    with pytest.raises(ValueError, match="shape"):
        ObsNormEnv(gym.make("CartPole-v1")).load_state_dict(state)


def test_rew_norm_state_round_trips_and_continues_exactly() -> None:
    env = RewNormEnv(gym.make("Pendulum-v1"), gamma=0.99)
    env.reset(seed=0)
    _run(env, 300, 0)
    state = env.state_dict()
    fresh = RewNormEnv(gym.make("Pendulum-v1"), gamma=0.99)
    fresh.load_state_dict(state)
    env.reset(seed=7)
    fresh.reset(seed=7)
    a, b = np.stack(_run(env, 100, 2)), np.stack(_run(fresh, 100, 2))
    np.testing.assert_allclose(a, b, rtol=1e-6)
    raw = gym.make("Pendulum-v1")
    raw.reset(seed=7)
    raw_rews = np.stack(_run(raw, 100, 2))[:, -1]
    np.testing.assert_allclose(a[:, -1], raw_rews / np.sqrt(state["var"] + 1e-8), rtol=0.2)
    assert np.abs(a[:, -1]).mean() < np.abs(raw_rews).mean()


def test_state_dict_is_plain_numpy_data() -> None:
    env = ObsNormEnv(gym.make("CartPole-v1"))
    env.reset(seed=0)
    state = env.state_dict()
    assert set(state) == {"mean", "var", "count", "update"}
    assert isinstance(state["mean"], np.ndarray) and not isinstance(state["mean"], torch.Tensor)


def test_unpicklable_wrapped_bullet_env_is_remade_from_its_spec() -> None:
    """Bullet envs do not pickle; a sampler re-makes them, wrappers included, from the gymnasium spec."""
    pytest.importorskip("pybullet_envs_gymnasium")
    from trajkit.envs.gym_env import make_env

    env = tk.GymEnv(SkillEnv(AcInObEnv(make_env("InvertedPendulumBulletEnv-v0")), num_skills=3))
    pol = tk.GaussianPol(env.observation_space, env.action_space, tk.nets.mlp(9, 1))
    with tk.EpiSampler(env, pol, seed=0, num_envs_per_worker=2) as sampler:
        copies = sampler._local.envs  # noqa: SLF001
        assert all(c is not env for c in copies)
        epis = sampler.sample(pol, max_steps=20)
    assert all(e["obs"].shape[1] == 9 for e in epis) and sum(len(e["rews"]) for e in epis) == 20


def test_env_that_neither_pickles_nor_has_a_spec_gets_a_clear_error() -> None:
    class Unpicklable(gym.Wrapper):
        def __reduce__(self) -> object:
            raise TypeError("no pickling")

    raw = gym.make("CartPole-v1")
    env = tk.GymEnv(Unpicklable(raw))
    pol = tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.mlp(4, 2))
    with pytest.raises(TypeError, match="pass an env id or a zero-argument factory"):
        tk.EpiSampler(env, pol, num_envs_per_worker=2)
