"""Policies, value functions and running observation normalization."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit import pds

OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def obs_batch(b: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 4, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------- GaussianPol
def test_gaussian_pol_with_mean_net_has_a_state_independent_log_std():
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    pol = tk.GaussianPol(OBS, box, tk.nets.mlp(4, 2, hidden=(8,)), log_std_init=-0.5)
    params = pol(obs_batch())
    assert set(params) == set(pol.pd.param_names) == {"mean", "log_std"}
    assert params["mean"].shape == params["log_std"].shape == (6, 2)
    assert torch.equal(params["log_std"], torch.full((6, 2), -0.5))
    assert any(p is pol.log_std for p in pol.parameters())
    params["log_std"].sum().backward()
    assert pol.log_std.grad is not None and torch.equal(pol.log_std.grad, torch.full((2,), 6.0))


def test_gaussian_pol_with_mean_and_log_std_net_splits_and_clamps():
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    net = tk.nets.mlp(4, 4, hidden=(8,))
    with torch.no_grad():
        net[-1].bias.copy_(torch.tensor([0.0, 0.0, 50.0, -50.0]))  # log_std far outside [-20, 2]
        net[-1].weight.zero_()
    pol = tk.GaussianPol(OBS, box, net)
    assert pol.log_std is None
    params = pol(obs_batch())
    assert torch.equal(params["mean"], torch.zeros(6, 2))
    assert torch.equal(params["log_std"], torch.tensor([[pds.LOG_STD_MAX, pds.LOG_STD_MIN]]).expand(6, 2))


def test_gaussian_pol_rejects_a_net_of_the_wrong_width():
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    with pytest.raises(ValueError, match=r"needs 2 \(mean, with a learned log_std\) or 4 \(mean and log_std\)"):
        tk.GaussianPol(OBS, box, tk.nets.mlp(4, 3, hidden=(8,)))


def test_gaussian_pol_act_samples_from_its_params_and_mode_is_the_mean():
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    pol = tk.GaussianPol(OBS, box, tk.nets.mlp(4, 2, hidden=(8,)))
    obs = obs_batch()
    acs, params = pol.act(obs, generator=torch.Generator().manual_seed(1))
    expected = pol.pd.sample(params, torch.Generator().manual_seed(1))
    torch.testing.assert_close(acs, expected)
    det, params = pol.act(obs, deterministic=True)
    assert torch.equal(det, params["mean"])


def test_to_env_ac_rescales_or_clips_to_the_box_and_passes_unbounded_dims():
    box = gym.spaces.Box(np.float32([-2.0, 0.0, -np.inf]), np.float32([2.0, 10.0, np.inf]))
    pol = tk.GaussianPol(OBS, box, tk.nets.mlp(4, 3, hidden=(8,)))
    np.testing.assert_allclose(pol.to_env_ac(np.array([0.0, 0.0, 7.0])), [0.0, 5.0, 7.0])
    np.testing.assert_allclose(pol.to_env_ac(np.array([1.0, -1.0, -3.0])), [2.0, 0.0, -3.0])
    np.testing.assert_allclose(pol.to_env_ac(np.array([0.5, 3.0, 0.0])), [1.0, 10.0, 0.0])  # clipped
    assert pol.to_env_ac(np.zeros(3)).dtype == box.dtype
    clip_pol = tk.GaussianPol(OBS, box, tk.nets.mlp(4, 3, hidden=(8,)), rescale=False)
    np.testing.assert_allclose(clip_pol.to_env_ac(np.array([-5.0, 4.0, 100.0])), [-2.0, 4.0, 100.0])


class ActionRecorder(gym.Env):
    """A 1-D env that records the actions it receives and ends after 5 steps."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Box(np.float32([0.0, -3.0]), np.float32([10.0, 3.0]))

    def __init__(self):
        self.received, self.t = [], 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.received.append(np.array(action))
        self.t += 1
        return np.zeros(4, np.float32), 0.0, False, self.t >= 5, {}


def test_sampled_acs_keep_the_raw_sample_while_the_env_gets_the_rescaled_action():
    env = ActionRecorder()
    pol = tk.GaussianPol(
        env.observation_space, env.action_space, tk.nets.mlp(4, 2, hidden=(8,)), log_std_init=1.0
    )
    with tk.EpiSampler(env, pol, num_parallel=1, seed=0) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_epis=4))
    raw = traj["acs"].numpy()
    assert (np.abs(raw) > 1.0).any(), "with std e the raw samples should leave [-1, 1]"
    sent = np.stack(env.received)
    np.testing.assert_allclose(sent, np.stack([pol.to_env_ac(a) for a in raw]), rtol=1e-6)
    assert (sent >= env.action_space.low).all() and (sent <= env.action_space.high).all()
    llh = pol.pd.llh(traj["acs"], {k: traj[k] for k in pol.pd.param_names})
    assert torch.isfinite(llh).all()


# ---------------------------------------------------------------------- discrete policies
def test_categorical_pol_normalizes_logits_and_offsets_the_action():
    space = gym.spaces.Discrete(3, start=2)
    pol = tk.CategoricalPol(OBS, space, tk.nets.mlp(4, 3, hidden=(8,)))
    acs, params = pol.act(obs_batch(200), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(params["logits"].exp().sum(-1), torch.ones(200))
    assert set(acs.tolist()) <= {0, 1, 2}
    assert pol.to_env_ac(np.array(0)) == 2 and space.contains(pol.to_env_ac(acs[0].numpy()))
    with pytest.raises(ValueError, match="3 actions"):
        tk.CategoricalPol(OBS, space, tk.nets.mlp(4, 4, hidden=(8,)))


def test_multicategorical_pol_with_unequal_nvec():
    space = gym.spaces.MultiDiscrete([2, 5, 3])
    pol = tk.MultiCategoricalPol(OBS, space, tk.nets.mlp(4, 10, hidden=(8,)))
    acs, params = pol.act(obs_batch(100), generator=torch.Generator().manual_seed(0))
    assert acs.shape == (100, 3)
    for lg in params["logits"].split([2, 5, 3], -1):
        torch.testing.assert_close(lg.exp().sum(-1), torch.ones(100))
    assert all(space.contains(pol.to_env_ac(a.numpy())) for a in acs)
    llh = pol.pd.llh(acs, params)
    assert llh.shape == (100,) and bool((llh <= 0).all())


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Discrete(4, start=-1),
        gym.spaces.MultiDiscrete([3, 2]),
        gym.spaces.Box(np.float32([-1.0, 5.0]), np.float32([1.0, 6.0])),
    ],
)
def test_random_pol_is_reproducible_and_stays_in_the_space(space):
    pol = tk.RandomPol(OBS, space)
    a1, params = pol.act(obs_batch(50), generator=torch.Generator().manual_seed(3))
    a2, _ = pol.act(obs_batch(50), generator=torch.Generator().manual_seed(3))
    assert params == {} and torch.equal(a1, a2)
    assert all(space.contains(pol.to_env_ac(a.numpy())) for a in a1)
    assert len(set(map(tuple, a1.reshape(50, -1).tolist()))) > 1


def test_random_pol_needs_finite_bounds():
    with pytest.raises(ValueError, match="finite"):
        tk.RandomPol(OBS, gym.spaces.Box(-np.inf, np.inf, (2,)))


def test_deterministic_pol_outputs_tanh_actions_rescaled_for_the_env():
    box = gym.spaces.Box(np.float32([0.0]), np.float32([4.0]))
    pol = tk.DeterministicPol(OBS, box, tk.nets.mlp(4, 1, hidden=(8,)))
    acs, params = pol.act(obs_batch() * 100)
    assert bool((acs.abs() <= 1).all()) and torch.equal(
        acs, pol.act(obs_batch() * 100, deterministic=True)[0]
    )
    np.testing.assert_allclose(pol.to_env_ac(np.array([0.5])), [3.0])


# ---------------------------------------------------------------------- value functions
def test_state_value_function_returns_one_value_per_row():
    vf = tk.DeterministicSVfunc(OBS, tk.nets.mlp(4, 1, hidden=(8,)))
    obs = obs_batch()
    assert vf(obs).shape == (6,)
    torch.testing.assert_close(vf(obs), vf.net(obs).squeeze(-1))
    with pytest.raises(ValueError, match="1 value"):
        tk.DeterministicSVfunc(OBS, tk.nets.mlp(4, 2, hidden=(8,)))


def test_action_value_function_concatenates_obs_and_action():
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    qf = tk.DeterministicSAVfunc(OBS, box, tk.nets.mlp(6, 1, hidden=(8,)))
    obs, acs = obs_batch(), torch.rand(6, 2)
    torch.testing.assert_close(qf(obs, acs), qf.net(torch.cat([obs, acs], -1)).squeeze(-1))


# ---------------------------------------------------------------------- observation normalization
def test_obs_normalizer_running_stats_match_numpy_over_all_batches():
    norm = tk.ObsNormalizer((4,))
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)).astype(np.float32) for n in (1, 7, 50, 3)]
    for b in batches:
        norm.update(torch.as_tensor(b))
    allx = np.concatenate(batches).astype(np.float64)
    np.testing.assert_allclose(norm.mean.numpy(), allx.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.var.numpy(), allx.var(0), rtol=1e-6)
    assert float(norm.count) == len(allx)
    x = torch.as_tensor(allx[:5], dtype=torch.float32)
    expected = np.clip((allx[:5] - allx.mean(0)) / np.sqrt(allx.var(0) + norm.eps), -norm.clip, norm.clip)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_obs_normalizer_is_in_the_policy_state_dict_and_restores():
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def make():
        torch.manual_seed(0)
        return tk.GaussianPol(OBS, box, tk.nets.mlp(4, 2, hidden=(8,)), obs_normalizer=tk.ObsNormalizer((4,)))

    pol = make()
    pol.obs_normalizer.update(obs_batch(30) * 5 + 2)
    state = pol.state_dict()
    assert {"obs_normalizer.mean", "obs_normalizer.var", "obs_normalizer.count"} <= set(state)
    fresh = make()
    obs = obs_batch(3, seed=9)
    assert not torch.allclose(fresh(obs)["mean"], pol(obs)["mean"])
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(obs)["mean"], pol(obs)["mean"])
    torch.testing.assert_close(fresh.obs_normalizer.var, pol.obs_normalizer.var)
