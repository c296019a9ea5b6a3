"""trajkit: a functional PyTorch reinforcement-learning toolkit.

Samplers produce episodes, :class:`Traj` holds them as flat columns, estimator
functions in :mod:`trajkit.ef` transform a Traj into a new one, and each algorithm in
:mod:`trajkit.algos` has one ``train()`` that updates the models.
"""

from trajkit import ef, lf, nets, pds
from trajkit.buffers import PrioritizedReplayBuffer, ReplayBuffer
from trajkit.envs import GymEnv
from trajkit.evaluation import evaluate
from trajkit.noise import DeterministicActionNoisePol, GaussianActionNoise, OUActionNoise
from trajkit.normalizers import ObsNormalizer, RunningNormalizer
from trajkit.pols import (
    ArgmaxQfPol,
    CategoricalPol,
    DeterministicPol,
    GaussianPol,
    MultiCategoricalPol,
    RandomPol,
    SquashedGaussianPol,
)
from trajkit.samplers import EpiSampler, WorkerError
from trajkit.traj import MissingColumnError, Traj, concat
from trajkit.vfuncs import CEMDeterministicSAVfunc, DeterministicSAVfunc, DeterministicSVfunc, DiscreteQfunc

__version__ = "0.1.0"

__all__ = [
    "ArgmaxQfPol",
    "CEMDeterministicSAVfunc",
    "DeterministicActionNoisePol",
    "DiscreteQfunc",
    "GaussianActionNoise",
    "OUActionNoise",
    "PrioritizedReplayBuffer",
    "ReplayBuffer",
    "SquashedGaussianPol",
    "CategoricalPol",
    "DeterministicPol",
    "DeterministicSAVfunc",
    "DeterministicSVfunc",
    "EpiSampler",
    "GaussianPol",
    "GymEnv",
    "MissingColumnError",
    "MultiCategoricalPol",
    "ObsNormalizer",
    "RandomPol",
    "RunningNormalizer",
    "Traj",
    "WorkerError",
    "concat",
    "ef",
    "evaluate",
    "lf",
    "nets",
    "pds",
]
