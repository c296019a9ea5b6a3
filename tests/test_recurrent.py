"""Recurrent nets and the models built on them: explicit hidden states, sequence forward == step forward."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit.recurrent import RecurrentNet, is_recurrent

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
T, B = 7, 4


def seq_obs(seed: int = 0) -> torch.Tensor:
    return torch.randn(T, B, 3, generator=torch.Generator().manual_seed(seed))


def resets() -> torch.Tensor:
    """``(T, B)`` masks with episode starts inside the batch: row 0 at 0 and 3, row 2 at 0, 1 and 5, ..."""
    m = torch.zeros(T, B)
    m[0] = 1.0
    m[3, 0] = m[1, 2] = m[5, 2] = m[6, 3] = 1.0
    return m


def step_by_step(model, obs: torch.Tensor, hs: torch.Tensor, h_masks: torch.Tensor, *extra: torch.Tensor):
    """The outputs of ``T`` one-step forwards, stacked ``(T, B, ...)``, and the last state."""
    outs = []
    for t in range(obs.shape[0]):
        out, hs = model(obs[t], *(e[t] for e in extra), hs=hs, h_masks=h_masks[t])
        outs.append(out)
    if isinstance(outs[0], dict):
        return {k: torch.stack([o[k] for o in outs]) for k in outs[0]}, hs
    return torch.stack(outs), hs


POLICIES = {
    "gaussian": lambda net: tk.GaussianPol(OBS, BOX, net(3, 2)),
    "gaussian_2a": lambda net: tk.GaussianPol(OBS, BOX, net(3, 4)),
    "categorical": lambda net: tk.CategoricalPol(OBS, gym.spaces.Discrete(5), net(3, 5)),
    "multicategorical": lambda net: tk.MultiCategoricalPol(OBS, gym.spaces.MultiDiscrete([2, 3]), net(3, 5)),
    "squashed": lambda net: tk.SquashedGaussianPol(OBS, BOX, net(3, 4)),
    "deterministic": lambda net: tk.DeterministicPol(OBS, BOX, net(3, 2)),
}
NETS = {
    "lstm": lambda i, o: tk.nets.lstm(i, o, torso=(8,), core_size=6, head=(5,)),
    "gru": lambda i, o: tk.nets.gru(i, o, core_size=6, head=(), num_layers=2),
}


def same(a: torch.Tensor, b: torch.Tensor) -> None:
    """Equal up to float32 rounding: the sequence forward multiplies (T*B, I) matrices where the
    steps multiply (B, I) ones, and BLAS kernels may round the two shapes differently (1 ulp on
    some CPUs); a wrong mask or state would differ by orders of magnitude more."""
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("kind", sorted(POLICIES))
def test_policy_sequence_forward_equals_step_by_step_across_episode_starts(kind, net):
    torch.manual_seed(0)
    pol = POLICIES[kind](NETS[net])
    assert pol.recurrent and is_recurrent(pol)
    obs, m = seq_obs(), resets()
    hs0 = torch.randn(B, pol.net.hs_dim, generator=torch.Generator().manual_seed(1))
    seq_params, seq_hs = pol(obs, hs=hs0, h_masks=m)
    step_params, step_hs = step_by_step(pol, obs, hs0, m)
    assert set(seq_params) == set(pol.pd.param_names)
    for k in seq_params:
        assert seq_params[k].shape[:2] == (T, B)
        same(seq_params[k], step_params[k])
    same(seq_hs, step_hs)


@pytest.mark.parametrize("net", sorted(NETS))
def test_value_functions_sequence_forward_equals_step_by_step(net):
    torch.manual_seed(0)
    obs, m = seq_obs(), resets()
    acs = torch.randn(T, B, 2, generator=torch.Generator().manual_seed(2))
    vf = tk.DeterministicSVfunc(OBS, NETS[net](3, 1))
    qf = tk.DeterministicSAVfunc(OBS, BOX, NETS[net](5, 1))
    dq = tk.DiscreteQfunc(OBS, gym.spaces.Discrete(4), NETS[net](3, 4))
    for model, extra, shape in ((vf, (), (T, B)), (qf, (acs,), (T, B)), (dq, (), (T, B, 4))):
        hs0 = model.init_hs(B)
        seq, seq_hs = model(obs, *extra, hs=hs0, h_masks=m)
        step, step_hs = step_by_step(model, obs, hs0, m, *extra)
        assert seq.shape == shape
        same(seq, step)
        same(seq_hs, step_hs)


def test_a_reset_makes_the_row_forget_its_past():
    """Where ``h_masks`` is 1 a row starts over from zeros: its outputs equal a fresh start's."""
    pol = tk.GaussianPol(OBS, BOX, NETS["lstm"](3, 2))
    obs, m = seq_obs(), resets()
    params, _ = pol(obs, hs=torch.randn(B, pol.net.hs_dim), h_masks=m)
    fresh, _ = pol(obs[3:, :1], hs=pol.init_hs(1))  # row 0 restarts at t = 3
    # one row alone vs in a batch of B: equal up to the last bits of different-sized matrix products
    torch.testing.assert_close(params["mean"][3:, :1], fresh["mean"], rtol=1e-6, atol=1e-6)


def test_hidden_state_is_explicit_and_nothing_is_stored_on_the_module():
    pol = tk.CategoricalPol(OBS, gym.spaces.Discrete(5), NETS["gru"](3, 5))
    hs = pol.init_hs(B)
    assert hs.shape == (B, pol.net.hs_dim) == (B, 12) and not bool(hs.any())
    before = {k: v.clone() for k, v in pol.state_dict().items()}
    obs = seq_obs()[0]
    p1, h1 = pol(obs, hs=hs)
    p2, h2 = pol(obs, hs=hs)
    assert torch.equal(p1["logits"], p2["logits"]) and torch.equal(h1, h2) and not torch.equal(h1, hs)
    assert all(torch.equal(v, pol.state_dict()[k]) for k, v in before.items())


def test_lstm_state_holds_h_and_c_of_every_layer():
    net = tk.nets.lstm(3, 2, core_size=4, num_layers=3)
    assert isinstance(net, RecurrentNet) and net.hs_dim == 2 * 3 * 4
    x = torch.randn(5, 2, 3)
    hs = torch.randn(2, net.hs_dim)
    out, hs_out = net(x, hs)
    h, c = hs.reshape(2, 2, 3, 4).permute(1, 2, 0, 3)
    feats = net.torso(x)
    ref_out, (ref_h, ref_c) = net.core(feats, (h.contiguous(), c.contiguous()))
    assert torch.equal(out, net.head(ref_out))
    assert torch.equal(hs_out, torch.stack([ref_h, ref_c]).permute(2, 0, 1, 3).reshape(2, -1))


def test_recurrent_act_returns_the_new_state_and_samples_like_an_mlp_policy():
    pol = tk.GaussianPol(OBS, BOX, NETS["lstm"](3, 2))
    obs = seq_obs()[0]
    acs, params, hs = pol.act(obs, generator=torch.Generator().manual_seed(3), hs=pol.init_hs(B))
    ref_params, ref_hs = pol(obs, hs=pol.init_hs(B))
    assert torch.equal(acs, pol.pd.sample(ref_params, torch.Generator().manual_seed(3)))
    assert torch.equal(hs, ref_hs)
    det, params, _ = pol.act(obs, deterministic=True, hs=pol.init_hs(B))
    assert torch.equal(det, params["mean"])


def test_mlp_models_are_unchanged_and_refuse_a_hidden_state():
    torch.manual_seed(0)
    net = tk.nets.mlp(3, 2, hidden=(8,))
    pol = tk.GaussianPol(OBS, BOX, net)
    obs = seq_obs()[0]
    assert not pol.recurrent
    assert torch.equal(pol(obs)["mean"], net(obs))
    acs, params = pol.act(obs, generator=torch.Generator().manual_seed(0))
    assert torch.equal(acs, pol.pd.sample(params, torch.Generator().manual_seed(0)))
    with pytest.raises(TypeError, match="GaussianPol: its net is not recurrent, so it takes no hs"):
        pol(obs, hs=torch.zeros(B, 4))
    with pytest.raises(TypeError, match="GaussianPol is not recurrent"):
        pol.init_hs(2)
    vf = tk.DeterministicSVfunc(OBS, tk.nets.mlp(3, 1))
    assert torch.equal(vf(obs), vf.net(obs).squeeze(-1))
    with pytest.raises(TypeError, match="not recurrent"):
        tk.RandomPol(OBS, BOX).act(obs, hs=torch.zeros(B, 1))


def test_recurrent_models_name_a_missing_or_misshaped_state():
    pol = tk.GaussianPol(OBS, BOX, NETS["lstm"](3, 2))
    obs = seq_obs()
    with pytest.raises(ValueError, match=r"GaussianPol is recurrent: pass its hidden state, hs=model.init_hs"):
        pol(obs[0])
    with pytest.raises(ValueError, match=r"hs must have shape \(B, S\) = \(4, 12\) for this batch, got \(3, 12\)"):
        pol(obs, hs=pol.init_hs(3))
    with pytest.raises(ValueError, match=r"h_masks must have shape \(7, 4\)"):
        pol(obs, hs=pol.init_hs(B), h_masks=torch.zeros(B))
    with pytest.raises(ValueError, match=r"neither a step \(B, ...\) nor a sequence"):
        pol(obs[None], hs=pol.init_hs(B))
    with pytest.raises(ValueError, match="the recurrent net takes 5"):
        tk.GaussianPol(OBS, BOX, tk.nets.lstm(5, 2))
