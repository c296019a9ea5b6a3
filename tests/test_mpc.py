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


@pytest.mark.parametrize("env_id", ["InvertedPendulumSwingupBulletEnv-v0", "ReacherBulletEnv-v0"])
def test_bullet_known_rewards_match_the_envs(env_id: str) -> None:
    pytest.importorskip("pybullet_envs_gymnasium")
    from trajkit.models import KNOWN_REWARDS

    env = tk.GymEnv(env_id)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    for _ in range(60):
        ac = env.action_space.sample()
        nxt, r, *_ = env.step(ac)
        mine = KNOWN_REWARDS[env_id](torch.as_tensor(obs)[None], torch.as_tensor(ac)[None], torch.as_tensor(nxt)[None])
        assert float(mine[0]) == pytest.approx(r, abs=1e-4)
        obs = nxt
    env.close()


@pytest.mark.parametrize(("num_parallel", "envs", "backend"), [
    (1, 1, "process"),  # in-process
    (1, 3, "process"),  # vectorized: one batched plan for 3 envs
    pytest.param(2, 1, "process", marks=pytest.mark.slow),  # worker processes (~5 s)
    pytest.param(2, 2, "ray", marks=pytest.mark.slow),  # Ray actors, vectorized
])
@pytest.mark.parametrize("warm_start", [False, True])
def test_mpc_acts_inside_the_sampler_backends(num_parallel: int, envs: int, backend: str, warm_start: bool,
                                              request: pytest.FixtureRequest) -> None:
    if backend == "ray":
        request.getfixturevalue("local_ray")  # a local Ray, shut down after the test
    env = tk.GymEnv("Pendulum-v1")
    model = GaussianDynamicsModel(env.observation_space, env.action_space, num_members=2, hidden=(8,))
    pol = MPCPol(env.observation_space, env.action_space, model, reward_fn=pendulum_reward, horizon=3,
                 num_samples=8, num_elites=2, cem_iters=1, warm_start=warm_start)
    with tk.EpiSampler(env, pol, num_parallel=num_parallel, seed=0, num_envs_per_worker=envs,
                       backend=backend) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_steps=12))
    assert traj.num_step == 12 and bool((traj["acs"].abs() <= 2.0).all())
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


@pytest.mark.slow  # seconds on a small machine (slow tier)
def test_evaluations_do_not_change_what_a_warm_started_planner_trains_on(tmp_path) -> None:
    """A PETS run with evaluations in between takes the same training steps as one without."""
    from trajkit.checkpoint import _read
    from trajkit.run.presets import resolve
    from trajkit.run.runner import train

    hp = {"learning_starts": 20, "steps_per_iter": 20, "horizon": 3, "num_samples": 8, "num_elites": 2,
          "cem_iters": 2, "model_hidden": [8], "train.max_epochs": 2, "warm_start": True}
    final = {}
    for every in (0, 10):
        cfg = resolve("pets", "Pendulum-v1", overrides={**hp, "eval_every": every, "eval_episodes": 1}, steps=60)
        out = train(cfg, tmp_path / f"every{every}", progress=False, console=False)
        assert out.env_steps == 60
        final[every] = _read(out.checkpoint)["entries"]
    for name in ("buffer", "model", "plan"):  # the real steps, the fitted model, the warm-start plan
        a, b = _tensors(final[0][name]), _tensors(final[10][name])
        assert a and len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), name


def _tensors(state: object) -> list[torch.Tensor]:
    """Every tensor in a nested checkpoint entry, in a fixed order."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        return [t for k in sorted(state) for t in _tensors(state[k])]
    if isinstance(state, list | tuple):
        return [t for v in state for t in _tensors(v)]
    return []
