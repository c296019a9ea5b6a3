"""The algorithms the run layer trains: one line each, pairing a config with its models and ``train()``.

Adding an algorithm of an existing family is a config class (:mod:`trajkit.run.config`),
a preset file (``presets/ALGO.yaml``) and one line in :data:`REGISTRY`; its family's loop
does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import torch

from trajkit.algos import ddpg, dqn, dynamics, ppo_clip, ppo_kl, qtopt, r2d2_sac, sac, td3, trpo, vpg
from trajkit.algos.common import TrainResult
from trajkit.run.adversarial_config import AIRLConfig, DIAYNConfig, GAILConfig, GAILSACConfig
from trajkit.run.config import (
    DDPGConfig,
    DQNConfig,
    PPOConfig,
    PPOKLConfig,
    QTOptConfig,
    RunSettings,
    SACConfig,
    TD3Config,
    TRPOConfig,
    VPGConfig,
)
from trajkit.run.fields import ConfigError
from trajkit.run.model_based_config import MBPOConfig, MPCConfig, PETSConfig
from trajkit.run.models import (
    Builder,
    Models,
    build_ddpg,
    build_dqn,
    build_mbpo,
    build_mpc,
    build_on_policy,
    build_qtopt,
    build_r2d2_sac,
    build_sac,
    build_td3,
)
from trajkit.run.r2d2_config import R2D2SACConfig
from trajkit.run.registry_adversarial import build_adversarial


@dataclass(frozen=True)
class Algorithm:
    """An algorithm of the run layer: its config class, model factory and ``train()``."""

    config: type[RunSettings]
    build: Builder
    train: Callable[..., TrainResult]


REGISTRY: dict[str, Algorithm] = {
    "ppo": Algorithm(PPOConfig, build_on_policy, ppo_clip.train),
    "ppo_kl": Algorithm(PPOKLConfig, build_on_policy, ppo_kl.train),
    "trpo": Algorithm(TRPOConfig, build_on_policy, trpo.train),
    "vpg": Algorithm(VPGConfig, build_on_policy, vpg.train),
    "sac": Algorithm(SACConfig, build_sac, sac.train),
    "r2d2_sac": Algorithm(R2D2SACConfig, build_r2d2_sac, r2d2_sac.train),
    "td3": Algorithm(TD3Config, build_td3, td3.train),
    "ddpg": Algorithm(DDPGConfig, build_ddpg, ddpg.train),
    "dqn": Algorithm(DQNConfig, build_dqn, dqn.train),
    "qtopt": Algorithm(QTOptConfig, build_qtopt, qtopt.train),
    "mpc": Algorithm(MPCConfig, build_mpc, dynamics.train),
    "pets": Algorithm(PETSConfig, build_mpc, dynamics.train),
    "mbpo": Algorithm(MBPOConfig, build_mbpo, sac.train),
    "gail": Algorithm(GAILConfig, build_adversarial, ppo_clip.train),
    "gail_sac": Algorithm(GAILSACConfig, build_adversarial, sac.train),
    "airl": Algorithm(AIRLConfig, build_adversarial, sac.train),
    "diayn_sac": Algorithm(DIAYNConfig, build_adversarial, sac.train),
}


def algorithm(cfg: RunSettings) -> Algorithm:
    """The registry entry of ``cfg``'s algorithm."""
    entry = REGISTRY.get(cfg.algo)
    if entry is None or not isinstance(cfg, entry.config):
        raise ConfigError(f"no registered algorithm for a {type(cfg).__name__} ({cfg.algo!r})")
    return entry


def build_models(cfg: RunSettings, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """The models of ``cfg``'s algorithm for these spaces, on ``cfg.device`` (what ``trajkit train`` trains)."""
    models: Models = algorithm(cfg).build(cfg, ob_space, ac_space)
    return models.to(torch.device(cfg.device))

