"""Algorithms: one module per algorithm, each with a keyword-only ``train()``."""

from trajkit.algos import ddpg, dqn, ppo_clip, ppo_kl, qtopt, r2d2_sac, sac, td3, trpo, vpg
from trajkit.algos.common import TrainResult, polyak_update

__all__ = [
    "ddpg", "dqn", "ppo_clip", "ppo_kl", "qtopt", "r2d2_sac", "sac", "td3", "trpo", "vpg",
    "TrainResult", "polyak_update",
]
