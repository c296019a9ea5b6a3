"""Ensembles of MLPs evaluated in one batched forward: ``E`` members, no Python loop over them.

Shapes: ``E`` ensemble members, ``B`` rows per member, ``I``/``O`` input/output features.
A member's weights are slice ``e`` of every layer's ``(E, I, O)`` weight tensor, so the
whole ensemble runs as one ``torch.baddbmm`` per layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class EnsembleLinear(nn.Module):
    """``E`` independent linear layers: ``(E, B, I) -> (E, B, O)``.

    Initialized like ``nn.Linear`` (uniform in ``+-1/sqrt(I)``), each member independently.
    """

    def __init__(self, num_members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(num_members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def member(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Member ``e`` alone on ``x: (B, I)`` -> ``(B, O)`` (the reference the batched forward must equal)."""
        return x @ self.weight[e] + self.bias[e, 0]

    def extra_repr(self) -> str:
        e, i, o = self.weight.shape
        return f"num_members={e}, in_dim={i}, out_dim={o}"


class EnsembleMLP(nn.Module):
    """``E`` MLPs ``(E, B, I) -> (E, B, O)`` with SiLU hidden activations (PETS/MBPO use Swish)."""

    def __init__(self, num_members: int, in_dim: int, out_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        if num_members < 1:
            raise ValueError(f"num_members must be >= 1, got {num_members}")
        dims = [in_dim, *hidden, out_dim]
        self.layers: list[EnsembleLinear] = nn.ModuleList(  # type: ignore[assignment]  # a ModuleList of EnsembleLinear
            EnsembleLinear(num_members, i, o) for i, o in zip(dims[:-1], dims[1:], strict=True)
        )
        self.num_members = num_members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[0] != self.num_members:
            raise ValueError(f"EnsembleMLP takes (E={self.num_members}, B, I) inputs, got {tuple(x.shape)}")
        for layer in self.layers[:-1]:
            x = nn.functional.silu(layer(x))
        return self.layers[-1](x)

    def member(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Member ``e`` alone on ``x: (B, I)`` -> ``(B, O)``, layer by layer (slow reference)."""
        for layer in self.layers[:-1]:
            x = nn.functional.silu(layer.member(e, x))
        return self.layers[-1].member(e, x)
