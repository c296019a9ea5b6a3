"""Ready-made training runs: the registry behind ``trajkit train`` and ``trajkit eval``.

A :class:`Recipe` names an algorithm, its default hyper-parameters, a ``build``
function that makes the models for an environment, and a ``run`` function (one per
algorithm *family*) that runs the training loop with logging, a progress bar,
checkpoints and exact resume. :data:`RECIPES` maps the names the command accepts to
recipes.

There are two families. On-policy (ppo, ppo_kl, trpo, vpg): :func:`build_on_policy`,
:func:`run_on_policy` and an update function per algorithm in
:data:`ON_POLICY_UPDATES`. Off-policy (sac, td3, ddpg, dqn, qtopt): a ``build_<algo>``
function each, :func:`run_off_policy` and an update function per algorithm in
:data:`OFF_POLICY_UPDATES`. Adding an algorithm of an existing family is a ``build``
(off-policy), an update function and one entry in :data:`RECIPES`; adding a family is a
``build`` and a ``run`` function with the same signatures.

Runs are exactly resumable: a run stopped after a checkpoint and continued with
``resume=True`` produces bit-identical parameters (CPU) to the uninterrupted run,
because the checkpoint holds the models, optimizers, the replay buffer (off-policy),
the minibatch generator, the sampler's env and action RNG states, the global RNG
states and the counters, and iterations do not depend on ``--steps``: each samples a
fixed number of steps (``--steps`` is rounded up to whole iterations) or, with
``epis_per_iter`` (DQN), whole episodes (the run ends with the episode that reaches
``--steps``).
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from trajkit import ef, nets
from trajkit.algos import ddpg, dqn, ppo_clip, ppo_kl, qtopt, sac, td3, trpo, vpg
from trajkit.algos.common import TrainResult
from trajkit.buffers import PrioritizedReplayBuffer, ReplayBuffer
from trajkit.checkpoint import load_checkpoint, read_checkpoint_data, save_checkpoint
from trajkit.envs import GymEnv
from trajkit.logger import Logger, ProgressBar
from trajkit.noise import ActionNoise, DeterministicActionNoisePol, GaussianActionNoise, OUActionNoise
from trajkit.normalizers import ObsNormalizer
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
from trajkit.samplers import EpiSampler
from trajkit.samplers.rollout import Epi, split_budget
from trajkit.traj import Traj
from trajkit.vfuncs import CEMDeterministicSAVfunc, DeterministicSAVfunc, DeterministicSVfunc, DiscreteQfunc

HParams = dict[str, Any]

CHECKPOINT_NAME = "checkpoint.pt"


class ConfigError(ValueError):
    """Settings that cannot work: unknown algorithm or hyper-parameter, or a resume with changed settings."""


CONFIG_NAME = "config.json"


@dataclass(frozen=True)
class RunSpec:
    """What ``trajkit train`` was asked to do.

    Attributes:
        algo: a key of :data:`RECIPES`. env: a gymnasium env id.
        steps: env steps to train for (rounded up to whole iterations).
        seed: seeds model initialization, the sampler and minibatch shuffling.
        num_parallel: sampler worker processes (0 or 1: in this process).
        logdir: where ``config.json``, ``progress.csv``, ``tb/`` and ``checkpoint.pt`` go.
        checkpoint_every: save a checkpoint every this many iterations (0: only at the end).
        resume: continue from ``logdir/checkpoint.pt`` (exactly).
        hparams: overrides of the recipe's defaults.
        progress: show a progress bar. console: print the log table.
    """

    algo: str
    env: str
    steps: int
    seed: int = 0
    num_parallel: int = 1
    logdir: str = "runs/run"
    checkpoint_every: int = 10
    resume: bool = False
    hparams: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = True
    console: bool = True


@dataclass
class RunOutcome:
    """What a run returns: final counters, the last logged record and the checkpoint path."""

    iteration: int
    env_steps: int
    episodes: int
    last_record: dict[str, float]
    checkpoint: Path


@dataclass
class OnPolicyModels:
    """The models and optimizers of an on-policy run (``optim_pol`` is None for TRPO)."""

    pol: BasePol
    vf: DeterministicSVfunc
    optim_pol: torch.optim.Optimizer | None
    optim_vf: torch.optim.Optimizer
    obs_normalizer: ObsNormalizer | None

    def state(self) -> dict[str, Any]:
        """The checkpoint entries of these models."""
        out: dict[str, Any] = {"pol": self.pol, "vf": self.vf, "optim_vf": self.optim_vf}
        if self.optim_pol is not None:
            out["optim_pol"] = self.optim_pol
        return out


@dataclass(frozen=True)
class Recipe:
    """One algorithm the command can train: defaults, model builder and run loop."""

    name: str
    family: str
    defaults: Mapping[str, Any]
    build: Callable[[gym.Space, gym.Space, Mapping[str, Any]], Any]
    run: Callable[[RunSpec], RunOutcome]
    summary: str


# ---------------------------------------------------------------------------- on-policy family
ON_POLICY_COMMON: HParams = {
    "steps_per_iter": 2048,
    "hidden": [64, 64],
    "lr": 3e-4,
    "vf_lr": 1e-3,
    "gamma": 0.99,
    "lam": 0.95,
    "obs_norm": False,
    "max_grad_norm": 0.5,
}

ON_POLICY_DEFAULTS: dict[str, HParams] = {
    "ppo": {
        **ON_POLICY_COMMON,
        "vf_lr": 3e-4,
        "epoch": 10,
        "batch_size": 64,
        "clip_param": 0.2,
        "ent_beta": 0.0,
    },
    "ppo_kl": {
        **ON_POLICY_COMMON,
        "vf_lr": 3e-4,
        "epoch": 10,
        "batch_size": 64,
        "kl_beta": 1.0,
        "kl_targ": 0.01,
        "ent_beta": 0.0,
    },
    "trpo": {
        **{k: v for k, v in ON_POLICY_COMMON.items() if k != "lr"},
        "lam": 0.97,
        "max_kl": 0.01,
        "cg_iters": 10,
        "cg_damping": 0.1,
        "vf_epoch": 5,
        "vf_batch_size": 64,
        "max_grad_norm": None,
    },
    "vpg": {
        **ON_POLICY_COMMON,
        "steps_per_iter": 4000,
        "lam": 0.97,
        "vf_epoch": 10,
        "vf_batch_size": 256,
        "ent_beta": 0.0,
        "max_grad_norm": None,
    },
}


def _make_pol(
    ob_space: gym.Space, ac_space: gym.Space, hidden: Sequence[int], norm: nn.Module | None
) -> BasePol:
    in_dim = flat_dim(ob_space)
    if isinstance(ac_space, gym.spaces.Discrete):
        return CategoricalPol(
            ob_space, ac_space, nets.mlp(in_dim, int(ac_space.n), hidden, out_gain=0.01), obs_normalizer=norm
        )
    if isinstance(ac_space, gym.spaces.MultiDiscrete):
        n = int(ac_space.nvec.sum())
        return MultiCategoricalPol(
            ob_space, ac_space, nets.mlp(in_dim, n, hidden, out_gain=0.01), obs_normalizer=norm
        )
    if isinstance(ac_space, gym.spaces.Box):
        return GaussianPol(
            ob_space,
            ac_space,
            nets.mlp(in_dim, flat_dim(ac_space), hidden, out_gain=0.01),
            obs_normalizer=norm,
        )
    raise TypeError(f"no default policy for action space {ac_space}")


def build_on_policy(ob_space: gym.Space, ac_space: gym.Space, hp: Mapping[str, Any]) -> OnPolicyModels:
    """Policy (categorical or Gaussian by action space), value function and optimizers from ``hp``."""
    norm = ObsNormalizer(ob_space.shape or ()) if hp["obs_norm"] else None
    pol = _make_pol(ob_space, ac_space, hp["hidden"], norm)
    vf = DeterministicSVfunc(ob_space, nets.mlp(flat_dim(ob_space), 1, hp["hidden"]), obs_normalizer=norm)
    optim_pol = torch.optim.Adam(pol.parameters(), hp["lr"]) if "lr" in hp else None  # TRPO has no "lr"
    optim_vf = torch.optim.Adam(vf.parameters(), hp["vf_lr"])
    return OnPolicyModels(pol, vf, optim_pol, optim_vf, norm)


def _update_ppo(
    traj: Traj, m: OnPolicyModels, hp: Mapping[str, Any], g: torch.Generator, algo_state: HParams
) -> TrainResult:
    assert m.optim_pol is not None
    return ppo_clip.train(
        traj=traj,
        pol=m.pol,
        vf=m.vf,
        optim_pol=m.optim_pol,
        optim_vf=m.optim_vf,
        epoch=hp["epoch"],
        batch_size=hp["batch_size"],
        clip_param=hp["clip_param"],
        ent_beta=hp["ent_beta"],
        max_grad_norm=hp["max_grad_norm"],
        generator=g,
    )


def _update_ppo_kl(
    traj: Traj, m: OnPolicyModels, hp: Mapping[str, Any], g: torch.Generator, algo_state: HParams
) -> TrainResult:
    assert m.optim_pol is not None
    result = ppo_kl.train(
        traj=traj,
        pol=m.pol,
        vf=m.vf,
        optim_pol=m.optim_pol,
        optim_vf=m.optim_vf,
        epoch=hp["epoch"],
        batch_size=hp["batch_size"],
        kl_beta=algo_state.get("kl_beta", hp["kl_beta"]),
        kl_targ=hp["kl_targ"],
        ent_beta=hp["ent_beta"],
        max_grad_norm=hp["max_grad_norm"],
        generator=g,
    )
    algo_state["kl_beta"] = result.diagnostics["kl_beta"]
    return result


def _update_trpo(
    traj: Traj, m: OnPolicyModels, hp: Mapping[str, Any], g: torch.Generator, algo_state: HParams
) -> TrainResult:
    return trpo.train(
        traj=traj,
        pol=m.pol,
        vf=m.vf,
        optim_vf=m.optim_vf,
        max_kl=hp["max_kl"],
        cg_iters=hp["cg_iters"],
        cg_damping=hp["cg_damping"],
        vf_epoch=hp["vf_epoch"],
        vf_batch_size=hp["vf_batch_size"],
        max_grad_norm=hp["max_grad_norm"],
        generator=g,
    )


def _update_vpg(
    traj: Traj, m: OnPolicyModels, hp: Mapping[str, Any], g: torch.Generator, algo_state: HParams
) -> TrainResult:
    assert m.optim_pol is not None
    return vpg.train(
        traj=traj,
        pol=m.pol,
        vf=m.vf,
        optim_pol=m.optim_pol,
        optim_vf=m.optim_vf,
        vf_epoch=hp["vf_epoch"],
        vf_batch_size=hp["vf_batch_size"],
        ent_beta=hp["ent_beta"],
        max_grad_norm=hp["max_grad_norm"],
        generator=g,
    )


OnPolicyUpdate = Callable[[Traj, OnPolicyModels, Mapping[str, Any], torch.Generator, HParams], TrainResult]

#: the algorithm-specific step of the on-policy loop, by recipe name
ON_POLICY_UPDATES: dict[str, OnPolicyUpdate] = {
    "ppo": _update_ppo,
    "ppo_kl": _update_ppo_kl,
    "trpo": _update_trpo,
    "vpg": _update_vpg,
}


def estimate(traj: Traj, vf: nn.Module, gamma: float, lam: float) -> Traj:
    """The on-policy estimator chain: values, returns, GAE advantages (centered), h-masks."""
    traj = ef.compute_vs(traj, vf)
    traj = ef.compute_rets(traj, gamma)
    traj = ef.compute_advs(traj, gamma, lam)
    traj = ef.centerize_advs(traj)
    return ef.compute_h_masks(traj)


def completed_epis(epis: Sequence[Epi], max_steps: int, num_workers: int) -> list[Epi]:
    """The episodes that were not cut by the sampler's step budget.

    Cut episodes are partial, so including them would bias return statistics down.
    Episodes carry ``sampler_cut``; for episode dicts without it (older files), each
    worker's last episode (episodes come in worker order, each worker filling its
    share of ``max_steps``) is dropped unless it terminated.
    """
    if all("sampler_cut" in e for e in epis):
        return [e for e in epis if not e["sampler_cut"]]
    out: list[Epi] = []
    i = 0
    for share in split_budget(max_steps, num_workers):
        done = 0
        while share and done < share and i < len(epis):
            epi = epis[i]
            done += len(epi["rews"])
            i += 1
            if done < share or epi["terminated"]:
                out.append(epi)
    return out


# ---------------------------------------------------------------------------- off-policy family
OFF_POLICY_COMMON: HParams = {
    "steps_per_iter": 200,
    "epis_per_iter": 0,
    "learning_starts": 1000,
    "train_freq": 1,
    "grad_ratio": 1.0,
    "batch_size": 256,
    "buffer_size": 200_000,
    "hidden": [256, 256],
    "lr": 1e-3,
    "gamma": 0.99,
    "tau": 0.005,
}

_PER: HParams = {"prioritized": False, "alpha": 0.6, "beta": 0.4}

#: the defaults of examples/run_{sac,td3,ddpg,dqn,qtopt}.py
OFF_POLICY_DEFAULTS: dict[str, HParams] = {
    "sac": {**OFF_POLICY_COMMON, "hidden": [64, 64], "buffer_size": 1_000_000},
    "td3": {**OFF_POLICY_COMMON, "hidden": [64, 64], "gamma": 0.98, "action_noise": 0.1, "policy_delay": 2},
    "ddpg": {
        **OFF_POLICY_COMMON,
        "hidden": [64, 64],
        "gamma": 0.98,
        "noise": "gaussian",
        "action_noise": 0.1,
        **_PER,
    },
    "dqn": {
        **OFF_POLICY_COMMON,
        "steps_per_iter": 0,
        "epis_per_iter": 1,
        "train_freq": 256,
        "grad_ratio": 0.5,
        "batch_size": 128,
        "buffer_size": 100_000,
        "hidden": [256, 256],
        "nstep": 3,
        "lr": 5e-4,
        "lr_decay_steps": 100_000,
        "dueling": True,
        "exploration_steps": 8000,
        "eps_end": 0.04,
        "tau": 0.01,
        "target_update_interval": 1,
        **_PER,
    },
    "qtopt": {
        **OFF_POLICY_COMMON,
        "hidden": [64, 64],
        "batch_size": 128,
        "grad_ratio": 0.5,
        "gamma": 0.98,
        "eps_end": 0.1,
        "exploration_steps": 0,
        "cem_samples": 64,
        "cem_elite": 6,
        "cem_iters": 2,
    },
}


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


@dataclass
class OffPolicyModels:
    """The models and optimizers of an off-policy run.

    Attributes:
        pol: the learned policy, evaluated by ``trajkit eval`` with its mode: SAC's
            squashed Gaussian, DDPG/TD3's deterministic actor, DQN/QT-Opt's greedy
            ``ArgmaxQfPol`` (whose ``qf`` is ``qfs[0]``).
        qfs, targ_qfs: the Q-functions and their target copies.
        explore_pol: acts while learning: ``pol`` plus action noise (DDPG, TD3), or
            ``pol`` itself (SAC; DQN/QT-Opt with an epsilon schedule).
        warmup_pol: acts for the first ``learning_starts`` steps (None: ``explore_pol``
            with epsilon 1).
        targ_pol: the target actor (DDPG, TD3). temperature, optim_alpha: SAC's.
    """

    pol: BasePol
    qfs: list[nn.Module]
    targ_qfs: list[nn.Module]
    optim_qf: torch.optim.Optimizer
    explore_pol: nn.Module
    warmup_pol: nn.Module | None = None
    targ_pol: BasePol | None = None
    optim_pol: torch.optim.Optimizer | None = None
    temperature: Temperature | None = None
    optim_alpha: torch.optim.Optimizer | None = None

    def state(self) -> dict[str, Any]:
        """The checkpoint entries of these models (for DQN/QT-Opt ``pol`` holds ``qf1``'s parameters too)."""
        out: dict[str, Any] = {"pol": self.pol}
        out.update({f"qf{i}": qf for i, qf in enumerate(self.qfs, 1)})
        out.update({f"targ_qf{i}": qf for i, qf in enumerate(self.targ_qfs, 1)})
        optional = {
            "targ_pol": self.targ_pol,
            "temperature": self.temperature,
            "optim_qf": self.optim_qf,
            "optim_pol": self.optim_pol,
            "optim_alpha": self.optim_alpha,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


def _relu_mlp(in_dim: int, out_dim: int, hidden: Sequence[int]) -> nn.Sequential:
    return nets.mlp(in_dim, out_dim, hidden, nn.ReLU, orthogonal=False)


def _require_box(ac_space: gym.Space, algo: str) -> gym.spaces.Box:
    if not isinstance(ac_space, gym.spaces.Box):
        raise ConfigError(f"{algo} needs a Box (continuous) action space, got {ac_space}")
    return ac_space


def _twin_qfs(
    ob_space: gym.Space, ac_space: gym.Space, hp: Mapping[str, Any]
) -> tuple[list[nn.Module], list[nn.Module], torch.optim.Optimizer]:
    """Two Q-functions ``Q(s, a)``, their target copies and one optimizer over both."""
    od, ad = flat_dim(ob_space), flat_dim(ac_space)
    qfs: list[nn.Module] = [
        DeterministicSAVfunc(ob_space, ac_space, _relu_mlp(od + ad, 1, hp["hidden"])) for _ in range(2)
    ]
    optim = torch.optim.Adam([p for qf in qfs for p in qf.parameters()], hp["lr"])
    return qfs, [copy.deepcopy(qf) for qf in qfs], optim


def build_sac(ob_space: gym.Space, ac_space: gym.Space, hp: Mapping[str, Any]) -> OffPolicyModels:
    """SAC: a tanh-squashed Gaussian actor, twin critics with targets, a learned temperature."""
    ac_space = _require_box(ac_space, "sac")
    od, ad = flat_dim(ob_space), flat_dim(ac_space)
    pol = SquashedGaussianPol(ob_space, ac_space, _relu_mlp(od, 2 * ad, hp["hidden"]))
    qfs, targ_qfs, optim_qf = _twin_qfs(ob_space, ac_space, hp)
    temperature = Temperature()
    return OffPolicyModels(
        pol=pol,
        qfs=qfs,
        targ_qfs=targ_qfs,
        optim_qf=optim_qf,
        explore_pol=pol,
        warmup_pol=UniformActionPol(pol),
        optim_pol=torch.optim.Adam(pol.parameters(), hp["lr"]),
        temperature=temperature,
        optim_alpha=torch.optim.Adam(temperature.parameters(), hp["lr"]),
    )


def build_td3(ob_space: gym.Space, ac_space: gym.Space, hp: Mapping[str, Any]) -> OffPolicyModels:
    """TD3: a deterministic actor with Gaussian exploration noise, twin critics, targets of all three."""
    ac_space = _require_box(ac_space, "td3")
    od, ad = flat_dim(ob_space), flat_dim(ac_space)
    pol = DeterministicPol(ob_space, ac_space, _relu_mlp(od, ad, hp["hidden"]))
    qfs, targ_qfs, optim_qf = _twin_qfs(ob_space, ac_space, hp)
    return OffPolicyModels(
        pol=pol,
        qfs=qfs,
        targ_qfs=targ_qfs,
        optim_qf=optim_qf,
        explore_pol=DeterministicActionNoisePol(pol, GaussianActionNoise(hp["action_noise"])),
        warmup_pol=UniformActionPol(pol),
        targ_pol=copy.deepcopy(pol),
        optim_pol=torch.optim.Adam(pol.parameters(), hp["lr"]),
    )


def build_ddpg(ob_space: gym.Space, ac_space: gym.Space, hp: Mapping[str, Any]) -> OffPolicyModels:
    """DDPG: a deterministic actor with Gaussian or Ornstein-Uhlenbeck noise, one critic, targets of both."""
    ac_space = _require_box(ac_space, "ddpg")
    od, ad = flat_dim(ob_space), flat_dim(ac_space)
    pol = DeterministicPol(ob_space, ac_space, _relu_mlp(od, ad, hp["hidden"]))
    qf = DeterministicSAVfunc(ob_space, ac_space, _relu_mlp(od + ad, 1, hp["hidden"]))
    noise: ActionNoise
    if hp["noise"] == "ou":
        noise = OUActionNoise(sigma=hp["action_noise"], theta=0.15, dt=1.0)
    elif hp["noise"] == "gaussian":
        noise = GaussianActionNoise(hp["action_noise"])
    else:
        raise ConfigError(f"ddpg: noise must be 'gaussian' or 'ou', got {hp['noise']!r}")
    return OffPolicyModels(
        pol=pol,
        qfs=[qf],
        targ_qfs=[copy.deepcopy(qf)],
        optim_qf=torch.optim.Adam(qf.parameters(), hp["lr"]),
        explore_pol=DeterministicActionNoisePol(pol, noise),
        warmup_pol=UniformActionPol(pol),
        targ_pol=copy.deepcopy(pol),
        optim_pol=torch.optim.Adam(pol.parameters(), hp["lr"]),
    )


def build_dqn(ob_space: gym.Space, ac_space: gym.Space, hp: Mapping[str, Any]) -> OffPolicyModels:
    """DQN: a (dueling) Q-network over a Discrete action space, its target, an epsilon-greedy policy."""
    if not isinstance(ac_space, gym.spaces.Discrete):
        raise ConfigError(f"dqn needs a Discrete action space, got {ac_space}")
    od, n = flat_dim(ob_space), int(ac_space.n)
    net = nets.dueling_mlp(od, n, hp["hidden"]) if hp["dueling"] else _relu_mlp(od, n, hp["hidden"])
    qf = DiscreteQfunc(ob_space, ac_space, net)
    targ_qf = copy.deepcopy(qf)
    optim_qf = torch.optim.Adam(qf.parameters(), hp["lr"])
    pol = ArgmaxQfPol(ob_space, ac_space, qf, epsilon=hp["eps_end"])
    return OffPolicyModels(pol=pol, qfs=[qf], targ_qfs=[targ_qf], optim_qf=optim_qf, explore_pol=pol)


def build_qtopt(ob_space: gym.Space, ac_space: gym.Space, hp: Mapping[str, Any]) -> OffPolicyModels:
    """QT-Opt: twin Q-functions whose ``max`` is a cross-entropy-method search; the policy acts with it."""
    ac_space = _require_box(ac_space, "qtopt")
    od, ad = flat_dim(ob_space), flat_dim(ac_space)
    qfs: list[nn.Module] = [
        CEMDeterministicSAVfunc(
            ob_space,
            ac_space,
            _relu_mlp(od + ad, 1, hp["hidden"]),
            num_samples=hp["cem_samples"],
            num_elite=hp["cem_elite"],
            num_iter=hp["cem_iters"],
        )
        for _ in range(2)
    ]
    targ_qfs = [copy.deepcopy(qf) for qf in qfs]
    optim_qf = torch.optim.Adam([p for qf in qfs for p in qf.parameters()], hp["lr"])
    pol = ArgmaxQfPol(ob_space, ac_space, qfs[0], epsilon=hp["eps_end"])
    return OffPolicyModels(pol=pol, qfs=qfs, targ_qfs=targ_qfs, optim_qf=optim_qf, explore_pol=pol)


def _update_sac(
    buf: ReplayBuffer, m: OffPolicyModels, hp: Mapping[str, Any], g: torch.Generator, n: int
) -> TrainResult:
    assert m.optim_pol is not None and m.temperature is not None
    return sac.train(
        traj=buf,
        pol=m.pol,
        qf1=m.qfs[0],
        qf2=m.qfs[1],
        targ_qf1=m.targ_qfs[0],
        targ_qf2=m.targ_qfs[1],
        log_alpha=m.temperature.log_alpha,
        optim_pol=m.optim_pol,
        optim_qf=m.optim_qf,
        optim_alpha=m.optim_alpha,
        num_steps=n,
        batch_size=hp["batch_size"],
        gamma=hp["gamma"],
        tau=hp["tau"],
        generator=g,
    )


def _update_td3(
    buf: ReplayBuffer, m: OffPolicyModels, hp: Mapping[str, Any], g: torch.Generator, n: int
) -> TrainResult:
    assert m.optim_pol is not None and m.targ_pol is not None
    return td3.train(
        traj=buf,
        pol=m.pol,
        qf1=m.qfs[0],
        qf2=m.qfs[1],
        targ_pol=m.targ_pol,
        targ_qf1=m.targ_qfs[0],
        targ_qf2=m.targ_qfs[1],
        optim_pol=m.optim_pol,
        optim_qf=m.optim_qf,
        num_steps=n,
        batch_size=hp["batch_size"],
        gamma=hp["gamma"],
        tau=hp["tau"],
        policy_delay=hp["policy_delay"],
        generator=g,
    )


def _update_ddpg(
    buf: ReplayBuffer, m: OffPolicyModels, hp: Mapping[str, Any], g: torch.Generator, n: int
) -> TrainResult:
    assert m.optim_pol is not None and m.targ_pol is not None
    return ddpg.train(
        traj=buf,
        pol=m.pol,
        qf=m.qfs[0],
        targ_pol=m.targ_pol,
        targ_qf=m.targ_qfs[0],
        optim_pol=m.optim_pol,
        optim_qf=m.optim_qf,
        num_steps=n,
        batch_size=hp["batch_size"],
        gamma=hp["gamma"],
        tau=hp["tau"],
        beta=hp["beta"],
        generator=g,
    )


def _update_dqn(
    buf: ReplayBuffer, m: OffPolicyModels, hp: Mapping[str, Any], g: torch.Generator, n: int
) -> TrainResult:
    return dqn.train(
        traj=buf,
        qf=m.qfs[0],
        targ_qf=m.targ_qfs[0],
        optim_qf=m.optim_qf,
        num_steps=n,
        batch_size=hp["batch_size"],
        gamma=hp["gamma"],
        tau=hp["tau"],
        target_update_interval=hp["target_update_interval"] or max(1, n),  # 0: once, after the n steps
        beta=hp["beta"],
        nstep=hp["nstep"] > 1,
        generator=g,
    )


def _update_qtopt(
    buf: ReplayBuffer, m: OffPolicyModels, hp: Mapping[str, Any], g: torch.Generator, n: int
) -> TrainResult:
    targ_qf1 = m.targ_qfs[0]
    assert isinstance(targ_qf1, CEMDeterministicSAVfunc)  # built by build_qtopt
    return qtopt.train(
        traj=buf,
        qf1=m.qfs[0],
        qf2=m.qfs[1],
        targ_qf1=targ_qf1,
        targ_qf2=m.targ_qfs[1],
        optim_qf=m.optim_qf,
        num_steps=n,
        batch_size=hp["batch_size"],
        gamma=hp["gamma"],
        tau=hp["tau"],
        generator=g,
    )


OffPolicyUpdate = Callable[[ReplayBuffer, OffPolicyModels, Mapping[str, Any], torch.Generator, int], TrainResult]

#: the algorithm-specific step of the off-policy loop (``n`` gradient steps on the buffer), by recipe name
OFF_POLICY_UPDATES: dict[str, OffPolicyUpdate] = {
    "sac": _update_sac,
    "td3": _update_td3,
    "ddpg": _update_ddpg,
    "dqn": _update_dqn,
    "qtopt": _update_qtopt,
}


def make_buffer(hp: Mapping[str, Any]) -> ReplayBuffer:
    """A ``buffer_size`` replay buffer, prioritized (with exponent ``alpha``) when ``hp["prioritized"]``."""
    if hp.get("prioritized", False):
        return PrioritizedReplayBuffer(hp["buffer_size"], alpha=hp["alpha"])
    return ReplayBuffer(hp["buffer_size"])


def epsilon_at(env_steps: int, hp: Mapping[str, Any]) -> float:
    """Exploration epsilon after warm-up: linear from 1 to ``eps_end`` over ``exploration_steps`` (0: ``eps_end``)."""
    if hp["exploration_steps"] <= 0:
        return float(hp["eps_end"])
    return max(hp["eps_end"], 1.0 - (1.0 - hp["eps_end"]) * env_steps / hp["exploration_steps"])


def behaviour_pol(m: OffPolicyModels, hp: Mapping[str, Any], env_steps: int) -> nn.Module:
    """The policy that acts in the next iteration, with its exploration set for ``env_steps`` steps done.

    Uniformly random actions before ``learning_starts`` (the warm-up policy, or epsilon
    1); afterwards the exploration policy, with the epsilon schedule (DQN, QT-Opt) or
    fresh noise state (each iteration starts new episodes).
    """
    warm = env_steps < hp["learning_starts"]
    if warm and m.warmup_pol is not None:
        return m.warmup_pol
    if isinstance(m.explore_pol, ArgmaxQfPol):
        m.explore_pol.epsilon = 1.0 if warm else epsilon_at(env_steps, hp)
    if isinstance(m.explore_pol, DeterministicActionNoisePol):
        m.explore_pol.reset()
    return m.explore_pol


def set_lr(m: OffPolicyModels, hp: Mapping[str, Any], env_steps: int) -> None:
    """With ``lr_decay_steps > 0``: every optimizer's lr decays linearly from ``lr`` to 0 at that many env steps.

    The horizon is a hyper-parameter, not ``--steps``, so a run resumed with more steps
    continues exactly.
    """
    horizon = hp.get("lr_decay_steps", 0)
    if horizon <= 0:
        return
    lr = hp["lr"] * max(0.0, 1.0 - env_steps / horizon)
    for optim in (m.optim_qf, m.optim_pol, m.optim_alpha):
        if optim is not None:
            for group in optim.param_groups:
                group["lr"] = lr


def _check_off_policy(spec: RunSpec, hp: Mapping[str, Any], m: OffPolicyModels) -> None:
    """Refuse settings that cannot work: no (or both) iteration sizes; worker processes with
    exploration state that lives outside the policy's ``state_dict`` (the sampler only ships weights)."""
    if (hp["steps_per_iter"] > 0) == (hp["epis_per_iter"] > 0):
        raise ConfigError(
            f"{spec.algo}: set exactly one of steps_per_iter and epis_per_iter above 0, "
            f"got {hp['steps_per_iter']} and {hp['epis_per_iter']}"
        )
    noise = getattr(m.explore_pol, "noise", None)
    if spec.num_parallel > 1 and (isinstance(m.explore_pol, ArgmaxQfPol) or isinstance(noise, OUActionNoise)):
        raise ConfigError(
            f"{spec.algo}: --num-parallel above 1 is not supported with an epsilon schedule or OU noise "
            "(worker processes would not see their changes); use --num-parallel 1"
        )


def _sample_iteration(sampler: EpiSampler, pol: nn.Module, hp: Mapping[str, Any]) -> list[Epi]:
    """One iteration's episodes: ``steps_per_iter`` steps (episodes cut there), or ``epis_per_iter`` whole ones."""
    if hp["epis_per_iter"] > 0:
        return sampler.sample(pol, max_epis=hp["epis_per_iter"])
    return sampler.sample(pol, max_steps=hp["steps_per_iter"])


def off_policy_target_steps(steps: int, hp: Mapping[str, Any]) -> int:
    """Env steps an off-policy run trains for: ``steps`` rounded up to whole ``steps_per_iter`` iterations.

    With ``epis_per_iter`` the run stops after the episode that reaches ``steps``.
    """
    spi = int(hp["steps_per_iter"])
    return steps if spi <= 0 else spi * max(1, math.ceil(steps / spi))


# ---------------------------------------------------------------------------- run helpers
def resolve_hparams(algo: str, overrides: Mapping[str, Any]) -> HParams:
    """The recipe's defaults with ``overrides`` applied; unknown names raise."""
    defaults = recipe(algo).defaults
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown hyper-parameters for {algo}: {unknown}; known: {sorted(defaults)}")
    return {**defaults, **overrides}


def recipe(algo: str) -> Recipe:
    """The recipe named ``algo``; a clear error lists the known ones."""
    if algo not in RECIPES:
        raise ConfigError(f"unknown algorithm {algo!r}; available: {sorted(RECIPES)}")
    return RECIPES[algo]


def run_config(spec: RunSpec, hp: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-able description of a run written to ``config.json`` (``steps`` may change on resume)."""
    return {
        "algo": spec.algo,
        "env": spec.env,
        "seed": spec.seed,
        "num_parallel": spec.num_parallel,
        "hparams": dict(hp),
        "steps": spec.steps,
    }


def _check_resumable(saved: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    keys = ("algo", "env", "seed", "num_parallel", "hparams")
    diff = {k: (saved.get(k), current[k]) for k in keys if saved.get(k) != current[k]}
    if diff:
        detail = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise ConfigError(f"cannot resume exactly with different settings ({detail})")


def _prepare_logdir(spec: RunSpec, config: Mapping[str, Any]) -> Path:
    logdir = Path(spec.logdir)
    ckpt = logdir / CHECKPOINT_NAME
    if spec.resume and not ckpt.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {ckpt}")
    if not spec.resume and ckpt.exists():
        raise FileExistsError(
            f"{logdir} already holds a run; pass --resume to continue it or use another --logdir"
        )
    logdir.mkdir(parents=True, exist_ok=True)
    (logdir / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    return ckpt


def seed_everything(seed: int) -> None:
    """Seed torch, NumPy's global generator and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# ---------------------------------------------------------------------------- what every loop shares
def build_models(algo: str, env_id: str, hp: Mapping[str, Any]) -> Any:
    """``algo``'s models for the spaces of ``env_id``, built by its recipe from ``hp``."""
    probe = GymEnv(env_id)
    try:
        return recipe(algo).build(probe.observation_space, probe.action_space, hp)
    finally:
        probe.close()


@dataclass
class _Run:
    """The bookkeeping both training loops share: settings, counters, checkpoints, logging.

    :meth:`start` resolves the hyper-parameters, writes ``config.json`` and seeds the
    global RNGs; :meth:`restore` continues from the checkpoint on ``--resume``;
    :meth:`reporting` opens the progress bar and the logger; :meth:`end_iteration`
    saves a checkpoint when one is due.
    """

    spec: RunSpec
    hp: HParams
    config: dict[str, Any]
    ckpt_path: Path
    counters: dict[str, int] = field(default_factory=lambda: {"iteration": 0, "env_steps": 0, "episodes": 0})
    algo_state: HParams = field(default_factory=dict)

    @classmethod
    def start(cls, spec: RunSpec) -> _Run:
        hp = resolve_hparams(spec.algo, spec.hparams)
        config = run_config(spec, hp)
        ckpt_path = _prepare_logdir(spec, config)
        seed_everything(spec.seed)
        return cls(spec, hp, config, ckpt_path)

    def restore(self, entries: Mapping[str, Any]) -> None:
        """On ``--resume``: load ``entries`` (and the global RNG states), counters and algorithm state."""
        if not self.spec.resume:
            return
        ck = load_checkpoint(self.ckpt_path, entries)
        _check_resumable(ck.data["config"], self.config)
        self.counters, self.algo_state = dict(ck.data["counters"]), dict(ck.data["algo_state"])

    @contextmanager
    def reporting(self, total_steps: int) -> Iterator[tuple[ProgressBar, Logger]]:
        """A progress bar over ``total_steps`` env steps and a logger (resumed after the checkpoint's iteration)."""
        spec, c = self.spec, self.counters
        bar = ProgressBar(total_steps, c["env_steps"], enabled=spec.progress)
        logger = Logger(
            spec.logdir,
            console=bar.write if spec.console else None,
            resume_after=c["iteration"] if spec.resume else None,
            resume_env_steps=c["env_steps"],
        )
        logger.start_clock(c["env_steps"])
        with bar, logger:
            yield bar, logger

    def end_iteration(self, entries: Mapping[str, Any], last: bool) -> None:
        """Save a checkpoint after the last iteration and every ``checkpoint_every`` iterations."""
        every = self.spec.checkpoint_every
        if last or (every and self.counters["iteration"] % every == 0):
            save_checkpoint(
                self.ckpt_path,
                {**entries, "counters": self.counters, "algo_state": self.algo_state, "config": self.config},
            )

    def outcome(self, record: dict[str, float]) -> RunOutcome:
        c = self.counters
        return RunOutcome(c["iteration"], c["env_steps"], c["episodes"], record, self.ckpt_path)


# ---------------------------------------------------------------------------- the on-policy loop
def run_on_policy(spec: RunSpec) -> RunOutcome:
    """Train an on-policy recipe (ppo, ppo_kl, trpo, vpg) as described by ``spec``."""
    run = _Run.start(spec)
    hp = run.hp
    models: OnPolicyModels = build_models(spec.algo, spec.env, hp)
    update = ON_POLICY_UPDATES[spec.algo]
    gen = torch.Generator().manual_seed(spec.seed)
    spi = int(hp["steps_per_iter"])
    total_iters = max(1, math.ceil(spec.steps / spi))
    record: dict[str, float] = {}
    with EpiSampler(spec.env, models.pol, num_parallel=spec.num_parallel, seed=spec.seed) as sampler:
        entries = {**models.state(), "generator": gen, "sampler": sampler}
        run.restore(entries)
        counters = run.counters
        with run.reporting(total_iters * spi) as (bar, logger):
            while counters["iteration"] < total_iters:
                epis = sampler.sample(models.pol, max_steps=spi)
                traj = Traj.from_epis(epis)
                if models.obs_normalizer is not None:
                    models.obs_normalizer.update(traj["obs"])
                traj = estimate(traj, models.vf, hp["gamma"], hp["lam"])
                result = update(traj, models, hp, gen, run.algo_state)
                done = completed_epis(epis, spi, sampler.num_parallel)
                counters["iteration"] += 1
                counters["env_steps"] += traj.num_step
                counters["episodes"] += len(done)
                record = logger.log_iteration(
                    iteration=counters["iteration"],
                    env_steps=counters["env_steps"],
                    episodes=counters["episodes"],
                    epis=done,
                    result=result,
                )
                bar.update(traj.num_step)
                run.end_iteration(entries, last=counters["iteration"] == total_iters)
    return run.outcome(record)


# ---------------------------------------------------------------------------- the off-policy loop
def run_off_policy(spec: RunSpec) -> RunOutcome:
    """Train an off-policy recipe (sac, td3, ddpg, dqn, qtopt) as described by ``spec``.

    Each iteration samples with :func:`behaviour_pol`, adds the steps (with their
    ``next_obs``) to the replay buffer, and, once ``learning_starts`` steps are stored
    and ``train_freq`` new steps have arrived since the last update, takes
    ``grad_ratio`` gradient steps per new step. Checkpoints hold the models,
    optimizers, replay buffer, generators, sampler RNG states and counters.
    """
    run = _Run.start(spec)
    hp = run.hp
    models: OffPolicyModels = build_models(spec.algo, spec.env, hp)
    _check_off_policy(spec, hp, models)
    update = OFF_POLICY_UPDATES[spec.algo]
    buf = make_buffer(hp)
    gen = torch.Generator().manual_seed(spec.seed)
    target = off_policy_target_steps(spec.steps, hp)
    record: dict[str, float] = {}
    with EpiSampler(spec.env, models.explore_pol, num_parallel=spec.num_parallel, seed=spec.seed) as sampler:
        entries = {**models.state(), "buffer": buf, "generator": gen, "sampler": sampler}
        run.restore(entries)
        counters = run.counters
        counters.setdefault("pending", 0)  # new steps not yet trained on
        with run.reporting(target) as (bar, logger):
            while counters["env_steps"] < target:
                set_lr(models, hp, counters["env_steps"])
                pol = behaviour_pol(models, hp, counters["env_steps"])
                epis = _sample_iteration(sampler, pol, hp)
                traj = ef.add_next_obs(Traj.from_epis(epis))
                if hp.get("nstep", 1) > 1:
                    traj = ef.compute_nstep_rets(traj, hp["gamma"], hp["nstep"])
                buf.add(traj)
                done = completed_epis(epis, hp["steps_per_iter"], sampler.num_parallel)
                counters["iteration"] += 1
                counters["env_steps"] += traj.num_step
                counters["episodes"] += len(done)
                if counters["env_steps"] >= hp["learning_starts"]:  # warm-up steps are never "new"
                    counters["pending"] += traj.num_step
                result = None
                if counters["pending"] >= max(1, hp["train_freq"]):
                    result = update(buf, models, hp, gen, int(counters["pending"] * hp["grad_ratio"]))
                    counters["pending"] = 0
                epsilon = getattr(pol, "epsilon", None)
                record = logger.log_iteration(
                    iteration=counters["iteration"],
                    env_steps=counters["env_steps"],
                    episodes=counters["episodes"],
                    epis=done,
                    result=result,
                    extra=None if epsilon is None else {"epsilon": epsilon},
                )
                bar.update(traj.num_step)
                run.end_iteration(entries, last=counters["env_steps"] >= target)
    return run.outcome(record)


# ---------------------------------------------------------------------------- evaluation
@dataclass
class EvalResult:
    """Undiscounted returns of evaluation episodes."""

    returns: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


def load_policy(checkpoint: str | Path, env: str | None = None) -> tuple[BasePol, dict[str, Any]]:
    """The policy saved in a ``trajkit train`` checkpoint, rebuilt from its config, and the config."""
    config = read_checkpoint_data(checkpoint)["config"]
    models = build_models(config["algo"], env or config["env"], config["hparams"])
    load_checkpoint(checkpoint, {"pol": models.pol}, strict=False, restore_rng=False)
    return models.pol, config


def evaluate(
    checkpoint: str | Path,
    env: str | None = None,
    episodes: int = 10,
    deterministic: bool = True,
    seed: int = 12345,
    num_parallel: int = 1,
) -> EvalResult:
    """Run the checkpoint's policy for ``episodes`` whole episodes and return their returns."""
    pol, config = load_policy(checkpoint, env)
    with (
        torch.no_grad(),
        EpiSampler(env or config["env"], pol, num_parallel=num_parallel, seed=seed) as sampler,
    ):
        epis = sampler.sample(pol, max_epis=episodes, deterministic=deterministic)
    return EvalResult([float(np.sum(e["rews"], dtype=np.float64)) for e in epis])


# ---------------------------------------------------------------------------- registry
RECIPES: dict[str, Recipe] = {
    "ppo": Recipe(
        "ppo",
        "on_policy",
        ON_POLICY_DEFAULTS["ppo"],
        build_on_policy,
        run_on_policy,
        "PPO with the clipped objective (algos.ppo_clip)",
    ),
    "ppo_kl": Recipe(
        "ppo_kl",
        "on_policy",
        ON_POLICY_DEFAULTS["ppo_kl"],
        build_on_policy,
        run_on_policy,
        "PPO with an adaptive KL penalty (algos.ppo_kl)",
    ),
    "trpo": Recipe(
        "trpo",
        "on_policy",
        ON_POLICY_DEFAULTS["trpo"],
        build_on_policy,
        run_on_policy,
        "trust-region policy optimization (algos.trpo)",
    ),
    "vpg": Recipe(
        "vpg",
        "on_policy",
        ON_POLICY_DEFAULTS["vpg"],
        build_on_policy,
        run_on_policy,
        "vanilla policy gradient with a value baseline (algos.vpg)",
    ),
    "sac": Recipe(
        "sac",
        "off_policy",
        OFF_POLICY_DEFAULTS["sac"],
        build_sac,
        run_off_policy,
        "soft actor-critic, twin critics and learned temperature; Box actions (algos.sac)",
    ),
    "td3": Recipe(
        "td3",
        "off_policy",
        OFF_POLICY_DEFAULTS["td3"],
        build_td3,
        run_off_policy,
        "twin delayed DDPG with target smoothing; Box actions (algos.td3)",
    ),
    "ddpg": Recipe(
        "ddpg",
        "off_policy",
        OFF_POLICY_DEFAULTS["ddpg"],
        build_ddpg,
        run_off_policy,
        "deep deterministic policy gradient, optionally prioritized replay; Box actions (algos.ddpg)",
    ),
    "dqn": Recipe(
        "dqn",
        "off_policy",
        OFF_POLICY_DEFAULTS["dqn"],
        build_dqn,
        run_off_policy,
        "double DQN with dueling heads, optionally prioritized replay; Discrete actions (algos.dqn)",
    ),
    "qtopt": Recipe(
        "qtopt",
        "off_policy",
        OFF_POLICY_DEFAULTS["qtopt"],
        build_qtopt,
        run_off_policy,
        "QT-Opt: twin Q-learning with a cross-entropy-method argmax; Box actions (algos.qtopt)",
    ),
}


def describe(algo: str) -> str:
    """One line per default hyper-parameter of ``algo``, for ``--help``."""
    r = recipe(algo)
    return f"{algo}: {r.summary}\n" + "\n".join(f"    {k} = {json.dumps(v)}" for k, v in r.defaults.items())


def train(spec: RunSpec) -> RunOutcome:
    """Run ``spec`` with its recipe's loop."""
    return recipe(spec.algo).run(spec)


__all__ = [
    "ConfigError",
    "RECIPES",
    "Recipe",
    "RunSpec",
    "RunOutcome",
    "EvalResult",
    "train",
    "evaluate",
    "load_policy",
    "completed_epis",
    "describe",
    "resolve_hparams",
    "build_models",
    "OnPolicyModels",
    "build_on_policy",
    "run_on_policy",
    "ON_POLICY_UPDATES",
    "OffPolicyModels",
    "build_sac",
    "build_td3",
    "build_ddpg",
    "build_dqn",
    "build_qtopt",
    "run_off_policy",
    "OFF_POLICY_UPDATES",
    "Temperature",
    "UniformActionPol",
]
