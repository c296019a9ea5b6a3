"""Value and action-value functions."""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from trajkit.pols import _out_dim, flat_dim


class DeterministicSVfunc(nn.Module):
    """State value ``V(s)``: ``(B, *obs_shape) -> (B,)``; ``net`` maps ``(B, obs_dim)`` to ``(B, 1)``."""

    def __init__(self, ob_space: gym.Space, net: nn.Module, *, obs_normalizer: nn.Module | None = None) -> None:
        super().__init__()
        out = _out_dim(net, flat_dim(ob_space))
        if out != 1:
            raise ValueError(f"a state-value net must output 1 value, this one outputs {out}")
        self.ob_space, self.net, self.obs_normalizer = ob_space, net, obs_normalizer

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.float()
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer(obs)
        return self.net(obs.reshape(obs.shape[0], -1)).squeeze(-1)


class DeterministicSAVfunc(nn.Module):
    """Action value ``Q(s, a)``: ``(B, *obs_shape), (B, *ac_shape) -> (B,)``.

    ``net`` maps the concatenation ``(B, obs_dim + ac_dim)`` to ``(B, 1)``. Actions are
    taken in the policy's space (``traj["acs"]``), not the env's rescaled one.
    """

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.Space,
        net: nn.Module,
        *,
        obs_normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        out = _out_dim(net, flat_dim(ob_space) + flat_dim(ac_space))
        if out != 1:
            raise ValueError(f"a Q net must output 1 value, this one outputs {out}")
        self.ob_space, self.ac_space = ob_space, ac_space
        self.net, self.obs_normalizer = net, obs_normalizer

    def forward(self, obs: torch.Tensor, acs: torch.Tensor) -> torch.Tensor:
        obs = obs.float()
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer(obs)
        x = torch.cat([obs.reshape(obs.shape[0], -1), acs.float().reshape(acs.shape[0], -1)], -1)
        return self.net(x).squeeze(-1)
