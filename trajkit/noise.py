"""Exploration: noise for deterministic policies (DDPG, TD3) and the state it keeps.

Everything that sets how a policy explores, and may change during training (a noise
scale, DQN's epsilon), is a registered **buffer** (:class:`ScalarBuffers`): it is in the
policy's ``state_dict``, so the sampler, which ships ``pol.state_dict()`` to its worker
processes before every ``sample()``, carries it, and a policy loaded from another's
``state_dict`` explores identically.

A noise process is a module mapping ``(shape, generator, device)`` to a ``(B, A)``
tensor; its random draws come from the generator the sampler passes to ``act()``, so
rollouts are reproducible from the sampler's seed. :class:`DeterministicActionNoisePol`
wraps a :class:`~trajkit.pols.DeterministicPol` and adds the noise to its actions; it
never builds a torch distribution (a zero-width one would fail validation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from trajkit.checks import check_float
from trajkit.devices import module_device
from trajkit.pds import DeterministicPd, Params


def _nonneg(name: str, x: object) -> float:
    return check_float(name, x, min_value=0.0)


def _finite(name: str, x: object) -> float:
    return check_float(name, x)


class ScalarBuffers(nn.Module):
    """A module whose scalar exploration settings are 0-dim float64 buffers.

    Declare them in ``scalar_checks`` (name -> check) and create them with
    :meth:`add_scalar`. Reading ``m.name`` gives the 0-dim tensor (``float(m.name)``
    for a number); assigning a number (``m.epsilon = 0.05``) checks it and writes it
    into the buffer in place, so it stays in ``state_dict`` and on the module's device.
    A ``state_dict`` saved before these settings were buffers still loads (they keep
    their current values).
    """

    scalar_checks: ClassVar[dict[str, Callable[[str, object], float]]] = {}

    def add_scalar(self, name: str, value: object) -> None:
        self.register_buffer(name, torch.tensor(self.scalar_checks[name](name, value), dtype=torch.float64))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # a state saved before these settings were buffers lacks them: keep the current values
        for name, buf in self._buffers.items():
            if buf is not None and prefix + name not in state_dict:
                state_dict[prefix + name] = buf
        super()._load_from_state_dict(state_dict, prefix, *args)

    def __setattr__(self, name: str, value: Any) -> None:
        buffers = self.__dict__.get("_buffers") or {}
        if name in self.scalar_checks and name in buffers and not isinstance(value, torch.Tensor):
            buffers[name].fill_(self.scalar_checks[name](name, value))
            return
        super().__setattr__(name, value)


class ActionNoise(ScalarBuffers):
    """Interface: ``noise(shape, generator, device) -> (B, A)`` and ``reset(rows)``.

    Subclasses keep their parameters as scalar buffers (see :class:`ScalarBuffers`).
    """

    def forward(
        self, shape: torch.Size, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def reset(self, rows: Sequence[int] | None = None) -> None:
        """Forget the state of ``rows`` (all rows when None). Stateless noises ignore it."""


class GaussianActionNoise(ActionNoise):
    """Independent ``N(0, std**2)`` noise at every step; ``std`` is a buffer (set it for a schedule)."""

    scalar_checks = {"std": _nonneg}
    std: torch.Tensor

    def __init__(self, std: float) -> None:
        super().__init__()
        self.add_scalar("std", std)

    def forward(self, shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        return float(self.std) * torch.randn(shape, generator=generator, device=device)

    def extra_repr(self) -> str:
        return f"std={float(self.std)}"


class OUActionNoise(ActionNoise):
    """Ornstein-Uhlenbeck noise ``x <- x + theta (mu - x) dt + sigma sqrt(dt) N(0, 1)``, one state per batch row.

    ``sigma``, ``theta``, ``dt`` and ``mu`` are buffers (in ``state_dict``). The running
    value ``x`` of a row starts at ``mu`` and is kept between calls, so successive actions
    of one episode get temporally correlated noise; ``x`` itself is per process (not in
    ``state_dict``). :meth:`reset` of all rows returns it to ``mu`` and counts the reset
    in the buffer ``resets``: a copy that loads this noise's ``state_dict`` (a sampler
    worker) restarts its own ``x`` at the next call too, so resetting before each
    ``sample()`` resets every worker. A reset of some rows, and a change of the batch
    shape (a new sampler, a different number of envs), reset only this process's ``x``.
    """

    scalar_checks = {"sigma": _nonneg, "theta": _nonneg, "dt": _nonneg, "mu": _finite}
    sigma: torch.Tensor
    theta: torch.Tensor
    dt: torch.Tensor
    mu: torch.Tensor
    resets: torch.Tensor

    def __init__(self, sigma: float = 0.2, theta: float = 0.15, dt: float = 1e-2, mu: float = 0.0) -> None:
        super().__init__()
        for name, value in (("sigma", sigma), ("theta", theta), ("dt", dt), ("mu", mu)):
            self.add_scalar(name, value)
        self.register_buffer("resets", torch.zeros((), dtype=torch.int64))
        self._x: torch.Tensor | None = None
        self._x_resets = 0  # the value of ``resets`` when ``_x`` started

    def forward(self, shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        resets = int(self.resets)
        mu, sigma, theta, dt = float(self.mu), float(self.sigma), float(self.theta), float(self.dt)
        x = self._x
        if x is None or x.shape != shape or x.device != device or self._x_resets != resets:
            x, self._x_resets = torch.full(shape, mu, device=device), resets
        eps = torch.randn(shape, generator=generator, device=device)
        self._x = x + theta * (mu - x) * dt + sigma * np.sqrt(dt) * eps
        return self._x

    def reset(self, rows: Sequence[int] | None = None) -> None:
        if rows is None:
            self.resets.add_(1)
            self._x = None
        elif self._x is not None:
            self._x[torch.as_tensor(list(rows), dtype=torch.int64)] = float(self.mu)

    def extra_repr(self) -> str:
        return f"sigma={float(self.sigma)}, theta={float(self.theta)}, dt={float(self.dt)}, mu={float(self.mu)}"


class DeterministicActionNoisePol(nn.Module):
    """A deterministic policy plus exploration noise: ``a = clip(mu(s) + noise, -1, 1)``.

    ``pol`` is the wrapped :class:`~trajkit.pols.DeterministicPol` and ``noise`` an
    :class:`ActionNoise`; both are submodules, so ``state_dict`` holds the policy's
    weights and the noise's parameters (train ``pol``, sample with the wrapper).
    ``act(..., deterministic=True)`` returns ``mu(s)``. The stored parameters are
    ``{"mean": mu(s)}``. :meth:`reset` resets the noise's state (for OU noise: call it
    before each ``sample()``; workers follow, see :class:`OUActionNoise`).
    """

    pol: Any  # a DeterministicPol-like module: forward, to_env_ac
    noise: ActionNoise

    def __init__(self, pol: nn.Module, noise: ActionNoise) -> None:
        super().__init__()
        if not isinstance(noise, ActionNoise):
            raise TypeError(f"noise must be an ActionNoise (a module whose settings are buffers), got {noise!r}")
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
        return module_device(self)


__all__ = [
    "ActionNoise",
    "DeterministicActionNoisePol",
    "GaussianActionNoise",
    "OUActionNoise",
    "ScalarBuffers",
]
