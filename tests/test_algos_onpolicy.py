"""On-policy algorithms on a fixed batch: each update lowers its loss; TRPO keeps its trust region."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit import ef, lf
from trajkit.algos import ppo_clip, ppo_kl, trpo, vpg

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DISCRETE = gym.spaces.Discrete(3)


def make_pol(kind: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    if kind == "gaussian":
        return tk.GaussianPol(OBS, BOX, tk.nets.mlp(3, 2, hidden=(16,), out_gain=0.5))
    return tk.CategoricalPol(OBS, DISCRETE, tk.nets.mlp(3, 3, hidden=(16,), out_gain=0.5))


def make_vf(seed: int = 0) -> tk.DeterministicSVfunc:
    torch.manual_seed(seed)
    return tk.DeterministicSVfunc(OBS, tk.nets.mlp(3, 1, hidden=(16,)))


def fixed_traj(pol: torch.nn.Module, vf: torch.nn.Module, seed: int = 0) -> tk.Traj:
    """Episodes acted by ``pol``, its params stored as a sampler does; rewards favour some actions."""
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    epis = []
    for t_len, term in zip([30, 1, 17, 40, 12], [True, False, True, False, False], strict=True):
        obs = torch.as_tensor(rng.normal(size=(t_len, 3)), dtype=torch.float32)
        with torch.no_grad():
            acs, params = pol.act(obs, generator=g)
        signal = acs.float().reshape(t_len, -1).sum(-1)
        rews = (signal * obs[:, 0] + 0.1 * torch.randn(t_len, generator=g)).numpy()
        epis.append(
            {
                "obs": obs.numpy(),
                "acs": acs.numpy(),
                "rews": rews,
                **{k: v.numpy() for k, v in params.items()},
                "terminated": term,
                "truncated": not term,
                "final_obs": rng.normal(size=3).astype(np.float32),
            }
        )
    traj = tk.Traj.from_epis(epis)
    traj = ef.compute_vs(traj, vf)
    traj = ef.compute_rets(traj, 0.99)
    traj = ef.compute_advs(traj, 0.99, 0.95)
    return ef.centerize_advs(traj)


def full_loss(fn, module, traj: tk.Traj, **kw) -> float:
    with torch.no_grad():
        return float(fn(module, traj.full_batch(), **kw)[0])


def mean_kl(pol: torch.nn.Module, traj: tk.Traj) -> float:
    """KL(behaviour || current) over the whole Traj, measured independently of the algorithm."""
    full = traj.full_batch()
    with torch.no_grad():
        return float(pol.pd.kl_pq(lf.old_params(pol, full), pol(full["obs"])).mean())


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_ppo_clip_lowers_its_losses(kind):
    pol, vf = make_pol(kind), make_vf()
    traj = fixed_traj(pol, vf)
    before = full_loss(lf.pg_clip, pol, traj, clip_param=0.2), full_loss(lf.monte_carlo, vf, traj)
    result = ppo_clip.train(
        traj=traj,
        pol=pol,
        vf=vf,
        optim_pol=torch.optim.Adam(pol.parameters(), 3e-3),
        optim_vf=torch.optim.Adam(vf.parameters(), 3e-3),
        epoch=5,
        batch_size=16,
        clip_param=0.2,
        generator=0,
    )
    after = full_loss(lf.pg_clip, pol, traj, clip_param=0.2), full_loss(lf.monte_carlo, vf, traj)
    assert after[0] < before[0] and after[1] < before[1]
    assert len(result.losses["pol_loss"]) == len(result.losses["vf_loss"]) == 5
    assert {"kl", "ent", "clip_frac", "explained_var"} <= set(result.diagnostics)
    assert mean_kl(pol, traj) > 0


def test_ppo_kl_lowers_its_loss_and_adapts_the_coefficient():
    pol, vf = make_pol("gaussian"), make_vf()
    traj = fixed_traj(pol, vf)
    before = full_loss(lf.pg_kl, pol, traj, kl_coef=1.0), full_loss(lf.monte_carlo, vf, traj)
    result = ppo_kl.train(
        traj=traj,
        pol=pol,
        vf=vf,
        optim_pol=torch.optim.Adam(pol.parameters(), 3e-3),
        optim_vf=torch.optim.Adam(vf.parameters(), 3e-3),
        epoch=5,
        batch_size=16,
        kl_coef=1.0,
        target_kl=0.01,
        generator=0,
    )
    after = full_loss(lf.pg_kl, pol, traj, kl_coef=1.0), full_loss(lf.monte_carlo, vf, traj)
    assert after[0] < before[0] and after[1] < before[1]
    kl = mean_kl(pol, traj)
    assert result.diagnostics["kl"] == pytest.approx(kl, rel=1e-5)
    expected_beta = 2.0 if kl > 0.015 else (0.5 if kl < 0.01 / 1.5 else 1.0)
    assert result.diagnostics["kl_coef"] == expected_beta


def test_vpg_lowers_its_losses():
    pol, vf = make_pol("gaussian"), make_vf()
    traj = fixed_traj(pol, vf)
    before = full_loss(lf.pg, pol, traj), full_loss(lf.monte_carlo, vf, traj)
    result = vpg.train(
        traj=traj,
        pol=pol,
        vf=vf,
        optim_pol=torch.optim.Adam(pol.parameters(), 1e-2),
        optim_vf=torch.optim.Adam(vf.parameters(), 3e-3),
        vf_epoch=5,
        vf_batch_size=32,
        generator=0,
    )
    after = full_loss(lf.pg, pol, traj), full_loss(lf.monte_carlo, vf, traj)
    assert after[0] < before[0] and after[1] < before[1]
    assert result.diagnostics["kl"] == pytest.approx(mean_kl(pol, traj), rel=1e-5)


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
@pytest.mark.parametrize("max_kl", [0.01, 0.001])
def test_trpo_lowers_the_surrogate_within_max_kl(kind, max_kl):
    pol, vf = make_pol(kind), make_vf()
    traj = fixed_traj(pol, vf)
    before = full_loss(lf.surrogate, pol, traj), full_loss(lf.monte_carlo, vf, traj)
    result = trpo.train(
        traj=traj,
        pol=pol,
        vf=vf,
        optim_vf=torch.optim.Adam(vf.parameters(), 3e-3),
        max_kl=max_kl,
        vf_epoch=3,
        vf_batch_size=32,
        generator=0,
    )
    after = full_loss(lf.surrogate, pol, traj), full_loss(lf.monte_carlo, vf, traj)
    assert result.diagnostics["step_frac"] > 0, "no step accepted on an easy batch"
    assert after[0] < before[0] and after[1] < before[1]
    kl = mean_kl(pol, traj)
    assert 0 < kl <= max_kl * (1 + 1e-4)
    assert result.diagnostics["kl"] == pytest.approx(kl, rel=1e-4)
    assert result.losses["pol_loss"] == pytest.approx([before[0], after[0]], rel=1e-5)


def test_conjugate_gradient_solves_a_small_spd_system():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    x = trpo.conjugate_gradient(lambda v: a @ v, b, iters=20)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-6, atol=1e-8)


def test_ppo_clip_target_kl_stops_after_the_first_epoch_that_exceeds_it():
    pol, vf = make_pol("gaussian"), make_vf()
    traj = fixed_traj(pol, vf)
    result = ppo_clip.train(
        traj=traj,
        pol=pol,
        vf=vf,
        optim_pol=torch.optim.Adam(pol.parameters(), 1e-2),
        optim_vf=torch.optim.Adam(vf.parameters(), 1e-3),
        epoch=10,
        batch_size=16,
        target_kl=1e-9,
        generator=0,
    )
    assert result.diagnostics["epochs_run"] == 1.0
    assert len(result.losses["pol_loss"]) == 1 and result.losses["kl"][0] > 1e-9
