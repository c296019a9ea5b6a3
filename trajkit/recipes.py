"""Ready-made training runs: the registry behind ``trajkit train`` and ``trajkit eval``.

A :class:`Recipe` names an algorithm, its default hyper-parameters, a ``build``
function that makes the models for an environment, and a ``run`` function (one per
algorithm *family*) that runs the training loop with logging, a progress bar,
checkpoints and exact resume. :data:`RECIPES` maps the names the command accepts to
recipes.

Adding an algorithm of an existing family is one entry in :data:`RECIPES` plus, for
on-policy algorithms, an update function in :data:`ON_POLICY_UPDATES`. Adding a family
(e.g. off-policy) is a ``build`` and a ``run`` function with the same signatures as
:func:`build_on_policy` and :func:`run_on_policy`.

Runs are exactly resumable: a run stopped after a checkpoint and continued with
``resume=True`` produces bit-identical parameters (CPU) to the uninterrupted run,
because the checkpoint holds the models, optimizers, the minibatch generator, the
sampler's env and action RNG states, the global RNG states and the counters, and every
iteration samples a fixed number of steps (``--steps`` is rounded up to whole
iterations).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from trajkit import ef, nets
from trajkit.algos import ppo_clip, ppo_kl, trpo, vpg
from trajkit.algos.common import TrainResult
from trajkit.checkpoint import load_checkpoint, read_checkpoint_data, save_checkpoint
from trajkit.envs import GymEnv
from trajkit.logger import Logger, ProgressBar
from trajkit.normalizers import ObsNormalizer
from trajkit.pols import BasePol, CategoricalPol, GaussianPol, MultiCategoricalPol, flat_dim
from trajkit.samplers import EpiSampler
from trajkit.samplers.rollout import Epi, split_budget
from trajkit.traj import Traj
from trajkit.vfuncs import DeterministicSVfunc

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


# ---------------------------------------------------------------------------- the on-policy loop
def run_on_policy(spec: RunSpec) -> RunOutcome:
    """Train an on-policy recipe (ppo, ppo_kl, trpo, vpg) as described by ``spec``."""
    hp = resolve_hparams(spec.algo, spec.hparams)
    config = run_config(spec, hp)
    ckpt_path = _prepare_logdir(spec, config)
    seed_everything(spec.seed)
    probe = GymEnv(spec.env)
    models = build_on_policy(probe.observation_space, probe.action_space, hp)
    probe.close()
    update = ON_POLICY_UPDATES[spec.algo]
    gen = torch.Generator().manual_seed(spec.seed)
    counters = {"iteration": 0, "env_steps": 0, "episodes": 0}
    algo_state: HParams = {}
    spi = int(hp["steps_per_iter"])
    total_iters = max(1, math.ceil(spec.steps / spi))
    record: dict[str, float] = {}
    with EpiSampler(spec.env, models.pol, num_parallel=spec.num_parallel, seed=spec.seed) as sampler:
        entries = {**models.state(), "generator": gen, "sampler": sampler}
        if spec.resume:
            ck = load_checkpoint(ckpt_path, entries)
            _check_resumable(ck.data["config"], config)
            counters, algo_state = dict(ck.data["counters"]), dict(ck.data["algo_state"])
        bar = ProgressBar(total_iters * spi, counters["env_steps"], enabled=spec.progress)
        logger = Logger(
            spec.logdir,
            console=bar.write if spec.console else None,
            resume_after=counters["iteration"] if spec.resume else None,
            resume_env_steps=counters["env_steps"],
        )
        logger.start_clock(counters["env_steps"])
        with bar, logger:
            while counters["iteration"] < total_iters:
                epis = sampler.sample(models.pol, max_steps=spi)
                traj = Traj.from_epis(epis)
                if models.obs_normalizer is not None:
                    models.obs_normalizer.update(traj["obs"])
                traj = estimate(traj, models.vf, hp["gamma"], hp["lam"])
                result = update(traj, models, hp, gen, algo_state)
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
                last = counters["iteration"] == total_iters
                if last or (spec.checkpoint_every and counters["iteration"] % spec.checkpoint_every == 0):
                    save_checkpoint(
                        ckpt_path,
                        {**entries, "counters": counters, "algo_state": algo_state, "config": config},
                    )
    return RunOutcome(counters["iteration"], counters["env_steps"], counters["episodes"], record, ckpt_path)


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
    env_id = env or config["env"]
    probe = GymEnv(env_id)
    models = recipe(config["algo"]).build(probe.observation_space, probe.action_space, config["hparams"])
    probe.close()
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
]
