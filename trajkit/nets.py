"""Network builders."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: Sequence[int] = (64, 64),
    activation: type[nn.Module] = nn.Tanh,
    out_gain: float = 1.0,
    orthogonal: bool = True,
) -> nn.Sequential:
    """A multi-layer perceptron ``(B, in_dim) -> (B, out_dim)``.

    With ``orthogonal`` (default) hidden layers get orthogonal weights with gain
    ``sqrt(2)`` and the output layer gain ``out_gain`` (use 0.01 for a policy's mean or
    logits, 1.0 for a value), biases 0: the initialization PPO implementations rely on.
    """
    layers: list[nn.Module] = []
    dims = [in_dim, *hidden]
    for i, o in zip(dims[:-1], dims[1:], strict=True):
        layers += [_init(nn.Linear(i, o), math.sqrt(2), orthogonal), activation()]
    layers.append(_init(nn.Linear(dims[-1], out_dim), out_gain, orthogonal))
    return nn.Sequential(*layers)


def _init(layer: nn.Linear, gain: float, orthogonal: bool) -> nn.Linear:
    if orthogonal:
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return layer


class DuelingHead(nn.Module):
    """Dueling Q head: ``Q(s, .) = V(s) + A(s, .) - mean_a A(s, a)``, ``(B, feat) -> (B, n)``."""

    def __init__(self, feat_dim: int, n: int, hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        self.v = mlp(feat_dim, 1, hidden, nn.ReLU)
        self.a = mlp(feat_dim, n, hidden, nn.ReLU)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        a = self.a(feat)
        return self.v(feat) + a - a.mean(-1, keepdim=True)


def dueling_mlp(in_dim: int, n: int, hidden: Sequence[int] = (64, 64)) -> nn.Sequential:
    """An MLP trunk with a :class:`DuelingHead`: ``(B, in_dim) -> (B, n)`` Q-values."""
    trunk = mlp(in_dim, hidden[-1], hidden[:-1], nn.ReLU)
    return nn.Sequential(trunk, nn.ReLU(), DuelingHead(hidden[-1], n))
