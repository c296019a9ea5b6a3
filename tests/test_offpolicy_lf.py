"""Off-policy losses against hand-computed references on tiny batches, and the Polyak helper."""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from trajkit import lf
from trajkit.algos.common import polyak_tensors, polyak_update
from trajkit.pols import DeterministicPol, SquashedGaussianPol
from trajkit.vfuncs import DeterministicSAVfunc, DiscreteQfunc

OB = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
AC = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
B = 5


def qfunc(seed: int) -> DeterministicSAVfunc:
    torch.manual_seed(seed)
    return DeterministicSAVfunc(OB, AC, nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1)))


def batch(seed: int = 0, weights: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {
        "obs": torch.randn(B, 3, generator=g),
        "acs": torch.rand(B, 2, generator=g) * 2 - 1,
        "rews": torch.randn(B, generator=g),
        "next_obs": torch.randn(B, 3, generator=g),
        "terminals": torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0]),
    }
    if weights:
        out["weights"] = torch.rand(B, generator=g) + 0.1
    return out


def grads(module: nn.Module | list[torch.Tensor]) -> list[torch.Tensor | None]:
    ps = list(module.parameters()) if isinstance(module, nn.Module) else module
    return [None if p.grad is None else p.grad.clone() for p in ps]


def zero(*mods: nn.Module) -> None:
    for m in mods:
        for p in m.parameters():
            p.grad = None


@pytest.mark.parametrize("weights", [False, True])
def test_bellman_matches_reference(weights):
    torch.manual_seed(0)
    pol = DeterministicPol(OB, AC, nn.Linear(3, 2))
    qf, target_qf, target_pol = qfunc(1), qfunc(2), copy.deepcopy(pol)
    b = batch(weights=weights)
    loss, info = lf.bellman(qf, target_qf, target_pol, b, gamma=0.9)
    w = b["weights"] if weights else torch.ones(B)
    ref = 0.0
    for i in range(B):
        a2 = torch.tanh(target_pol.net(b["next_obs"][i : i + 1]))
        y = b["rews"][i] + 0.9 * (1 - b["terminals"][i]) * target_qf(b["next_obs"][i : i + 1], a2)[0]
        td = y - qf(b["obs"][i : i + 1], b["acs"][i : i + 1])[0]
        ref = ref + 0.5 * w[i] * td**2 / B
        assert torch.allclose(info["td_errors"][i], td.detach(), atol=1e-6)
    assert torch.allclose(loss, ref, atol=1e-6)


def test_clipped_double_bellman_and_target_smoothing():
    qf1, qf2, t1, t2 = qfunc(1), qfunc(2), qfunc(3), qfunc(4)
    b = batch(1)
    next_acs = torch.rand(B, 2) * 2 - 1
    loss, info = lf.clipped_double_bellman(qf1, qf2, t1, t2, next_acs, b, gamma=0.5)
    y = b["rews"] + 0.5 * (1 - b["terminals"]) * torch.min(t1(b["next_obs"], next_acs), t2(b["next_obs"], next_acs))
    ref = 0.5 * ((qf1(b["obs"], b["acs"]) - y) ** 2).mean() + 0.5 * ((qf2(b["obs"], b["acs"]) - y) ** 2).mean()
    assert torch.allclose(loss, ref, atol=1e-6)

    torch.manual_seed(0)
    pol = DeterministicPol(OB, AC, nn.Linear(3, 2))
    mu = torch.tanh(pol.net(b["next_obs"])).detach()
    g = torch.Generator().manual_seed(3)
    smooth = lf.target_smoothing(pol, b["next_obs"], noise_std=10.0, noise_clip=0.3, generator=g)
    noise = torch.randn(B, 2, generator=torch.Generator().manual_seed(3)) * 10.0
    assert torch.allclose(smooth, (mu + noise.clamp(-0.3, 0.3)).clamp(-1, 1), atol=1e-6)
    assert float((smooth - mu).abs().max()) <= 0.3 + 1e-6


def test_ag_uses_the_whole_batch_and_leaves_the_critic_alone():
    torch.manual_seed(0)
    pol = DeterministicPol(OB, AC, nn.Linear(3, 2))
    qf = qfunc(1)
    b = batch(2)
    b["obs"].requires_grad_(True)
    loss, _ = lf.ag(pol, qf, b)
    ref = -torch.stack([qf(b["obs"][i : i + 1], torch.tanh(pol.net(b["obs"][i : i + 1])))[0] for i in range(B)]).mean()
    assert torch.allclose(loss, ref, atol=1e-6)
    loss.backward()
    assert all(p.grad is None for p in qf.parameters())
    assert all(p.grad is not None for p in pol.parameters())
    # every sample contributes to the gradient
    assert bool((b["obs"].grad.abs().sum(1) > 0).all())
    assert all(p.requires_grad for p in qf.parameters())  # restored


def _sac_setup():
    torch.manual_seed(0)
    pol = SquashedGaussianPol(OB, AC, nn.Linear(3, 4))
    qf1, qf2, t1, t2 = qfunc(1), qfunc(2), qfunc(3), qfunc(4)
    log_alpha = torch.tensor(-0.3, requires_grad=True)
    return pol, qf1, qf2, t1, t2, log_alpha, batch(3, weights=True)


def _sac_reference(pol, qf1, qf2, t1, t2, log_alpha, b, gamma, target_ent, seed):
    """SAC's three losses written out with the textbook (unstable) tanh log-det."""
    g = torch.Generator().manual_seed(seed)

    def sample(obs):
        out = pol.net(obs)
        mean, log_std = out[:, :2], out[:, 2:].clamp(-20, 2)
        eps = torch.randn(mean.shape, generator=g)
        u = mean + log_std.exp() * eps
        logp = (-0.5 * eps**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - torch.log(1 - torch.tanh(u) ** 2).sum(-1)
        return torch.tanh(u), logp

    a, logp = sample(b["obs"])
    a2, logp2 = sample(b["next_obs"])
    alpha = log_alpha.exp().detach()
    y = (b["rews"] + gamma * (1 - b["terminals"]) * (torch.min(t1(b["next_obs"], a2), t2(b["next_obs"], a2))
                                                      - alpha * logp2)).detach()
    w = b["weights"]
    qf_loss = sum(0.5 * (w * (q(b["obs"], b["acs"]) - y) ** 2).mean() for q in (qf1, qf2))
    pol_loss = (alpha * logp - torch.min(qf1(b["obs"], a), qf2(b["obs"], a))).mean()
    alpha_loss = -(log_alpha * (logp.detach() + target_ent)).mean()
    return qf_loss, pol_loss, alpha_loss


def test_sac_matches_reference_and_each_part_gets_only_its_gradient():
    pol, qf1, qf2, t1, t2, log_alpha, b = _sac_setup()
    loss, info = lf.sac(pol, qf1, qf2, t1, t2, log_alpha, b, 0.9, -2.0, torch.Generator().manual_seed(7))
    qf_ref, pol_ref, alpha_ref = _sac_reference(pol, qf1, qf2, t1, t2, log_alpha, b, 0.9, -2.0, 7)
    assert torch.allclose(info["qf_loss"], qf_ref, atol=1e-5)
    assert torch.allclose(info["pol_loss"], pol_ref, atol=1e-5)
    assert torch.allclose(info["alpha_loss"], alpha_ref, atol=1e-5)
    assert torch.allclose(loss, qf_ref + pol_ref + alpha_ref, atol=1e-5)

    loss.backward()
    got = grads(qf1) + grads(qf2), grads(pol), log_alpha.grad.clone()
    zero(pol, qf1, qf2)
    log_alpha.grad = None
    qf_ref.backward(retain_graph=True)
    want_q = grads(qf1) + grads(qf2)
    zero(pol, qf1, qf2)
    pol_ref.backward(retain_graph=True)
    want_pol = grads(pol)
    alpha_ref.backward()
    for x, y in zip(got[0], want_q, strict=True):
        assert torch.allclose(x, y, atol=1e-5)
    for x, y in zip(got[1], want_pol, strict=True):
        assert torch.allclose(x, y, atol=1e-5)
    assert torch.allclose(got[2], log_alpha.grad, atol=1e-6)
    assert all(p.grad is None for p in t1.parameters())


def test_dqn_loss_double_and_plain():
    ob = gym.spaces.Box(-1, 1, (3,), np.float32)
    ac = gym.spaces.Discrete(4)
    torch.manual_seed(0)
    qf, targ = DiscreteQfunc(ob, ac, nn.Linear(3, 4)), DiscreteQfunc(ob, ac, nn.Linear(3, 4))
    b = batch(4, weights=True)
    b["acs"] = torch.tensor([0, 3, 1, 2, 1])
    for double in (True, False):
        for huber in (True, False):
            loss, info = lf.dqn(qf, targ, b, 0.9, double=double, huber=huber)
            q_next = targ(b["next_obs"])
            if double:
                nq = q_next.gather(1, qf(b["next_obs"]).argmax(1, keepdim=True)).squeeze(1)
            else:
                nq = q_next.max(1).values
            y = b["rews"] + 0.9 * (1 - b["terminals"]) * nq
            q = qf(b["obs"])[torch.arange(B), b["acs"]]
            d = q - y
            per = torch.where(d.abs() < 1, 0.5 * d**2, d.abs() - 0.5) if huber else 0.5 * d**2
            assert torch.allclose(loss, (per * b["weights"]).mean(), atol=1e-6)
            assert torch.allclose(info["td_errors"], -d.detach(), atol=1e-6)


def test_nstep_columns_are_used():
    torch.manual_seed(0)
    pol = DeterministicPol(OB, AC, nn.Linear(3, 2))
    qf, target_qf = qfunc(1), qfunc(2)
    b = batch(5)
    b.update(nstep_rets=torch.randn(B), nstep_next_obs=torch.randn(B, 3), nstep_discounts=torch.rand(B))
    loss, _ = lf.bellman(qf, target_qf, pol, b, 0.9, nstep=True)
    next_obs = b["nstep_next_obs"]
    y = b["nstep_rets"] + b["nstep_discounts"] * target_qf(next_obs, torch.tanh(pol.net(next_obs)))
    assert torch.allclose(loss, 0.5 * ((qf(b["obs"], b["acs"]) - y) ** 2).mean(), atol=1e-6)


@pytest.mark.parametrize("tau", [0.0, 0.005, 0.3, 1.0])
def test_polyak_moves_targets_by_exactly_tau(tau):
    src = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    targ = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    with torch.no_grad():
        src[1].running_mean.uniform_()
    before = [t.clone() for t in polyak_tensors(targ)]
    polyak_update(targ, src, tau)
    for b0, t, s in zip(before, polyak_tensors(targ), polyak_tensors(src), strict=True):
        assert torch.allclose(t, (1 - tau) * b0 + tau * s, atol=1e-7, rtol=0)
    assert targ[1].num_batches_tracked.dtype == torch.int64  # integer buffers untouched
    with pytest.raises(ValueError):
        polyak_update(targ, src, 1.5)
