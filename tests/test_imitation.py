"""Imitation (behaviour cloning, DAgger, teacher distillation): losses against hand computations,
argument errors, expert data files, and a behaviour-cloning smoke test."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit import lf
from trajkit.algos import behavior_clone, dagger, on_pol_teacher_distill
from trajkit.expert_data import as_expert_traj

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DISC = gym.spaces.Discrete(3)


def obs_batch(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))


def gaussian(seed: int = 0) -> tk.GaussianPol:
    torch.manual_seed(seed)
    return tk.GaussianPol(OBS, BOX, tk.nets.mlp(3, 2, hidden=(8,), out_gain=1.0), log_std_init=-0.5)


def test_bc_llh_matches_hand_computed_gaussian_nll() -> None:
    pol = gaussian()
    obs = obs_batch()
    acs = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))
    loss, _ = lf.bc_llh(pol, {"obs": obs, "acs": acs})
    with torch.no_grad():
        mean, std = pol.net(obs), math.exp(-0.5)
    hand = sum(0.5 * ((a - m) / std) ** 2 + math.log(std) + 0.5 * math.log(2 * math.pi)
               for row_a, row_m in zip(acs.tolist(), mean.tolist(), strict=True)
               for a, m in zip(row_a, row_m, strict=True)) / 6
    assert float(loss.detach()) == pytest.approx(hand, rel=1e-5)


def test_bc_llh_matches_hand_computed_categorical_nll() -> None:
    torch.manual_seed(0)
    pol = tk.CategoricalPol(OBS, DISC, tk.nets.mlp(3, 3, hidden=(8,), out_gain=1.0))
    obs, acs = obs_batch(), torch.tensor([0, 1, 2, 2, 1, 0])
    loss, _ = lf.bc_llh(pol, {"obs": obs, "acs": acs})
    with torch.no_grad():
        logits = pol.net(obs).tolist()
    hand = 0.0
    for row, a in zip(logits, acs.tolist(), strict=True):
        hand += -(row[a] - math.log(sum(math.exp(x) for x in row)))
    assert float(loss.detach()) == pytest.approx(hand / 6, rel=1e-5)


def test_bc_mse_matches_hand_computed_squared_error() -> None:
    torch.manual_seed(0)
    pol = tk.DeterministicPol(OBS, BOX, tk.nets.mlp(3, 2, hidden=(8,)))
    obs = obs_batch()
    acs = torch.rand(6, 2, generator=torch.Generator().manual_seed(2)) * 2 - 1
    loss, _ = lf.bc_mse(pol, {"obs": obs, "acs": acs})
    with torch.no_grad():
        pred = [[math.tanh(x) for x in row] for row in pol.net(obs).tolist()]
    hand = sum((p - a) ** 2 for rp, ra in zip(pred, acs.tolist(), strict=True)
               for p, a in zip(rp, ra, strict=True)) / 6
    assert float(loss.detach()) == pytest.approx(hand, rel=1e-5)


def test_distill_kl_matches_hand_computed_gaussian_kl() -> None:
    student, teacher = gaussian(0), gaussian(1)
    obs = obs_batch()
    batch = on_pol_teacher_distill.add_teacher_params(tk.Traj({"obs": obs}, {}, torch.tensor([0, 6])), teacher)
    loss, _ = lf.distill_kl(student, batch.full_batch())
    with torch.no_grad():
        mt, ms = teacher.net(obs), student.net(obs)
    st = ss = math.exp(-0.5)  # both log_std -0.5
    hand = sum(math.log(ss / st) + (st**2 + (a - b) ** 2) / (2 * ss**2) - 0.5
               for ra, rb in zip(mt.tolist(), ms.tolist(), strict=True)
               for a, b in zip(ra, rb, strict=True)) / 6
    assert float(loss.detach()) == pytest.approx(hand, rel=1e-5)
    assert float(lf.distill_kl(teacher, batch.full_batch())[0].detach()) == pytest.approx(0.0, abs=1e-6)


def test_bc_loss_choice_and_clear_errors() -> None:
    torch.manual_seed(0)
    cat = tk.CategoricalPol(OBS, DISC, tk.nets.mlp(3, 3, hidden=(8,)))
    det = tk.DeterministicPol(OBS, BOX, tk.nets.mlp(3, 2, hidden=(8,)))
    assert behavior_clone.bc_loss(cat) is lf.bc_llh
    assert behavior_clone.bc_loss(det) is lf.bc_mse
    assert behavior_clone.bc_loss(gaussian(), "mse") is lf.bc_mse
    with pytest.raises(ValueError, match="no log-likelihood"):
        behavior_clone.bc_loss(det, "llh")
    with pytest.raises(ValueError, match="discrete actions"):
        behavior_clone.bc_loss(cat, "mse")
    with pytest.raises(ValueError, match="loss must be one of"):
        behavior_clone.bc_loss(cat, "l2")
    with pytest.raises(ValueError, match="no trainable parameters"):
        behavior_clone.bc_loss(tk.RandomPol(OBS, DISC))
    with pytest.raises(TypeError, match="Traj or the path"):
        as_expert_traj(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'acs'"):
        as_expert_traj(tk.Traj({"obs": obs_batch()}, {}, torch.tensor([0, 6])))
    with pytest.raises(ValueError, match="same kind of distribution"):
        on_pol_teacher_distill.check_pair(cat, gaussian())


def _cartpole_expert(obs: torch.Tensor) -> torch.Tensor:
    """A hand-written CartPole controller: push towards where the pole falls."""
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).long()


def test_record_epis_keeps_terminations_and_round_trips_through_a_file(tmp_path) -> None:  # noqa: ANN001
    pol = tk.RandomPol(gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2))
    env = lambda: tk.GymEnv(gym.make("CartPole-v1", max_episode_steps=20))  # noqa: E731
    traj = tk.record_epis(env, pol, 6, seed=3, path=tmp_path / "expert.npz")
    assert traj.num_epi == 6
    assert bool((traj.epi["terminated"] ^ traj.epi["truncated"]).all())
    assert bool(traj.epi["truncated"].any()) and bool(traj.epi["terminated"].any())
    back = as_expert_traj(tmp_path / "expert.npz")
    assert torch.equal(back.bounds, traj.bounds)
    for k in traj.keys():
        assert back[k].dtype == traj[k].dtype and torch.equal(back[k], traj[k])
    for k in ("terminated", "truncated", "final_obs"):
        assert torch.equal(back.epi[k], traj.epi[k])


def test_dagger_label_uses_the_expert_and_aggregates() -> None:
    obs = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    traj = tk.Traj({"obs": obs, "acs": torch.zeros(10, dtype=torch.long), "rews": torch.ones(10)},
                   {}, torch.tensor([0, 4, 10]))
    labelled = dagger.label(traj, _cartpole_expert)
    assert labelled.keys() == ["obs", "acs"]
    assert torch.equal(labelled["acs"], _cartpole_expert(obs))
    assert dagger.aggregate(dagger.aggregate(None, labelled), labelled).num_step == 20
    with pytest.raises(ValueError, match="one action per observation"):
        dagger.label(traj, lambda o: torch.zeros(3))
    with pytest.raises(TypeError, match="policy or a callable"):
        dagger.expert_actions(5, obs)  # type: ignore[arg-type]


def test_behavior_clone_learns_a_hand_written_controller() -> None:
    """Smoke test: BC of a rule on random states reaches high accuracy, and the held-out loss drops."""
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(600, 4, generator=g)
    expert = tk.Traj({"obs": obs, "acs": _cartpole_expert(obs)}, {}, torch.tensor([0, 200, 400, 500, 600]))
    train, val = behavior_clone.split_epis(expert, 1)
    torch.manual_seed(0)
    pol = tk.CategoricalPol.for_env((gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2)))
    before = behavior_clone.evaluate_loss(traj=val, pol=pol)
    result = behavior_clone.train(traj=train, pol=pol, optim_pol=torch.optim.Adam(pol.parameters(), 3e-3),
                                  epoch=30, batch_size=64, generator=0)
    after = behavior_clone.evaluate_loss(traj=val, pol=pol)
    assert len(result.losses["bc_loss"]) == 30 and after < 0.5 * before
    with torch.no_grad():
        acc = (pol.act(val["obs"], deterministic=True)[0] == val["acs"]).float().mean()
    assert float(acc) > 0.9


def test_behavior_clone_trains_a_recurrent_policy_on_whole_episodes() -> None:
    torch.manual_seed(0)
    ob, ac = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2)
    pol = tk.CategoricalPol(ob, ac, tk.nets.gru(4, 2, core_size=8, head=()))
    obs = torch.randn(40, 4, generator=torch.Generator().manual_seed(1))
    expert = tk.Traj({"obs": obs, "acs": _cartpole_expert(obs), "hs": torch.zeros(40, 99)}, {},
                     torch.tensor([0, 10, 25, 40]))  # an expert's own "hs" must be ignored
    before = behavior_clone.evaluate_loss(traj=expert, pol=pol)
    behavior_clone.train(traj=expert, pol=pol, optim_pol=torch.optim.Adam(pol.parameters(), 1e-2), epoch=20,
                         batch_size=20, generator=0)
    assert behavior_clone.evaluate_loss(traj=expert, pol=pol) < before


def test_distill_moves_the_student_to_the_teacher() -> None:
    student, teacher = gaussian(0), gaussian(1)
    traj = tk.Traj({"obs": obs_batch(64)}, {}, torch.tensor([0, 32, 64]))
    result = on_pol_teacher_distill.train(traj=traj, student=student, teacher=teacher,
                                          optim=torch.optim.Adam(student.parameters(), 1e-2), epoch=40,
                                          batch_size=16, generator=0)
    kl = result.losses["kl"]
    assert kl[-1] < 0.1 * kl[0]
