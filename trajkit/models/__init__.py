"""Learned dynamics models (deterministic, Gaussian, ensembles) and known reward functions.

Train them with :func:`trajkit.algos.dynamics.train`; plan with them through
:class:`trajkit.mpc.MPCPol`; roll policies out inside them with
:mod:`trajkit.envs.model_env`.
"""

from __future__ import annotations

from trajkit.models.dynamics import DynamicsModel, GaussianDynamicsModel, Standardizer
from trajkit.models.ensemble import EnsembleLinear, EnsembleMLP
from trajkit.models.rewards import KNOWN_REWARDS, pendulum_reward, reacher_reward, swingup_reward

__all__ = [
    "KNOWN_REWARDS",
    "DynamicsModel",
    "EnsembleLinear",
    "EnsembleMLP",
    "GaussianDynamicsModel",
    "Standardizer",
    "pendulum_reward",
    "reacher_reward",
    "swingup_reward",
]
