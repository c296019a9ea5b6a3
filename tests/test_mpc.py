"""MPCPol: CEM and random shooting find known optima, PETS particles, sampler backends, clear errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit.models import DynamicsModel, GaussianDynamicsModel, pendulum_reward
from trajkit.mpc import MPCPol, cem_maximize

OB = gym.spaces.Box(-10.0, 10.0, (2,))
AC = gym.spaces.Box(-2.0, 2.0, (2,))
TARGET = torch.tensor([0.7, -1.3])


def _still_model(cls: type[DynamicsModel] = DynamicsModel, members: int = 1) -> DynamicsModel:
    """A model predicting ``next_obs = obs`` (last layer zero, identity normalization)."""
    model = cls(OB, AC, num_members=members, hidden=(8,))
    with torch.no_grad():
        last = model.net.layers[-1]
        last.weight.zero_()
        last.bias.zero_()
        if isinstance(model, GaussianDynamicsModel):
            last.bias[..., model.out_dim:] = -20.0  # tiny variance
    return model


def _action_reward(obs: torch.Tensor, acs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    return -(acs - TARGET).pow(2).sum(-1)


def test_cem_finds_the_optimum_of_a_quadratic() -> None:
    opt = torch.tensor([[0.3, -0.6, 0.9], [-0.2, 0.5, 0.0]])  # one optimum per batch row, (B, X)
    low, high = -torch.ones(3), torch.ones(3)

    def score(x: torch.Tensor) -> torch.Tensor:  # (B, S, X) -> (B, S)
        return -(x - opt[:, None]).pow(2).sum(-1)

    best, mean = cem_maximize(score, low, high, batch=2, num_samples=200, num_elites=20, iters=10,
                        generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(mean, opt, atol=0.02, rtol=0)  # the search distribution settles on the optimum
    torch.testing.assert_close(best, opt, atol=0.05, rtol=0)  # the best candidate drawn is close to it


@pytest.mark.parametrize("optimizer", ["cem", "random"])
def test_the_planner_finds_the_best_action_under_a_known_reward(optimizer: str) -> None:
    shooting = optimizer == "random"  # one step ahead: the best of 2000 uniform draws lands near the target
    pol = MPCPol(OB, AC, _still_model(), reward_fn=_action_reward, horizon=1 if shooting else 3,
                 num_samples=2000 if shooting else 300, num_elites=30, cem_iters=6,
                 optimizer=optimizer)  # type: ignore[arg-type]
    acs, params = pol.act(torch.zeros(4, 2), generator=torch.Generator().manual_seed(0))
    assert acs.shape == (4, 2) and torch.equal(params["mean"], acs)
    torch.testing.assert_close(acs, TARGET.expand(4, -1), atol=0.2 if shooting else 0.1, rtol=0)


@pytest.mark.parametrize("propagation", ["tsinf", "ts1", "mean"])
def test_pets_particles_over_an_ensemble_with_a_learned_reward(propagation: str) -> None:
    torch.manual_seed(0)
    model = GaussianDynamicsModel(OB, AC, num_members=3, hidden=(8,), learn_reward=True)
    pol = MPCPol(OB, AC, model, horizon=4, num_samples=16, num_elites=4, cem_iters=2,
                 propagation=propagation, particles=None if propagation == "mean" else 6)  # type: ignore[arg-type]
    seqs = torch.rand(2, 16, 4, 2) * 4 - 2
    g = torch.Generator().manual_seed(1)
    rets = pol.sequence_returns(torch.randn(2, 2), seqs, g)
    assert rets.shape == (2, 16) and bool(torch.isfinite(rets).all())
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(pol.act(torch.zeros(1, 2), generator=g1)[0], pol.act(torch.zeros(1, 2), generator=g2)[0])


def test_tsinf_particles_stay_on_their_member() -> None:
    """With a deterministic ensemble, tsinf's returns are the mean of each member's own rollout."""
    torch.manual_seed(0)
    model = DynamicsModel(OB, AC, num_members=2, hidden=(8,))
    reward = lambda o, a, n: n[:, 0]  # noqa: E731 - a tiny reward of the next state
    pol = MPCPol(OB, AC, model, reward_fn=reward, horizon=3, num_samples=5, num_elites=1, propagation="tsinf")
    obs, seqs = torch.randn(1, 2), torch.rand(1, 5, 3, 2)
    expected = torch.zeros(5)
    for e in range(2):
        x = obs.expand(5, -1)
        for t in range(3):
            with torch.no_grad():
                out = model.out_norm.inverse(model.member_forward(e, x, seqs[0, :, t])["mean"])
            x = x + out
            expected += x[:, 0] / 2
    torch.testing.assert_close(pol.sequence_returns(obs, seqs)[0], expected)


def test_pendulum_reward_matches_the_env() -> None:
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    for u in (-3.0, 0.5, 1.9):
        nxt, r, *_ = env.step(np.array([u], dtype=np.float32))
        mine = pendulum_reward(torch.as_tensor(obs)[None], torch.tensor([[u]]), torch.as_tensor(nxt)[None])
        assert float(mine[0]) == pytest.approx(r, abs=1e-4)
        obs = nxt


@pytest.mark.parametrize("num_parallel", [1, pytest.param(2, marks=pytest.mark.slow)])  # 2: worker processes (~5 s)
def test_mpc_acts_inside_the_sampler_backends(num_parallel: int) -> None:
    env = tk.GymEnv("Pendulum-v1")
    model = GaussianDynamicsModel(env.observation_space, env.action_space, num_members=2, hidden=(8,))
    pol = MPCPol(env.observation_space, env.action_space, model, reward_fn=pendulum_reward, horizon=3,
                 num_samples=8, num_elites=2, cem_iters=1)
    with tk.EpiSampler(env, pol, num_parallel=num_parallel, seed=0) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_steps=10))
    assert traj.num_step == 10 and bool((traj["acs"].abs() <= 2.0).all())
    torch.testing.assert_close(traj["mean"], traj["acs"])


def test_bad_settings_are_named() -> None:
    model = _still_model()
    with pytest.raises(TypeError, match="Box action space"):
        MPCPol(OB, gym.spaces.Discrete(2), model, reward_fn=_action_reward)
    with pytest.raises(ValueError, match="unbounded"):
        MPCPol(OB, gym.spaces.Box(-np.inf, np.inf, (2,)), model, reward_fn=_action_reward)
    with pytest.raises(ValueError, match=r"num_elites \(50\) must not exceed the population"):
        MPCPol(OB, AC, model, reward_fn=_action_reward, num_samples=10, num_elites=50)
    with pytest.raises(ValueError, match="reward_fn, or a model built with learn_reward"):
        MPCPol(OB, AC, model)
    with pytest.raises(ValueError, match="multiple of the ensemble size"):
        MPCPol(OB, AC, _still_model(members=3), reward_fn=_action_reward, particles=4)
