"""Configs of the model-based family (MPC, PETS, MBPO), beside :mod:`trajkit.run.config`.

Imported at the end of :mod:`trajkit.run.config` so that :func:`~trajkit.run.config.algo_configs`
finds them; the layers are those of every config: the run settings, the family's
settings (:class:`ModelBasedConfig`: data collection and the dynamics ensemble), and
``train``, the keyword arguments of the algorithm's ``train()``. Hyper-parameters have no
default here: the presets (``trajkit/run/presets/{mpc,pets,mbpo}.yaml``) hold them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from trajkit.run.config import COUNT, NONNEG, POS, PROB, RunSettings, SACTrain
from trajkit.run.fields import ConfigError, hp

__all__ = ["DynamicsTrain", "MBPOConfig", "MPCConfig", "ModelBasedConfig", "PETSConfig"]



@dataclass(kw_only=True)
class DynamicsTrain:
    """Keyword arguments of :func:`trajkit.algos.dynamics.train`."""

    max_epochs: int = hp("passes over the training split at most, per fit", **COUNT)
    batch_size: int = hp("rows per ensemble member per gradient step", **COUNT)
    holdout_frac: float = hp("fraction of transitions held out for early stopping", low=0.0, high=0.99)
    patience: int = hp("epochs without a better held-out error before stopping", **COUNT)
    bootstrap: bool = hp("each member trains on its own bootstrap resample")


@dataclass(kw_only=True)
class ModelBasedConfig(RunSettings):
    """The learned dynamics model and data collection of the model-based loop (MPC, PETS, MBPO)."""

    family: ClassVar[str] = "model_based"

    learning_starts: int = hp("uniformly random actions for this many env steps before the first model fit", **NONNEG)
    steps_per_iter: int = hp("env steps between model fits (episodes continue across iterations)", **COUNT)
    buffer_size: int = hp("real replay buffer capacity in steps (the model trains on all of it)", **COUNT)
    ensemble_size: int = hp("members of the dynamics ensemble (1: a single model)", **COUNT)
    gaussian: bool = hp("probabilistic members (mean and log-variance) instead of deterministic ones")
    model_hidden: list[int] = hp("hidden layer sizes of each dynamics member", **COUNT)
    model_weight_decay: float = hp("dynamics model weight decay (Adam)", **NONNEG)
    reward: Literal["known", "learned"] = hp(
        "known: the env's reward function (trajkit.models.rewards.KNOWN_REWARDS: Pendulum-v1, "
        "InvertedPendulumSwingupBulletEnv-v0, ReacherBulletEnv-v0); learned: the model predicts it"
    )

    def check(self) -> None:
        from trajkit.models.rewards import KNOWN_REWARDS

        if self.reward == "known" and self.env not in KNOWN_REWARDS:
            raise ConfigError(f"{self.algo}: reward=known is only written for {', '.join(sorted(KNOWN_REWARDS))}; "
                              f"use reward=learned for {self.env}")


@dataclass(kw_only=True)
class MPCConfig(ModelBasedConfig):
    """Model-predictive control with a learned model, random shooting by default (machina's recipe)."""

    algo: ClassVar[str] = "mpc"
    summary: ClassVar[str] = "MPC in a learned dynamics model, random shooting or CEM; Box actions (trajkit.mpc)"

    lr: float = hp("dynamics model learning rate (Adam)", **POS)
    horizon: int = hp("actions planned ahead", **COUNT)
    num_samples: int = hp("action sequences per planner round (the population)", **COUNT)
    optimizer: Literal["cem", "random"] = hp("planner: cross-entropy method or random shooting")
    cem_iters: int = hp("CEM rounds per action", **COUNT)
    num_elites: int = hp("CEM elites per round", **COUNT)
    cem_alpha: float = hp("CEM smoothing of mean and std", **PROB)
    init_std: float = hp("CEM initial std as a fraction of the action half-range", **POS)
    noise_beta: float = hp("colour of CEM's sampling noise over time (0: white)", **NONNEG)
    warm_start: bool = hp("CEM starts from the previous plan shifted by one step")
    propagation: Literal["tsinf", "ts1", "mean"] = hp("how particles use the ensemble members (PETS)")
    particles: int | None = hp("particles per sequence, a multiple of ensemble_size (none: ensemble_size)", **COUNT)
    train: DynamicsTrain = hp("keyword arguments of dynamics.train")

    def check(self) -> None:
        super().check()
        if self.optimizer == "cem" and self.num_elites > self.num_samples:
            raise ConfigError(f"{self.algo}: num_elites ({self.num_elites}) must not exceed num_samples "
                              f"({self.num_samples})")


@dataclass(kw_only=True)
class PETSConfig(MPCConfig):
    """PETS: CEM planning over a probabilistic ensemble with trajectory sampling."""

    algo: ClassVar[str] = "pets"
    summary: ClassVar[str] = "PETS: CEM over a probabilistic ensemble, trajectory sampling; Box actions (trajkit.mpc)"


@dataclass(kw_only=True)
class MBPOConfig(ModelBasedConfig):
    """MBPO: SAC trained on real and imagined transitions from short model rollouts."""

    algo: ClassVar[str] = "mbpo"
    summary: ClassVar[str] = "MBPO: SAC on real and imagined transitions of a learned ensemble; Box actions"

    hidden: list[int] = hp("hidden layer sizes of the SAC networks", **COUNT)
    lr: float = hp("learning rate of the SAC optimizers (Adam)", **POS)
    model_lr: float = hp("dynamics model learning rate (Adam)", **POS)
    grad_ratio: float = hp("SAC gradient steps per real env step", **POS)
    real_ratio: float = hp("fraction of each SAC batch drawn from real transitions", **PROB)
    rollout_horizon: int = hp("steps of each imagined rollout", **COUNT)
    rollouts_per_step: int = hp("imagined rollouts branched per real env step", **COUNT)
    model_retain_iters: int = hp("iterations an imagined transition stays in the model buffer", **COUNT)
    model_max_epochs: int = hp("dynamics fit: passes over the training split at most", **COUNT)
    model_batch_size: int = hp("dynamics fit: rows per member per gradient step", **COUNT)
    model_holdout_frac: float = hp("dynamics fit: fraction held out for early stopping", low=0.0, high=0.99)
    model_patience: int = hp("dynamics fit: epochs without improvement before stopping", **COUNT)
    train: SACTrain = hp("keyword arguments of sac.train")

    def check(self) -> None:
        super().check()
        if self.reward != "learned":
            raise ConfigError("mbpo: the SAC policy acts in [-1, 1], not the env's units; use reward=learned")

    def model_train_kwargs(self) -> dict[str, Any]:
        """The dynamics fit's keyword arguments of :func:`trajkit.algos.dynamics.train`."""
        return {"max_epochs": self.model_max_epochs, "batch_size": self.model_batch_size,
                "holdout_frac": self.model_holdout_frac, "patience": self.model_patience, "bootstrap": True}
