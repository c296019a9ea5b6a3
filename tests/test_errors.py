"""Bad input gets a clear error that names the problem (and, for missing columns, the fix)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from epi_factories import linear_vf, make_epis, make_traj
from sampler_envs import TwoActionsPol

import trajkit as tk
from trajkit import ef
from trajkit.algos import ppo_clip


# ---------------------------------------------------------------------- missing columns
@pytest.mark.parametrize(
    ("run", "column", "fix"),
    [
        (lambda t: ef.compute_advs(t, 0.99, 0.95), "vs", "ef.compute_vs"),
        (lambda t: ef.compute_rets(t, 0.99), "final_vs", "ef.compute_vs"),
        (ef.centerize_advs, "advs", "ef.compute_advs"),
        (lambda t: ef.compute_pris(t, None, None, None, 0.99), "next_obs", "ef.add_next_obs"),
        (lambda t: ef.require(t, "rets"), "rets", "ef.compute_rets"),  # Traj itself knows no estimators
    ],
)
def test_missing_column_names_the_estimator_to_run(run, column, fix):
    traj = make_traj([3, 2], [False, True])  # episode 0 is truncated, so returns need final_vs
    with pytest.raises(tk.MissingColumnError) as err:
        run(traj)
    msg = str(err.value)
    assert repr(column) in msg and fix in msg
    assert isinstance(err.value, KeyError)


def test_training_without_estimates_says_which_estimator_to_run():
    env = tk.GymEnv("Pendulum-v1")
    pol = tk.GaussianPol(env.observation_space, env.action_space, tk.nets.mlp(3, 1, hidden=(8,)))
    vf = tk.DeterministicSVfunc(env.observation_space, tk.nets.mlp(3, 1, hidden=(8,)))
    traj = tk.Traj.from_epis(make_epis([4], [True], gaussian_params=True, ac_dim=1))
    traj = ef.compute_rets(ef.compute_vs(traj, vf), 0.9)  # no compute_advs
    with pytest.raises(tk.MissingColumnError, match=r"'advs'.*ef\.compute_advs"):
        ppo_clip.train(
            traj=traj,
            pol=pol,
            vf=vf,
            optim_pol=torch.optim.Adam(pol.parameters()),
            optim_vf=torch.optim.Adam(vf.parameters()),
            epoch=1,
            batch_size=4,
        )


def test_missing_final_obs_is_reported_for_truncated_episodes():
    epis = make_epis([2, 2], [False, True])
    for epi in epis:
        del epi["final_obs"]
    traj = tk.Traj.from_epis(epis)
    with pytest.raises(tk.MissingColumnError, match="final_obs"):
        ef.compute_vs(traj, linear_vf())


# ---------------------------------------------------------------------- malformed episodes
def test_episode_columns_of_different_lengths():
    epis = make_epis([3, 4], [True, False])
    epis[1]["acs"] = epis[1]["acs"][:3]
    with pytest.raises(ValueError, match=r"episode 1: column 'acs' has 3 rows but 'rews' has 4"):
        tk.Traj.from_epis(epis)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rewards_are_rejected_with_their_position(bad):
    epis = make_epis([3, 4], [True, False])
    epis[1]["rews"][2] = bad
    with pytest.raises(ValueError, match=r"episode 1 has a non-finite reward .* at step 2"):
        tk.Traj.from_epis(epis)


def test_episodes_with_different_columns():
    epis = make_epis([2, 2], [True, False])
    epis[1]["extra"] = np.zeros(2)
    with pytest.raises(ValueError, match="all episodes need the same columns"):
        tk.Traj.from_epis(epis)


def test_other_malformed_input():
    with pytest.raises(ValueError, match="at least one episode"):
        tk.Traj.from_epis([])
    epis = make_epis([2], [True])
    epis[0]["truncated"] = True
    with pytest.raises(ValueError, match="both terminated and truncated"):
        tk.Traj.from_epis(epis)
    epis = make_epis([2], [True])
    del epis[0]["acs"]
    with pytest.raises(ValueError, match="no 'acs' column"):
        tk.Traj.from_epis(epis)
    with pytest.raises(ValueError, match="step column 'obs' has 2 rows, expected N=3"):
        tk.Traj({"obs": torch.zeros(2, 1), "rews": torch.zeros(3)}, {}, torch.tensor([0, 3]))


# ---------------------------------------------------------------------- concat
def test_concat_of_trajs_with_different_columns():
    a = make_traj([2], [True])
    b = ef.compute_h_masks(make_traj([3], [False]))
    with pytest.raises(ValueError, match=r"h_masks.*run the same estimators on both before concat"):
        tk.concat([a, b])
    with pytest.raises(ValueError, match="at least one Traj"):
        tk.concat([])


# ---------------------------------------------------------------------- policies
def test_policy_with_wrong_action_shape_in_process():
    env = tk.GymEnv("CartPole-v1")
    pol = TwoActionsPol(env.observation_space, env.action_space, tk.nets.mlp(4, 2, hidden=(8,)))
    with tk.EpiSampler(env, pol, num_parallel=1, seed=0) as sampler:
        with pytest.raises(ValueError, match=r"TwoActionsPol produced actions of shape \(2,\).*needs \(\)"):
            sampler.sample(pol, max_steps=5)


def test_policy_for_the_wrong_action_space():
    env = tk.GymEnv("CartPole-v1")
    with pytest.raises(TypeError, match="Box action space"):
        tk.GaussianPol(env.observation_space, env.action_space, tk.nets.mlp(4, 2, hidden=(8,)))


def test_an_episode_must_end_exactly_one_way():
    data = {"obs": torch.zeros(3, 2), "acs": torch.zeros(3, 1), "rews": torch.zeros(3)}
    bounds = torch.tensor([0, 1, 3])
    with pytest.raises(ValueError, match="episode 1 must be either terminated or truncated"):
        tk.Traj(data, {"terminated": torch.tensor([True, False]), "truncated": torch.tensor([False, False])}, bounds)
    with pytest.raises(ValueError, match="episode 0 must be either terminated or truncated"):
        tk.Traj(data, {"terminated": torch.tensor([True, False]), "truncated": torch.tensor([True, True])}, bounds)


def test_zero_length_episodes_are_rejected():
    data = {"obs": torch.zeros(3, 2), "acs": torch.zeros(3, 1), "rews": torch.zeros(3)}
    with pytest.raises(ValueError, match="episode 1 has no steps"):
        tk.Traj(data, {}, torch.tensor([0, 2, 2, 3]))
