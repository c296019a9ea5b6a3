"""Partially observed tasks: MaskObsEnv and the registered NoVel ids."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import trajkit as tk
from trajkit.envs import NO_VEL_IDS, MaskObsEnv


@pytest.mark.parametrize("env_id", sorted(NO_VEL_IDS))
def test_no_vel_ids_are_the_base_env_with_velocities_zeroed(env_id):
    base_id, masked = NO_VEL_IDS[env_id]
    env, base = gym.make(env_id), gym.make(base_id)
    assert env.observation_space == base.observation_space
    assert env.spec.max_episode_steps == base.spec.max_episode_steps
    assert env.spec.reward_threshold == base.spec.reward_threshold
    obs, _ = env.reset(seed=3)
    ref, _ = base.reset(seed=3)
    kept = [i for i in range(ref.shape[0]) if i not in masked]
    steps, hidden = 0, 0
    while True:
        assert np.all(obs[list(masked)] == 0.0) and np.array_equal(obs[kept], ref[kept])
        hidden += int(np.any(ref[list(masked)] != 0.0))
        ac = base.action_space.sample() if steps % 2 else env.action_space.sample()
        obs, rew, term, trunc, _ = env.step(ac)
        ref, ref_rew, ref_term, ref_trunc, _ = base.step(ac)
        assert (rew, term, trunc) == (ref_rew, ref_term, ref_trunc)
        steps += 1
        if term or trunc:
            break
    assert hidden >= steps // 2  # the masked entries did carry information


def test_cartpole_no_vel_masks_cart_and_pole_velocity_as_rl_zoo_does():
    assert NO_VEL_IDS["CartPoleNoVel-v1"] == ("CartPole-v1", (1, 3))
    assert NO_VEL_IDS["PendulumNoVel-v1"] == ("Pendulum-v1", (2,))
    env = tk.GymEnv("PendulumNoVel-v1")
    obs, _ = env.reset(seed=0)
    assert obs[2] == 0.0 and obs[0] != 0.0


def test_mask_obs_env_masks_any_indices_and_checks_them():
    env = MaskObsEnv(gym.make("MountainCarContinuous-v0"), [0])
    obs, _ = env.reset(seed=0)
    assert obs[0] == 0.0 and obs.dtype == np.float32
    with pytest.raises(ValueError, match="index 2 is outside the observation's 2 entries"):
        MaskObsEnv(gym.make("MountainCarContinuous-v0"), [2])
    with pytest.raises(ValueError, match="indices must be distinct"):
        MaskObsEnv(gym.make("MountainCarContinuous-v0"), [1, 1])
    with pytest.raises(TypeError, match="needs a Box observation space"):
        MaskObsEnv(gym.make("FrozenLake-v1"), [0])


@pytest.mark.slow  # worker processes or long training: seconds on a small machine (slow tier)
def test_a_no_vel_id_is_remade_in_sampler_workers():
    env = tk.GymEnv("CartPoleNoVel-v1")
    pol = tk.CategoricalPol.for_env(env)
    with tk.EpiSampler("CartPoleNoVel-v1", pol, num_parallel=2, seed=0) as sampler:
        epis = sampler.sample(pol, max_epis=2)
    for e in epis:
        assert np.all(e["obs"][:, [1, 3]] == 0.0) and np.all(e["final_obs"][[1, 3]] == 0.0)
