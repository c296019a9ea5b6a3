"""Small envs and policies for the sampler tests.

They live in their own module (not a test module) so that sampler workers, which
import them by name, do not have to import pytest or hypothesis.
"""

from __future__ import annotations

import os
import signal
import time

import gymnasium as gym
import numpy as np
import torch

import trajkit as tk


class SleepyEnv(gym.Env):
    """Sleeps ``delay`` seconds per step; episodes last ``length`` steps (truncated). Obs: (step, noise)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, delay: float = 0.0, length: int = 10) -> None:
        self.delay, self.length, self.t = delay, length, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.array([self.t, self.np_random.normal()], np.float32)

    def step(self, action):
        if self.delay:
            time.sleep(self.delay)
        self.t += 1
        return self._obs(), float(action), False, self.t >= self.length, {}


class ExplodingEnv(SleepyEnv):
    """The first worker to step elects itself (an exclusive file) and raises at its third step.

    Every other copy sleeps ``delay`` per step, so a parent that waited for all workers
    would wait ``delay * length`` seconds for them.
    """

    def __init__(self, lock_path: str, delay: float, length: int) -> None:
        super().__init__(delay, length)
        self.lock_path = lock_path
        self.role: str | None = None

    def step(self, action):
        if self.role is None:
            try:
                os.close(os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                self.role = "raiser"
            except FileExistsError:
                self.role = "sleeper"
        if self.role == "raiser" and self.t == 2:
            raise RuntimeError("env exploded on purpose at step 3")
        return super().step(action)


class TwoActionsPol(tk.CategoricalPol):
    """A broken policy: returns two actions per observation for a Discrete env."""

    def act(self, obs, deterministic=False, generator=None):
        acs, params = super().act(obs, deterministic, generator)
        return torch.stack([acs, acs], -1), params


class HangingEnv(SleepyEnv):
    """A SleepyEnv whose ``step`` hangs for ``hang`` seconds once it has taken ``hang_after`` steps (a stuck driver).

    Steps count over all episodes of this copy. ``immune``: the hang blocks SIGALRM
    first, as native code that never returns to Python would, so only a watchdog outside
    the process can end it.
    """

    def __init__(
        self, hang_after: int = 2, hang: float = 30.0, immune: bool = False, length: int = 10, delay: float = 0.0
    ) -> None:
        super().__init__(delay, length)
        self.hang_after, self.hang, self.immune = hang_after, hang, immune
        self.total = 0

    def step(self, action):
        if self.total == self.hang_after:
            if self.immune:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(self.hang)
            raise RuntimeError(f"HangingEnv hung for its whole {self.hang}s: nothing stopped it")
        self.total += 1
        return super().step(action)


class HangingFactory:
    """Builds SleepyEnvs of which only the ``which``-th built (0-based, per process) is a :class:`HangingEnv`."""

    def __init__(self, which: int, hang_after: int = 2, hang: float = 30.0) -> None:
        self.which, self.hang_after, self.hang = which, hang_after, hang
        self.built = 0

    def __call__(self) -> SleepyEnv:
        self.built += 1
        return HangingEnv(self.hang_after, self.hang) if self.built - 1 == self.which else SleepyEnv()


class SleepyBoxEnv(SleepyEnv):
    """SleepyEnv with a 1-D Box action space (reward: the action)."""

    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def step(self, action):
        obs, _, terminated, truncated, info = super().step(0)
        return obs, float(np.asarray(action).ravel()[0]), terminated, truncated, info


class NanFromStep(torch.nn.Module):
    """A net whose ``(B, out)`` output is NaN (or ``value``) for rows whose observation step ``obs[:, 0] >= step``."""

    def __init__(self, obs_dim: int, out: int, step: int, value: float = float("nan")) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(obs_dim, out)
        self.step, self.value = step, value

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        y = self.lin(obs)
        bad = (obs[:, :1] >= self.step).expand_as(y)
        return torch.where(bad, torch.full_like(y, self.value), y)


class LengthsFactory:
    """Builds SleepyEnvs (or SleepyBoxEnvs with ``box``) whose episode lengths cycle through ``lengths``."""

    def __init__(self, lengths: list[int], box: bool = False) -> None:
        self.lengths, self.box = lengths, box
        self.built = 0

    def __call__(self) -> SleepyEnv:
        length = self.lengths[self.built % len(self.lengths)]
        self.built += 1
        return SleepyBoxEnv(length=length) if self.box else SleepyEnv(length=length)
