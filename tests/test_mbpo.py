"""Imagined rollouts: a Traj marked imagined that flows through ef and sac.train; ModelEnv in the sampler; mixing."""

from __future__ import annotations

import copy

import gymnasium as gym
import pytest
import torch

import trajkit as tk
from trajkit import ef
from trajkit.algos import sac
from trajkit.algos.mbpo import MixedSource
from trajkit.envs.model_env import ModelEnv, imagine
from trajkit.models import DynamicsModel, GaussianDynamicsModel, pendulum_reward

OB = gym.spaces.Box(-10.0, 10.0, (3,))
AC = gym.spaces.Box(-1.0, 1.0, (1,))


def _sac_models() -> dict[str, object]:
    pol = tk.SquashedGaussianPol.for_env((OB, AC), hidden=(16,))
    qf1, qf2 = (tk.DeterministicSAVfunc.for_env((OB, AC), hidden=(16,)) for _ in range(2))
    log_alpha = torch.zeros((), requires_grad=True)
    return {"pol": pol, "qf1": qf1, "qf2": qf2, "target_qf1": copy.deepcopy(qf1), "target_qf2": copy.deepcopy(qf2),
            "log_alpha": log_alpha, "optim_pol": torch.optim.Adam(pol.parameters()),
            "optim_qf": torch.optim.Adam([*qf1.parameters(), *qf2.parameters()]),
            "optim_alpha": torch.optim.Adam([log_alpha])}


def test_imagined_trajs_flow_through_ef_and_sac_train_unchanged() -> None:
    torch.manual_seed(0)
    model = GaussianDynamicsModel(OB, AC, num_members=3, hidden=(8,), learn_reward=True)
    m = _sac_models()
    g = torch.Generator().manual_seed(0)
    traj = imagine(model=model, pol=m["pol"], start_obs=torch.randn(6, 3), horizon=4, generator=g)
    assert traj.num_epi == 6 and traj.num_step == 24 and bool(traj.epi_col("imagined").all())
    assert bool(traj.epi_col("truncated").all()) and not bool(traj.epi_col("terminated").any())
    assert {"obs", "acs", "rews", "next_obs", "terminals", "mean", "log_std"} <= set(traj.keys())
    torch.testing.assert_close(traj["obs"][1:4], traj["next_obs"][0:3])  # steps chain inside an episode
    torch.testing.assert_close(traj.epi_col("final_obs"), traj["next_obs"][traj.last_idx()])
    redone = ef.add_next_obs(traj)  # the estimators read it like a sampled Traj
    torch.testing.assert_close(redone["next_obs"], traj["next_obs"])
    vf = tk.DeterministicSVfunc.for_env(OB, hidden=(8,))
    est = ef.compute_advs(ef.compute_rets(ef.compute_vs(traj, vf), gamma=0.9), gamma=0.9, lam=0.95)
    assert est["rets"].shape == est["advs"].shape == (24,)
    before = [p.clone() for p in m["pol"].parameters()]  # type: ignore[attr-defined]
    result = sac.train(traj=traj, num_steps=3, batch_size=8, generator=0, **m)  # type: ignore[arg-type]
    assert len(result.losses["qf_loss"]) == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, m["pol"].parameters(), strict=True))  # type: ignore[attr-defined]


def test_imagined_rollouts_stop_at_a_terminal_state() -> None:
    model = DynamicsModel(OB, AC, hidden=(8,))
    pol = tk.RandomPol(OB, AC)
    terminal = lambda o, a, n: o[:, 0] > 0  # noqa: E731 - rows starting with a positive first feature end at once
    start = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    reward = lambda o, a, n: torch.ones(len(o))  # noqa: E731
    traj = imagine(model=model, pol=pol, start_obs=start, horizon=5, reward_fn=reward, terminal_fn=terminal,
                   generator=torch.Generator().manual_seed(0))
    assert traj.epi_lens.tolist()[0] == 1 and bool(traj.epi_col("terminated")[0])
    assert float(traj["terminals"][0]) == 1.0 and float(traj["terminals"][1:].sum()) == 0.0


def test_imagine_is_deterministic_given_the_generator() -> None:
    torch.manual_seed(0)
    model = GaussianDynamicsModel(OB, AC, num_members=2, hidden=(8,), learn_reward=True)
    pol = tk.SquashedGaussianPol.for_env((OB, AC), hidden=(8,))
    a, b = (imagine(model=model, pol=pol, start_obs=torch.ones(3, 3), horizon=3,
                    generator=torch.Generator().manual_seed(4)) for _ in range(2))
    torch.testing.assert_close(a["next_obs"], b["next_obs"])
    torch.testing.assert_close(a["rews"], b["rews"])


def test_a_model_env_is_an_env_for_the_sampler() -> None:
    env = gym.make("Pendulum-v1")
    model = DynamicsModel(env.observation_space, env.action_space, num_members=2, hidden=(8,))
    menv = ModelEnv(model, torch.randn(10, 3), env.observation_space, env.action_space, reward_fn=pendulum_reward,
                    max_episode_steps=7)
    pol = tk.RandomPol(env.observation_space, env.action_space)
    with tk.EpiSampler(menv, pol, seed=0) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_epis=2))
    assert traj.num_epi == 2 and traj.epi_lens.tolist() == [7, 7] and bool(traj.epi_col("truncated").all())
    with pytest.raises(ValueError, match="reward_fn, or a model built with learn_reward"):
        ModelEnv(model, torch.randn(10, 3), env.observation_space, env.action_space)


def test_mixed_batches_take_real_ratio_of_their_rows_from_real_data() -> None:
    def buf(value: float, n: int) -> tk.ReplayBuffer:
        epi = {"obs": torch.full((n, 3), value), "acs": torch.zeros(n, 1), "rews": torch.full((n,), value),
               "terminated": False, "truncated": True, "final_obs": torch.full((3,), value)}
        b = tk.ReplayBuffer(100)
        b.add(ef.add_next_obs(tk.Traj.from_epis([epi])))
        return b

    src = MixedSource(buf(1.0, 10), buf(0.0, 20), real_ratio=0.25)
    batch = src.random_batch(40, generator=0)
    assert float(batch["rews"].sum()) == 10.0 and batch["obs"].shape == (40, 3)
    assert src.num_step == 30 and set(src.keys()) == {"obs", "acs", "rews", "next_obs", "terminals"}
    with pytest.raises(ValueError, match="real_ratio"):
        MixedSource(buf(1.0, 2), buf(0.0, 2), real_ratio=1.5)
