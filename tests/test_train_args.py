"""Every train() refuses bad arguments at the call, before any work, with an error naming them.

Covers hyper-parameters out of range (epoch <= 0, negative clip, fractional or zero
batch size, negative num_steps, NaN/inf, gamma/tau/per_beta outside [0, 1], max_kl <= 0),
an empty Traj, and value/Q-functions whose output is not one value per sample.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from epi_factories import make_epis
from torch import nn

import trajkit as tk
from trajkit import ef, nets
from trajkit.algos import ddpg, dqn, ppo_clip, ppo_kl, qtopt, sac, td3, trpo, vpg

OB = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
AC = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DISC = gym.spaces.Discrete(3)


# ------------------------------------------------------------------ valid calls per algorithm
def on_policy_traj(lens: tuple[int, ...] = (5, 4)) -> tk.Traj:
    vf = tk.DeterministicSVfunc(OB, nets.mlp(3, 1, (8,)))
    traj = tk.Traj.from_epis(make_epis(list(lens), [True, False][: len(lens)], gaussian_params=True))
    traj = ef.compute_vs(traj, vf)
    traj = ef.compute_rets(traj, 0.99)
    return ef.compute_advs(traj, 0.99, 0.95)


def empty_like(traj: tk.Traj) -> tk.Traj:
    """A Traj with the same step columns and no steps."""
    return tk.Traj({k: v[:0] for k, v in traj.data.items()}, {}, torch.tensor([0]))


def on_policy_kwargs(algo: Any, vf: nn.Module | None = None) -> dict[str, Any]:
    torch.manual_seed(0)
    pol = tk.GaussianPol(OB, AC, nets.mlp(3, 2, (8,)))
    vf = vf if vf is not None else tk.DeterministicSVfunc(OB, nets.mlp(3, 1, (8,)))
    kw: dict[str, Any] = dict(traj=on_policy_traj(), pol=pol, vf=vf, optim_vf=torch.optim.Adam(vf.parameters()))
    if algo is not trpo:
        kw["optim_pol"] = torch.optim.Adam(pol.parameters())
    if algo in (ppo_clip, ppo_kl):
        kw.update(epoch=1, batch_size=4)
    return kw


def transitions(discrete: bool = False) -> tk.Traj:
    rng = np.random.default_rng(0)
    n = 16
    acs = rng.integers(0, 3, n) if discrete else rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    epi = {"obs": rng.normal(size=(n, 3)).astype(np.float32), "acs": acs, "rews": rng.normal(size=n).astype(np.float32),
           "terminated": True, "truncated": False, "final_obs": np.zeros(3, np.float32)}
    return ef.add_next_obs(tk.Traj.from_epis([epi]))


def qf(out: int = 1) -> tk.DeterministicSAVfunc:
    return tk.DeterministicSAVfunc(OB, AC, nets.mlp(5, out, (8,)))


def twin_optim(*modules: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam([p for m in modules for p in m.parameters()])


def off_policy_kwargs(algo: Any) -> dict[str, Any]:
    torch.manual_seed(0)
    kw: dict[str, Any] = dict(num_steps=1, batch_size=4, generator=0)
    if algo is dqn:
        q = tk.DiscreteQfunc(OB, DISC, nets.mlp(3, 3, (8,)))
        return dict(kw, traj=transitions(True), qf=q, target_qf=copy.deepcopy(q), optim_qf=twin_optim(q))
    q1, q2 = qf(), qf()
    twins = dict(qf1=q1, qf2=q2, target_qf1=copy.deepcopy(q1), target_qf2=copy.deepcopy(q2),
                 optim_qf=twin_optim(q1, q2))
    if algo is qtopt:
        c1, c2 = (tk.CEMDeterministicSAVfunc(OB, AC, nets.mlp(5, 1, (8,)), num_samples=8, num_elite=2) for _ in "12")
        return dict(kw, traj=transitions(), qf1=c1, qf2=c2, target_qf1=copy.deepcopy(c1), target_qf2=copy.deepcopy(c2),
                    optim_qf=twin_optim(c1, c2))
    if algo is sac:
        pol = tk.SquashedGaussianPol(OB, AC, nets.mlp(3, 4, (8,)))
        log_alpha = torch.zeros((), requires_grad=True)
        return dict(kw, **twins, traj=transitions(), pol=pol, log_alpha=log_alpha,
                    optim_pol=torch.optim.Adam(pol.parameters()), optim_alpha=torch.optim.Adam([log_alpha]))
    pol = tk.DeterministicPol(OB, AC, nets.mlp(3, 2, (8,)))
    actor = dict(traj=transitions(), pol=pol, target_pol=copy.deepcopy(pol),
                 optim_pol=torch.optim.Adam(pol.parameters()))
    if algo is td3:
        return dict(kw, **twins, **actor)
    return dict(kw, **actor, qf=q1, target_qf=copy.deepcopy(q1), optim_qf=twin_optim(q1))


def kwargs_for(algo: Any) -> dict[str, Any]:
    return on_policy_kwargs(algo) if algo in (ppo_clip, ppo_kl, trpo, vpg) else off_policy_kwargs(algo)


ALGOS = [ppo_clip, ppo_kl, trpo, vpg, sac, td3, ddpg, dqn, qtopt]
ALGO_IDS = [a.__name__.rsplit(".", 1)[-1] for a in ALGOS]


@pytest.mark.parametrize("algo", ALGOS, ids=ALGO_IDS)
def test_the_valid_call_trains(algo):
    result = algo.train(**kwargs_for(algo))
    assert result.losses


# ------------------------------------------------------------------ bad hyper-parameters
NAN, INF = math.nan, math.inf
BAD: list[tuple[Any, str, object, type[Exception]]] = [
    (ppo_clip, "epoch", 0, ValueError),
    (ppo_clip, "epoch", -1, ValueError),
    (ppo_clip, "batch_size", 16.5, TypeError),
    (ppo_clip, "clip_param", -0.1, ValueError),
    (ppo_clip, "clip_param", NAN, ValueError),
    (ppo_clip, "ent_coef", INF, ValueError),
    (ppo_clip, "max_grad_norm", 0.0, ValueError),
    (ppo_clip, "max_grad_norm", NAN, ValueError),
    (ppo_clip, "target_kl", -0.01, ValueError),
    (ppo_clip, "vf_clip_param", -1.0, ValueError),
    (ppo_kl, "epoch", 0, ValueError),
    (ppo_kl, "target_kl", 0.0, ValueError),
    (ppo_kl, "kl_coef", NAN, ValueError),
    (trpo, "max_kl", 0.0, ValueError),
    (trpo, "max_kl", -0.01, ValueError),
    (trpo, "max_kl", NAN, ValueError),
    (trpo, "cg_iters", 0, ValueError),
    (trpo, "cg_damping", INF, ValueError),
    (trpo, "backtrack_steps", 0, ValueError),
    (trpo, "vf_epoch", 0, ValueError),
    (vpg, "vf_batch_size", 16.5, TypeError),
    (vpg, "vf_epoch", -2, ValueError),
    (vpg, "ent_coef", NAN, ValueError),
    (sac, "num_steps", -1, ValueError),
    (sac, "batch_size", 0, ValueError),
    (sac, "gamma", 1.5, ValueError),
    (sac, "tau", -0.1, ValueError),
    (sac, "target_ent", NAN, ValueError),
    (sac, "per_beta", 2.0, ValueError),
    (td3, "policy_delay", 0, ValueError),
    (td3, "target_noise", -0.2, ValueError),
    (td3, "gamma", NAN, ValueError),
    (ddpg, "tau", 1.5, ValueError),
    (ddpg, "batch_size", 16.5, TypeError),
    (ddpg, "num_steps", 2.5, TypeError),
    (dqn, "target_update_interval", 0, ValueError),
    (dqn, "max_grad_norm", -1.0, ValueError),
    (dqn, "gamma", -0.1, ValueError),
    (qtopt, "num_steps", -1, ValueError),
    (qtopt, "tau", INF, ValueError),
]


def _snapshot(kw: dict[str, Any]) -> list[torch.Tensor]:
    return [p.detach().clone() for v in kw.values() if isinstance(v, nn.Module) for p in v.parameters()]


@pytest.mark.parametrize(
    ("algo", "name", "value", "error"), BAD, ids=[f"{a.__name__.rsplit('.', 1)[-1]}-{n}={v}" for a, n, v, _ in BAD]
)
def test_a_bad_hyper_parameter_is_refused_before_any_work(algo, name, value, error):
    kw = kwargs_for(algo)
    before = _snapshot(kw)
    with pytest.raises(error, match=name):
        algo.train(**{**kw, name: value})
    assert all(torch.equal(a, b) for a, b in zip(before, _snapshot(kw), strict=True))


def test_log_alpha_must_be_a_scalar():
    kw = off_policy_kwargs(sac)
    with pytest.raises(ValueError, match=r"log_alpha must be a 0-dim tensor .*\(1,\)"):
        sac.train(**{**kw, "log_alpha": torch.zeros(1, requires_grad=True)})


# ------------------------------------------------------------------ empty Traj
@pytest.mark.parametrize("algo", ALGOS, ids=ALGO_IDS)
def test_an_empty_traj_is_a_clear_error(algo):
    kw = kwargs_for(algo)
    with pytest.raises(ValueError, match="no steps"):
        algo.train(**{**kw, "traj": empty_like(kw["traj"])})


def test_an_empty_buffer_is_a_clear_error():
    kw = off_policy_kwargs(ddpg)
    with pytest.raises(ValueError, match="no steps"):
        ddpg.train(**{**kw, "traj": tk.ReplayBuffer(10)})


def test_something_that_is_not_a_batch_source():
    kw = off_policy_kwargs(dqn)
    with pytest.raises(TypeError, match="Traj or a replay buffer.*dict"):
        dqn.train(**{**kw, "traj": {"obs": torch.zeros(3, 3)}})


# ------------------------------------------------------------------ value / Q heads of the wrong shape
class TwoHeads(nn.Module):
    """A value function returning ``(B, 2)``: never one value per sample."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, 2)

    def forward(self, obs: torch.Tensor, acs: torch.Tensor | None = None) -> torch.Tensor:
        x = obs if acs is None else torch.cat([obs, acs], -1)
        return self.lin(x.float())


@pytest.mark.parametrize("algo", [ppo_clip, ppo_kl, trpo, vpg], ids=["ppo_clip", "ppo_kl", "trpo", "vpg"])
def test_a_value_function_with_two_outputs_is_named(algo):
    kw = on_policy_kwargs(algo, vf=TwoHeads(3))
    with pytest.raises(ValueError, match=r"value function must return one value per sample.*got \(\d+, 2\)"):
        algo.train(**kw)


@pytest.mark.parametrize("algo", [ddpg, td3, sac], ids=["ddpg", "td3", "sac"])
def test_a_q_function_with_two_outputs_is_named(algo):
    kw = off_policy_kwargs(algo)
    bad: Callable[[], nn.Module] = lambda: TwoHeads(5)  # noqa: E731
    swap = {"qf": bad()} if algo is ddpg else {"qf1": bad(), "target_qf1": bad()}
    with pytest.raises(ValueError, match=r"qf1? must return one value per sample.*got \(4, 2\)"):
        algo.train(**{**kw, **swap})


def test_a_discrete_q_function_with_a_flat_output_is_named():
    kw = off_policy_kwargs(dqn)
    flat = TwoHeads(3)
    flat.forward = lambda obs, acs=None: torch.zeros(obs.shape[0])  # type: ignore[method-assign]
    with pytest.raises(ValueError, match=r"qf must return \(4, num_actions\) Q-values, got shape \(4,\)"):
        dqn.train(**{**kw, "target_qf": flat})


# ------------------------------------------------------------------ one vocabulary
def test_train_arguments_use_one_vocabulary():
    """Target networks are target_*, coefficients *_coef, prioritized exponents per_* (docs/concepts.md)."""
    import inspect

    from trajkit import lf

    retired = {"targ_pol", "targ_qf", "targ_qf1", "targ_qf2", "ent_beta", "kl_beta", "kl_targ", "alpha", "beta"}
    functions = [a.train for a in ALGOS] + [getattr(lf, n) for n in ("pg_clip", "pg_kl", "pg", "bellman", "sac", "dqn")]
    functions += [tk.PrioritizedReplayBuffer.__init__, tk.PrioritizedReplayBuffer.sample]
    for fn in functions:
        names = set(inspect.signature(fn).parameters)
        assert not names & retired, (fn.__qualname__, names & retired)
    params = {n for a in ALGOS for n in inspect.signature(a.train).parameters}
    vocabulary = {"target_pol", "target_qf", "target_qf1", "target_qf2", "ent_coef", "kl_coef", "target_kl", "per_beta"}
    assert vocabulary <= params
    assert "per_alpha" in inspect.signature(tk.PrioritizedReplayBuffer).parameters
