"""Loss functions (``trajkit.lf``): hand computations and per-sample gradient contributions."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import trajkit as tk
from trajkit import lf, pds

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
B = 8


def gaussian_pol(seed: int = 0) -> tk.GaussianPol:
    torch.manual_seed(seed)
    return tk.GaussianPol(OBS, BOX, tk.nets.mlp(3, 2, hidden=(16,), out_gain=1.0), log_std_init=-0.3)


def fresh_batch(pol: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch as the sampler would store it for ``pol``: actions and the behaviour params."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(B, 3, generator=g)
    with torch.no_grad():
        acs, params = pol.act(obs, generator=g)
    batch = {"obs": obs, "acs": acs, **{k: v.clone() for k, v in params.items()}}
    batch["advs"] = torch.randn(B, generator=g)
    batch["rets"] = torch.randn(B, generator=g)
    batch["vs"] = batch["rets"] + 0.5 * torch.randn(B, generator=g)
    return batch


def flat_grad(loss: torch.Tensor, module: nn.Module) -> torch.Tensor:
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])


POLICY_LOSSES = {
    "pg_clip": lambda pol, b: lf.pg_clip(pol, b, clip_param=0.2),
    "pg_kl": lambda pol, b: lf.pg_kl(pol, b, kl_coef=1.0),
    "pg": lambda pol, b: lf.pg(pol, b),
    "surrogate": lambda pol, b: lf.surrogate(pol, b),
}


# ---------------------------------------------------------------------- every sample contributes
@pytest.mark.parametrize("name", list(POLICY_LOSSES))
def test_every_sample_contributes_to_the_policy_gradient(name):
    pol = gaussian_pol()
    batch = fresh_batch(pol)
    obs = batch["obs"].clone().requires_grad_()
    loss, _ = POLICY_LOSSES[name](pol, {**batch, "obs": obs})
    (g_obs,) = torch.autograd.grad(loss, obs)
    assert bool((g_obs.abs().sum(-1) > 0).all()), f"rows without gradient: {g_obs.abs().sum(-1)}"
    base = flat_grad(POLICY_LOSSES[name](pol, batch)[0], pol)
    for i in range(B):
        advs = batch["advs"].clone()
        advs[i] += 1.0
        moved = flat_grad(POLICY_LOSSES[name](pol, {**batch, "advs": advs})[0], pol)
        assert not torch.allclose(moved, base), f"sample {i}'s advantage does not reach the gradient"


def test_every_sample_contributes_to_the_value_gradient():
    vf = tk.DeterministicSVfunc(OBS, tk.nets.mlp(3, 1, hidden=(16,)))
    batch = fresh_batch(gaussian_pol())
    obs = batch["obs"].clone().requires_grad_()
    loss, _ = lf.monte_carlo(vf, {**batch, "obs": obs})
    (g_obs,) = torch.autograd.grad(loss, obs)
    assert bool((g_obs.abs().sum(-1) > 0).all())
    base = flat_grad(lf.monte_carlo(vf, batch)[0], vf)
    for i in range(B):
        rets = batch["rets"].clone()
        rets[i] += 1.0
        assert not torch.allclose(flat_grad(lf.monte_carlo(vf, {**batch, "rets": rets})[0], vf), base)


# ---------------------------------------------------------------------- hand computations
class LinearGaussianPol(nn.Module):
    """``mean = w * obs[:, 0]`` (one action dim), fixed ``log_std``: params easy to write by hand."""

    def __init__(self, w: float, log_std: float) -> None:
        super().__init__()
        self.pd = pds.GaussianPd()
        self.w = nn.Parameter(torch.tensor(w))
        self.log_std = log_std

    def forward(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        mean = (self.w * obs[:, 0])[:, None]
        return {"mean": mean, "log_std": torch.full_like(mean, self.log_std)}


def normal_logpdf(x: float, mean: float, log_std: float) -> float:
    return -0.5 * ((x - mean) / math.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi)


def tiny_pg_batch() -> tuple[dict[str, torch.Tensor], LinearGaussianPol, list[float]]:
    """Four samples; the new policy's mean moved so that ratios land inside and outside [0.8, 1.2]."""
    obs = [1.0, -1.0, 0.5, 2.0]
    acs = [0.3, -0.8, 0.9, 0.1]
    old_means = [0.2, -0.5, 0.4, 0.6]
    advs = [1.0, -2.0, 0.5, -1.0]
    batch = {
        "obs": torch.tensor(obs)[:, None],
        "acs": torch.tensor(acs)[:, None],
        "mean": torch.tensor(old_means)[:, None],
        "log_std": torch.zeros(4, 1),
        "advs": torch.tensor(advs),
    }
    pol = LinearGaussianPol(w=0.5, log_std=0.0)
    ratios = [
        math.exp(normal_logpdf(a, 0.5 * o, 0.0) - normal_logpdf(a, m, 0.0))
        for o, a, m in zip(obs, acs, old_means, strict=True)
    ]
    return batch, pol, ratios


def test_pg_clip_matches_a_hand_computation():
    batch, pol, ratios = tiny_pg_batch()
    advs = batch["advs"].tolist()
    clip = 0.2
    assert any(abs(r - 1) > clip for r in ratios) and any(abs(r - 1) <= clip for r in ratios)
    surr = [min(r * a, min(max(r, 1 - clip), 1 + clip) * a) for r, a in zip(ratios, advs, strict=True)]
    ent = 0.5 * math.log(2 * math.pi * math.e)  # log_std = 0
    loss, info = lf.pg_clip(pol, batch, clip, ent_coef=0.1)
    assert loss.item() == pytest.approx(-np.mean(surr) - 0.1 * ent, rel=1e-5)
    assert float(info["clip_frac"]) == pytest.approx(np.mean([abs(r - 1) > clip for r in ratios]))
    assert float(info["ent"]) == pytest.approx(ent, rel=1e-6)
    # d loss / d w by hand: only unclipped terms (where r*A is the min) carry the ratio's gradient
    grad = 0.0
    for o, a, r, adv in zip(
        batch["obs"][:, 0].tolist(), batch["acs"][:, 0].tolist(), ratios, advs, strict=True
    ):
        clipped = min(max(r, 1 - clip), 1 + clip)
        if r * adv <= clipped * adv:
            grad += -adv * r * (a - 0.5 * o) * o / 4  # d r / d w = r * (a - w o) * o
    (g,) = torch.autograd.grad(loss, pol.w)
    assert float(g) == pytest.approx(grad, rel=1e-5)


def test_pg_and_pg_kl_match_hand_computations():
    batch, pol, ratios = tiny_pg_batch()
    advs = batch["advs"].tolist()
    llhs = [
        normal_logpdf(a, 0.5 * o, 0.0)
        for o, a in zip(batch["obs"][:, 0].tolist(), batch["acs"][:, 0].tolist(), strict=True)
    ]
    loss, _ = lf.pg(pol, batch)
    assert loss.item() == pytest.approx(-np.mean([l * a for l, a in zip(llhs, advs, strict=True)]), rel=1e-5)
    kls = [
        (0.5 * o - m) ** 2 / 2
        for o, m in zip(batch["obs"][:, 0].tolist(), batch["mean"][:, 0].tolist(), strict=True)
    ]  # equal unit variances
    loss, info = lf.pg_kl(pol, batch, kl_coef=2.0)
    expected = -np.mean([r * a for r, a in zip(ratios, advs, strict=True)]) + 2.0 * np.mean(kls)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert float(info["kl"]) == pytest.approx(np.mean(kls), rel=1e-5)


class TableVf(nn.Module):
    """A value function that returns its own parameter vector (one value per batch row)."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values = nn.Parameter(torch.tensor(values))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.values


def test_monte_carlo_without_and_with_clipping_matches_hand_computation():
    values, rets, old = [1.0, 0.0, 2.5, -1.0], [0.5, 1.0, 1.0, -3.0], [1.2, 0.6, 1.5, -1.1]
    batch = {"obs": torch.zeros(4, 1), "rets": torch.tensor(rets), "vs": torch.tensor(old)}
    vf = TableVf(values)
    loss, _ = lf.monte_carlo(vf, batch)
    assert loss.item() == pytest.approx(
        0.5 * np.mean([(v - r) ** 2 for v, r in zip(values, rets, strict=True)])
    )
    c = 0.3
    per_sample = []
    for v, r, o in zip(values, rets, old, strict=True):
        v_clip = o + min(max(v - o, -c), c)
        per_sample.append(max((v - r) ** 2, (v_clip - r) ** 2))
    loss, _ = lf.monte_carlo(vf, batch, clip_param=c)
    assert loss.item() == pytest.approx(0.5 * np.mean(per_sample), rel=1e-6)
    # gradient by hand: the unclipped branch gives (v - r) / B, a clipped branch inside its clip gives 0
    (g,) = torch.autograd.grad(loss, vf.values)
    expected = []
    for v, r, o in zip(values, rets, old, strict=True):
        v_clip = o + min(max(v - o, -c), c)
        unclipped_wins = (v - r) ** 2 >= (v_clip - r) ** 2
        expected.append((v - r) / 4 if unclipped_wins else (v_clip - r) / 4 * (abs(v - o) < c))
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-5, atol=1e-7)


def test_monte_carlo_with_a_b_by_1_value_head_is_not_broadcast():
    """A raw ``(B, 1)`` value net (which ``ef.compute_vs`` accepts) must not broadcast to ``(B, B)``."""
    net = tk.nets.mlp(3, 1, hidden=(8,))
    batch = fresh_batch(gaussian_pol())
    expected = 0.5 * (net(batch["obs"]).squeeze(-1) - batch["rets"]).pow(2).mean()
    loss, _ = lf.monte_carlo(net, batch)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    clipped, _ = lf.monte_carlo(net, batch, clip_param=0.1)
    assert clipped.shape == () and clipped.item() >= loss.item()
