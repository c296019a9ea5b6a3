"""Algorithms: one module per algorithm, each with a keyword-only ``train()``."""

from trajkit.algos import ppo_clip, ppo_kl, trpo, vpg
from trajkit.algos.common import TrainResult

__all__ = ["ppo_clip", "ppo_kl", "trpo", "vpg", "TrainResult"]
