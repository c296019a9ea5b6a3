"""Running mean/variance normalization, stored as module buffers (part of ``state_dict``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from trajkit.checks import check_float, check_unit
from trajkit.ef.kernels import discounted_returns

if TYPE_CHECKING:
    from trajkit.traj import Traj


class RunningNormalizer(nn.Module):
    """Normalizes inputs of shape ``(B, *shape)`` by a running mean and variance.

    The statistics are buffers, so they are saved with the owning policy or value
    function's ``state_dict``, shipped to sampler workers with its weights, and moved
    by ``.to(device)``. They change only when :meth:`update` is called: the training
    loop decides when (typically once per iteration on the fresh ``traj["obs"]``).
    One instance can be shared by a policy and a value function.
    """

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, shape: Sequence[int], clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.clip, self.eps = clip, eps
        self.register_buffer("mean", torch.zeros(tuple(shape), dtype=torch.float64))
        self.register_buffer("var", torch.ones(tuple(shape), dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the statistics of a batch ``x: (B, *shape)`` (parallel-variance formula)."""
        x = x.to(self.mean.device, torch.float64).reshape(-1, *self.mean.shape)
        if len(x) == 0:
            return
        b_mean, b_var, b_count = x.mean(0), x.var(0, unbiased=False), float(len(x))
        total = self.count + b_count
        delta = b_mean - self.mean
        m2 = self.var * self.count + b_var * b_count + delta.pow(2) * self.count * b_count / total
        self.mean.add_(delta * b_count / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``clip((x - mean) / sqrt(var + eps))``, same shape and dtype as ``x``."""
        mean = self.mean.to(x.dtype)
        std = torch.sqrt(self.var + self.eps).to(x.dtype)
        return ((x - mean) / std).clamp(-self.clip, self.clip)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.mean.shape)}, clip={self.clip}"


#: the name used for observation normalization
ObsNormalizer = RunningNormalizer


class RewScaler(nn.Module):
    """Divides rewards by a running standard deviation of discounted returns.

    The reward scaling of stable-baselines3's ``VecNormalize(norm_reward=True)``, on Traj:
    :meth:`update` merges the discounted returns ``sum_k gamma^k r_{t+k}`` of a sampled
    Traj (each to the end of its piece, no bootstrap: the returns of the rewards the
    Traj holds) into running statistics; calling the scaler divides rewards by
    ``sqrt(var + eps)`` of those returns and clips them to ``[-clip, clip]``. Rewards are
    never shifted (a constant added to every reward would change which outcome is best,
    e.g. make living longer a cost). Value targets then stay near unit scale whatever
    the task's reward scale, which is what lets PPO's value function keep up (recurrent
    PPO on ``CartPoleNoVel-v1``: 165 without, 500 with, seed 0). Apply it with
    :func:`trajkit.ef.scale_rews`; the statistics are buffers (saved in a checkpoint).
    Before the first update the divisor is 1. Unlike the env wrapper
    :class:`trajkit.envs.RewNormEnv` (statistics per env copy, inside each sampler
    worker), the scaler sits with the learner: one set of statistics for every env and
    worker, and the sampled episodes keep the env's own rewards (so logged returns do).
    """

    def __init__(self, gamma: float, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.gamma = check_unit("gamma", gamma)
        self.clip = check_float("clip", clip, min_value=0.0, min_open=True)
        self.eps = check_float("eps", eps, min_value=0.0)
        self.stats = RunningNormalizer((), clip=math.inf, eps=eps)

    @torch.no_grad()
    def update(self, traj: Traj) -> None:
        """Merge the discounted returns of every step of ``traj`` (its ``rews: (N,)``) into the statistics."""
        if traj.num_step == 0:
            return
        rews = traj["rews"].to(torch.float64)
        zeros = torch.zeros(traj.num_epi, dtype=torch.float64, device=rews.device)
        rets = discounted_returns(rews, zeros, torch.ones_like(zeros, dtype=torch.bool), traj.bounds.to(rews.device),
                                  gamma=self.gamma)
        self.stats.update(rets)

    @property
    def std(self) -> float:
        """The current divisor, ``sqrt(var + eps)`` of the returns seen (1 before any update)."""
        return math.sqrt(float(self.stats.var) + self.eps)

    def forward(self, rews: torch.Tensor) -> torch.Tensor:
        """``clip(rews / std)``, same shape and dtype as ``rews``."""
        return (rews / self.std).clamp(-self.clip, self.clip)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, clip={self.clip}"
