"""Exploration noise for deterministic policies (DDPG, TD3).

A noise process maps ``(shape, generator)`` to a ``(B, A)`` tensor; its random draws
come from the generator the sampler passes to ``act()``, so rollouts are reproducible
from the sampler's seed. :class:`DeterministicActionNoisePol` wraps a
:class:`~trajkit.pols.DeterministicPol` and adds the noise to its actions; it never
builds a torch distribution (a zero-width one would fail validation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from trajkit.pds import DeterministicPd, Params


class ActionNoise:
    """Interface: ``noise(shape, generator, device) -> (B, A)`` and ``reset(rows)``."""

    def __call__(
        self, shape: torch.Size, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def reset(self, rows: Sequence[int] | None = None) -> None:
        """Forget the state of ``rows`` (all rows when None). Stateless noises ignore it."""


class GaussianActionNoise(ActionNoise):
    """Independent ``N(0, std**2)`` noise at every step."""

    def __init__(self, std: float) -> None:
        if std < 0:
            raise ValueError(f"std must be >= 0, got {std}")
        self.std = float(std)

    def __call__(self, shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        return self.std * torch.randn(shape, generator=generator, device=device)

    def __repr__(self) -> str:
        return f"GaussianActionNoise(std={self.std})"


class OUActionNoise(ActionNoise):
    """Ornstein-Uhlenbeck noise ``x <- x + theta (mu - x) dt + sigma sqrt(dt) N(0, 1)``, one state per batch row.

    The state of a row starts at ``mu`` and is kept between calls, so successive actions
    of one episode get temporally correlated noise. :meth:`reset` (all rows or some)
    returns them to ``mu``; the state also resets whenever the batch shape changes
    (a new sampler, a different number of envs).
    """

    def __init__(self, sigma: float = 0.2, theta: float = 0.15, dt: float = 1e-2, mu: float = 0.0) -> None:
        self.sigma, self.theta, self.dt, self.mu = float(sigma), float(theta), float(dt), float(mu)
        self._x: torch.Tensor | None = None

    def __call__(self, shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        if self._x is None or self._x.shape != shape or self._x.device != device:
            self._x = torch.full(shape, self.mu, device=device)
        eps = torch.randn(shape, generator=generator, device=device)
        self._x = self._x + self.theta * (self.mu - self._x) * self.dt + self.sigma * np.sqrt(self.dt) * eps
        return self._x

    def reset(self, rows: Sequence[int] | None = None) -> None:
        if self._x is None:
            return
        if rows is None:
            self._x = None
        else:
            self._x[torch.as_tensor(list(rows), dtype=torch.int64)] = self.mu

    def __repr__(self) -> str:
        return f"OUActionNoise(sigma={self.sigma}, theta={self.theta}, dt={self.dt}, mu={self.mu})"


class DeterministicActionNoisePol(nn.Module):
    """A deterministic policy plus exploration noise: ``a = clip(mu(s) + noise, -1, 1)``.

    ``pol`` is the wrapped :class:`~trajkit.pols.DeterministicPol` (a submodule: train it,
    sample with the wrapper). ``act(..., deterministic=True)`` returns ``mu(s)``. The
    stored parameters are ``{"mean": mu(s)}``. :meth:`reset` resets the noise's state
    (for OU noise: call it at episode starts, or let a batch-shape change do it).
    """

    pol: Any  # a DeterministicPol-like module: forward, to_env_ac, device
    noise: ActionNoise

    def __init__(self, pol: nn.Module, noise: ActionNoise) -> None:
        super().__init__()
        self.pol, self.noise = pol, noise
        self.pd = DeterministicPd()
        self.ob_space, self.ac_space = pol.ob_space, pol.ac_space

    def forward(self, obs: torch.Tensor) -> Params:
        return self.pol(obs)

    def act(
        self, obs: torch.Tensor, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Params]:
        """Actions ``(B, A)`` in ``[-1, 1]`` and ``{"mean": (B, A)}`` for observations ``(B, *obs_shape)``."""
        params = self.pol(obs)
        mean = params["mean"]
        if deterministic:
            return mean, params
        return (mean + self.noise(mean.shape, generator, mean.device)).clamp(-1.0, 1.0), params

    def reset(self, rows: Sequence[int] | None = None) -> None:
        self.noise.reset(rows)

    def to_env_ac(self, ac: np.ndarray) -> Any:
        return self.pol.to_env_ac(ac)

    @property
    def device(self) -> torch.device:
        return self.pol.device
