"""One-call constructors from an env, and nets that do not fit the spaces named at construction."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import trajkit as tk
from trajkit import nets

OB = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
BOX = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
DISC = gym.spaces.Discrete(4)
MULTI = gym.spaces.MultiDiscrete([2, 3])


# ------------------------------------------------------------------ for_env
def test_for_env_builds_from_a_trajkit_env_a_gymnasium_env_or_a_pair_of_spaces():
    pendulum = tk.GymEnv("Pendulum-v1")
    cartpole = gym.make("CartPole-v1")
    obs = torch.randn(5, 3)
    pol = tk.GaussianPol.for_env(pendulum, hidden=(16,))
    assert pol(obs)["mean"].shape == (5, 1) and pol.log_std is not None
    pol = tk.GaussianPol.for_env(pendulum, hidden=(16,), state_dependent_std=True)
    assert pol.log_std is None and pol(obs)["log_std"].shape == (5, 1)
    cat = tk.CategoricalPol.for_env(cartpole, hidden=(16, 16), activation=nn.ReLU)
    assert cat(torch.randn(5, 4))["logits"].shape == (5, 2)
    multi = tk.MultiCategoricalPol.for_env((OB, MULTI))
    assert multi(obs)["logits"].shape == (5, 5)
    det = tk.DeterministicPol.for_env(pendulum)
    assert det(obs)["mean"].shape == (5, 1)
    sq = tk.SquashedGaussianPol.for_env(pendulum, hidden=(32, 32))
    assert sq.log_std is None and isinstance(sq.pd, tk.pds.SquashedGaussianPd)


def test_value_functions_for_env():
    pendulum = tk.GymEnv("Pendulum-v1")
    obs = torch.randn(5, 3)
    norm = tk.ObsNormalizer((3,))
    vf = tk.DeterministicSVfunc.for_env(pendulum, obs_normalizer=norm)
    assert vf(obs).shape == (5,) and vf.obs_normalizer is norm
    assert tk.DeterministicSVfunc.for_env(OB)(obs).shape == (5,)  # an observation space alone is enough
    qf = tk.DeterministicSAVfunc.for_env(pendulum, hidden=(8,))
    assert qf(obs, torch.zeros(5, 1)).shape == (5,)
    dq = tk.DiscreteQfunc.for_env((OB, DISC), dueling=True)
    assert dq(obs).shape == (5, 4) and isinstance(dq.net[-1], nets.DuelingHead)


def test_for_env_refuses_what_does_not_fit():
    with pytest.raises(TypeError, match="CategoricalPol needs a Discrete action space"):
        tk.CategoricalPol.for_env((OB, BOX))
    with pytest.raises(TypeError, match="GaussianPol needs a Box action space"):
        tk.GaussianPol.for_env((OB, DISC))
    with pytest.raises(TypeError, match="DiscreteQfunc needs a Discrete action space"):
        tk.DiscreteQfunc.for_env((OB, BOX))
    with pytest.raises(TypeError, match="observation_space and action_space, got int"):
        tk.DeterministicPol.for_env(3)  # type: ignore[arg-type]


# ------------------------------------------------------------------ nets of the wrong size
@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: tk.GaussianPol(OB, BOX, nets.mlp(4, 2)), r"GaussianPol: the observation \(Box.*\) has 3 features "
         r"but the net's first layer takes 4"),
        (lambda: tk.CategoricalPol(OB, DISC, nets.mlp(5, 4)), r"CategoricalPol: the observation .* has 3 features.*5"),
        (lambda: tk.MultiCategoricalPol(OB, MULTI, nets.mlp(2, 5)), r"has 3 features.*takes 2"),
        (lambda: tk.DeterministicPol(OB, BOX, nets.mlp(4, 2)), r"DeterministicPol: .* has 3 features.*takes 4"),
        (lambda: tk.SquashedGaussianPol(OB, BOX, nets.mlp(1, 4)), r"SquashedGaussianPol: .* 3 features.*takes 1"),
        (lambda: tk.DeterministicSVfunc(OB, nets.mlp(4, 1)), r"DeterministicSVfunc: .* 3 features.*takes 4"),
        (lambda: tk.DeterministicSAVfunc(OB, BOX, nets.mlp(3, 1)),
         r"DeterministicSAVfunc: the observation .* and action .* together has 5 features.*takes 3"),
        (lambda: tk.DiscreteQfunc(OB, DISC, nets.dueling_mlp(2, 4)), r"DiscreteQfunc: .* 3 features.*takes 2"),
    ],
    ids=["gaussian", "categorical", "multicategorical", "deterministic", "squashed", "svfunc", "savfunc", "discreteq"],
)
def test_a_net_whose_input_does_not_match_the_observation_is_named_at_construction(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_a_net_that_fails_on_the_observation_is_named_too():
    class Picky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(7, 2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.w

    with pytest.raises(ValueError, match=r"GaussianPol: the net cannot take the observation .* of 3 features"):
        tk.GaussianPol(OB, BOX, Picky())


def test_a_deterministic_pol_needs_one_output_per_action_dimension():
    with pytest.raises(ValueError, match="DeterministicPol: the net outputs 3 values; the action space needs 2"):
        tk.DeterministicPol(OB, BOX, nets.mlp(3, 3))


def test_observations_of_another_size_are_named_at_the_call():
    import torch

    import trajkit as tk

    pol = tk.GaussianPol.for_env(tk.GymEnv("Pendulum-v1"))
    with pytest.raises(ValueError, match="5 features per row; this model's observation space has 3"):
        pol(torch.zeros(2, 5))


# ------------------------------------------------------------------ the run layer's net settings
def _is_orthogonal(w: torch.Tensor) -> bool:
    rows = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return torch.allclose(rows / rows.diagonal().mean(), torch.eye(len(rows)), atol=1e-4)


def test_the_net_settings_of_on_policy_configs_reach_the_models():
    from trajkit.run.presets import resolve
    from trajkit.run.registry import build_models

    cfg = resolve("ppo", "Pendulum-v1", {"activation": "relu", "ortho_init": "false", "log_std_init": "-2",
                                         "hidden": "32,32"})
    models = build_models(cfg, gym.spaces.Box(-1, 1, (3,)), BOX)
    pol, vf = models.train_args["pol"], models.train_args["vf"]
    assert torch.equal(pol.log_std.detach(), torch.full((2,), -2.0))
    for net in (pol.net, vf.net):
        assert [type(m) for m in net if not isinstance(m, nn.Linear)] == [nn.ReLU, nn.ReLU]
        assert not _is_orthogonal(net[0].weight.detach())
    default = build_models(resolve("ppo", "Pendulum-v1", {"hidden": "32,32"}), gym.spaces.Box(-1, 1, (3,)), BOX)
    pol = default.train_args["pol"]
    assert [type(m) for m in pol.net if not isinstance(m, nn.Linear)] == [nn.Tanh, nn.Tanh]
    assert _is_orthogonal(pol.net[0].weight.detach()) and torch.equal(pol.log_std.detach(), torch.zeros(2))


def test_recurrent_nets_refuse_the_mlp_only_settings():
    from trajkit.run.fields import ConfigError
    from trajkit.run.presets import resolve
    from trajkit.run.registry import build_models

    cfg = resolve("ppo", "Pendulum-v1", {"rnn": "lstm", "activation": "relu"})
    with pytest.raises(ConfigError, match="recurrent nets are tanh"):
        build_models(cfg, gym.spaces.Box(-1, 1, (3,)), BOX)
    cfg = resolve("ppo", "Pendulum-v1", {"rnn": "lstm", "log_std_init": "-1"})
    pol = build_models(cfg, gym.spaces.Box(-1, 1, (3,)), BOX).train_args["pol"]
    assert torch.equal(pol.log_std.detach(), torch.full((2,), -1.0))


def test_the_bullet_presets_are_rl_zoos_recipes_without_gsde():
    from trajkit.run.presets import resolve

    for env in ("HalfCheetahBulletEnv-v0", "HopperBulletEnv-v0"):
        ppo = resolve("ppo", env)
        assert (ppo.steps_per_iter, ppo.num_envs, ppo.continuing, ppo.hidden) == (8192, 16, True, [256, 256])
        assert (ppo.activation, ppo.ortho_init, ppo.log_std_init, ppo.lr, ppo.lam) == ("relu", False, -2.0, 3e-5, 0.9)
        assert (ppo.train.epoch, ppo.train.batch_size, ppo.train.clip_param) == (20, 128, 0.4)
        sac = resolve("sac", env)
        assert (sac.learning_starts, sac.buffer_size, sac.hidden, sac.lr) == (10_000, 300_000, [400, 300], 7.3e-4)
        assert (sac.train.gamma, sac.train.tau, sac.epis_per_iter) == (0.98, 0.02, 1)


def test_make_pol_vf_takes_the_net_settings_and_refuses_an_unknown_activation():
    pol, vf = tk.make_pol_vf(tk.GymEnv("Pendulum-v1"), hidden=(8,), activation="relu", log_std_init=-1.5)
    assert isinstance(pol.net[1], nn.ReLU) and isinstance(vf.net[1], nn.ReLU)
    assert torch.equal(pol.log_std.detach(), torch.full((1,), -1.5))
    with pytest.raises(ValueError, match="activation must be 'tanh' or 'relu', got 'gelu'"):
        tk.make_pol_vf(tk.GymEnv("Pendulum-v1"), activation="gelu")
