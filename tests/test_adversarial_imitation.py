"""Adversarial imitation and DIAYN: losses against hand computations, pure pseudo-reward estimators, train() calls."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from trajkit import ef, lf, pds
from trajkit.algos import airl, diayn, gail
from trajkit.algos.reward_source import RewardSource
from trajkit.discrims import AIRLDiscrim, SADiscrim, SkillDiscrim, StateReward, ac_features, gail_rews
from trajkit.traj import MissingColumnError, Traj

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DISC = gym.spaces.Discrete(3)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def linear(in_dim: int, weight: list[float], bias: float = 0.0) -> nn.Linear:
    lin = nn.Linear(in_dim, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([weight]))
        lin.bias.fill_(bias)
    return lin


def make_traj(n_epis: int = 2, length: int = 4, ac_space: gym.Space = BOX, seed: int = 0,
              obs_dim: int = 3) -> Traj:
    g = np.random.default_rng(seed)
    epis = []
    for e in range(n_epis):
        acs = (g.integers(0, 3, length) if isinstance(ac_space, gym.spaces.Discrete)
               else g.uniform(-1, 1, (length, 2)).astype(np.float32))
        epis.append({"obs": g.normal(size=(length, obs_dim)).astype(np.float32), "acs": acs,
                     "rews": g.normal(size=length).astype(np.float32), "terminated": e == 0, "truncated": e != 0,
                     "final_obs": g.normal(size=obs_dim).astype(np.float32), "sampler_cut": False})
    return Traj.from_epis(epis)


# ---------------------------------------------------------------------------- losses vs hand computations
def test_discrim_bce_by_hand() -> None:
    le, la = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 1.0, 3.0])
    want = (-(math.log(sigmoid(0.0)) + math.log(sigmoid(2.0))) / 2
            - (math.log(1 - sigmoid(-1.0)) + math.log(1 - sigmoid(1.0)) + math.log(1 - sigmoid(3.0))) / 3)
    assert float(lf.discrim_bce(le, la)) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match=r"logits must be \(B,\)"):
        lf.discrim_bce(le.reshape(2, 1), la)


def test_gradient_penalty_of_a_linear_function_is_its_slope_norm() -> None:
    # f(x) = 3 x0 + 4 x1: the gradient is (3, 4) everywhere, norm 5, penalty (5 - 1)^2 = 16
    fn = linear(2, [3.0, 4.0], 0.5)
    xe, xa = torch.randn(5, 2), torch.randn(5, 2)
    gp = lf.gradient_penalty(lambda x: fn(x).squeeze(-1), xe, xa, torch.Generator().manual_seed(0))
    assert float(gp.detach()) == pytest.approx(16.0, rel=1e-6)
    gp.backward()  # the penalty's graph reaches the weights: d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    assert torch.allclose(fn.weight.grad, torch.tensor([[2 * 4 * 3 / 5, 2 * 4 * 4 / 5]]))
    with pytest.raises(ValueError, match="both be"):
        lf.gradient_penalty(fn, xe, xa[:3])


def test_gradient_penalty_interpolates_between_the_two_sides() -> None:
    # f(x) = x0^2 / 2 has gradient x0: the penalty is (|x0^| - 1)^2 at x^ = u xe + (1 - u) xa
    xe, xa = torch.tensor([[3.0]]), torch.tensor([[1.0]])
    gp = lf.gradient_penalty(lambda x: 0.5 * x[:, 0] ** 2, xe, xa, torch.Generator().manual_seed(1))
    u = float(torch.rand(1, 1, generator=torch.Generator().manual_seed(1)))
    assert float(gp.detach()) == pytest.approx((u * 3 + (1 - u) * 1 - 1) ** 2, rel=1e-6)


def test_gail_discrim_loss_is_bce_plus_weighted_penalty() -> None:
    torch.manual_seed(0)
    d = SADiscrim(OBS, BOX, hidden=(8,))
    e, a = make_traj(seed=1).full_batch(), make_traj(seed=2).full_batch()
    loss0, info0 = lf.gail_discrim(d, e, a, gp_coef=0.0)
    want_bce = lf.discrim_bce(d(e["obs"], e["acs"]), d(a["obs"], a["acs"]))
    assert float(loss0.detach()) == pytest.approx(float(want_bce.detach()), rel=1e-6)
    assert float(info0["gp"]) == 0.0
    loss, info = lf.gail_discrim(d, e, a, gp_coef=10.0, generator=torch.Generator().manual_seed(3))
    gp = lf.gradient_penalty(d.from_features, d.features(e["obs"], e["acs"]), d.features(a["obs"], a["acs"]),
                             torch.Generator().manual_seed(3))
    assert float(loss.detach()) == pytest.approx(float((want_bce + 10.0 * gp).detach()), rel=1e-5)
    le, la = d(e["obs"], e["acs"]), d(a["obs"], a["acs"])
    assert float(info["expert_acc"]) == pytest.approx(float((le > 0).float().mean()))
    assert float(info["agent_acc"]) == pytest.approx(float((la < 0).float().mean()))


class FixedGaussianPol(nn.Module):
    """A policy stub: N(mean=0.5, std=exp(-0.2)) for every state, per action dimension."""

    def __init__(self) -> None:
        super().__init__()
        self.pd = pds.GaussianPd()

    def forward(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mean": torch.full((len(obs), 2), 0.5), "log_std": torch.full((len(obs), 2), -0.2)}


def test_airl_logits_by_hand() -> None:
    gamma = 0.9
    d = AIRLDiscrim(OBS, gamma, hidden=(4,))
    d.g.net = linear(3, [1.0, -2.0, 0.5], 0.1)
    d.h.net = linear(3, [0.3, 0.0, -1.0], -0.2)
    obs, next_obs = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]]), torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    acs = torch.tensor([[0.0, 1.0], [0.5, -0.5]])
    terminals = torch.tensor([0.0, 1.0])
    batch = {"obs": obs, "acs": acs, "next_obs": next_obs, "terminals": terminals}

    def g(s: list[float]) -> float:
        return s[0] - 2 * s[1] + 0.5 * s[2] + 0.1

    def h(s: list[float]) -> float:
        return 0.3 * s[0] - s[2] - 0.2

    def log_pi(a: list[float]) -> float:
        std = math.exp(-0.2)
        return sum(-0.5 * ((x - 0.5) / std) ** 2 + 0.2 - 0.5 * math.log(2 * math.pi) for x in a)

    want = []
    for i in range(2):
        s, s2, a = obs[i].tolist(), next_obs[i].tolist(), acs[i].tolist()
        f = g(s) + gamma * (1 - float(terminals[i])) * h(s2) - h(s)
        want.append(f - log_pi(a))
    got = lf.airl_logits(d, FixedGaussianPol(), batch)  # type: ignore[arg-type]
    assert torch.allclose(got, torch.tensor(want), atol=1e-5)
    assert torch.allclose(d.pseudo_rews(batch, "f"), torch.tensor(want) + torch.tensor([log_pi(a) for a in
                                                                                          acs.tolist()]), atol=1e-5)
    assert torch.allclose(d.pseudo_rews(batch, "g"), torch.tensor([g(s) for s in obs.tolist()]), atol=1e-6)
    loss, info = lf.airl_discrim(d, FixedGaussianPol(), batch, batch)  # type: ignore[arg-type]
    assert float(loss.detach()) == pytest.approx(float(lf.discrim_bce(got, got).detach()), rel=1e-6)
    assert float(info["g_expert"]) == pytest.approx(np.mean([g(s) for s in obs.tolist()]), rel=1e-5)


def test_diayn_rews_by_hand() -> None:
    logits = torch.tensor([[1.0, 0.0, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    skills = torch.tensor([3, 1])
    z = [math.exp(1.0) + 1 + math.exp(-1.0) + math.exp(2.0), 4.0]
    want = [2.0 - math.log(z[0]) + math.log(4), 0.0 - math.log(z[1]) + math.log(4)]
    assert torch.allclose(lf.diayn_rews(logits, skills), torch.tensor(want), atol=1e-6)
    assert float(lf.diayn_rews(logits, skills)[1]) == pytest.approx(0.0, abs=1e-6)  # uniform q: no information
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        lf.diayn_rews(logits, skills[:1])


def test_diayn_discrim_is_cross_entropy_of_the_skill_in_next_obs() -> None:
    k = 3
    d = SkillDiscrim(gym.spaces.Box(-1, 1, (2 + k,)), k, hidden=(4,))
    next_obs = torch.tensor([[0.1, 0.2, 0, 1, 0], [0.3, -0.4, 0, 0, 1]], dtype=torch.float32)
    loss, info = lf.diayn_discrim(d, {"next_obs": next_obs})
    logp = torch.log_softmax(d.net(next_obs[:, :2]), -1)
    assert float(loss.detach()) == pytest.approx(float(-(logp[0, 1] + logp[1, 2]).detach() / 2), rel=1e-6)
    assert float(info["skill_acc"]) == pytest.approx(float((logp.argmax(-1) == torch.tensor([1, 2])).float().mean()))


def test_gail_rews_kinds() -> None:
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.allclose(gail_rews(x, "gail"), torch.tensor([-math.log(1 - sigmoid(v)) for v in x.tolist()]))
    assert torch.allclose(gail_rews(x, "log_d"), torch.tensor([math.log(sigmoid(v)) for v in x.tolist()]))
    assert torch.equal(gail_rews(x, "logit"), x)
    with pytest.raises(ValueError, match="kind must be one of"):
        gail_rews(x, "gial")


def test_ac_features_one_hot_for_discrete() -> None:
    assert torch.equal(ac_features(DISC, torch.tensor([2, 0])), torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    assert ac_features(BOX, torch.ones(4, 2)).shape == (4, 2)


# ---------------------------------------------------------------------------- estimators: pure, shaped as documented
def test_compute_pseudo_rews_is_pure_and_keeps_env_rews() -> None:
    torch.manual_seed(0)
    traj = make_traj(ac_space=DISC)
    before = {k: v.clone() for k, v in traj.data.items()}
    d = SADiscrim(OBS, DISC, hidden=(8,))
    out = ef.compute_pseudo_rews(traj, d, kind="gail")
    for k, v in before.items():
        assert torch.equal(traj[k], v)  # the input is unchanged
    assert "env_rews" not in traj.data
    with torch.no_grad():
        want = torch.nn.functional.softplus(d(traj["obs"], traj["acs"]))
    assert out["rews"].shape == (traj.num_step,)
    assert torch.allclose(out["rews"], want)
    assert torch.equal(out["env_rews"], traj["rews"])
    assert out["obs"] is traj["obs"]  # untouched columns are shared
    again = ef.compute_pseudo_rews(out, d, kind="log_d")
    assert torch.equal(again["env_rews"], traj["rews"])  # the env's rewards survive a second call
    assert bool((again["rews"] < 0).all()) and bool((out["rews"] > 0).all())


def test_compute_pseudo_rews_airl_needs_next_obs() -> None:
    traj = make_traj()
    d = AIRLDiscrim(OBS, 0.99, hidden=(4,))
    with pytest.raises(MissingColumnError, match="add_next_obs"):
        ef.compute_pseudo_rews(traj, d, kind="f")
    t2 = ef.add_next_obs(traj)
    out = ef.compute_pseudo_rews(t2, d, kind="f")
    with torch.no_grad():
        f = d.f(t2["obs"], t2["next_obs"], t2["terminals"])
    assert torch.allclose(out["rews"], f)
    # the terminal step of the terminated episode has no potential after it: f = g(s) - h(s)
    last = int(t2.bounds[1]) - 1
    with torch.no_grad():
        assert float(out["rews"][last]) == pytest.approx(float(d.g(t2["obs"][last:last + 1]) - d.h(
            t2["obs"][last:last + 1])), rel=1e-5)
    assert torch.allclose(ef.compute_pseudo_rews(traj, d, kind="g")["rews"], d.g(traj["obs"]).detach())


def test_compute_diayn_rews_is_pure_and_uses_the_reached_state() -> None:
    k = 4
    traj = ef.add_next_obs(make_traj(obs_dim=2 + k))
    before = traj["rews"].clone()
    d = SkillDiscrim(gym.spaces.Box(-np.inf, np.inf, (2 + k,)), k, hidden=(8,))
    out = ef.compute_diayn_rews(traj, d)
    assert torch.equal(traj["rews"], before)
    with torch.no_grad():
        nxt = traj["next_obs"]
        want = torch.log_softmax(d.net(nxt[:, :2]), -1).gather(-1, nxt[:, 2:].argmax(-1, keepdim=True)).squeeze(-1)
    assert torch.allclose(out["rews"], want + math.log(k), atol=1e-6)
    with pytest.raises(MissingColumnError, match="next_obs"):
        ef.compute_diayn_rews(make_traj(obs_dim=2 + k), d)


def test_reward_source_rewards_each_batch_with_the_current_model() -> None:
    traj = make_traj()
    r = StateReward(OBS, hidden=(4,))
    src = RewardSource(traj, r, "reward")
    batch = src.random_batch(5, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(batch["rews"], r(batch["obs"]))
    assert "env_rews" in src.keys() and src.num_step == traj.num_step
    with pytest.raises(TypeError, match="pseudo_rews"):
        RewardSource(traj, object(), "gail")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- train() functions
def _separable(ac_space: gym.Space, shift: float, seed: int) -> Traj:
    t = make_traj(n_epis=4, length=16, ac_space=ac_space, seed=seed)
    return t.with_columns(obs=t["obs"] + shift)


def test_gail_train_separates_expert_from_agent() -> None:
    torch.manual_seed(0)
    d = SADiscrim(OBS, DISC, hidden=(16,))
    opt = torch.optim.Adam(d.parameters(), 1e-2)
    res = gail.train(expert=_separable(DISC, 2.0, 0), agent=_separable(DISC, -2.0, 1), discrim=d, optim_discrim=opt,
                     num_steps=60, batch_size=32, gp_coef=1.0, generator=0)
    assert len(res.losses["discrim_loss"]) == 60
    assert res.losses["discrim_loss"][-1] < res.losses["discrim_loss"][0]
    assert res.losses["expert_acc"][-1] == 1.0 and res.losses["agent_acc"][-1] == 1.0


def test_gail_train_checks_its_inputs() -> None:
    d = SADiscrim(OBS, BOX)
    opt = torch.optim.Adam(d.parameters())
    t = make_traj()
    with pytest.raises(TypeError, match="expert must be a Traj"):
        gail.train(expert=[1, 2], agent=t, discrim=d, optim_discrim=opt, num_steps=1, batch_size=4)  # type: ignore
    with pytest.raises(ValueError, match="gp_coef"):
        gail.train(expert=t, agent=t, discrim=d, optim_discrim=opt, num_steps=1, batch_size=4, gp_coef=-1.0)
    no_acs = Traj({k: v for k, v in t.data.items() if k != "acs"}, t.epi, t.bounds)
    with pytest.raises(MissingColumnError, match="acs"):
        gail.train(expert=no_acs, agent=t, discrim=d, optim_discrim=opt, num_steps=1, batch_size=4)


def test_airl_train_raises_expert_logits_and_needs_transitions() -> None:
    torch.manual_seed(0)
    d = AIRLDiscrim(OBS, 0.99, hidden=(16,))
    opt = torch.optim.Adam(d.parameters(), 1e-2)
    expert, agent = ef.add_next_obs(_separable(BOX, 2.0, 0)), ef.add_next_obs(_separable(BOX, -2.0, 1))
    res = airl.train(expert=expert, agent=agent, discrim=d, pol=FixedGaussianPol(), optim_discrim=opt,  # type: ignore
                     num_steps=60, batch_size=32, generator=0)
    assert res.losses["discrim_loss"][-1] < res.losses["discrim_loss"][0]
    assert res.diagnostics["g_expert"] > res.diagnostics["g_agent"]
    with pytest.raises(MissingColumnError, match="next_obs"):
        airl.train(expert=_separable(BOX, 2.0, 0), agent=agent, discrim=d, pol=FixedGaussianPol(),  # type: ignore
                   optim_discrim=opt, num_steps=1, batch_size=4)


def test_diayn_train_learns_skills_that_are_apart() -> None:
    k = 3
    g = torch.Generator().manual_seed(0)
    skills = torch.randint(0, k, (300,), generator=g)
    state = torch.randn(300, 2, generator=g) * 0.3 + torch.stack([skills.float() * 2, -skills.float()], -1)
    obs = torch.cat([state, torch.nn.functional.one_hot(skills, k).float()], -1)
    traj = Traj({"obs": obs, "acs": torch.zeros(300, 1), "rews": torch.zeros(300), "next_obs": obs},
                {"terminated": torch.tensor([False]), "truncated": torch.tensor([True])}, torch.tensor([0, 300]))
    torch.manual_seed(0)
    d = SkillDiscrim(gym.spaces.Box(-np.inf, np.inf, (2 + k,)), k, hidden=(16,))
    res = diayn.train(traj=traj, discrim=d, optim_discrim=torch.optim.Adam(d.parameters(), 1e-2), num_steps=100,
                      batch_size=64, generator=0)
    assert res.diagnostics["skill_acc"] > 0.8 and res.losses["skill_acc"][-1] > 0.95
    rews = ef.compute_diayn_rews(traj, d)["rews"]
    assert float(rews.mean()) > 0.5 * math.log(k)  # a confident q(z|s) earns close to log K
