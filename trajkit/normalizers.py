"""Running mean/variance normalization, stored as module buffers (part of ``state_dict``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


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
