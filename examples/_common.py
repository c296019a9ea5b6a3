"""Plumbing shared by the example scripts: model builders and a uniform warm-up policy.

Kept apart so each ``run_*.py`` reads top to bottom as the algorithm itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import trajkit as tk


def build_pol_vf(
    env: tk.GymEnv, hidden: Sequence[int] = (64, 64), obs_norm: bool = False
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A policy matching the action space (categorical, multi-categorical or Gaussian) and a value function.

    With ``obs_norm`` both share one :class:`trajkit.ObsNormalizer` (update it from the
    training loop).
    """
    ob_space, ac_space = env.observation_space, env.action_space
    obs_dim = tk.pols.flat_dim(ob_space)
    norm = tk.ObsNormalizer(ob_space.shape) if obs_norm else None
    if isinstance(ac_space, gym.spaces.Discrete):
        pol = tk.CategoricalPol(ob_space, ac_space, tk.nets.mlp(obs_dim, int(ac_space.n), hidden, out_gain=0.01),
                                obs_normalizer=norm)
    elif isinstance(ac_space, gym.spaces.MultiDiscrete):
        pol = tk.MultiCategoricalPol(ob_space, ac_space, tk.nets.mlp(obs_dim, int(ac_space.nvec.sum()), hidden,
                                                                     out_gain=0.01), obs_normalizer=norm)
    else:
        ac_dim = int(np.prod(ac_space.shape))
        pol = tk.GaussianPol(ob_space, ac_space, tk.nets.mlp(obs_dim, ac_dim, hidden, out_gain=0.01),
                             obs_normalizer=norm)
    vf = tk.DeterministicSVfunc(ob_space, tk.nets.mlp(obs_dim, 1, hidden), obs_normalizer=norm)
    return pol, vf


class UniformPol(tk.RandomPol):
    """Uniform random actions in a learner's own ``[-1, 1]`` Box space, sent to the env as the learner sends its own.

    For the random warm-up of off-policy learners: the replay buffer then holds every
    action in the space the learner's Q-functions and log-likelihoods use.
    """

    def __init__(self, pol: torch.nn.Module) -> None:
        shape = pol.ac_space.shape
        super().__init__(pol.ob_space, gym.spaces.Box(-1.0, 1.0, shape, dtype=np.float32))
        self._to_env = pol.to_env_ac

    def to_env_ac(self, ac: np.ndarray) -> Any:
        return self._to_env(ac)
