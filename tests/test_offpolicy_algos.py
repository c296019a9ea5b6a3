"""Off-policy algorithms, exploration policies and a short SAC learning check."""

from __future__ import annotations

import copy
import time

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import trajkit as tk
from trajkit import ef, nets
from trajkit.algos import ddpg, dqn, qtopt, sac, td3
from trajkit.algos.common import polyak_tensors

OB = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
AC = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
DISC = gym.spaces.Discrete(3)


def transitions(n: int = 64, discrete: bool = False, seed: int = 0) -> tk.Traj:
    rng = np.random.default_rng(seed)
    acs = rng.integers(0, 3, n) if discrete else rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    epi = {"obs": rng.normal(size=(n, 3)).astype(np.float32), "acs": acs, "rews": rng.normal(size=n).astype(np.float32),
           "terminated": False, "truncated": True, "final_obs": rng.normal(size=3).astype(np.float32)}
    return ef.add_next_obs(tk.Traj.from_epis([epi, {**epi, "terminated": True, "truncated": False}]))


def sources(discrete: bool = False) -> list:
    traj = transitions(discrete=discrete)
    buf, per = tk.ReplayBuffer(1000), tk.PrioritizedReplayBuffer(1000)
    buf.add(traj)
    per.add(traj)
    return [traj, buf, per]


def qf(hidden: int = 16) -> tk.DeterministicSAVfunc:
    return tk.DeterministicSAVfunc(OB, AC, nets.mlp(5, 1, (hidden,), nn.ReLU))


def changed(before: list[torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, polyak_tensors(module), strict=True))


def snap(module: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in polyak_tensors(module)]


@pytest.mark.parametrize("src_i", [0, 1, 2])
def test_ddpg_trains_from_traj_or_buffer_and_moves_targets_by_tau(src_i):
    torch.manual_seed(0)
    src = sources()[src_i]
    pol = tk.DeterministicPol(OB, AC, nets.mlp(3, 2, (16,)))
    q = qf()
    tp, tq = copy.deepcopy(pol), copy.deepcopy(q)
    tq0 = snap(tq)
    pris0 = src.tree.leaves().copy() if isinstance(src, tk.PrioritizedReplayBuffer) else None
    res = ddpg.train(traj=src, pol=pol, qf=q, target_pol=tp, target_qf=tq, optim_pol=torch.optim.Adam(pol.parameters()),
                     optim_qf=torch.optim.Adam(q.parameters()), num_steps=1, batch_size=8, tau=0.1, generator=0)
    for t0, t, s in zip(tq0, polyak_tensors(tq), polyak_tensors(q), strict=True):
        assert torch.allclose(t, 0.9 * t0 + 0.1 * s, atol=1e-7)
    assert len(res.losses["qf_loss"]) == 1 and np.isfinite(res.diagnostics["q_mean"])
    if pris0 is not None:
        assert not np.array_equal(pris0, src.tree.leaves())


@pytest.mark.parametrize("src_i", [0, 2])
def test_td3_sac_qtopt_run_and_update(src_i):
    torch.manual_seed(0)
    src = sources()[src_i]
    q1, q2 = qf(), qf()
    # TD3
    pol = tk.DeterministicPol(OB, AC, nets.mlp(3, 2, (16,)))
    tp, t1, t2 = copy.deepcopy(pol), copy.deepcopy(q1), copy.deepcopy(q2)
    p0, tp0 = snap(pol), snap(tp)
    res = td3.train(traj=src, pol=pol, qf1=q1, qf2=q2, target_pol=tp, target_qf1=t1, target_qf2=t2,
                    optim_pol=torch.optim.Adam(pol.parameters()), optim_qf=torch.optim.Adam([*q1.parameters(),
                    *q2.parameters()]), num_steps=3, batch_size=8, policy_delay=2, generator=0)
    assert len(res.losses["qf_loss"]) == 3 and len(res.losses["pol_loss"]) == 2
    assert changed(p0, pol) and changed(tp0, tp)
    # SAC
    spol = tk.SquashedGaussianPol(OB, AC, nets.mlp(3, 4, (16,)))
    log_alpha = torch.zeros((), requires_grad=True)
    res = sac.train(traj=src, pol=spol, qf1=q1, qf2=q2, target_qf1=t1, target_qf2=t2, log_alpha=log_alpha,
                    optim_pol=torch.optim.Adam(spol.parameters()), optim_qf=torch.optim.Adam([*q1.parameters(),
                    *q2.parameters()]), optim_alpha=torch.optim.Adam([log_alpha], 0.1), num_steps=4, batch_size=8,
                    generator=0)
    assert len(res.losses["alpha"]) == 4 and float(log_alpha.detach()) != 0.0
    assert {"pol_loss", "qf_loss", "alpha_loss", "q1_mean", "ent"} <= set(res.losses)
    # QT-Opt
    c1, c2 = (tk.CEMDeterministicSAVfunc(OB, AC, nets.mlp(5, 1, (16,)), num_samples=8, num_elite=2) for _ in range(2))
    tc1, tc2 = copy.deepcopy(c1), copy.deepcopy(c2)
    c0 = snap(c1)
    res = qtopt.train(traj=src, qf1=c1, qf2=c2, target_qf1=tc1, target_qf2=tc2,
                      optim_qf=torch.optim.Adam([*c1.parameters(), *c2.parameters()]), num_steps=2, batch_size=8,
                      generator=0)
    assert changed(c0, c1) and len(res.losses["qf_loss"]) == 2


class SpyPrioritizedBuffer(tk.PrioritizedReplayBuffer):
    """Records the ``per_beta`` of every prioritized draw."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.per_betas: list[float] = []

    def sample(self, batch_size, per_beta, generator=None):
        self.per_betas.append(per_beta)
        return super().sample(batch_size, per_beta, generator)


def test_sac_honours_a_prioritized_buffer(monkeypatch):
    torch.manual_seed(0)
    buf = SpyPrioritizedBuffer(1000)
    buf.add(transitions())
    buf.update_pris(torch.arange(len(buf)), torch.linspace(0.1, 5.0, len(buf)))  # skewed: weights differ
    pris0 = buf.tree.leaves().copy()
    batches = []

    def spy_loss(*args, **kw):
        batches.append(args[6])
        return lf_sac(*args, **kw)

    lf_sac = sac.lf.sac
    monkeypatch.setattr(sac.lf, "sac", spy_loss)
    q1, q2 = qf(), qf()
    spol = tk.SquashedGaussianPol(OB, AC, nets.mlp(3, 4, (16,)))
    log_alpha = torch.zeros((), requires_grad=True)
    sac.train(traj=buf, pol=spol, qf1=q1, qf2=q2, target_qf1=copy.deepcopy(q1), target_qf2=copy.deepcopy(q2),
              log_alpha=log_alpha, optim_pol=torch.optim.Adam(spol.parameters()),
              optim_qf=torch.optim.Adam([*q1.parameters(), *q2.parameters()]), optim_alpha=None, num_steps=3,
              batch_size=8, generator=0)
    assert buf.per_betas == [0.4, 0.4, 0.4]  # the default importance exponent, as DDPG/TD3/DQN/QT-Opt
    assert all("weights" in b and "idx" in b for b in batches)
    assert float(batches[0]["weights"].min()) < 1.0  # importance weights reach the loss
    drawn = torch.cat([b["idx"] for b in batches]).unique().numpy()
    assert not np.allclose(pris0[drawn], buf.tree.leaves()[drawn])  # drawn steps got their |TD error|


@pytest.mark.parametrize("src_i", [0, 1, 2])
def test_dqn_with_dueling_heads(src_i):
    torch.manual_seed(0)
    src = sources(discrete=True)[src_i]
    q = tk.DiscreteQfunc(OB, DISC, nets.dueling_mlp(3, 3, (16, 16)))
    targ = copy.deepcopy(q)
    t0 = snap(targ)
    res = dqn.train(traj=src, qf=q, target_qf=targ, optim_qf=torch.optim.Adam(q.parameters()), num_steps=3,
                    batch_size=8, tau=1.0, target_update_interval=3, generator=0)
    assert len(res.losses["qf_loss"]) == 3
    assert changed(t0, targ)
    for a, b in zip(polyak_tensors(targ), polyak_tensors(q), strict=True):
        assert torch.equal(a, b)


def test_missing_column_is_a_clear_error():
    traj = transitions()
    bare = tk.Traj({k: traj[k] for k in ("obs", "acs", "rews")}, traj.epi, traj.bounds)
    q = tk.DiscreteQfunc(OB, DISC, nets.mlp(3, 3, (8,)))
    with pytest.raises(tk.MissingColumnError, match="add_next_obs"):
        dqn.train(traj=bare, qf=q, target_qf=copy.deepcopy(q), optim_qf=torch.optim.Adam(q.parameters()),
                  num_steps=1, batch_size=4)


# ------------------------------------------------------------------ policies and noise
def test_noise_pols_stay_in_bounds_and_use_the_given_generator():
    torch.manual_seed(0)
    pol = tk.DeterministicPol(OB, AC, nets.mlp(3, 2, (8,)))
    obs = torch.randn(4, 3)
    for noise in (tk.GaussianActionNoise(0.5), tk.OUActionNoise(sigma=0.5, dt=1.0)):
        npol = tk.DeterministicActionNoisePol(pol, noise)
        with torch.no_grad():  # as the sampler calls it
            a1, params = npol.act(obs, False, torch.Generator().manual_seed(1))
            npol.reset()
            a2, _ = npol.act(obs, False, torch.Generator().manual_seed(1))
            det, _ = npol.act(obs, True, None)
        assert torch.equal(a1, a2) and a1.shape == (4, 2) and float(a1.abs().max()) <= 1.0
        assert not torch.equal(a1, params["mean"])
        assert set(params) == set(npol.pd.param_names) == {"mean"}
        assert torch.equal(det, params["mean"])
        env_ac = npol.to_env_ac(a1[0].numpy())
        assert np.all(np.abs(env_ac) <= 2.0)


def test_ou_noise_is_correlated_and_resets_per_row():
    ou = tk.OUActionNoise(sigma=0.3, theta=0.15, dt=1.0)
    g = torch.Generator().manual_seed(0)
    xs = torch.stack([ou(torch.Size([2, 1]), g, torch.device("cpu")).clone() for _ in range(2000)])[:, 0, 0]
    lag1 = float(np.corrcoef(xs[:-1].numpy(), xs[1:].numpy())[0, 1])
    assert lag1 > 0.7  # 1 - theta = 0.85 for this process
    ou.reset([1])
    assert float(ou._x[1, 0]) == 0.0 and float(ou._x[0, 0]) != 0.0


def test_argmax_qf_pol_epsilon_greedy():
    torch.manual_seed(0)
    q = tk.DiscreteQfunc(OB, DISC, nets.mlp(3, 3, (8,)))
    pol = tk.ArgmaxQfPol(OB, DISC, q, epsilon=0.0)
    obs = torch.randn(500, 3)
    greedy = q(obs).argmax(-1)
    acs, params = pol.act(obs, False, torch.Generator().manual_seed(0))
    assert torch.equal(acs, greedy) and torch.equal(params["mean"].long(), greedy)
    pol.epsilon = 1.0
    acs, _ = pol.act(obs, False, torch.Generator().manual_seed(0))
    freq = np.bincount(acs.numpy(), minlength=3) / 500
    assert np.all(np.abs(freq - 1 / 3) < 0.08)
    assert torch.equal(pol.act(obs, True, None)[0], greedy)
    assert pol.to_env_ac(np.array(2)) == 2


def test_cem_finds_the_maximum_of_a_known_q():
    class Quad(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return -((x[:, 3:] - torch.tensor([0.3, -0.6])) ** 2).sum(-1, keepdim=True) + x[:, :1]

    cem = tk.CEMDeterministicSAVfunc(OB, AC, Quad(), num_samples=64, num_elite=6, num_iter=3)
    obs = torch.randn(10, 3)
    q, acs = cem.max(obs, torch.Generator().manual_seed(0))
    assert acs.shape == (10, 2) and float(acs.abs().max()) <= 1.0
    assert torch.allclose(acs, torch.tensor([[0.3, -0.6]]).expand(10, 2), atol=0.1)
    assert torch.allclose(q, obs[:, 0], atol=0.02)
    pol = tk.ArgmaxQfPol(OB, AC, cem, epsilon=0.5)
    a, _ = pol.act(obs, False, torch.Generator().manual_seed(0))
    assert a.shape == (10, 2) and float(a.abs().max()) <= 1.0


def test_squashed_gaussian_pol_acts_in_unit_box_and_rescales():
    torch.manual_seed(0)
    pol = tk.SquashedGaussianPol(OB, AC, nets.mlp(3, 4, (8,)))
    with torch.no_grad():
        acs, params = pol.act(torch.randn(256, 3) * 100, False, torch.Generator().manual_seed(0))
        assert float(acs.abs().max()) <= 1.0 and set(params) == {"mean", "log_std"}  # tanh may round to 1
        params = pol(torch.randn(256, 3))
    assert np.allclose(pol.to_env_ac(np.array([1.0, -1.0])), [2.0, -2.0])
    a, llh = pol.pd.rsample_with_llh(params, torch.Generator().manual_seed(1))
    assert torch.allclose(pol.pd.llh(a, params), llh, atol=1e-3)


# ------------------------------------------------------------------ learning
def _sac_pendulum(steps: int, batch_size: int, seed: int = 0) -> tuple[float, float]:
    """Mean deterministic return of SAC after ``steps`` env steps, and a random policy's."""
    env = tk.GymEnv("Pendulum-v1")
    ob, ac = env.observation_space, env.action_space
    torch.manual_seed(seed)
    mk = lambda i, o: nets.mlp(i, o, (64, 64), nn.ReLU, orthogonal=False)  # noqa: E731
    pol = tk.SquashedGaussianPol(ob, ac, mk(3, 2))
    q1, q2 = tk.DeterministicSAVfunc(ob, ac, mk(4, 1)), tk.DeterministicSAVfunc(ob, ac, mk(4, 1))
    t1, t2 = copy.deepcopy(q1), copy.deepcopy(q2)
    log_alpha = torch.zeros((), requires_grad=True)
    kw = dict(pol=pol, qf1=q1, qf2=q2, target_qf1=t1, target_qf2=t2, log_alpha=log_alpha,
              optim_pol=torch.optim.Adam(pol.parameters(), 1e-3),
              optim_qf=torch.optim.Adam([*q1.parameters(), *q2.parameters()], 1e-3),
              optim_alpha=torch.optim.Adam([log_alpha], 1e-3))
    buf = tk.ReplayBuffer(steps)
    g = torch.Generator().manual_seed(seed)
    with tk.EpiSampler(env, pol, seed=seed) as sampler:
        for _ in range(steps // 200):
            traj = tk.Traj.from_epis(sampler.sample(pol, max_steps=200))
            buf.add(traj)
            sac.train(traj=buf, num_steps=200, batch_size=batch_size, generator=g, **kw)
    trained = float(np.mean(tk.evaluate("Pendulum-v1", pol, num_epis=5, seed=123)))
    random = float(np.mean(tk.evaluate("Pendulum-v1", tk.RandomPol(ob, ac), num_epis=5, seed=123,
                                       deterministic=False)))
    return trained, random


@pytest.mark.learning  # trains to a score threshold (about 12 s)
def test_short_sac_run_beats_random_on_pendulum():
    t = time.time()
    trained, random = _sac_pendulum(3000, 64)
    assert trained > random + 300, (trained, random, time.time() - t)


@pytest.mark.slow
def test_sac_run_solves_pendulum():
    trained, random = _sac_pendulum(8000, 256)
    assert trained > -300, (trained, random)
