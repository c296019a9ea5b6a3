"""trajkit: a functional PyTorch reinforcement-learning toolkit.

Samplers produce episodes, :class:`Traj` holds them as flat columns, estimator
functions in :mod:`trajkit.ef` transform a Traj into a new one, and each algorithm in
:mod:`trajkit.algos` has one ``train()`` that updates the models.

Names are imported on first use, so ``import trajkit`` (and the ``trajkit`` command's
``--help``) does not pay for torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "ArgmaxQfPol": "trajkit.pols",
    "CategoricalPol": "trajkit.pols",
    "DeterministicPol": "trajkit.pols",
    "GaussianPol": "trajkit.pols",
    "MultiCategoricalPol": "trajkit.pols",
    "RandomPol": "trajkit.pols",
    "SquashedGaussianPol": "trajkit.pols",
    "CEMDeterministicSAVfunc": "trajkit.vfuncs",
    "DeterministicSAVfunc": "trajkit.vfuncs",
    "DeterministicSVfunc": "trajkit.vfuncs",
    "DiscreteQfunc": "trajkit.vfuncs",
    "DeterministicActionNoisePol": "trajkit.noise",
    "GaussianActionNoise": "trajkit.noise",
    "OUActionNoise": "trajkit.noise",
    "ObsNormalizer": "trajkit.normalizers",
    "RunningNormalizer": "trajkit.normalizers",
    "RewScaler": "trajkit.normalizers",
    "PrioritizedReplayBuffer": "trajkit.buffers",
    "ReplayBuffer": "trajkit.buffers",
    "SeqReplayBuffer": "trajkit.seq_buffer",
    "GymEnv": "trajkit.envs",
    "EpiSampler": "trajkit.samplers",
    "WorkerError": "trajkit.samplers",
    "SamplerTimeout": "trajkit.samplers",
    "NonFiniteActionError": "trajkit.samplers",
    "EpisodeStats": "trajkit.episode_stats",
    "MissingColumnError": "trajkit.traj",
    "Traj": "trajkit.traj",
    "concat": "trajkit.traj",
    "save_traj": "trajkit.io",
    "load_traj": "trajkit.io",
    "evaluate": "trajkit.evaluation",
    "record_epis": "trajkit.expert_data",
    "load_minari": "trajkit.minari_io",
    "save_minari": "trajkit.minari_io",
    "make_pol_vf": "trajkit.run.models",
    "DynamicsModel": "trajkit.models",
    "GaussianDynamicsModel": "trajkit.models",
    "MPCPol": "trajkit.mpc",
    "ModelEnv": "trajkit.envs.model_env",
}
_SUBMODULES = (
    "algos", "buffers", "checkpoint", "checks", "console", "devices", "ef", "envs", "episode_stats", "evaluation",
    "expert_data", "minari_io",
    "io", "lf", "logger", "nets", "noise", "normalizers", "pds", "plot", "pols", "run", "samplers", "spaces", "traj",
    "vfuncs", "models", "mpc",
)

if TYPE_CHECKING:
    from trajkit import (
        algos,
        buffers,
        checkpoint,
        checks,
        console,
        devices,
        ef,
        envs,
        episode_stats,
        evaluation,
        expert_data,
        io,
        lf,
        logger,
        minari_io,
        nets,
        noise,
        normalizers,
        pds,
        plot,
        pols,
        run,
        samplers,
        spaces,
        traj,
        vfuncs,
    )
    from trajkit.buffers import PrioritizedReplayBuffer, ReplayBuffer
    from trajkit.envs import GymEnv
    from trajkit.episode_stats import EpisodeStats
    from trajkit.evaluation import evaluate
    from trajkit.expert_data import record_epis
    from trajkit.io import load_traj, save_traj
    from trajkit.minari_io import load_minari, save_minari
    from trajkit.noise import DeterministicActionNoisePol, GaussianActionNoise, OUActionNoise
    from trajkit.normalizers import ObsNormalizer, RewScaler, RunningNormalizer
    from trajkit.pols import (
        ArgmaxQfPol,
        CategoricalPol,
        DeterministicPol,
        GaussianPol,
        MultiCategoricalPol,
        RandomPol,
        SquashedGaussianPol,
    )
    from trajkit.run.models import make_pol_vf
    from trajkit.samplers import EpiSampler, NonFiniteActionError, SamplerTimeout, WorkerError
    from trajkit.seq_buffer import SeqReplayBuffer
    from trajkit.traj import MissingColumnError, Traj, concat
    from trajkit.vfuncs import CEMDeterministicSAVfunc, DeterministicSAVfunc, DeterministicSVfunc, DiscreteQfunc


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"trajkit.{name}")
    else:
        raise AttributeError(f"module 'trajkit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])


__all__ = [
    "ArgmaxQfPol",
    "CEMDeterministicSAVfunc",
    "CategoricalPol",
    "DeterministicActionNoisePol",
    "DeterministicPol",
    "DeterministicSAVfunc",
    "DeterministicSVfunc",
    "DiscreteQfunc",
    "EpiSampler",
    "EpisodeStats",
    "GaussianActionNoise",
    "GaussianPol",
    "GymEnv",
    "MissingColumnError",
    "MultiCategoricalPol",
    "NonFiniteActionError",
    "OUActionNoise",
    "ObsNormalizer",
    "PrioritizedReplayBuffer",
    "RandomPol",
    "ReplayBuffer",
    "RewScaler",
    "RunningNormalizer",
    "SamplerTimeout",
    "SeqReplayBuffer",
    "SquashedGaussianPol",
    "Traj",
    "WorkerError",
    "algos",
    "buffers",
    "checkpoint",
    "checks",
    "concat",
    "console",
    "devices",
    "ef",
    "envs",
    "episode_stats",
    "evaluate",
    "evaluation",
    "expert_data",
    "io",
    "lf",
    "load_minari",
    "load_traj",
    "logger",
    "minari_io",
    "make_pol_vf",
    "nets",
    "noise",
    "normalizers",
    "pds",
    "plot",
    "pols",
    "record_epis",
    "run",
    "samplers",
    "save_minari",
    "save_traj",
    "spaces",
    "traj",
    "vfuncs",
]
