"""Model factories: the networks, policies and optimizers each algorithm trains, from its config.

Every builder returns a :class:`Models`: ``train_args`` holds the models and optimizers
under the names of the algorithm's ``train()`` keyword arguments (so the loop hands them
over as they are), ``checkpoint`` the entries a checkpoint stores, and the policies that
act (``pol`` for evaluation, ``explore_pol`` while learning, ``warmup_pol`` before
learning starts).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from trajkit import nets
from trajkit.noise import ActionNoise, DeterministicActionNoisePol, GaussianActionNoise, OUActionNoise
from trajkit.normalizers import ObsNormalizer, RewScaler
from trajkit.pols import (
    ArgmaxQfPol,
    BasePol,
    CategoricalPol,
    DeterministicPol,
    GaussianPol,
    MultiCategoricalPol,
    RandomPol,
    SquashedGaussianPol,
    flat_dim,
)
from trajkit.run.config import (
    DDPGConfig,
    DQNConfig,
    OffPolicyConfig,
    OnPolicyConfig,
    QTOptConfig,
    SACConfig,
    TD3Config,
)
from trajkit.run.fields import ConfigError
from trajkit.run.model_based_config import MBPOConfig, ModelBasedConfig, MPCConfig
from trajkit.run.r2d2_config import R2D2SACConfig
from trajkit.vfuncs import CEMDeterministicSAVfunc, DeterministicSAVfunc, DeterministicSVfunc, DiscreteQfunc


@dataclass
class Models:
    """What a run trains and acts with.

    Attributes:
        pol: the learned policy (what ``trajkit eval`` runs, with its mode).
        train_args: models and optimizers by the ``train()`` keyword names (``pol``,
            ``vf``, ``qf1``, ``target_qf1``, ``optim_pol``, ``log_alpha``, ...).
        checkpoint: the entries a checkpoint holds (modules, optimizers, normalizer).
        explore_pol: acts while learning (``pol`` plus noise, or epsilon-greedy).
        warmup_pol: acts before ``learning_starts`` (None: ``explore_pol``).
        obs_normalizer: the running observation normalizer shared by policy and value function.
        rew_scaler: the running reward scaler of an on-policy run with ``rew_norm`` (else None).
    """

    pol: BasePol
    train_args: dict[str, Any]
    checkpoint: dict[str, Any]
    explore_pol: nn.Module
    warmup_pol: nn.Module | None = None
    obs_normalizer: ObsNormalizer | None = None
    rew_scaler: RewScaler | None = None
    optims: list[torch.optim.Optimizer] = field(default_factory=list)

    def to(self, device: torch.device) -> Models:
        """Move every module to ``device`` (before the optimizers take their first step)."""
        for m in self.checkpoint.values():
            if isinstance(m, nn.Module):
                m.to(device)
        return self


class Temperature(nn.Module):
    """SAC's learned entropy temperature ``alpha = exp(log_alpha)``, a module so checkpoints restore it in place."""

    def __init__(self, log_alpha: float = 0.0) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(float(log_alpha)))


class UniformActionPol(RandomPol):
    """Uniform random actions in a learner's ``[-1, 1]`` Box, sent to the env through the learner's ``to_env_ac``.

    The warm-up policy of SAC, TD3 and DDPG: the replay buffer then holds every action
    in the space the learner's Q-functions and log-likelihoods use.
    """

    def __init__(self, pol: BasePol) -> None:
        super().__init__(pol.ob_space, gym.spaces.Box(-1.0, 1.0, pol.ac_space.shape, dtype=np.float32))
        self._to_env = pol.to_env_ac

    def to_env_ac(self, ac: np.ndarray) -> Any:
        return self._to_env(ac)


@dataclass(frozen=True)
class Spaces:
    """An observation and an action space, standing in for an env where only its spaces are needed."""

    observation_space: gym.Space
    action_space: gym.Space


def _adam(modules: Sequence[nn.Module], lr: float) -> torch.optim.Adam:
    return torch.optim.Adam([p for m in modules for p in m.parameters()], lr)


# ---------------------------------------------------------------------------- on-policy
def _rnn_net(rnn: str, in_dim: int, out_dim: int, hidden: Sequence[int], out_gain: float) -> nn.Module:
    """An ``rnn`` (lstm/gru) net: a core of ``hidden[0]`` units, then an MLP head of ``hidden[1:]``."""
    build = nets.lstm if rnn == "lstm" else nets.gru
    return build(in_dim, out_dim, core_size=hidden[0], head=tuple(hidden[1:]), out_gain=out_gain)


def _recurrent_pol(ob_space: gym.Space, ac_space: gym.Space, hidden: Sequence[int], norm: ObsNormalizer | None,
                   rnn: str, log_std_init: float) -> BasePol:
    od = flat_dim(ob_space)
    if isinstance(ac_space, gym.spaces.Discrete):
        return CategoricalPol(ob_space, ac_space, _rnn_net(rnn, od, int(ac_space.n), hidden, 0.01),
                              obs_normalizer=norm)
    if isinstance(ac_space, gym.spaces.MultiDiscrete):
        net = _rnn_net(rnn, od, int(ac_space.nvec.sum()), hidden, 0.01)
        return MultiCategoricalPol(ob_space, ac_space, net, obs_normalizer=norm)
    if isinstance(ac_space, gym.spaces.Box):
        return GaussianPol(ob_space, ac_space, _rnn_net(rnn, od, flat_dim(ac_space), hidden, 0.01),
                           log_std_init=log_std_init, obs_normalizer=norm)
    raise ConfigError(f"no on-policy policy for action space {ac_space}")


#: the hidden-layer activations of on-policy MLPs, by the name configs use
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def on_policy_pol(
    ob_space: gym.Space, ac_space: gym.Space, hidden: Sequence[int], norm: ObsNormalizer | None, rnn: str = "none",
    *, activation: str = "tanh", ortho_init: bool = True, log_std_init: float = 0.0,
) -> BasePol:
    """A categorical, multi-categorical or Gaussian policy, by action space: an MLP (the classes' ``for_env``
    with ``activation``, ``ortho_init`` and ``log_std_init``), or with ``rnn`` ``"lstm"``/``"gru"`` a recurrent
    net (:func:`_rnn_net`; tanh, orthogonal init)."""
    if rnn != "none":
        if activation != "tanh" or not ortho_init:
            raise ConfigError(f"rnn={rnn}: recurrent nets are tanh with orthogonal init "
                              f"(activation={activation!r}, ortho_init={ortho_init})")
        return _recurrent_pol(ob_space, ac_space, hidden, norm, rnn, log_std_init)
    spaces = (ob_space, ac_space)
    kw: dict[str, Any] = {"hidden": hidden, "activation": ACTIVATIONS[activation], "orthogonal": ortho_init,
                          "obs_normalizer": norm}
    if isinstance(ac_space, gym.spaces.Discrete):
        return CategoricalPol.for_env(spaces, **kw)
    if isinstance(ac_space, gym.spaces.MultiDiscrete):
        return MultiCategoricalPol.for_env(spaces, **kw)
    if isinstance(ac_space, gym.spaces.Box):
        return GaussianPol.for_env(spaces, log_std_init=log_std_init, **kw)
    raise ConfigError(f"no on-policy policy for action space {ac_space}")


def make_pol_vf(
    env: Any, hidden: Sequence[int] = (64, 64), obs_norm: bool = False, rnn: str = "none", *,
    activation: str = "tanh", ortho_init: bool = True, log_std_init: float = 0.0,
) -> tuple[BasePol, DeterministicSVfunc]:
    """An on-policy policy (categorical, multi-categorical or Gaussian, by ``env``'s action space) and a value function.

    ``env`` is anything with ``observation_space`` and ``action_space`` (a
    :class:`~trajkit.GymEnv`, a gymnasium env). With ``obs_norm`` both share one
    :class:`~trajkit.ObsNormalizer` (``pol.obs_normalizer``; update it from the loop).
    With ``rnn`` ``"lstm"`` or ``"gru"`` both are recurrent: a core of ``hidden[0]``
    units and an MLP head of ``hidden[1:]``. ``activation`` (``"tanh"`` or ``"relu"``) and
    ``ortho_init`` (orthogonal init, the policy's output gain 0.01; false: PyTorch's default)
    shape the MLPs, ``log_std_init`` a Gaussian policy's initial log-std. These are the
    models ``trajkit train ppo|ppo_kl|trpo|vpg`` builds.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be 'tanh' or 'relu', got {activation!r}")
    ob_space, ac_space = env.observation_space, env.action_space
    norm = ObsNormalizer(ob_space.shape or ()) if obs_norm else None
    pol = on_policy_pol(ob_space, ac_space, hidden, norm, rnn, activation=activation, ortho_init=ortho_init,
                        log_std_init=log_std_init)
    if rnn != "none":
        vf_net = _rnn_net(rnn, flat_dim(ob_space), 1, hidden, 1.0)
        return pol, DeterministicSVfunc(ob_space, vf_net, obs_normalizer=norm)
    return pol, DeterministicSVfunc.for_env(ob_space, hidden=hidden, activation=ACTIVATIONS[activation],
                                            orthogonal=ortho_init, obs_normalizer=norm)


def build_on_policy(cfg: OnPolicyConfig, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """Policy (by action space), value function, their optimizers and an optional shared normalizer."""
    pol, vf = make_pol_vf(Spaces(ob_space, ac_space), cfg.hidden, cfg.obs_norm, cfg.rnn, activation=cfg.activation,
                          ortho_init=cfg.ortho_init, log_std_init=cfg.log_std_init)
    norm = pol.obs_normalizer
    assert norm is None or isinstance(norm, ObsNormalizer)
    optim_vf = torch.optim.Adam(vf.parameters(), cfg.vf_lr)
    args: dict[str, Any] = {"pol": pol, "vf": vf, "optim_vf": optim_vf}
    optims: list[torch.optim.Optimizer] = [optim_vf]  # value function first: the on-policy loop sets lrs in this order
    if cfg.has_optim_pol:
        args["optim_pol"] = torch.optim.Adam(pol.parameters(), cfg.lr)
        optims.append(args["optim_pol"])
    checkpoint = dict(args)
    scaler = RewScaler(cfg.gamma) if cfg.rew_norm else None
    if scaler is not None:
        checkpoint["rew_scaler"] = scaler
    return Models(pol, args, checkpoint, explore_pol=pol, obs_normalizer=norm, rew_scaler=scaler, optims=optims)


# ---------------------------------------------------------------------------- off-policy
def _relu_mlp(in_dim: int, out_dim: int, hidden: Sequence[int]) -> nn.Sequential:
    return nets.mlp(in_dim, out_dim, hidden, nn.ReLU, orthogonal=False)


def _box(space: gym.Space, algo: str) -> gym.spaces.Box:
    if not isinstance(space, gym.spaces.Box):
        raise ConfigError(f"{algo} needs a Box (continuous) action space, got {space}")
    return space


def _twin_qfs(cfg: OffPolicyConfig, ob_space: gym.Space, ac_space: gym.Space) -> dict[str, Any]:
    """Two Q-functions ``Q(s, a)``, their targets, one optimizer over both."""
    qf1, qf2 = (DeterministicSAVfunc.for_env((ob_space, ac_space), hidden=cfg.hidden) for _ in range(2))
    return {
        "qf1": qf1,
        "qf2": qf2,
        "target_qf1": copy.deepcopy(qf1),
        "target_qf2": copy.deepcopy(qf2),
        "optim_qf": _adam([qf1, qf2], cfg.lr),
    }


def _optims(args: dict[str, Any]) -> list[torch.optim.Optimizer]:
    return [v for v in args.values() if isinstance(v, torch.optim.Optimizer)]


def build_sac(cfg: SACConfig, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """SAC: a tanh-squashed Gaussian actor, twin critics with targets, a learned temperature."""
    ac_space = _box(ac_space, "sac")
    pol = SquashedGaussianPol.for_env((ob_space, ac_space), hidden=cfg.hidden)
    temperature = Temperature()
    args = {
        "pol": pol,
        **_twin_qfs(cfg, ob_space, ac_space),
        "log_alpha": temperature.log_alpha,
        "optim_pol": _adam([pol], cfg.lr),
        "optim_alpha": _adam([temperature], cfg.lr),
    }
    entries = {k: v for k, v in args.items() if k != "log_alpha"} | {"temperature": temperature}
    return Models(pol, args, entries, explore_pol=pol, warmup_pol=UniformActionPol(pol), optims=_optims(args))


def build_r2d2_sac(cfg: R2D2SACConfig, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """R2D2-SAC: SAC's models on ``rnn`` nets (a core of ``hidden[0]``, a head of ``hidden[1:]``; ReLU, default
    init); each critic's action joins after its core (``late_dim``), so its state summarizes observations."""
    ac_space = _box(ac_space, "r2d2_sac")
    build = nets.lstm if cfg.rnn == "lstm" else nets.gru
    od, ad = flat_dim(ob_space), flat_dim(ac_space)
    core, head = cfg.hidden[0], tuple(cfg.hidden[1:])
    pol = SquashedGaussianPol(
        ob_space, ac_space, build(od, 2 * ad, core_size=core, head=head, activation=nn.ReLU, orthogonal=False)
    )
    qf1, qf2 = (
        DeterministicSAVfunc(ob_space, ac_space, build(od + ad, 1, core_size=core, head=head, activation=nn.ReLU,
                                                       orthogonal=False, late_dim=ad))
        for _ in range(2)
    )
    temperature = Temperature()
    args = {
        "pol": pol,
        "qf1": qf1,
        "qf2": qf2,
        "target_qf1": copy.deepcopy(qf1),
        "target_qf2": copy.deepcopy(qf2),
        "log_alpha": temperature.log_alpha,
        "optim_pol": _adam([pol], cfg.lr),
        "optim_qf": _adam([qf1, qf2], cfg.lr),
        "optim_alpha": _adam([temperature], cfg.lr),
    }
    entries = {k: v for k, v in args.items() if k != "log_alpha"} | {"temperature": temperature}
    return Models(pol, args, entries, explore_pol=pol, warmup_pol=UniformActionPol(pol), optims=_optims(args))


def _actor_critic(
    cfg: OffPolicyConfig, noise: ActionNoise, twin: bool, ob_space: gym.Space, ac_space: gym.spaces.Box
) -> Models:
    """A deterministic actor with exploration noise, one or two critics, targets of all (TD3, DDPG)."""
    pol = DeterministicPol.for_env((ob_space, ac_space), hidden=cfg.hidden)
    if twin:
        critics = _twin_qfs(cfg, ob_space, ac_space)
    else:
        qf = DeterministicSAVfunc.for_env((ob_space, ac_space), hidden=cfg.hidden)
        critics = {"qf": qf, "target_qf": copy.deepcopy(qf), "optim_qf": _adam([qf], cfg.lr)}
    args = {"pol": pol, "target_pol": copy.deepcopy(pol), **critics, "optim_pol": _adam([pol], cfg.lr)}
    explore = DeterministicActionNoisePol(pol, noise)
    return Models(pol, args, dict(args), explore_pol=explore, warmup_pol=UniformActionPol(pol), optims=_optims(args))


def build_td3(cfg: TD3Config, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """TD3: a deterministic actor with Gaussian exploration noise, twin critics, targets of all three."""
    ac_space = _box(ac_space, "td3")
    return _actor_critic(cfg, GaussianActionNoise(cfg.action_noise), True, ob_space, ac_space)


def build_ddpg(cfg: DDPGConfig, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """DDPG: a deterministic actor with Gaussian or Ornstein-Uhlenbeck noise, one critic, targets of both."""
    ac_space = _box(ac_space, "ddpg")
    noise: ActionNoise
    if cfg.noise == "ou":
        noise = OUActionNoise(sigma=cfg.action_noise, theta=0.15, dt=1.0)
    else:
        noise = GaussianActionNoise(cfg.action_noise)
    return _actor_critic(cfg, noise, False, ob_space, ac_space)


def build_dqn(cfg: DQNConfig, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """DQN: a (dueling) Q-network over a Discrete action space, its target, an epsilon-greedy policy."""
    if not isinstance(ac_space, gym.spaces.Discrete):
        raise ConfigError(f"dqn needs a Discrete action space, got {ac_space}")
    n = int(ac_space.n)
    od = flat_dim(ob_space)
    net = nets.dueling_mlp(od, n, cfg.hidden) if cfg.dueling else _relu_mlp(od, n, cfg.hidden)
    qf = DiscreteQfunc(ob_space, ac_space, net)
    pol = ArgmaxQfPol(ob_space, ac_space, qf, epsilon=cfg.eps_end)
    args = {"qf": qf, "target_qf": copy.deepcopy(qf), "optim_qf": _adam([qf], cfg.lr)}
    return Models(pol, args, {"pol": pol, **args}, explore_pol=pol, optims=_optims(args))


def build_qtopt(cfg: QTOptConfig, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """QT-Opt: twin Q-functions whose ``max`` is a cross-entropy-method search; the policy acts with it."""
    ac_space = _box(ac_space, "qtopt")
    od, ad = flat_dim(ob_space), flat_dim(ac_space)
    qf1, qf2 = (
        CEMDeterministicSAVfunc(
            ob_space,
            ac_space,
            _relu_mlp(od + ad, 1, cfg.hidden),
            num_samples=cfg.cem_samples,
            num_elite=cfg.cem_elite,
            num_iter=cfg.cem_iters,
        )
        for _ in range(2)
    )
    pol = ArgmaxQfPol(ob_space, ac_space, qf1, epsilon=cfg.eps_end)
    args = {
        "qf1": qf1,
        "qf2": qf2,
        "target_qf1": copy.deepcopy(qf1),
        "target_qf2": copy.deepcopy(qf2),
        "optim_qf": _adam([qf1, qf2], cfg.lr),
    }
    return Models(pol, args, {"pol": pol, **args}, explore_pol=pol, optims=_optims(args))


# ---------------------------------------------------------------------------- model-based
def dynamics_model(cfg: ModelBasedConfig, ob_space: gym.Space, ac_space: gym.Space) -> Any:
    """The dynamics ensemble of ``cfg`` (Gaussian or deterministic members) and its Adam optimizer."""
    from trajkit.models import DynamicsModel, GaussianDynamicsModel

    cls = GaussianDynamicsModel if cfg.gaussian else DynamicsModel
    model = cls(ob_space, _box(ac_space, cfg.algo), num_members=cfg.ensemble_size, hidden=cfg.model_hidden,
                learn_reward=cfg.reward == "learned")
    lr = cfg.model_lr if isinstance(cfg, MBPOConfig) else cfg.lr  # type: ignore[attr-defined]  # MPC's: the model's
    return model, torch.optim.Adam(model.parameters(), lr, weight_decay=cfg.model_weight_decay)


def known_reward(cfg: ModelBasedConfig) -> Callable[..., torch.Tensor] | None:
    """The env's known reward function with ``reward: known`` (None: the model learns it)."""
    from trajkit.models import KNOWN_REWARDS

    if cfg.reward == "learned":
        return None
    if cfg.env not in KNOWN_REWARDS:
        raise ConfigError(f"{cfg.algo}: no known reward for {cfg.env} (known: {sorted(KNOWN_REWARDS)}); "
                          "use reward=learned")
    return KNOWN_REWARDS[cfg.env]


def build_mpc(cfg: MPCConfig, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """MPC and PETS: a dynamics ensemble, its optimizer, the planning policy; uniform actions before learning."""
    from trajkit.mpc import MPCPol

    model, optim = dynamics_model(cfg, ob_space, ac_space)
    pol = MPCPol(
        ob_space, ac_space, model, reward_fn=known_reward(cfg), horizon=cfg.horizon, num_samples=cfg.num_samples,
        optimizer=cfg.optimizer, cem_iters=cfg.cem_iters, num_elites=cfg.num_elites, alpha=cfg.cem_alpha,
        init_std=cfg.init_std, noise_beta=cfg.noise_beta, warm_start=cfg.warm_start,
        propagation=cfg.propagation, particles=cfg.particles,
    )
    args = {"model": model, "optim": optim}
    entries = {"pol": pol, **args}  # pol: what trajkit eval loads (its state_dict is the model's)
    return Models(pol, args, entries, explore_pol=pol, warmup_pol=RandomPol(ob_space, ac_space), optims=[optim])


def build_mbpo(cfg: MBPOConfig, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """MBPO: SAC's models (as ``build_sac``) plus the dynamics ensemble (``model``, ``optim_model``)."""
    ac_space = _box(ac_space, "mbpo")
    pol = SquashedGaussianPol.for_env((ob_space, ac_space), hidden=cfg.hidden)
    temperature = Temperature()
    qf1, qf2 = (DeterministicSAVfunc.for_env((ob_space, ac_space), hidden=cfg.hidden) for _ in range(2))
    args = {
        "pol": pol,
        "qf1": qf1,
        "qf2": qf2,
        "target_qf1": copy.deepcopy(qf1),
        "target_qf2": copy.deepcopy(qf2),
        "optim_qf": _adam([qf1, qf2], cfg.lr),
        "log_alpha": temperature.log_alpha,
        "optim_pol": _adam([pol], cfg.lr),
        "optim_alpha": _adam([temperature], cfg.lr),
    }
    model, optim_model = dynamics_model(cfg, ob_space, ac_space)
    entries = {k: v for k, v in args.items() if k != "log_alpha"} | {"temperature": temperature, "model": model,
                                                                     "optim_model": optim_model}
    return Models(pol, args, entries, explore_pol=pol, warmup_pol=UniformActionPol(pol), optims=_optims(args))


#: a model factory: (config, observation space, action space) -> models
Builder = Callable[[Any, gym.Space, gym.Space], Models]
