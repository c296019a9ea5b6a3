"""Exploration settings live in state_dict, so a policy loaded from another's explores identically.

The sampler ships ``pol.state_dict()`` to its workers before every ``sample()``; before
these were buffers, DQN's epsilon and the noise scales of DDPG/TD3 stayed at the values
the workers were built with.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit import nets

OB = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
AC = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DISC = gym.spaces.Discrete(4)


def argmax_pol(epsilon: float, seed: int = 0) -> tk.ArgmaxQfPol:
    torch.manual_seed(seed)
    return tk.ArgmaxQfPol(OB, DISC, tk.DiscreteQfunc(OB, DISC, nets.mlp(3, 4, (8,))), epsilon=epsilon)


def noise_pol(noise: tk.GaussianActionNoise | tk.OUActionNoise, seed: int = 0) -> tk.DeterministicActionNoisePol:
    torch.manual_seed(seed)
    return tk.DeterministicActionNoisePol(tk.DeterministicPol(OB, AC, nets.mlp(3, 2, (8,))), noise)


def acts(pol: torch.nn.Module, obs: torch.Tensor, seed: int = 1) -> torch.Tensor:
    with torch.no_grad():
        return pol.act(obs, False, torch.Generator().manual_seed(seed))[0]


def test_epsilon_travels_in_state_dict():
    pol, copy_ = argmax_pol(0.1), argmax_pol(0.1, seed=1)
    pol.epsilon = 0.7  # a schedule's new value, set between sampling calls
    assert "epsilon" in pol.state_dict()
    copy_.load_state_dict(pol.state_dict())
    assert float(copy_.epsilon) == pytest.approx(0.7)
    obs = torch.randn(200, 3)
    assert torch.equal(acts(pol, obs), acts(copy_, obs))
    old_format = {k: v for k, v in pol.state_dict().items() if k != "epsilon"}  # saved before it was a buffer
    copy_.epsilon = 0.2
    copy_.load_state_dict(old_format)  # still loads, keeping the current epsilon
    assert float(copy_.epsilon) == pytest.approx(0.2)


def test_epsilon_is_checked_and_reads_as_a_number():
    pol = argmax_pol(0.25)
    assert float(pol.epsilon) == 0.25 and f"{float(pol.epsilon):.2f}" == "0.25"
    with pytest.raises(ValueError, match="epsilon must be <= 1.0, got 1.5"):
        pol.epsilon = 1.5
    with pytest.raises(ValueError, match="epsilon"):
        tk.ArgmaxQfPol(OB, DISC, pol.qf, epsilon=-0.1)
    pol.epsilon = 0.0
    obs = torch.randn(50, 3)
    assert torch.equal(acts(pol, obs), pol.qf(obs).argmax(-1))


def test_gaussian_noise_scale_travels_in_state_dict():
    pol, copy_ = noise_pol(tk.GaussianActionNoise(0.1)), noise_pol(tk.GaussianActionNoise(0.1), seed=1)
    pol.noise.std = 0.5
    copy_.load_state_dict(pol.state_dict())
    assert float(copy_.noise.std) == 0.5
    obs = torch.randn(64, 3)
    assert torch.equal(acts(pol, obs), acts(copy_, obs))


def test_ou_parameters_travel_in_state_dict():
    pol = noise_pol(tk.OUActionNoise(sigma=0.2, theta=0.15, dt=1.0))
    copy_ = noise_pol(tk.OUActionNoise(sigma=0.2, theta=0.15, dt=1.0), seed=1)
    pol.noise.sigma, pol.noise.theta = 0.6, 0.3
    copy_.load_state_dict(pol.state_dict())
    assert (float(copy_.noise.sigma), float(copy_.noise.theta)) == pytest.approx((0.6, 0.3))
    obs = torch.randn(8, 3)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    with torch.no_grad():
        for _ in range(5):  # the same correlated sequence step after step
            assert torch.equal(pol.act(obs, False, g1)[0], copy_.act(obs, False, g2)[0])


def test_an_ou_reset_reaches_a_copy_through_state_dict():
    """As a sampler worker: the parent resets before each sample(), the worker loads its state."""
    parent = noise_pol(tk.OUActionNoise(sigma=0.5, dt=1.0))
    worker = copy.deepcopy(parent)
    shape, dev = torch.Size([2, 2]), torch.device("cpu")
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        worker.noise(shape, g, dev)  # an episode's worth of correlated noise in the worker
    parent.reset()
    worker.load_state_dict(parent.state_dict())
    after = worker.noise(shape, torch.Generator().manual_seed(9), dev)
    fresh = tk.OUActionNoise(sigma=0.5, dt=1.0)(shape, torch.Generator().manual_seed(9), dev)
    assert torch.equal(after, fresh)


def test_noise_settings_are_checked():
    with pytest.raises(ValueError, match="std must be >= 0.0"):
        tk.GaussianActionNoise(-0.1)
    ou = tk.OUActionNoise()
    with pytest.raises(ValueError, match="sigma must be finite"):
        ou.sigma = float("nan")
    with pytest.raises(TypeError, match="ActionNoise"):
        tk.DeterministicActionNoisePol(tk.DeterministicPol(OB, AC, nets.mlp(3, 2, (8,))), object())


@pytest.mark.slow  # starts two worker processes (about 5 s on a small machine)
def test_workers_act_with_the_epsilon_set_after_the_sampler_started():
    env = tk.GymEnv("CartPole-v1")
    ob, ac = env.observation_space, env.action_space
    torch.manual_seed(0)
    pol = tk.ArgmaxQfPol(ob, ac, tk.DiscreteQfunc(ob, ac, nets.mlp(4, 2, (8,))), epsilon=0.0)
    with tk.EpiSampler(env, pol, num_parallel=2, seed=0) as sampler:
        greedy = tk.Traj.from_epis(sampler.sample(pol, max_steps=100))
        pol.epsilon = 1.0
        random = tk.Traj.from_epis(sampler.sample(pol, max_steps=100))
    assert torch.equal(greedy["acs"].long(), greedy["mean"].long())  # epsilon 0: always the argmax
    off_greedy = float((random["acs"].long() != random["mean"].long()).float().mean())
    assert 0.3 < off_greedy < 0.7  # epsilon 1: uniformly random, half of them differ from the argmax
