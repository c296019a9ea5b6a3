"""Dynamics models and their training: batched ensembles, normalization in the state_dict, episode boundaries."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import trajkit as tk
from trajkit import ef
from trajkit.algos import dynamics
from trajkit.models import DynamicsModel, GaussianDynamicsModel
from trajkit.traj import MissingColumnError

OB = gym.spaces.Box(-10.0, 10.0, (2,))
AC = gym.spaces.Box(-1.0, 1.0, (1,))


def _traj(lens: list[int], seed: int = 0) -> tk.Traj:
    """Episodes of ``next = obs + [ac, 0.5]`` from far-apart starts (an across-boundary pair would jump by ~100)."""
    g = torch.Generator().manual_seed(seed)
    epis = []
    for e, n in enumerate(lens):
        acs = torch.rand(n, 1, generator=g) * 2 - 1
        obs = torch.zeros(n + 1, 2)
        obs[0] = torch.tensor([100.0 * e, -100.0 * e])
        for t in range(n):
            obs[t + 1] = obs[t] + torch.cat([acs[t], torch.tensor([0.5])])
        epis.append({"obs": obs[:-1].numpy(), "acs": acs.numpy(), "rews": (-obs[:-1, 0].abs()).numpy(),
                     "terminated": e % 2 == 0, "truncated": e % 2 == 1, "final_obs": obs[-1].numpy()})
    return tk.Traj.from_epis(epis)


@pytest.mark.parametrize("cls", [DynamicsModel, GaussianDynamicsModel])
def test_the_ensemble_forward_equals_each_member_forward(cls: type[DynamicsModel]) -> None:
    torch.manual_seed(0)
    model = cls(OB, AC, num_members=5, hidden=(16, 16), learn_reward=True)
    model.fit_normalization(torch.randn(50, 3) * 3 + 1, torch.randn(50, 3) * 0.1)
    obs, acs = torch.randn(7, 2), torch.rand(7, 1)
    batched = model(obs, acs)
    assert batched["mean"].shape == (5, 7, 3)
    for e in range(5):
        single = model.member_forward(e, obs, acs)
        for k in batched:
            torch.testing.assert_close(batched[k][e], single[k])
    per_member = torch.randn(5, 7, 2)  # distinct inputs per member, (E, B, O)
    out = model(per_member, acs.expand(5, -1, -1))["mean"]
    torch.testing.assert_close(out[3], model.member_forward(3, per_member[3], acs)["mean"])


def test_normalization_statistics_are_part_of_the_state_dict() -> None:
    model = DynamicsModel(OB, AC, num_members=2, hidden=(8,))
    model.fit_normalization(torch.randn(20, 3) + 5, torch.randn(20, 2) * 2)
    copy = DynamicsModel(OB, AC, num_members=2, hidden=(8,))
    copy.load_state_dict(model.state_dict())
    assert {"in_norm.mean", "in_norm.std", "out_norm.mean", "out_norm.std"} <= set(model.state_dict())
    obs, acs = torch.randn(4, 2), torch.rand(4, 1)
    torch.testing.assert_close(copy.predict(obs, acs)[0], model.predict(obs, acs)[0])


def test_transitions_never_cross_an_episode_boundary() -> None:
    traj = ef.add_next_obs(_traj([5, 3, 4]))
    cols = dynamics.transitions(traj)
    delta = cols["next_obs"] - cols["obs"]
    torch.testing.assert_close(delta[:, 1], torch.full((12,), 0.5))  # an across-boundary pair would jump by ~100
    torch.testing.assert_close(delta[:, 0], traj["acs"][:, 0])
    buf = tk.ReplayBuffer(100)
    buf.add(traj)
    torch.testing.assert_close(dynamics.transitions(buf)["next_obs"], cols["next_obs"])


def test_train_refuses_a_traj_without_next_obs() -> None:
    model = DynamicsModel(OB, AC, hidden=(8,))
    with pytest.raises(MissingColumnError, match="add_next_obs"):
        dynamics.train(traj=_traj([4, 4]), model=model, optim=torch.optim.Adam(model.parameters()),
                       max_epochs=1, batch_size=4)


def test_train_fits_the_dynamics_stops_early_and_keeps_the_best_epoch() -> None:
    torch.manual_seed(0)
    traj = ef.add_next_obs(_traj([50] * 8))
    model = GaussianDynamicsModel(OB, AC, num_members=3, hidden=(32, 32))
    optim = torch.optim.Adam(model.parameters(), 3e-3)
    result = dynamics.train(traj=traj, model=model, optim=optim, max_epochs=200, batch_size=32,
                            holdout_frac=0.2, patience=3, generator=0)
    d = result.diagnostics
    assert d["epochs"] < 200 and d["epochs"] == len(result.losses["val_mse"])
    assert d["best_val_mse"] == min(result.losses["val_mse"]) < 0.05
    with torch.no_grad():
        val = float(model.predict(traj["obs"], traj["acs"], sample=False)[0].sub(traj["next_obs"]).pow(2).mean())
    assert val < 0.05


def test_training_is_deterministic_given_the_seed() -> None:
    traj = ef.add_next_obs(_traj([20, 20]))
    outs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = DynamicsModel(OB, AC, num_members=2, hidden=(8,))
        dynamics.train(traj=traj, model=model, optim=torch.optim.Adam(model.parameters()), max_epochs=3,
                       batch_size=8, generator=5)
        outs.append(model.predict(traj["obs"], traj["acs"])[0])
    torch.testing.assert_close(outs[0], outs[1])


def test_bad_inputs_are_named() -> None:
    with pytest.raises(TypeError, match="Box action space"):
        DynamicsModel(OB, gym.spaces.Discrete(3))
    model = DynamicsModel(OB, AC, num_members=2, hidden=(8,))
    with pytest.raises(ValueError, match="do not match the spaces"):
        model(torch.zeros(4, 3), torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"\(E=2, B, F\)"):
        model(torch.zeros(3, 4, 2), torch.zeros(3, 4, 1))
    with pytest.raises(ValueError, match="holdout_frac"):
        dynamics.train(traj=ef.add_next_obs(_traj([4])), model=model, optim=torch.optim.Adam(model.parameters()),
                       max_epochs=1, batch_size=4, holdout_frac=1.0)
